//! Splits a migration body into statements, so that a failure can be traced to
//! the statement and line where it happened.
//!
//! The splitter knows what PostgreSQL's lexer knows about statement
//! boundaries: single-quoted strings (with `''` and, in `E''` strings, backslash
//! escapes), quoted identifiers, dollar-quoted bodies (`$tag$ ... $tag$`),
//! `--` comments and nested `/* */` comments. Semicolons inside any of these do
//! not end a statement.

/// One statement of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement text, including its terminating semicolon when present.
    pub text: &'a str,
    /// 1-based line within the text that was split where the statement starts
    /// (its first non-blank, non-comment character).
    pub line: usize,
    /// Byte offset of `text` within the text that was split.
    pub offset: usize,
}

impl Statement<'_> {
    /// The 1-based line, within the text that was split, of a 1-based character
    /// position inside this statement (as PostgreSQL reports error positions).
    pub fn line_of(&self, whole: &str, position: usize) -> usize {
        let within: usize = self
            .text
            .chars()
            .take(position.saturating_sub(1))
            .map(char::len_utf8)
            .sum();
        whole[..self.offset + within].matches('\n').count() + 1
    }
}

/// Splits SQL into statements; blank and comment-only tails are dropped.
pub fn split_statements(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut line = 1;
    let mut first_code_line: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                first_code_line.get_or_insert(line);
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if bytes[i] == b'\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            b'\'' | b'"' => {
                first_code_line.get_or_insert(line);
                // `E'...'` strings take backslash escapes; the `E` must not end an identifier.
                let escapes = b == b'\''
                    && i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                let (end, newlines) = skip_quoted(bytes, i, escapes);
                line += newlines;
                i = end;
            }
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                first_code_line.get_or_insert(line);
                match dollar_tag(&bytes[i..]) {
                    Some(tag_len) => {
                        let tag = &sql[i..i + tag_len];
                        let body_start = i + tag_len;
                        match sql[body_start..].find(tag) {
                            Some(end) => {
                                line += sql[body_start..body_start + end].matches('\n').count();
                                i = body_start + end + tag_len;
                            }
                            None => {
                                line += sql[body_start..].matches('\n').count();
                                i = bytes.len();
                            }
                        }
                    }
                    None => i += 1,
                }
            }
            b';' => {
                i += 1;
                if let Some(first) = first_code_line.take() {
                    out.push(Statement {
                        text: &sql[start..i],
                        line: first,
                        offset: start,
                    });
                }
                start = i;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                first_code_line.get_or_insert(line);
                i += 1;
            }
        }
    }
    if let Some(first) = first_code_line {
        out.push(Statement {
            text: &sql[start..],
            line: first,
            offset: start,
        });
    }
    out
}

/// Skips the string or quoted identifier whose opening quote is at `open`: a
/// doubled quote stands for itself and, with `backslash_escapes`, a backslash
/// escapes the byte after it. Returns the index after the closing quote (or
/// past the end) and the newlines crossed.
fn skip_quoted(bytes: &[u8], open: usize, backslash_escapes: bool) -> (usize, usize) {
    let quote = bytes[open];
    let mut i = open + 1;
    let mut newlines = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return (i + 1, newlines),
            b'\n' => {
                newlines += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    (i, newlines)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Length of a dollar-quote tag (`$$` or `$name$`) at the start of `bytes`.
fn dollar_tag(bytes: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < bytes.len() {
        match bytes[j] {
            b'$' => return Some(j + 1),
            b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => j += 1,
            b if b.is_ascii_digit() && j > 1 => j += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "-- header; not a statement\nCREATE TABLE \"a;b\" (x text DEFAULT 'x;y');\n\n\
                   CREATE FUNCTION f() RETURNS int AS $cdc$ SELECT 1; $cdc$ LANGUAGE sql;\n\
                   /* c; /* nested; */ */ SELECT E'\\';', $$;$$;\n-- trailing comment\n";
        let statements = split_statements(sql);
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(statements.len(), 3, "{statements:#?}");
        assert_eq!(lines, [2, 4, 5]);
        assert!(statements[1].text.contains("SELECT 1; $cdc$"));
        assert!(statements[2].text.trim_end().ends_with("$$;$$;"));
    }

    #[test]
    fn positional_dollar_parameters_are_not_quotes() {
        let statements = split_statements("PREPARE p AS SELECT $1; SELECT 2;");
        assert_eq!(statements.len(), 2);
    }

    #[test]
    fn unterminated_tail_is_one_statement() {
        let statements = split_statements("SELECT 1;\nSELECT 2");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].line, 2);
    }

    #[test]
    fn positions_map_to_lines() {
        let sql = "SELECT 1;\nSELECT\n  é,\n  nope;";
        let statements = split_statements(sql);
        assert_eq!(statements[1].line, 2);
        // Character 14 of the second statement ("\nSELECT\n  é,\n  nope;") is in "nope".
        assert_eq!(statements[1].line_of(sql, 15), 4);
        assert_eq!(statements[1].line_of(sql, 2), 2);
    }
}
