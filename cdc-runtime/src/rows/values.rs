//! Value types for columns whose natural Rust type lives in an optional crate.
//!
//! Without the `chrono`, `uuid`, `decimal` or `json` feature, generated row
//! structs use these instead: they read from PostgreSQL's binary format
//! (`FromSql`), write binary COPY ([`CopyValue`](super::CopyValue)), print in
//! PostgreSQL's text format and parse from it (`FromStr`), so the same code
//! (`"2026-05-01 12:00:00".parse()?`) compiles with and without the features.
//! `xml`, `interval` and `inet` columns always use them.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use postgres::types::{FromSql, Type};

pub(crate) type BoxError = Box<dyn StdError + Sync + Send>;

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A value that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: `{text}`")]
pub struct ParseValueError {
    what: &'static str,
    text: String,
}

pub(crate) fn invalid(what: &'static str, text: &str) -> ParseValueError {
    ParseValueError {
        what,
        text: text.to_string(),
    }
}

fn fixed<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], BoxError> {
    raw.try_into()
        .map_err(|_| format!("{what}: expected {N} bytes, got {}", raw.len()).into())
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian), days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (shared with the header timestamps).
use cdc_core::time::civil_from_days;

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `date`: days since 2000-01-01, printed `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgDate(pub i32);

impl PgDate {
    /// The date of a calendar day, if it exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<PgDate> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
            return None;
        }
        i32::try_from(days_from_civil(i64::from(year), month, day) - PG_EPOCH_DAYS)
            .ok()
            .map(PgDate)
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(i64::from(self.0) + PG_EPOCH_DAYS)
    }
}

impl fmt::Display for PgDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            i32::MAX => f.write_str("infinity"),
            i32::MIN => f.write_str("-infinity"),
            _ => {
                let (y, m, d) = self.ymd();
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
        }
    }
}

impl FromStr for PgDate {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgDate, ParseValueError> {
        let mut parts = text.trim().splitn(3, '-');
        let mut next = || parts.next().and_then(|p| p.parse::<i64>().ok());
        match (next(), next(), next()) {
            (Some(y), Some(m), Some(d)) => i32::try_from(y)
                .ok()
                .zip(u32::try_from(m).ok().zip(u32::try_from(d).ok()))
                .and_then(|(y, (m, d))| PgDate::from_ymd(y, m, d))
                .ok_or_else(|| invalid("date", text)),
            _ => Err(invalid("date", text)),
        }
    }
}

/// `time`: microseconds since midnight, printed `HH:MM:SS[.ffffff]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgTime(pub i64);

impl PgTime {
    /// A time of day, if valid.
    pub fn from_hms_micro(hour: u32, minute: u32, second: u32, micro: u32) -> Option<PgTime> {
        (hour < 24 && minute < 60 && second < 60 && micro < 1_000_000).then(|| {
            PgTime(
                ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1_000_000
                    + i64::from(micro),
            )
        })
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, micros: i64) -> fmt::Result {
    let secs = micros / 1_000_000;
    write!(
        f,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )?;
    let frac = micros % 1_000_000;
    if frac != 0 {
        let digits = format!("{frac:06}");
        write!(f, ".{}", digits.trim_end_matches('0'))?;
    }
    Ok(())
}

fn parse_time(text: &str) -> Option<i64> {
    let (hms, frac) = match text.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (text, None),
    };
    let mut parts = hms.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
    if parts.next().is_some() {
        return None;
    }
    let micro = match frac {
        None => 0,
        Some(digits)
            if !digits.is_empty()
                && digits.len() <= 6
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{digits:0<6}").parse().ok()?
        }
        Some(_) => return None,
    };
    PgTime::from_hms_micro(h, m, s, micro).map(|t| t.0)
}

impl fmt::Display for PgTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time(f, self.0)
    }
}

impl FromStr for PgTime {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgTime, ParseValueError> {
        parse_time(text.trim())
            .map(PgTime)
            .ok_or_else(|| invalid("time", text))
    }
}

