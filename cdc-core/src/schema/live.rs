//! The live side of the comparison: the catalog query that reads every table of a sink in one round trip, and the comparison of what it finds with the expected tables.
//!
//! The query is IO-free text with bound parameters ([`CATALOG_QUERY`],
//! [`catalog_params`]); a driver (the runtime's `verify_schema`, the CLI's
//! `diff --env`) runs it and turns each row into a [`LiveTable`];
//! [`compare_live`] then reports the same changes as the file diff
//! ([`compare_tables`]) plus what only a database can lack: the table, its
//! staging table, the staging trigger, the merge function.

use super::{compare_tables, normalised, ApplyAction, Change, ChangeKind, Severity, TableShape};
use crate::layout::MANAGEMENT_SCHEMA;

/// Reads a sink's tables from the catalog: `pg_attribute`/`format_type`,
/// `pg_attrdef`/`pg_get_expr`, `pg_index` for the primary key, `pg_class` for
/// the staging table, `pg_trigger`, `pg_proc`. Its parameters are
/// [`catalog_params`]; it returns one row per table, in order, with the
/// columns `ord, table_exists, names, types, not_nulls, defaults, primary_key,
/// staging_kind, trigger_exists, merge_function_exists`.
pub const CATALOG_QUERY: &str = include_str!("catalog.sql");

/// The objects that carry a table's changes to it: staging table, its trigger, the merge function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingNames {
    /// The staging table (same schema as the table).
    pub table: String,
    /// The statement trigger on the staging table that marks it for merging.
    pub trigger: String,
    /// The merge function (same schema as the table).
    pub merge_function: String,
}

/// A table as the migrations expect it in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTable {
    /// Target schema.
    pub schema: String,
    /// Target table.
    pub table: String,
    /// Columns and key.
    pub shape: TableShape,
    /// Extra columns are left alone (`target_exists`).
    pub keep_extra_columns: bool,
    /// Staging objects, for tables with a primary key.
    pub staging: Option<StagingNames>,
}

/// The five `text[]` parameters of [`CATALOG_QUERY`] for these tables.
pub fn catalog_params(expected: &[ExpectedTable]) -> [Vec<&str>; 5] {
    let mut params: [Vec<&str>; 5] = Default::default();
    for table in expected {
        let staging = table.staging.as_ref();
        params[0].push(&table.schema);
        params[1].push(&table.table);
        params[2].push(staging.map_or("", |s| s.table.as_str()));
        params[3].push(staging.map_or("", |s| s.merge_function.as_str()));
        params[4].push(staging.map_or("", |s| s.trigger.as_str()));
    }
    params
}

/// What the catalog holds for one expected table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveTable {
    /// The table's shape; `None` when there is no such table.
    pub shape: Option<TableShape>,
    /// `pg_class.relkind` of the relation named like the staging table, if any.
    pub staging_kind: Option<String>,
    /// The staging trigger is on the staging table.
    pub trigger_exists: bool,
    /// A function named like the merge function is in the schema.
    pub merge_function_exists: bool,
}

/// One column as a catalog row gives it, before normalising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// `attname`.
    pub name: String,
    /// `format_type(atttypid, atttypmod)`.
    pub canonical: String,
    /// `attnotnull`.
    pub not_null: bool,
    /// `pg_get_expr(adbin, adrelid)`.
    pub default: Option<String>,
}

/// A table's shape from its catalog columns and key, defaults normalised.
pub fn shape_from_catalog(columns: Vec<CatalogColumn>, primary_key: Vec<String>) -> TableShape {
    TableShape {
        columns: columns
            .into_iter()
            .map(|c| super::ColumnShape {
                name: c.name,
                canonical: c.canonical,
                not_null: c.not_null,
                default: c.default.as_deref().map(comparable_default),
            })
            .collect(),
        primary_key,
    }
}

/// A default in the form both sides compare in: whitespace collapsed, and the
/// cast PostgreSQL adds to a literal dropped (`'x'::character varying` → `'x'`,
/// `'-1'::integer` → `-1`).
pub fn comparable_default(text: &str) -> String {
    let text = normalised(text);
    if !text.starts_with('\'') {
        return text;
    }
    let Some(close) = text.rfind("'::") else {
        return text;
    };
    if text[close + 3..].contains('\'') {
        return text;
    }
    let literal = &text[..=close];
    let inner = &literal[1..literal.len() - 1];
    if inner.replace("''", "").contains('\'') {
        // Not one literal: `'a'::text || 'b'::text`.
        return text;
    }
    if inner.parse::<f64>().is_ok() {
        return inner.to_string();
    }
    literal.to_string()
}

