//! Compares one sink table as the YAML describes it with the table its generated file declares, through cdc-core's one comparison.
//!
//! The change types and the comparison itself live in [`cdc_core::schema`],
//! where the live diff and the runtime's `verify_schema` share them; this
//! module turns a [`SinkTable`] into the expected [`TableShape`].

use cdc_core::schema::{compare_renamed_tables, normalised, ColumnShape, TableShape};
pub use cdc_core::schema::{Change, ChangeKind};

use super::ddl::FileTable;
use crate::project::SinkTable;

/// The shape the YAML gives a sink table: canonical types, defaults normalised.
pub fn expected_shape(table: &SinkTable) -> TableShape {
    TableShape {
        columns: table
            .columns
            .iter()
            .map(|column| ColumnShape {
                name: column.name.clone(),
                canonical: column.pg_type.canonical(),
                not_null: column.not_null,
                default: column.default.as_deref().map(normalised),
            })
            .collect(),
        primary_key: table.primary_key.clone(),
    }
}

/// The change of a table the YAML has and no file declares.
pub fn table_added(table: &SinkTable) -> Change {
    cdc_core::schema::table_added(table.target_exists)
}

/// The change of a file whose table the YAML no longer has.
pub fn table_removed() -> Change {
    cdc_core::schema::table_removed()
}

/// Every change from the table a file declares to the table the YAML describes; a column
/// declared `renamed_from` a name the file has is `COLUMN_RENAMED`.
pub fn compare_table(expected: &SinkTable, found: &FileTable) -> Vec<Change> {
    let renames: Vec<(&str, &str)> = expected
        .renames
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str()))
        .collect();
    compare_renamed_tables(
        &expected_shape(expected),
        found,
        expected.target_exists,
        &renames,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::ddl::read_table_file;
    use crate::diff::{ApplyAction, Severity};
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
