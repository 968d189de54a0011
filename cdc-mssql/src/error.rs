//! The errors of the source side, with the context needed to act on them.

use std::path::PathBuf;

/// Everything that can go wrong on the source side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A catalog row that cannot be turned into a column.
    #[error("table {table}, column {column}: {message}")]
    CatalogRow {
        /// `schema.Table`
        table: String,
        /// Column name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a project file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A project file (service file, table YAML) that cannot be read as such.
    #[error("{}: {message}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// `--service` names no service file.
    #[error("no service `{service}` (known: {})", known.join(", "))]
    UnknownService {
        /// The name given.
        service: String,
        /// The services of the project.
        known: Vec<String>,
    },
    /// Several services and none chosen.
    #[error("the project has several services; choose one with --service (known: {})", known.join(", "))]
    AmbiguousService {
        /// The services of the project.
        known: Vec<String>,
    },
    /// `--table` names no table in scope.
    #[error("no source table `{table}` in service `{service}` (known: {})", known.join(", "))]
    UnknownTable {
        /// The name given.
        table: String,
        /// The service searched.
        service: String,
        /// The tables of the service.
        known: Vec<String>,
    },
    /// A table or schema name that cannot become a file path.
    #[error("table {table} cannot be saved: {reason}")]
    UnsafeFileName {
        /// `schema.Table`
        table: String,
        /// Why not.
        reason: &'static str,
    },
    /// A connection setting is missing.
    #[error("{variable} is not set{}", fallback.as_ref().map(|f| format!(" (nor {f})")).unwrap_or_default())]
    MissingSetting {
        /// The variable looked up first.
        variable: String,
        /// The generic variable tried next, when there is one.
        fallback: Option<String>,
    },
    /// A connection setting has a value that does not parse.
    #[error("{variable}: {message}")]
    InvalidSetting {
        /// The variable (or URL part).
        variable: String,
        /// What is wrong; never the password.
        message: String,
    },
    /// Connecting or logging in failed.
    #[error("cannot connect to SQL Server at {host}:{port}, database {database}: {source}")]
    Connect {
        /// Host name.
        host: String,
        /// TCP port.
        port: u16,
        /// Database name.
        database: String,
        /// The driver's error.
        #[source]
        source: Box<tiberius::error::Error>,
    },
    /// A query failed.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: String,
        /// The driver's error, with the server's message.
        #[source]
        source: Box<tiberius::error::Error>,
    },
    /// A query returned a row of an unexpected shape.
    #[error("{what}: unexpected result: {message}")]
    UnexpectedResult {
        /// What was being done.
        what: String,
        /// What was wrong with it.
        message: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
