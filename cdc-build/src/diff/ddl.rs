//! A small reader of the DDL in a generated table file: the table's columns, types, nullability, defaults and key.
//!
//! It reads `CREATE TABLE [IF NOT EXISTS] ... (...)` as every version of the
//! generator wrote it (quoted or bare identifiers, multi-word and
//! parameterised types, inline or table-level primary keys, named
//! constraints), and, for a table declared `target_exists` (no `CREATE
//! TABLE`), the column list of its `CALL converge_table(...)`.

use cdc_core::schema::converge::converge_calls;
use cdc_core::schema::lex::{ident, is_word, lex, Lexed, Token};
pub use cdc_core::schema::{ColumnShape as FileColumn, TableShape as FileTable};

use super::rules::canonical_type_cached as canonical_type;

/// Words that end a column's type or default.
const CONSTRAINT_WORDS: &[&str] = &[
    "not",
    "null",
    "default",
    "primary",
    "constraint",
    "references",
    "unique",
    "check",
    "collate",
    "generated",
];

fn is_constraint_word(token: &Token) -> bool {
    CONSTRAINT_WORDS.iter().any(|w| is_word(token, w))
}

/// Reads the table a generated table file declares.
pub fn read_table_file(text: &str) -> Result<FileTable, String> {
    // Current files repeat the columns in a long `CALL converge_table(...)`
    // after the `CREATE TABLE`: read the part before it first, and the whole
    // file only when that part does not hold a complete `CREATE TABLE`.
    let head = text.find("\nCALL ").map_or(text, |call| &text[..call]);
    if let Some(table) = super::fast_ddl::read_generated(head) {
        return Ok(table);
    }
    if let Some(call) = text.find("\nCALL ") {
        if let Ok(tokens) = lex(&text[..call]) {
            if let Some(open) = find_create_table(&tokens) {
                if let Ok(table) = read_create_table(&text[..call], &tokens, open) {
                    return Ok(table);
                }
            }
        }
    }
    let tokens = lex(text)?;
    if let Some(open) = find_create_table(&tokens) {
        return read_create_table(text, &tokens, open);
    }
    read_converge_call(&tokens)
}

