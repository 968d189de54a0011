//! Reading YAML input: size and nesting bounds, then serde_norway with its
//! errors turned into located diagnostics.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Diagnostic, Error};

/// Largest YAML file the loader reads; anything bigger is not a table definition.
pub const MAX_YAML_BYTES: u64 = 8 * 1024 * 1024;

pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_YAML_BYTES {
        return Err(Error::invalid(Diagnostic::new(
            path,
            format!(
                "file is {} bytes; input YAML files are limited to {MAX_YAML_BYTES} bytes",
                meta.len()
            ),
        )));
    }
    let mut text = String::with_capacity(meta.len() as usize + 1);
    file.read_to_string(&mut text)
        .map_err(|e| Error::io(path, e))?;
    Ok(text)
}

/// Parses YAML into `T`, turning parser errors into a located diagnostic.
pub fn parse_yaml<T: DeserializeOwned>(rel: &Path, text: &str) -> Result<T, Diagnostic> {
    check_nesting(text).map_err(|(line, column, message)| {
        Diagnostic::new(rel, message).at(Some(line), Some(column))
    })?;
    serde_norway::from_str::<T>(text).map_err(|err| {
        let location = err.location();
        let mut message = err.to_string();
        if message.starts_with("repetition limit exceeded") {
            message = "YAML aliases expand beyond the parser's repetition limit (an alias bomb?); write the values out instead".to_string();
        }
        // serde_norway appends " at line L column C"; the diagnostic carries it already.
        if let Some(pos) = message.find(" at line ") {
            message.truncate(pos);
        }
        let (field, message) = match message.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') && !path.is_empty() => (Some(path.to_string()), rest.to_string()),
            _ => (None, message),
        };
        let diagnostic = Diagnostic::new(rel, message).at(location.as_ref().map(|l| l.line()), location.as_ref().map(|l| l.column()));
        match field {
            Some(field) => diagnostic.field(field),
            None => diagnostic,
        }
    })
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
