//! Rust names for generated row code: `snake_case` fields, `UpperCamelCase` structs, keywords escaped, duplicates numbered.

use std::collections::BTreeSet;

use crate::columns::Column;

/// Rust keywords (strict, reserved and edition-dependent) that cannot be identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Splits a name into ASCII words at separators and case changes
/// (`HTTPServer` → `HTTP`, `Server`; `c_float24` → `c`, `float24`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|c| !c.is_empty())
    {
        let chars: Vec<char> = chunk.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = c.is_ascii_uppercase()
                && match prev {
                    Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                    Some(p) if p.is_ascii_uppercase() => {
                        next.is_some_and(|n| n.is_ascii_lowercase())
                    }
                    _ => false,
                };
            if boundary && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            word.push(c);
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// `snake_case` of a column or schema name (no keyword or uniqueness handling).
pub fn snake_case(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// `UpperCamelCase` of a table name (no keyword or uniqueness handling).
pub fn camel_case(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Hands out unique, valid identifiers within one scope.
#[derive(Debug, Default)]
pub(super) struct Namer {
    taken: BTreeSet<String>,
}

impl Namer {
    /// A unique identifier for `candidate`; `fallback` when nothing usable is left,
    /// `digit_prefix` before a leading digit.
    pub(super) fn name(
        &mut self,
        candidate: String,
        fallback: String,
        digit_prefix: &str,
    ) -> String {
        let mut base = if candidate.is_empty() {
            fallback
        } else {
            candidate
        };
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("{digit_prefix}{base}");
        }
        if KEYWORDS.contains(&base.as_str()) {
            base.push('_');
        }
        let mut name = base.clone();
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }
}

/// The field names of a table's columns, in column order.
pub fn field_names(columns: &[Column]) -> Vec<String> {
    let mut namer = Namer::default();
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| namer.name(snake_case(&c.name), format!("column_{}", i + 1), "col_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::ColumnOrigin;
    use crate::types::PgType;
    use proc_macro2::Ident;

    fn column(name: &str, pg_type: PgType, not_null: bool) -> Column {
        Column {
            name: name.to_string(),
            pg_type,
            not_null,
            default: None,
            origin: ColumnOrigin::Source,
        }
    }

    #[test]
    fn names_are_safe_rust_identifiers() {
        assert_eq!(snake_case("IsActive"), "is_active");
        assert_eq!(snake_case("OrderID"), "order_id");
        assert_eq!(snake_case("HTTPServer2Go"), "http_server2_go");
        assert_eq!(snake_case("Unit Price"), "unit_price");
        assert_eq!(snake_case("__cdc_operation"), "cdc_operation");
        assert_eq!(camel_case("Order Details"), "OrderDetails");
        assert_eq!(camel_case("select"), "Select");
        let columns = [
            column("type", PgType::Text, true),
            column("Unit Price", PgType::Text, true),
            column("unit_price", PgType::Text, true),
            column("1st", PgType::Text, true),
            column("ÆØÅ", PgType::Text, true),
            column("self", PgType::Text, true),
        ];
        assert_eq!(
            field_names(&columns),
            [
                "type_",
                "unit_price",
                "unit_price_2",
                "col_1st",
                "column_5",
                "self_"
            ]
        );
        for name in field_names(&columns) {
            assert!(syn::parse_str::<Ident>(&name).is_ok(), "{name}");
        }
    }
}
