//! `inspect --check`: every table and column whose live definition differs from its YAML.

use std::path::Path;

use cdc_mssql::catalog::{tables_from_rows, CatalogRow};
use cdc_mssql::drift::DriftKind;
use cdc_mssql::inspect::{check_tables, save_tables, select_tables, InspectScope, Selection};
use cdc_mssql::{TableRef, TableYaml};

fn recorded_tables() -> Vec<TableYaml> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog/catalog_rows.json");
    let rows: Vec<CatalogRow> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    tables_from_rows(&rows, Some("Directory"), Some("directory")).unwrap()
}

fn all(tables: Vec<TableYaml>) -> Selection {
    select_tables(tables, &InspectScope::All)
}

#[test]
fn no_drift_right_after_saving() {
    let dir = tempfile::tempdir().unwrap();
    let tables = recorded_tables();
    save_tables(dir.path(), "directory", &tables).unwrap();
    assert_eq!(
        check_tables(dir.path(), "directory", &all(tables)).unwrap(),
        vec![]
    );
}

#[test]
fn hand_written_spellings_of_the_same_type_are_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "database: Directory\nschema: dbo\nservice: directory\ntable: actor\ncolumns:\n  \
         - {name: actno, type: int, nullable: false, primary_key: true}\n  \
         - {name: navn, type: nvarchar(100), nullable: false}\n  \
         - {name: f, type: float, nullable: true}\n  \
         - {name: at, type: datetime2, nullable: true}\n",
    )
    .unwrap();
    let live = cdc_mssql::table_yaml::from_raw_table(
        &cdc_build::yaml::parse_yaml(
            Path::new("live"),
            "schema: dbo\ntable: Actor\ncolumns:\n  \
             - {name: actno, type: int, nullable: false, primary_key: true}\n  \
             - {name: Navn, type: nvarchar, max_length: 100, nullable: false}\n  \
             - {name: f, type: float, precision: 53, nullable: true}\n  \
             - {name: at, type: datetime2, precision: 7, nullable: true}\n",
        )
        .unwrap(),
    );
    assert_eq!(
        check_tables(dir.path(), "directory", &all(vec![live])).unwrap(),
        vec![]
    );
}

#[test]
fn every_difference_is_named_with_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let tables = recorded_tables();
    save_tables(dir.path(), "directory", &tables).unwrap();
    let mut live = tables.clone();
    let order = live
        .iter_mut()
        .find(|t| t.table == "Order Details")
        .unwrap();
    order.columns[2].type_name = "decimal".into();
    order.columns[2].precision = Some(19);
    order.columns[2].scale = Some(4);
    order.columns[3].nullable = true;
    order.columns[3].default_value = None;
    order.columns[1].primary_key = false;
    let removed = order.columns.remove(0);
    let mut added = removed.clone();
    added.name = "OrderNo".into();
    added.primary_key = true;
    order.columns.push(added);
    live.push(TableYaml {
        table: "New".into(),
        ..live[0].clone()
    });
    let mut selection = all(live);
    selection.missing.push(TableRef::new("dbo", "Gone"));
    let drifts = check_tables(dir.path(), "directory", &selection).unwrap();
    let lines: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    let expected = [
        "dbo.Gone: not found at the source",
        "dbo.New: no table YAML yet",
        "dbo.Order Details: primary key (OrderID, ProductID) in the YAML, (OrderNo) at the source",
        "dbo.Order Details, column Unit Price: type money in the YAML, decimal(19,4) at the source",
        "dbo.Order Details, column true: NOT NULL in the YAML, NULL at the source",
        "dbo.Order Details, column true: default ((1)) in the YAML, none at the source",
        "dbo.Order Details, column OrderNo: added at the source",
        "dbo.Order Details, column OrderID: gone from the source",
    ];
    for line in expected {
        assert!(
            lines.iter().any(|l| l == line),
            "missing `{line}` in {lines:#?}"
        );
    }
    assert!(drifts
        .iter()
        .all(|d| !matches!(d.kind, DriftKind::YamlUnreadable(_))));
}
