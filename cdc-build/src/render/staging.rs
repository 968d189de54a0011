//! `01-tables/<Table>-staging.sql`: the UNLOGGED staging table, the typed
//! tombstone table, the merge-control registration, `sp_merge_<Table>()` and
//! the statement trigger, rendered from `templates/staging.sql`.
//!
//! The merge meets DESIGN.md §7: it consumes exactly the rows it deletes from
//! staging, keeps the latest event per key by (`__source_ts_ms`,
//! `__kafka_offset`), never lets an older event overwrite a newer row or
//! resurrect a row a newer delete removed, costs index probes for its own keys
//! only, dead-letters rows that cannot be applied, and logs true counts per batch.

use askama::Template;
use cdc_core::layout::MANAGEMENT_SCHEMA;

use super::sql_template::filters;
use super::table::push_converge;
use crate::columns::{
    staging_extra_columns, Column, ColumnOrigin, COL_DEBEZIUM_OP, COL_IS_DELETED, COL_OPERATION,
    COL_SYNC_TIMESTAMP,
};
use crate::ident::{push_ident, qualified};
use crate::project::{SinkTable, MARK_TRIGGER};
use crate::types::PgType;

/// Default number of staged rows one merge batch consumes.
pub const DEFAULT_MERGE_BATCH: u32 = 1_000_000;

/// The body of a staging file.
pub fn render_staging(table: &SinkTable) -> String {
    let mut out = String::with_capacity(staging_capacity(table));
    push_staging(&mut out, table);
    out
}

/// A size hint for a staging body.
pub fn staging_capacity(table: &SinkTable) -> usize {
    16_000 + table.columns.len() * 400
}

/// Appends the body of a staging file.
pub fn push_staging(out: &mut String, table: &SinkTable) {
    let template = StagingSql::new(table);
    // Rendering into a String cannot fail: every value is a plain string.
    let _ = template.render_into(out);
}

/// A staging-table column as the template writes it.
#[derive(Debug)]
struct StagingColumn {
    name: String,
    /// Type and default.
    definition: String,
    /// Type alone.
    type_sql: String,
}

/// A final-table column and what the merge inserts for it.
#[derive(Debug)]
struct FinalColumn<'a> {
    name: &'a str,
    select_expr: String,
}

#[derive(Template)]
#[template(path = "staging.sql")]
struct StagingSql<'a> {
    management: &'a str,
    schema: &'a str,
    table: &'a str,
    staging: &'a str,
    tombstones: &'a str,
    tombstones_index: String,
    merge_function: &'a str,
    mark_trigger: &'a str,
    key: &'a [String],
    key_columns: Vec<StagingColumn>,
    staging_columns: Vec<StagingColumn>,
    columns: Vec<FinalColumn<'a>>,
    /// The final columns as the Citus statements insert them (`v_now`, not `now()`: Citus
    /// evaluates no volatile or stable function per shard in an upsert).
    citus_columns: Vec<FinalColumn<'a>>,
    /// `s."k1" = (v_key ->> 0)::type AND ...`: one key of the Citus per-key retry.
    citus_key_filter: String,
    non_key_columns: Vec<FinalColumn<'a>>,
    staging_converge: String,
    tombstones_converge: String,
    legacy_tombstones: String,
    lock_key: String,
    keyless_message: String,
    /// `"schema"."stg_<Table>"`, for `::regclass`.
    staging_regclass: String,
    /// `s."k1" IS NULL OR ...`: a staged row without its key.
    keyless_condition: String,
    tag: String,
    soft_delete: bool,
    default_batch: u32,
    /// Places the staging and tombstone tables on Citus (empty for a table Citus does not manage).
    distribute: String,
    /// Citus manages the table: the staging trigger is created only where Citus is absent.
    citus_table: bool,
    /// The guard of Citus calls.
    citus_present: &'static str,
}

