//! Schema comparison shared by the diff (`cdc-build`) and the runtime's `verify_schema`: table shapes, change kinds, and the one comparison of an expected table with a found one.
//!
//! - [`TableShape`]: columns (types in PostgreSQL's canonical form, as
//!   `format_type()` prints them), nullability, defaults and the primary key;
//! - [`compare_tables`]: every [`Change`] from a found table (a generated
//!   file, the live catalog) to the expected one, each with its [`Severity`]
//!   and what apply does with it ([`ApplyAction`]), by the rules of
//!   `converge_table` ([`rules`]);
//! - [`converge`]: the expected shape read from a generated file's
//!   `converge_table(...)` call;
//! - [`live`]: the catalog query that reads a sink's tables in one round trip,
//!   and the comparison of what it finds (missing tables, staging tables,
//!   triggers and merge functions included).
//!
//! With the `serde` feature, the changes serialise as the CLI prints them.

pub mod converge;
pub mod lex;
pub mod live;
pub mod rules;

pub use rules::{is_safe_type_change, ApplyAction, Severity};

/// A column as a file declares it or the catalog has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShape {
    /// Column name, unquoted.
    pub name: String,
    /// Type in PostgreSQL's canonical form (`format_type()`).
    pub canonical: String,
    /// NOT NULL (or part of the primary key).
    pub not_null: bool,
    /// Default expression, whitespace normalised.
    pub default: Option<String>,
}

/// The shape of a table: its columns and its key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    /// Columns in declaration order.
    pub columns: Vec<ColumnShape>,
    /// Primary key columns in key order (empty: none).
    pub primary_key: Vec<String>,
}

/// The kind of a schema change (the spec's names, then the live-only findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "SCREAMING_SNAKE_CASE")
)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A table in the YAML with no generated file.
    TableAdded,
    /// A generated file whose table the YAML no longer has.
    TableRemoved,
    /// A column expected, not found.
    ColumnAdded,
    /// A column found, not expected.
    ColumnRemoved,
    /// A column whose type differs (canonical forms compared).
    ColumnTypeChanged,
    /// The primary key columns or their order differ.
    PrimaryKeyChanged,
    /// NOT NULL added or relaxed.
    NullabilityChanged,
    /// The column default differs.
    DefaultChanged,
    /// A column renamed in place (`renamed_from`).
    ColumnRenamed,
    /// Live only: the table is not in the database.
    TableMissing,
    /// Live only: the staging table is not in the database (or is not a table).
    StagingTableMissing,
    /// Live only: the staging table has no mark-for-merge trigger.
    StagingTriggerMissing,
    /// Live only: the merge function is not in the database.
    MergeFunctionMissing,
}

impl ChangeKind {
    /// The spec's upper-case name.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::TableAdded => "TABLE_ADDED",
            ChangeKind::TableRemoved => "TABLE_REMOVED",
            ChangeKind::ColumnAdded => "COLUMN_ADDED",
            ChangeKind::ColumnRemoved => "COLUMN_REMOVED",
            ChangeKind::ColumnTypeChanged => "COLUMN_TYPE_CHANGED",
            ChangeKind::PrimaryKeyChanged => "PRIMARY_KEY_CHANGED",
            ChangeKind::NullabilityChanged => "NULLABILITY_CHANGED",
            ChangeKind::DefaultChanged => "DEFAULT_CHANGED",
            ChangeKind::ColumnRenamed => "COLUMN_RENAMED",
            ChangeKind::TableMissing => "TABLE_MISSING",
            ChangeKind::StagingTableMissing => "STAGING_TABLE_MISSING",
            ChangeKind::StagingTriggerMissing => "STAGING_TRIGGER_MISSING",
            ChangeKind::MergeFunctionMissing => "MERGE_FUNCTION_MISSING",
        }
    }
}

/// One change from the found table to the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The column, for column changes.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub column: Option<String>,
    /// The old value (type, `NULL`/`NOT NULL`, default, key), as found.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub from: Option<String>,
    /// The new value, as expected.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub to: Option<String>,
    /// How much it matters.
    pub severity: Severity,
    /// What apply does with it.
    pub action: ApplyAction,
    /// Why, in a sentence, with the manual step when apply refuses.
    pub reason: String,
}

impl Change {
    /// A change with no column and no values.
    pub fn new(kind: ChangeKind, severity: Severity, action: ApplyAction, reason: &str) -> Change {
        Change {
            kind,
            column: None,
            from: None,
            to: None,
            severity,
            action,
            reason: reason.to_string(),
        }
    }

