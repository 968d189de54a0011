//! Problems found while loading, kept with typed locations and resolved to diagnostics when reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Error};
use crate::location::YamlPath;
use crate::yaml::read_text;

/// Where in its file a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// The file as a whole.
    File,
    /// A position the YAML parser reported.
    Position {
        /// 1-based line.
        line: usize,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// A node of the document, looked up in the file's text when reported.
    Node(YamlPath),
}

/// One error or warning, not yet resolved to a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The file at fault, relative to the project root where possible.
    pub file: PathBuf,
    /// The field at fault, as shown.
    pub field: Option<String>,
    /// Where in the file.
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    /// A finding about a whole file.
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Finding {
        Finding {
            file: file.into(),
            field: None,
            location: Location::File,
            message: message.into(),
        }
    }

    /// A finding about the node at `path`, which is also the field shown.
    pub fn at(file: impl Into<PathBuf>, path: YamlPath, message: impl Into<String>) -> Finding {
        Finding {
            file: file.into(),
            field: Some(path.to_string()),
            location: Location::Node(path),
            message: message.into(),
        }
    }

    /// Shows `field` instead of the located path (for fields named relative
    /// to an entry, as the messages have always named them).
    pub fn field(mut self, field: impl Into<String>) -> Finding {
        self.field = Some(field.into());
        self
    }

    /// The diagnostic, its line looked up in `text` (the file's contents) when
    /// the location is a node. Semantic findings report the line only: the
    /// golden fixtures pin `file:line: field ...` for them.
    fn resolve(self, text: Option<&str>) -> Diagnostic {
        let (line, column) = match &self.location {
            Location::File => (None, None),
            Location::Position { line, column } => (Some(*line), *column),
            Location::Node(path) => (text.and_then(|text| path.line_in(text)), None),
        };
        let diagnostic = Diagnostic::new(self.file, self.message).at(line, column);
        match self.field {
            Some(field) => diagnostic.field(field),
            None => diagnostic,
        }
    }
}

impl From<Diagnostic> for Finding {
    /// A diagnostic that is located already (the parser's).
    fn from(diagnostic: Diagnostic) -> Finding {
        Finding {
            file: diagnostic.file,
            field: diagnostic.field,
            location: match diagnostic.line {
                Some(line) => Location::Position {
                    line,
                    column: diagnostic.column,
                },
                None => Location::File,
            },
            message: diagnostic.message,
        }
    }
}

/// The findings of a file that could not be read (see [`read_text`]).
pub(crate) fn unreadable(rel: &Path, error: Error) -> Vec<Finding> {
    match error {
        Error::Invalid(diagnostics) => diagnostics.into_iter().map(Finding::from).collect(),
        Error::Io { source, .. } => {
            vec![Finding::in_file(rel, format!("cannot be read: {source}"))]
        }
        other => vec![Finding::in_file(rel, other.to_string())],
    }
}

/// Resolves findings to diagnostics in order, reading each file that holds a
/// node location once (relative paths are taken from `root`). A file that
/// cannot be read any more leaves its findings without a line.
pub(crate) fn resolve_all(root: &Path, findings: Vec<Finding>) -> Vec<Diagnostic> {
    let mut texts: HashMap<PathBuf, Option<String>> = HashMap::new();
    findings
        .into_iter()
        .map(|finding| {
            if !matches!(finding.location, Location::Node(_)) {
                return finding.resolve(None);
            }
            let text = texts
                .entry(finding.file.clone())
                .or_insert_with(|| read_text(&root.join(&finding.file), &finding.file).ok());
            let text = text.as_deref();
            finding.resolve(text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_resolve_against_the_file_when_reported() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("t.yaml"),
            "schema: dbo\ntable: T\ncolumns:\n  - name: a\n  - name: b\n",
        )
        .unwrap();
        let item = YamlPath::root().key("columns").item(1);
        let findings = vec![
            Finding::at("t.yaml", item.clone(), "bad").field("columns[1].type"),
            Finding::at("t.yaml", YamlPath::root().key("table"), "wrong table"),
            Finding::in_file("t.yaml", "no key"),
            Finding::from(Diagnostic::new("t.yaml", "parse").at(Some(2), Some(7))),
            Finding::at("gone.yaml", item, "vanished"),
        ];
        let shown: Vec<String> = resolve_all(root.path(), findings)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "t.yaml:5: field `columns[1].type`: bad",
                "t.yaml:2: field `table`: wrong table",
                "t.yaml: no key",
                "t.yaml:2:7: parse",
                "gone.yaml: field `columns[1]`: vanished",
            ]
        );
    }
}
