//! Compares one sink table as the YAML describes it with the table its generated file declares, change by change.

use serde::Serialize;

use super::ddl::{FileColumn, FileTable};
use super::rules::{is_safe_type_change, ApplyAction, Severity};
use crate::columns::Column;
use crate::project::SinkTable;

/// The kind of a schema change (the spec's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    /// A table in the YAML with no generated file.
    TableAdded,
    /// A generated file whose table the YAML no longer has.
    TableRemoved,
    /// A column in the YAML, not in the file.
    ColumnAdded,
    /// A column in the file, not in the YAML.
    ColumnRemoved,
    /// A column whose type differs (canonical forms compared).
    ColumnTypeChanged,
    /// The primary key columns or their order differ.
    PrimaryKeyChanged,
    /// NOT NULL added or relaxed.
    NullabilityChanged,
    /// The column default differs.
    DefaultChanged,
    /// A column the YAML declares `renamed_from` a name the file has.
    ColumnRenamed,
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
        }
    }
}

/// One change from the generated file to the YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The column, for column changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The old value (type, `NULL`/`NOT NULL`, default, key), as the file has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The new value, as the YAML has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// How much it matters.
    pub severity: Severity,
    /// What apply does with it.
    pub action: ApplyAction,
    /// Why, in a sentence, with the manual step when apply refuses.
    pub reason: String,
}

