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
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
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
