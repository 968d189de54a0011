//! A fast reader for the plain block-style table YAML that inspection and
//! `synth.py` write (`key: value` lines and a `columns:` list of `- name: ...`
//! blocks). YAML parsing was most of the loader's time; this reader handles
//! that one shape in a single pass and returns `None` for anything else
//! (flow style, anchors, quotes with escapes, ambiguous scalars, unknown or
//! repeated keys, ...), which then goes through serde_norway, the reference
//! parser, with its full error reporting. The two are cross-checked by tests
//! on every table file of the repository.

use crate::model::{RawColumn, RawTable};

/// Parses `text` if it is in the simple shape; `None` means "use serde_norway".
pub fn parse_simple_table(text: &str) -> Option<RawTable> {
    let mut table = PartialTable::default();
    let mut columns: Option<Vec<RawColumn>> = None;
    let mut current: Option<PartialColumn> = None;
    let mut item_indent: Option<usize> = None;
    for raw_line in text.lines() {
        let line = raw_line.trim_end();
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.contains('\t') || content.starts_with("---") || content.starts_with("...") {
            return None;
        }
        let indent = line.len() - content.len();
        match (&mut columns, indent) {
            (_, 0) if !content.starts_with("- ") => {
                if let Some(column) = current.take() {
                    columns.as_mut()?.push(column.finish()?);
                }
                let (key, value) = split_key_value(content)?;
                if key == "columns" {
                    if !value.is_empty() || columns.is_some() {
                        return None;
                    }
                    columns = Some(Vec::new());
                    continue;
                }
                if columns.is_some()
                    && !matches!(
                        key,
                        "database" | "schema" | "service" | "table" | "description"
                    )
                {
                    return None;
                }
                table.set(key, value)?;
            }
            (Some(list), _) => {
                let (body, starts_item) = match content.strip_prefix("- ") {
                    Some(rest) => (rest.trim_start_matches(' '), true),
                    None => (content, false),
                };
                if starts_item {
                    if *item_indent.get_or_insert(indent) != indent {
                        return None;
                    }
                    if let Some(column) = current.take() {
                        list.push(column.finish()?);
                    }
                    current = Some(PartialColumn::default());
                } else {
                    // A field of the current item sits two columns right of its dash.
                    if indent != item_indent? + 2 {
                        return None;
                    }
                }
                let (key, value) = split_key_value(body)?;
                current.as_mut()?.set(key, value)?;
            }
            _ => return None,
        }
    }
    if let Some(column) = current.take() {
        columns.as_mut()?.push(column.finish()?);
    }
    table.finish(columns?)
}

/// `key: value` with a plain key; the value may be empty.
fn split_key_value(content: &str) -> Option<(&str, &str)> {
    let colon = content.find(':')?;
    let key = &content[..colon];
    let rest = &content[colon + 1..];
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((key, rest.trim()))
}

/// A string value: a plain scalar that YAML would read as a string, or a
/// single-quoted one. Anything that could mean something else gives `None`.
fn string_value(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        return Some(inner.replace("''", "'"));
    }
    let first = value.chars().next()?;
    let special = "-?:,[]{}#&*!|>'\"%@`~";
    if special.contains(first)
        || value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
    {
        return None;
    }
    let lower = value.to_ascii_lowercase();
    let ambiguous = matches!(
        lower.as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | ".nan" | ".inf"
    ) || value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-' | b'e' | b'E' | b'_'))
        || lower.starts_with("0x")
        || lower.starts_with("0o");
    (!ambiguous).then(|| value.to_string())
}

fn bool_value(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn int_value<T: std::str::FromStr>(value: &str) -> Option<T> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    value.parse().ok()
}

/// Sets a field once; a second assignment or a bad value gives `None`.
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

#[derive(Default)]
struct PartialTable {
    database: Option<String>,
    schema: Option<String>,
    service: Option<String>,
    table: Option<String>,
    description: Option<String>,
}

impl PartialTable {
    fn set(&mut self, key: &str, value: &str) -> Option<()> {
        let slot = match key {
            "database" => &mut self.database,
            "schema" => &mut self.schema,
            "service" => &mut self.service,
            "table" => &mut self.table,
            "description" => &mut self.description,
            _ => return None,
        };
        once(slot, string_value(value))
    }

    fn finish(self, columns: Vec<RawColumn>) -> Option<RawTable> {
        Some(RawTable {
            database: self.database,
            schema: self.schema?,
            service: self.service,
            table: self.table?,
            columns,
            primary_key: None,
            description: self.description,
        })
    }
}

#[derive(Default)]
struct PartialColumn {
    name: Option<String>,
    type_name: Option<String>,
    nullable: Option<bool>,
    primary_key: Option<bool>,
    max_length: Option<i64>,
    precision: Option<u32>,
    scale: Option<u32>,
    identity: Option<bool>,
    computed: Option<String>,
    persisted: Option<bool>,
    description: Option<String>,
}

