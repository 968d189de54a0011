//! Whether a column template's raw SQL `default` is one expression: no `;`, no comment, balanced quotes and parentheses.

/// Checks that `sql` is a single PostgreSQL expression as far as its tokens
/// show: no statement separator, no comment, every quote (single, double,
/// dollar) closed and every parenthesis matched. The expression itself is
/// PostgreSQL's to judge at apply time; this keeps it from ending the
/// statement it is spliced into.
pub fn check_single_expression(sql: &str) -> Result<(), String> {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    if sql.trim().is_empty() {
        return Err("is empty; write an SQL expression or leave `default` out".to_string());
    }
    while at < bytes.len() {
        match bytes[at] {
            b';' => {
                return Err(
                    "contains `;`: a default is one SQL expression, not statements".to_string(),
                )
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                return Err("contains a comment (`--`): a default is one SQL expression".to_string())
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                return Err("contains a comment (`/*`): a default is one SQL expression".to_string())
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    "has a `)` without its `(`: a default is one SQL expression".to_string()
                })?;
            }
            quote @ (b'\'' | b'"') => {
                // A doubled quote inside is an escaped one: skipping to the
                // next quote and going on from there handles it.
                let close = bytes[at + 1..].iter().position(|&b| b == quote);
                match close {
                    Some(offset) => at += offset + 1,
                    None => {
                        let kind = if quote == b'\'' { "single" } else { "double" };
                        return Err(format!(
                            "has an unclosed {kind} quote: a default is one SQL expression"
                        ));
                    }
                }
            }
            b'$' => {
                if let Some(tag) = dollar_tag(&sql[at..]) {
                    let body = &sql[at + tag.len()..];
                    match body.find(tag) {
                        Some(end) => at += tag.len() + end + tag.len() - 1,
                        None => {
                            return Err(format!(
                            "has an unclosed dollar quote `{tag}`: a default is one SQL expression"
                        ))
                        }
                    }
                }
            }
            _ => {}
        }
        at += 1;
    }
    if depth > 0 {
        return Err("has a `(` without its `)`: a default is one SQL expression".to_string());
    }
    Ok(())
}

/// The dollar-quote tag (`$$`, `$tag$`) that `text` starts with, if any.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()));
    valid.then(|| &text[..end + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_expressions_pass() {
        for sql in [
            "now()",
            "'it''s'",
            "\"a;b\"",
            "coalesce(current_setting('app.tenant', true), '')::int",
            "$$a;b$$",
            "$x$ -- not a comment $x$",
            "'--'",
            "1 - -1",
            "$1",
        ] {
            assert_eq!(check_single_expression(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn statements_comments_and_unbalanced_text_fail() {
        for sql in [
            "0; drop table t",
            "0 -- x",
            "0 /* x */",
            "'open",
            "\"open",
            "$$open",
            "(1",
            "1)",
            "",
        ] {
            assert!(check_single_expression(sql).is_err(), "{sql}");
        }
    }
}
