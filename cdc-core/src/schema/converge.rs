//! Reads what a generated file declares: the `converge_table(...)` call (table, columns, key) and the names of the triggers and functions it creates.
//!
//! Every generated table and staging file calls `converge_table` with the
//! table's full column list as JSONB (`name`, `type`, `canonical`, `not_null`,
//! `default`) and its primary key as a `text[]`, so the expected shape of a
//! sink is known from its migration files alone: the runtime reads it from the
//! embedded files, the diff from the files on disk.

use super::lex::{ident, is_word, lex, Lexed, Token};
use super::{ColumnShape, TableShape};

/// One `converge_table(schema, table, columns, primary_key, allow_extra_columns)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvergeCall {
    /// Target schema.
    pub schema: String,
    /// Target table.
    pub table: String,
    /// The columns (types in the canonical form the file gives) and the key.
    pub shape: TableShape,
    /// Extra columns in the database are left alone (`target_exists` tables, staging tables).
    pub allow_extra_columns: bool,
}

fn is_converge(token: &Token) -> bool {
    match token {
        Token::Word(word) => word.eq_ignore_ascii_case("converge_table"),
        Token::Quoted(name) => name == "converge_table",
        _ => false,
    }
}

fn literal(tokens: &[Lexed<'_>], at: usize, what: &str) -> Result<String, String> {
    match tokens.get(at).map(|t| &t.token) {
        Some(Token::Literal(text)) => Ok(text.to_string()),
        _ => Err(format!("converge_table without its {what}")),
    }
}

fn punct(tokens: &[Lexed<'_>], at: usize, c: char) -> Result<(), String> {
    match tokens.get(at).map(|t| &t.token) {
        Some(Token::Punct(p)) if *p == c => Ok(()),
        _ => Err(format!("converge_table: `{c}` expected")),
    }
}

/// Reads the JSONB column list of a `converge_table` call.
pub fn read_column_list(json: &str) -> Result<Vec<ColumnShape>, String> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|err| format!("the column list of converge_table: {err}"))?;
    let items = value
        .as_array()
        .ok_or("the column list of converge_table is not an array")?;
    items
        .iter()
        .map(|item| {
            let text = |key: &str| item.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let name = text("name").ok_or("a column of converge_table without its name")?;
            let canonical = text("canonical")
                .ok_or_else(|| format!("column `{name}` of converge_table without its type"))?;
            let not_null = item
                .get("not_null")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| format!("column `{name}` of converge_table without not_null"))?;
            Ok(ColumnShape {
                name,
                canonical,
                not_null,
                default: text("default").map(|d| super::normalised(&d)),
            })
        })
        .collect()
}

