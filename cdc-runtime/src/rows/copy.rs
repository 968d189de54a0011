//! Writing a batch of rows into its staging table with one binary `COPY`, with or without
//! each row's Kafka coordinates (`__kafka_partition`, `__kafka_timestamp`).

use std::io::Write as _;

use postgres::types::Type;
use postgres::GenericClient;

use super::{CopyError, CopyRow, StagingRow, TimestampTz};

/// Binary COPY's signature, flags and header-extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows are sent to the server in chunks of about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// How errors name the two coordinate fields.
const PARTITION_FIELD: &str = "Kafka partition (__kafka_partition)";
const TIMESTAMP_FIELD: &str = "Kafka timestamp (__kafka_timestamp)";

/// Where a change event was read in Kafka, besides its offset (a column of the
/// row itself, `__kafka_offset`): the partition and the record's timestamp.
/// Written into the staging table's `__kafka_partition` and `__kafka_timestamp`
/// by [`copy_staged`]; `None` writes NULL.
///
/// ```
/// use cdc_runtime::rows::{KafkaCoordinates, Staged};
///
/// // Partition 3, record timestamp 2026-01-01T00:00:00.250Z (milliseconds, as Kafka gives it).
/// let at = KafkaCoordinates::from_record(3, 1_767_225_600_250);
/// assert_eq!(at.partition, Some(3));
/// assert_eq!(at.timestamp, Some("2026-01-01T00:00:00.250Z".parse().unwrap()));
/// // Kafka's "no timestamp" (-1) stages NULL.
/// assert_eq!(KafkaCoordinates::from_record(3, -1).timestamp, None);
///
/// // Each row goes to `copy_staged` with its coordinates (any generated row struct here).
/// let row = 42;
/// let staged = Staged::new(&row, at);
/// assert_eq!(staged.coordinates.partition, Some(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KafkaCoordinates {
    /// The record's partition.
    pub partition: Option<i32>,
    /// The record's timestamp (create or log-append time).
    pub timestamp: Option<TimestampTz>,
}

impl KafkaCoordinates {
    /// Coordinates as a Kafka client reports them: the partition and the record
    /// timestamp in milliseconds since the Unix epoch. A negative timestamp
    /// (Kafka's `-1`, no timestamp) or one outside PostgreSQL's range is NULL.
    pub fn from_record(partition: i32, timestamp_ms: i64) -> KafkaCoordinates {
        KafkaCoordinates {
            partition: Some(partition),
            timestamp: timestamp_from_unix_millis(timestamp_ms),
        }
    }
}

/// A record timestamp as the `timestamptz` field type, for milliseconds since the Unix epoch.
#[cfg(feature = "chrono")]
fn timestamp_from_unix_millis(millis: i64) -> Option<TimestampTz> {
    if millis < 0 {
        return None;
    }
    chrono::DateTime::from_timestamp_millis(millis)
}

/// A record timestamp as the `timestamptz` field type, for milliseconds since the Unix epoch.
#[cfg(not(feature = "chrono"))]
fn timestamp_from_unix_millis(millis: i64) -> Option<TimestampTz> {
    if millis < 0 {
        return None;
    }
    millis
        .checked_mul(1_000)
        .map(super::PgTimestampTz::from_unix_micros)
}

/// A row to stage with its [`KafkaCoordinates`]: the items [`copy_staged`] takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Staged<'a, R> {
    /// The row (the final table's columns, `__kafka_offset` among them).
    pub row: &'a R,
    /// Where it was read.
    pub coordinates: KafkaCoordinates,
}

impl<'a, R> Staged<'a, R> {
    /// `row` read at `coordinates`.
    pub fn new(row: &'a R, coordinates: KafkaCoordinates) -> Staged<'a, R> {
        Staged { row, coordinates }
    }
}

/// Writes a batch into `R`'s staging table with one binary `COPY`; returns the
/// number of rows written. `__kafka_partition` and `__kafka_timestamp` stay NULL
/// ([`copy_staged`] sets them). The staging trigger marks the table for the next merge.
pub fn copy_into_staging<'r, R, C>(
    client: &mut C,
    rows: impl IntoIterator<Item = &'r R>,
) -> Result<u64, CopyError>
where
    R: StagingRow + 'r,
    C: GenericClient,
{
    copy_rows::<R, _, _>(client, R::COPY_STATEMENT, 0, rows, |item, row| {
        item.write_staging(row)
    })
}