/// The index of the `(` that opens a `CREATE TABLE`'s body.
fn find_create_table(tokens: &[Lexed<'_>]) -> Option<usize> {
    let at = tokens.windows(2).position(|pair| {
        is_word(&pair[0].token, "create") && is_word(&pair[1].token, "table")
            || is_word(&pair[0].token, "unlogged") && is_word(&pair[1].token, "table")
    })?;
    tokens[at..]
        .iter()
        .position(|t| t.token == Token::Punct('('))
        .map(|offset| at + offset)
}

fn read_create_table(text: &str, tokens: &[Lexed<'_>], open: usize) -> Result<FileTable, String> {
    let mut table = FileTable::default();
    let mut depth = 0usize;
    let mut item_start = open + 1;
    for (index, lexed) in tokens.iter().enumerate().skip(open + 1) {
        match lexed.token {
            Token::Punct('(') => depth += 1,
            Token::Punct(',') if depth == 0 => {
                read_item(text, &tokens[item_start..index], &mut table)?;
                item_start = index + 1;
            }
            Token::Punct(')') if depth == 0 => {
                read_item(text, &tokens[item_start..index], &mut table)?;
                for key in &table.primary_key {
                    match table.columns.iter_mut().find(|c| &c.name == key) {
                        Some(column) => column.not_null = true,
                        None => return Err(format!("primary key column `{key}` is not declared")),
                    }
                }
                return Ok(table);
            }
            Token::Punct(')') => depth -= 1,
            _ => {}
        }
    }
    Err("CREATE TABLE without its closing parenthesis".to_string())
}

/// The source text from the first to the last token, whitespace collapsed.
fn source_of(text: &str, tokens: &[Lexed<'_>]) -> String {
    match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => text[first.start..last.end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The identifiers of a `(a, "b")` list that starts at `tokens[0]`.
fn ident_list(tokens: &[Lexed<'_>]) -> Result<Vec<String>, String> {
    let close = tokens
        .iter()
        .position(|t| t.token == Token::Punct(')'))
        .ok_or("unclosed column list")?;
    tokens[..close]
        .iter()
        .skip(1)
        .filter(|t| t.token != Token::Punct(','))
        .map(|t| ident(&t.token).ok_or_else(|| "a column list holds a non-identifier".to_string()))
        .collect()
}

fn read_item(text: &str, item: &[Lexed<'_>], table: &mut FileTable) -> Result<(), String> {
    let Some(first) = item.first() else {
        return Err("an empty item in CREATE TABLE".to_string());
    };
    let mut rest = item;
    if is_word(&first.token, "constraint") {
        rest = item.get(2..).unwrap_or_default();
    }
    if let Some(head) = rest.first() {
        if is_word(&head.token, "primary") {
            let open = rest
                .iter()
                .position(|t| t.token == Token::Punct('('))
                .ok_or("PRIMARY KEY without its column list")?;
            table.primary_key = ident_list(&rest[open..])?;
            return Ok(());
        }
        if ["unique", "check", "foreign", "exclude"]
            .iter()
            .any(|w| is_word(&head.token, w))
        {
            return Ok(());
        }
    }
    let name = ident(&first.token)
        .ok_or_else(|| format!("`{}` is not a column name", source_of(text, &item[..1])))?;
    let type_end = item[1..]
        .iter()
        .position(|t| is_constraint_word(&t.token))
        .map_or(item.len(), |n| n + 1);
    if type_end == 1 {
        return Err(format!("column `{name}` has no type"));
    }
    let mut column = FileColumn {
        canonical: canonical_type(&source_of(text, &item[1..type_end])),
        name,
        not_null: false,
        default: None,
    };
    let mut at = type_end;
    while at < item.len() {
        let token = &item[at].token;
        if is_word(token, "not") && item.get(at + 1).is_some_and(|t| is_word(&t.token, "null")) {
            column.not_null = true;
            at += 2;
        } else if is_word(token, "default") {
            let mut end = at + 2;
            let mut depth = 0usize;
            for (index, lexed) in item.iter().enumerate().skip(at + 1) {
                match lexed.token {
                    Token::Punct('(') => depth += 1,
                    Token::Punct(')') => depth = depth.saturating_sub(1),
                    _ if depth == 0 && index > at + 1 && is_constraint_word(&lexed.token) => break,
                    _ => {}
                }
                end = index + 1;
            }
            column.default = Some(source_of(text, &item[at + 1..end.min(item.len())]));
            at = end;
        } else if is_word(token, "primary") {
            table.primary_key = vec![column.name.clone()];
            column.not_null = true;
            at += 2;
        } else {
            at += 1;
        }
    }
    table.columns.push(column);
    Ok(())
}

/// The table of the file's first `converge_table` call, types canonical.
fn read_converge_call(tokens: &[Lexed<'_>]) -> Result<FileTable, String> {
    let call = converge_calls(tokens)?
        .into_iter()
        .next()
        .ok_or("neither CREATE TABLE nor CALL converge_table")?;
    let mut table = call.shape;
    for column in &mut table.columns {
        column.canonical = canonical_type(&column.canonical);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, canonical: &str, not_null: bool, default: Option<&str>) -> FileColumn {
        FileColumn {
            name: name.into(),
            canonical: canonical.into(),
            not_null,
            default: default.map(Into::into),
        }
    }

    #[test]
    fn reads_the_current_generator_shape() {
        let text = include_str!("../../../migrations/sink_asma.billing/01-tables/Invoice.sql");
        let table = read_table_file(text).unwrap();
        assert_eq!(table.primary_key, vec!["InvoiceId"]);
        assert_eq!(table.columns.len(), 15);
        assert_eq!(table.columns[0], column("InvoiceId", "bigint", true, None));
        assert_eq!(
            table.columns[2],
            column("Number", "character varying(20)", true, None)
        );
        assert_eq!(
            table.columns[4],
            column("IssuedAt", "timestamp(3) with time zone", true, None)
        );
        assert_eq!(
            table.columns[5],
            column("Paid", "boolean", true, Some("false"))
        );
        assert_eq!(
            table.columns[14],
            column(
                "__sync_timestamp",
                "timestamp with time zone",
                true,
                Some("now()")
            )
        );
    }

    #[test]
    fn odd_identifiers_and_multi_word_types() {
        let text = r#"-- header, with a comma, and "quotes"
CREATE TABLE IF NOT EXISTS "my schema"."Order ""Lines""" (
    "Line No" integer NOT NULL,
    "say ""hi""" double precision DEFAULT 1.5,
    "a,b" character varying(50),
    "T" timestamp(3) without time zone DEFAULT date_trunc('day', now()) NOT NULL,
    "N" NUMERIC( 10 , 2 ),
    "select" text COLLATE "C",
    CONSTRAINT "pk one" PRIMARY KEY ("Line No", "a,b")
);"#;
        let table = read_table_file(text).unwrap();
        assert_eq!(table.primary_key, vec!["Line No", "a,b"]);
        assert_eq!(
            table.columns,
            vec![
                column("Line No", "integer", true, None),
                column("say \"hi\"", "double precision", false, Some("1.5")),
                column("a,b", "character varying(50)", true, None),
                column(
                    "T",
                    "timestamp(3) without time zone",
                    true,
                    Some("date_trunc('day', now())")
                ),
                column("N", "numeric(10,2)", false, None),
                column("select", "text", false, None),
            ]
        );
    }

    #[test]
    fn older_shapes_without_converge_and_with_inline_keys() {
        let text = "/* generated long ago */\nCREATE TABLE public.actor (\n  actor_id INT4 PRIMARY KEY,\n  Name VARCHAR(255) NOT NULL DEFAULT '',\n  born timestamptz(6) NULL,\n  UNIQUE (name)\n);\nCREATE INDEX x ON public.actor (born);";
        let table = read_table_file(text).unwrap();
        assert_eq!(table.primary_key, vec!["actor_id"]);
        assert_eq!(
            table.columns,
            vec![
                column("actor_id", "integer", true, None),
                column("name", "character varying(255)", true, Some("''")),
                column("born", "timestamp(6) with time zone", false, None),
            ]
        );
    }

    #[test]
    fn a_target_exists_file_is_read_from_its_converge_call() {
        let text = "-- The table is managed outside these migrations (target_exists): it is checked\nCALL \"cdc_management\".\"converge_table\"(\n    'app',\n    'It''s',\n    $cdc$[\n        {\"name\": \"Id\", \"type\": \"integer\", \"canonical\": \"integer\", \"not_null\": true, \"default\": null},\n        {\"name\": \"At\", \"type\": \"timestamptz\", \"canonical\": \"timestamp with time zone\", \"not_null\": true, \"default\": \"now()\"}\n    ]$cdc$::jsonb,\n    ARRAY['Id']::text[],\n    true\n);";
        let table = read_table_file(text).unwrap();
        assert_eq!(table.primary_key, vec!["Id"]);
        assert_eq!(
            table.columns,
            vec![
                column("Id", "integer", true, None),
                column("At", "timestamp with time zone", true, Some("now()")),
            ]
        );
    }

    /// Every final-table file the golden fixtures and the committed example hold.
    fn generated_table_files() -> Vec<std::path::PathBuf> {
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack = vec![
            crate_dir.join("tests/fixtures"),
            crate_dir.join("../migrations"),
        ];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    stack.push(path);
                } else if dir.ends_with(cdc_core::layout::TABLES_DIR)
                    && name.ends_with(".sql")
                    && !name.ends_with(cdc_core::layout::STAGING_SUFFIX)
                {
                    files.push(path);
                }
            }
        }
        files
    }

    #[test]
    fn every_generated_table_file_reads_with_a_key_for_each_declared_key() {
        let files = generated_table_files();
        assert!(files.len() >= 10, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let table =
                read_table_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!table.columns.is_empty(), "{}", path.display());
            assert_eq!(
                !table.primary_key.is_empty(),
                text.contains("PRIMARY KEY (") || !text.contains("ARRAY[]"),
                "{}",
                path.display()
            );
            // Both halves of a current file declare the same table.
            if text.contains("CREATE TABLE") {
                let from_call = read_converge_call(&lex(&text).unwrap()).unwrap();
                assert_eq!(table, from_call, "{}", path.display());
            }
        }
    }

    #[test]
    fn the_line_reader_agrees_with_the_lexer_on_every_generated_file() {
        let mut read_by_lines = 0;
        for path in generated_table_files() {
            let text = std::fs::read_to_string(&path).unwrap();
            // A file it declines (a string default, target_exists) goes to the lexer.
            let Some(fast) = crate::diff::fast_ddl::read_generated(&text) else {
                continue;
            };
            read_by_lines += 1;
            let tokens = lex(&text).unwrap();
            let open = find_create_table(&tokens).unwrap();
            let slow = read_create_table(&text, &tokens, open).unwrap();
            assert_eq!(fast, slow, "{}", path.display());
        }
        assert!(read_by_lines >= 10, "{read_by_lines}");
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        for text in [
            "CREATE TABLE t (a int",
            "CREATE TABLE t (\"a int)",
            "CREATE TABLE t (a)",
            "CREATE TABLE t (a int, PRIMARY KEY (b))",
            "nothing here",
            "CALL x($cdc$[{]$cdc$)",
            "$",
        ] {
            assert!(read_table_file(text).is_err(), "{text}");
        }
    }
}