    /// The same change, about `name`.
    pub fn column(mut self, name: &str) -> Change {
        self.column = Some(name.to_string());
        self
    }

    /// The same change, with its old and new values.
    pub fn values(mut self, from: Option<String>, to: Option<String>) -> Change {
        self.from = from;
        self.to = to;
        self
    }
}

/// Whitespace collapsed to single spaces, as defaults are compared.
pub fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The change of a table expected and not found among the generated files.
pub fn table_added(target_exists: bool) -> Change {
    let reason = if target_exists {
        "the table is managed outside (target_exists): apply checks it and adds its missing columns"
    } else {
        "apply creates the table"
    };
    Change::new(
        ChangeKind::TableAdded,
        Severity::Info,
        ApplyAction::Automatic,
        reason,
    )
}

/// The change of a file whose table the YAML no longer has.
pub fn table_removed() -> Change {
    Change::new(
        ChangeKind::TableRemoved,
        Severity::Warning,
        ApplyAction::NotApplied,
        "generate removes its files, but apply never drops a table: drop it by hand once nothing reads it",
    )
}

fn nullability(not_null: bool) -> String {
    if not_null { "NOT NULL" } else { "NULL" }.to_string()
}

fn column_added(column: &ColumnShape) -> Change {
    let change = if column.not_null && column.default.is_none() {
        Change::new(
            ChangeKind::ColumnAdded,
            Severity::Breaking,
            ApplyAction::AutomaticUnlessData,
            "NOT NULL without a default: apply adds it to an empty table and refuses when the table has rows; give it a default_value, or add it by hand with a value for them (generate asks for --allow-breaking)",
        )
    } else {
        Change::new(
            ChangeKind::ColumnAdded,
            Severity::Info,
            ApplyAction::Automatic,
            "apply adds the column",
        )
    };
    change
        .column(&column.name)
        .values(None, Some(column.canonical.clone()))
}

fn column_changes(column: &ColumnShape, found: &ColumnShape, out: &mut Vec<Change>) {
    if found.canonical != column.canonical {
        let change = if is_safe_type_change(&found.canonical, &column.canonical) {
            Change::new(
                ChangeKind::ColumnTypeChanged,
                Severity::Warning,
                ApplyAction::Automatic,
                "a widening: apply alters the type and no value changes",
            )
        } else {
            Change::new(
                ChangeKind::ColumnTypeChanged,
                Severity::Breaking,
                ApplyAction::Refused,
                "a narrowing or incompatible type: apply refuses it; `cdc manage-migrations generate --allow-breaking` writes the explicit conversion (ALTER COLUMN ... TYPE ... USING ...) to review and apply",
            )
        };
        out.push(change.column(&column.name).values(
            Some(found.canonical.clone()),
            Some(column.canonical.clone()),
        ));
    }
    if found.not_null != column.not_null {
        let change = if column.not_null {
            Change::new(
                ChangeKind::NullabilityChanged,
                Severity::Breaking,
                ApplyAction::AutomaticUnlessData,
                "NOT NULL added: apply sets it when the column holds no NULLs and refuses otherwise; `cdc manage-migrations generate --allow-breaking` writes a migration that fills NULLs with the default (or stops on them)",
            )
        } else {
            Change::new(
                ChangeKind::NullabilityChanged,
                Severity::Info,
                ApplyAction::Automatic,
                "NOT NULL relaxed: apply drops the constraint",
            )
        };
        out.push(change.column(&column.name).values(
            Some(nullability(found.not_null)),
            Some(nullability(column.not_null)),
        ));
    }
    if found.default != column.default {
        out.push(
            Change::new(
                ChangeKind::DefaultChanged,
                Severity::Warning,
                ApplyAction::NotApplied,
                "apply leaves the default of an existing column as it is: ALTER COLUMN ... SET DEFAULT (or DROP DEFAULT) by hand; new rows from CDC carry their values",
            )
            .column(&column.name)
            .values(found.default.clone(), column.default.clone()),
        );
    }
}

/// Every change from the `found` table to the `expected` one: columns in
/// expected order, then columns found and not expected, then the key.
/// `keep_extra_columns` (a `target_exists` table) makes an extra column a
/// warning that apply leaves alone instead of a refused removal.
pub fn compare_tables(
    expected: &TableShape,
    found: &TableShape,
    keep_extra_columns: bool,
) -> Vec<Change> {
    compare_renamed_tables(expected, found, keep_extra_columns, &[])
}

