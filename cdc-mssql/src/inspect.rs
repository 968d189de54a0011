//! `inspect` over the project: which live tables are in scope, saving their
//! YAML only where the bytes change, and checking them against the files.

use std::path::{Path, PathBuf};

use crate::drift::{compare_table, Drift, DriftKind};
use crate::error::Error;
use crate::ident::TableRef;
use crate::project::table_yaml_path;
use crate::table_yaml::{from_raw_table, render_table_yaml, TableYaml};

/// Which source tables `inspect` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectScope {
    /// The service's `source.tables` (the default).
    ServiceTables(Vec<TableRef>),
    /// Every table of one schema (`--schema`).
    Schema(String),
    /// Every user table (`--all`).
    All,
}

impl InspectScope {
    /// The schema to ask the catalog for, when the scope is one schema.
    pub fn catalog_schema(&self) -> Option<&str> {
        match self {
            InspectScope::Schema(schema) => Some(schema),
            _ => None,
        }
    }
}

/// The live tables in scope, and the service tables the source does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Tables found, sorted.
    pub tables: Vec<TableYaml>,
    /// Service tables not found at the source.
    pub missing: Vec<TableRef>,
}

/// Keeps the live tables that `scope` selects.
pub fn select_tables(live: Vec<TableYaml>, scope: &InspectScope) -> Selection {
    match scope {
        InspectScope::All => Selection {
            tables: live,
            missing: Vec::new(),
        },
        InspectScope::Schema(schema) => Selection {
            tables: live
                .into_iter()
                .filter(|t| t.schema.eq_ignore_ascii_case(schema))
                .collect(),
            missing: Vec::new(),
        },
        InspectScope::ServiceTables(wanted) => {
            let same = |t: &TableYaml, w: &TableRef| {
                t.schema.eq_ignore_ascii_case(&w.schema) && t.table.eq_ignore_ascii_case(&w.table)
            };
            let missing = wanted
                .iter()
                .filter(|w| !live.iter().any(|t| same(t, w)))
                .cloned()
                .collect();
            let tables = live
                .into_iter()
                .filter(|t| wanted.iter().any(|w| same(t, w)))
                .collect();
            Selection { tables, missing }
        }
    }
}

/// What saving did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFile {
    /// The table.
    pub table: TableRef,
    /// The file.
    pub path: PathBuf,
    /// Whether the bytes changed (false: the file was left untouched).
    pub written: bool,
}

/// Writes each table's YAML under `services/_schemas/<service>/`, only where
/// the content changes.
pub fn save_tables(
    root: &Path,
    service: &str,
    tables: &[TableYaml],
) -> Result<Vec<SavedFile>, Error> {
    let mut saved = Vec::with_capacity(tables.len());
    for table in tables {
        let table_ref = TableRef::new(&table.schema, &table.table);
        let path = table_yaml_path(root, service, &table_ref)?;
        let text = render_table_yaml(table);
        let unchanged = std::fs::read(&path).is_ok_and(|old| old == text.as_bytes());
        if !unchanged {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::write(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
        }
        saved.push(SavedFile {
            table: table_ref,
            path,
            written: !unchanged,
        });
    }
    Ok(saved)
}

/// Reads a table YAML into the writer's model, through cdc-build's parser.
pub fn read_table_yaml(root: &Path, path: &Path) -> Result<TableYaml, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let raw = cdc_build::yaml::parse_yaml(rel, &text).map_err(|d| Error::InvalidFile {
        path: path.to_path_buf(),
        message: d.to_string(),
    })?;
    Ok(from_raw_table(&raw))
}

/// Every difference between the selected live tables and their YAML files.
pub fn check_tables(
    root: &Path,
    service: &str,
    selection: &Selection,
) -> Result<Vec<Drift>, Error> {
    let mut drifts: Vec<Drift> = selection
        .missing
        .iter()
        .map(|table| Drift {
            table: table.clone(),
            column: None,
            kind: DriftKind::TableMissingAtSource,
        })
        .collect();
    for live in &selection.tables {
        let table = TableRef::new(&live.schema, &live.table);
        let path = table_yaml_path(root, service, &table)?;
        if !path.is_file() {
            drifts.push(Drift {
                table,
                column: None,
                kind: DriftKind::YamlMissing,
            });
            continue;
        }
        match read_table_yaml(root, &path) {
            Ok(yaml) => drifts.extend(compare_table(&yaml, live)),
            Err(err) => drifts.push(Drift {
                table,
                column: None,
                kind: DriftKind::YamlUnreadable(err.to_string()),
            }),
        }
    }
    Ok(drifts)
}
