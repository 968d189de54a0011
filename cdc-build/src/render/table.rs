//! `01-tables/<Table>.sql`: the final table, convergent.
//!
//! `CREATE TABLE IF NOT EXISTS` for a fresh database, then
//! `cdc_management.converge_table(...)`, which brings an existing older table to
//! the same shape or refuses with the manual steps.
//!
//! Renderers append to one buffer (`push_*`) rather than building and joining
//! temporary strings: generation of large projects is dominated by this code.

use cdc_core::layout::MANAGEMENT_SCHEMA;
use cdc_core::manifest::quote as json_string;

use crate::columns::{Column, COL_SYNC_TIMESTAMP};
use crate::ident::{push_dollar_quoted, push_ident, push_literal, push_qualified};
use crate::project::SinkTable;

/// Appends `CALL "cdc_management"."converge_table"(\n    `.
pub fn push_converge_call(out: &mut String) {
    out.push_str("CALL ");
    push_qualified(out, MANAGEMENT_SCHEMA, "converge_table");
    out.push_str("(\n    ");
}

/// Appends `CALL converge_table(schema, table, columns, primary key, allow extra columns);`.
pub fn push_converge<'c>(
    out: &mut String,
    schema: &str,
    table: &str,
    columns: impl Iterator<Item = (&'c Column, bool)>,
    primary_key: &[String],
    allow_extra_columns: bool,
) {
    push_converge_call(out);
    push_literal(out, schema);
    out.push_str(",\n    ");
    push_literal(out, table);
    out.push_str(",\n    ");
    push_dollar_quoted(out, |out| push_converge_columns_json(out, columns));
    out.push_str("::jsonb,\n    ARRAY[");
    push_joined(out, primary_key, ", ", |out, k| push_literal(out, k));
    out.push_str("]::text[],\n    ");
    out.push_str(if allow_extra_columns { "true" } else { "false" });
    out.push_str("\n);");
}

/// Appends one column definition, without the trailing comma.
pub fn push_column_definition(out: &mut String, column: &Column, not_null: bool) {
    push_ident(out, &column.name);
    out.push(' ');
    column.pg_type.push_sql(out);
    if let Some(default) = &column.default {
        out.push_str(" DEFAULT ");
        out.push_str(default);
    }
    if not_null {
        out.push_str(" NOT NULL");
    }
}

/// Appends a JSON string, as [`cdc_core::manifest::quote`] writes it.
fn push_json_string(out: &mut String, text: &str) {
    let plain = text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f);
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&json_string(text));
    }
}

/// Appends the JSON column list that `converge_table` expects.
pub fn push_converge_columns_json<'a>(
    out: &mut String,
    columns: impl Iterator<Item = (&'a Column, bool)>,
) {
    out.push_str("[\n");
    let mut first = true;
    for (column, not_null) in columns {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        // Type names are ASCII letters, digits, spaces, parentheses and commas:
        // nothing to escape.
        out.push_str("        {\"name\": ");
        push_json_string(out, &column.name);
        out.push_str(", \"type\": \"");
        column.pg_type.push_sql(out);
        out.push_str("\", \"canonical\": \"");
        column.pg_type.push_canonical(out);
        out.push_str("\", \"not_null\": ");
        out.push_str(if not_null { "true" } else { "false" });
        out.push_str(", \"default\": ");
        match &column.default {
            Some(default) => push_json_string(out, default),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str("\n    ]");
}

/// Appends `items` joined by `separator`, each written by `push`.
pub fn push_joined<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    separator: &str,
    mut push: impl FnMut(&mut String, T),
) {
    for (index, item) in items.into_iter().enumerate() {
        if index > 0 {
            out.push_str(separator);
        }
        push(out, item);
    }
}

/// The body of a final-table file.
pub fn render_table(table: &SinkTable) -> String {
    let mut out = String::with_capacity(table_capacity(table));
    push_table(&mut out, table);
    out
}

/// A size hint for a final-table body.
pub fn table_capacity(table: &SinkTable) -> usize {
    1_000 + table.columns.len() * 160
}

/// Appends the body of a final-table file.
pub fn push_table(out: &mut String, table: &SinkTable) {
    let mut target = String::with_capacity(64);
    push_qualified(&mut target, &table.target_schema, &table.target_table);
    if table.target_exists {
        out.push_str(
            "-- The table is managed outside these migrations (target_exists): it is checked\n",
        );
        out.push_str("-- and given the missing columns below, never created or dropped here.\n");
    } else {
        out.push_str("CREATE TABLE IF NOT EXISTS ");
        out.push_str(&target);
        out.push_str(" (\n");
        for column in &table.columns {
            out.push_str("    ");
            push_column_definition(out, column, column.not_null);
            out.push_str(",\n");
        }
        if table.primary_key.is_empty() {
            // Drop the last comma: there is no key constraint to follow.
            out.truncate(out.len() - 2);
            out.push('\n');
        } else {
            out.push_str("    PRIMARY KEY (");
            push_joined(out, &table.primary_key, ", ", |out, k| push_ident(out, k));
            out.push_str(")\n");
        }
        out.push_str(");\n\n");
    }
    crate::breaking::sql::push_column_renames(out, table);
    if !table.target_exists {
        out.push_str(
            "-- Bring an existing (older) table to this shape; unsafe changes are refused.\n",
        );
    }
    push_converge(
        out,
        &table.target_schema,
        &table.target_table,
        table.columns.iter().map(|c| (c, c.not_null)),
        &table.primary_key,
        table.target_exists,
    );
    out.push_str("\n\n");
    out.push_str("CREATE INDEX IF NOT EXISTS ");
    push_ident(out, &table.names.sync_index);
    out.push_str(" ON ");
    out.push_str(&target);
    out.push_str(" (");
    push_ident(out, COL_SYNC_TIMESTAMP);
    out.push_str(");\n");
    super::distribution::push_distribute_final(out, table);
}
