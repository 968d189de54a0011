//! The live diff, IO-free: what the YAML expects of a sink's database (from the model's names) and the report built from what the catalog holds.
//!
//! The caller (`cdc manage-migrations diff --env E`) runs cdc-core's
//! [`CATALOG_QUERY`](cdc_core::schema::live::CATALOG_QUERY) once per sink
//! with the parameters of [`expected_tables`], through the runtime's
//! `read_catalog`, and hands the rows to [`live_sink_diff`]; the comparison is
//! cdc-core's, the one the file diff and `verify_schema` use.

use cdc_core::schema::live::{compare_live, ExpectedTable, LiveTable, StagingNames};

use super::compare::expected_shape;
use super::{DiffAgainst, DiffReport, SinkDiff, TableDiff};
use crate::project::{Sink, SinkTable, MARK_TRIGGER};

/// How a sink table should be in the database: its shape, and its staging
/// table, trigger and merge function when it has a primary key.
pub fn expected_table(table: &SinkTable) -> ExpectedTable {
    ExpectedTable {
        schema: table.target_schema.clone(),
        table: table.target_table.clone(),
        shape: expected_shape(table),
        keep_extra_columns: table.target_exists,
        staging: table.has_staging().then(|| StagingNames {
            table: table.names.staging.clone(),
            trigger: MARK_TRIGGER.to_string(),
            merge_function: table.names.merge_function.clone(),
        }),
    }
}

/// The sink's tables (or only `only`) as the YAML expects them, in sink order.
pub fn expected_tables<'a>(
    sink: &'a Sink,
    only: Option<&str>,
) -> Vec<(&'a SinkTable, ExpectedTable)> {
    sink.tables
        .iter()
        .filter(|t| only.is_none_or(|only| only == t.target_table))
        .map(|t| (t, expected_table(t)))
        .collect()
}

/// The changed tables of a sink, from what the catalog holds for each
/// expected table (`live[i]` answers `expected[i]`).
pub fn live_sink_diff(
    sink: &Sink,
    expected: &[(&SinkTable, ExpectedTable)],
    live: &[LiveTable],
) -> SinkDiff {
    let mut tables: Vec<TableDiff> = expected
        .iter()
        .zip(live)
        .map(|((table, expected), live)| TableDiff {
            table: table.target_table.clone(),
            file: table.names.table_file.clone(),
            changes: compare_live(expected, live),
        })
        .filter(|t| !t.changes.is_empty())
        .collect();
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    SinkDiff {
        sink: sink.name.clone(),
        tables,
    }
}

/// The live report of the environment `env` from each sink's diff (unchanged sinks left out).
pub fn live_report(env: &str, sinks: Vec<SinkDiff>) -> DiffReport {
    let mut sinks: Vec<SinkDiff> = sinks.into_iter().filter(|s| !s.tables.is_empty()).collect();
    sinks.sort_by(|a, b| a.sink.cmp(&b.sink));
    DiffReport {
        against: DiffAgainst::Database(env.to_string()),
        sinks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_project, Filter};
    use cdc_core::schema::ChangeKind;

    #[test]
    fn names_come_from_the_model_and_a_lost_table_is_missing() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = load_project(&root, &Filter::default()).unwrap();
        let sink = project
            .sinks()
            .find(|s| s.tables.iter().any(|t| t.target_table == "Invoice"))
            .unwrap();
        let expected = expected_tables(sink, Some("Invoice"));
        assert_eq!(expected.len(), 1);
        let staging = expected[0].1.staging.as_ref().unwrap();
        assert_eq!(staging.table, expected[0].0.names.staging);
        assert_eq!(staging.merge_function, expected[0].0.names.merge_function);
        assert_eq!(staging.trigger, MARK_TRIGGER);
        let diff = live_sink_diff(sink, &expected, &[LiveTable::default()]);
        assert_eq!(diff.tables.len(), 1);
        assert_eq!(diff.tables[0].changes[0].kind, ChangeKind::TableMissing);
        let found = LiveTable {
            shape: Some(expected[0].1.shape.clone()),
            staging_kind: Some("r".into()),
            trigger_exists: true,
            merge_function_exists: true,
        };
        assert!(live_sink_diff(sink, &expected, &[found]).tables.is_empty());
    }
}
