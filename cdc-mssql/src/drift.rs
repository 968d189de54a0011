//! `inspect --check`: what differs between the live source tables and their YAML.
//!
//! Types are compared by meaning (`nvarchar(50)` inline equals `nvarchar` with
//! `max_length: 50`; `float` equals `float(53)`), names case-insensitively as
//! SQL Server compares them.

use std::fmt;

use cdc_build::types::MssqlType;

use crate::ident::TableRef;
use crate::table_yaml::{ColumnYaml, TableYaml};

/// One difference between the source and the YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The table.
    pub table: TableRef,
    /// The column, when the difference is in one.
    pub column: Option<String>,
    /// What differs.
    pub kind: DriftKind,
}

/// The kinds of difference `--check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftKind {
    /// The table is in scope but not in the source database.
    TableMissingAtSource,
    /// The table is at the source but has no YAML file.
    YamlMissing,
    /// The YAML file cannot be read.
    YamlUnreadable(String),
    /// A column exists at the source only.
    ColumnAdded,
    /// A column exists in the YAML only.
    ColumnRemoved,
    /// The types differ (YAML, source).
    TypeChanged(String, String),
    /// Nullability differs (YAML, source).
    NullabilityChanged(bool, bool),
    /// Defaults differ (YAML, source).
    DefaultChanged(Option<String>, Option<String>),
    /// Identity differs (YAML, source).
    IdentityChanged(bool, bool),
    /// A computed column's definition differs (YAML, source).
    ComputedChanged(Option<String>, Option<String>),
    /// Primary keys differ (YAML, source), in key order.
    PrimaryKeyChanged(Vec<String>, Vec<String>),
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.table)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "none".to_string());
        match &self.kind {
            DriftKind::TableMissingAtSource => f.write_str(": not found at the source"),
            DriftKind::YamlMissing => f.write_str(": no table YAML yet"),
            DriftKind::YamlUnreadable(message) => {
                write!(f, ": the table YAML cannot be read: {message}")
            }
            DriftKind::ColumnAdded => f.write_str(": added at the source"),
            DriftKind::ColumnRemoved => f.write_str(": gone from the source"),
            DriftKind::TypeChanged(yaml, live) => {
                write!(f, ": type {yaml} in the YAML, {live} at the source")
            }
            DriftKind::NullabilityChanged(yaml, live) => {
                let word = |nullable: &bool| if *nullable { "NULL" } else { "NOT NULL" };
                write!(
                    f,
                    ": {} in the YAML, {} at the source",
                    word(yaml),
                    word(live)
                )
            }
            DriftKind::DefaultChanged(yaml, live) => write!(
                f,
                ": default {} in the YAML, {} at the source",
                shown(yaml),
                shown(live)
            ),
            DriftKind::IdentityChanged(yaml, live) => {
                write!(f, ": identity {yaml} in the YAML, {live} at the source")
            }
            DriftKind::ComputedChanged(yaml, live) => write!(
                f,
                ": computed definition {} in the YAML, {} at the source",
                shown(yaml),
                shown(live)
            ),
            DriftKind::PrimaryKeyChanged(yaml, live) => write!(
                f,
                ": primary key ({}) in the YAML, ({}) at the source",
                yaml.join(", "),
                live.join(", ")
            ),
        }
    }
}

/// Every difference between a live table and its YAML.
pub fn compare_table(yaml: &TableYaml, live: &TableYaml) -> Vec<Drift> {
    let table = TableRef::new(&live.schema, &live.table);
    let mut drifts = Vec::new();
    let mut push = |column: Option<&str>, kind: DriftKind| {
        drifts.push(Drift {
            table: table.clone(),
            column: column.map(str::to_string),
            kind,
        })
    };
    let key = |t: &TableYaml| -> Vec<String> {
        t.key_columns().iter().map(|c| c.to_lowercase()).collect()
    };
    if key(yaml) != key(live) {
        push(
            None,
            DriftKind::PrimaryKeyChanged(
                yaml.key_columns().iter().map(|c| c.to_string()).collect(),
                live.key_columns().iter().map(|c| c.to_string()).collect(),
            ),
        );
    }
    let find = |columns: &[ColumnYaml], name: &str| -> Option<usize> {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    };
    for live_column in &live.columns {
        let Some(index) = find(&yaml.columns, &live_column.name) else {
            push(Some(&live_column.name), DriftKind::ColumnAdded);
            continue;
        };
        for kind in compare_column(&yaml.columns[index], live_column) {
            push(Some(&live_column.name), kind);
        }
    }
    for yaml_column in &yaml.columns {
        if find(&live.columns, &yaml_column.name).is_none() {
            push(Some(&yaml_column.name), DriftKind::ColumnRemoved);
        }
    }
    drifts
}

fn compare_column(yaml: &ColumnYaml, live: &ColumnYaml) -> Vec<DriftKind> {
    let mut kinds = Vec::new();
    let (yaml_type, live_type) = (type_text(yaml), type_text(live));
    if yaml_type != live_type {
        kinds.push(DriftKind::TypeChanged(yaml_type, live_type));
    }
    if yaml.nullable != live.nullable {
        kinds.push(DriftKind::NullabilityChanged(yaml.nullable, live.nullable));
    }
    let trimmed = |d: &Option<String>| d.as_deref().map(str::trim).map(str::to_string);
    if trimmed(&yaml.default_value) != trimmed(&live.default_value) {
        kinds.push(DriftKind::DefaultChanged(
            yaml.default_value.clone(),
            live.default_value.clone(),
        ));
    }
    if yaml.identity != live.identity {
        kinds.push(DriftKind::IdentityChanged(yaml.identity, live.identity));
    }
    let computed = |c: &ColumnYaml| {
        c.computed.as_ref().map(|definition| match c.persisted {
            true => format!("{definition} persisted"),
            false => definition.clone(),
        })
    };
    if computed(yaml) != computed(live) {
        kinds.push(DriftKind::ComputedChanged(computed(yaml), computed(live)));
    }
    kinds
}

/// A column's type in one canonical spelling, defaults of SQL Server filled in.
fn type_text(column: &ColumnYaml) -> String {
    match MssqlType::from_parts(
        &column.type_name,
        column.max_length,
        column.precision,
        column.scale,
    ) {
        Ok(mut ty) => {
            match ty.name.as_str() {
                "float" if ty.precision.is_none() => ty.precision = Some(53),
                "time" | "datetime2" | "datetimeoffset" if ty.precision.is_none() => {
                    ty.precision = Some(7)
                }
                "decimal" | "numeric" => {
                    if ty.precision.is_none() {
                        ty.precision = Some(18);
                    }
                    if ty.scale.is_none() {
                        ty.scale = Some(0);
                    }
                }
                _ => {}
            }
            ty.to_string()
        }
        // A type the loader would refuse still differs visibly from the source's.
        Err(_) => column.type_name.to_lowercase(),
    }
}
