//! A line reader for the `CREATE TABLE` the current generator writes, tried before the general DDL reader; anything it does not recognise sends the file to that reader.
//!
//! The generator writes one column per line (`    "Name" type[ DEFAULT
//! expr][ NOT NULL],`) and the key last (`    PRIMARY KEY ("A", "B")`).
//! Reading those lines directly costs a fraction of lexing the statement,
//! which matters for the diff of a 10,000-table project. A line with a quote,
//! a comment, a constraint word or any other shape makes [`read_generated`]
//! return `None`, and [`super::ddl::read_table_file`] reads the file with the
//! general lexer; the tests check that both agree on every generated file.

use super::ddl::{FileColumn, FileTable};
use super::rules::canonical_type_cached as canonical_type;

/// Words after which the general reader is needed (see `CONSTRAINT_WORDS`).
const UNUSUAL: &[&str] = &[
    "null",
    "default",
    "primary",
    "constraint",
    "references",
    "unique",
    "check",
    "collate",
    "generated",
    "not",
];

fn has_unusual_word(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| UNUSUAL.iter().any(|u| word.eq_ignore_ascii_case(u)))
}

/// A `"quoted"` identifier at the start of `text` (doubled quotes unescaped) and the rest.
fn quoted_name(text: &str) -> Option<(String, &str)> {
    let mut rest = text.strip_prefix('"')?;
    let mut name = String::new();
    loop {
        let close = rest.find('"')?;
        name.push_str(&rest[..close]);
        rest = &rest[close + 1..];
        match rest.strip_prefix('"') {
            Some(after) => {
                name.push('"');
                rest = after;
            }
            None => return Some((name, rest)),
        }
    }
}

fn column(line: &str) -> Option<FileColumn> {
    let (name, rest) = quoted_name(line)?;
    let rest = rest.strip_prefix(' ')?;
    if rest.contains(['"', '\'', '$', ';']) || rest.contains("--") || rest.contains("/*") {
        return None;
    }
    let (rest, not_null) = match rest.strip_suffix(" NOT NULL") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (type_text, default) = match rest.split_once(" DEFAULT ") {
        Some((type_text, default)) => (type_text, Some(default)),
        None => (rest, None),
    };
    if type_text.is_empty()
        || has_unusual_word(type_text)
        || default.is_some_and(|d| d.is_empty() || has_unusual_word(d))
    {
        return None;
    }
    Some(FileColumn {
        name,
        canonical: canonical_type(type_text),
        not_null,
        default: default.map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
    })
}

fn primary_key(line: &str) -> Option<Vec<String>> {
    let mut rest = line.strip_prefix("PRIMARY KEY (")?.strip_suffix(')')?;
    let mut key = Vec::new();
    loop {
        let (name, after) = quoted_name(rest)?;
        key.push(name);
        match after.strip_prefix(", ") {
            Some(next) => rest = next,
            None if after.is_empty() => return Some(key),
            None => return None,
        }
    }
}

/// The table of a file as the current generator writes it; `None` for any other shape.
pub fn read_generated(text: &str) -> Option<FileTable> {
    let mut lines = text.lines();
    lines.find(|line| line.starts_with("CREATE TABLE IF NOT EXISTS ") && line.ends_with(" ("))?;
    let mut table = FileTable::default();
    for line in lines {
        if line == ");" {
            for key in &table.primary_key {
                table.columns.iter_mut().find(|c| &c.name == key)?.not_null = true;
            }
            return (!table.columns.is_empty()).then_some(table);
        }
        let item = line.strip_prefix("    ")?;
        let item = item.strip_suffix(',').unwrap_or(item);
        if !table.primary_key.is_empty() {
            // The key is the last item.
            return None;
        }
        if item.starts_with("PRIMARY KEY (") {
            table.primary_key = primary_key(item)?;
        } else {
            table.columns.push(column(item)?);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_generated_shape_and_refuses_the_rest() {
        let text = "-- x\nCREATE TABLE IF NOT EXISTS \"s\".\"T\" (\n    \"Id\" bigint NOT NULL,\n    \"say \"\"hi\"\"\" character varying(20) DEFAULT now() NOT NULL,\n    \"At\" timestamptz(3),\n    PRIMARY KEY (\"Id\", \"At\")\n);\n";
        let table = read_generated(text).unwrap();
        assert_eq!(table.primary_key, vec!["Id", "At"]);
        assert_eq!(table.columns[1].name, "say \"hi\"");
        assert_eq!(table.columns[1].canonical, "character varying(20)");
        assert_eq!(table.columns[1].default.as_deref(), Some("now()"));
        assert!(table.columns[2].not_null, "a key column is NOT NULL");
        assert_eq!(table.columns[2].canonical, "timestamp(3) with time zone");
        for odd in [
            "    \"A\" text DEFAULT 'x',",
            "    \"A\" text COLLATE \"C\",",
            "    \"A\" text NULL,",
            "    \"A\" integer REFERENCES t,",
            "    \"A\" integer DEFAULT NULL,",
            "  \"A\" integer,",
            "    A integer,",
            "    \"A\" integer, -- note",
        ] {
            let text = format!("CREATE TABLE IF NOT EXISTS t (\n{odd}\n    \"B\" integer\n);\n");
            assert_eq!(read_generated(&text), None, "{odd}");
        }
        assert_eq!(
            read_generated("CREATE TABLE IF NOT EXISTS t (\n    \"A\" integer\n"),
            None
        );
        assert_eq!(
            read_generated(
                "CREATE TABLE IF NOT EXISTS t (\n    \"A\" integer,\n    PRIMARY KEY (\"B\")\n);"
            ),
            None
        );
    }
}
