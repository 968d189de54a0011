//! Column template references of a sink table: their columns, and the tenant key they may lead.

use std::collections::HashMap;

use cdc_core::layout::TEMPLATES_FILE;

use super::{Column, ColumnOrigin, FirstSeen, IssueSite, PipelineInput, PipelineIssue};
use crate::ident::check_identifier;
use crate::location::YamlPath;
use crate::types::PgType;

/// Appends the columns of the sink table's template references to `columns`
/// and returns the names of those marked `primary_key: true` (the tenant key),
/// in reference order. Such a column is NOT NULL whatever its template says.
/// A tenant key needs a source key beside it (`has_source_key`): a tenant
/// column alone does not identify a row.
pub(super) fn push_template_columns<'a>(
    input: &PipelineInput<'a>,
    has_source_key: bool,
    seen: &mut HashMap<String, FirstSeen<'a>>,
    columns: &mut Vec<Column>,
    issues: &mut Vec<PipelineIssue>,
) -> Vec<String> {
    let mut tenant_key = Vec::new();
    for (index, reference) in input.template_refs.iter().enumerate() {
        let item = YamlPath::root().key("column_templates").item(index);
        let field = item.clone().key("template");
        let template_issue = |message: String| {
            PipelineIssue::new(
                field.to_string(),
                IssueSite::SinkTableEntry(field.clone()),
                message,
            )
        };
        let Some(template) = input.templates.get(&reference.template) else {
            let known: Vec<&str> = input.templates.keys().map(String::as_str).collect();
            issues.push(template_issue(format!(
                "unknown column template `{}` (known: {})",
                reference.template,
                if known.is_empty() {
                    format!("none; is {TEMPLATES_FILE} missing?")
                } else {
                    known.join(", ")
                }
            )));
            continue;
        };
        let name: &'a str = reference.name.as_deref().unwrap_or(&template.name);
        if let Err(message) = check_identifier(name) {
            issues.push(template_issue(format!(
                "template column name cannot be represented: {message}"
            )));
            continue;
        }
        let pg_type = match PgType::parse(&template.type_name) {
            Ok(t) => t,
            Err(message) => {
                issues.push(template_issue(format!(
                    "template `{}`: {message}",
                    reference.template
                )));
                continue;
            }
        };
        if let Some(first) = seen.insert(name.to_lowercase(), FirstSeen::Template(name, index)) {
            issues.push(template_issue(format!(
                "template column `{name}` collides with column `{}`",
                first.name()
            )));
            continue;
        }
        if reference.primary_key {
            if !has_source_key {
                let key_field = item.key("primary_key");
                issues.push(PipelineIssue::new(
                    key_field.to_string(),
                    IssueSite::SinkTableEntry(key_field),
                    format!(
                        "`{name}` cannot join the primary key of {}.{}: the table has no primary key, and a tenant column alone does not identify a row (give the table a primary key, or drop `primary_key: true`)",
                        input.table.schema, input.table.table
                    ),
                ));
                continue;
            }
            tenant_key.push(name.to_string());
        }
        columns.push(Column {
            name: name.to_string(),
            pg_type,
            not_null: template.not_null || reference.primary_key,
            default: template.default.clone(),
            origin: ColumnOrigin::Template,
        });
    }
    tenant_key
}
