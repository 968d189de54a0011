//! The apply engine's two drivers behind one interface, so that every scenario runs against both.
//!
//! Shared by `apply.rs` and `tls.rs` (`mod drivers;`); each uses a part.
#![allow(dead_code)]
// ApplyError is the runtime's own (large, rarely built) error type.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::time::Duration;

use cdc_runtime::postgres::types::FromSqlOwned;
use cdc_runtime::{ApplyError, ApplyReport, ConnectOptions, FileStatus, Migrator, SslMode};

/// Which driver runs a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `Migrator::apply` over `postgres::Client`.
    Blocking,
    /// `Migrator::apply_async` over `tokio_postgres::Client`, on a current-thread runtime.
    Async,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Blocking => "blocking",
            Driver::Async => "async",
        })
    }
}

impl Driver {
    /// Connects with `cdc_runtime::connect` or `connect_async`.
    pub fn connect(self, options: &ConnectOptions) -> Result<Session, ApplyError> {
        match self {
            Driver::Blocking => cdc_runtime::connect(options).map(Session::Blocking),
            Driver::Async => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let client = runtime.block_on(cdc_runtime::connect_async(options))?;
                Ok(Session::Async { runtime, client })
            }
        }
    }

    /// A plain connection to `db` on the shared test server.
    pub fn connect_to(self, server: &cdc_testkit::PgServer, db: &str) -> Session {
        self.connect(&plain_options(server, db))
            .unwrap_or_else(|e| panic!("{self} driver: connecting to {db}: {e}"))
    }
}

/// Options for `db` on `server`, without TLS.
pub fn plain_options(server: &cdc_testkit::PgServer, db: &str) -> ConnectOptions {
    ConnectOptions {
        host: server.host().into(),
        port: server.port(),
        user: server.user().into(),
        password: None,
        dbname: db.into(),
        sslmode: SslMode::Disable,
        connect_timeout: Duration::from_secs(5),
        retry_for: Duration::from_secs(5),
    }
}

/// A connection of one driver.
pub enum Session {
    /// A blocking client.
    Blocking(postgres::Client),
    /// An async client and the runtime its connection task runs on.
    Async {
        runtime: tokio::runtime::Runtime,
        client: cdc_runtime::tokio_postgres::Client,
    },
}

impl Session {
    /// Applies the migrator's files over this session's driver.
    pub fn apply(&mut self, migrator: &Migrator<'_>) -> Result<ApplyReport, ApplyError> {
        match self {
            Session::Blocking(client) => migrator.apply(client),
            Session::Async { runtime, client } => runtime.block_on(migrator.apply_async(client)),
        }
    }

    /// Every file's status over this session's driver.
    pub fn status(&mut self, migrator: &Migrator<'_>) -> Result<Vec<FileStatus>, ApplyError> {
        match self {
            Session::Blocking(client) => migrator.status(client),
            Session::Async { runtime, client } => runtime.block_on(migrator.status_async(client)),
        }
    }

    /// The one value of a query without parameters.
    pub fn value<T: FromSqlOwned>(&mut self, sql: &str) -> T {
        let row = match self {
            Session::Blocking(client) => client.query_one(sql, &[]),
            Session::Async { runtime, client } => runtime.block_on(client.query_one(sql, &[])),
        };
        row.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }
}
