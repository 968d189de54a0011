//! Typed locations in YAML input (`sinks.<sink>.tables.<t>.from`, `columns[2]`), resolved to a line when reported.
//!
//! A problem found after parsing names the node it concerns as a [`YamlPath`];
//! only when the problem is reported is the path looked up in the file's text
//! ([`YamlPath::line_in`]), so nothing has to keep a file's text around in case
//! something goes wrong. The lookup follows block-style indentation and looks
//! inside flow collections (`{a: 1}`, `[a, b]`) on one line; when a step cannot
//! be found, the line of the deepest step that was found is the answer.

use std::fmt;

/// One step from a YAML node to one of its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The value of a mapping key.
    Key(String),
    /// The n-th item (0-based) of a sequence.
    Item(usize),
    /// The item of a sequence that is this scalar (`- Name`, or `Name` in `[Id, Name]`).
    Scalar(String),
}

/// A path from a document's root to a node.
///
/// Displayed as the field it designates: keys joined with `.`, items as `[n]`
/// (`app.sinks.grp.tables.app.T.from`, `columns[2].type`). A [`Step::Scalar`]
/// picks an entry of the list before it and is not part of the field's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(Vec<Step>);

impl YamlPath {
    /// The document itself.
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    /// The value of `key` under this node.
    pub fn key(mut self, key: impl Into<String>) -> YamlPath {
        self.0.push(Step::Key(key.into()));
        self
    }

    /// The `index`-th item of the sequence at this node.
    pub fn item(mut self, index: usize) -> YamlPath {
        self.0.push(Step::Item(index));
        self
    }

    /// The item of the sequence at this node that is `value`.
    pub fn scalar(mut self, value: impl Into<String>) -> YamlPath {
        self.0.push(Step::Scalar(value.into()));
        self
    }

    /// This path followed by `rest`.
    pub fn join(mut self, rest: &YamlPath) -> YamlPath {
        self.0.extend(rest.0.iter().cloned());
        self
    }

    /// The steps, from the root.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The 1-based line of the node in `text`, or of its deepest ancestor
    /// that can be found; `None` when not even the first step is there.
    pub fn line_in(&self, text: &str) -> Option<usize> {
        let lines = Lines::of(text);
        let mut node = Node::ROOT;
        let mut found = None;
        for step in &self.0 {
            let next = match step {
                Step::Key(key) => lines.find_key(&node, key),
                Step::Item(index) => lines.find_item(&node, |_, position| position == *index),
                Step::Scalar(value) => lines.find_scalar(&node, value),
            };
            match next {
                Some(child) => {
                    found = Some(child.line + 1);
                    node = child;
                }
                None => break,
            }
        }
        found
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for step in &self.0 {
            match step {
                Step::Key(key) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Step::Item(index) => write!(f, "[{index}]")?,
                Step::Scalar(_) => continue,
            }
            first = false;
        }
        Ok(())
    }
}

/// A node found in the text: where it starts and what follows it on its line.
#[derive(Debug, Clone, Copy)]
struct Node<'t> {
    /// 0-based index into [`Lines::lines`]' source lines.
    line: usize,
    /// Column of the node's key or dash; `None` for the document root.
    indent: Option<usize>,
    /// What follows the key's colon or the item's dash on the same line.
    inline: &'t str,
    /// Column where `inline` starts.
    inline_column: usize,
    /// Whether the node is a sequence item (`- ...`) rather than a key's value.
    is_item: bool,
}

impl<'t> Node<'t> {
    const ROOT: Node<'static> = Node {
        line: 0,
        indent: None,
        inline: "",
        inline_column: 0,
        is_item: false,
    };

    /// The node whose key or dash starts `content` (at column `indent` of
    /// `line`), with `rest` the text after it.
    fn on_line(
        line: usize,
        indent: usize,
        content: &'t str,
        rest: &'t str,
        is_item: bool,
    ) -> Node<'t> {
        Node {
            line,
            indent: Some(indent),
            inline: rest,
            inline_column: indent + (content.len() - rest.len()),
            is_item,
        }
    }
}

/// The non-blank, non-comment lines of a text with their indentation.
struct Lines<'t> {
    /// `(0-based line index, indent, content)`.
    lines: Vec<(usize, usize, &'t str)>,
}

