//! MSSQL source types, PostgreSQL target types and the mapping between them.
//!
//! The mapping follows DESIGN.md §4 and never drops parameters:
//! `decimal(18,2)` becomes `numeric(18,2)`, `nvarchar(max)` becomes `text`.
//! This module holds the PostgreSQL side; `mssql` the source side and the mapping.

mod mssql;

use std::fmt;

pub use self::mssql::{Mapped, MssqlType, TypeMapping};

/// A PostgreSQL column type as the generator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PgType {
    /// `boolean`
    Boolean,
    /// `smallint`
    SmallInt,
    /// `integer`
    Integer,
    /// `bigint`
    BigInt,
    /// `numeric(p,s)`, or bare `numeric`
    Numeric(Option<(u32, u32)>),
    /// `real`
    Real,
    /// `double precision`
    Double,
    /// `char(n)`, or `bpchar` (blank-padded, unbounded) without a length
    Char(Option<u32>),
    /// `varchar(n)`, or bare `varchar`
    Varchar(Option<u32>),
    /// `text`
    Text,
    /// `xml`
    Xml,
    /// `date`
    Date,
    /// `time(p)`
    Time(Option<u8>),
    /// `timestamp(p)`
    Timestamp(Option<u8>),
    /// `timestamptz(p)`
    TimestampTz(Option<u8>),
    /// `interval`
    Interval,
    /// `uuid`
    Uuid,
    /// `bytea`
    Bytea,
    /// `json`
    Json,
    /// `jsonb`
    Jsonb,
    /// `inet`
    Inet,
}

impl PgType {
    /// The type as written in generated DDL.
    pub fn sql(&self) -> String {
        let mut out = String::with_capacity(24);
        self.push_sql(&mut out);
        out
    }

    /// Appends [`PgType::sql`] to `out` without allocating.
    pub fn push_sql(&self, out: &mut String) {
        let (name, params) = match self {
            PgType::Boolean => ("boolean", Params::None),
            PgType::SmallInt => ("smallint", Params::None),
            PgType::Integer => ("integer", Params::None),
            PgType::BigInt => ("bigint", Params::None),
            PgType::Numeric(Some((p, s))) => ("numeric", Params::Two(*p, *s)),
            PgType::Numeric(None) => ("numeric", Params::None),
            PgType::Real => ("real", Params::None),
            PgType::Double => ("double precision", Params::None),
            PgType::Char(Some(n)) => ("char", Params::One(*n)),
            PgType::Char(None) => ("bpchar", Params::None),
            PgType::Varchar(n) => ("varchar", Params::of(*n)),
            PgType::Text => ("text", Params::None),
            PgType::Xml => ("xml", Params::None),
            PgType::Date => ("date", Params::None),
            PgType::Time(p) => ("time", Params::of(p.map(u32::from))),
            PgType::Timestamp(p) => ("timestamp", Params::of(p.map(u32::from))),
            PgType::TimestampTz(p) => ("timestamptz", Params::of(p.map(u32::from))),
            PgType::Interval => ("interval", Params::None),
            PgType::Uuid => ("uuid", Params::None),
            PgType::Bytea => ("bytea", Params::None),
            PgType::Json => ("json", Params::None),
            PgType::Jsonb => ("jsonb", Params::None),
            PgType::Inet => ("inet", Params::None),
        };
        out.push_str(name);
        params.push(out);
    }

    /// The type as PostgreSQL's `format_type()` prints it, used to compare a
    /// live table with the YAML.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(32);
        self.push_canonical(&mut out);
        out
    }

    /// Appends [`PgType::canonical`] to `out` without allocating.
    pub fn push_canonical(&self, out: &mut String) {
        let (name, params, suffix) = match self {
            PgType::Char(Some(n)) => ("character", Params::One(*n), ""),
            PgType::Varchar(n) => ("character varying", Params::of(*n), ""),
            PgType::Time(p) => ("time", Params::of(p.map(u32::from)), " without time zone"),
            PgType::Timestamp(p) => (
                "timestamp",
                Params::of(p.map(u32::from)),
                " without time zone",
            ),
            PgType::TimestampTz(p) => {
                ("timestamp", Params::of(p.map(u32::from)), " with time zone")
            }
            other => return other.push_sql(out),
        };
        out.push_str(name);
        params.push(out);
        out.push_str(suffix);
    }

    /// Parses a PostgreSQL type name as written in column templates and mapping overrides.
    pub fn parse(text: &str) -> Result<PgType, String> {
        let (name, args) = split_type(text)?;
        let args = args.as_deref();
        let one = |args: Option<&[TypeArg]>| -> Result<Option<u32>, String> {
            match args {
                None => Ok(None),
                Some([TypeArg::Number(n)]) => Ok(Some(*n)),
                Some(_) => Err(format!("`{text}`: expected one numeric parameter")),
            }
        };
        let precision = |args: Option<&[TypeArg]>| -> Result<Option<u8>, String> {
            match one(args)? {
                None => Ok(None),
                Some(p) if p <= 6 => Ok(Some(p as u8)),
                Some(p) => Err(format!(
                    "`{text}`: precision {p} is above PostgreSQL's maximum of 6"
                )),
            }
        };
        Ok(match name.as_str() {
            "boolean" | "bool" => PgType::Boolean,
            "smallint" | "int2" => PgType::SmallInt,
            "integer" | "int" | "int4" => PgType::Integer,
            "bigint" | "int8" => PgType::BigInt,
            "numeric" | "decimal" => match args {
                None => PgType::Numeric(None),
                Some([TypeArg::Number(p)]) => PgType::Numeric(Some(check_numeric(*p, 0)?)),
                Some([TypeArg::Number(p), TypeArg::Number(s)]) => PgType::Numeric(Some(check_numeric(*p, *s)?)),
                Some(_) => return Err(format!("`{text}`: expected numeric(precision, scale)")),
            },
            "real" | "float4" => PgType::Real,
            "double precision" | "float8" => PgType::Double,
            "char" | "character" => PgType::Char(Some(check_length(one(args)?.unwrap_or(1))?)),
            "bpchar" => PgType::Char(one(args)?.map(check_length).transpose()?),
            "varchar" | "character varying" => PgType::Varchar(one(args)?.map(check_length).transpose()?),
            "text" => PgType::Text,
            "xml" => PgType::Xml,
            "date" => PgType::Date,
            "time" | "time without time zone" => PgType::Time(precision(args)?),
            "timestamp" | "timestamp without time zone" => PgType::Timestamp(precision(args)?),
            "timestamptz" | "timestamp with time zone" => PgType::TimestampTz(precision(args)?),
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "bytea" => PgType::Bytea,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            "inet" => PgType::Inet,
            _ => {
                return Err(format!(
                    "unknown PostgreSQL type `{text}` (known: boolean, smallint, integer, bigint, numeric, real, double precision, char, bpchar, varchar, text, xml, date, time, timestamp, timestamptz, interval, uuid, bytea, json, jsonb, inet)"
                ))
            }
        })
    }
}

