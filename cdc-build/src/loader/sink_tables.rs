//! A sink's tables: from `<schema>.<Table>: {from: ...}` entries to sink tables with their columns and derived names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::findings::Finding;
use super::project_files::ProjectFiles;
use super::renames::column_renames;
use super::services::{Pattern, ServiceScope, SinkScope};
use super::table_files::closest_tables;
use super::Loader;
use crate::columns::{
    build_full_column_list, IssueSite, PipelineInput, PipelineIssue, TableColumns,
};
use crate::ident::{check_file_stem, check_identifier};
use crate::location::YamlPath;
use crate::model::{OneOrMany, RawSinkTable, RawTable, RawTemplateRef};
use crate::project::{Distribution, SinkTable, TableNames};

/// The column pipeline's result for one sink table.
pub(super) type BuiltColumns = Result<TableColumns, Vec<PipelineIssue>>;

impl Loader {
    /// Loads every table of a sink, in `(target schema, table)` order. Table
    /// files are parsed and column pipelines run in parallel first; entries
    /// are then checked in key order, so problems are reported in that order.
    pub(super) fn load_sink_tables(
        &mut self,
        sink: &SinkScope<'_>,
        entries: BTreeMap<String, RawSinkTable>,
        project: &ProjectFiles,
    ) -> Vec<SinkTable> {
        let schemas_dir = &sink.service.schemas_dir;
        let wanted: Vec<PathBuf> = entries
            .values()
            .filter_map(|entry| exact_table_path(schemas_dir, &entry.from))
            .collect();
        self.tables
            .prefetch(&self.root, wanted, &mut self.errors, &mut self.inputs);
        let mut prebuilt = self
            .prebuild_columns(sink.service, &entries, project)
            .into_iter();
        let mut tables = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let prebuilt = prebuilt.next().flatten();
            if let Some(table) = self.load_sink_table(sink, &key, &entry, prebuilt, project) {
                tables.push(table);
            }
        }
        tables.sort_by(|a, b| {
            (&a.target_schema, &a.target_table).cmp(&(&b.target_schema, &b.target_table))
        });
        tables
    }

    /// Runs the column pipeline, in parallel, for every entry whose table file
    /// is cached under its exact name; `None` for the others. Results come with
    /// the file they were computed from.
    fn prebuild_columns(
        &self,
        service: &ServiceScope,
        entries: &BTreeMap<String, RawSinkTable>,
        project: &ProjectFiles,
    ) -> Vec<Option<(PathBuf, BuiltColumns)>> {
        use rayon::prelude::*;
        let entries: Vec<&RawSinkTable> = entries.values().collect();
        entries
            .par_iter()
            .map(|entry| {
                let path = exact_table_path(&service.schemas_dir, &entry.from)?;
                let table = self.tables.cached(&path)?;
                Some((path, table_columns(&table, entry, service, project)))
            })
            .collect()
    }

    /// Checks one entry and builds its table; `None` (with the problems
    /// recorded) when it cannot be built.
    fn load_sink_table(
        &mut self,
        sink: &SinkScope<'_>,
        key: &str,
        entry: &RawSinkTable,
        prebuilt: Option<(PathBuf, BuiltColumns)>,
        project: &ProjectFiles,
    ) -> Option<SinkTable> {
        let service = sink.service;
        let entry_path = sink.table_path(key);
        let Some((target_schema, target_table)) = key.split_once('.') else {
            self.error(Finding::at(
                &service.file,
                entry_path,
                "expected `<target_schema>.<Table>`",
            ));
            return None;
        };
        let target_ok = self.check_target(service, &entry_path, target_schema, target_table);
        let from_path = entry_path.clone().key("from");
        let Some((source_schema, source_table)) = entry.from.split_once('.') else {
            self.error(Finding::at(
                &service.file,
                from_path,
                format!("expected `<schema>.<Table>`, found `{}`", entry.from),
            ));
            return None;
        };
        if !target_ok {
            return None;
        }
        let table_path = match self.find_table(&service.schemas_dir, source_schema, source_table) {
            Ok(Some(path)) => path,
            Ok(None) => {
                let message =
                    self.no_table_message(service, &entry.from, source_schema, source_table);
                self.error(Finding::at(&service.file, from_path, message));
                return None;
            }
            Err(matches) => {
                let files: Vec<String> = matches
                    .iter()
                    .map(|path| self.rel(path).display().to_string())
                    .collect();
                self.error(Finding::at(
                    &service.file,
                    from_path,
                    format!(
                        "`from: {}` matches {} table files that differ only in case or extension ({}); MSSQL names ignore case: keep one",
                        entry.from,
                        files.len(),
                        files.join(", ")
                    ),
                ));
                return None;
            }
        };
        let table = self.load_table(&table_path)?;
        let table_file = self.rel(&table_path);
        let built = match prebuilt {
            Some((path, built)) if path == table_path => built,
            _ => table_columns(&table, entry, service, project),
        };
        let sites = IssueFiles {
            table_file: &table_file,
            service_file: &service.file,
            sink_table: &entry_path,
            source_table: &match service.source_options(&table.schema, &table.table) {
                Some(source) => service.source_path().key("tables").key(&source.key),
                None => service.source_path(),
            },
        };
        let located = |issue: PipelineIssue| sites.locate(issue);
        let built = match built {
            Ok(built) => built,
            Err(issues) => {
                self.errors.extend(issues.into_iter().map(located));
                return None;
            }
        };
        self.warnings
            .extend(built.warnings.into_iter().map(located));
        let renames = match column_renames(&table, &built.columns, &table_file) {
            Ok(renames) => renames,
            Err(problems) => {
                self.errors.extend(problems);
                return None;
            }
        };
        if built.primary_key.is_empty() {
            self.warn(Finding::in_file(
                &table_file,
                format!("{}.{} has no primary key: only its final table is generated (no staging table, no merge)", table.schema, table.table),
            ));
        }
        if service.pattern == Pattern::DbShared && !names_customer_id(entry) {
            self.warn(Finding::at(
                &service.file,
                entry_path.clone().key("column_templates"),
                format!("pattern db-shared: sink table `{key}` has no customer_id column template"),
            ));
        }
        if service.pattern == Pattern::DbPerTenant && !built.primary_key.is_empty() {
            self.warnings.extend(tenant_outside_key(
                &service.file,
                &entry_path,
                key,
                entry,
                project,
            ));
        }
        Some(SinkTable {
            names: TableNames::derive(target_table),
            target_schema: target_schema.to_string(),
            target_table: target_table.to_string(),
            source_database: table.database.clone(),
            source_schema: table.schema.clone(),
            source_table: table.table.clone(),
            columns: built.columns,
            primary_key: built.primary_key,
            target_exists: entry.target_exists.unwrap_or(false)
                || entry.replicate_structure == Some(false),
            soft_delete: entry.soft_delete.or(sink.soft_delete).unwrap_or(false),
            renames,
            // Resolved for the whole sink by `distribution`, once every table is loaded.
            distribution: Distribution::Local,
        })
    }

    /// Whether the target schema and table can be PostgreSQL identifiers and
    /// the table a file name; problems are recorded at the entry.
    fn check_target(
        &mut self,
        service: &ServiceScope,
        entry_path: &YamlPath,
        target_schema: &str,
        target_table: &str,
    ) -> bool {
        let mut problems = Vec::new();
        for (what, ident) in [
            ("target schema", target_schema),
            ("target table", target_table),
        ] {
            if let Err(message) = check_identifier(ident) {
                problems.push(format!(
                    "{what} cannot be represented in PostgreSQL: {message}"
                ));
            }
        }
        if let Err(message) = check_file_stem(target_table) {
            problems.push(message);
        }
        let ok = problems.is_empty();
        for message in problems {
            self.error(Finding::at(&service.file, entry_path.clone(), message));
        }
        ok
    }

    /// Why `from:` finds no table file, with the names that come closest.
    fn no_table_message(
        &self,
        service: &ServiceScope,
        from: &str,
        source_schema: &str,
        source_table: &str,
    ) -> String {
        let expected = service
            .schemas_dir
            .join(source_schema)
            .join(format!("{source_table}.yaml"));
        let candidates = closest_tables(&service.schemas_dir, from);
        format!(
            "`from: {from}` has no table YAML at {}{}",
            self.rel(&expected).display(),
            if candidates.is_empty() {
                String::new()
            } else {
                format!(" (closest: {})", candidates.join(", "))
            }
        )
    }
}

