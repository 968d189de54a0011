//! The errors of applying migrations; each names what a person needs to act.

use std::time::Duration;

use cdc_core::checksum::{Checksum, ChecksumError};
use cdc_core::MigrationFile;

use crate::sql::Statement;

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

    /// The error of a file whose statement (or commit, when `statement` is
    /// `None`) failed: SQLSTATE, the server's message and the line in the file.
    pub(crate) fn file_failed(
        file: &MigrationFile,
        statement: Option<&Statement<'_>>,
        error: tokio_postgres::Error,
    ) -> ApplyError {
        let body = file.body();
        let first = file.body_first_line();
        let (sqlstate, message, detail, hint, position) = match error.as_db_error() {
            Some(db) => (
                db.code().code().to_string(),
                db.message().to_string(),
                db.detail().map(str::to_string),
                db.hint().map(str::to_string),
                match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                    _ => None,
                },
            ),
            None => ("08000".to_string(), error.to_string(), None, None, None),
        };
        let line = statement.map(|s| {
            let within = match position {
                Some(p) => s.line_of(body, p),
                None => s.line,
            };
            first + within - 1
        });
        ApplyError::FileFailed {
            file: file.path.to_string(),
            line,
            sqlstate,
            message,
            detail,
            hint,
            source: error,
        }
    }
}

/// A failure as a program reads it (feature `serde`: `{"file", "line",
/// "sqlstate", "message"}` for a failed file, a string otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(untagged))]
#[non_exhaustive]
pub enum FailureReport {
    /// A file failed and was rolled back.
    File {
        /// The file.
        file: String,
        /// 1-based line of the failing statement in the file.
        line: Option<usize>,
        /// SQLSTATE code.
        sqlstate: String,
        /// The server's message.
        message: String,
    },
    /// Any other failure, as its message.
    Message(String),
}

impl From<&ApplyError> for FailureReport {
    /// Where a file failed; any other error as its message followed by its
    /// causes, `: `-separated.
    fn from(error: &ApplyError) -> FailureReport {
        match error {
            ApplyError::FileFailed {
                file,
                line,
                sqlstate,
                message,
                ..
            } => FailureReport::File {
                file: file.clone(),
                line: *line,
                sqlstate: sqlstate.clone(),
                message: message.clone(),
            },
            other => {
                let mut text = other.to_string();
                let mut cause = std::error::Error::source(other);
                while let Some(error) = cause {
                    text.push_str(": ");
                    text.push_str(&error.to_string());
                    cause = error.source();
                }
                FailureReport::Message(text)
            }
        }
    }
}