impl Change {
    fn new(kind: ChangeKind, severity: Severity, action: ApplyAction, reason: &str) -> Change {
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

    fn column(mut self, name: &str) -> Change {
        self.column = Some(name.to_string());
        self
    }

    fn values(mut self, from: Option<String>, to: Option<String>) -> Change {
        self.from = from;
        self.to = to;
        self
    }
}

/// The change of a table the YAML has and no file declares.
pub fn table_added(table: &SinkTable) -> Change {
    let reason = if table.target_exists {
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

fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn column_added(column: &Column, canonical: String) -> Change {
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
    change.column(&column.name).values(None, Some(canonical))
}

fn column_changes(column: &Column, canonical: String, found: &FileColumn, out: &mut Vec<Change>) {
    if found.canonical != canonical {
        let change = if is_safe_type_change(&found.canonical, &canonical) {
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
        out.push(
            change
                .column(&column.name)
                .values(Some(found.canonical.clone()), Some(canonical)),
        );
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
    let default = column.default.as_deref().map(normalised);
    if found.default != default {
        out.push(
            Change::new(
                ChangeKind::DefaultChanged,
                Severity::Warning,
                ApplyAction::NotApplied,
                "apply leaves the default of an existing column as it is: ALTER COLUMN ... SET DEFAULT (or DROP DEFAULT) by hand; new rows from CDC carry their values",
            )
            .column(&column.name)
            .values(found.default.clone(), default),
        );
    }
}

/// Every change from the table a file declares to the table the YAML describes.
pub fn compare_table(expected: &SinkTable, found: &FileTable) -> Vec<Change> {
    let mut changes = Vec::new();
    // Old names the file has under a column the YAML renames (and whose new
    // name the file does not have yet): the table file renames them in place.
    let renamed_from = |name: &str| {
        expected
            .renames
            .iter()
            .find(|r| r.to == name)
            .map(|r| r.from.as_str())
            .filter(|from| found.columns.iter().any(|c| c.name == *from))
            .filter(|_| !found.columns.iter().any(|c| c.name == name))
    };
    for column in &expected.columns {
        let canonical = column.pg_type.canonical();
        let old = renamed_from(&column.name);
        if let Some(old) = old {
            changes.push(
                Change::new(
                    ChangeKind::ColumnRenamed,
                    Severity::Info,
                    ApplyAction::Automatic,
                    "renamed_from: apply renames the column in place (final and staging table), keeping its data",
                )
                .column(&column.name)
                .values(Some(old.to_string()), Some(column.name.clone())),
            );
        }
        let name = old.unwrap_or(&column.name);
        match found.columns.iter().find(|c| c.name == name) {
            None => changes.push(column_added(column, canonical)),
            Some(found) => column_changes(column, canonical, found, &mut changes),
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
        let change = if expected.target_exists {
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
    use crate::diff::ddl::read_table_file;
    use crate::{load_project, Filter};

    /// The bundled `Invoice` table as the YAML describes it, and its committed file.
    fn invoice() -> (SinkTable, String) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = load_project(&root, &Filter::default()).unwrap();
        let table = project
            .sinks()
            .flat_map(|s| s.tables.iter())
            .find(|t| t.target_table == "Invoice")
            .unwrap()
            .clone();
        let file = include_str!("../../../migrations/sink_asma.billing/01-tables/Invoice.sql");
        (table, file.to_string())
    }

    fn changes_for(file: &str) -> Vec<(ChangeKind, Severity, ApplyAction)> {
        let (table, _) = invoice();
        compare_table(&table, &read_table_file(file).unwrap())
            .into_iter()
            .map(|c| (c.kind, c.severity, c.action))
            .collect()
    }

    #[test]
    fn the_committed_file_matches_its_yaml() {
        let (table, file) = invoice();
        assert_eq!(
            compare_table(&table, &read_table_file(&file).unwrap()),
            vec![]
        );
    }

    #[test]
    fn severities_and_actions_follow_converge_table() {
        use ApplyAction::*;
        use ChangeKind::*;
        use Severity::*;
        let (_, file) = invoice();
        let edited = |from: &str, to: &str| {
            assert!(file.contains(from), "{from}");
            file.replacen(from, to, 1)
        };
        // The file had a narrower column: the YAML widens it.
        assert_eq!(
            changes_for(&edited("\"Number\" varchar(20)", "\"Number\" varchar(10)")),
            vec![(ColumnTypeChanged, Warning, Automatic)]
        );
        // The file had a wider column: the YAML narrows it.
        assert_eq!(
            changes_for(&edited("\"Number\" varchar(20)", "\"Number\" text")),
            vec![(ColumnTypeChanged, Breaking, Refused)]
        );
        assert_eq!(
            changes_for(&edited("\"InvoiceId\" bigint", "\"InvoiceId\" int4")),
            vec![(ColumnTypeChanged, Warning, Automatic)]
        );
        // The YAML adds NOT NULL / relaxes it.
        assert_eq!(
            changes_for(&edited(
                "\"CustomerId\" uuid NOT NULL",
                "\"CustomerId\" uuid"
            )),
            vec![(NullabilityChanged, Breaking, AutomaticUnlessData)]
        );
        assert_eq!(
            changes_for(&edited(
                "\"_customer_id\" uuid,",
                "\"_customer_id\" uuid NOT NULL,"
            )),
            vec![(NullabilityChanged, Info, Automatic)]
        );
        // A NOT NULL column without default is new; a nullable one is new.
        assert_eq!(
            changes_for(&edited("    \"CustomerId\" uuid NOT NULL,\n", "")),
            vec![(ColumnAdded, Breaking, AutomaticUnlessData)]
        );
        assert_eq!(
            changes_for(&edited("    \"_customer_id\" uuid,\n", "")),
            vec![(ColumnAdded, Info, Automatic)]
        );
        // A column the YAML no longer has; a changed default; a changed key.
        assert_eq!(
            changes_for(&edited(
                "    \"__source\" text,\n",
                "    \"__source\" text,\n    \"Old\" text,\n"
            )),
            vec![(ColumnRemoved, Breaking, Refused)]
        );
        assert_eq!(
            changes_for(&edited(
                "DEFAULT false NOT NULL,\n    \"_customer_id\"",
                "DEFAULT true NOT NULL,\n    \"_customer_id\""
            )),
            vec![(DefaultChanged, Warning, NotApplied)]
        );
        assert_eq!(
            changes_for(&edited(
                "PRIMARY KEY (\"InvoiceId\")",
                "PRIMARY KEY (\"InvoiceId\", \"Number\")"
            )),
            vec![(PrimaryKeyChanged, Breaking, Refused)]
        );
    }

    /// The Invoice YAML with `from` renamed `to` (declared `renamed_from` when `declared`).
    fn renamed(from: &str, to: &str, declared: bool) -> SinkTable {
        let (mut table, _) = invoice();
        for column in &mut table.columns {
            if column.name == from {
                column.name = to.to_string();
            }
        }
        for key in &mut table.primary_key {
            if key == from {
                *key = to.to_string();
            }
        }
        if declared {
            table.renames.push(crate::project::ColumnRename {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        table
    }

    fn kinds(table: &SinkTable, file: &str) -> Vec<(ChangeKind, Option<String>, Severity)> {
        compare_table(table, &read_table_file(file).unwrap())
            .into_iter()
            .map(|c| (c.kind, c.column, c.severity))
            .collect()
    }

    #[test]
    fn a_declared_rename_is_one_change_not_a_removal_and_an_addition() {
        let (_, file) = invoice();
        let name = |n: &str| Some(n.to_string());
        assert_eq!(
            kinds(&renamed("Number", "InvoiceNumber", true), &file),
            vec![(
                ChangeKind::ColumnRenamed,
                name("InvoiceNumber"),
                Severity::Info
            )]
        );
        let change = &compare_table(
            &renamed("Number", "InvoiceNumber", true),
            &read_table_file(&file).unwrap(),
        )[0];
        assert_eq!(
            (change.from.as_deref(), change.to.as_deref(), change.action),
            (
                Some("Number"),
                Some("InvoiceNumber"),
                ApplyAction::Automatic
            )
        );
        // A renamed key column does not change the key.
        assert_eq!(
            kinds(&renamed("InvoiceId", "Id", true), &file),
            vec![(ChangeKind::ColumnRenamed, name("Id"), Severity::Info)]
        );
        // Undeclared, the same edit is a removal and an addition (and a key change).
        assert_eq!(
            kinds(&renamed("Number", "InvoiceNumber", false), &file),
            vec![
                (
                    ChangeKind::ColumnAdded,
                    name("InvoiceNumber"),
                    Severity::Breaking
                ),
                (
                    ChangeKind::ColumnRemoved,
                    name("Number"),
                    Severity::Breaking
                ),
            ]
        );
        // A rename and a type change of the same column: both are reported.
        let widened = file.replace("\"Number\" varchar(20)", "\"Number\" varchar(10)");
        assert_eq!(
            kinds(&renamed("Number", "InvoiceNumber", true), &widened),
            vec![
                (
                    ChangeKind::ColumnRenamed,
                    name("InvoiceNumber"),
                    Severity::Info
                ),
                (
                    ChangeKind::ColumnTypeChanged,
                    name("InvoiceNumber"),
                    Severity::Warning
                ),
            ]
        );
    }

    #[test]
    fn a_rename_whose_old_name_the_file_lacks_changes_nothing() {
        let (mut table, file) = invoice();
        table.renames.push(crate::project::ColumnRename {
            from: "Ghost".into(),
            to: "Number".into(),
        });
        assert_eq!(kinds(&table, &file), vec![]);
        // Both names in the file: nothing is renamed; the old column is extra.
        let both = file.replace(
            "    \"Paid\" boolean",
            "    \"Ghost\" varchar(20),\n    \"Paid\" boolean",
        );
        assert_eq!(
            kinds(&table, &both),
            vec![(
                ChangeKind::ColumnRemoved,
                Some("Ghost".to_string()),
                Severity::Breaking
            )]
        );
    }

    #[test]
    fn a_target_exists_table_keeps_extra_columns() {
        let (mut table, file) = invoice();
        table.target_exists = true;
        table.columns.retain(|c| c.name != "_customer_id");
        let changes = compare_table(&table, &read_table_file(&file).unwrap());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::ColumnRemoved);
        assert_eq!(changes[0].severity, Severity::Warning);
        assert_eq!(changes[0].action, ApplyAction::NotApplied);
    }
}
