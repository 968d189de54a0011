//! A throwaway Citus cluster (a coordinator and two workers) built from three throwaway servers.
//!
//! Citus is not in Debian's archive; `../shared/vendor/citus/install.sh` (next to the repository
//! clone; CI's `.ci/run` calls it) builds and installs it for the machine's PostgreSQL 15. When
//! `citus.so` is missing from the server's library directory, [`CitusCluster::start`] fails with
//! [`HarnessError::CitusNotInstalled`], naming that script: a Citus test never skips silently.
//!
//! The extension and the node registration are per database, so
//! [`CitusCluster::create_database`] creates the database on every node, creates the extension in
//! each, and registers the coordinator and the workers in the coordinator's copy.
//!
//! ```no_run
//! let cluster = cdc_testkit::citus::CitusCluster::start().unwrap();
//! let db = cluster.create_database("sharded");
//! let mut client = cluster.client(&db);
//! client.batch_execute("CREATE TABLE t (k int PRIMARY KEY); SELECT create_distributed_table('t', 'k')").unwrap();
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::binaries::find_bindir;
use crate::server::HOST;
use crate::{HarnessError, PgServer};

/// How many workers [`CitusCluster::start`] starts.
pub const WORKERS: usize = 2;

/// Shards per distributed table: Citus's default (32) makes every `create_distributed_table` of a
/// test create 32 shards per table on two small servers; 8 still spreads rows over both workers.
pub const SHARD_COUNT: &str = "8";

/// The settings every node starts with.
const NODE_SETTINGS: &[(&str, &str)] = &[
    ("shared_preload_libraries", "citus"),
    // Multi-shard writes commit with two-phase commit.
    ("max_prepared_transactions", "100"),
    ("citus.shard_count", SHARD_COUNT),
];

/// The install script, relative to the directory that holds the repository clone.
pub const INSTALL_SCRIPT: &str = "../shared/vendor/citus/install.sh";

/// A running coordinator and [`WORKERS`] workers; dropping it stops all three servers.
#[derive(Debug)]
pub struct CitusCluster {
    /// The coordinator: clients connect here.
    coordinator: PgServer,
    /// The workers, which hold the shards.
    workers: Vec<PgServer>,
}

impl CitusCluster {
    /// Starts a coordinator and [`WORKERS`] workers with `shared_preload_libraries=citus`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::CitusNotInstalled`] when `citus.so` is not in the PostgreSQL library
    /// directory; otherwise as [`PgServer::start`].
    pub fn start() -> Result<CitusCluster, HarnessError> {
        check_installed()?;
        let coordinator = PgServer::start_with(NODE_SETTINGS)?;
        let workers = (0..WORKERS)
            .map(|_| PgServer::start_with(NODE_SETTINGS))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CitusCluster {
            coordinator,
            workers,
        })
    }

    /// The coordinator server.
    pub fn coordinator(&self) -> &PgServer {
        &self.coordinator
    }

    /// The worker servers, which hold the shards.
    pub fn nodes(&self) -> &[PgServer] {
        &self.workers
    }

    /// Creates a fresh database on every node (same name), creates the `citus` extension in
    /// each, sets the coordinator's host and adds every worker, and returns the name.
    ///
    /// # Panics
    ///
    /// Panics (this is a test helper) if a step fails.
    pub fn create_database(&self, name_prefix: &str) -> String {
        // One database at a time: node registration syncs Citus metadata to every worker, and
        // parallel tests registering at once on loaded nodes made it fail.
        static CREATING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = CREATING.lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.coordinator.create_database(name_prefix);
        for worker in &self.workers {
            let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE template0");
            if let Err(e) = worker.client("postgres").batch_execute(&sql) {
                panic!("{sql} on worker port {} failed: {e}", worker.port());
            }
        }
        for node in self.all_nodes() {
            let mut client = node.client(&name);
            if let Err(e) = client.batch_execute("CREATE EXTENSION IF NOT EXISTS citus") {
                panic!("CREATE EXTENSION citus on port {} failed: {e}", node.port());
            }
        }
        let mut coordinator = self.client(&name);
        let register = |client: &mut postgres::Client, sql: &str, port: u16| {
            // A worker busy with other tests can be slow to answer the metadata sync: retry.
            let mut attempt = 1;
            while let Err(e) = client.execute(sql, &[&HOST, &i32::from(port)]) {
                let cause = e
                    .as_db_error()
                    .map(|d| {
                        format!(
                            "{} ({}), detail: {:?}",
                            d.message(),
                            d.code().code(),
                            d.detail()
                        )
                    })
                    .unwrap_or_else(|| e.to_string());
                assert!(
                    attempt < 3,
                    "{sql} with port {port} failed {attempt} times: {cause}"
                );
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        };
        register(
            &mut coordinator,
            "SELECT citus_set_coordinator_host($1, $2)",
            self.coordinator.port(),
        );
        for worker in &self.workers {
            register(
                &mut coordinator,
                "SELECT citus_add_node($1, $2)",
                worker.port(),
            );
        }
        name
    }

    /// A new connection to database `db` on the coordinator.
    ///
    /// # Panics
    ///
    /// Panics (this is a test helper) if the connection fails.
    pub fn client(&self, db: &str) -> postgres::Client {
        self.coordinator.client(db)
    }

    /// The coordinator's connection string for `db`.
    pub fn connection_string(&self, db: &str) -> String {
        self.coordinator.connection_string(db)
    }

    /// The coordinator and the workers.
    fn all_nodes(&self) -> impl Iterator<Item = &PgServer> {
        std::iter::once(&self.coordinator).chain(&self.workers)
    }
}

