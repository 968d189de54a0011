//! Identifier and literal quoting, and derived names that fit PostgreSQL's limit.
//!
//! Every identifier in generated SQL goes through [`quote_ident`]; every string
//! literal through [`quote_literal`]; every derived name (`stg_`, `sp_merge_`,
//! index and trigger names) through [`derived_name`], which keeps it within
//! 63 bytes by shortening deterministically with a hash suffix.

use cdc_core::layout::{table_file, STAGING_SUFFIX};
use sha2::{Digest, Sha256};

/// PostgreSQL's maximum identifier length in bytes (NAMEDATALEN - 1).
pub const MAX_IDENT_BYTES: usize = 63;

/// Double-quotes an identifier, doubling embedded quotes.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    push_ident(&mut out, name);
    out
}

/// Appends [`quote_ident`]`(name)` to `out` without allocating.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    push_doubled(out, name, '"');
    out.push('"');
}

/// Appends `text` with every `quote` doubled.
fn push_doubled(out: &mut String, text: &str, quote: char) {
    let mut rest = text;
    while let Some(pos) = rest.find(quote) {
        out.push_str(&rest[..=pos]);
        out.push(quote);
        rest = &rest[pos + 1..];
    }
    out.push_str(rest);
}

/// `"schema"."name"`
pub fn qualified(schema: &str, name: &str) -> String {
    let mut out = String::with_capacity(schema.len() + name.len() + 5);
    push_qualified(&mut out, schema, name);
    out
}

/// Appends [`qualified`]`(schema, name)` to `out`.
pub fn push_qualified(out: &mut String, schema: &str, name: &str) {
    push_ident(out, schema);
    out.push('.');
    push_ident(out, name);
}

/// A SQL string literal that reads the same whatever `standard_conforming_strings` is.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    push_literal(&mut out, value);
    out
}

/// Appends [`quote_literal`]`(value)` to `out`.
pub fn push_literal(out: &mut String, value: &str) {
    if value.contains('\\') {
        out.push_str("E'");
        push_doubled(out, &value.replace('\'', "''"), '\\');
    } else {
        out.push('\'');
        push_doubled(out, value, '\'');
    }
    out.push('\'');
}

/// Dollar-quotes a body with a tag that does not occur in it.
pub fn dollar_quote(body: &str) -> String {
    let mut tag = String::from("$cdc$");
    let mut n = 0;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$cdc{n}$");
    }
    format!("{tag}{body}{tag}")
}

/// Appends `$cdc$<body>$cdc$` where `write_body` writes the body in place; the
/// same as [`dollar_quote`], which it falls back to when the body holds `$cdc$`.
pub fn push_dollar_quoted(out: &mut String, write_body: impl FnOnce(&mut String)) {
    const TAG: &str = "$cdc$";
    out.push_str(TAG);
    let start = out.len();
    write_body(out);
    if out[start..].contains(TAG) {
        let body = out.split_off(start);
        out.truncate(start - TAG.len());
        out.push_str(&dollar_quote(&body));
    } else {
        out.push_str(TAG);
    }
}

/// Why a name cannot be used as a PostgreSQL identifier.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty name".to_string());
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(format!(
            "`{name}` is {} bytes long; PostgreSQL identifiers hold at most {MAX_IDENT_BYTES} bytes and would be truncated",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`{}` contains the control character U+{:04X}",
            name.escape_debug(),
            u32::from(c)
        ));
    }
    Ok(())
}

/// Why a table name cannot be a file name of its own.
pub fn check_file_stem(name: &str) -> Result<(), String> {
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("`{name}` cannot be used as a file name (it contains a path separator or starts with a dot)"));
    }
    // `<T>.sql` of a table named `X-staging` is the staging file of `X`.
    if table_file(&name.to_ascii_lowercase()).ends_with(STAGING_SUFFIX) {
        let ending = STAGING_SUFFIX.trim_end_matches(".sql");
        return Err(format!(
            "`{name}` ends in `{ending}`, which would collide with a staging file name"
        ));
    }
    Ok(())
}

/// `prefix + base + suffix`, shortened to 63 bytes with a hash of the full name
/// when needed. The same input always gives the same name.
pub fn derived_name(prefix: &str, base: &str, suffix: &str) -> String {
    let full = format!("{prefix}{base}{suffix}");
    if full.len() <= MAX_IDENT_BYTES {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let budget = MAX_IDENT_BYTES - prefix.len() - suffix.len() - hash.len() - 1;
    let mut cut = budget.min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{prefix}{}_{hash}{suffix}", &base[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            quote_ident("Order \"Details\""),
            "\"Order \"\"Details\"\"\""
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_literal("it's a\\b"), "E'it''s a\\\\b'");
        assert_eq!(quote_literal(""), "''");
        assert_eq!(quote_ident("\"\""), "\"\"\"\"\"\"");
        assert_eq!(qualified("s\"", "t"), "\"s\"\"\".\"t\"");
        assert_eq!(dollar_quote("x"), "$cdc$x$cdc$");
        assert_eq!(dollar_quote("a $cdc$ b"), "$cdc1$a $cdc$ b$cdc1$");
        for body in ["x", "a $cdc$ b", "$cdc$ $cdc1$", ""] {
            let mut out = String::from("AS ");
            push_dollar_quoted(&mut out, |out| out.push_str(body));
            assert_eq!(out, format!("AS {}", dollar_quote(body)));
        }
    }

    #[test]
    fn derived_names_fit_and_are_stable() {
        assert_eq!(derived_name("stg_", "Actor", ""), "stg_Actor");
        let long = "ä".repeat(31); // 62 bytes
        let a = derived_name("sp_merge_", &long, "");
        assert!(a.len() <= MAX_IDENT_BYTES, "{a}");
        assert_eq!(a, derived_name("sp_merge_", &long, ""));
        assert_ne!(a, derived_name("sp_merge_", &format!("{long}x"), ""));
        assert!(a.starts_with("sp_merge_ä"));
    }

    #[test]
    fn identifier_checks() {
        assert!(check_identifier("Order Details").is_ok());
        assert!(check_identifier(&"x".repeat(64)).is_err());
        assert!(check_identifier("a\nb").is_err());
        assert!(check_identifier("").is_err());
        assert!(check_file_stem("a/b").is_err());
        assert!(check_file_stem("Foo-Staging").is_err());
    }
}