fn missing(kind: ChangeKind, what: &str, file: &str) -> Change {
    let reason = format!(
        "{what} is not in the database: apply creates it while its {file} is pending; once the file is recorded as applied apply skips it (delete its row from {MANAGEMENT_SCHEMA}.migration_history, then apply)"
    );
    Change::new(kind, Severity::Breaking, ApplyAction::NotApplied, &reason)
}

/// Every change from what the catalog holds to the expected table.
pub fn compare_live(expected: &ExpectedTable, live: &LiveTable) -> Vec<Change> {
    let Some(found) = &live.shape else {
        return vec![missing(ChangeKind::TableMissing, "the table", "table file")];
    };
    let mut wanted = expected.shape.clone();
    for column in &mut wanted.columns {
        column.default = column.default.as_deref().map(comparable_default);
    }
    let mut changes = compare_tables(&wanted, found, expected.keep_extra_columns);
    if let Some(staging) = &expected.staging {
        match live.staging_kind.as_deref() {
            Some("r") if !live.trigger_exists => changes.push(
                missing(
                    ChangeKind::StagingTriggerMissing,
                    "the staging trigger",
                    "staging file",
                )
                .values(None, Some(staging.trigger.clone())),
            ),
            Some("r") => {}
            other => changes.push(
                missing(
                    ChangeKind::StagingTableMissing,
                    "the staging table",
                    "staging file",
                )
                .values(
                    other.map(|kind| format!("relkind {kind}")),
                    Some(staging.table.clone()),
                ),
            ),
        }
        if !live.merge_function_exists {
            changes.push(
                missing(
                    ChangeKind::MergeFunctionMissing,
                    "the merge function",
                    "staging file",
                )
                .values(None, Some(staging.merge_function.clone())),
            );
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnShape;

    fn expected() -> ExpectedTable {
        ExpectedTable {
            schema: "app".into(),
            table: "T".into(),
            shape: TableShape {
                columns: vec![ColumnShape {
                    name: "Id".into(),
                    canonical: "integer".into(),
                    not_null: true,
                    default: Some("'x'".into()),
                }],
                primary_key: vec!["Id".into()],
            },
            keep_extra_columns: false,
            staging: Some(StagingNames {
                table: "stg_T".into(),
                trigger: "mark".into(),
                merge_function: "sp_merge_T".into(),
            }),
        }
    }

    fn live() -> LiveTable {
        LiveTable {
            shape: Some(shape_from_catalog(
                vec![CatalogColumn {
                    name: "Id".into(),
                    canonical: "integer".into(),
                    not_null: true,
                    default: Some("'x'::text".into()),
                }],
                vec!["Id".into()],
            )),
            staging_kind: Some("r".into()),
            trigger_exists: true,
            merge_function_exists: true,
        }
    }

    fn kinds(live: &LiveTable) -> Vec<ChangeKind> {
        compare_live(&expected(), live)
            .into_iter()
            .map(|c| c.kind)
            .collect()
    }

    #[test]
    fn a_matching_table_has_no_change() {
        assert_eq!(kinds(&live()), vec![]);
    }

    #[test]
    fn missing_objects_are_found() {
        let absent = LiveTable::default();
        assert_eq!(kinds(&absent), vec![ChangeKind::TableMissing]);
        let mut no_staging = live();
        no_staging.staging_kind = None;
        no_staging.trigger_exists = false;
        no_staging.merge_function_exists = false;
        assert_eq!(
            kinds(&no_staging),
            vec![
                ChangeKind::StagingTableMissing,
                ChangeKind::MergeFunctionMissing
            ]
        );
        let mut a_view = live();
        a_view.staging_kind = Some("v".into());
        assert_eq!(kinds(&a_view), vec![ChangeKind::StagingTableMissing]);
        let mut no_trigger = live();
        no_trigger.trigger_exists = false;
        assert_eq!(kinds(&no_trigger), vec![ChangeKind::StagingTriggerMissing]);
    }

    #[test]
    fn literal_casts_are_dropped_from_defaults() {
        for (catalog, comparable) in [
            ("'x'::character varying", "'x'"),
            ("'it''s'::text", "'it''s'"),
            ("'-1'::integer", "-1"),
            ("'1.5'::numeric", "1.5"),
            ("now()", "now()"),
            ("false", "false"),
            ("nextval('s'::regclass)", "nextval('s'::regclass)"),
            ("'a'::text || 'b'::text", "'a'::text || 'b'::text"),
        ] {
            assert_eq!(comparable_default(catalog), comparable, "{catalog}");
        }
    }
}
