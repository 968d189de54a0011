//! One throwaway PostgreSQL server: start it, connect to it, create databases, stop it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binaries::find_bindir;
use crate::os_user::RunAs;
use crate::postmaster::Postmaster;
use crate::startup::{free_port, initdb, log_tail, wait_until_ready, StartFailure};
use crate::HarnessError;

/// The address the server listens on.
pub(crate) const HOST: &str = "127.0.0.1";

/// The superuser role created by `initdb`.
pub(crate) const SUPERUSER: &str = "postgres";

/// How long to wait for the guard to remove the directory of a stopped server.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to poll while waiting.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// How many free ports to try before giving up.
const PORT_ATTEMPTS: u32 = 5;

/// Numbers databases made by [`PgServer::create_database`].
static DATABASE_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A running throwaway PostgreSQL server with its own data directory.
///
/// Start one with [`PgServer::start`] or use the per-binary [`shared`](crate::shared()) one.
/// Dropping an owned `PgServer` shuts the server down (immediate shutdown) and removes its
/// temporary directory; if the test process dies first, the server shuts itself down and removes
/// the directory anyway.
#[derive(Debug)]
pub struct PgServer {
    /// The guarded postmaster.
    postmaster: Postmaster,
    /// The TCP port on [`HOST`].
    port: u16,
    /// Where `psql` is looked for first.
    bindir: PathBuf,
    /// The cluster's data directory, inside `dir`.
    data_dir: PathBuf,
    /// Who runs the server (kept to start it again after [`PgServer::stop`]).
    run_as: RunAs,
    /// The settings given to [`PgServer::start_with`].
    extra_settings: Vec<(String, String)>,
    /// The temporary directory holding the data directory, the unix socket and the server log.
    dir: TempDir,
}

impl PgServer {
    /// Initialises a fresh PostgreSQL cluster in a temporary directory and starts a server on it.
    ///
    /// Returns once the server accepts connections on `127.0.0.1` (waiting at most 60 s).
    ///
    /// # Errors
    ///
    /// Fails if the PostgreSQL binaries are missing, `initdb` fails, the server exits or does not
    /// accept connections in time (the error quotes the end of the server log), or, as root, the
    /// `postgres` OS user is missing.
    pub fn start() -> Result<PgServer, HarnessError> {
        Self::start_with(&[])
    }

