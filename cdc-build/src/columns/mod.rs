//! The column pipeline: source columns → column templates → CDC metadata.
//!
//! [`build_full_column_list`] is the one function that decides a table's
//! columns; the renderers and the diff engine both call it, so what is compared
//! is exactly what is generated.

mod defaults;
mod expression;
mod metadata;
mod templates;

use std::collections::{BTreeMap, HashMap};

pub use self::defaults::translate_default;
pub use self::expression::check_single_expression;
pub use self::metadata::{
    cdc_metadata_columns, staging_extra_columns, COL_DEBEZIUM_DELETED, COL_DEBEZIUM_OP,
    COL_IS_DELETED, COL_KAFKA_OFFSET, COL_KAFKA_PARTITION, COL_KAFKA_TIMESTAMP, COL_OPERATION,
    COL_SOURCE, COL_SOURCE_DB, COL_SOURCE_TABLE, COL_SOURCE_TS, COL_SYNC_TIMESTAMP, METADATA_NAMES,
};
use crate::ident::check_identifier;
use crate::location::YamlPath;
use crate::model::{OneOrMany, RawTable, RawTemplate, RawTemplateRef};
use crate::types::{MssqlType, PgType, TypeMapping};

/// Where a column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnOrigin {
    /// The source table.
    Source,
    /// A column template.
    Template,
    /// CDC metadata added by the generator.
    Metadata,
}

/// One column of a final table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name as in PostgreSQL.
    pub name: String,
    /// PostgreSQL type.
    pub pg_type: PgType,
    /// NOT NULL constraint.
    pub not_null: bool,
    /// SQL default expression.
    pub default: Option<String>,
    /// Where the column comes from.
    pub origin: ColumnOrigin,
}

/// The file and node a pipeline problem concerns; paths are relative to the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueSite {
    /// The table YAML, from its root (`columns[2]`, `primary_key`).
    TableFile(YamlPath),
    /// The service file, under the source table's entry
    /// (`<service>.source.tables.<schema>.<Table>`): `ignore_columns`, `primary_key`.
    SourceTableEntry(YamlPath),
    /// The service file, under the sink table's entry
    /// (`<service>.sinks.<sink>.tables.<schema>.<Table>`): `column_templates`.
    SinkTableEntry(YamlPath),
}

/// A problem found by the pipeline, with the field it concerns and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineIssue {
    /// The field as reported, relative to its site's entry (`columns[2].type`, `ignore_columns`).
    pub field: String,
    /// The file and node the problem concerns.
    pub site: IssueSite,
    /// What is wrong.
    pub message: String,
}

impl PipelineIssue {
    fn new(field: impl Into<String>, site: IssueSite, message: impl Into<String>) -> PipelineIssue {
        PipelineIssue {
            field: field.into(),
            site,
            message: message.into(),
        }
    }

    /// A problem with the `index`-th item of the table's `columns`, in `field` of it.
    fn column(index: usize, field: &str, message: impl Into<String>) -> PipelineIssue {
        let item = YamlPath::root().key("columns").item(index);
        PipelineIssue::new(
            item.clone().key(field).to_string(),
            IssueSite::TableFile(item),
            message,
        )
    }
}

/// Inputs of the pipeline for one sink table.
#[derive(Debug, Clone, Copy)]
pub struct PipelineInput<'a> {
    /// The parsed table YAML.
    pub table: &'a RawTable,
    /// `ignore_columns` of the service's source table entry.
    pub ignore_columns: &'a [String],
    /// `include_columns` of the service's source table entry.
    pub include_columns: Option<&'a [String]>,
    /// Primary key override from the service file.
    pub primary_key_override: Option<&'a [String]>,
    /// Column templates referenced by the sink table.
    pub template_refs: &'a [RawTemplateRef],
    /// All templates of the project.
    pub templates: &'a BTreeMap<String, RawTemplate>,
    /// The type mapping.
    pub mapping: &'a TypeMapping,
}

/// The pipeline's result for one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableColumns {
    /// Columns in order: source, templates, metadata.
    pub columns: Vec<Column>,
    /// Primary key column names, in key order.
    pub primary_key: Vec<String>,
    /// Non-fatal findings (unknown types, untranslated defaults).
    pub warnings: Vec<PipelineIssue>,
}

