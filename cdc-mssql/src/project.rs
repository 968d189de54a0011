//! What the project says about the source: the services, their source tables
//! (`source.tables` of `services/<service>.yaml`) and where each table YAML lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdc_build::model::RawService;
use cdc_core::layout::{SCHEMAS_DIR, SERVICES_DIR};

use crate::error::Error;
use crate::ident::{file_name_problem, TableRef};

/// One service and its source tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceScope {
    /// Service name (the service file's root key).
    pub name: String,
    /// Its source tables, sorted.
    pub tables: Vec<TableRef>,
}

impl ServiceScope {
    /// The tables `--table` selects (all of them without it); an unknown name is an error.
    pub fn select(&self, table: Option<&str>) -> Result<Vec<TableRef>, Error> {
        let Some(wanted) = table else {
            return Ok(self.tables.clone());
        };
        let found: Vec<TableRef> = self
            .tables
            .iter()
            .filter(|t| t.matches(wanted))
            .cloned()
            .collect();
        if found.is_empty() {
            return Err(Error::UnknownTable {
                table: wanted.to_string(),
                service: self.name.clone(),
                known: self.tables.iter().map(ToString::to_string).collect(),
            });
        }
        Ok(found)
    }
}

/// Every service of the project, by name, with its source tables.
pub fn load_services(root: &Path) -> Result<BTreeMap<String, ServiceScope>, Error> {
    let dir = root.join(SERVICES_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    let mut services = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let parsed: BTreeMap<String, RawService> = cdc_build::yaml::parse_yaml(rel, &text)
            .map_err(|d| Error::InvalidFile {
                path: path.clone(),
                message: d.to_string(),
            })?;
        for (name, service) in parsed {
            let mut tables = Vec::new();
            for key in service.source.map(|s| s.tables).unwrap_or_default().keys() {
                tables.push(
                    TableRef::parse_dotted(key).ok_or_else(|| Error::InvalidFile {
                        path: path.clone(),
                        message: format!(
                            "{name}.source.tables: `{key}` is not of the form <schema>.<Table>"
                        ),
                    })?,
                );
            }
            tables.sort();
            services.insert(name.clone(), ServiceScope { name, tables });
        }
    }
    Ok(services)
}

/// The service `--service` names, or the only one when none is named.
pub fn choose_service(root: &Path, service: Option<&str>) -> Result<ServiceScope, Error> {
    let mut services = load_services(root)?;
    let known: Vec<String> = services.keys().cloned().collect();
    match service {
        Some(name) => match services.remove(name) {
            Some(scope) => Ok(scope),
            None => Err(Error::UnknownService {
                service: name.to_string(),
                known,
            }),
        },
        None => {
            let mut all = services.into_values();
            match (all.next(), all.next()) {
                (Some(only), None) => Ok(only),
                _ => Err(Error::AmbiguousService { known }),
            }
        }
    }
}

/// The directory of a service's table YAML: `services/_schemas/<service>`.
pub fn service_schemas_dir(root: &Path, service: &str) -> PathBuf {
    root.join(SERVICES_DIR).join(SCHEMAS_DIR).join(service)
}

/// Where a table's YAML is, or goes: an existing file whose name differs only in
/// case (as the loader accepts it) is kept; otherwise `<schema>/<Table>.yaml`.
pub fn table_yaml_path(root: &Path, service: &str, table: &TableRef) -> Result<PathBuf, Error> {
    for name in [service, &table.schema, &table.table] {
        if let Some(reason) = file_name_problem(name) {
            return Err(Error::UnsafeFileName {
                table: table.to_string(),
                reason,
            });
        }
    }
    let dir = service_schemas_dir(root, service);
    let wanted_schema = table.schema.to_lowercase();
    let wanted_table = table.table.to_lowercase();
    if let Ok(schemas) = std::fs::read_dir(&dir) {
        let mut schema_dirs: Vec<PathBuf> = schemas
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().to_lowercase() == wanted_schema)
            })
            .collect();
        schema_dirs.sort();
        for schema_dir in schema_dirs {
            let Ok(files) = std::fs::read_dir(&schema_dir) else {
                continue;
            };
            let mut matches: Vec<PathBuf> = files
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                        && p.file_stem()
                            .is_some_and(|s| s.to_string_lossy().to_lowercase() == wanted_table)
                })
                .collect();
            matches.sort();
            if let Some(path) = matches.into_iter().next() {
                return Ok(path);
            }
        }
    }
    Ok(dir
        .join(&table.schema)
        .join(format!("{}.yaml", table.table)))
}
