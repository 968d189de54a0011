//! Runtime support for the row structs that `cdc_build::builder::Builder` generates.
//!
//! The build script writes `$OUT_DIR/cdc/rows.rs`: one struct per table, in a
//! module per target schema, whose fields follow the YAML's PostgreSQL types.
//! Include it once:
//!
//! ```ignore
//! mod rows {
//!     cdc_runtime::include_rows!();
//! }
//! ```
//!
//! Every struct implements [`TableRow`] (read it back from the final table) and,
//! when the table has a primary key, [`StagingRow`]: [`copy_into_staging`] writes
//! a batch into the staging table with one binary `COPY`, [`copy_staged`] does the
//! same with each row's Kafka partition and record timestamp ([`KafkaCoordinates`],
//! into `__kafka_partition` and `__kafka_timestamp`), and the table's merge
//! (`cdc_management.run_pending_merges`, or the [`MergeScheduler`](crate::merge::MergeScheduler))
//! moves it into the final table.
//!
//! ```ignore
//! use cdc_runtime::rows::{copy_into_staging, copy_staged, select_all, KafkaCoordinates, Staged};
//! let batch = vec![rows::directory::Actor { actno: 1, navn: "Ada".into(), ..Default::default() }];
//! copy_into_staging(&mut client, &batch)?; // coordinates NULL
//! // or, with the partition and timestamp (ms) of each record:
//! copy_staged(&mut client, batch.iter().map(|row| Staged::new(row, KafkaCoordinates::from_record(0, ts_ms))))?;
//! let actors: Vec<rows::directory::Actor> = select_all(&mut client)?;
//! ```
//!
//! Those two drive the blocking `postgres` client. Any other client sends the stream that
//! [`encode_staging`] (or [`encode_staged`], with coordinates) returns, for example through
//! tokio-postgres's own `copy_in`:
//!
//! ```ignore
//! use futures_util::SinkExt as _;
//! let stream = cdc_runtime::rows::encode_staging(&batch)?;
//! let sink = client.copy_in(rows::directory::Actor::COPY_STATEMENT).await?;
//! let mut sink = std::pin::pin!(sink);
//! sink.send(bytes::Bytes::from(stream)).await?;
//! let staged = sink.as_mut().finish().await?;
//! ```
//!
//! Stage batches of thousands of rows per `COPY`: on PostgreSQL 15 each `COPY` statement
//! costs the server about 2 ms of its own, so a `COPY` of 1,000 rows is barely faster than a
//! 1,000-row `INSERT` (see the README's `copy_staging` benchmark).
//!
//! # Field types
//!
//! | PostgreSQL | field | without the feature |
//! |---|---|---|
//! | boolean, smallint, integer, bigint | `bool`, `i16`, `i32`, `i64` | |
//! | real, double precision | `f32`, `f64` | |
//! | char, varchar, text | `String` | |
//! | bytea | `Vec<u8>` | |
//! | date, time, timestamp, timestamptz | [`Date`], [`Time`], [`Timestamp`], [`TimestampTz`]: `chrono` types with the `chrono` feature | [`PgDate`], [`PgTime`], [`PgTimestamp`], [`PgTimestampTz`] |
//! | uuid | [`Uuid`]: `uuid::Uuid` with `uuid` | [`PgUuid`] |
//! | numeric | [`Numeric`]: `rust_decimal::Decimal` with `decimal` | [`PgNumeric`] (exact text) |
//! | json, jsonb | [`Json`]: `serde_json::Value` with `json` | [`PgJson`] (text) |
//! | xml, interval, inet | [`PgXml`], [`PgInterval`], [`PgInet`] | |
//!
//! A nullable column is an `Option<T>`. Every type here parses from PostgreSQL's
//! text format (`FromStr`) with or without its feature, so code such as
//! `"2026-05-01T12:00:00".parse()?` compiles either way. `rust_decimal::Decimal`
//! holds 28 significant digits: with `decimal`, a wider `numeric` value fails to
//! read; [`PgNumeric`] keeps any value.

mod copy;
mod encode;
mod numeric;
mod values;

use postgres::GenericClient;

