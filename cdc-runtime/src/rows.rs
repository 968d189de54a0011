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
//! a batch into the staging table with one binary `COPY`, and the table's merge
//! (`cdc_management.trigger_pending_merges`) moves it into the final table.
//!
//! ```ignore
//! use cdc_runtime::rows::{copy_into_staging, select_all};
//! let batch = vec![rows::directory::Actor { actno: 1, navn: "Ada".into(), ..Default::default() }];
//! copy_into_staging(&mut client, &batch)?;
//! let actors: Vec<rows::directory::Actor> = select_all(&mut client)?;
//! ```
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

mod numeric;
mod values;

use std::io::Write as _;

use postgres::types::Type;
use postgres::GenericClient;

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

/// One row of a binary COPY stream being encoded.
#[derive(Debug)]
pub struct CopyRow<'a> {
    out: &'a mut Vec<u8>,
    fields: usize,
}

impl CopyRow<'_> {
    /// Appends one field: its length and its binary value, or -1 for NULL.
    pub fn field(
        &mut self,
        column: &'static str,
        ty: &Type,
        value: &dyn CopyValue,
    ) -> Result<(), CopyError> {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        let written = value
            .write_binary(ty, self.out)
            .map_err(|message| CopyError::Value { column, message })?;
        let length = match written {
            Some(()) => {
                i32::try_from(self.out.len() - start - 4).map_err(|_| CopyError::Value {
                    column,
                    message: "value larger than 2 GiB".to_string(),
                })?
            }
            None => {
                self.out.truncate(start + 4);
                -1
            }
        };
        self.out[start..start + 4].copy_from_slice(&length.to_be_bytes());
        self.fields += 1;
        Ok(())
    }
}

/// A value that can be written into a binary COPY stream.
pub trait CopyValue {
    /// Appends the binary representation for a column of type `ty`; `None` for NULL.
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String>;
}

fn expect(ty: &Type, accepted: &[Type], rust: &str) -> Result<(), String> {
    if accepted.contains(ty) {
        Ok(())
    } else {
        Err(format!("a {rust} cannot be written into a {ty} column"))
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        match self {
            Some(value) => value.write_binary(ty, out),
            None => Ok(None),
        }
    }
}

impl<T: CopyValue + ?Sized> CopyValue for &T {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        (**self).write_binary(ty, out)
    }
}

macro_rules! copy_be_bytes {
    ($($rust:ty => $pg:ident),* $(,)?) => {$(
        impl CopyValue for $rust {
            fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
                expect(ty, &[Type::$pg], stringify!($rust))?;
                out.extend_from_slice(&self.to_be_bytes());
                Ok(Some(()))
            }
        }
    )*};
}

copy_be_bytes!(i16 => INT2, i32 => INT4, i64 => INT8, f32 => FLOAT4, f64 => FLOAT8);

impl CopyValue for bool {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::BOOL], "bool")?;
        out.push(u8::from(*self));
        Ok(Some(()))
    }
}

const TEXT_TYPES: [Type; 5] = [
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::XML,
];

impl CopyValue for str {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &TEXT_TYPES, "string")?;
        out.extend_from_slice(self.as_bytes());
        Ok(Some(()))
    }
}

impl CopyValue for String {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        self.as_str().write_binary(ty, out)
    }
}

impl CopyValue for Vec<u8> {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::BYTEA], "Vec<u8>")?;
        out.extend_from_slice(self);
        Ok(Some(()))
    }
}

macro_rules! copy_newtype {
    ($($rust:ty => $pg:ident: |$value:ident, $out:ident| $body:expr),* $(,)?) => {$(
        impl CopyValue for $rust {
            fn write_binary(&self, ty: &Type, $out: &mut Vec<u8>) -> Result<Option<()>, String> {
                expect(ty, &[Type::$pg], stringify!($rust))?;
                let $value = self;
                $body;
                Ok(Some(()))
            }
        }
    )*};
}

copy_newtype!(
    PgDate => DATE: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTime => TIME: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTimestamp => TIMESTAMP: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTimestampTz => TIMESTAMPTZ: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgUuid => UUID: |v, out| out.extend_from_slice(&v.0),
    PgNumeric => NUMERIC: |v, out| numeric::encode_numeric(v.as_str(), out).map_err(|e| e.to_string())?,
    PgXml => XML: |v, out| out.extend_from_slice(v.0.as_bytes()),
    PgInterval => INTERVAL: |v, out| {
        out.extend_from_slice(&v.micros.to_be_bytes());
        out.extend_from_slice(&v.days.to_be_bytes());
        out.extend_from_slice(&v.months.to_be_bytes());
    },
);