/// Where a column name was first seen, for collisions with later names.
#[derive(Debug, Clone, Copy)]
enum FirstSeen<'a> {
    /// The `index`-th column of the table YAML.
    Source(&'a str, usize),
    /// The `index`-th column template reference of the sink table.
    Template(&'a str, usize),
}

impl<'a> FirstSeen<'a> {
    fn name(self) -> &'a str {
        match self {
            FirstSeen::Source(name, _) | FirstSeen::Template(name, _) => name,
        }
    }
}

/// Builds a table's full column list: source columns (minus `ignore_columns`,
/// limited by `include_columns`), then column templates, then the CDC metadata
/// columns. Every problem found is returned, not just the first.
pub fn build_full_column_list(
    input: PipelineInput<'_>,
) -> Result<TableColumns, Vec<PipelineIssue>> {
    let mut issues = Vec::new();
    let mut warnings = Vec::new();
    let table = input.table;
    // Lowercased name → the first column that has it.
    let mut seen: HashMap<String, FirstSeen<'_>> = HashMap::with_capacity(table.columns.len() + 8);
    let in_options = |list: &str, name: &str| {
        IssueSite::SourceTableEntry(YamlPath::root().key(list).scalar(name))
    };

    // Names that the service file refers to must exist. Of columns with the
    // same lowercased name, the last one counts.
    let known = |name: &str| {
        table
            .columns
            .iter()
            .rev()
            .find(|c| same_lowercase(&c.name, name))
    };
    for (list_name, list) in [
        ("ignore_columns", Some(input.ignore_columns)),
        ("include_columns", input.include_columns),
    ] {
        for name in list.unwrap_or_default() {
            if known(name).is_none() {
                issues.push(PipelineIssue::new(
                    list_name,
                    in_options(list_name, name),
                    format!(
                        "column `{name}` is not a column of {}.{}",
                        table.schema, table.table
                    ),
                ));
            }
        }
    }

    // Primary key: service override, then the table's top-level key, then column flags.
    let table_key = match &table.primary_key {
        None => None,
        Some(OneOrMany::One(name)) => Some(std::slice::from_ref(name)),
        Some(OneOrMany::Many(names)) => Some(names.as_slice()),
    };
    let (primary_key, key_from_service): (Vec<&String>, bool) =
        match (input.primary_key_override, table_key) {
            (Some(key), _) => (key.iter().collect(), true),
            (None, Some(key)) => (key.iter().collect(), false),
            (None, None) => (
                table
                    .columns
                    .iter()
                    .filter(|c| c.primary_key)
                    .map(|c| &c.name)
                    .collect(),
                false,
            ),
        };
    let mut primary_key_resolved = Vec::with_capacity(primary_key.len());
    for name in primary_key {
        let site = || {
            if key_from_service {
                in_options("primary_key", name)
            } else {
                IssueSite::TableFile(YamlPath::root().key("primary_key").scalar(name))
            }
        };
        match known(name) {
            Some(column) if primary_key_resolved.contains(&column.name) => {
                issues.push(PipelineIssue::new(
                    "primary_key",
                    site(),
                    format!(
                        "primary key lists column `{}` twice{}",
                        column.name,
                        if name == &column.name {
                            String::new()
                        } else {
                            format!(" (`{name}` is case-insensitively `{}`)", column.name)
                        }
                    ),
                ))
            }
            Some(column) => primary_key_resolved.push(column.name.clone()),
            None => issues.push(PipelineIssue::new(
                "primary_key",
                if key_from_service {
                    in_options("primary_key", name)
                } else {
                    IssueSite::TableFile(YamlPath::root().key("primary_key").scalar(name))
                },
                format!(
                    "primary key names `{name}`, which is not a column of {}.{} (columns: {})",
                    table.schema,
                    table.table,
                    table
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    let ignored = |name: &str| {
        input
            .ignore_columns
            .iter()
            .any(|i| i.eq_ignore_ascii_case(name))
    };
    let included = |name: &str| {
        input
            .include_columns
            .is_none_or(|list| list.iter().any(|i| i.eq_ignore_ascii_case(name)))
    };
    let mut columns = Vec::with_capacity(table.columns.len() + input.template_refs.len() + 6);
    for (index, raw) in table.columns.iter().enumerate() {
        if let Err(message) = check_identifier(&raw.name) {
            issues.push(PipelineIssue::column(
                index,
                "name",
                format!("column name cannot be represented in PostgreSQL: {message}"),
            ));
            continue;
        }
        let lowercase = raw.name.to_lowercase();
        if let Some(first) = seen.insert(lowercase, FirstSeen::Source(&raw.name, index)) {
            issues.push(PipelineIssue::column(
                index,
                "name",
                format!(
                    "column `{}` is listed twice (case-insensitively the same as `{}`)",
                    raw.name,
                    first.name()
                ),
            ));
            continue;
        }
        let in_key = primary_key_resolved.iter().any(|k| k == &raw.name);
        if ignored(&raw.name) || (!included(&raw.name) && !in_key) {
            if in_key {
                issues.push(PipelineIssue::new(
                    "ignore_columns",
                    in_options("ignore_columns", &raw.name),
                    format!(
                        "`{}` is part of the primary key and cannot be ignored",
                        raw.name
                    ),
                ));
            }
            continue;
        }
        let mssql =
            match MssqlType::from_parts(&raw.type_name, raw.max_length, raw.precision, raw.scale) {
                Ok(ty) => ty,
                Err(message) => {
                    issues.push(PipelineIssue::column(index, "type", message));
                    continue;
                }
            };
        let mapped = match input.mapping.map(&mssql) {
            Ok(mapped) => mapped,
            Err(message) => {
                issues.push(PipelineIssue::column(
                    index,
                    "type",
                    format!("`{mssql}`: {message}"),
                ));
                continue;
            }
        };
        if mapped.fallback {
            warnings.push(PipelineIssue::column(
                index,
                "type",
                format!(
                    "unknown MSSQL type `{}` of column {}.{}.{} mapped to text",
                    raw.type_name, table.schema, table.table, raw.name
                ),
            ));
        }
        let default = match &raw.default_value {
            None => None,
            Some(value) => {
                let text = match value {
                    serde_norway::Value::String(s) => s.clone(),
                    serde_norway::Value::Number(n) => n.to_string(),
                    serde_norway::Value::Bool(b) => b.to_string(),
                    _ => String::new(),
                };
                let translated = translate_default(&text, &mapped.pg);
                if translated.is_none()
                    && !text.trim().is_empty()
                    && !text.eq_ignore_ascii_case("null")
                {
                    warnings.push(PipelineIssue::column(
                        index,
                        "default_value",
                        format!("MSSQL default `{text}` of column `{}` has no PostgreSQL translation; the column gets no default", raw.name),
                    ));
                }
                translated
            }
        };
        columns.push(Column {
            name: raw.name.clone(),
            pg_type: mapped.pg,
            not_null: in_key || !raw.nullable,
            default,
            origin: ColumnOrigin::Source,
        });
    }
    if table.columns.is_empty() {
        let columns = YamlPath::root().key("columns");
        issues.push(PipelineIssue::new(
            columns.to_string(),
            IssueSite::TableFile(columns),
            "a table needs at least one column",
        ));
    }

    let tenant_key = templates::push_template_columns(
        &input,
        !primary_key_resolved.is_empty(),
        &mut seen,
        &mut columns,
        &mut issues,
    );

    for meta in METADATA_NAMES {
        // The names are lowercase already.
        if let Some(&first) = seen.get(meta) {
            let (field, site) = match first {
                FirstSeen::Source(_, index) => (
                    "columns".to_string(),
                    IssueSite::TableFile(YamlPath::root().key("columns").item(index)),
                ),
                FirstSeen::Template(_, index) => {
                    let item = YamlPath::root().key("column_templates").item(index);
                    (item.to_string(), IssueSite::SinkTableEntry(item))
                }
            };
            issues.push(PipelineIssue::new(
                field,
                site,
                format!(
                    "column `{}` collides with the CDC metadata column `{meta}`",
                    first.name()
                ),
            ));
        }
    }
    columns.extend(cdc_metadata_columns());

    if issues.is_empty() {
        Ok(TableColumns {
            columns,
            // The tenant key leads: rows are told apart by tenant first.
            primary_key: tenant_key.into_iter().chain(primary_key_resolved).collect(),
            warnings,
        })
    } else {
        Err(issues)
    }
}

/// Whether two names are equal once lowercased (Unicode-aware, as
/// `str::to_lowercase`), without allocating for ASCII names.
fn same_lowercase(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_comparison() {
        assert!(same_lowercase("OrderId", "orderid"));
        assert!(!same_lowercase("OrderId", "order_id"));
        // KELVIN SIGN lowercases to an ASCII k.
        assert!(same_lowercase("\u{212A}ey", "key"));
        assert!(same_lowercase("Äpfel", "äPFEL"));
    }
}