impl<'t> Lines<'t> {
    fn of(text: &'t str) -> Lines<'t> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text
            .lines()
            .enumerate()
            .filter_map(|(index, line)| {
                let line = line.trim_end();
                let content = line.trim_start_matches(' ');
                (!content.is_empty() && !content.starts_with('#'))
                    .then(|| (index, line.len() - content.len(), content))
            })
            .collect();
        Lines { lines }
    }

    /// The lines of `node`'s block: those after it until one is indented no
    /// deeper than the node (a sequence may sit at its key's own indent).
    fn block<'a>(&'a self, node: &Node<'_>) -> impl Iterator<Item = (usize, usize, &'t str)> + 'a {
        let (start, indent) = match node.indent {
            None => (0, None),
            Some(indent) => (node.line + 1, Some(indent)),
        };
        let sequence_at_key = !node.is_item && node.inline.is_empty();
        self.lines
            .iter()
            .copied()
            .skip_while(move |(line, _, _)| *line < start)
            .take_while(move |(_, line_indent, content)| match indent {
                None => true,
                Some(indent) => {
                    *line_indent > indent
                        || (sequence_at_key && *line_indent == indent && is_item(content))
                }
            })
    }

    fn find_key(&self, node: &Node<'t>, key: &str) -> Option<Node<'t>> {
        let inline = node.inline;
        if inline.starts_with('{') {
            let at = find_flow_key(inline, key)?;
            return Some(Node {
                inline: inline[at..].trim_start(),
                inline_column: node.inline_column + at,
                is_item: false,
                ..*node
            });
        }
        // An item whose mapping starts on its dash line (`- name: x`) has its
        // first key there and the others below it, in the same column.
        let item_mapping = node.is_item && !inline.is_empty();
        if item_mapping {
            if let Some(rest) = key_value(inline, key) {
                return Some(Node::on_line(
                    node.line,
                    node.inline_column,
                    inline,
                    rest,
                    false,
                ));
            }
        } else if !inline.is_empty() {
            // A scalar has no keys.
            return None;
        }
        let mut child_indent = item_mapping.then_some(node.inline_column);
        for (line, indent, content) in self.block(node) {
            if *child_indent.get_or_insert(indent) != indent {
                continue;
            }
            if let Some(rest) = key_value(content, key) {
                return Some(Node::on_line(line, indent, content, rest, false));
            }
        }
        None
    }

    /// The item of the sequence at `node` for which `wanted(item text, position)` holds.
    fn find_item(&self, node: &Node<'t>, wanted: impl Fn(&str, usize) -> bool) -> Option<Node<'t>> {
        if node.inline.starts_with('[') {
            return Some(*node);
        }
        let mut item_indent = None;
        let mut position = 0;
        for (line, indent, content) in self.block(node) {
            if !is_item(content) || *item_indent.get_or_insert(indent) != indent {
                continue;
            }
            let rest = content[1..].trim_start_matches(' ');
            if wanted(rest, position) {
                return Some(Node::on_line(line, indent, content, rest, true));
            }
            position += 1;
        }
        None
    }

    fn find_scalar(&self, node: &Node<'t>, value: &str) -> Option<Node<'t>> {
        let inline = node.inline;
        if inline.starts_with('[') {
            let inner = inline.trim_start_matches('[').split(']').next()?;
            return inner
                .split(',')
                .any(|entry| unquote(entry.trim()) == value)
                .then_some(*node);
        }
        if !inline.is_empty() {
            return (unquote(inline) == value).then_some(*node);
        }
        self.find_item(node, |text, _| unquote(text) == value)
    }
}

fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// `key: value` (the key plain or quoted) → the text after the colon, trimmed.
fn key_value<'t>(content: &'t str, key: &str) -> Option<&'t str> {
    let rest = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| {
            content
                .strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)
        })?;
    let rest = rest.trim_start_matches(' ').strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim())
}

/// Where the value of `key` starts inside a flow mapping's text.
fn find_flow_key(flow: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = flow[from..].find(key) {
        let start = from + offset;
        from = start + key.len();
        let before = flow[..start].trim_end_matches(['"', '\'']).trim_end();
        if !(before.ends_with('{') || before.ends_with(',')) {
            continue;
        }
        let after = flow[from..].trim_start_matches(['"', '\'']).trim_start();
        if let Some(value) = after.strip_prefix(':') {
            return Some(flow.len() - value.len());
        }
    }
    None
}

