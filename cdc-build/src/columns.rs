//! The column pipeline: source columns → column templates → CDC metadata.
//!
//! [`build_full_column_list`] is the one function that decides a table's
//! columns; the renderers and the diff engine both call it, so what is compared
//! is exactly what is generated.

use std::collections::{BTreeMap, HashMap};

use crate::ident::check_identifier;
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
    /// The MSSQL type, for source columns.
    pub source_type: Option<String>,
}

/// Name of the operation column (`INSERT`, `UPDATE`, `DELETE`, `READ`, or Debezium's `c`/`u`/`d`/`r`).
pub const COL_OPERATION: &str = "__cdc_operation";
/// Source commit time in epoch milliseconds: first part of an event's position.
pub const COL_SOURCE_TS: &str = "__source_ts_ms";
/// Kafka offset: second part of an event's position.
pub const COL_KAFKA_OFFSET: &str = "__kafka_offset";
/// Source identifier (database, tenant).
pub const COL_SOURCE: &str = "__source";
/// Soft-delete marker.
pub const COL_IS_DELETED: &str = "__is_deleted";
/// When the row was last merged.
pub const COL_SYNC_TIMESTAMP: &str = "__sync_timestamp";
/// Kafka partition (staging only).
pub const COL_KAFKA_PARTITION: &str = "__kafka_partition";
/// Kafka record timestamp (staging only).
pub const COL_KAFKA_TIMESTAMP: &str = "__kafka_timestamp";

/// The six CDC metadata columns every final table ends with.
pub fn cdc_metadata_columns() -> Vec<Column> {
    let meta = |name: &str, pg_type, not_null, default: Option<&str>| Column {
        name: name.to_string(),
        pg_type,
        not_null,
        default: default.map(str::to_string),
        origin: ColumnOrigin::Metadata,
        source_type: None,
    };
    vec![
        meta(COL_OPERATION, PgType::Text, false, None),
        meta(COL_SOURCE_TS, PgType::BigInt, false, None),
        meta(COL_KAFKA_OFFSET, PgType::BigInt, false, None),
        meta(COL_SOURCE, PgType::Text, false, None),
        meta(COL_IS_DELETED, PgType::Boolean, true, Some("false")),
        meta(
            COL_SYNC_TIMESTAMP,
            PgType::TimestampTz(None),
            true,
            Some("now()"),
        ),
    ]
}

/// Names of the metadata columns of final and staging tables, in the order of
/// [`cdc_metadata_columns`] then [`staging_extra_columns`].
pub const METADATA_NAMES: [&str; 8] = [
    COL_OPERATION,
    COL_SOURCE_TS,
    COL_KAFKA_OFFSET,
    COL_SOURCE,
    COL_IS_DELETED,
    COL_SYNC_TIMESTAMP,
    COL_KAFKA_PARTITION,
    COL_KAFKA_TIMESTAMP,
];

/// The columns a staging table has beyond the final table's.
pub fn staging_extra_columns() -> Vec<Column> {
    [
        (COL_KAFKA_PARTITION, PgType::Integer),
        (COL_KAFKA_TIMESTAMP, PgType::TimestampTz(None)),
    ]
    .into_iter()
    .map(|(name, pg_type)| Column {
        name: name.to_string(),
        pg_type,
        not_null: false,
        default: None,
        origin: ColumnOrigin::Metadata,
        source_type: None,
    })
    .collect()
}

/// A problem found by the pipeline, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineIssue {
    /// Field path in the table YAML, or in the service file when `in_service` is set.
    pub field: String,
    /// Needles to locate the line (see [`crate::error::locate`]).
    pub locate: Vec<String>,
    /// Whether the problem is in the service file rather than the table YAML.
    pub in_service: bool,
    /// What is wrong.
    pub message: String,
}

