//! Where the service's database is: `DATABASE_URL`, `PG_*` variables, or (feature
//! `throwaway-postgres`) a throwaway local server.

use anyhow::Context as _;
use cdc_runtime::{postgres, tokio_postgres, ConnectOptions, Connector};

/// The database the service works on.
#[derive(Debug)]
pub enum Database {
    /// `DATABASE_URL` (a `postgres://` URL or `key=value` string; no TLS).
    Url(String),
    /// `PG_<ENV>_HOST/PORT/USER/PASSWORD` (falling back to `PG_*`), database from the manifest.
    Env(ConnectOptions),
    /// A PostgreSQL started for this run in a temporary directory, removed on exit.
    #[cfg(feature = "throwaway-postgres")]
    Local {
        /// The server (stopped when dropped).
        server: cdc_testkit::PgServer,
        /// The database created for this run.
        db: String,
    },
}

/// What a build without the `throwaway-postgres` feature says when no database is configured.
#[cfg(not(feature = "throwaway-postgres"))]
const NO_DATABASE: &str =
    "no database configured: set DATABASE_URL, or PG_<ENV>_HOST/PORT/USER/PASSWORD \
     (falling back to PG_*), or run `cargo run -p example-app --features throwaway-postgres` \
     to start a throwaway local PostgreSQL 15 for this run";

/// Whether any `PG_*` connection variable is set (`PG_BINDIR` picks the local binaries, not a server).
fn pg_variables_set() -> bool {
    std::env::vars_os().any(|(key, _)| {
        key.to_str()
            .is_some_and(|k| k.starts_with("PG_") && k != "PG_BINDIR")
    })
}

impl Database {
    /// Chooses the database: `DATABASE_URL`, else `PG_*`, else a throwaway local server
    /// (feature `throwaway-postgres`; without it, an error that says how to get one).
    pub fn from_env(env: &str, dbname: &str) -> anyhow::Result<Database> {
        if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            return Ok(Database::Url(url));
        }
        if pg_variables_set() {
            let options = ConnectOptions::from_env(env, dbname).map_err(anyhow::Error::msg)?;
            return Ok(Database::Env(options));
        }
        Database::throwaway(dbname)
    }

    /// Starts a throwaway local server and creates the database on it.
    #[cfg(feature = "throwaway-postgres")]
    fn throwaway(dbname: &str) -> anyhow::Result<Database> {
        let server = cdc_testkit::PgServer::start().context(
            "no DATABASE_URL or PG_* variables set, and a throwaway local PostgreSQL could not be started",
        )?;
        let db = server.create_database(dbname);
        Ok(Database::Local { server, db })
    }

    /// Without the `throwaway-postgres` feature there is no server to fall back on.
    #[cfg(not(feature = "throwaway-postgres"))]
    fn throwaway(_dbname: &str) -> anyhow::Result<Database> {
        anyhow::bail!(NO_DATABASE)
    }

    /// Where the database is, for the log.
    pub fn describe(&self) -> String {
        match self {
            Database::Url(_) => "DATABASE_URL".to_string(),
            Database::Env(options) => format!("{} (PG_* variables)", options.target()),
            #[cfg(feature = "throwaway-postgres")]
            Database::Local { server, db } => format!(
                "throwaway local PostgreSQL on {}:{}, database {db}",
                server.host(),
                server.port()
            ),
        }
    }

    /// What the merge scheduler reconnects with (TLS as `PG_*` say; none for a URL).
    pub fn connector(&self) -> anyhow::Result<Connector> {
        let parse = |text: &str, what: &str| -> anyhow::Result<Connector> {
            let config: tokio_postgres::Config =
                text.parse().with_context(|| format!("parsing {what}"))?;
            Ok(Connector::without_tls(config))
        };
        match self {
            Database::Url(url) => parse(url, "DATABASE_URL"),
            Database::Env(options) => {
                Connector::new(options).with_context(|| format!("TLS for {}", options.target()))
            }
            #[cfg(feature = "throwaway-postgres")]
            Database::Local { server, db } => parse(
                &server.connection_string(db),
                "the local server's connection string",
            ),
        }
    }

    /// A new connection.
    pub fn connect(&self) -> anyhow::Result<postgres::Client> {
        match self {
            Database::Url(url) => postgres::Client::connect(url, postgres::NoTls)
                .context("connecting to DATABASE_URL"),
            Database::Env(options) => cdc_runtime::connect(options)
                .with_context(|| format!("connecting to {}", options.target())),
            #[cfg(feature = "throwaway-postgres")]
            Database::Local { server, db } => {
                postgres::Client::connect(&server.connection_string(db), postgres::NoTls)
                    .with_context(|| format!("connecting to the local server's database {db}"))
            }
        }
    }
}