impl<'a> StagingSql<'a> {
    fn new(table: &'a SinkTable) -> StagingSql<'a> {
        let names = &table.names;
        let extras = staging_extra_columns();
        let staging_all: Vec<Column> = table.columns.iter().cloned().chain(extras).collect();
        let staging_columns: Vec<StagingColumn> = staging_all.iter().map(staging_column).collect();
        let key_columns: Vec<StagingColumn> = table
            .primary_key
            .iter()
            .filter_map(|k| table.columns.iter().find(|c| &c.name == k))
            .map(staging_column)
            .collect();
        let final_column = |c: &'a Column| FinalColumn {
            name: &c.name,
            select_expr: select_expr(c),
        };
        let is_key = |c: &&Column| table.primary_key.contains(&c.name);
        let tombstone_columns: Vec<Column> = key_columns
            .iter()
            .filter_map(|k| table.columns.iter().find(|c| c.name == k.name))
            .map(|c| Column {
                not_null: true,
                default: None,
                ..c.clone()
            })
            .chain(
                [
                    ("__source_ts_ms", PgType::BigInt, None),
                    ("__kafka_offset", PgType::BigInt, None),
                ]
                .into_iter()
                .chain([("__deleted_at", PgType::TimestampTz(None), Some("now()"))])
                .map(|(name, pg_type, default)| Column {
                    name: name.to_string(),
                    pg_type,
                    not_null: true,
                    default: default.map(str::to_string),
                    origin: ColumnOrigin::Metadata,
                }),
            )
            .collect();
        let mut keyless_condition = String::with_capacity(64);
        for (i, key) in table.primary_key.iter().enumerate() {
            if i > 0 {
                keyless_condition.push_str(" OR ");
            }
            keyless_condition.push_str("s.");
            push_ident(&mut keyless_condition, key);
            keyless_condition.push_str(" IS NULL");
        }
        let citus_key_filter = citus_key_filter(&key_columns);
        StagingSql {
            management: MANAGEMENT_SCHEMA,
            schema: &table.target_schema,
            table: &table.target_table,
            staging: &names.staging,
            tombstones: &names.tombstones,
            tombstones_index: crate::ident::derived_name("", &names.tombstones, "__deleted_at_idx"),
            merge_function: &names.merge_function,
            mark_trigger: MARK_TRIGGER,
            key: &table.primary_key,
            key_columns,
            staging_columns,
            columns: table.columns.iter().map(final_column).collect(),
            citus_columns: table
                .columns
                .iter()
                .map(|c| FinalColumn {
                    name: &c.name,
                    select_expr: match c.name.as_str() {
                        COL_SYNC_TIMESTAMP => "v_now".to_string(),
                        _ => select_expr(c),
                    },
                })
                .collect(),
            citus_key_filter,
            non_key_columns: table
                .columns
                .iter()
                .filter(|c| !is_key(c))
                .map(final_column)
                .collect(),
            staging_converge: converge_call(
                &table.target_schema,
                &names.staging,
                staging_all.iter().map(|c| (c, false)),
                &[],
            ),
            tombstones_converge: converge_call(
                &table.target_schema,
                &names.tombstones,
                tombstone_columns.iter().map(|c| (c, true)),
                &table.primary_key,
            ),
            keyless_condition,
            legacy_tombstones: qualified(MANAGEMENT_SCHEMA, "merge_tombstones"),
            lock_key: format!("cdc_merge:{}.{}", table.target_schema, table.target_table),
            staging_regclass: qualified(&table.target_schema, &names.staging),
            keyless_message: format!(
                "cdc: a primary-key column ({}) is NULL",
                table.primary_key.join(", ")
            ),
            tag: dollar_tag(table),
            soft_delete: table.soft_delete,
            default_batch: DEFAULT_MERGE_BATCH,
            distribute: super::distribution::distribute_staging(table),
            citus_table: table.distribution.is_citus_table(),
            citus_present: super::distribution::CITUS_PRESENT,
        }
    }
}

/// `s."k1" = (v_key ->> 0)::type AND ...`: the staged rows of the key in `v_key`, a JSON array
/// of the key's values in key order.
fn citus_key_filter(key_columns: &[StagingColumn]) -> String {
    let mut out = String::with_capacity(64 * key_columns.len());
    for (i, key) in key_columns.iter().enumerate() {
        if i > 0 {
            out.push_str(" AND ");
        }
        out.push_str("s.");
        push_ident(&mut out, &key.name);
        out.push_str(&format!(" = (v_key ->> {i})::{}", key.type_sql));
    }
    out
}

fn staging_column(column: &Column) -> StagingColumn {
    let type_sql = column.pg_type.sql();
    let definition = match &column.default {
        Some(default) => format!("{type_sql} DEFAULT {default}"),
        None => type_sql.clone(),
    };
    StagingColumn {
        name: column.name.clone(),
        definition,
        type_sql,
    }
}

/// `CALL converge_table(...)` of a staging-side table (extra columns allowed).
fn converge_call<'c>(
    schema: &str,
    table: &str,
    columns: impl Iterator<Item = (&'c Column, bool)>,
    primary_key: &[String],
) -> String {
    let mut out = String::with_capacity(2_048);
    push_converge(&mut out, schema, table, columns, primary_key, true);
    out
}

/// A dollar-quote tag that no name, type or default of the table contains.
fn dollar_tag(table: &SinkTable) -> String {
    let texts: Vec<&str> = [
        table.target_schema.as_str(),
        table.target_table.as_str(),
        table.names.staging.as_str(),
        table.names.tombstones.as_str(),
        table.names.merge_function.as_str(),
    ]
    .into_iter()
    .chain(table.columns.iter().map(|c| c.name.as_str()))
    .chain(table.columns.iter().filter_map(|c| c.default.as_deref()))
    .collect();
    let mut tag = "$cdc$".to_string();
    let mut n = 0u32;
    while texts.iter().any(|t| t.contains(&tag[..tag.len() - 1])) {
        n += 1;
        tag = format!("$cdc{n}$");
    }
    tag
}

/// What the merge inserts for one column: the staged value, a template
/// default for NULL, or the metadata the merge sets itself.
fn select_expr(column: &Column) -> String {
    let mut out = String::with_capacity(64);
    let staged = |out: &mut String, name: &str| {
        out.push_str("l.");
        push_ident(out, name);
    };
    match column.name.as_str() {
        COL_IS_DELETED => out.push_str("false"),
        COL_SYNC_TIMESTAMP => out.push_str("now()"),
        COL_OPERATION => {
            out.push_str("coalesce(");
            staged(&mut out, COL_OPERATION);
            out.push_str(", ");
            staged(&mut out, COL_DEBEZIUM_OP);
            out.push(')');
        }
        name => match (&column.default, column.origin) {
            (Some(default), ColumnOrigin::Template) => {
                out.push_str("coalesce(");
                staged(&mut out, name);
                out.push_str(", ");
                out.push_str(default);
                out.push(')');
            }
            _ => staged(&mut out, name),
        },
    }
    out
}
