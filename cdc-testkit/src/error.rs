//! The harness's error type.

use std::io;
use std::path::PathBuf;

/// Why a throwaway PostgreSQL server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No `initdb` in the chosen PostgreSQL binary directory.
    #[error(
        "PostgreSQL binaries not found: no initdb in {bindir} (looked in: {tried}); install \
         PostgreSQL 15 (Debian: apt-get install postgresql-15) or set PG_BINDIR to the directory \
         holding initdb, postgres and psql"
    )]
    BinariesNotFound {
        /// The directory that was chosen.
        bindir: PathBuf,
        /// Every place that was considered, in order.
        tried: String,
    },

    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The tests run as root but there is no usable `postgres` OS user to run the server as.
    #[error(
        "running as root, but PostgreSQL refuses to run as root and the OS user `postgres` is \
         not usable: {detail} (create it, e.g. `useradd --system postgres`, or run the tests as \
         a non-root user)"
    )]
    NoPostgresUser {
        /// What went wrong looking the user up.
        detail: String,
    },

    /// The tests run as root and no temporary directory is reachable by the `postgres` OS user.
    #[error(
        "running as root, but the temporary directory {path} cannot be traversed by the \
         `postgres` OS user (some ancestor lacks the o+x bit); point TMPDIR at a directory such \
         as /tmp"
    )]
    TempDirNotTraversable {
        /// The temporary directory that was checked.
        path: PathBuf,
    },

    /// `initdb` exited unsuccessfully.
    #[error("initdb failed ({status}):\n{output}")]
    Initdb {
        /// How initdb exited.
        status: String,
        /// Its standard output and standard error.
        output: String,
    },

    /// The server process exited before it accepted connections.
    #[error("PostgreSQL server exited during startup ({status}); server log tail:\n{log_tail}")]
    ServerExited {
        /// How the server (or its guard) exited.
        status: String,
        /// The last lines of the server log.
        log_tail: String,
    },

    /// Every attempt to listen on a free port collided with another process.
    #[error(
        "PostgreSQL server could not bind a free port after {attempts} attempts; server log \
         tail:\n{log_tail}"
    )]
    NoFreePort {
        /// How many ports were tried.
        attempts: u32,
        /// The last lines of the server log of the last attempt.
        log_tail: String,
    },

    /// The server did not accept connections in time.
    #[error(
        "PostgreSQL server on port {port} did not accept connections within {waited_secs} s \
         (last error: {last_error}); server log tail:\n{log_tail}"
    )]
    StartTimeout {
        /// The port the server was told to listen on.
        port: u16,
        /// How long the harness waited.
        waited_secs: u64,
        /// The last connection error.
        last_error: String,
        /// The last lines of the server log.
        log_tail: String,
    },

    /// Citus is not installed for the machine's PostgreSQL.
    #[error(
        "Citus is not installed: no citus.so in {libdir}; run {script} (path relative to the \
         directory holding the repository clone; CI's .ci/run calls it) to build and install \
         Citus for PostgreSQL 15"
    )]
    CitusNotInstalled {
        /// The PostgreSQL library directory that was checked.
        libdir: PathBuf,
        /// The install script.
        script: &'static str,
    },
}

impl HarnessError {
    /// Wraps an I/O error with what the harness was doing.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