/// Writes a batch into `R`'s staging table with one binary `COPY`, each row with
/// its Kafka partition and record timestamp; returns the number of rows written.
///
/// ```ignore
/// use cdc_runtime::rows::{copy_staged, KafkaCoordinates, Staged};
///
/// // (row, partition, timestamp in ms) as the Kafka consumer delivered them
/// let batch: Vec<(rows::directory::Actor, i32, i64)> = consume();
/// let staged = batch
///     .iter()
///     .map(|(actor, partition, ts)| Staged::new(actor, KafkaCoordinates::from_record(*partition, *ts)));
/// copy_staged(&mut client, staged)?;
/// ```
pub fn copy_staged<'r, R, C>(
    client: &mut C,
    rows: impl IntoIterator<Item = Staged<'r, R>>,
) -> Result<u64, CopyError>
where
    R: StagingRow + 'r,
    C: GenericClient,
{
    copy_rows::<R, _, _>(
        client,
        R::COPY_WITH_COORDINATES,
        2,
        rows,
        write_with_coordinates,
    )
}

/// Encodes a batch into the binary `COPY` stream of [`StagingRow::COPY_STATEMENT`]:
/// the bytes [`copy_into_staging`] sends, for a client it does not drive
/// (tokio-postgres's `copy_in`, or a file for `COPY ... FROM` or psql's `\copy`).
pub fn encode_staging<'r, R>(rows: impl IntoIterator<Item = &'r R>) -> Result<Vec<u8>, CopyError>
where
    R: StagingRow + 'r,
{
    let mut stream = Encoder::new::<R>(0)?;
    for item in rows {
        stream.row(&item, |item, row| item.write_staging(row))?;
    }
    Ok(stream.finish())
}

/// Encodes a batch with each row's [`KafkaCoordinates`] into the binary `COPY` stream of
/// [`StagingRow::COPY_WITH_COORDINATES`]: the bytes [`copy_staged`] sends.
pub fn encode_staged<'r, R>(
    rows: impl IntoIterator<Item = Staged<'r, R>>,
) -> Result<Vec<u8>, CopyError>
where
    R: StagingRow + 'r,
{
    let mut stream = Encoder::new::<R>(2)?;
    for item in rows {
        stream.row(&item, write_with_coordinates)?;
    }
    Ok(stream.finish())
}

/// Writes a row's staging columns, then its coordinates.
fn write_with_coordinates<R: StagingRow>(
    item: &Staged<'_, R>,
    row: &mut CopyRow<'_>,
) -> Result<(), CopyError> {
    item.row.write_staging(row)?;
    row.field(PARTITION_FIELD, &Type::INT4, &item.coordinates.partition)?;
    row.field(
        TIMESTAMP_FIELD,
        &Type::TIMESTAMPTZ,
        &item.coordinates.timestamp,
    )
}

/// A binary `COPY` stream being encoded: the header, then rows of a fixed field count.
struct Encoder {
    table: &'static str,
    fields: usize,
    field_count: i16,
    buffer: Vec<u8>,
}

impl Encoder {
    /// A stream of `R`'s staging columns and `extra` more fields per row, header written.
    fn new<R: StagingRow>(extra: usize) -> Result<Encoder, CopyError> {
        let table = R::STAGING_TABLE;
        let fields = R::STAGING_COLUMNS.len() + extra;
        let field_count = i16::try_from(fields).map_err(|_| CopyError::Value {
            column: table,
            message: "too many columns for COPY".to_string(),
        })?;
        let mut buffer = Vec::with_capacity(CHUNK_BYTES + 4096);
        buffer.extend_from_slice(COPY_HEADER);
        Ok(Encoder {
            table,
            fields,
            field_count,
            buffer,
        })
    }

    /// Appends one row, written by `write`, which must write every field.
    fn row<T>(
        &mut self,
        item: &T,
        write: impl FnOnce(&T, &mut CopyRow<'_>) -> Result<(), CopyError>,
    ) -> Result<(), CopyError> {
        self.buffer
            .extend_from_slice(&self.field_count.to_be_bytes());
        let mut row = CopyRow {
            out: &mut self.buffer,
            fields: 0,
        };
        write(item, &mut row)?;
        if row.fields != self.fields {
            return Err(CopyError::Value {
                column: self.table,
                message: format!(
                    "wrote {} fields, the COPY takes {}",
                    row.fields, self.fields
                ),
            });
        }
        Ok(())
    }

    /// Appends the trailer and returns the rest of the stream.
    fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        self.buffer
    }
}