/// The Citus cluster shared by every test of this test binary, started on first use.
///
/// Tests isolate themselves with [`CitusCluster::create_database`].
///
/// # Panics
///
/// Panics with the [`HarnessError`] message, in every test that calls it, if the cluster cannot
/// be started (for example because Citus is not installed).
pub fn shared_cluster() -> &'static CitusCluster {
    static SHARED: OnceLock<Result<CitusCluster, String>> = OnceLock::new();
    match SHARED.get_or_init(|| CitusCluster::start().map_err(|e| e.to_string())) {
        Ok(cluster) => cluster,
        Err(e) => panic!("the shared Citus test cluster failed to start: {e}"),
    }
}

/// Fails unless `citus.so` is in the server's library directory.
fn check_installed() -> Result<(), HarnessError> {
    let libdir = pkglibdir()?;
    if libdir.join("citus.so").is_file() {
        Ok(())
    } else {
        Err(HarnessError::CitusNotInstalled {
            libdir,
            script: INSTALL_SCRIPT,
        })
    }
}

/// `pg_config --pkglibdir` of the chosen binaries (or of `$PATH`), else `BINDIR/../lib`.
fn pkglibdir() -> Result<PathBuf, HarnessError> {
    let bindir = find_bindir()?;
    let local = bindir.join("pg_config");
    let pg_config: &Path = if local.is_file() {
        &local
    } else {
        Path::new("pg_config")
    };
    let from_pg_config = Command::new(pg_config)
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|dir| PathBuf::from(dir.trim()))
        .filter(|dir| !dir.as_os_str().is_empty());
    Ok(from_pg_config.unwrap_or_else(|| bindir.join("../lib")))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn a_missing_citus_names_the_install_script() {
        let message = HarnessError::CitusNotInstalled {
            libdir: PathBuf::from("/usr/lib/postgresql/15/lib"),
            script: INSTALL_SCRIPT,
        }
        .to_string();
        assert!(
            message.contains("no citus.so in /usr/lib/postgresql/15/lib"),
            "{message}"
        );
        assert!(
            message.contains("../shared/vendor/citus/install.sh"),
            "{message}"
        );
    }

    #[test]
    fn the_library_directory_is_found() {
        // This machine runs the Citus tests, so the check passes here.
        let libdir = pkglibdir().unwrap();
        assert!(libdir.join("plpgsql.so").is_file(), "{}", libdir.display());
    }
}
