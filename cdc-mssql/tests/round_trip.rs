//! A saved table YAML is what cdc-build's loader reads: the loader resolves it to
//! the same columns, and load → save gives the same bytes.

use std::path::Path;

use cdc_build::columns::ColumnOrigin;
use cdc_build::model::RawTable;
use cdc_build::types::{MssqlType, TypeMapping};
use cdc_build::{load_project, Filter};
use cdc_mssql::catalog::{tables_from_rows, CatalogRow};
use cdc_mssql::inspect::{read_table_yaml, save_tables};
use cdc_mssql::table_yaml::{from_raw_table, render_table_yaml, TableYaml};

fn recorded_tables() -> Vec<TableYaml> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog/catalog_rows.json");
    let rows: Vec<CatalogRow> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    tables_from_rows(&rows, Some("Directory"), Some("directory")).unwrap()
}

fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A project whose one service reads every recorded table into one sink.
fn write_project(root: &Path, tables: &[TableYaml]) {
    let mut service = String::from("directory:\n  source:\n    tables:\n");
    for t in tables {
        service.push_str(&format!(
            "      {}: {{}}\n",
            single_quoted(&format!("{}.{}", t.schema, t.table))
        ));
    }
    service.push_str("  sinks:\n    sink_test.directory:\n      databases: {dev: directory_dev}\n      tables:\n");
    for t in tables {
        service.push_str(&format!(
            "        {}: {{from: {}}}\n",
            single_quoted(&format!("directory.{}", t.table)),
            single_quoted(&format!("{}.{}", t.schema, t.table))
        ));
    }
    std::fs::create_dir_all(root.join("services")).unwrap();
    std::fs::write(root.join("services/directory.yaml"), service).unwrap();
    let saved = save_tables(root, "directory", tables).unwrap();
    assert!(saved.iter().all(|s| s.written));
}

#[test]
fn load_then_save_gives_the_same_bytes() {
    for table in recorded_tables() {
        let text = render_table_yaml(&table);
        let raw: RawTable = cdc_build::yaml::parse_yaml(Path::new("t.yaml"), &text)
            .unwrap_or_else(|d| panic!("{}: {d}\n{text}", table.table));
        let again = from_raw_table(&raw);
        assert_eq!(again, table);
        assert_eq!(render_table_yaml(&again), text);
    }
}

#[test]
fn the_loader_reads_saved_files_to_the_same_columns() {
    let dir = tempfile::tempdir().unwrap();
    let tables = recorded_tables();
    write_project(dir.path(), &tables);
    let project = load_project(dir.path(), &Filter::default()).unwrap();
    let sink = project.sinks().next().expect("one sink");
    assert_eq!(sink.tables.len(), tables.len());
    let mapping = TypeMapping::default();
    for table in &tables {
        let loaded = sink
            .tables
            .iter()
            .find(|t| t.source_table == table.table)
            .unwrap_or_else(|| panic!("{} not loaded", table.table));
        let source: Vec<_> = loaded
            .columns
            .iter()
            .filter(|c| c.origin == ColumnOrigin::Source)
            .collect();
        assert_eq!(source.len(), table.columns.len(), "{}", table.table);
        for (column, written) in source.iter().zip(&table.columns) {
            assert_eq!(column.name, written.name);
            assert_eq!(column.not_null, !written.nullable, "{}", written.name);
            let ty = MssqlType::from_parts(
                &written.type_name,
                written.max_length,
                written.precision,
                written.scale,
            )
            .unwrap();
            assert_eq!(
                column.pg_type,
                mapping.map(&ty).unwrap().pg,
                "{}",
                written.name
            );
        }
        let key: Vec<&str> = loaded.primary_key.iter().map(String::as_str).collect();
        assert_eq!(key, table.key_columns(), "{}", table.table);
    }
}

#[test]
fn saving_again_leaves_unchanged_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let tables = recorded_tables();
    write_project(dir.path(), &tables);
    let again = save_tables(dir.path(), "directory", &tables).unwrap();
    assert!(again.iter().all(|s| !s.written));
    for saved in &again {
        assert_eq!(
            read_table_yaml(dir.path(), &saved.path).unwrap(),
            *tables
                .iter()
                .find(|t| t.table == saved.table.table)
                .unwrap()
        );
    }
    let mut changed = tables.clone();
    changed[0].columns[1].nullable = !changed[0].columns[1].nullable;
    let third = save_tables(dir.path(), "directory", &changed).unwrap();
    assert_eq!(third.iter().filter(|s| s.written).count(), 1);
}