/// One binary `COPY` of `items` with `statement`, each row being `R`'s staging
/// columns and `extra` more fields, written by `write`; sent in chunks of about
/// [`CHUNK_BYTES`].
fn copy_rows<R, C, T>(
    client: &mut C,
    statement: &str,
    extra: usize,
    items: impl IntoIterator<Item = T>,
    write: impl Fn(&T, &mut CopyRow<'_>) -> Result<(), CopyError>,
) -> Result<u64, CopyError>
where
    R: StagingRow,
    C: GenericClient,
{
    let table = R::STAGING_TABLE;
    let mut stream = Encoder::new::<R>(extra)?;
    let mut writer = client
        .copy_in(statement)
        .map_err(|source| CopyError::Postgres { table, source })?;
    let io = |source| CopyError::Io { table, source };
    for item in items {
        stream.row(&item, &write)?;
        if stream.buffer.len() >= CHUNK_BYTES {
            writer.write_all(&stream.buffer).map_err(io)?;
            stream.buffer.clear();
        }
    }
    writer.write_all(&stream.finish()).map_err(io)?;
    writer
        .finish()
        .map_err(|source| CopyError::Postgres { table, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_timestamps_are_milliseconds_and_negative_ones_are_null() {
        let at = KafkaCoordinates::from_record(3, 1_700_000_000_123);
        assert_eq!(at.partition, Some(3));
        let expected: TimestampTz = "2023-11-14T22:13:20.123Z".parse().unwrap();
        assert_eq!(at.timestamp, Some(expected));
        assert_eq!(KafkaCoordinates::from_record(0, -1).timestamp, None);
        assert_eq!(KafkaCoordinates::default().partition, None);
    }

    /// A two-column staging row; `short` writes only its first field.
    struct Pair {
        key: i32,
        name: Option<&'static str>,
        short: bool,
    }

    impl crate::rows::TableRow for Pair {
        const SCHEMA: &'static str = "s";
        const TABLE: &'static str = "t";
        const COLUMNS: &'static [&'static str] = &["key", "name"];
        const SELECT: &'static str = "SELECT \"key\", \"name\" FROM \"s\".\"t\"";

        fn from_row(_: &postgres::Row) -> Result<Self, postgres::Error> {
            unreachable!("only encoded")
        }
    }

    impl StagingRow for Pair {
        const STAGING_TABLE: &'static str = "stg_t";
        const STAGING_COLUMNS: &'static [&'static str] = &["key", "name"];
        const COPY_STATEMENT: &'static str =
            "COPY \"s\".\"stg_t\" (\"key\", \"name\") FROM STDIN (FORMAT binary)";
        const COPY_WITH_COORDINATES: &'static str = "COPY \"s\".\"stg_t\" (\"key\", \"name\", \"__kafka_partition\", \"__kafka_timestamp\") FROM STDIN (FORMAT binary)";

        fn write_staging(&self, row: &mut CopyRow<'_>) -> Result<(), CopyError> {
            row.field("key", &Type::INT4, &self.key)?;
            if self.short {
                return Ok(());
            }
            row.field("name", &Type::TEXT, &self.name.map(str::to_string))
        }
    }

    #[test]
    fn encoded_streams_are_header_rows_and_trailer() {
        let rows = [
            Pair {
                key: 7,
                name: Some("ab"),
                short: false,
            },
            Pair {
                key: -1,
                name: None,
                short: false,
            },
        ];
        let mut expected = COPY_HEADER.to_vec();
        expected.extend([0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 2, b'a', b'b']);
        expected.extend([
            0, 2, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        expected.extend([0xff, 0xff]);
        assert_eq!(encode_staging(&rows).unwrap(), expected);

        // With coordinates: two more fields per row, partition 3 and no timestamp.
        let staged = rows
            .iter()
            .map(|row| Staged::new(row, KafkaCoordinates::from_record(3, -1)));
        let with = encode_staged(staged).unwrap();
        let mut expected = COPY_HEADER.to_vec();
        expected.extend([0, 4, 0, 0, 0, 4, 0, 0, 0, 7, 0, 0, 0, 2, b'a', b'b']);
        expected.extend([0, 0, 0, 4, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        expected.extend([
            0, 4, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        expected.extend([0, 0, 0, 4, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        expected.extend([0xff, 0xff]);
        assert_eq!(with, expected);
    }

    #[test]
    fn a_row_with_a_missing_field_is_refused() {
        let rows = [
            Pair {
                key: 1,
                name: Some("a"),
                short: false,
            },
            Pair {
                key: 2,
                name: None,
                short: true,
            },
        ];
        let error = encode_staging(&rows).unwrap_err().to_string();
        assert_eq!(error, "column stg_t: wrote 1 fields, the COPY takes 2");
    }
}
