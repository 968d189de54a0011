//! YAML scalars for the table-YAML writer: plain where YAML reads the text back
//! as the same string, quoted otherwise.

/// Characters that may not start a plain scalar.
const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`~. +";

/// Words that YAML 1.1 or 1.2 resolves to something other than a string.
const RESERVED_WORDS: &[&str] = &[
    "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
];

/// Appends `text` as a YAML scalar in block context.
pub fn push_string(out: &mut String, text: &str) {
    if is_plain_safe(text) {
        out.push_str(text);
    } else if !text.chars().any(char::is_control) {
        out.push('\'');
        out.push_str(&text.replace('\'', "''"));
        out.push('\'');
    } else {
        push_double_quoted(out, text);
    }
}

/// Whether `text` reads back as the same string when written without quotes.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if INDICATORS.contains(first) || first.is_ascii_digit() {
        return false;
    }
    if text.ends_with([' ', ':'])
        || text.contains(": ")
        || text.contains(" #")
        || text.chars().any(|c| c.is_control() || c == '\u{feff}')
    {
        return false;
    }
    !RESERVED_WORDS.contains(&text.to_ascii_lowercase().as_str())
}

/// YAML's double-quoted style, written by the one quoting function the manifest uses too.
fn push_double_quoted(out: &mut String, text: &str) {
    out.push_str(&cdc_core::manifest::quote(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> String {
        let mut out = String::new();
        push_string(&mut out, text);
        out
    }

    #[test]
    fn plain_where_unambiguous() {
        assert_eq!(scalar("Order Details"), "Order Details");
        assert_eq!(scalar("((0))"), "((0))");
        assert_eq!(scalar("(getdate())"), "(getdate())");
        assert_eq!(scalar("x]; DROP TABLE y --"), "x]; DROP TABLE y --");
    }

    #[test]
    fn quoted_where_yaml_would_read_something_else() {
        assert_eq!(scalar("true"), "'true'");
        assert_eq!(scalar("123"), "'123'");
        assert_eq!(scalar("('a: b')"), "'(''a: b'')'");
        assert_eq!(scalar("-x"), "'-x'");
        assert_eq!(scalar(""), "''");
        assert_eq!(scalar("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn every_form_reads_back_the_same() {
        for text in [
            "true",
            "0x1F",
            "('a: b')",
            "it's",
            "a\nb\"c\\",
            "#hash",
            "x #y",
            "[x]",
            "{y}",
            "Ünïcode",
            " lead",
            "trail ",
            "null",
            "~",
            "& anchor",
            "*alias",
            "!tag",
            ".5",
            "key:",
        ] {
            let yaml = format!("v: {}\n", scalar(text));
            let value: std::collections::BTreeMap<String, String> =
                serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!(value["v"], text, "{yaml}");
        }
    }
}