/// Microseconds since 2000-01-01 00:00:00 of `YYYY-MM-DD[ T]HH:MM:SS[.ffffff]`.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find([' ', 'T'])?;
    let date: PgDate = text[..split].parse().ok()?;
    let time = parse_time(&text[split + 1..])?;
    i64::from(date.0)
        .checked_mul(MICROS_PER_DAY)?
        .checked_add(time)
}

fn write_timestamp(f: &mut fmt::Formatter<'_>, micros: i64) -> fmt::Result {
    match micros {
        i64::MAX => f.write_str("infinity"),
        i64::MIN => f.write_str("-infinity"),
        _ => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let (y, m, d) = civil_from_days(days + PG_EPOCH_DAYS);
            write!(f, "{y:04}-{m:02}-{d:02} ")?;
            write_time(f, micros.rem_euclid(MICROS_PER_DAY))
        }
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * MICROS_PER_DAY;

/// `timestamp` (without time zone): microseconds since 2000-01-01 00:00:00,
/// printed `YYYY-MM-DD HH:MM:SS[.ffffff]`; parses a space or `T` between date and time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgTimestamp(pub i64);

impl PgTimestamp {
    /// A date and a time of day.
    pub fn new(date: PgDate, time: PgTime) -> PgTimestamp {
        PgTimestamp(i64::from(date.0) * MICROS_PER_DAY + time.0)
    }

    /// Microseconds since 1970-01-01 00:00:00.
    pub fn from_unix_micros(micros: i64) -> PgTimestamp {
        PgTimestamp(micros.saturating_sub(PG_EPOCH_MICROS))
    }

    /// Microseconds since 1970-01-01 00:00:00.
    pub fn unix_micros(self) -> i64 {
        self.0.saturating_add(PG_EPOCH_MICROS)
    }
}

impl fmt::Display for PgTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_timestamp(f, self.0)
    }
}

impl FromStr for PgTimestamp {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgTimestamp, ParseValueError> {
        parse_timestamp(text)
            .map(PgTimestamp)
            .ok_or_else(|| invalid("timestamp", text))
    }
}

/// `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC, printed with `+00`.
/// Parses the same text as [`PgTimestamp`] (read as UTC), optionally followed by `Z` or `+00`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgTimestampTz(pub i64);

impl PgTimestampTz {
    /// Microseconds since the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> PgTimestampTz {
        PgTimestampTz(micros.saturating_sub(PG_EPOCH_MICROS))
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0.saturating_add(PG_EPOCH_MICROS)
    }

    /// The current time.
    pub fn now() -> PgTimestampTz {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        PgTimestampTz::from_unix_micros(micros)
    }
}

impl fmt::Display for PgTimestampTz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_timestamp(f, self.0)?;
        if self.0 != i64::MAX && self.0 != i64::MIN {
            f.write_str("+00")?;
        }
        Ok(())
    }
}

impl FromStr for PgTimestampTz {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgTimestampTz, ParseValueError> {
        let trimmed = text.trim();
        let bare = ["Z", "+00:00", "+00"]
            .iter()
            .find_map(|suffix| trimmed.strip_suffix(suffix))
            .unwrap_or(trimmed);
        parse_timestamp(bare)
            .map(PgTimestampTz)
            .ok_or_else(|| invalid("timestamptz", text))
    }
}

/// `uuid`: 16 bytes, printed hyphenated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgUuid(pub [u8; 16]);

impl fmt::Display for PgUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for PgUuid {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgUuid, ParseValueError> {
        let hex: Vec<u8> = text.trim().bytes().filter(|b| *b != b'-').collect();
        if hex.len() != 32 {
            return Err(invalid("uuid", text));
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid("uuid", text))?;
            out[i] = u8::from_str_radix(pair, 16).map_err(|_| invalid("uuid", text))?;
        }
        Ok(PgUuid(out))
    }
}

/// `json` / `jsonb`: the JSON text, unparsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PgJson(pub String);

impl Default for PgJson {
    fn default() -> PgJson {
        PgJson("null".to_string())
    }
}

impl fmt::Display for PgJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PgJson {
    type Err = ParseValueError;
    fn from_str(text: &str) -> Result<PgJson, ParseValueError> {
        Ok(PgJson(text.to_string()))
    }
}

