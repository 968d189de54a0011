//! `01-tables/<Table>.sql`: the final table, convergent.
//!
//! `CREATE TABLE IF NOT EXISTS` for a fresh database, then
//! `cdc_management.converge_table(...)`, which brings an existing older table to
//! the same shape or refuses with the manual steps.

use std::fmt::Write as _;

use cdc_core::manifest::quote as json_string;

use super::TableNames;
use crate::columns::{Column, COL_SYNC_TIMESTAMP};
use crate::ident::{dollar_quote, qualified, quote_ident, quote_literal};
use crate::project::SinkTable;

/// One column definition line, without the trailing comma.
pub fn column_definition(column: &Column, not_null: bool) -> String {
    let mut line = format!("{} {}", quote_ident(&column.name), column.pg_type.sql());
    if let Some(default) = &column.default {
        line.push_str(" DEFAULT ");
        line.push_str(default);
    }
    if not_null {
        line.push_str(" NOT NULL");
    }
    line
}

/// The JSON column list that `converge_table` expects.
pub fn converge_columns_json<'a>(columns: impl Iterator<Item = (&'a Column, bool)>) -> String {
    let mut out = String::from("[\n");
    let mut first = true;
    for (column, not_null) in columns {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        let _ = write!(
            out,
            "        {{\"name\": {}, \"type\": {}, \"canonical\": {}, \"not_null\": {not_null}, \"default\": {}}}",
            json_string(&column.name),
            json_string(&column.pg_type.sql()),
            json_string(&column.pg_type.canonical()),
            column.default.as_deref().map(json_string).unwrap_or_else(|| "null".to_string()),
        );
    }
    out.push_str("\n    ]");
    out
}

/// `ARRAY['a', 'b']::text[]`
pub fn text_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.map(quote_literal).collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// The body of a final-table file.
pub fn render_table(table: &SinkTable, names: &TableNames) -> String {
    let target = qualified(&table.target_schema, &table.target_table);
    let mut out = String::with_capacity(200 + table.columns.len() * 160);
    if table.target_exists {
        out.push_str(
            "-- The table is managed outside these migrations (target_exists): it is checked\n",
        );
        out.push_str("-- and given the missing columns below, never created or dropped here.\n");
    } else {
        let _ = writeln!(out, "CREATE TABLE IF NOT EXISTS {target} (");
        for column in &table.columns {
            let _ = writeln!(out, "    {},", column_definition(column, column.not_null));
        }
        if table.primary_key.is_empty() {
            // Drop the last comma: there is no key constraint to follow.
            out.truncate(out.len() - 2);
            out.push('\n');
        } else {
            let key: Vec<String> = table.primary_key.iter().map(|k| quote_ident(k)).collect();
            let _ = writeln!(out, "    PRIMARY KEY ({})", key.join(", "));
        }
        out.push_str(");\n\n");
        out.push_str(
            "-- Bring an existing (older) table to this shape; unsafe changes are refused.\n",
        );
    }
    let _ = write!(
        out,
        "CALL \"cdc_management\".\"converge_table\"(\n    {},\n    {},\n    {}::jsonb,\n    {},\n    {}\n);\n\n",
        quote_literal(&table.target_schema),
        quote_literal(&table.target_table),
        dollar_quote(&converge_columns_json(table.columns.iter().map(|c| (c, c.not_null)))),
        text_array(table.primary_key.iter().map(String::as_str)),
        table.target_exists,
    );
    let _ = writeln!(
        out,
        "CREATE INDEX IF NOT EXISTS {} ON {target} ({});",
        quote_ident(&names.sync_index),
        quote_ident(COL_SYNC_TIMESTAMP)
    );
    out
}
