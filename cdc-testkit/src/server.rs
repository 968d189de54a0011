//! One throwaway PostgreSQL server: `initdb`, start, connect, stop.

use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::binaries::find_bindir;
use crate::os_user::RunAs;
use crate::HarnessError;

/// The address the server listens on.
const HOST: &str = "127.0.0.1";

/// The superuser role created by `initdb`.
const SUPERUSER: &str = "postgres";

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopping server may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How long to wait for the guard to remove the directory of a stopped server.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to poll while waiting.
const POLL: Duration = Duration::from_millis(50);

/// How many free ports to try before giving up.
const PORT_ATTEMPTS: u32 = 5;

/// How many server-log lines to quote in errors.
const LOG_TAIL_LINES: usize = 40;

/// Server settings: durability off for speed, room for many parallel tests.
const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "64MB"),
];

/// The guard the postmaster runs under, as `sh -c GUARD_SCRIPT guard DIR POSTGRES ARGS...`.
///
/// It starts `POSTGRES ARGS...` in the background and exits with its status. Its standard input
/// is a pipe whose only writer is the test process: a watcher blocks reading it, so the read sees
/// end-of-file as soon as the test process closes it or exits (normally, by a panic, by a signal,
/// even by SIGKILL). The watcher then shuts the postmaster down (SIGQUIT: immediate shutdown),
/// waits until it is gone and removes DIR. A watcher whose postmaster is already dead does
/// nothing, so a failed start attempt leaves DIR alone. (A non-interactive shell gives background
/// jobs /dev/null as standard input, hence the copy on descriptor 3.)
const GUARD_SCRIPT: &str = r#"dir=$1
shift
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
(
  cat <&3 >/dev/null
  if kill -0 "$pid" 2>/dev/null; then
    kill -QUIT "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -rf -- "$dir"
  fi
) &
exec 3<&-
wait "$pid"
"#;

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

/// A postmaster running under the [`GUARD_SCRIPT`].
#[derive(Debug)]
struct Postmaster {
    /// The guard process (`sh`, or `runuser`/`su` running it).
    guard: Child,
    /// The write end of the guard's standard input; closing it stops the server.
    lifeline: Option<ChildStdin>,
    /// The data directory, whose `postmaster.pid` names the postmaster if it must be killed.
    data_dir: PathBuf,
}

impl Postmaster {
    /// Starts the postmaster on `port`, logging to `log`.
    fn spawn(
        run_as: &RunAs,
        bindir: &Path,
        dir: &Path,
        data_dir: &Path,
        port: u16,
        log: File,
        extra_settings: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let mut args: Vec<OsString> = vec![
            "-c".into(),
            GUARD_SCRIPT.into(),
            "pg-harness-guard".into(),
            dir.into(),
            bindir.join("postgres").into(),
            "-D".into(),
            data_dir.into(),
            "-p".into(),
            port.to_string().into(),
            "-h".into(),
            HOST.into(),
            "-k".into(),
            dir.into(),
        ];
        for (name, value) in SETTINGS.iter().chain(extra_settings) {
            args.push("-c".into());
            args.push(format!("{name}={value}").into());
        }
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating the server log handle", e))?;
        let mut guard = run_as
            .command(Path::new("/bin/sh"), &args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::io("starting the PostgreSQL server", e))?;
        let lifeline = guard.stdin.take();
        Ok(Self {
            guard,
            lifeline,
            data_dir: data_dir.to_owned(),
        })
    }

    /// How the guard exited, if it has (it exits when the postmaster does).
    fn try_wait(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        self.guard
            .try_wait()
            .map_err(|e| HarnessError::io("checking on the PostgreSQL server", e))
    }

    /// Shuts the server down and waits for it; returns whether it was still running.
    ///
    /// Closing the lifeline makes the guard stop the postmaster; if that takes longer than
    /// [`STOP_TIMEOUT`], the postmaster and the guard are killed.
    fn stop(&mut self) -> bool {
        let was_running = matches!(self.guard.try_wait(), Ok(None));
        drop(self.lifeline.take());
        if !was_running {
            return false;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.guard.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                if let Some(pid) = postmaster_pid(&self.data_dir) {
                    // Best effort: the postmaster is ours (or the `postgres` user's, and we are
                    // root), and `std` cannot signal arbitrary pids.
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
                let _ = self.guard.kill();
                let _ = self.guard.wait();
                break;
            }
            sleep(POLL);
        }
        true
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why one start attempt failed.
enum StartFailure {
    /// Another process took the port: try another.
    PortTaken,
    /// Anything else.
    Fatal(HarnessError),
}

/// Runs `initdb` for `data_dir` (inside `dir`, which the server's user owns).
fn initdb(run_as: &RunAs, bindir: &Path, dir: &Path, data_dir: &Path) -> Result<(), HarnessError> {
    let args: Vec<OsString> = vec![
        "-D".into(),
        data_dir.into(),
        "-A".into(),
        "trust".into(),
        "-U".into(),
        SUPERUSER.into(),
        "-E".into(),
        "UTF8".into(),
        "--locale=C".into(),
        "--no-sync".into(),
    ];
    let out = run_as
        .command(&bindir.join("initdb"), &args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io(format!("running {}/initdb", bindir.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(HarnessError::Initdb {
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Waits until the server accepts connections, fails, or times out.
fn wait_until_ready(
    postmaster: &mut Postmaster,
    port: u16,
    data_dir: &Path,
    log_path: &Path,
) -> Result<(), StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = postmaster.try_wait().map_err(StartFailure::Fatal)? {
            let tail = log_tail(log_path);
            if is_bind_failure(&tail) {
                return Err(StartFailure::PortTaken);
            }
            return Err(StartFailure::Fatal(HarnessError::ServerExited {
                status: status.to_string(),
                log_tail: tail,
            }));
        }
        let last_error = match probe(port, data_dir) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(StartFailure::Fatal(HarnessError::StartTimeout {
                port,
                waited_secs: START_TIMEOUT.as_secs(),
                last_error,
                log_tail: log_tail(log_path),
            }));
        }
        sleep(POLL);
    }
}

/// Connects to `port` and checks that the server there serves `data_dir` (and not another
/// process that grabbed the port first).
fn probe(port: u16, data_dir: &Path) -> Result<(), String> {
    let mut client = postgres::Config::new()
        .host(HOST)
        .port(port)
        .user(SUPERUSER)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2))
        .connect(postgres::NoTls)
        .map_err(|e| e.to_string())?;
    let served: String = client
        .query_one("SELECT current_setting('data_directory')", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same(Path::new(&served), data_dir) {
        Ok(())
    } else {
        Err(format!(
            "port {port} is served by another cluster ({served})"
        ))
    }
}

/// Whether a server log says the TCP port was taken.
fn is_bind_failure(log: &str) -> bool {
    log.contains("could not bind") || log.contains("could not create any TCP/IP sockets")
}

/// Picks a TCP port on [`HOST`] that is free right now.
fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("finding a free TCP port", e))
}

/// The last [`LOG_TAIL_LINES`] lines of the server log.
fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// The postmaster's pid from the first line of `postmaster.pid`.
fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
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

    #[test]
    fn bind_failures_are_recognised() {
        assert!(is_bind_failure(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!is_bind_failure(
            "LOG:  database system is ready to accept connections"
        ));
    }
}
