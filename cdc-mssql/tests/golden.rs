//! Golden files: catalog rows → table YAML, and the dry-run scripts.
//!
//! `tests/fixtures/<case>/` holds the input and `expected/`; a difference fails
//! the test. `UPDATE_EXPECT=1 cargo test -p cdc-mssql --test golden` rewrites
//! the expected files (review the diff before committing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cdc_mssql::catalog::{tables_from_rows, CatalogRow};
use cdc_mssql::script::{clean_cdc_script, enable_cdc_script};
use cdc_mssql::table_yaml::render_table_yaml;
use cdc_mssql::TableRef;

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1")
}

/// Compares every expected file of a case with what was produced, both ways.
fn check(case: &str, produced: &[(String, String)]) {
    let expected_dir = fixture(case).join("expected");
    if updating() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        for (rel, text) in produced {
            let path = expected_dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        return;
    }
    let mut on_disk = BTreeSet::new();
    collect_files(&expected_dir, &expected_dir, &mut on_disk);
    let produced_names: BTreeSet<String> = produced.iter().map(|(rel, _)| rel.clone()).collect();
    assert_eq!(
        produced_names, on_disk,
        "{case}: the files produced differ from expected/ (UPDATE_EXPECT=1 to refresh)"
    );
    for (rel, text) in produced {
        let expected = std::fs::read_to_string(expected_dir.join(rel)).unwrap();
        assert!(
            *text == expected,
            "{case}/expected/{rel} differs (UPDATE_EXPECT=1 to refresh)\n--- expected\n{expected}\n--- produced\n{text}"
        );
    }
}

fn collect_files(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(base, &path, out);
        } else {
            let rel = path.strip_prefix(base).unwrap();
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

pub fn recorded_rows() -> Vec<CatalogRow> {
    let text = std::fs::read_to_string(fixture("catalog").join("catalog_rows.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn catalog_rows_become_table_yaml() {
    let tables = tables_from_rows(&recorded_rows(), Some("Directory"), Some("directory")).unwrap();
    let produced: Vec<(String, String)> = tables
        .iter()
        .map(|t| {
            (
                format!("{}/{}.yaml", t.schema, t.table),
                render_table_yaml(t),
            )
        })
        .collect();
    check("catalog", &produced);
}

#[derive(serde::Deserialize)]
struct ScriptInput {
    service: String,
    days: u32,
    tables: Vec<(String, String)>,
}

#[test]
fn dry_run_scripts() {
    let text = std::fs::read_to_string(fixture("scripts").join("input.json")).unwrap();
    let input: ScriptInput = serde_json::from_str(&text).unwrap();
    let tables: Vec<TableRef> = input
        .tables
        .iter()
        .map(|(schema, table)| TableRef::new(schema, table))
        .collect();
    check(
        "scripts",
        &[
            (
                "enable-cdc.sql".to_string(),
                enable_cdc_script(&input.service, &tables),
            ),
            (
                "clean-cdc.sql".to_string(),
                clean_cdc_script(&input.service, &tables, input.days),
            ),
        ],
    );
}
