//! Reading YAML input: size and nesting bounds, then serde_norway with its
//! errors turned into located diagnostics.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Diagnostic, Error};

mod unique_keys;

/// Largest YAML file the loader reads; anything bigger is not a table definition.
pub const MAX_YAML_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a YAML file as text: bounded in size, UTF-8 (an invalid byte is an
/// error at its line), a leading byte-order mark dropped. Problems name the
/// file as `rel`.
pub(crate) fn read_text(path: &Path, rel: &Path) -> Result<String, Error> {
    use std::io::Read as _;
    let refuse = |message: String| Err(Error::invalid(Diagnostic::new(rel, message)));
    let link = std::fs::symlink_metadata(path).map_err(|e| Error::io(rel, e))?;
    if link.file_type().is_symlink() && std::fs::metadata(path).is_err() {
        let target = std::fs::read_link(path).unwrap_or_default();
        return refuse(format!(
            "is a symbolic link to {}, which does not exist",
            target.display()
        ));
    }
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return refuse(format!("cannot be read: {e}")),
    };
    let meta = file.metadata().map_err(|e| Error::io(rel, e))?;
    if !meta.is_file() {
        return refuse("is a directory or special file, not a YAML file".to_string());
    }
    if meta.len() > MAX_YAML_BYTES {
        return Err(Error::invalid(Diagnostic::new(
            rel,
            format!(
                "file is {} bytes; input YAML files are limited to {MAX_YAML_BYTES} bytes",
                meta.len()
            ),
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    if let Err(e) = file.read_to_end(&mut bytes) {
        return refuse(format!("cannot be read: {e}"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        Error::invalid(
            Diagnostic::new(rel, "invalid UTF-8: YAML files must be UTF-8 text")
                .at(Some(line), Some(column)),
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Parses YAML into `T`, turning parser errors into a located diagnostic.
///
/// A key written twice in one mapping is an error naming both lines, whatever
/// `T` is (serde alone keeps a map's last value).
pub fn parse_yaml<T: DeserializeOwned>(rel: &Path, text: &str) -> Result<T, Diagnostic> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_nesting(text).map_err(|(line, column, message)| {
        Diagnostic::new(rel, message).at(Some(line), Some(column))
    })?;
    unique_keys::check_unique_keys(text).map_err(|err| located(rel, text, &err))?;
    serde_norway::from_str::<T>(text).map_err(|err| located(rel, text, &err))
}

/// A serde_norway error as a diagnostic at the place it concerns.
fn located(rel: &Path, text: &str, err: &serde_norway::Error) -> Diagnostic {
    let mut location = err.location().map(|l| (l.line(), l.column()));
    let mut message = err.to_string();
    if message.starts_with("repetition limit exceeded") {
        message = "YAML aliases expand beyond the parser's repetition limit (an alias bomb?); write the values out instead".to_string();
        location = location.or_else(|| first_alias(text));
    } else if message.contains("more than one document") {
        message = "a second YAML document starts here; a file holds one document".to_string();
        location = location.or_else(|| second_document(text));
    }
    // The scanner says where a construct it could not finish (a quoted
    // scalar, a flow mapping) opened: that is where the fault is.
    if let Some((problem, context)) = message.split_once(", while ") {
        if let Some((context, at)) = context.rsplit_once(" at line ") {
            if let Some(opened) = parse_line_column(at) {
                let problem = problem.to_string();
                location = Some(opened);
                message = format!("{problem} (while {context} that starts here)");
            }
        }
    }
    // serde_norway appends " at line L column C"; the diagnostic carries it
    // already (a message that names a second place keeps it).
    if let Some(pos) = message.rfind(" at line ") {
        if !message.ends_with(" that starts here)") {
            message.truncate(pos);
        }
    }
    let (mut field, mut message) = match message.split_once(": ") {
        // A path may hold spaces (`dbo.Order Details`) when a duplicate key says it is one.
        Some((path, rest))
            if !path.is_empty()
                && (!path.contains(' ') || rest.starts_with(unique_keys::DUPLICATE_KEY)) =>
        {
            (Some(path.to_string()), rest.to_string())
        }
        _ => (None, message),
    };
    if let (Some(rest), Some((line, _))) =
        (message.strip_prefix(unique_keys::DUPLICATE_KEY), location)
    {
        let (key, first) = match rest.split_once(unique_keys::FIRST_AT) {
            Some((key, first)) => (key.to_string(), format!("{}{first}", unique_keys::FIRST_AT)),
            None => (rest.to_string(), String::new()),
        };
        message = format!("{}{key} at line {line}{first}", unique_keys::DUPLICATE_KEY);
        // The field is the repeated key itself, under its mapping.
        let key = key.strip_suffix('`').unwrap_or(&key);
        field = Some(match field {
            Some(mapping) => format!("{mapping}.{key}"),
            None => key.to_string(),
        });
    }
    let diagnostic = Diagnostic::new(rel, message).at(location.map(|l| l.0), location.map(|l| l.1));
    match field {
        Some(field) => diagnostic.field(field),
        None => diagnostic,
    }
}

/// `L column C` (as serde_norway writes a mark) as a pair.
fn parse_line_column(at: &str) -> Option<(usize, usize)> {
    let (line, column) = at.split_once(" column ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// Line and column of the first alias (`*name`) outside comments.
fn first_alias(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let code = line.split(" #").next().unwrap_or(line);
        let bytes = code.as_bytes();
        (0..bytes.len()).find_map(|at| {
            let starts = bytes[at] == b'*'
                && (at == 0 || matches!(bytes[at - 1], b' ' | b'[' | b'{' | b','))
                && bytes
                    .get(at + 1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
            starts.then(|| (index + 1, code[..at].chars().count() + 1))
        })
    })
}

/// Line of the `---` or `...` that ends the first document after some content.
fn second_document(text: &str) -> Option<(usize, usize)> {
    let mut content = false;
    for (index, line) in text.lines().enumerate() {
        let marker = line.starts_with("---") || line.starts_with("...");
        if marker && content {
            return Some((index + 1, 1));
        }
        let trimmed = line.trim_start();
        content |= !marker && !trimmed.is_empty() && !trimmed.starts_with('#');
    }
    None
}

/// Deepest flow nesting and indentation the loader accepts. The YAML parser
/// has its own recursion limit, but reaching it through a pathological document
/// can take quadratic time; this linear pre-scan keeps every input bounded.
pub const MAX_NESTING: usize = 128;
/// Deepest indentation, in columns, the loader accepts.
pub const MAX_INDENT: usize = 1024;

fn check_nesting(text: &str) -> Result<(), (usize, usize, String)> {
    // Every character that matters is ASCII, so bytes are scanned: a byte of a
    // multi-byte character never matches one and stands for it as `previous`.
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (line_index, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > MAX_INDENT && quote.is_none() {
            return Err((
                line_index + 1,
                indent,
                format!("indentation deeper than {MAX_INDENT} columns"),
            ));
        }
        let mut previous = b' ';
        for (index, &c) in line.as_bytes().iter().enumerate() {
            match quote {
                Some(q) => {
                    if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'"' | b'\'' if matches!(previous, b' ' | b'[' | b'{' | b',' | b':') => {
                        quote = Some(c)
                    }
                    b'#' if previous == b' ' || index == 0 => break,
                    b'[' | b'{' => {
                        depth += 1;
                        if depth > MAX_NESTING {
                            // Columns count characters, not bytes.
                            let column = line[..index].chars().count() + 1;
                            return Err((
                                line_index + 1,
                                column,
                                format!("nesting deeper than {MAX_NESTING} levels"),
                            ));
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
        }
        // A single-quoted scalar may span lines; a double-quoted one too.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn error_of(text: &str) -> String {
        parse_yaml::<serde_norway::Value>(Path::new("f.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn duplicate_keys_are_refused_in_every_style_naming_both_lines() {
        assert_eq!(
            error_of("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n"),
            "f.yaml:5:3: field `b.c`: duplicate key `c` at line 5 (first at line 3)"
        );
        assert_eq!(
            error_of("l:\n  - {x: 1, y: 2}\n  - {x: 1, x: 2}\n"),
            "f.yaml:3:12: field `l[1].x`: duplicate key `x` at line 3 (first at line 3)"
        );
        assert_eq!(
            error_of("t:\n  dbo.Order Details:\n    from: a\n    from: b\n"),
            "f.yaml:4:5: field `t.dbo.Order Details.from`: duplicate key `from` at line 4 (first at line 3)"
        );
        // Typed maps too: serde alone would keep the last value.
        let map = parse_yaml::<BTreeMap<String, u32>>(Path::new("f.yaml"), "a: 1\na: 2\n");
        assert!(map
            .unwrap_err()
            .message
            .contains("duplicate key `a` at line 2 (first at line 1)"));
        // The same key in two mappings is fine.
        assert!(
            parse_yaml::<serde_norway::Value>(Path::new("f.yaml"), "a: {k: 1}\nb: {k: 1}\n")
                .is_ok()
        );
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_tolerated() {
        let value: BTreeMap<String, u32> =
            parse_yaml(Path::new("f.yaml"), "\u{feff}a: 1\r\nb: 2\r\n").unwrap();
        assert_eq!(value.get("a"), Some(&1));
        assert_eq!(value.get("b"), Some(&2));
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, b"a: 1\nb: caf\xe9\n").unwrap();
        let error = read_text(&path, Path::new("f.yaml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "f.yaml:2:7: invalid UTF-8: YAML files must be UTF-8 text"
        );
    }
}