/// Reads the call that starts at `tokens[at]` (the `converge_table` name).
fn read_call(tokens: &[Lexed<'_>], at: usize) -> Result<ConvergeCall, String> {
    punct(tokens, at + 1, '(')?;
    let schema = literal(tokens, at + 2, "schema")?;
    punct(tokens, at + 3, ',')?;
    let table = literal(tokens, at + 4, "table")?;
    punct(tokens, at + 5, ',')?;
    let Some(Token::Dollar(json)) = tokens.get(at + 6).map(|t| &t.token) else {
        return Err("converge_table without its column list".to_string());
    };
    let columns = read_column_list(json)?;
    let array = tokens[at + 7..]
        .iter()
        .position(|t| is_word(&t.token, "array"))
        .map(|n| at + 7 + n)
        .ok_or("converge_table without its primary key array")?;
    let close = tokens[array..]
        .iter()
        .position(|t| t.token == Token::Punct(']'))
        .map(|n| array + n)
        .ok_or("converge_table: unclosed primary key array")?;
    let primary_key = tokens[array + 1..close]
        .iter()
        .filter_map(|t| match &t.token {
            Token::Literal(name) => Some(name.to_string()),
            _ => None,
        })
        .collect();
    let mut allow_extra_columns = false;
    for lexed in &tokens[close..] {
        match lexed.token {
            Token::Punct(')') => break,
            _ if is_word(&lexed.token, "true") => allow_extra_columns = true,
            _ => {}
        }
    }
    Ok(ConvergeCall {
        schema,
        table,
        shape: TableShape {
            columns,
            primary_key,
        },
        allow_extra_columns,
    })
}

/// The `converge_table` calls of a lexed file, in file order.
pub fn converge_calls(tokens: &[Lexed<'_>]) -> Result<Vec<ConvergeCall>, String> {
    tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| is_converge(&t.token))
        .filter(|(at, _)| tokens.get(at + 1).map(|t| &t.token) == Some(&Token::Punct('(')))
        .map(|(at, _)| read_call(tokens, at))
        .collect()
}

/// The first `converge_table` call of a file.
pub fn read_converge_call(text: &str) -> Result<ConvergeCall, String> {
    let tokens = lex(text)?;
    converge_calls(&tokens)?
        .into_iter()
        .next()
        .ok_or_else(|| "no CALL converge_table".to_string())
}

/// The names of the objects of one kind (`TRIGGER`, `FUNCTION`) that a file
/// creates with `CREATE [OR REPLACE] <kind> [schema.]name`, unqualified.
pub fn created_names(tokens: &[Lexed<'_>], kind: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, lexed) in tokens.iter().enumerate() {
        if !is_word(&lexed.token, "create") {
            continue;
        }
        let mut next = at + 1;
        if tokens.get(next).is_some_and(|t| is_word(&t.token, "or"))
            && tokens
                .get(next + 1)
                .is_some_and(|t| is_word(&t.token, "replace"))
        {
            next += 2;
        }
        if !tokens.get(next).is_some_and(|t| is_word(&t.token, kind)) {
            continue;
        }
        let mut name = tokens.get(next + 1).and_then(|t| ident(&t.token));
        let mut after = next + 2;
        while tokens.get(after).map(|t| &t.token) == Some(&Token::Punct('.')) {
            name = tokens.get(after + 1).and_then(|t| ident(&t.token));
            after += 2;
        }
        names.extend(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str = "-- Checksum: x\nCREATE UNLOGGED TABLE IF NOT EXISTS \"app\".\"stg_It's\" (\"Id\" integer NOT NULL);\nCALL \"cdc_management\".\"converge_table\"(\n    'app',\n    'stg_It''s',\n    $cdc$[\n        {\"name\": \"Id\", \"type\": \"int4\", \"canonical\": \"integer\", \"not_null\": true, \"default\": null},\n        {\"name\": \"At\", \"type\": \"timestamptz\", \"canonical\": \"timestamp with time zone\", \"not_null\": false, \"default\": \"now( )\"}\n    ]$cdc$::jsonb,\n    ARRAY['Id', 'At']::text[],\n    true\n);\nCREATE OR REPLACE FUNCTION \"app\".\"sp_merge_It's\"(p INTEGER) RETURNS void LANGUAGE sql AS $f$ SELECT 1 $f$;\nCREATE OR REPLACE TRIGGER \"cdc_mark\" AFTER INSERT ON \"app\".\"stg_It's\" EXECUTE FUNCTION f();";

    #[test]
    fn reads_the_call_and_the_created_objects() {
        let call = read_converge_call(STAGING).unwrap();
        assert_eq!(call.schema, "app");
        assert_eq!(call.table, "stg_It's");
        assert!(call.allow_extra_columns);
        assert_eq!(call.shape.primary_key, vec!["Id", "At"]);
        assert_eq!(
            call.shape.columns[1],
            ColumnShape {
                name: "At".into(),
                canonical: "timestamp with time zone".into(),
                not_null: false,
                default: Some("now( )".into()),
            }
        );
        let tokens = lex(STAGING).unwrap();
        assert_eq!(created_names(&tokens, "function"), vec!["sp_merge_It's"]);
        assert_eq!(created_names(&tokens, "trigger"), vec!["cdc_mark"]);
        assert_eq!(created_names(&tokens, "view"), Vec::<String>::new());
    }

    #[test]
    fn a_final_table_call_keeps_extra_columns_only_when_told() {
        let text = STAGING.replace("    true\n);", "    false\n);");
        assert!(!read_converge_call(&text).unwrap().allow_extra_columns);
        let text = STAGING.replace(",\n    true\n);", "\n);");
        assert!(!read_converge_call(&text).unwrap().allow_extra_columns);
    }

    #[test]
    fn broken_calls_are_errors() {
        for text in [
            "nothing here",
            "CALL converge_table('a', 'b', $cdc$[{]$cdc$, ARRAY[]::text[])",
            "CALL converge_table('a', 'b', $cdc$[{\"name\": \"x\"}]$cdc$, ARRAY[]::text[])",
            "CALL converge_table('a', $cdc$[]$cdc$)",
            "CALL converge_table('a', 'b', $cdc$[]$cdc$)",
        ] {
            assert!(read_converge_call(text).is_err(), "{text}");
        }
    }
}
