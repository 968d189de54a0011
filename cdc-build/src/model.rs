//! The YAML input formats (DESIGN.md §3) as serde structures.
//!
//! Unknown fields are rejected where a typo would otherwise silently change the
//! output (tables, columns, sinks, sink tables, templates); service files may
//! carry keys of other tools at their top level.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `services/_schemas/<service>/<schema>/<Table>.yaml`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    /// Source database (informational).
    #[serde(default)]
    pub database: Option<String>,
    /// Source schema.
    pub schema: String,
    /// Owning service (informational).
    #[serde(default)]
    pub service: Option<String>,
    /// Source table name.
    pub table: String,
    /// Columns in source order.
    pub columns: Vec<RawColumn>,
    /// Primary key, overriding the per-column flags.
    #[serde(default)]
    pub primary_key: Option<OneOrMany>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// One column of a table YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    /// Column name.
    pub name: String,
    /// MSSQL type, optionally with inline parameters (`nvarchar(50)`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Whether the column belongs to the primary key.
    #[serde(default)]
    pub primary_key: bool,
    /// MSSQL default expression, such as `((0))` or `(getdate())`.
    #[serde(default)]
    pub default_value: Option<serde_norway::Value>,
    /// Length in characters; -1 means `(max)`.
    #[serde(default)]
    pub max_length: Option<i64>,
    /// Numeric or temporal precision.
    #[serde(default)]
    pub precision: Option<u32>,
    /// Numeric scale.
    #[serde(default)]
    pub scale: Option<u32>,
    /// Identity column flag (informational).
    #[serde(default)]
    pub identity: Option<bool>,
    /// The definition of a computed column, as MSSQL holds it (informational:
    /// CDC captures the computed value like any other column's).
    #[serde(default)]
    pub computed: Option<String>,
    /// A computed column whose value is stored (informational).
    #[serde(default)]
    pub persisted: Option<bool>,
    /// The column's earlier name, when it was renamed at the source: the
    /// table file renames the column in place, keeping its data.
    #[serde(default)]
    pub renamed_from: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The names as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(name) => vec![name],
            OneOrMany::Many(names) => names,
        }
    }
}

/// The body under a service file's root key.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawService {
    /// `db-per-tenant` (default) or `db-shared`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Source tables and their options.
    #[serde(default)]
    pub source: Option<RawSource>,
    /// Sink targets by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, RawSink>,
}

/// `source:` of a service file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawSource {
    /// `<schema>.<Table>` → options.
    #[serde(default)]
    pub tables: BTreeMap<String, Option<RawSourceTable>>,
}

/// Options of one source table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSourceTable {
    /// Columns left out of every sink.
    #[serde(default)]
    pub ignore_columns: Option<Vec<String>>,
    /// When given, only these columns (and the primary key) reach the sinks.
    #[serde(default)]
    pub include_columns: Option<Vec<String>>,
    /// Primary key override.
    #[serde(default)]
    pub primary_key: Option<OneOrMany>,
}

/// One sink target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Database per environment; falls back to `sink-groups.yaml`.
    #[serde(default)]
    pub databases: Option<BTreeMap<String, String>>,
    /// Deletes mark rows `__is_deleted` instead of removing them.
    #[serde(default)]
    pub soft_delete: Option<bool>,
    /// `<target_schema>.<Table>` → table options.
    #[serde(default)]
    pub tables: BTreeMap<String, RawSinkTable>,
    /// Placement on Citus for every table (`{by: <column>}`, `reference`, `local`); checked by
    /// the loader's `distribution` module, which reports a wrong form with its line.
    #[serde(default)]
    pub distribution: Option<serde_norway::Value>,
}

/// One table of a sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSinkTable {
    /// Source table, `<schema>.<Table>`.
    pub from: String,
    /// The final table exists already and is not created by us.
    #[serde(default)]
    pub target_exists: Option<bool>,
    /// `false`: do not create the final table (same as `target_exists: true`).
    #[serde(default)]
    pub replicate_structure: Option<bool>,
    /// Extra columns from `column-templates.yaml`.
    #[serde(default)]
    pub column_templates: Vec<RawTemplateRef>,
    /// Per-table override of the sink's `soft_delete`.
    #[serde(default)]
    pub soft_delete: Option<bool>,
    /// Per-table override of the sink's `distribution`.
    #[serde(default)]
    pub distribution: Option<serde_norway::Value>,
}

/// A reference to a column template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplateRef {
    /// Template key.
    pub template: String,
    /// Column name override.
    #[serde(default)]
    pub name: Option<String>,
    /// The column leads the table's primary key (the tenant key): NOT NULL,
    /// and rows of different tenants with the same source key stay apart.
    #[serde(default)]
    pub primary_key: bool,
}

/// `services/_schemas/column-templates.yaml`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    /// Template key → template.
    #[serde(default)]
    pub templates: BTreeMap<String, RawTemplate>,
}

/// One column template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    /// Column name.
    pub name: String,
    /// PostgreSQL type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// NOT NULL when true.
    #[serde(default)]
    pub not_null: bool,
    /// PostgreSQL default expression.
    #[serde(default)]
    pub default: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Value expression for the connector (informational).
    #[serde(default)]
    pub value: Option<String>,
}

/// `service-schemas/adapters/mssql-to-pgsql.mapping.yaml`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// MSSQL base type → PostgreSQL type.
    #[serde(default)]
    pub mappings: BTreeMap<String, String>,
}
