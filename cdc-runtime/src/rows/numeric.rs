//! `numeric` without `rust_decimal`: [`PgNumeric`] keeps the exact decimal text,
//! and the binary codec serves both it and `rust_decimal::Decimal` in COPY.

use std::fmt;
use std::str::FromStr;

use postgres::types::{FromSql, Type};

use super::values::{invalid, BoxError, ParseValueError};

/// `numeric`: the exact decimal text (`-12.3400`, `NaN`); no precision is lost either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PgNumeric(String);

impl Default for PgNumeric {
    fn default() -> PgNumeric {
        PgNumeric("0".to_string())
    }
}

impl PgNumeric {
    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PgNumeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PgNumeric {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgNumeric, ParseValueError> {
        let text = text.trim();
        encode_numeric(text, &mut Vec::new()).map_err(|_| invalid("numeric", text))?;
        Ok(PgNumeric(text.to_string()))
    }
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// Decodes PostgreSQL's binary `numeric` into decimal text.
pub(crate) fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric: truncated value".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let group = |exponent: i64| -> u16 {
        usize::try_from(weight - exponent)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&group(weight).to_string());
        for exponent in (0..weight).rev() {
            out.push_str(&format!("{:04}", group(exponent)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut exponent = -1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(exponent)));
            exponent -= 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

/// Encodes decimal text (`[+-]digits[.digits]`, `NaN`, `[+-]Infinity`) as binary `numeric`.
pub(crate) fn encode_numeric(text: &str, out: &mut Vec<u8>) -> Result<(), BoxError> {
    let header = |out: &mut Vec<u8>,
                  ndigits: usize,
                  weight: i64,
                  sign: u16,
                  dscale: usize|
     -> Result<(), BoxError> {
        out.extend_from_slice(&u16::try_from(ndigits)?.to_be_bytes());
        out.extend_from_slice(&i16::try_from(weight)?.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&u16::try_from(dscale)?.to_be_bytes());
        Ok(())
    };
    match text {
        "NaN" => return header(out, 0, 0, NUMERIC_NAN, 0),
        "Infinity" | "+Infinity" => return header(out, 0, 0, NUMERIC_PINF, 0),
        "-Infinity" => return header(out, 0, 0, NUMERIC_NINF, 0),
        _ => {}
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(format!("not a decimal number: `{text}`").into());
    }
    let int_part = int_part.trim_start_matches('0');
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let padded = format!(
        "{}{int_part}{frac_part}{}",
        "0".repeat(int_pad),
        "0".repeat(frac_pad)
    );
    let mut groups: Vec<u16> = padded
        .as_bytes()
        .chunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
        })
        .collect();
    let mut weight = i64::try_from((int_part.len() + int_pad) / 4)? - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i64::try_from(leading)?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign = if negative && !groups.is_empty() {
        NUMERIC_NEG
    } else {
        0
    };
    header(out, groups.len(), weight, sign, frac_part.len())?;
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

impl<'a> FromSql<'a> for PgNumeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode_numeric(raw).map(PgNumeric)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_round_trips_through_binary() {
        for text in [
            "0",
            "1",
            "-1",
            "12.30",
            "10000",
            "0.0001",
            "123456789.987654321",
            "-0.5",
            "NaN",
            "99990000.00010000",
        ] {
            let mut raw = Vec::new();
            encode_numeric(text, &mut raw).unwrap();
            assert_eq!(decode_numeric(&raw).unwrap(), text, "{text}");
        }
        let mut raw = Vec::new();
        encode_numeric("007.50", &mut raw).unwrap();
        assert_eq!(decode_numeric(&raw).unwrap(), "7.50");
        assert!("1e5".parse::<PgNumeric>().is_err());
        assert!(".".parse::<PgNumeric>().is_err());
    }
}
