//! Service files (`services/<service>.yaml`): the service, its tenancy pattern, its source options and its sinks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdc_core::layout::{MIGRATIONS_DIR, SCHEMAS_DIR, SERVICES_DIR, SINK_GROUPS_FILE};

use super::findings::Finding;
use super::project_files::ProjectFiles;
use super::{Filter, Loader};
use crate::error::Error;
use crate::location::YamlPath;
use crate::model::{RawService, RawSink, RawSourceTable};
use crate::project::{Service, Sink};
use crate::yaml::read_text;

/// How tenants map to source databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern {
    /// One MSSQL database per customer (the default).
    DbPerTenant,
    /// One MSSQL database with a `customer_id` in every table.
    DbShared,
}

/// A source table's options, under the key the service file wrote.
#[derive(Debug)]
pub(super) struct SourceOptions {
    /// `<schema>.<Table>` as written (the lookup is case-insensitive).
    pub key: String,
    /// The options.
    pub options: RawSourceTable,
}

/// One service being loaded: what its sinks' tables need to know about it.
#[derive(Debug)]
pub(super) struct ServiceScope {
    /// Service name (the file's root key).
    pub name: String,
    /// The service file, relative to the project root.
    pub file: PathBuf,
    /// The service's node in its file.
    pub path: YamlPath,
    /// Tenancy pattern.
    pub pattern: Pattern,
    /// Source-table options by lowercased `<schema>.<table>`.
    pub source_tables: BTreeMap<String, SourceOptions>,
    /// `services/_schemas/<service>`.
    pub schemas_dir: PathBuf,
}

impl ServiceScope {
    /// The service's `source` node.
    pub fn source_path(&self) -> YamlPath {
        self.path.clone().key("source")
    }

    /// The options of a source table, matched case-insensitively.
    pub fn source_options(&self, schema: &str, table: &str) -> Option<&SourceOptions> {
        self.source_tables
            .get(&format!("{schema}.{table}").to_lowercase())
    }
}

impl Loader {
    /// Loads every service file that `filter` selects, in file-name order.
    pub(super) fn load_services(
        &mut self,
        filter: &Filter,
        project: &ProjectFiles,
    ) -> Result<Vec<Service>, Error> {
        let mut services = Vec::new();
        let mut owners = BTreeMap::new();
        for path in self.service_files()? {
            let rel = self.rel(&path);
            let Some(mut parsed) = self.read_yaml::<BTreeMap<String, RawService>>(&rel)? else {
                continue;
            };
            if parsed.len() != 1 {
                let found = if parsed.is_empty() {
                    "none".to_string()
                } else {
                    parsed.keys().cloned().collect::<Vec<_>>().join(", ")
                };
                self.error(Finding::in_file(
                    &rel,
                    format!(
                        "a service file has exactly one root key, the service name; found {found}"
                    ),
                ));
                continue;
            }
            let Some((name, raw)) = parsed.pop_first() else {
                continue;
            };
            self.check_sink_owners(&mut owners, &rel, &name, &raw);
            if filter.service.as_ref().is_some_and(|s| s != &name) {
                continue;
            }
            services.push(self.load_service(rel, name, raw, filter, project));
        }
        Ok(services)
    }

    /// A sink is generated from one service: a second service declaring it
    /// would replace the first one's tables. Checked across every service
    /// file, whatever the filter selects.
    fn check_sink_owners(
        &mut self,
        owners: &mut BTreeMap<String, (String, PathBuf, YamlPath)>,
        file: &Path,
        service: &str,
        raw: &RawService,
    ) {
        for sink in raw.sinks.keys() {
            let path = YamlPath::root().key(service).key("sinks").key(sink);
            match owners.get(sink) {
                None => {
                    owners.insert(
                        sink.clone(),
                        (service.to_string(), file.to_path_buf(), path),
                    );
                }
                Some((first_service, first_file, first_path)) => {
                    let line = read_text(&self.root.join(first_file), first_file)
                        .ok()
                        .and_then(|text| first_path.line_in(&text))
                        .map(|line| format!(":{line}"))
                        .unwrap_or_default();
                    let message = format!(
                        "sink `{sink}` is declared by two services: `{service}` here and `{first_service}` at {}{line} (field `{first_path}`); a sink is generated from one service",
                        first_file.display(),
                    );
                    self.error(Finding::at(file, path, message));
                }
            }
        }
    }

