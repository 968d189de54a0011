//! Catalog rows → table YAML: the pure half of `inspect`.
//!
//! [`CATALOG_COLUMNS_QUERY`] returns one [`CatalogRow`] per column; the
//! driver only runs it. [`tables_from_rows`] turns the rows into
//! [`TableYaml`]s: lengths in characters, `(max)` as -1, alias types resolved,
//! identity and computed columns recorded, the primary key in key order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ident::TableRef;
use crate::table_yaml::{ColumnYaml, TableYaml};

/// The catalog query behind `inspect`; `@P1` is a schema name or NULL for all.
pub const CATALOG_COLUMNS_QUERY: &str = include_str!("sql/catalog_columns.sql");

/// One row of [`CATALOG_COLUMNS_QUERY`], as recorded in the test fixtures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRow {
    /// `sys.schemas.name`
    pub schema_name: String,
    /// `sys.tables.name`
    pub table_name: String,
    /// `sys.columns.column_id`: the column order.
    pub column_id: i32,
    /// `sys.columns.name`
    pub column_name: String,
    /// The declared type (`sys.types` by `user_type_id`): an alias type's own name.
    pub type_name: String,
    /// Whether the declared type is a user-defined (alias or CLR) type.
    pub is_user_defined: bool,
    /// The system type under it (`sys.types` by `system_type_id`); NULL for CLR types.
    pub system_type_name: Option<String>,
    /// Length in bytes; -1 for `(max)`.
    pub max_length: i16,
    /// `sys.columns.precision`
    pub precision: u8,
    /// `sys.columns.scale` (for time types: fractional-seconds digits).
    pub scale: u8,
    /// `sys.columns.is_nullable`
    pub is_nullable: bool,
    /// `sys.columns.is_identity`
    pub is_identity: bool,
    /// `sys.columns.is_computed`
    pub is_computed: bool,
    /// `sys.computed_columns.definition`
    pub computed_definition: Option<String>,
    /// `sys.computed_columns.is_persisted`
    pub computed_is_persisted: Option<bool>,
    /// `sys.default_constraints.definition`, parentheses included: `((0))`.
    pub default_definition: Option<String>,
    /// Position in the primary key (1-based), when the column belongs to it.
    pub primary_key_ordinal: Option<i32>,
}

impl CatalogRow {
    /// The table this row belongs to.
    pub fn table_ref(&self) -> TableRef {
        TableRef::new(&self.schema_name, &self.table_name)
    }
}

/// Groups catalog rows by table and converts each table; `database` and
/// `service` go into every file's header.
pub fn tables_from_rows(
    rows: &[CatalogRow],
    database: Option<&str>,
    service: Option<&str>,
) -> Result<Vec<TableYaml>, Error> {
    let mut by_table: BTreeMap<TableRef, Vec<&CatalogRow>> = BTreeMap::new();
    for row in rows {
        by_table.entry(row.table_ref()).or_default().push(row);
    }
    by_table
        .into_iter()
        .map(|(table, mut rows)| {
            rows.sort_by_key(|row| row.column_id);
            table_from_rows(&table, &rows, database, service)
        })
        .collect()
}

fn table_from_rows(
    table: &TableRef,
    rows: &[&CatalogRow],
    database: Option<&str>,
    service: Option<&str>,
) -> Result<TableYaml, Error> {
    let mut columns = Vec::with_capacity(rows.len());
    let mut key: Vec<(i32, &str)> = Vec::new();
    for row in rows {
        columns.push(column_from_row(table, row)?);
        if let Some(ordinal) = row.primary_key_ordinal {
            key.push((ordinal, row.column_name.as_str()));
        }
    }
    let in_column_order: Vec<&str> = key.iter().map(|(_, name)| *name).collect();
    key.sort_by_key(|(ordinal, _)| *ordinal);
    let in_key_order: Vec<&str> = key.iter().map(|(_, name)| *name).collect();
    let primary_key = if in_key_order == in_column_order {
        None
    } else {
        // Flags cannot say the key order: the list does, and the flags go.
        for column in &mut columns {
            column.primary_key = false;
        }
        Some(in_key_order.iter().map(|name| name.to_string()).collect())
    };
    Ok(TableYaml {
        database: database.map(str::to_string),
        schema: table.schema.clone(),
        service: service.map(str::to_string),
        table: table.table.clone(),
        description: None,
        primary_key,
        columns,
    })
}

/// One column: the base type with its parameters as the YAML format wants them.
fn column_from_row(table: &TableRef, row: &CatalogRow) -> Result<ColumnYaml, Error> {
    let base = resolved_type_name(row);
    let base_lowercase = base.to_ascii_lowercase();
    let mut column = ColumnYaml {
        name: row.column_name.clone(),
        type_name: base.clone(),
        max_length: None,
        precision: None,
        scale: None,
        nullable: row.is_nullable,
        primary_key: row.primary_key_ordinal.is_some(),
        default_value: row.default_definition.clone(),
        identity: row.is_identity,
        computed: row
            .is_computed
            .then(|| row.computed_definition.clone().unwrap_or_default()),
        persisted: row.is_computed && row.computed_is_persisted == Some(true),
        description: None,
    };
    let bad_length = || Error::CatalogRow {
        table: table.to_string(),
        column: row.column_name.clone(),
        message: format!(
            "max_length {} is not a byte length of type `{base}`",
            row.max_length
        ),
    };
    match base_lowercase.as_str() {
        "nvarchar" | "nchar" => {
            column.max_length = Some(match row.max_length {
                -1 => -1,
                bytes if bytes > 0 && bytes % 2 == 0 => i64::from(bytes / 2),
                _ => return Err(bad_length()),
            })
        }
        "varchar" | "char" | "varbinary" | "binary" => {
            column.max_length = Some(match row.max_length {
                -1 => -1,
                bytes if bytes > 0 => i64::from(bytes),
                _ => return Err(bad_length()),
            })
        }
        "decimal" | "numeric" => {
            column.precision = Some(u32::from(row.precision));
            column.scale = Some(u32::from(row.scale));
        }
        "float" => column.precision = Some(u32::from(row.precision)),
        // The catalog keeps the fractional-seconds digits in `scale`; the YAML calls
        // them precision, as in `datetime2(7)`.
        "time" | "datetime2" | "datetimeoffset" => column.precision = Some(u32::from(row.scale)),
        _ => {}
    }
    Ok(column)
}

/// An alias type stands for its system type; CLR types and `sysname` keep their name.
fn resolved_type_name(row: &CatalogRow) -> String {
    match (&row.system_type_name, row.is_user_defined) {
        (Some(system), true) => system.clone(),
        _ => row.type_name.clone(),
    }
}
