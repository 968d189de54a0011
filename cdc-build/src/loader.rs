//! Loads a project: service files, table YAML, column templates, sink groups,
//! the optional type-mapping override, and the tenancy pattern.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_norway::Value;

use crate::columns::{
    build_full_column_list, PipelineInput, PipelineIssue, TableColumns, ITEM_LOCATOR,
};
use crate::error::{locate, locate_item, Diagnostic, Error};
use crate::ident::{check_file_stem, check_identifier};
use crate::model::{
    OneOrMany, RawMapping, RawService, RawSinkTable, RawSourceTable, RawTable, RawTemplate,
    RawTemplates,
};
use crate::project::{Pattern, Project, Service, Sink, SinkTable, TableNames};
use crate::types::{PgType, TypeMapping};
use crate::yaml::read_text;
pub use crate::yaml::{parse_yaml, MAX_INDENT, MAX_NESTING, MAX_YAML_BYTES};

/// Relative path of the column templates.
pub const TEMPLATES_FILE: &str = "services/_schemas/column-templates.yaml";
/// Relative path of the optional type-mapping override.
pub const MAPPING_FILE: &str = "service-schemas/adapters/mssql-to-pgsql.mapping.yaml";

/// Which part of a project to load.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this service.
    pub service: Option<String>,
    /// Only this sink.
    pub sink: Option<String>,
}

/// Loads the whole project under `root`.
pub fn load_project(root: &Path, filter: &Filter) -> Result<Project, Error> {
    Loader::new(root).load(filter)
}

struct Loader {
    root: PathBuf,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    inputs: Vec<PathBuf>,
    /// Parsed table files; `None` for a file whose errors were already reported.
    tables: HashMap<PathBuf, Option<Arc<(RawTable, String)>>>,
}

