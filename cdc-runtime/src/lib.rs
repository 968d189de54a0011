//! Applies a sink's CDC migrations to PostgreSQL, safely, at start-up or from
//! the CLI (DESIGN.md §6).
//!
//! One engine serves both: migrations embedded in the binary with
//! `include_migrations!` or read from disk with [`Migrations::load_dir`].
//!
//! - Every file's checksum is verified before anything is sent; a tampered file
//!   stops the run naming the file and both hashes.
//! - A boot where everything is applied costs one round trip.
//! - Otherwise the sink's session advisory lock is taken (bounded wait), so
//!   several replicas can boot at once; `cdc_management.migration_history` is
//!   created (or adopted from the older tool's shape) and re-read under the lock.
//! - Each pending file runs with its history row in one transaction; a failure
//!   rolls that file back and reports file, SQLSTATE and line. Values (sink,
//!   file, checksum) travel as bound parameters, never spliced into SQL.
//!
//! The engine that decides all this does no IO; two drivers execute it with
//! the same behaviour: [`Migrator::apply`] over a blocking `postgres::Client`
//! and [`Migrator::apply_async`] over a `tokio_postgres::Client`. On every
//! path, a panic or a dropped future included, the run ends its transaction
//! and releases the lock.
//!
//! [`verify_schema`] (and [`verify_schema_async`]) compares the live tables
//! with what the migrations declare, in one catalog query, so a service can
//! refuse to start on a breaking drift or warn about it (see [`verify`]).
//!
//! The runtime reports through `tracing` (files applied with outcome and
//! duration, lock waits, the fast path, merge rounds); install a subscriber to
//! see it. The `serde` feature derives `serde::Serialize` for the reports.
//!
//! ```rust,no_run
//! use cdc_runtime::{connect, ConnectOptions, Migrations, Migrator};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let migrations = Migrations::load_dir("migrations/sink_asma.directory".as_ref())?;
//! let options = ConnectOptions::from_env("dev", migrations.database("dev").unwrap_or("postgres"))?;
//! let mut client = connect(&options)?;
//! let report = Migrator::new(&migrations).apply(&mut client)?;
//! println!("{report}");
//! # Ok(()) }
//! ```

// ApplyError carries what a person needs to act (file, line, SQLSTATE, detail,
// hint, the driver error); runs fail rarely, so its size is not worth boxing.
#![allow(clippy::result_large_err)]

mod apply;
mod apply_async;
pub mod connect;
mod engine;
mod error;
pub mod merge;
mod migrator;
pub mod plan;
pub mod rows;
pub mod sql;
pub mod verify;

pub use cdc_core::schema::{ApplyAction, Change, ChangeKind, Severity};
pub use cdc_core::{Checksum, DatabaseEntry, FileCategory, MigrationFile, Migrations};
pub use cdc_macros::{include_migrations, include_rows};
pub use connect::{connect, connect_async, ConnectOptions, Connector, SslMode};
pub use error::{ApplyError, FailureReport};
pub use migrator::{MigrateOptions, Migrator};
pub use plan::{ApplyEvent, ApplyReport, FileOutcome, FileState, FileStatus, Outcome};
pub use verify::{verify_schema, verify_schema_async, SchemaReport, TableReport, VerifyError};
pub use {postgres, tokio_postgres};