pub use copy::{
    copy_into_staging, copy_staged, encode_staged, encode_staging, KafkaCoordinates, Staged,
};
pub use encode::{CopyRow, CopyValue};
pub use numeric::PgNumeric;
pub use values::{
    ParseValueError, PgDate, PgInet, PgInterval, PgJson, PgTime, PgTimestamp, PgTimestampTz,
    PgUuid, PgXml,
};

/// `date` columns.
#[cfg(feature = "chrono")]
pub type Date = chrono::NaiveDate;
/// `date` columns.
#[cfg(not(feature = "chrono"))]
pub type Date = PgDate;
/// `time` columns.
#[cfg(feature = "chrono")]
pub type Time = chrono::NaiveTime;
/// `time` columns.
#[cfg(not(feature = "chrono"))]
pub type Time = PgTime;
/// `timestamp` columns.
#[cfg(feature = "chrono")]
pub type Timestamp = chrono::NaiveDateTime;
/// `timestamp` columns.
#[cfg(not(feature = "chrono"))]
pub type Timestamp = PgTimestamp;
/// `timestamptz` columns.
#[cfg(feature = "chrono")]
pub type TimestampTz = chrono::DateTime<chrono::Utc>;
/// `timestamptz` columns.
#[cfg(not(feature = "chrono"))]
pub type TimestampTz = PgTimestampTz;
/// `uuid` columns.
#[cfg(feature = "uuid")]
pub type Uuid = uuid::Uuid;
/// `uuid` columns.
#[cfg(not(feature = "uuid"))]
pub type Uuid = PgUuid;
/// `numeric` columns.
#[cfg(feature = "decimal")]
pub type Numeric = rust_decimal::Decimal;
/// `numeric` columns.
#[cfg(not(feature = "decimal"))]
pub type Numeric = PgNumeric;
/// `json` and `jsonb` columns.
#[cfg(feature = "json")]
pub type Json = serde_json::Value;
/// `json` and `jsonb` columns.
#[cfg(not(feature = "json"))]
pub type Json = PgJson;

/// A generated row struct: one table's columns as typed fields.
pub trait TableRow: Sized {
    /// Target schema.
    const SCHEMA: &'static str;
    /// Final table.
    const TABLE: &'static str;
    /// Column names in table order.
    const COLUMNS: &'static [&'static str];
    /// `SELECT <every column> FROM <final table>`, identifiers quoted.
    const SELECT: &'static str;

    /// Reads a row selected with the columns' own names (`SELECT *` or [`Self::SELECT`]).
    fn from_row(row: &postgres::Row) -> Result<Self, postgres::Error>;
}

/// A row of a table with a staging table (every table with a primary key).
pub trait StagingRow: TableRow {
    /// Staging table (`stg_<Table>`, shortened when needed).
    const STAGING_TABLE: &'static str;
    /// Columns written into staging: the final table's, less `__is_deleted` and
    /// `__sync_timestamp`, which the merge sets.
    const STAGING_COLUMNS: &'static [&'static str];
    /// `COPY <staging> (<columns>) FROM STDIN (FORMAT binary)`, identifiers quoted.
    const COPY_STATEMENT: &'static str;
    /// [`Self::COPY_STATEMENT`] with `__kafka_partition` and `__kafka_timestamp`
    /// after the staging columns (see [`copy_staged`]).
    const COPY_WITH_COORDINATES: &'static str;

    /// Writes this row's [`Self::STAGING_COLUMNS`], in order.
    fn write_staging(&self, row: &mut CopyRow<'_>) -> Result<(), CopyError>;
}

/// Why rows could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The server or the connection failed.
    #[error("copy into {table}: {source}")]
    Postgres {
        /// The staging table.
        table: &'static str,
        /// The error.
        #[source]
        source: postgres::Error,
    },
    /// Writing the COPY stream failed.
    #[error("copy into {table}: {source}")]
    Io {
        /// The staging table.
        table: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A value cannot be written as its column's type.
    #[error("column {column}: {message}")]
    Value {
        /// The column.
        column: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Every row of `R`'s final table, in no particular order.
pub fn select_all<R: TableRow, C: GenericClient>(
    client: &mut C,
) -> Result<Vec<R>, postgres::Error> {
    client
        .query(R::SELECT, &[])?
        .iter()
        .map(R::from_row)
        .collect()
}