fn unquote(text: &str) -> &str {
    let text = text.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "\
# a service
app:
  source:
    tables:
      dbo.T:
        ignore_columns: [Secret, Other]
        primary_key:
          - Code
  sinks:
    grp.app:
      databases: {dev: app_dev}
      tables:
        app.T:
          from: dbo.T
          column_templates:
            - template: customer_id
            - {template: region, name: region_code}
        app.U:
          from: dbo.U
";

    fn line(path: &YamlPath, text: &str) -> Option<usize> {
        path.line_in(text)
    }

    #[test]
    fn paths_display_as_fields() {
        let path = YamlPath::root()
            .key("app")
            .key("sinks")
            .key("grp.app")
            .key("tables")
            .key("app.T")
            .key("from");
        assert_eq!(path.to_string(), "app.sinks.grp.app.tables.app.T.from");
        let column = YamlPath::root().key("columns").item(2).key("type");
        assert_eq!(column.to_string(), "columns[2].type");
        let key = YamlPath::root().key("primary_key").scalar("Nope");
        assert_eq!(key.to_string(), "primary_key");
    }

    #[test]
    fn keys_items_and_scalars_resolve_to_their_lines() {
        let sink = YamlPath::root().key("app").key("sinks").key("grp.app");
        let table = sink.clone().key("tables").key("app.T");
        assert_eq!(line(&sink, SERVICE), Some(10));
        assert_eq!(line(&table.clone().key("from"), SERVICE), Some(14));
        assert_eq!(
            line(&sink.clone().key("tables").key("app.U"), SERVICE),
            Some(18)
        );
        // Inside a flow mapping: the line of the mapping.
        assert_eq!(
            line(&sink.clone().key("databases").key("dev"), SERVICE),
            Some(11)
        );
        let templates = table.clone().key("column_templates");
        assert_eq!(
            line(&templates.clone().item(0).key("template"), SERVICE),
            Some(16)
        );
        assert_eq!(
            line(&templates.clone().item(1).key("name"), SERVICE),
            Some(17)
        );
        let source = YamlPath::root()
            .key("app")
            .key("source")
            .key("tables")
            .key("dbo.T");
        let ignored = source.clone().key("ignore_columns").scalar("Other");
        assert_eq!(line(&ignored, SERVICE), Some(6));
        assert_eq!(
            line(&source.clone().key("primary_key").scalar("Code"), SERVICE),
            Some(8)
        );
    }

    #[test]
    fn a_missing_step_gives_the_deepest_line_found() {
        let table = YamlPath::root()
            .key("app")
            .key("sinks")
            .key("grp.app")
            .key("tables")
            .key("app.U");
        assert_eq!(
            line(&table.clone().key("column_templates"), SERVICE),
            Some(18)
        );
        assert_eq!(line(&table.key("from").key("deeper"), SERVICE), Some(19));
        assert_eq!(line(&YamlPath::root().key("nope"), SERVICE), None);
        // A key of a sibling's block is not a child.
        let sinks = YamlPath::root().key("app").key("sinks").key("from");
        assert_eq!(line(&sinks, SERVICE), Some(9));
    }

    #[test]
    fn column_items_in_block_and_flow_style() {
        let table = "\
schema: dbo
table: T
primary_key: [Id, Nope]
columns:
  - name: Id
    type: int
  - {name: A, type: int}
- stray
";
        let columns = YamlPath::root().key("columns");
        assert_eq!(line(&columns.clone().item(0), table), Some(5));
        assert_eq!(line(&columns.clone().item(0).key("type"), table), Some(6));
        assert_eq!(line(&columns.clone().item(1).key("type"), table), Some(7));
        assert_eq!(line(&columns.clone().item(5), table), Some(4));
        assert_eq!(
            line(&YamlPath::root().key("primary_key").scalar("Nope"), table),
            Some(3)
        );
        assert_eq!(line(&YamlPath::root().key("table"), table), Some(2));
        // A sequence at its key's own indent.
        let flat = "columns:\n- name: a\n- name: b\nother: 1\n";
        assert_eq!(
            line(&YamlPath::root().key("columns").item(1), flat),
            Some(3)
        );
        assert_eq!(line(&YamlPath::root().key("other"), flat), Some(4));
    }

    #[test]
    fn quoted_keys_crlf_and_a_byte_order_mark() {
        let text = "\u{feff}\"app\":\r\n  'sinks':\r\n    s: {}\r\n";
        let path = YamlPath::root().key("app").key("sinks").key("s");
        assert_eq!(line(&path, text), Some(3));
    }
}