impl Loader {
    fn new(root: &Path) -> Loader {
        Loader {
            root: root.to_path_buf(),
            errors: Vec::new(),
            warnings: Vec::new(),
            inputs: Vec::new(),
            tables: HashMap::new(),
        }
    }

    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root).unwrap_or(path).to_path_buf()
    }

    /// Reads and parses one YAML file; `Ok(None)` when it does not exist.
    fn read_yaml<T: DeserializeOwned>(&mut self, rel: &str) -> Result<Option<(T, String)>, Error> {
        let path = self.root.join(rel);
        if !path.exists() {
            return Ok(None);
        }
        self.inputs.push(path.clone());
        let text = read_text(&path)?;
        match parse_yaml(Path::new(rel), &text) {
            Ok(value) => Ok(Some((value, text))),
            Err(diagnostic) => {
                self.errors.push(diagnostic);
                Ok(None)
            }
        }
    }

    fn load(mut self, filter: &Filter) -> Result<Project, Error> {
        let services_dir = self.root.join("services");
        self.inputs.push(services_dir.clone());
        let templates = self
            .read_yaml::<RawTemplates>(TEMPLATES_FILE)?
            .map(|(t, text)| (t.templates, text))
            .unwrap_or_default();
        let mut template_types = BTreeMap::new();
        for (key, template) in &templates.0 {
            if let Err(message) = PgType::parse(&template.type_name) {
                self.errors.push(
                    Diagnostic::new(TEMPLATES_FILE, message)
                        .field(format!("templates.{key}.type"))
                        .at(locate(&templates.1, &[&format!("{key}:"), "type:"]), None),
                );
            } else {
                template_types.insert(key.clone(), ());
            }
        }
        let mapping = self.load_mapping()?;
        let sink_groups = self.read_yaml::<Value>("sink-groups.yaml")?.map(|(v, _)| v);
        let source_groups = self
            .read_yaml::<Value>("source-groups.yaml")?
            .map(|(v, _)| v);

        let mut service_files: Vec<PathBuf> = std::fs::read_dir(&services_dir)
            .map_err(|e| Error::io(&services_dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        service_files.sort();

        let mut services = Vec::new();
        for path in service_files {
            let rel = self.rel(&path);
            let rel_str = rel.to_string_lossy().into_owned();
            let Some((mut parsed, text)) =
                self.read_yaml::<BTreeMap<String, RawService>>(&rel_str)?
            else {
                continue;
            };
            if parsed.len() != 1 {
                self.errors.push(Diagnostic::new(
                    &rel,
                    format!(
                        "a service file has exactly one root key, the service name; found {}",
                        if parsed.is_empty() {
                            "none".to_string()
                        } else {
                            parsed.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                ));
                continue;
            }
            let Some((name, raw)) = parsed.pop_first() else {
                continue;
            };
            if filter.service.as_ref().is_some_and(|s| s != &name) {
                continue;
            }
            let service = self.load_service(
                &rel,
                &text,
                name,
                raw,
                filter,
                &templates.0,
                &mapping,
                sink_groups.as_ref(),
                source_groups.as_ref(),
            );
            services.push(service);
        }
        if let Some(wanted) = &filter.service {
            if services.is_empty() && self.errors.is_empty() {
                self.errors.push(Diagnostic::new(
                    "services",
                    format!("no service named `{wanted}`"),
                ));
            }
        }
        if let Some(wanted) = &filter.sink {
            if !services
                .iter()
                .any(|s| s.sinks.iter().any(|k| &k.name == wanted))
                && self.errors.is_empty()
            {
                let known: Vec<String> = self.known_sinks(&services);
                self.errors.push(Diagnostic::new(
                    "services",
                    format!("no sink named `{wanted}` (known: {})", known.join(", ")),
                ));
            }
        }
        if !self.errors.is_empty() {
            return Err(Error::Invalid(self.errors));
        }
        self.inputs.sort();
        self.inputs.dedup();
        {
            // Freeing every parsed table file takes a while: use all threads.
            use rayon::prelude::*;
            std::mem::take(&mut self.tables)
                .into_par_iter()
                .for_each(drop);
        }
        Ok(Project {
            root: self.root,
            services,
            warnings: self.warnings,
            inputs: self.inputs,
        })
    }

    fn known_sinks(&self, services: &[Service]) -> Vec<String> {
        services
            .iter()
            .flat_map(|s| s.sinks.iter().map(|k| k.name.clone()))
            .collect()
    }

    fn load_mapping(&mut self) -> Result<TypeMapping, Error> {
        let Some((raw, text)) = self.read_yaml::<RawMapping>(MAPPING_FILE)? else {
            return Ok(TypeMapping::default());
        };
        let mut overrides = BTreeMap::new();
        for (mssql, pg) in raw.mappings {
            match PgType::parse(&pg) {
                Ok(pg) => {
                    overrides.insert(mssql.to_ascii_lowercase(), pg);
                }
                Err(message) => self.errors.push(
                    Diagnostic::new(MAPPING_FILE, message)
                        .field(format!("mappings.{mssql}"))
                        .at(locate(&text, &[&format!("{mssql}:")]), None),
                ),
            }
        }
        Ok(TypeMapping::with_overrides(overrides))
    }

    #[allow(clippy::too_many_arguments)]
    fn load_service(
        &mut self,
        rel: &Path,
        text: &str,
        name: String,
        raw: RawService,
        filter: &Filter,
        templates: &BTreeMap<String, RawTemplate>,
        mapping: &TypeMapping,
        sink_groups: Option<&Value>,
        source_groups: Option<&Value>,
    ) -> Service {
        let pattern = match raw
            .pattern
            .as_deref()
            .map(str::to_string)
            .or_else(|| pattern_from_groups(source_groups, &name))
        {
            None => Pattern::DbPerTenant,
            Some(p) if p == "db-per-tenant" => Pattern::DbPerTenant,
            Some(p) if p == "db-shared" => Pattern::DbShared,
            Some(other) => {
                self.errors.push(
                    Diagnostic::new(
                        rel,
                        format!("unknown pattern `{other}` (expected db-per-tenant or db-shared)"),
                    )
                    .field(format!("{name}.pattern"))
                    .at(locate(text, &["pattern:"]), None),
                );
                Pattern::DbPerTenant
            }
        };
        let source_tables: BTreeMap<String, RawSourceTable> = raw
            .source
            .map(|s| s.tables)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v.unwrap_or_default()))
            .collect();
        let schemas_dir = self.root.join("services").join("_schemas").join(&name);
        let mut sinks = Vec::new();
        for (sink_name, raw_sink) in raw.sinks {
            if filter.sink.as_ref().is_some_and(|s| s != &sink_name) {
                continue;
            }
            let sink_field = format!("{name}.sinks.{sink_name}");
            if sink_name.is_empty()
                || sink_name.starts_with('.')
                || sink_name.contains(['/', '\\'])
                || sink_name.chars().any(char::is_control)
            {
                self.errors.push(
                    Diagnostic::new(
                        rel,
                        format!(
                            "sink name `{}` cannot be used as a directory name under migrations/",
                            sink_name.escape_debug()
                        ),
                    )
                    .field(sink_field)
                    .at(locate(text, &["sinks:", &sink_name]), None),
                );
                continue;
            }
            let mut databases = raw_sink.databases.clone().unwrap_or_default();
            if raw_sink.databases.is_none() {
                databases = databases_from_groups(sink_groups, &sink_name, &name);
                if databases.is_empty() {
                    self.warnings.push(
                        Diagnostic::new(rel, format!("sink `{sink_name}` names no databases (neither `databases:` nor sink-groups.yaml); `apply --env` will need them"))
                            .field(format!("{sink_field}.databases"))
                            .at(locate(text, &[&sink_name]), None),
                    );
                }
            }
            let wanted: Vec<PathBuf> = raw_sink
                .tables
                .values()
                .filter_map(|entry| entry.from.split_once('.'))
                .map(|(schema, table)| schemas_dir.join(schema).join(format!("{table}.yaml")))
                .collect();
            self.prefetch_tables(wanted);
            // The column pipeline of every table whose file is cached, in
            // parallel; the loop below takes these results in order.
            let mut prebuilt = self
                .prebuild_columns(
                    &raw_sink.tables,
                    &schemas_dir,
                    &source_tables,
                    templates,
                    mapping,
                )
                .into_iter();
            let mut tables = Vec::with_capacity(raw_sink.tables.len());
            for (key, entry) in raw_sink.tables {
                let prebuilt = prebuilt.next().flatten();
                // Locations are looked up only when something is reported: a
                // scan per table would make loading quadratic in the table count.
                let at = || locate(text, &[&sink_name, "tables:", &format!("{key}:")]);
                let field = format!("{sink_field}.tables.{key}");
                let service_error = |message: String| {
                    Diagnostic::new(rel, message)
                        .field(field.clone())
                        .at(at(), None)
                };
                let Some((target_schema, target_table)) = key.split_once('.') else {
                    self.errors.push(service_error(
                        "expected `<target_schema>.<Table>`".to_string(),
                    ));
                    continue;
                };
                let mut bad = false;
                for (what, ident) in [
                    ("target schema", target_schema),
                    ("target table", target_table),
                ] {
                    if let Err(message) = check_identifier(ident) {
                        self.errors.push(service_error(format!(
                            "{what} cannot be represented in PostgreSQL: {message}"
                        )));
                        bad = true;
                    }
                }
                if let Err(message) = check_file_stem(target_table) {
                    self.errors.push(service_error(message));
                    bad = true;
                }
                let from_at = || locate(text, &[&sink_name, &format!("{key}:"), "from:"]);
                let Some((source_schema, source_table)) = entry.from.split_once('.') else {
                    self.errors.push(
                        Diagnostic::new(
                            rel,
                            format!("expected `<schema>.<Table>`, found `{}`", entry.from),
                        )
                        .field(format!("{field}.from"))
                        .at(from_at(), None),
                    );
                    continue;
                };
                if bad {
                    continue;
                }
                let Some(table_path) =
                    self.resolve_table(&schemas_dir, source_schema, source_table)
                else {
                    let candidates = self.closest_tables(&schemas_dir, &entry.from);
                    self.errors.push(
                        Diagnostic::new(
                            rel,
                            format!(
                                "`from: {}` has no table YAML at {}{}",
                                entry.from,
                                self.rel(
                                    &schemas_dir
                                        .join(source_schema)
                                        .join(format!("{source_table}.yaml"))
                                )
                                .display(),
                                if candidates.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (closest: {})", candidates.join(", "))
                                }
                            ),
                        )
                        .field(format!("{field}.from"))
                        .at(from_at(), None),
                    );
                    continue;
                };
                let Some(loaded) = self.load_table(&table_path) else {
                    continue;
                };
                let (table, table_text) = (&loaded.0, &loaded.1);
                let table_rel = self.rel(&table_path);
                let to_diagnostic = |issue: PipelineIssue| {
                    let needles: Vec<&str> = issue.locate.iter().map(String::as_str).collect();
                    if issue.in_service {
                        let mut all = vec![sink_name.as_str()];
                        if issue.field.starts_with("column_templates") {
                            all.push(key.as_str());
                        } else {
                            all = vec!["source:"];
                        }
                        all.extend(needles);
                        Diagnostic::new(rel, issue.message)
                            .field(issue.field)
                            .at(locate(text, &all), None)
                    } else {
                        let line = match needles.first().and_then(|n| n.strip_prefix(ITEM_LOCATOR))
                        {
                            Some(index) => index
                                .parse()
                                .ok()
                                .and_then(|i| locate_item(table_text, "columns:", i)),
                            None => locate(table_text, &needles),
                        };
                        Diagnostic::new(&table_rel, issue.message)
                            .field(issue.field)
                            .at(line, None)
                    }
                };
                let built = match prebuilt {
                    Some((path, built)) if path == table_path => built,
                    _ => table_columns(table, &entry, &source_tables, templates, mapping),
                };
                let built = match built {
                    Ok(built) => built,
                    Err(issues) => {
                        self.errors.extend(issues.into_iter().map(to_diagnostic));
                        continue;
                    }
                };
                self.warnings
                    .extend(built.warnings.into_iter().map(to_diagnostic));
                if built.primary_key.is_empty() {
                    self.warnings.push(Diagnostic::new(
                        &table_rel,
                        format!("{}.{} has no primary key: only its final table is generated (no staging table, no merge)", table.schema, table.table),
                    ));
                }
                if pattern == Pattern::DbShared
                    && !entry.column_templates.iter().any(|r| {
                        r.template.to_lowercase().contains("customer_id")
                            || r.name
                                .as_deref()
                                .is_some_and(|n| n.to_lowercase().contains("customer_id"))
                    })
                {
                    self.warnings.push(
                        Diagnostic::new(rel, format!("pattern db-shared: sink table `{key}` has no customer_id column template"))
                            .field(format!("{field}.column_templates"))
                            .at(at(), None),
                    );
                }
                tables.push(SinkTable {
                    target_schema: target_schema.to_string(),
                    target_table: target_table.to_string(),
                    source_database: table.database.clone(),
                    source_schema: table.schema.clone(),
                    source_table: table.table.clone(),
                    source_file: table_rel,
                    columns: built.columns,
                    primary_key: built.primary_key,
                    target_exists: entry.target_exists.unwrap_or(false)
                        || entry.replicate_structure == Some(false),
                    soft_delete: entry.soft_delete.or(raw_sink.soft_delete).unwrap_or(false),
                    names: TableNames::derive(target_table),
                });
            }
            tables.sort_by(|a, b| {
                (&a.target_schema, &a.target_table).cmp(&(&b.target_schema, &b.target_table))
            });
            self.check_sink_names(rel, text, &sink_name, &tables);
            sinks.push(Sink {
                name: sink_name,
                service: name.clone(),
                databases,
                tables,
            });
        }
        Service {
            name,
            file: rel.to_path_buf(),
            pattern,
            sinks,
        }
    }

    /// File names and derived relation names must not collide within a sink.
    fn check_sink_names(&mut self, rel: &Path, text: &str, sink_name: &str, tables: &[SinkTable]) {
        use std::collections::hash_map::Entry;
        let mut files: HashMap<String, &SinkTable> = HashMap::with_capacity(tables.len());
        // (schema, namespace key) → what owns it.
        let mut relations: HashMap<(&str, String), (&str, &SinkTable)> =
            HashMap::with_capacity(tables.len() * 4);
        let owner = |kind: &str, table: &SinkTable| {
            format!("{kind} of {}.{}", table.target_schema, table.target_table)
        };
        let names: Vec<_> = {
            use rayon::prelude::*;
            tables
                .par_iter()
                .map(crate::render::relation_names)
                .collect()
        };
        for (table, names) in tables.iter().zip(names) {
            let at = || {
                locate(
                    text,
                    &[
                        sink_name,
                        &format!("{}.{}:", table.target_schema, table.target_table),
                    ],
                )
            };
            if let Some(other) = files.insert(table.target_table.to_lowercase(), table) {
                self.errors.push(
                    Diagnostic::new(
                        rel,
                        format!(
                            "tables `{}.{}` and `{}.{}` would both be written to 01-tables/{}.sql (file names ignore the schema and case)",
                            other.target_schema, other.target_table, table.target_schema, table.target_table, table.target_table
                        ),
                    )
                    .field(format!("{sink_name}.tables"))
                    .at(at(), None),
                );
            }
            for (kind, name) in names {
                match relations.entry((table.target_schema.as_str(), name)) {
                    Entry::Vacant(slot) => {
                        slot.insert((kind, table));
                    }
                    Entry::Occupied(mut slot) => {
                        let (previous_kind, previous) = slot.insert((kind, table));
                        let name = &slot.key().1;
                        self.errors.push(
                            Diagnostic::new(
                                rel,
                                format!(
                                    "name `{name}` in schema `{}` is used twice: {} and {}",
                                    table.target_schema,
                                    owner(previous_kind, previous),
                                    owner(kind, table)
                                ),
                            )
                            .field(format!("{sink_name}.tables"))
                            .at(at(), None),
                        );
                    }
                }
            }
        }
    }

    fn resolve_table(&mut self, schemas_dir: &Path, schema: &str, table: &str) -> Option<PathBuf> {
        let schema_dir = schemas_dir.join(schema);
        for ext in ["yaml", "yml"] {
            let exact = schema_dir.join(format!("{table}.{ext}"));
            // A cached file was found to be a file while prefetching.
            if self.tables.contains_key(&exact) || exact.is_file() {
                self.inputs.push(schema_dir.clone());
                return Some(exact);
            }
        }
        // MSSQL names are case-insensitive: accept a file that differs only in case.
        let wanted = format!("{schema}/{table}").to_lowercase();
        self.table_index(schemas_dir)
            .into_iter()
            .find(|(key, _)| key.to_lowercase() == wanted)
            .map(|(_, path)| {
                if let Some(parent) = path.parent() {
                    self.inputs.push(parent.to_path_buf());
                }
                path
            })
    }

    /// `schema/Table` → path for every table YAML of a service.
    fn table_index(&self, schemas_dir: &Path) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(schemas) = std::fs::read_dir(schemas_dir) else {
            return out;
        };
        for schema in schemas
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
        {
            let Ok(files) = std::fs::read_dir(&schema) else {
                continue;
            };
            let schema_name = schema
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in files.filter_map(Result::ok).map(|e| e.path()) {
                if matches!(
                    file.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                ) {
                    if let Some(stem) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) {
                        out.push((format!("{schema_name}/{stem}"), file));
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn closest_tables(&self, schemas_dir: &Path, wanted: &str) -> Vec<String> {
        let wanted = wanted.replace('.', "/").to_lowercase();
        let mut scored: Vec<(f64, String)> = self
            .table_index(schemas_dir)
            .into_iter()
            .map(|(key, _)| {
                (
                    strsim::jaro_winkler(&wanted, &key.to_lowercase()),
                    key.replace('/', "."),
                )
            })
            .filter(|(score, _)| *score > 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.into_iter().take(3).map(|(_, key)| key).collect()
    }

    /// Parses the table files of many sink tables in parallel (YAML parsing is
    /// the bulk of loading); results land in the cache that `load_table` reads.
    /// Paths that are not files are left out: `resolve_table` reports them.
    fn prefetch_tables(&mut self, paths: Vec<PathBuf>) {
        use rayon::prelude::*;
        let mut paths: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| !self.tables.contains_key(p))
            .collect();
        paths.sort();
        paths.dedup();
        let root = self.root.clone();
        let parsed: Vec<(PathBuf, ParsedTable)> = paths
            .into_par_iter()
            .filter(|path| path.is_file())
            .map(|path| {
                let result = parse_table_file(&root, &path);
                (path, result)
            })
            .collect();
        for (path, result) in parsed {
            self.cache_table(path, result);
        }
    }

    fn cache_table(&mut self, path: PathBuf, parsed: ParsedTable) {
        self.inputs.push(path.clone());
        let cached = match parsed {
            Ok(table) => Some(table),
            Err(diagnostics) => {
                self.errors.extend(diagnostics);
                None
            }
        };
        self.tables.insert(path, cached);
    }

    /// Runs the column pipeline, in parallel, for every sink table whose file
    /// is in the cache under its exact name; `None` for the others. Results
    /// come with the file they were computed from.
    fn prebuild_columns(
        &self,
        entries: &BTreeMap<String, RawSinkTable>,
        schemas_dir: &Path,
        source_tables: &BTreeMap<String, RawSourceTable>,
        templates: &BTreeMap<String, RawTemplate>,
        mapping: &TypeMapping,
    ) -> Vec<Option<(PathBuf, BuiltColumns)>> {
        use rayon::prelude::*;
        let entries: Vec<&RawSinkTable> = entries.values().collect();
        entries
            .par_iter()
            .map(|entry| {
                let (schema, table) = entry.from.split_once('.')?;
                let path = schemas_dir.join(schema).join(format!("{table}.yaml"));
                let loaded = self.tables.get(&path)?.as_ref()?;
                let built = table_columns(&loaded.0, entry, source_tables, templates, mapping);
                Some((path, built))
            })
            .collect()
    }

    fn load_table(&mut self, path: &Path) -> Option<Arc<(RawTable, String)>> {
        if !self.tables.contains_key(path) {
            let parsed = parse_table_file(&self.root, path);
            self.cache_table(path.to_path_buf(), parsed);
        }
        self.tables.get(path).cloned().flatten()
    }
}

/// A parsed table file with its text, or the problems found in it.
type ParsedTable = Result<Arc<(RawTable, String)>, Vec<Diagnostic>>;

/// The column pipeline's result for one sink table.
type BuiltColumns = Result<TableColumns, Vec<PipelineIssue>>;

/// Runs the column pipeline for one sink table with its source-table options.
fn table_columns(
    table: &RawTable,
    entry: &RawSinkTable,
    source_tables: &BTreeMap<String, RawSourceTable>,
    templates: &BTreeMap<String, RawTemplate>,
    mapping: &TypeMapping,
) -> BuiltColumns {
    let options = source_tables.get(&format!("{}.{}", table.schema, table.table).to_lowercase());
    let primary_key_override = match options.and_then(|o| o.primary_key.as_ref()) {
        None => None,
        Some(OneOrMany::One(name)) => Some(std::slice::from_ref(name)),
        Some(OneOrMany::Many(names)) => Some(names.as_slice()),
    };
    build_full_column_list(PipelineInput {
        table,
        ignore_columns: options
            .and_then(|o| o.ignore_columns.as_deref())
            .unwrap_or_default(),
        include_columns: options.and_then(|o| o.include_columns.as_deref()),
        primary_key_override,
        template_refs: &entry.column_templates,
        templates,
        mapping,
    })
}

/// Reads, parses and checks one table YAML against its location.
fn parse_table_file(root: &Path, path: &Path) -> ParsedTable {
    let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let text = read_text(path).map_err(|e| vec![Diagnostic::new(&rel, e.to_string())])?;
    let table = match crate::fast_table::parse_simple_table(&text) {
        Some(table) => table,
        None => parse_yaml::<RawTable>(&rel, &text).map_err(|d| vec![d])?,
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = Vec::new();
    for (field, value, expected) in [
        ("table", &table.table, &stem),
        ("schema", &table.schema, &dir),
    ] {
        if !value.eq_ignore_ascii_case(expected) {
            errors.push(
                Diagnostic::new(
                    &rel,
                    format!("`{field}: {value}` does not match the file's location (`{expected}`)"),
                )
                .field(field)
                .at(locate(&text, &[&format!("{field}:")]), None),
            );
        }
    }
    if errors.is_empty() {
        Ok(Arc::new((table, text)))
    } else {
        Err(errors)
    }
}

fn pattern_from_groups(source_groups: Option<&Value>, service: &str) -> Option<String> {
    let groups = source_groups?.as_mapping()?;
    groups.values().find_map(|group| {
        let sources = group.get("sources")?.as_mapping()?;
        sources.get(service)?;
        group.get("pattern")?.as_str().map(str::to_string)
    })
}

fn databases_from_groups(
    sink_groups: Option<&Value>,
    sink_name: &str,
    service: &str,
) -> BTreeMap<String, String> {
    let (group, source) = sink_name.split_once('.').unwrap_or((sink_name, service));
    let Some(envs) = sink_groups
        .and_then(|g| g.get(group))
        .and_then(|g| g.get("sources"))
        .and_then(|s| s.get(source))
        .and_then(Value::as_mapping)
    else {
        return BTreeMap::new();
    };
    envs.iter()
        .filter_map(|(env, v)| {
            Some((
                env.as_str()?.to_string(),
                v.get("database")?.as_str()?.to_string(),
            ))
        })
        .collect()
}