/// `services/_schemas/<service>/<schema>/<Table>.yaml` for `from: <schema>.<Table>`.
fn exact_table_path(schemas_dir: &Path, from: &str) -> Option<PathBuf> {
    let (schema, table) = from.split_once('.')?;
    Some(schemas_dir.join(schema).join(format!("{table}.yaml")))
}

/// Whether a sink table references a column template for the tenant's `customer_id`.
fn names_customer_id(entry: &RawSinkTable) -> bool {
    entry.column_templates.iter().any(is_tenant_template)
}

/// Whether a template reference is the tenant's `customer_id`, by template key or column name.
fn is_tenant_template(reference: &RawTemplateRef) -> bool {
    reference.template.to_lowercase().contains("customer_id")
        || reference
            .name
            .as_deref()
            .is_some_and(|n| n.to_lowercase().contains("customer_id"))
}

/// Warnings for a `db-per-tenant` sink table with a primary key whose tenant template
/// references (by key, column name or value: `customer_id`) are outside that key.
fn tenant_outside_key(
    service_file: &Path,
    entry_path: &YamlPath,
    key: &str,
    entry: &RawSinkTable,
    project: &ProjectFiles,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, reference) in entry.column_templates.iter().enumerate() {
        let template = project.templates.get(&reference.template);
        let tenant = is_tenant_template(reference)
            || template.is_some_and(|t| {
                [Some(&t.name), t.value.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|text| text.to_lowercase().contains("customer_id"))
            });
        if reference.primary_key || !tenant {
            continue;
        }
        let column = match (&reference.name, template) {
            (Some(name), _) => name.as_str(),
            (None, Some(template)) => template.name.as_str(),
            (None, None) => reference.template.as_str(),
        };
        let item = YamlPath::root().key("column_templates").item(index);
        let message = format!(
            "pattern db-per-tenant: sink table `{key}` carries the tenant template `{}` (`{column}`) outside its primary key: rows of two tenants with the same source key would overwrite each other; add `primary_key: true` to the template reference",
            reference.template
        );
        findings.push(
            Finding::at(service_file, entry_path.clone().join(&item), message)
                .field(item.to_string()),
        );
    }
    findings
}