impl PartialColumn {
    fn set(&mut self, key: &str, value: &str) -> Option<()> {
        match key {
            "name" => once(&mut self.name, string_value(value)),
            "type" => once(&mut self.type_name, string_value(value)),
            "nullable" => once(&mut self.nullable, bool_value(value)),
            "primary_key" => once(&mut self.primary_key, bool_value(value)),
            "identity" => once(&mut self.identity, bool_value(value)),
            "computed" => once(&mut self.computed, string_value(value)),
            "persisted" => once(&mut self.persisted, bool_value(value)),
            "max_length" => once(&mut self.max_length, int_value(value)),
            "precision" => once(&mut self.precision, int_value(value)),
            "scale" => once(&mut self.scale, int_value(value)),
            "description" => once(&mut self.description, string_value(value)),
            // default_value and anything unknown: the reference parser decides.
            _ => None,
        }
    }

    fn finish(self) -> Option<RawColumn> {
        Some(RawColumn {
            name: self.name?,
            type_name: self.type_name?,
            nullable: self.nullable?,
            primary_key: self.primary_key.unwrap_or(false),
            default_value: None,
            max_length: self.max_length,
            precision: self.precision,
            scale: self.scale,
            identity: self.identity,
            computed: self.computed,
            persisted: self.persisted,
            renamed_from: None,
            description: self.description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> RawTable {
        serde_norway::from_str(text).expect("reference parse")
    }

    fn same(text: &str) {
        let fast =
            parse_simple_table(text).unwrap_or_else(|| panic!("fast path declined:\n{text}"));
        assert_eq!(format!("{fast:?}"), format!("{:?}", reference(text)));
    }

    #[test]
    fn simple_shapes_match_the_reference_parser() {
        same("database: SynthDB\nschema: dbo\nservice: synth\ntable: Customer\ncolumns:\n- name: CustomerId\n  type: int\n  nullable: false\n  primary_key: true\n- name: Notes\n  type: nvarchar\n  nullable: true\n  max_length: -1\n");
        same("# comment\nschema: dbo\ntable: 'select'\ncolumns:\n  - name: 'order'\n    type: nvarchar(50)\n    nullable: true\n\n  - name: Unit Price\n    type: decimal\n    precision: 18\n    scale: 2\n    nullable: false\n");
    }

    #[test]
    fn anything_unusual_is_left_to_the_reference_parser() {
        for text in [
            "schema: dbo\ntable: T\ncolumns:\n  - {name: Id, type: int, nullable: false}\n",
            "schema: dbo\ntable: T\nprimary_key: Id\ncolumns:\n- name: Id\n  type: int\n  nullable: false\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n  nullable: no\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: 123\n  type: int\n  nullable: false\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n  type: bigint\n  nullable: false\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n  nullable: false\n  default_value: ((0))\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n  nulable: false\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n",
            "schema: &s dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n  nullable: false\n",
            "schema: \"dbo\"\ntable: T\ncolumns:\n- name: Id\n  type: int\n  nullable: false\n",
            "schema: dbo\ntable: T\ncolumns:\n- name: Id\n  type: int\n   nullable: false\n",
        ] {
            assert!(parse_simple_table(text).is_none(), "fast path accepted:\n{text}");
        }
    }

    fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                yaml_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.components().any(|c| c.as_os_str() == "_schemas")
            {
                out.push(path);
            }
        }
    }

    /// Every table file of the repository, and a synthetic project when
    /// synth.py is next to the checkout: where the fast path answers, it
    /// answers exactly as serde_norway does, and it never accepts a file that
    /// serde_norway rejects.
    #[test]
    fn agrees_with_the_reference_parser_on_every_table_file() {
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        yaml_files(&crate_dir.join("../services"), &mut files);
        yaml_files(&crate_dir.join("tests/fixtures"), &mut files);
        let synth = crate_dir.join("../../shared/tools/synth.py");
        let synth_dir = std::env::temp_dir().join(format!("cdc-fast-table-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&synth_dir);
        let synthesized = synth.is_file()
            && std::process::Command::new("python3")
                .arg(&synth)
                .args(["--tables", "300", "--out"])
                .arg(&synth_dir)
                .output()
                .is_ok_and(|o| o.status.success());
        if synthesized {
            yaml_files(&synth_dir, &mut files);
        } else {
            eprintln!("synth.py not available: checking the repository's files only");
        }
        files.retain(|p| !p.ends_with("column-templates.yaml"));
        assert!(files.len() > 20, "found only {} table files", files.len());
        let mut fast_hits = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).expect("read");
            let reference: Result<RawTable, _> = crate::yaml::parse_yaml(path, &text);
            match (parse_simple_table(&text), reference) {
                (Some(fast), Ok(reference)) => {
                    assert_eq!(
                        format!("{fast:?}"),
                        format!("{reference:?}"),
                        "{}",
                        path.display()
                    );
                    fast_hits += 1;
                }
                (Some(_), Err(e)) => panic!(
                    "{}: fast path accepted what serde_norway rejects: {e}",
                    path.display()
                ),
                (None, _) => {}
            }
        }
        if synthesized {
            assert!(
                fast_hits >= 300,
                "the fast path should take every synthetic table, took {fast_hits}"
            );
        }
        let _ = std::fs::remove_dir_all(&synth_dir);
    }
}