/// [`compare_tables`] with the expected table's renames, `(from, to)` pairs
/// (`renamed_from`): a column found under its old name, whose new name is not
/// found yet, is a `COLUMN_RENAMED` (then compared as the same column), not a
/// removal and an addition; the found key is read with the new names.
pub fn compare_renamed_tables(
    expected: &TableShape,
    found: &TableShape,
    keep_extra_columns: bool,
    renames: &[(&str, &str)],
) -> Vec<Change> {
    let has = |name: &str| found.columns.iter().any(|c| c.name == name);
    // The old name a column is still found under, if it is renamed.
    let renamed_from = |name: &str| {
        renames
            .iter()
            .find(|(_, to)| *to == name)
            .map(|(from, _)| *from)
            .filter(|from| has(from) && !has(name))
    };
    let mut changes = Vec::new();
    for column in &expected.columns {
        let old = renamed_from(&column.name);
        if let Some(old) = old {
            changes.push(
                Change::new(
                    ChangeKind::ColumnRenamed,
                    Severity::Info,
                    ApplyAction::Automatic,
                    "renamed_from: apply renames the column in place (final, staging and tombstone tables), keeping its data",
                )
                .column(&column.name)
                .values(Some(old.to_string()), Some(column.name.clone())),
            );
        }
        let name = old.unwrap_or(&column.name);
        match found.columns.iter().find(|c| c.name == name) {
            None => changes.push(column_added(column)),
            Some(found) => column_changes(column, found, &mut changes),
        }
    }
    let renamed: Vec<&str> = expected
        .columns
        .iter()
        .filter_map(|c| renamed_from(&c.name))
        .collect();
    for column in &found.columns {
        if expected.columns.iter().any(|c| c.name == column.name)
            || renamed.contains(&column.name.as_str())
        {
            continue;
        }
        let change = if keep_extra_columns {
            Change::new(
                ChangeKind::ColumnRemoved,
                Severity::Warning,
                ApplyAction::NotApplied,
                "the table is managed outside (target_exists): apply leaves extra columns as they are",
            )
        } else {
            Change::new(
                ChangeKind::ColumnRemoved,
                Severity::Breaking,
                ApplyAction::Refused,
                "apply refuses a column dropped from the YAML: `cdc manage-migrations generate --allow-breaking` writes the explicit DROP COLUMN (once nothing reads it), or add it back",
            )
        };
        changes.push(
            change
                .column(&column.name)
                .values(Some(column.canonical.clone()), None),
        );
    }
    let found_key: Vec<String> = found
        .primary_key
        .iter()
        .map(|k| {
            expected
                .columns
                .iter()
                .find(|c| renamed_from(&c.name) == Some(k.as_str()))
                .map_or_else(|| k.clone(), |c| c.name.clone())
        })
        .collect();
    if found_key != expected.primary_key {
        let key = |columns: &[String]| format!("({})", columns.join(", "));
        changes.push(
            Change::new(
                ChangeKind::PrimaryKeyChanged,
                Severity::Breaking,
                ApplyAction::Refused,
                "apply refuses a changed primary key: `cdc manage-migrations generate --allow-breaking` writes a migration that checks for NULL and duplicate keys, then changes it",
            )
            .values(Some(key(&found_key)), Some(key(&expected.primary_key))),
        );
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> ColumnShape {
        ColumnShape {
            name: name.into(),
            canonical: "integer".into(),
            not_null: true,
            default: None,
        }
    }

    fn shape(columns: &[&str], key: &[&str]) -> TableShape {
        TableShape {
            columns: columns.iter().map(|c| column(c)).collect(),
            primary_key: key.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn kinds(changes: Vec<Change>) -> Vec<(ChangeKind, Option<String>)> {
        changes.into_iter().map(|c| (c.kind, c.column)).collect()
    }

    #[test]
    fn a_declared_rename_is_one_change_and_keeps_the_key() {
        let expected = shape(&["Id", "New"], &["Id", "New"]);
        let found = shape(&["Id", "Old"], &["Id", "Old"]);
        assert_eq!(
            kinds(compare_renamed_tables(
                &expected,
                &found,
                false,
                &[("Old", "New")]
            )),
            vec![(ChangeKind::ColumnRenamed, Some("New".into()))]
        );
        // Without the rename: an addition, a removal and a new key.
        assert_eq!(
            kinds(compare_tables(&expected, &found, false)),
            vec![
                (ChangeKind::ColumnAdded, Some("New".into())),
                (ChangeKind::ColumnRemoved, Some("Old".into())),
                (ChangeKind::PrimaryKeyChanged, None),
            ]
        );
        // Once renamed, the rename is no change.
        assert_eq!(
            kinds(compare_renamed_tables(
                &expected,
                &expected,
                false,
                &[("Old", "New")]
            )),
            vec![]
        );
    }
}
