//! The table YAML that inspection writes (DESIGN.md §3): its model, its
//! renderer, and the way back from what cdc-build's loader reads.

use cdc_build::model::{OneOrMany, RawColumn, RawTable};
use serde_norway::Value;

use crate::scalar::push_string;

/// One table definition, as `services/_schemas/<service>/<schema>/<Table>.yaml` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableYaml {
    /// Source database.
    pub database: Option<String>,
    /// Source schema.
    pub schema: String,
    /// Owning service.
    pub service: Option<String>,
    /// Table name.
    pub table: String,
    /// Free text.
    pub description: Option<String>,
    /// A primary key whose key order differs from the column order; `None` when
    /// the per-column `primary_key` flags say it all.
    pub primary_key: Option<Vec<String>>,
    /// Columns in source order.
    pub columns: Vec<ColumnYaml>,
}

/// One column of a table YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnYaml {
    /// Column name.
    pub name: String,
    /// MSSQL base type name, without parameters (`nvarchar`).
    pub type_name: String,
    /// Length in characters; -1 is `(max)`.
    pub max_length: Option<i64>,
    /// Numeric precision, float precision or fractional-seconds precision.
    pub precision: Option<u32>,
    /// Numeric scale.
    pub scale: Option<u32>,
    /// Accepts NULL.
    pub nullable: bool,
    /// Part of the primary key (flag form).
    pub primary_key: bool,
    /// MSSQL default expression as the catalog holds it (`((0))`).
    pub default_value: Option<String>,
    /// Identity column.
    pub identity: bool,
    /// The definition of a computed column (`([Quantity]*[UnitPrice])`).
    pub computed: Option<String>,
    /// A computed column whose value is stored.
    pub persisted: bool,
    /// Free text.
    pub description: Option<String>,
}

impl TableYaml {
    /// The primary key in key order, whichever form the file uses.
    pub fn key_columns(&self) -> Vec<&str> {
        match &self.primary_key {
            Some(names) => names.iter().map(String::as_str).collect(),
            None => self
                .columns
                .iter()
                .filter(|c| c.primary_key)
                .map(|c| c.name.as_str())
                .collect(),
        }
    }
}

/// Renders a table YAML in the block style that the loader reads fastest.
pub fn render_table_yaml(table: &TableYaml) -> String {
    let mut out = String::with_capacity(128 + table.columns.len() * 96);
    let field = |out: &mut String, indent: &str, key: &str, value: &str| {
        out.push_str(indent);
        out.push_str(key);
        out.push_str(": ");
        push_string(out, value);
        out.push('\n');
    };
    if let Some(database) = &table.database {
        field(&mut out, "", "database", database);
    }
    field(&mut out, "", "schema", &table.schema);
    if let Some(service) = &table.service {
        field(&mut out, "", "service", service);
    }
    field(&mut out, "", "table", &table.table);
    if let Some(description) = &table.description {
        field(&mut out, "", "description", description);
    }
    if let Some(key) = &table.primary_key {
        out.push_str("primary_key:\n");
        for name in key {
            out.push_str("  - ");
            push_string(&mut out, name);
            out.push('\n');
        }
    }
    out.push_str("columns:\n");
    for column in &table.columns {
        field(&mut out, "  - ", "name", &column.name);
        field(&mut out, "    ", "type", &column.type_name);
        let number = |out: &mut String, key: &str, value: Option<i64>| {
            if let Some(value) = value {
                out.push_str("    ");
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&value.to_string());
                out.push('\n');
            }
        };
        number(&mut out, "max_length", column.max_length);
        number(&mut out, "precision", column.precision.map(i64::from));
        number(&mut out, "scale", column.scale.map(i64::from));
        out.push_str(if column.nullable {
            "    nullable: true\n"
        } else {
            "    nullable: false\n"
        });
        if column.primary_key {
            out.push_str("    primary_key: true\n");
        }
        if let Some(default) = &column.default_value {
            field(&mut out, "    ", "default_value", default);
        }
        if column.identity {
            out.push_str("    identity: true\n");
        }
        if let Some(definition) = &column.computed {
            field(&mut out, "    ", "computed", definition);
        }
        if column.persisted {
            out.push_str("    persisted: true\n");
        }
        if let Some(description) = &column.description {
            field(&mut out, "    ", "description", description);
        }
    }
    out
}

/// The loader's view of a table file turned back into the writer's model;
/// `render_table_yaml(&from_raw_table(parsed))` gives a saved file's bytes back.
pub fn from_raw_table(raw: &RawTable) -> TableYaml {
    TableYaml {
        database: raw.database.clone(),
        schema: raw.schema.clone(),
        service: raw.service.clone(),
        table: raw.table.clone(),
        description: raw.description.clone(),
        primary_key: raw.primary_key.clone().map(OneOrMany::into_vec),
        columns: raw.columns.iter().map(from_raw_column).collect(),
    }
}

fn from_raw_column(raw: &RawColumn) -> ColumnYaml {
    ColumnYaml {
        name: raw.name.clone(),
        type_name: raw.type_name.clone(),
        max_length: raw.max_length,
        precision: raw.precision,
        scale: raw.scale,
        nullable: raw.nullable,
        primary_key: raw.primary_key,
        default_value: raw.default_value.as_ref().and_then(value_text),
        identity: raw.identity.unwrap_or(false),
        computed: raw.computed.clone(),
        persisted: raw.persisted.unwrap_or(false),
        description: raw.description.clone(),
    }
}

/// A default written by hand may be a number or a boolean; it means its text.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        other => serde_norway::to_string(other)
            .ok()
            .map(|s| s.trim_end().to_string()),
    }
}
