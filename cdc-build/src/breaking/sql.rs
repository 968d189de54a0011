//! The SQL of schema changes that `converge_table` does not make on its own: column renames (in every table file) and the steps of a breaking-change file.
//!
//! Every statement is guarded by the catalog, so that running it again, or
//! on a database where the table does not exist yet, changes nothing.

use crate::ident::{push_dollar_quoted, push_ident, qualified, quote_literal};
use crate::project::{ColumnRename, SinkTable};
use crate::types::PgType;

/// `EXISTS (...)`: whether `rel` (a quoted, qualified name) has `column`, with an extra condition on `a`.
fn has_column(rel: &str, column: &str, extra: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = to_regclass({}) AND a.attname = {} AND a.attnum > 0 AND NOT a.attisdropped{extra})",
        quote_literal(rel),
        quote_literal(column)
    )
}

/// Appends one `DO` block whose body is `body`.
fn push_do(out: &mut String, body: &str) {
    out.push_str("DO ");
    push_dollar_quoted(out, |out| {
        out.push_str("\nBEGIN\n");
        out.push_str(body);
        out.push_str("END\n");
    });
    out.push_str(";\n");
}

/// Appends the renames of `table` (`renamed_from`), for the final table and
/// its staging table: a column is renamed only when its old name exists and
/// its new one does not, so its data stays and a second run does nothing.
/// Nothing is appended when the table declares no rename.
pub fn push_column_renames(out: &mut String, table: &SinkTable) {
    if table.renames.is_empty() {
        return;
    }
    out.push_str(
        "-- Columns renamed at the source (renamed_from): renamed in place, keeping their data,\n",
    );
    out.push_str("-- in the final, staging and tombstone tables, when the old name exists and the new one does not.\n");
    let mut body = String::with_capacity(400 * table.renames.len());
    let mut relations = vec![qualified(&table.target_schema, &table.target_table)];
    if table.has_staging() {
        relations.push(qualified(&table.target_schema, &table.names.staging));
        // A renamed key column is renamed in the tombstones too (no-op for other columns).
        relations.push(qualified(&table.target_schema, &table.names.tombstones));
    }
    for rel in &relations {
        for ColumnRename { from, to } in &table.renames {
            body.push_str("    IF ");
            body.push_str(&has_column(rel, from, ""));
            body.push_str("\n       AND NOT ");
            body.push_str(&has_column(rel, to, ""));
            body.push_str(" THEN\n        ALTER TABLE ");
            body.push_str(rel);
            body.push_str(" RENAME COLUMN ");
            push_ident(&mut body, from);
            body.push_str(" TO ");
            push_ident(&mut body, to);
            body.push_str(";\n    END IF;\n");
        }
    }
    push_do(out, &body);
    out.push('\n');
}

/// One breaking change a file performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `ALTER COLUMN ... TYPE ... USING ...::...` (final and staging table).
    ConvertType {
        /// Column.
        column: String,
        /// The new type.
        pg_type: PgType,
    },
    /// `SET NOT NULL`, NULLs first filled with the default when there is one.
    SetNotNull {
        /// Column.
        column: String,
        /// The column's default (SQL), which fills existing NULLs.
        default: Option<String>,
    },
    /// A new NOT NULL column without a default: possible only on an empty table.
    AddRequiredColumn {
        /// Column.
        column: String,
    },
    /// `DROP COLUMN` (final and staging table).
    DropColumn {
        /// Column.
        column: String,
    },
    /// A new primary key, after checking that it has no NULL and no duplicate.
    PrimaryKey {
        /// The old key (its columns lose NOT NULL in the staging table).
        from: Vec<String>,
        /// The new key; new key columns missing from the table are added first.
        to: Vec<String>,
        /// Key columns the table file did not have, with their types.
        added: Vec<(String, PgType)>,
    },
}

fn push_ident_list(out: &mut String, columns: &[String]) {
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_ident(out, column);
    }
}

/// The length a character type holds, when it has one (`character varying(10)` → 10).
fn char_length(pg_type: &PgType) -> Option<i64> {
    let canonical = pg_type.canonical();
    let rest = canonical
        .strip_prefix("character varying(")
        .or_else(|| canonical.strip_prefix("character("))?;
    rest.strip_suffix(')')?.parse().ok()
}