    /// `services/*.yaml` and `*.yml`, sorted.
    fn service_files(&self) -> Result<Vec<PathBuf>, Error> {
        let dir = self.root.join(SERVICES_DIR);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            // Not only files: a directory, a dangling link or an unreadable
            // file named like a service file is reported, never skipped.
            .filter(|p| is_yaml(p))
            .collect();
        files.sort();
        Ok(files)
    }

    fn load_service(
        &mut self,
        file: PathBuf,
        name: String,
        raw: RawService,
        filter: &Filter,
        project: &ProjectFiles,
    ) -> Service {
        let path = YamlPath::root().key(&name);
        let pattern = self.pattern(&file, &path, raw.pattern.as_deref(), &name, project);
        let source_tables = raw
            .source
            .map(|s| s.tables)
            .unwrap_or_default()
            .into_iter()
            .map(|(key, options)| {
                let options = SourceOptions {
                    options: options.unwrap_or_default(),
                    key: key.clone(),
                };
                (key.to_lowercase(), options)
            })
            .collect();
        let service = ServiceScope {
            schemas_dir: self.root.join(SERVICES_DIR).join(SCHEMAS_DIR).join(&name),
            name,
            file,
            path,
            pattern,
            source_tables,
        };
        let mut sinks = Vec::new();
        for (sink_name, raw_sink) in raw.sinks {
            if filter.sink.as_ref().is_some_and(|s| s != &sink_name) {
                continue;
            }
            if let Some(sink) = self.load_sink(&service, sink_name, raw_sink, project) {
                sinks.push(sink);
            }
        }
        Service {
            name: service.name,
            sinks,
        }
    }

    /// The service's own `pattern`, else its group's, else db-per-tenant.
    fn pattern(
        &mut self,
        file: &Path,
        service: &YamlPath,
        own: Option<&str>,
        name: &str,
        project: &ProjectFiles,
    ) -> Pattern {
        let pattern = own.map(str::to_string).or_else(|| project.pattern_of(name));
        match pattern.as_deref() {
            None | Some("db-per-tenant") => Pattern::DbPerTenant,
            Some("db-shared") => Pattern::DbShared,
            Some(other) => {
                let message =
                    format!("unknown pattern `{other}` (expected db-per-tenant or db-shared)");
                let path = service.clone().key("pattern");
                let finding = if own.is_some() {
                    Finding::at(file, path, message)
                } else {
                    // From source-groups.yaml: the service file has no line for it.
                    Finding::in_file(file, message).field(path.to_string())
                };
                self.error(finding);
                Pattern::DbPerTenant
            }
        }
    }

    fn load_sink(
        &mut self,
        service: &ServiceScope,
        name: String,
        raw: RawSink,
        project: &ProjectFiles,
    ) -> Option<Sink> {
        let path = service.path.clone().key("sinks").key(&name);
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\'])
            || name.chars().any(char::is_control)
        {
            self.error(Finding::at(
                &service.file,
                path,
                format!(
                    "sink name `{}` cannot be used as a directory name under {MIGRATIONS_DIR}/",
                    name.escape_debug()
                ),
            ));
            return None;
        }
        let databases = match raw.databases {
            Some(databases) => databases,
            None => {
                let databases = project.databases_of(&name, &service.name);
                if databases.is_empty() {
                    self.warn(Finding::at(
                        &service.file,
                        path.clone().key("databases"),
                        format!("sink `{name}` names no databases (neither `databases:` nor {SINK_GROUPS_FILE}); `apply --env` will need them"),
                    ));
                }
                databases
            }
        };
        let sink = SinkScope {
            service,
            name: &name,
            path,
            soft_delete: raw.soft_delete,
        };
        let declared = super::distribution::declared_per_table(&raw.tables);
        let mut tables = self.load_sink_tables(&sink, raw.tables, project);
        self.check_sink_names(&sink, &tables);
        self.resolve_distribution(&sink, raw.distribution.as_ref(), &declared, &mut tables);
        Some(Sink {
            name,
            databases,
            tables,
        })
    }
}

/// One sink being loaded: its service and where it is in the service file.
#[derive(Debug)]
pub(super) struct SinkScope<'s> {
    /// The service that declares it.
    pub service: &'s ServiceScope,
    /// Sink name.
    pub name: &'s str,
    /// The sink's node in the service file.
    pub path: YamlPath,
    /// The sink's `soft_delete`, which a table may override.
    pub soft_delete: Option<bool>,
}

impl SinkScope<'_> {
    /// The node of one of the sink's tables, by its key.
    pub fn table_path(&self, key: &str) -> YamlPath {
        self.path.clone().key("tables").key(key)
    }
}

/// Whether a path names a YAML file.
pub(super) fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
