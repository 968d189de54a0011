//! A small SQL lexer for generated migration files: words, quoted identifiers, string literals, dollar-quoted bodies, punctuation.

use std::borrow::Cow;

/// A lexical token with its byte span in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A bare word (keyword, unquoted identifier, number), as written.
    Word(&'a str),
    /// A `"quoted"` identifier, unescaped.
    Quoted(Cow<'a, str>),
    /// A `'string'` literal, unescaped.
    Literal(Cow<'a, str>),
    /// A `$tag$...$tag$` body.
    Dollar(&'a str),
    /// Any other character.
    Punct(char),
}

/// A token and where it sits in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed<'a> {
    /// The token.
    pub token: Token<'a>,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

/// Splits SQL text into tokens, skipping whitespace and comments.
pub fn lex(text: &str) -> Result<Vec<Lexed<'_>>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if text[i..].starts_with("--") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        if text[i..].starts_with("/*") {
            i = text[i + 2..]
                .find("*/")
                .map(|n| i + 2 + n + 2)
                .ok_or("unterminated /* comment")?;
            continue;
        }
        let token = match b {
            b'"' | b'\'' => {
                let (body, end) = quoted(text, i, b as char)?;
                i = end;
                if b == b'"' {
                    Token::Quoted(body)
                } else {
                    Token::Literal(body)
                }
            }
            b'$' => {
                let tag_end = text[i + 1..]
                    .find('$')
                    .map(|n| i + 1 + n)
                    .ok_or("a `$` that opens no dollar quote")?;
                let tag = &text[i..=tag_end];
                let body_end = text[tag_end + 1..]
                    .find(tag)
                    .map(|n| tag_end + 1 + n)
                    .ok_or_else(|| format!("unterminated {tag} quote"))?;
                i = body_end + tag.len();
                Token::Dollar(&text[tag_end + 1..body_end])
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                Token::Word(&text[start..i])
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or(' ');
                i += c.len_utf8();
                Token::Punct(c)
            }
        };
        out.push(Lexed {
            token,
            start,
            end: i,
        });
    }
    Ok(out)
}

/// Reads a quoted token that starts at `open`; the quote is escaped by doubling.
fn quoted(text: &str, open: usize, quote: char) -> Result<(Cow<'_, str>, usize), String> {
    let rest = &text[open + 1..];
    if let Some(close) = rest.find(quote) {
        if !rest[close + 1..].starts_with(quote) {
            return Ok((Cow::Borrowed(&rest[..close]), open + 1 + close + 1));
        }
    }
    let mut body = String::new();
    let mut chars = text[open + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            if text[open + 1 + offset + 1..].starts_with(quote) {
                body.push(quote);
                chars.next();
            } else {
                return Ok((Cow::Owned(body), open + 1 + offset + 1));
            }
        } else {
            body.push(c);
        }
    }
    Err(format!("unterminated {quote} quote"))
}

/// Whether `token` is the bare word `word`, in any case.
pub fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.eq_ignore_ascii_case(word))
}

/// An identifier's name: quoted as written, bare folded to lowercase as PostgreSQL does.
pub fn ident(token: &Token) -> Option<String> {
    match token {
        Token::Quoted(name) => Some(name.to_string()),
        Token::Word(word) => Some(word.to_lowercase()),
        _ => None,
    }
}