/// Appends the SQL of one step on `table`.
pub fn push_step(out: &mut String, table: &SinkTable, step: &Step) {
    let rel = qualified(&table.target_schema, &table.target_table);
    let staging = table
        .has_staging()
        .then(|| qualified(&table.target_schema, &table.names.staging));
    let tombstones = table
        .has_staging()
        .then(|| qualified(&table.target_schema, &table.names.tombstones));
    let mut body = String::with_capacity(1_000);
    match step {
        Step::ConvertType { column, pg_type } => {
            let canonical = pg_type.canonical();
            let differs = format!(
                " AND format_type(a.atttypid, a.atttypmod) <> {}",
                quote_literal(&canonical)
            );
            let mut sql_type = String::new();
            pg_type.push_sql(&mut sql_type);
            let mut ident = String::new();
            push_ident(&mut ident, column);
            let targets = std::iter::once(&rel)
                .chain(staging.as_ref())
                .chain(tombstones.as_ref());
            for (i, target) in targets.enumerate() {
                body.push_str(&format!(
                    "    IF {} THEN\n",
                    has_column(target, column, &differs)
                ));
                if let (0, Some(length)) = (i, char_length(pg_type)) {
                    body.push_str(&format!(
                        "        IF EXISTS (SELECT 1 FROM {target} WHERE length({ident}) > {length}) THEN\n            RAISE EXCEPTION 'cdc: column {} of {} holds values longer than {length} characters, which {sql_type} would cut', {}, {}\n                USING HINT = 'shorten or remove them by hand, then apply again', ERRCODE = 'string_data_right_truncation';\n        END IF;\n",
                        "%", "%", quote_literal(column), quote_literal(target)
                    ));
                }
                body.push_str(&format!(
                    "        ALTER TABLE {target} ALTER COLUMN {ident} TYPE {sql_type} USING {ident}::{sql_type};\n    END IF;\n"
                ));
            }
        }
        Step::SetNotNull { column, default } => {
            let mut ident = String::new();
            push_ident(&mut ident, column);
            body.push_str(&format!(
                "    IF {} THEN\n",
                has_column(&rel, column, " AND NOT a.attnotnull")
            ));
            match default {
                Some(default) => body.push_str(&format!(
                    "        UPDATE {rel} SET {ident} = {default} WHERE {ident} IS NULL;\n"
                )),
                None => body.push_str(&format!(
                    "        IF EXISTS (SELECT 1 FROM {rel} WHERE {ident} IS NULL) THEN\n            RAISE EXCEPTION 'cdc: column % of % holds NULLs but the YAML makes it NOT NULL without a default', {}, {}\n                USING HINT = 'fill them by hand (UPDATE ... SET ... WHERE ... IS NULL) or give the column a default_value in its YAML, then apply again', ERRCODE = 'not_null_violation';\n        END IF;\n",
                    quote_literal(column), quote_literal(&rel)
                )),
            }
            body.push_str(&format!(
                "        ALTER TABLE {rel} ALTER COLUMN {ident} SET NOT NULL;\n    END IF;\n"
            ));
        }
        Step::AddRequiredColumn { column } => {
            body.push_str(&format!(
                "    IF to_regclass({}) IS NOT NULL AND NOT {} THEN\n        IF EXISTS (SELECT 1 FROM {rel}) THEN\n            RAISE EXCEPTION 'cdc: column % is new and NOT NULL without a default, but % has rows', {}, {}\n                USING HINT = 'add it by hand with a value for the existing rows (ALTER TABLE ... ADD COLUMN ... DEFAULT <value> NOT NULL), then apply again', ERRCODE = 'not_null_violation';\n        END IF;\n    END IF;\n",
                quote_literal(&rel), has_column(&rel, column, ""), quote_literal(column), quote_literal(&rel)
            ));
        }
        Step::DropColumn { column } => {
            for target in std::iter::once(&rel).chain(staging.as_ref()) {
                out.push_str("ALTER TABLE IF EXISTS ");
                out.push_str(target);
                out.push_str(" DROP COLUMN IF EXISTS ");
                push_ident(out, column);
                out.push_str(";\n");
            }
            return;
        }
        Step::PrimaryKey { from, to, added } => {
            push_primary_key(&mut body, &rel, staging.as_deref(), from, to, added);
            if let Some(tombstones) = &tombstones {
                // Tombstones are keyed by the old key: they go, and the staging file creates
                // the table again with the new key.
                body.push_str(&format!(
                    "{}        DROP TABLE {tombstones};\n    END IF;\n",
                    if_key_differs(tombstones, to)
                ));
            }
        }
    }
    push_do(out, &body);
}

