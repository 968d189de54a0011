//! The errors of applying migrations; each names what a person needs to act.

use std::time::Duration;

use cdc_core::checksum::{Checksum, ChecksumError};

/// Why an apply, plan or status run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A file's body does not match its checksum; nothing was applied.
    #[error(
        "{file}: checksum mismatch: the file says {embedded} but its body hashes to {actual}; \
         it was edited after generation (regenerate with `cdc manage-migrations generate`); nothing was applied"
    )]
    Tampered {
        /// The file.
        file: String,
        /// Checksum written in the file.
        embedded: Checksum,
        /// Checksum of its body.
        actual: Checksum,
    },
    /// A file has no readable checksum line; nothing was applied.
    #[error("{file}: {reason}; nothing was applied")]
    Unreadable {
        /// The file.
        file: String,
        /// What is wrong.
        reason: ChecksumError,
    },
    /// A file failed; it was rolled back, files before it stay applied.
    #[error(
        "{file}{}: {sqlstate}: {message}{}{}",
        .line.map(|l| format!(":{l}")).unwrap_or_default(),
        .detail.as_deref().map(|d| format!("\nDETAIL: {d}")).unwrap_or_default(),
        .hint.as_deref().map(|h| format!("\nHINT: {h}")).unwrap_or_default()
    )]
    FileFailed {
        /// The file.
        file: String,
        /// 1-based line within the file where the failing statement (or the
        /// reported error position) is.
        line: Option<usize>,
        /// SQLSTATE code.
        sqlstate: String,
        /// The server's message.
        message: String,
        /// The server's detail.
        detail: Option<String>,
        /// The server's hint.
        hint: Option<String>,
        /// The underlying error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Another migrator of the sink held the lock longer than allowed.
    #[error(
        "sink `{sink}`: another migrator held the migration lock for {waited:?}, the configured limit; \
         nothing was applied (try again, or raise the lock wait)"
    )]
    LockTimeout {
        /// The sink.
        sink: String,
        /// How long this run waited.
        waited: Duration,
    },
    /// The database could not be reached.
    #[error(
        "could not connect to {target} after {attempts} attempt(s) over {elapsed:?}: {source}"
    )]
    Connect {
        /// `host:port/dbname` (never the password).
        target: String,
        /// Connection attempts made.
        attempts: u32,
        /// Time spent trying.
        elapsed: Duration,
        /// The last error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A TLS connector could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// Reading or writing the migration history failed.
    #[error("migration history: {0}")]
    History(#[source] tokio_postgres::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] tokio_postgres::Error),
}

impl ApplyError {
    /// The SQLSTATE of a database error, when there is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            ApplyError::FileFailed { sqlstate, .. } => Some(sqlstate),
            ApplyError::History(e)
            | ApplyError::Database(e)
            | ApplyError::Connect { source: e, .. } => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}