impl fmt::Display for PgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// The parameters of a type name: none, `(n)` or `(p,s)`.
#[derive(Clone, Copy)]
enum Params {
    None,
    One(u32),
    Two(u32, u32),
}

impl Params {
    fn of(n: Option<u32>) -> Params {
        n.map_or(Params::None, Params::One)
    }

    fn push(self, out: &mut String) {
        match self {
            Params::None => {}
            Params::One(n) => {
                out.push('(');
                push_u32(out, n);
                out.push(')');
            }
            Params::Two(p, s) => {
                out.push('(');
                push_u32(out, p);
                out.push(',');
                push_u32(out, s);
                out.push(')');
            }
        }
    }
}

/// Appends a number in decimal, without the formatting machinery.
fn push_u32(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

pub(crate) fn check_numeric(precision: u32, scale: u32) -> Result<(u32, u32), String> {
    if !(1..=1000).contains(&precision) {
        return Err(format!(
            "numeric precision {precision} must be between 1 and 1000"
        ));
    }
    if scale > precision {
        return Err(format!(
            "numeric scale {scale} must not exceed precision {precision}"
        ));
    }
    Ok((precision, scale))
}

/// PostgreSQL's limit on `char(n)` / `varchar(n)`.
const MAX_PG_LENGTH: u32 = 10_485_760;

pub(crate) fn check_length(length: u32) -> Result<u32, String> {
    if length == 0 || length > MAX_PG_LENGTH {
        return Err(format!(
            "length {length} must be between 1 and {MAX_PG_LENGTH}"
        ));
    }
    Ok(length)
}

/// A type parameter: a number or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeArg {
    /// A number.
    Number(u32),
    /// `max`
    Max,
}

/// Splits `name(arg, arg)` into a lowercase, space-normalised name and its arguments.
pub fn split_type(text: &str) -> Result<(String, Option<Vec<TypeArg>>), String> {
    let text = text.trim();
    let (name, args) = match text.find('(') {
        None => (text, None),
        Some(open) => {
            let close = text
                .rfind(')')
                .filter(|close| *close > open && text[close + 1..].trim().is_empty())
                .ok_or_else(|| format!("`{text}`: unbalanced parentheses"))?;
            let args = text[open + 1..close]
                .split(',')
                .map(|arg| {
                    let arg = arg.trim();
                    if arg.eq_ignore_ascii_case("max") {
                        Ok(TypeArg::Max)
                    } else {
                        arg.parse::<u32>().map(TypeArg::Number).map_err(|_| {
                            format!(
                                "`{text}`: parameter `{arg}` is not a non-negative integer or max"
                            )
                        })
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            (&text[..open], Some(args))
        }
    };
    let name = if name.contains(char::is_whitespace) {
        name.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase()
    } else {
        name.to_ascii_lowercase()
    };
    if name.is_empty() {
        return Err("empty type name".to_string());
    }
    Ok((name, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_matches_format_type() {
        assert_eq!(
            PgType::Varchar(Some(50)).canonical(),
            "character varying(50)"
        );
        assert_eq!(
            PgType::Timestamp(Some(3)).canonical(),
            "timestamp(3) without time zone"
        );
        assert_eq!(
            PgType::TimestampTz(None).canonical(),
            "timestamp with time zone"
        );
        assert_eq!(PgType::Char(None).canonical(), "bpchar");
        assert_eq!(PgType::Char(Some(7)).canonical(), "character(7)");
        assert_eq!(
            PgType::Time(Some(0)).canonical(),
            "time(0) without time zone"
        );
        assert_eq!(PgType::Double.canonical(), "double precision");
        assert_eq!(PgType::Numeric(Some((1000, 10))).sql(), "numeric(1000,10)");
        assert_eq!(PgType::Varchar(Some(10_485_760)).sql(), "varchar(10485760)");
        assert_eq!(PgType::TimestampTz(Some(6)).sql(), "timestamptz(6)");
        assert_eq!(PgType::Char(None).to_string(), "bpchar");
        assert_eq!(
            PgType::parse("timestamp with time zone").unwrap(),
            PgType::TimestampTz(None)
        );
        assert_eq!(
            PgType::parse("NUMERIC(19, 4)").unwrap(),
            PgType::Numeric(Some((19, 4)))
        );
        assert!(PgType::parse("frobnicate").is_err());
    }
}
