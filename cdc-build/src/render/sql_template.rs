//! What askama needs to render SQL templates: the identifier-quoting escaper and the `lit` filter.

use std::fmt::{self, Write};

use crate::ident::{push_ident, quote_literal};

/// The escaper of `.sql` templates: every interpolated value is a quoted
/// identifier unless a filter says otherwise, so a forgotten filter
/// over-quotes instead of injecting.
#[derive(Debug, Clone, Copy)]
pub struct QuoteIdent;

impl askama::filters::Escaper for QuoteIdent {
    fn write_escaped_str<W: Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        let mut quoted = String::with_capacity(string.len() + 2);
        push_ident(&mut quoted, string);
        dest.write_str(&quoted)
    }
}

/// Filters the SQL templates use beside askama's built-in `safe`.
pub mod filters {
    use std::fmt::Display;

    /// `{{ value|lit }}`: a string literal (quotes doubled, `E''` for backslashes).
    #[askama::filter_fn]
    pub fn lit(
        value: impl Display,
        _: &dyn askama::Values,
    ) -> askama::Result<askama::filters::Safe<String>> {
        Ok(askama::filters::Safe(super::quote_literal(
            &value.to_string(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::filters;

    #[derive(Template)]
    #[template(
        source = "SELECT {{ name }}, {{ value|lit }}, {{ raw|safe }} FROM {{ table }}",
        ext = "sql"
    )]
    struct Probe<'a> {
        name: &'a str,
        value: &'a str,
        raw: &'a str,
        table: &'a str,
    }

    #[test]
    fn values_are_identifiers_unless_filtered() {
        let sql = Probe {
            name: "a\"b",
            value: "it's",
            raw: "now()",
            table: "x; DROP TABLE y",
        }
        .render()
        .unwrap();
        assert_eq!(
            sql,
            r#"SELECT "a""b", 'it''s', now() FROM "x; DROP TABLE y""#
        );
    }
}