/// `    IF <rel exists and its primary key is not `key`> THEN\n`.
fn if_key_differs(rel: &str, key: &[String]) -> String {
    let rel_lit = quote_literal(rel);
    let wanted: Vec<String> = key.iter().map(|k| quote_literal(k)).collect();
    format!(
        "    IF to_regclass({rel_lit}) IS NOT NULL AND coalesce((\n        SELECT array_agg(a.attname::text ORDER BY k.ord)\n          FROM pg_index AS i\n         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)\n          JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum\n         WHERE i.indrelid = to_regclass({rel_lit}) AND i.indisprimary), ARRAY[]::text[]) IS DISTINCT FROM ARRAY[{wanted}]::text[] THEN\n",
        wanted = wanted.join(", ")
    )
}

fn push_primary_key(
    body: &mut String,
    rel: &str,
    staging: Option<&str>,
    from: &[String],
    to: &[String],
    added: &[(String, PgType)],
) {
    let mut key = String::new();
    push_ident_list(&mut key, to);
    body.push_str(&if_key_differs(rel, to));
    for (column, pg_type) in added {
        let mut ident = String::new();
        push_ident(&mut ident, column);
        let mut sql_type = String::new();
        pg_type.push_sql(&mut sql_type);
        body.push_str(&format!(
            "        ALTER TABLE {rel} ADD COLUMN IF NOT EXISTS {ident} {sql_type};\n"
        ));
    }
    if !to.is_empty() {
        let nulls: Vec<String> = to
            .iter()
            .map(|k| {
                let mut s = String::new();
                push_ident(&mut s, k);
                s + " IS NULL"
            })
            .collect();
        let key_text = quote_literal(&format!("({})", to.join(", ")));
        body.push_str(&format!(
            "        IF EXISTS (SELECT 1 FROM {rel} WHERE {}) THEN\n            RAISE EXCEPTION 'cdc: the new primary key % of % cannot be set: some rows have NULL in it', {key_text}, {}\n                USING HINT = 'fill or delete those rows by hand, then apply again', ERRCODE = 'not_null_violation';\n        END IF;\n",
            nulls.join(" OR "),
            quote_literal(rel)
        ));
        body.push_str(&format!(
            "        IF EXISTS (SELECT 1 FROM {rel} GROUP BY {key} HAVING count(*) > 1) THEN\n            RAISE EXCEPTION 'cdc: the new primary key % of % cannot be set: some key values occur more than once', {key_text}, {}\n                USING HINT = 'find them with SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1; merge or delete the duplicates by hand, then apply again', ERRCODE = 'unique_violation';\n        END IF;\n",
            quote_literal(rel),
            key.replace('\'', "''"),
            rel.replace('\'', "''"),
            key.replace('\'', "''")
        ));
    }
    body.push_str(&format!(
        "        PERFORM 1 FROM pg_constraint WHERE conrelid = to_regclass({rel_lit}) AND contype = 'p';\n        IF FOUND THEN\n            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', {rel_lit}, (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass({rel_lit}) AND contype = 'p'));\n        END IF;\n",
        rel_lit = quote_literal(rel)
    ));
    if !to.is_empty() {
        body.push_str(&format!(
            "        ALTER TABLE {rel} ADD PRIMARY KEY ({key});\n"
        ));
    }
    body.push_str("    END IF;\n");
    if let Some(staging) = staging {
        for column in from.iter().filter(|c| !to.contains(c)) {
            let mut ident = String::new();
            push_ident(&mut ident, column);
            body.push_str(&format!(
                "    IF {} THEN\n        ALTER TABLE {staging} ALTER COLUMN {ident} DROP NOT NULL;\n    END IF;\n",
                has_column(staging, column, " AND a.attnotnull")
            ));
        }
    }
}
