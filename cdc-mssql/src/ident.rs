//! T-SQL quoting: identifiers in brackets, literals as `N'...'`, and file-name checks.
//!
//! Everything that reaches a script or a query as text goes through these
//! functions; values of live queries go as parameters (`@P1`) instead.

use std::fmt;

/// A source table: schema and name, exactly as the catalog spells them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableRef {
    /// Schema name (`dbo`).
    pub schema: String,
    /// Table name (`Order Details`).
    pub table: String,
}

impl TableRef {
    /// A table reference from its parts.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> TableRef {
        TableRef {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Parses a service file's `<schema>.<Table>` key; the table may contain dots.
    pub fn parse_dotted(key: &str) -> Option<TableRef> {
        let (schema, table) = key.split_once('.')?;
        if schema.is_empty() || table.is_empty() {
            return None;
        }
        Some(TableRef::new(schema, table))
    }

    /// `[schema].[table]`, each part bracket-quoted.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// Whether `name` designates this table: `Table` or `schema.Table`, case-insensitively
    /// (the default collation of SQL Server catalogs is case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.table)
            || name.eq_ignore_ascii_case(&format!("{}.{}", self.schema, self.table))
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Bracket-quotes an identifier: `x]y` becomes `[x]]y]`.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('[');
    for c in name.chars() {
        if c == ']' {
            out.push(']');
        }
        out.push(c);
    }
    out.push(']');
    out
}

/// A Unicode string literal: `it's` becomes `N'it''s'`.
pub fn quote_literal(value: &str) -> String {
    format!("N'{}'", value.replace('\'', "''"))
}

/// A string expression for a script: [`quote_literal`], with control characters
/// spelled `NCHAR(n)` so that a line break in a name cannot put `GO` at the
/// start of a script line.
pub fn literal_expression(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return quote_literal(value);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut run = String::new();
    for c in value.chars() {
        if c.is_control() {
            if !run.is_empty() {
                parts.push(quote_literal(&run));
                run.clear();
            }
            parts.push(format!("NCHAR({})", u32::from(c)));
        } else {
            run.push(c);
        }
    }
    if !run.is_empty() {
        parts.push(quote_literal(&run));
    }
    parts.join(" + ")
}

/// Text safe inside a one-line `--` comment: line breaks become spaces, so a
/// name cannot end the comment and start a statement.
pub fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Why a name cannot be a file or directory name, if it cannot.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the name is empty")
    } else if name == "." || name == ".." {
        Some("the name is a relative directory")
    } else if name.contains(['/', '\\']) {
        Some("the name contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("the name contains a control character")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_doubled() {
        assert_eq!(quote_ident("x]; DROP TABLE y --"), "[x]]; DROP TABLE y --]");
        assert_eq!(quote_ident("Order Details"), "[Order Details]");
    }

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote_literal("it's"), "N'it''s'");
    }

    #[test]
    fn dotted_keys_split_at_the_first_dot() {
        assert_eq!(
            TableRef::parse_dotted("dbo.Order.Details"),
            Some(TableRef::new("dbo", "Order.Details"))
        );
        assert_eq!(TableRef::parse_dotted("nodot"), None);
    }

    #[test]
    fn line_breaks_leave_the_literal() {
        assert_eq!(literal_expression("a\nGO"), "N'a' + NCHAR(10) + N'GO'");
        assert_eq!(literal_expression("plain"), "N'plain'");
    }

    #[test]
    fn comments_cannot_be_broken_out_of() {
        assert_eq!(comment_text("a\nDROP"), "a DROP");
    }

    #[test]
    fn path_separators_are_refused() {
        assert!(file_name_problem("a/b").is_some());
        assert!(file_name_problem("..").is_some());
        assert!(file_name_problem("x]; DROP TABLE y --").is_none());
    }
}