    /// Like [`PgServer::start`], with extra server settings (`name`, `value`),
    /// such as `("shared_preload_libraries", "pg_cron")`.
    ///
    /// # Errors
    ///
    /// As [`PgServer::start`].
    pub fn start_with(extra_settings: &[(&str, &str)]) -> Result<PgServer, HarnessError> {
        let bindir = find_bindir()?;
        let run_as = RunAs::detect()?;
        let parent = run_as.temp_parent()?;
        let dir = tempfile::Builder::new()
            .prefix("pg-harness-")
            .tempdir_in(&parent)
            .map_err(|e| {
                HarnessError::io(
                    format!("creating a temporary directory in {}", parent.display()),
                    e,
                )
            })?;
        run_as.hand_over(dir.path())?;
        let data_dir = dir.path().join("data");
        initdb(&run_as, &bindir, dir.path(), &data_dir)?;

        let log_path = dir.path().join("postgres.log");
        let mut last_log_tail = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log = File::create(&log_path).map_err(|e| {
                HarnessError::io(format!("creating server log {}", log_path.display()), e)
            })?;
            let mut postmaster = Postmaster::spawn(
                &run_as,
                &bindir,
                dir.path(),
                &data_dir,
                port,
                log,
                extra_settings,
            )?;
            match wait_until_ready(&mut postmaster, port, &data_dir, &log_path) {
                Ok(()) => {
                    return Ok(PgServer {
                        postmaster,
                        port,
                        bindir,
                        data_dir,
                        run_as,
                        extra_settings: extra_settings
                            .iter()
                            .map(|(name, value)| (name.to_string(), value.to_string()))
                            .collect(),
                        dir,
                    })
                }
                Err(StartFailure::PortTaken) => last_log_tail = log_tail(&log_path),
                Err(StartFailure::Fatal(e)) => return Err(e),
            }
        }
        Err(HarnessError::NoFreePort {
            attempts: PORT_ATTEMPTS,
            log_tail: last_log_tail,
        })
    }

    /// Shuts the server down (fast shutdown: open connections are closed) and keeps its data
    /// directory and port, so that [`PgServer::resume`] starts it again with the same data, as
    /// a database restart or outage looks to a client. Does nothing if it is already stopped.
    ///
    /// # Errors
    ///
    /// Fails if the server's pid cannot be read or its state cannot be checked.
    pub fn stop(&mut self) -> Result<(), HarnessError> {
        self.postmaster.shut_down_keeping_data()
    }

    /// Starts a server stopped by [`PgServer::stop`] again, on the same data directory and
    /// port (and the same settings), and returns once it accepts connections. Does nothing
    /// if it is running.
    ///
    /// # Errors
    ///
    /// Fails if the server exits during startup (for example because another process took
    /// the port meanwhile) or does not accept connections in time; the error quotes the end
    /// of the server log.
    pub fn resume(&mut self) -> Result<(), HarnessError> {
        if self.postmaster.try_wait()?.is_none() {
            return Ok(());
        }
        let log_path = self.dir.path().join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(|e| {
                HarnessError::io(format!("opening server log {}", log_path.display()), e)
            })?;
        let settings: Vec<(&str, &str)> = self
            .extra_settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let postmaster = Postmaster::spawn(
            &self.run_as,
            &self.bindir,
            self.dir.path(),
            &self.data_dir,
            self.port,
            log,
            &settings,
        )?;
        // The old postmaster (already stopped, its watcher released) is dropped here.
        self.postmaster = postmaster;
        match wait_until_ready(&mut self.postmaster, self.port, &self.data_dir, &log_path) {
            Ok(()) => Ok(()),
            Err(StartFailure::Fatal(e)) => Err(e),
            Err(StartFailure::PortTaken) => Err(HarnessError::ServerExited {
                status: format!("port {} was taken while the server was stopped", self.port),
                log_tail: log_tail(&log_path),
            }),
        }
    }

    /// [`PgServer::stop`] then [`PgServer::resume`]: the same data, on the same port.
    ///
    /// # Errors
    ///
    /// As [`PgServer::stop`] and [`PgServer::resume`].
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop()?;
        self.resume()
    }

    /// Whether the server is running (false after [`PgServer::stop`]).
    pub fn is_running(&mut self) -> bool {
        matches!(self.postmaster.try_wait(), Ok(None))
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on: always `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The superuser to connect as (trust authentication, no password): always `"postgres"`.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// The cluster's data directory (removed when the server is dropped).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A `key=value` connection string for database `db`, as [`postgres::Client::connect`]
    /// takes it, e.g. `host=127.0.0.1 port=54321 user=postgres dbname='db'`.
    pub fn connection_string(&self, db: &str) -> String {
        format!(
            "host={HOST} port={} user={SUPERUSER} dbname={}",
            self.port,
            quote_conninfo_value(db)
        )
    }

    /// Creates a fresh, empty database and returns its name.
    ///
    /// The name is `name_prefix` (lowercased, characters other than ASCII letters, digits and `_`
    /// replaced by `_`, shortened to fit PostgreSQL's 63-byte limit) followed by `_`, a
    /// process-wide counter, `_` and the process id, so it is unique and needs no quoting in SQL.
    /// The database is copied from `template0`, so concurrent calls do not contend.
    ///
    /// # Panics
    ///
    /// Panics (this is a test helper) if the database cannot be created.
    pub fn create_database(&self, name_prefix: &str) -> String {
        let name = unique_database_name(
            name_prefix,
            DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed),
            std::process::id(),
        );
        let mut admin = self.client("postgres");
        let sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name));
        if let Err(e) = admin.batch_execute(&sql) {
            panic!("{sql} on {HOST}:{} failed: {e}", self.port);
        }
        name
    }

    /// A new connection (without TLS) to database `db` as the superuser.
    ///
    /// # Panics
    ///
    /// Panics (this is a test helper) if the connection fails.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.connection_string(db), postgres::NoTls).unwrap_or_else(
            |e| panic!("connecting to database {db:?} on {HOST}:{}: {e}", self.port),
        )
    }

    /// Runs the machine's `psql` against database `db` and returns its output.
    ///
    /// Runs `psql -X -h 127.0.0.1 -p PORT -U postgres -d DB ARGS...` with standard input from
    /// `/dev/null`; `psql` is taken from the PostgreSQL binary directory, or from `$PATH`. Pass
    /// e.g. `&["-v", "ON_ERROR_STOP=1", "-1", "-f", path]` to apply a script as `psql -1 -f` does.
    ///
    /// # Panics
    ///
    /// Panics (this is a test helper) if `psql` cannot be run at all; a `psql` that runs and
    /// fails is reported through the returned status.
    pub fn psql(&self, db: &str, args: &[&str]) -> Output {
        let bundled = self.bindir.join("psql");
        let psql = if bundled.is_file() {
            bundled
        } else {
            PathBuf::from("psql")
        };
        Command::new(&psql)
            .arg("-X")
            .args([
                "-h",
                HOST,
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                db,
            ])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", psql.display()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.postmaster.stop() {
            // The guard removes the directory once the postmaster is gone; let it finish before
            // `TempDir` removes whatever is left, so the two do not race.
            let deadline = Instant::now() + CLEANUP_TIMEOUT;
            while self.dir.path().exists() && Instant::now() < deadline {
                sleep(POLL);
            }
        }
    }
}

/// A database name made of a sanitised `prefix`, `counter` and `pid`, at most 63 bytes.
fn unique_database_name(prefix: &str, counter: u64, pid: u32) -> String {
    const MAX_IDENTIFIER_BYTES: usize = 63;
    let suffix = format!("_{counter}_{pid}");
    let mut name: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        name.insert_str(0, "db_");
    }
    name.truncate(MAX_IDENTIFIER_BYTES - suffix.len());
    name + &suffix
}

/// Quotes an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a value for a `key=value` connection string.
fn quote_conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn database_names_are_sanitised_and_bounded() {
        assert_eq!(
            unique_database_name("Orders-Test", 7, 42),
            "orders_test_7_42"
        );
        assert_eq!(unique_database_name("", 1, 2), "db__1_2");
        assert_eq!(unique_database_name("9lives", 1, 2), "db_9lives_1_2");
        let long = unique_database_name(&"x".repeat(100), 123, 456_789);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("_123_456789"));
    }

    #[test]
    fn conninfo_values_are_quoted() {
        assert_eq!(quote_conninfo_value(r"a'b\c"), r"'a\'b\\c'");
    }
}
