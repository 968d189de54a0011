//! The CDC metadata columns every final table ends with, and the extra columns of staging tables.

use super::{Column, ColumnOrigin};
use crate::types::PgType;

/// Name of the operation column (`INSERT`, `UPDATE`, `DELETE`, `READ`, or Debezium's `c`/`u`/`d`/`r`).
pub const COL_OPERATION: &str = "__cdc_operation";
/// Source commit time in epoch milliseconds: first part of an event's position.
pub const COL_SOURCE_TS: &str = "__source_ts_ms";
/// Kafka offset: second part of an event's position.
pub const COL_KAFKA_OFFSET: &str = "__kafka_offset";
/// Source identifier (connector, server, tenant).
pub const COL_SOURCE: &str = "__source";
/// Source database (Debezium's `source.db`).
pub const COL_SOURCE_DB: &str = "__source_db";
/// Source table (Debezium's `source.table`).
pub const COL_SOURCE_TABLE: &str = "__source_table";
/// Soft-delete marker.
pub const COL_IS_DELETED: &str = "__is_deleted";
/// When the row was last merged.
pub const COL_SYNC_TIMESTAMP: &str = "__sync_timestamp";
/// Kafka partition (staging only).
pub const COL_KAFKA_PARTITION: &str = "__kafka_partition";
/// Kafka record timestamp (staging only).
pub const COL_KAFKA_TIMESTAMP: &str = "__kafka_timestamp";
/// Debezium's operation field (`ExtractNewRecordState` with `add.fields=op`; staging only).
pub const COL_DEBEZIUM_OP: &str = "__op";
/// Debezium's rewrite-mode delete marker (`'true'` on deletes; staging only).
pub const COL_DEBEZIUM_DELETED: &str = "__deleted";

/// The CDC metadata columns every final table ends with: the spec's original
/// six plus `__kafka_offset` (part of the position) and `__is_deleted`.
pub fn cdc_metadata_columns() -> Vec<Column> {
    let meta = |name: &str, pg_type, not_null, default: Option<&str>| Column {
        name: name.to_string(),
        pg_type,
        not_null,
        default: default.map(str::to_string),
        origin: ColumnOrigin::Metadata,
    };
    vec![
        meta(COL_OPERATION, PgType::Text, false, None),
        meta(COL_SOURCE_TS, PgType::BigInt, false, None),
        meta(COL_KAFKA_OFFSET, PgType::BigInt, false, None),
        meta(COL_SOURCE, PgType::Text, false, None),
        meta(COL_SOURCE_DB, PgType::Text, false, None),
        meta(COL_SOURCE_TABLE, PgType::Text, false, None),
        meta(COL_IS_DELETED, PgType::Boolean, true, Some("false")),
        meta(
            COL_SYNC_TIMESTAMP,
            PgType::TimestampTz(None),
            true,
            Some("now()"),
        ),
    ]
}

/// Names of the metadata columns of final and staging tables, in the order of
/// [`cdc_metadata_columns`] then [`staging_extra_columns`].
pub const METADATA_NAMES: [&str; 12] = [
    COL_OPERATION,
    COL_SOURCE_TS,
    COL_KAFKA_OFFSET,
    COL_SOURCE,
    COL_SOURCE_DB,
    COL_SOURCE_TABLE,
    COL_IS_DELETED,
    COL_SYNC_TIMESTAMP,
    COL_KAFKA_PARTITION,
    COL_KAFKA_TIMESTAMP,
    COL_DEBEZIUM_OP,
    COL_DEBEZIUM_DELETED,
];

/// The columns a staging table has beyond the final table's.
pub fn staging_extra_columns() -> Vec<Column> {
    [
        (COL_KAFKA_PARTITION, PgType::Integer),
        (COL_KAFKA_TIMESTAMP, PgType::TimestampTz(None)),
        (COL_DEBEZIUM_OP, PgType::Text),
        (COL_DEBEZIUM_DELETED, PgType::Text),
    ]
    .into_iter()
    .map(|(name, pg_type)| Column {
        name: name.to_string(),
        pg_type,
        not_null: false,
        default: None,
        origin: ColumnOrigin::Metadata,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_match_the_columns() {
        let names: Vec<String> = cdc_metadata_columns()
            .into_iter()
            .chain(staging_extra_columns())
            .map(|c| c.name)
            .collect();
        assert_eq!(names, METADATA_NAMES);
        assert!(METADATA_NAMES.iter().all(|n| *n == n.to_lowercase()));
    }
}
