//! Canonical type names for the diff; the change rules themselves live in [`cdc_core::schema::rules`].
//!
//! [`is_safe_type_change`], [`Severity`] and [`ApplyAction`] are re-exported
//! from cdc-core, where the runtime's `verify_schema` shares them.

pub use cdc_core::schema::rules::{is_safe_type_change, ApplyAction, Severity};

use std::cell::RefCell;
use std::collections::HashMap;

use crate::types::PgType;

/// Distinct type texts remembered per thread by [`canonical_type_cached`].
const CACHED_TYPES: usize = 4096;

thread_local! {
    static CANONICAL: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// [`canonical_type`], remembered per thread: a project repeats a few dozen
/// type texts over thousands of columns, and parsing each is most of the
/// cost of reading a table file.
pub fn canonical_type_cached(text: &str) -> String {
    CANONICAL.with(|cache| {
        if let Some(canonical) = cache.borrow().get(text) {
            return canonical.clone();
        }
        let canonical = canonical_type(text);
        let mut cache = cache.borrow_mut();
        if cache.len() < CACHED_TYPES {
            cache.insert(text.to_string(), canonical.clone());
        }
        canonical
    })
}

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
    fn the_cache_gives_what_the_parser_gives() {
        for text in [
            "int4",
            "varchar(50)",
            "int4",
            "Geography(Point)",
            "varchar(50)",
        ] {
            assert_eq!(canonical_type_cached(text), canonical_type(text), "{text}");
        }
    }

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