/// A locate needle meaning "the n-th item of `columns:`".
pub const ITEM_LOCATOR: &str = "#columns-item:";

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
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(table.columns.len() + 8);
    let issue = |field: String, locate: Vec<String>, message: String| PipelineIssue {
        field,
        locate,
        in_service: false,
        message,
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
                issues.push(PipelineIssue {
                    field: list_name.to_string(),
                    locate: vec![list_name.to_string(), name.clone()],
                    in_service: true,
                    message: format!(
                        "column `{name}` is not a column of {}.{}",
                        table.schema, table.table
                    ),
                });
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
        match known(name) {
            Some(column) => primary_key_resolved.push(column.name.clone()),
            None => issues.push(PipelineIssue {
                field: "primary_key".to_string(),
                locate: vec!["primary_key".to_string(), name.clone()],
                in_service: key_from_service,
                message: format!(
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
            }),
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
        let field = |name: &str| format!("columns[{index}].{name}");
        let locate = || vec![format!("{ITEM_LOCATOR}{index}")];
        if let Err(message) = check_identifier(&raw.name) {
            issues.push(issue(
                field("name"),
                locate(),
                format!("column name cannot be represented in PostgreSQL: {message}"),
            ));
            continue;
        }
        if let Some(first) = seen.insert(raw.name.to_lowercase(), &raw.name) {
            issues.push(issue(
                field("name"),
                vec![format!("{ITEM_LOCATOR}{index}")],
                format!(
                    "column `{}` is listed twice (case-insensitively the same as `{first}`)",
                    raw.name
                ),
            ));
            continue;
        }
        let in_key = primary_key_resolved.iter().any(|k| k == &raw.name);
        if ignored(&raw.name) || (!included(&raw.name) && !in_key) {
            if in_key {
                issues.push(PipelineIssue {
                    field: "ignore_columns".to_string(),
                    locate: vec!["ignore_columns".to_string(), raw.name.clone()],
                    in_service: true,
                    message: format!(
                        "`{}` is part of the primary key and cannot be ignored",
                        raw.name
                    ),
                });
            }
            continue;
        }
        let mssql =
            match MssqlType::from_parts(&raw.type_name, raw.max_length, raw.precision, raw.scale) {
                Ok(ty) => ty,
                Err(message) => {
                    issues.push(issue(field("type"), locate(), message));
                    continue;
                }
            };
        let mapped = match input.mapping.map(&mssql) {
            Ok(mapped) => mapped,
            Err(message) => {
                issues.push(issue(
                    field("type"),
                    locate(),
                    format!("`{mssql}`: {message}"),
                ));
                continue;
            }
        };
        if mapped.fallback {
            warnings.push(issue(
                field("type"),
                locate(),
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
                    warnings.push(issue(
                        field("default_value"),
                        locate(),
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
            source_type: Some(mssql.to_string()),
        });
    }
    if table.columns.is_empty() {
        issues.push(issue(
            "columns".to_string(),
            vec!["columns".to_string()],
            "a table needs at least one column".to_string(),
        ));
    }

    for (index, reference) in input.template_refs.iter().enumerate() {
        let field = format!("column_templates[{index}].template");
        let service_issue = |message: String| PipelineIssue {
            field: field.clone(),
            locate: vec!["column_templates".to_string(), reference.template.clone()],
            in_service: true,
            message,
        };
        let Some(template) = input.templates.get(&reference.template) else {
            let known: Vec<&str> = input.templates.keys().map(String::as_str).collect();
            issues.push(service_issue(format!(
                "unknown column template `{}` (known: {})",
                reference.template,
                if known.is_empty() {
                    "none; is services/_schemas/column-templates.yaml missing?".to_string()
                } else {
                    known.join(", ")
                }
            )));
            continue;
        };
        let name: &str = reference.name.as_deref().unwrap_or(&template.name);
        if let Err(message) = check_identifier(name) {
            issues.push(service_issue(format!(
                "template column name cannot be represented: {message}"
            )));
            continue;
        }
        let pg_type = match PgType::parse(&template.type_name) {
            Ok(t) => t,
            Err(message) => {
                issues.push(service_issue(format!(
                    "template `{}`: {message}",
                    reference.template
                )));
                continue;
            }
        };
        if let Some(first) = seen.insert(name.to_lowercase(), name) {
            issues.push(service_issue(format!(
                "template column `{name}` collides with column `{first}`"
            )));
            continue;
        }
        columns.push(Column {
            name: name.to_string(),
            pg_type,
            not_null: template.not_null,
            default: template.default.clone(),
            origin: ColumnOrigin::Template,
            source_type: None,
        });
    }

    for meta in METADATA_NAMES {
        // The names are lowercase already.
        if let Some(first) = seen.get(meta) {
            issues.push(issue(
                "columns".to_string(),
                vec![format!("name: {first}")],
                format!("column `{first}` collides with the CDC metadata column `{meta}`"),
            ));
        }
    }
    columns.extend(cdc_metadata_columns());

    if issues.is_empty() {
        Ok(TableColumns {
            columns,
            primary_key: primary_key_resolved,
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

/// Translates the MSSQL defaults that have an exact PostgreSQL meaning.
pub fn translate_default(mssql: &str, pg_type: &PgType) -> Option<String> {
    let mut text = mssql.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "getdate()" | "sysdatetime()" | "current_timestamp" => {
            return matches!(
                pg_type,
                PgType::Timestamp(_) | PgType::TimestampTz(_) | PgType::Date
            )
            .then(|| "now()".to_string())
        }
        "getutcdate()" | "sysutcdatetime()" => {
            return matches!(pg_type, PgType::Timestamp(_))
                .then(|| "timezone('utc', now())".to_string())
        }
        "sysdatetimeoffset()" => {
            return matches!(pg_type, PgType::TimestampTz(_)).then(|| "now()".to_string())
        }
        "newid()" | "newsequentialid()" => {
            return matches!(pg_type, PgType::Uuid).then(|| "gen_random_uuid()".to_string())
        }
        _ => {}
    }
    let numeric = {
        let digits = lower.strip_prefix('-').unwrap_or(&lower);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().filter(|c| *c == '.').count() <= 1
            && !digits.starts_with('.')
            && !digits.ends_with('.')
    };
    if numeric {
        return match pg_type {
            PgType::Boolean => match lower.as_str() {
                "0" => Some("false".to_string()),
                "1" => Some("true".to_string()),
                _ => None,
            },
            PgType::SmallInt
            | PgType::Integer
            | PgType::BigInt
            | PgType::Numeric(_)
            | PgType::Real
            | PgType::Double => Some(lower.clone()),
            _ => None,
        };
    }
    let quoted = text.strip_prefix('N').unwrap_or(text);
    if quoted.len() >= 2 && quoted.starts_with('\'') && quoted.ends_with('\'') {
        let inner = &quoted[1..quoted.len() - 1];
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        let value = inner.replace("''", "'");
        return matches!(pg_type, PgType::Char(_) | PgType::Varchar(_) | PgType::Text)
            .then(|| crate::ident::quote_literal(&value));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_match_the_columns() {
        let names: Vec<String> = cdc_metadata_columns()
            .into_iter()
            .chain(staging_extra_columns())
            .map(|c| c.name)
            .collect();
        assert_eq!(names, METADATA_NAMES);
        assert!(METADATA_NAMES.iter().all(|n| *n == n.to_lowercase()));
    }

    #[test]
    fn lowercase_comparison() {
        assert!(same_lowercase("OrderId", "orderid"));
        assert!(!same_lowercase("OrderId", "order_id"));
        // KELVIN SIGN lowercases to an ASCII k.
        assert!(same_lowercase("\u{212A}ey", "key"));
        assert!(same_lowercase("Äpfel", "äPFEL"));
    }

    #[test]
    fn defaults() {
        assert_eq!(
            translate_default("((0))", &PgType::Boolean).as_deref(),
            Some("false")
        );
        assert_eq!(
            translate_default("((42))", &PgType::Integer).as_deref(),
            Some("42")
        );
        assert_eq!(
            translate_default("(-1.5)", &PgType::Numeric(None)).as_deref(),
            Some("-1.5")
        );
        assert_eq!(
            translate_default("(getdate())", &PgType::Timestamp(Some(3))).as_deref(),
            Some("now()")
        );
        assert_eq!(
            translate_default("(newid())", &PgType::Uuid).as_deref(),
            Some("gen_random_uuid()")
        );
        assert_eq!(
            translate_default("(N'it''s')", &PgType::Varchar(Some(5))).as_deref(),
            Some("'it''s'")
        );
        assert_eq!(translate_default("(dbo.fn())", &PgType::Integer), None);
        assert_eq!(translate_default("((1))", &PgType::Uuid), None);
    }
}
