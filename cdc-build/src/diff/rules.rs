//! Canonical type names for the diff; the change rules themselves live in [`cdc_core::schema::rules`].
//!
//! [`is_safe_type_change`], [`Severity`] and [`ApplyAction`] are re-exported
//! from cdc-core, where the runtime's `verify_schema` shares them.

pub use cdc_core::schema::rules::{is_safe_type_change, ApplyAction, Severity};

use crate::types::PgType;

/// A type name in PostgreSQL's canonical form, as `format_type()` prints it
/// (`int4` → `integer`, `varchar(50)` → `character varying(50)`,
/// `timestamptz(3)` → `timestamp(3) with time zone`). A type the generator
/// does not know is kept lowercase with its spaces collapsed.
pub fn canonical_type(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Ok(pg_type) = PgType::parse(&text) {
        return pg_type.canonical();
    }
    // `timestamp(3) with time zone`: the parameters sit inside the name.
    if let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) {
        if open < close && !text[close + 1..].trim().is_empty() {
            let moved = format!(
                "{} {}{}",
                text[..open].trim(),
                text[close + 1..].trim(),
                &text[open..=close]
            );
            if let Ok(pg_type) = PgType::parse(&moved) {
                return pg_type.canonical();
            }
        }
    }
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (written, canonical) in [
            ("int4", "integer"),
            ("INTEGER", "integer"),
            ("int8", "bigint"),
            ("varchar(50)", "character varying(50)"),
            ("character  varying(50)", "character varying(50)"),
            ("timestamp(3)", "timestamp(3) without time zone"),
            (
                "timestamp(3) without time zone",
                "timestamp(3) without time zone",
            ),
            ("timestamptz", "timestamp with time zone"),
            ("timestamp(6) with time zone", "timestamp(6) with time zone"),
            ("numeric", "numeric"),
            ("decimal(10, 2)", "numeric(10,2)"),
            ("float8", "double precision"),
            ("char(3)", "character(3)"),
            ("bpchar", "bpchar"),
            ("Geography(Point)", "geography(point)"),
        ] {
            assert_eq!(canonical_type(written), canonical, "{written}");
        }
    }
}