/// Runs the column pipeline for one sink table with its source-table options.
fn table_columns(
    table: &RawTable,
    entry: &RawSinkTable,
    service: &ServiceScope,
    project: &ProjectFiles,
) -> BuiltColumns {
    let options = service
        .source_options(&table.schema, &table.table)
        .map(|source| &source.options);
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
        templates: &project.templates,
        mapping: &project.mapping,
    })
}

/// The files and entries a sink table's pipeline issues can concern.
struct IssueFiles<'a> {
    /// The table YAML, relative to the project root.
    table_file: &'a Path,
    /// The service file, relative to the project root.
    service_file: &'a Path,
    /// The sink table's entry in the service file.
    sink_table: &'a YamlPath,
    /// The source table's entry in the service file (`source` when it has none).
    source_table: &'a YamlPath,
}

impl IssueFiles<'_> {
    /// A pipeline issue as a finding in the file and at the node it concerns.
    fn locate(&self, issue: PipelineIssue) -> Finding {
        let (file, path) = match issue.site {
            IssueSite::TableFile(path) => (self.table_file, path),
            IssueSite::SinkTableEntry(path) => {
                (self.service_file, self.sink_table.clone().join(&path))
            }
            IssueSite::SourceTableEntry(path) => {
                (self.service_file, self.source_table.clone().join(&path))
            }
        };
        Finding::at(file, path, issue.message).field(issue.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_id_templates_are_recognised_by_key_or_column_name() {
        let entry = |template: &str, name: Option<&str>| RawSinkTable {
            from: "dbo.T".into(),
            target_exists: None,
            replicate_structure: None,
            column_templates: vec![RawTemplateRef {
                template: template.into(),
                name: name.map(str::to_string),
                primary_key: false,
            }],
            soft_delete: None,
            distribution: None,
        };
        assert!(names_customer_id(&entry("Customer_ID", None)));
        assert!(names_customer_id(&entry("tenant", Some("_customer_id"))));
        assert!(!names_customer_id(&entry("region", None)));
        assert_eq!(
            exact_table_path(Path::new("s"), "dbo.Order Details"),
            Some(PathBuf::from("s/dbo/Order Details.yaml"))
        );
        assert_eq!(exact_table_path(Path::new("s"), "nodot"), None);
    }
}
