//! The checksum of a migration file: SHA-256 of its body, a persisted format.
//!
//! A generated file is a header block, one `-- Checksum: sha256:<hex>` line and
//! the body. The checksum covers the body only (everything after the checksum
//! line) with CRLF normalised to LF, so a timestamp in the header or a checkout
//! with Windows line endings never changes it.

use std::fmt;

use sha2::{Digest, Sha256};

/// The marker that starts the checksum line.
pub const CHECKSUM_LINE_PREFIX: &str = "-- Checksum: sha256:";

/// A SHA-256 checksum, displayed as `sha256:<64 lowercase hex digits>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses `sha256:<hex>` or bare `<hex>` (64 hex digits, any case).
    pub fn parse(text: &str) -> Option<Checksum> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(Checksum(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

/// SHA-256 of a body, with every CRLF normalised to LF first.
pub fn body_checksum(body: &str) -> Checksum {
    let mut hasher = Sha256::new();
    let mut rest = body.as_bytes();
    // Feed the body in runs between CRLF pairs, dropping each CR of a CRLF.
    // `contains` on bytes is a memchr: bodies without any CR hash in one go.
    if rest.contains(&b'\r') {
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            hasher.update(&rest[..pos]);
            rest = &rest[pos + 1..];
        }
    }
    hasher.update(rest);
    Checksum(hasher.finalize().into())
}

/// A migration file split at its checksum line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMigration<'a> {
    /// Everything before the checksum line (the header block).
    pub header: &'a str,
    /// The checksum written in the file.
    pub embedded: Checksum,
    /// Everything after the checksum line.
    pub body: &'a str,
    /// 1-based line number of the body's first line within the file.
    pub body_first_line: usize,
}

impl SplitMigration<'_> {
    /// The checksum of the body as it is now.
    pub fn actual(&self) -> Checksum {
        body_checksum(self.body)
    }

    /// Checks the embedded checksum against the body.
    pub fn verify(&self) -> Result<Checksum, ChecksumError> {
        let actual = self.actual();
        if actual == self.embedded {
            Ok(actual)
        } else {
            Err(ChecksumError::Mismatch {
                embedded: self.embedded,
                actual,
            })
        }
    }
}

/// Why a file's checksum could not be read or did not match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChecksumError {
    /// No `-- Checksum: sha256:` line in the file.
    #[error("no `{CHECKSUM_LINE_PREFIX}<hex>` line found")]
    Missing,
    /// The checksum line does not hold 64 hex digits.
    #[error("line {line}: malformed checksum line (expected `{CHECKSUM_LINE_PREFIX}` and 64 hex digits)")]
    Malformed {
        /// 1-based line of the bad checksum line.
        line: usize,
    },
    /// The body was edited after generation.
    #[error("checksum mismatch: the file says {embedded} but its body hashes to {actual}")]
    Mismatch {
        /// Checksum written in the file.
        embedded: Checksum,
        /// Checksum of the body as found.
        actual: Checksum,
    },
}

/// Splits a file at its first checksum line.
pub fn split_migration(text: &str) -> Result<SplitMigration<'_>, ChecksumError> {
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if let Some(rest) = line.strip_prefix(CHECKSUM_LINE_PREFIX) {
            let hex = rest.trim_end_matches(['\n', '\r']).trim();
            let embedded =
                Checksum::parse(hex).ok_or(ChecksumError::Malformed { line: index + 1 })?;
            return Ok(SplitMigration {
                header: &text[..offset],
                embedded,
                body: &text[offset + line.len()..],
                body_first_line: index + 2,
            });
        }
        offset += line.len();
    }
    Err(ChecksumError::Missing)
}

/// Builds a file from a header block (ending in a newline) and a body.
pub fn assemble(header: &str, body: &str) -> String {
    assemble_with(header, body.len(), |out| out.push_str(body))
}

/// Builds a file from a header block (ending in a newline) and a body that
/// `write_body` appends to the file in place, so the body is never copied;
/// `body_capacity` is a size hint. Same result as [`assemble`].
pub fn assemble_with(
    header: &str,
    body_capacity: usize,
    write_body: impl FnOnce(&mut String),
) -> String {
    const PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let mut out = String::with_capacity(header.len() + body_capacity + 90);
    out.push_str(header);
    out.push_str(CHECKSUM_LINE_PREFIX);
    let hex_start = out.len();
    out.push_str(PLACEHOLDER);
    out.push('\n');
    let body_start = out.len();
    write_body(&mut out);
    let checksum = body_checksum(&out[body_start..]);
    // Same length: the bytes are overwritten, nothing after them moves.
    out.replace_range(hex_start..hex_start + PLACEHOLDER.len(), &checksum.hex());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // sha256("") and sha256("abc") from FIPS 180-2.
        assert_eq!(
            body_checksum("").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            body_checksum("abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn crlf_is_normalised() {
        assert_eq!(body_checksum("a\r\nb\r\n"), body_checksum("a\nb\n"));
        // A lone CR is content, not a line ending.
        assert_ne!(body_checksum("a\rb"), body_checksum("ab"));
    }

    #[test]
    fn header_does_not_change_checksum() {
        let a = assemble("-- Generated: 2026-01-01 00:00:00 UTC\n", "SELECT 1;\n");
        let b = assemble("-- Generated: 2027-01-01 00:00:00 UTC\n", "SELECT 1;\n");
        let sa = split_migration(&a).unwrap();
        let sb = split_migration(&b).unwrap();
        assert_eq!(sa.embedded, sb.embedded);
        assert_eq!(sa.verify().unwrap(), sa.embedded);
        assert_eq!(sa.body_first_line, 3);
    }

    #[test]
    fn assemble_in_place_matches() {
        let header = "-- Generated: 2026-01-01 00:00:00 UTC\n";
        let body = "SELECT 1;\r\nSELECT 2;\n";
        let built = assemble_with(header, 0, |out| out.push_str(body));
        assert_eq!(built, assemble(header, body));
        let split = split_migration(&built).unwrap();
        assert_eq!(split.body, body);
        assert_eq!(
            split.verify().unwrap(),
            body_checksum("SELECT 1;\nSELECT 2;\n")
        );
    }

    #[test]
    fn tampering_is_detected() {
        let file = assemble("-- h\n", "SELECT 1;\n").replace("SELECT 1", "SELECT 2");
        match split_migration(&file).unwrap().verify() {
            Err(ChecksumError::Mismatch { embedded, actual }) => assert_ne!(embedded, actual),
            other => panic!("expected mismatch, got {other:?}"),
        }
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(split_migration("SELECT 1;"), Err(ChecksumError::Missing));
        assert_eq!(
            split_migration("-- h\n-- Checksum: sha256:xyz\n"),
            Err(ChecksumError::Malformed { line: 2 })
        );
    }

    #[test]
    fn parse_round_trip() {
        let c = body_checksum("x");
        assert_eq!(Checksum::parse(&c.to_string()), Some(c));
        assert_eq!(Checksum::parse(&c.hex().to_uppercase()), Some(c));
        assert_eq!(Checksum::parse("sha256:00"), None);
    }
}