impl CopyValue for PgInet {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::INET], "PgInet")?;
        match self.addr {
            std::net::IpAddr::V4(addr) => {
                out.extend_from_slice(&[2, self.prefix, 0, 4]);
                out.extend_from_slice(&addr.octets());
            }
            std::net::IpAddr::V6(addr) => {
                out.extend_from_slice(&[3, self.prefix, 0, 16]);
                out.extend_from_slice(&addr.octets());
            }
        }
        Ok(Some(()))
    }
}

/// Writes JSON text as `json` (text) or `jsonb` (version 1, then text).
fn write_json(text: &str, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
    expect(ty, &[Type::JSON, Type::JSONB], "JSON value")?;
    if *ty == Type::JSONB {
        out.push(1);
    }
    out.extend_from_slice(text.as_bytes());
    Ok(Some(()))
}

impl CopyValue for PgJson {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        write_json(&self.0, ty, out)
    }
}

#[cfg(feature = "json")]
impl CopyValue for serde_json::Value {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        write_json(&self.to_string(), ty, out)
    }
}

#[cfg(feature = "uuid")]
impl CopyValue for uuid::Uuid {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        PgUuid(*self.as_bytes()).write_binary(ty, out)
    }
}

#[cfg(feature = "decimal")]
impl CopyValue for rust_decimal::Decimal {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::NUMERIC], "Decimal")?;
        numeric::encode_numeric(&self.to_string(), out).map_err(|e| e.to_string())?;
        Ok(Some(()))
    }
}

#[cfg(feature = "chrono")]
mod chrono_values {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
    use postgres::types::Type;

    use super::{CopyValue, PgDate, PgTime, PgTimestamp, PgTimestampTz};

    fn pg_epoch() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2000, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
    }

    fn micros_since_epoch(value: NaiveDateTime) -> Result<i64, String> {
        (value - pg_epoch())
            .num_microseconds()
            .ok_or_else(|| format!("{value} is out of PostgreSQL's range"))
    }

    impl CopyValue for NaiveDate {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            let days = (*self - pg_epoch().date()).num_days();
            let days = i32::try_from(days).map_err(|_| format!("{self} is out of range"))?;
            PgDate(days).write_binary(ty, out)
        }
    }

    impl CopyValue for NaiveTime {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            let micros = i64::from(self.num_seconds_from_midnight()) * 1_000_000
                + i64::from(self.nanosecond() / 1_000);
            PgTime(micros).write_binary(ty, out)
        }
    }

    impl CopyValue for NaiveDateTime {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            PgTimestamp(micros_since_epoch(*self)?).write_binary(ty, out)
        }
    }

    impl CopyValue for DateTime<Utc> {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            PgTimestampTz(micros_since_epoch(self.naive_utc())?).write_binary(ty, out)
        }
    }
}

/// Binary COPY's signature, flags and header-extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows are sent to the server in chunks of about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// Writes a batch into `R`'s staging table with one binary `COPY`; returns the
/// number of rows written. The staging trigger marks the table for the next merge.
pub fn copy_into_staging<'r, R, C>(
    client: &mut C,
    rows: impl IntoIterator<Item = &'r R>,
) -> Result<u64, CopyError>
where
    R: StagingRow + 'r,
    C: GenericClient,
{
    let table = R::STAGING_TABLE;
    let field_count = i16::try_from(R::STAGING_COLUMNS.len()).map_err(|_| CopyError::Value {
        column: table,
        message: "too many columns for COPY".to_string(),
    })?;
    let mut writer = client
        .copy_in(R::COPY_STATEMENT)
        .map_err(|source| CopyError::Postgres { table, source })?;
    let io = |source| CopyError::Io { table, source };
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + 4096);
    buffer.extend_from_slice(COPY_HEADER);
    for item in rows {
        buffer.extend_from_slice(&field_count.to_be_bytes());
        let mut row = CopyRow {
            out: &mut buffer,
            fields: 0,
        };
        item.write_staging(&mut row)?;
        if row.fields != R::STAGING_COLUMNS.len() {
            return Err(CopyError::Value {
                column: table,
                message: format!(
                    "wrote {} fields, the staging table takes {}",
                    row.fields,
                    R::STAGING_COLUMNS.len()
                ),
            });
        }
        if buffer.len() >= CHUNK_BYTES {
            writer.write_all(&buffer).map_err(io)?;
            buffer.clear();
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    writer.write_all(&buffer).map_err(io)?;
    writer
        .finish()
        .map_err(|source| CopyError::Postgres { table, source })
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
