//! The migration history table, shared by the infrastructure file and the runtime.
//!
//! The runtime runs [`history_ddl()`] before any file so that even the first
//! infrastructure file is recorded; `02-cdc-management.sql` carries the same
//! text so that a database set up by hand with `psql` ends in the same shape.
//! The DDL is idempotent and adopts the older history table of the original
//! tool (keyed by `(file_name, schema_name)` with a nullable `schema_name`):
//! it adds the `sink` and `execution_ms` columns, fills `sink` of old rows with
//! `legacy:<schema_name>` and adds the unique key on `(sink, file_name)`.

use std::sync::OnceLock;

pub use crate::layout::MANAGEMENT_SCHEMA;

/// The DDL as written in `history.sql`: [`SCHEMA_PLACEHOLDER`] for the quoted
/// management schema, [`SCHEMA_NAME_PLACEHOLDER`] for its name inside string literals.
const HISTORY_SQL: &str = include_str!("history.sql");

/// Stands for the quoted management schema (`"cdc_management"`) in fixed SQL.
pub const SCHEMA_PLACEHOLDER: &str = "{{management_schema}}";
/// Stands for the management schema's bare name inside a string literal (`'cdc_management'`).
pub const SCHEMA_NAME_PLACEHOLDER: &str = "{{management_schema_name}}";

/// Idempotent DDL of `cdc_management.migration_history`, with the schema
/// named by [`MANAGEMENT_SCHEMA`]; built once.
pub fn history_ddl() -> &'static str {
    static DDL: OnceLock<String> = OnceLock::new();
    DDL.get_or_init(|| {
        HISTORY_SQL
            .replace(SCHEMA_PLACEHOLDER, &format!("\"{MANAGEMENT_SCHEMA}\""))
            .replace(SCHEMA_NAME_PLACEHOLDER, MANAGEMENT_SCHEMA)
    })
}
