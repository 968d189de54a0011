//! Diagnostics: errors and warnings that name the file, line, column and field.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::root::RootMarker;

/// One problem in the input, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file at fault (relative to the project root where possible).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field at fault, as a path such as `columns[2].type`.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for a whole file.
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Sets the field path.
    pub fn field(mut self, field: impl Into<String>) -> Diagnostic {
        self.field = Some(field.into());
        self
    }

    /// Sets the line (and column) when known.
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Diagnostic {
        if line.is_some() {
            self.line = line;
            self.column = column;
        }
        self
    }
}

/// Longest value, in characters, a message shows whole (a name a little too
/// long for PostgreSQL is still shown whole, so that it can be found).
pub const LONGEST_SHOWN_VALUE: usize = 256;
/// Characters shown of a value longer than [`LONGEST_SHOWN_VALUE`].
pub const SHOWN_VALUE_CHARS: usize = 64;

/// `value` as a message shows it: whole up to [`LONGEST_SHOWN_VALUE`]
/// characters, else its first [`SHOWN_VALUE_CHARS`], `…` and its length in bytes.
pub fn shown_value(value: &str) -> String {
    if value.char_indices().nth(LONGEST_SHOWN_VALUE).is_none() {
        return value.to_string();
    }
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// `message` with every value quoted in it (between backticks or double
/// quotes) shown by [`shown_value`], so that an absurd name cannot flood
/// a terminal or a log.
fn bound_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().unwrap_or('`');
        out.push_str(&bound_words(&rest[..open]));
        out.push(quote);
        let after = &rest[open + 1..];
        match after.find(quote) {
            Some(close) => {
                out.push_str(&shown_value(&after[..close]));
                out.push(quote);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&shown_value(after));
                rest = "";
            }
        }
    }
    out.push_str(&bound_words(rest));
    out
}

/// `text` with every word (a path, say) shown by [`shown_value`].
fn bound_words(text: &str) -> String {
    text.split(' ')
        .map(shown_value)
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            let field: Vec<String> = field.split('.').map(shown_value).collect();
            write!(f, "field `{}`: ", field.join("."))?;
        }
        f.write_str(&bound_quoted(&self.message))
    }
}

/// Why a project could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input has one or more problems; nothing was written.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No directory from the start directory upward holds what marks a project.
    #[error("no project found: no {marker} directory in {} or any parent directory", .start.display())]
    ProjectNotFound {
        /// Where the search started.
        start: PathBuf,
        /// What was looked for.
        marker: RootMarker,
    },
}

impl Error {
    /// An I/O error on a path.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A single diagnostic.
    pub fn invalid(diagnostic: Diagnostic) -> Error {
        Error::Invalid(vec![diagnostic])
    }
}

fn render_all(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let d = Diagnostic::new("a.yaml", "bad")
            .field("columns[1].type")
            .at(Some(3), Some(5));
        assert_eq!(d.to_string(), "a.yaml:3:5: field `columns[1].type`: bad");
        let line_only = Diagnostic::new("a.yaml", "bad").at(Some(3), None);
        assert_eq!(line_only.to_string(), "a.yaml:3: bad");
        let unplaced = Diagnostic::new("a.yaml", "bad").at(None, Some(5));
        assert_eq!(unplaced.to_string(), "a.yaml: bad");
        let huge = "x".repeat(1 << 20);
        let bounded = Diagnostic::new(
            "a.yaml",
            format!("name `{huge}` and \"{huge}\" and `{huge}"),
        )
        .field(format!("t.{huge}"));
        let cut = format!("{}… (1048576 bytes)", "x".repeat(64));
        assert_eq!(
            bounded.to_string(),
            format!("a.yaml: field `t.{cut}`: name `{cut}` and \"{cut}\" and `{cut}")
        );
        let not_found = Error::ProjectNotFound {
            start: "/p".into(),
            marker: RootMarker::ServicesOrMigrations,
        };
        assert_eq!(
            not_found.to_string(),
            "no project found: no `migrations/` or `services/` directory in /p or any parent directory"
        );
    }
}