/// `xml`: the document text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PgXml(pub String);

impl fmt::Display for PgXml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `interval`: months, days and microseconds, as PostgreSQL keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PgInterval {
    /// Whole months.
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

/// `inet`: an address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PgInet {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for a single host).
    pub prefix: u8,
}

impl Default for PgInet {
    fn default() -> PgInet {
        PgInet {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 32,
        }
    }
}

impl From<IpAddr> for PgInet {
    fn from(addr: IpAddr) -> PgInet {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        PgInet { addr, prefix }
    }
}

macro_rules! from_sql_fixed {
    ($type:ty, $pg:ident, $n:literal, |$bytes:ident| $make:expr) => {
        impl<'a> FromSql<'a> for $type {
            fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                let $bytes: [u8; $n] = fixed(raw, stringify!($type))?;
                Ok($make)
            }
            fn accepts(ty: &Type) -> bool {
                *ty == Type::$pg
            }
        }
    };
}

from_sql_fixed!(PgDate, DATE, 4, |b| PgDate(i32::from_be_bytes(b)));
from_sql_fixed!(PgTime, TIME, 8, |b| PgTime(i64::from_be_bytes(b)));
from_sql_fixed!(PgTimestamp, TIMESTAMP, 8, |b| PgTimestamp(
    i64::from_be_bytes(b)
));
from_sql_fixed!(PgTimestampTz, TIMESTAMPTZ, 8, |b| PgTimestampTz(
    i64::from_be_bytes(b)
));
from_sql_fixed!(PgUuid, UUID, 16, |b| PgUuid(b));
from_sql_fixed!(PgInterval, INTERVAL, 16, |b| PgInterval {
    micros: i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    days: i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    months: i32::from_be_bytes([b[12], b[13], b[14], b[15]]),
});

impl<'a> FromSql<'a> for PgJson {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("jsonb: unsupported binary version".into()),
            }
        } else {
            raw
        };
        Ok(PgJson(std::str::from_utf8(text)?.to_string()))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

impl<'a> FromSql<'a> for PgXml {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(PgXml(std::str::from_utf8(raw)?.to_string()))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::XML
    }
}

impl<'a> FromSql<'a> for PgInet {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let addr = match raw {
            [2, prefix, _, 4, rest @ ..] => (IpAddr::from(fixed::<4>(rest, "inet")?), *prefix),
            [3, prefix, _, 16, rest @ ..] => (IpAddr::from(fixed::<16>(rest, "inet")?), *prefix),
            _ => return Err("inet: unexpected binary layout".into()),
        };
        Ok(PgInet {
            addr: addr.0,
            prefix: addr.1,
        })
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_print_and_parse() {
        let date = PgDate::from_ymd(2024, 2, 29).unwrap();
        assert_eq!(date.to_string(), "2024-02-29");
        assert_eq!(PgDate::from_ymd(2000, 1, 1), Some(PgDate(0)));
        assert_eq!(PgDate::from_ymd(2023, 2, 29), None);
        assert_eq!("1999-12-31".parse::<PgDate>(), Ok(PgDate(-1)));
        let ts: PgTimestamp = "2026-05-01T12:30:00.25".parse().unwrap();
        assert_eq!(ts.to_string(), "2026-05-01 12:30:00.25");
        assert_eq!(
            PgTimestamp::from_unix_micros(0).to_string(),
            "1970-01-01 00:00:00"
        );
        let tz: PgTimestampTz = "2026-05-01 12:30:00Z".parse().unwrap();
        assert_eq!(tz.to_string(), "2026-05-01 12:30:00+00");
        assert_eq!(
            "23:59:59.000001".parse::<PgTime>().unwrap().to_string(),
            "23:59:59.000001"
        );
        assert!("24:00:00".parse::<PgTime>().is_err());
    }

    #[test]
    fn uuid_prints_hyphenated() {
        let text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert_eq!(text.parse::<PgUuid>().unwrap().to_string(), text);
        assert!("xyz".parse::<PgUuid>().is_err());
    }
}
