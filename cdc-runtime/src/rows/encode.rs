//! Encoding typed values into PostgreSQL's binary COPY format, one row at a time.

use postgres::types::Type;

use super::{
    numeric, CopyError, PgDate, PgInet, PgInterval, PgJson, PgNumeric, PgTime, PgTimestamp,
    PgTimestampTz, PgUuid, PgXml,
};

/// One row of a binary COPY stream being encoded.
#[derive(Debug)]
pub struct CopyRow<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) fields: usize,
}

impl CopyRow<'_> {
    /// Appends one field: its length and its binary value, or -1 for NULL.
    pub fn field(
        &mut self,
        column: &'static str,
        ty: &Type,
        value: &dyn CopyValue,
    ) -> Result<(), CopyError> {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        let written = value
            .write_binary(ty, self.out)
            .map_err(|message| CopyError::Value { column, message })?;
        let length = match written {
            Some(()) => {
                i32::try_from(self.out.len() - start - 4).map_err(|_| CopyError::Value {
                    column,
                    message: "value larger than 2 GiB".to_string(),
                })?
            }
            None => {
                self.out.truncate(start + 4);
                -1
            }
        };
        self.out[start..start + 4].copy_from_slice(&length.to_be_bytes());
        self.fields += 1;
        Ok(())
    }
}

/// A value that can be written into a binary COPY stream.
pub trait CopyValue {
    /// Appends the binary representation for a column of type `ty`; `None` for NULL.
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String>;
}

fn expect(ty: &Type, accepted: &[Type], rust: &str) -> Result<(), String> {
    if accepted.contains(ty) {
        Ok(())
    } else {
        Err(format!("a {rust} cannot be written into a {ty} column"))
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        match self {
            Some(value) => value.write_binary(ty, out),
            None => Ok(None),
        }
    }
}

impl<T: CopyValue + ?Sized> CopyValue for &T {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        (**self).write_binary(ty, out)
    }
}

macro_rules! copy_be_bytes {
    ($($rust:ty => $pg:ident),* $(,)?) => {$(
        impl CopyValue for $rust {
            fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
                expect(ty, &[Type::$pg], stringify!($rust))?;
                out.extend_from_slice(&self.to_be_bytes());
                Ok(Some(()))
            }
        }
    )*};
}

copy_be_bytes!(i16 => INT2, i32 => INT4, i64 => INT8, f32 => FLOAT4, f64 => FLOAT8);

impl CopyValue for bool {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::BOOL], "bool")?;
        out.push(u8::from(*self));
        Ok(Some(()))
    }
}

const TEXT_TYPES: [Type; 5] = [
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::XML,
];

impl CopyValue for str {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &TEXT_TYPES, "string")?;
        out.extend_from_slice(self.as_bytes());
        Ok(Some(()))
    }
}

impl CopyValue for String {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        self.as_str().write_binary(ty, out)
    }
}

impl CopyValue for Vec<u8> {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::BYTEA], "Vec<u8>")?;
        out.extend_from_slice(self);
        Ok(Some(()))
    }
}

macro_rules! copy_newtype {
    ($($rust:ty => $pg:ident: |$value:ident, $out:ident| $body:expr),* $(,)?) => {$(
        impl CopyValue for $rust {
            fn write_binary(&self, ty: &Type, $out: &mut Vec<u8>) -> Result<Option<()>, String> {
                expect(ty, &[Type::$pg], stringify!($rust))?;
                let $value = self;
                $body;
                Ok(Some(()))
            }
        }
    )*};
}

copy_newtype!(
    PgDate => DATE: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTime => TIME: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTimestamp => TIMESTAMP: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgTimestampTz => TIMESTAMPTZ: |v, out| out.extend_from_slice(&v.0.to_be_bytes()),
    PgUuid => UUID: |v, out| out.extend_from_slice(&v.0),
    PgNumeric => NUMERIC: |v, out| numeric::encode_numeric(v.as_str(), out).map_err(|e| e.to_string())?,
    PgXml => XML: |v, out| out.extend_from_slice(v.0.as_bytes()),
    PgInterval => INTERVAL: |v, out| {
        out.extend_from_slice(&v.micros.to_be_bytes());
        out.extend_from_slice(&v.days.to_be_bytes());
        out.extend_from_slice(&v.months.to_be_bytes());
    },
);

impl CopyValue for PgInet {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::INET], "PgInet")?;
        match self.addr {
            std::net::IpAddr::V4(addr) => {
                out.extend_from_slice(&[2, self.prefix, 0, 4]);
                out.extend_from_slice(&addr.octets());
            }
            std::net::IpAddr::V6(addr) => {
                out.extend_from_slice(&[3, self.prefix, 0, 16]);
                out.extend_from_slice(&addr.octets());
            }
        }
        Ok(Some(()))
    }
}

/// Writes JSON text as `json` (text) or `jsonb` (version 1, then text).
fn write_json(text: &str, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
    expect(ty, &[Type::JSON, Type::JSONB], "JSON value")?;
    if *ty == Type::JSONB {
        out.push(1);
    }
    out.extend_from_slice(text.as_bytes());
    Ok(Some(()))
}

impl CopyValue for PgJson {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        write_json(&self.0, ty, out)
    }
}

#[cfg(feature = "json")]
impl CopyValue for serde_json::Value {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        write_json(&self.to_string(), ty, out)
    }
}

#[cfg(feature = "uuid")]
impl CopyValue for uuid::Uuid {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        PgUuid(*self.as_bytes()).write_binary(ty, out)
    }
}

#[cfg(feature = "decimal")]
impl CopyValue for rust_decimal::Decimal {
    fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
        expect(ty, &[Type::NUMERIC], "Decimal")?;
        numeric::encode_numeric(&self.to_string(), out).map_err(|e| e.to_string())?;
        Ok(Some(()))
    }
}

#[cfg(feature = "chrono")]
mod chrono_values {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
    use postgres::types::Type;

    use super::{CopyValue, PgDate, PgTime, PgTimestamp, PgTimestampTz};

    fn pg_epoch() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2000, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
    }

    fn micros_since_epoch(value: NaiveDateTime) -> Result<i64, String> {
        (value - pg_epoch())
            .num_microseconds()
            .ok_or_else(|| format!("{value} is out of PostgreSQL's range"))
    }

    impl CopyValue for NaiveDate {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            let days = (*self - pg_epoch().date()).num_days();
            let days = i32::try_from(days).map_err(|_| format!("{self} is out of range"))?;
            PgDate(days).write_binary(ty, out)
        }
    }

    impl CopyValue for NaiveTime {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            let micros = i64::from(self.num_seconds_from_midnight()) * 1_000_000
                + i64::from(self.nanosecond() / 1_000);
            PgTime(micros).write_binary(ty, out)
        }
    }

    impl CopyValue for NaiveDateTime {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            PgTimestamp(micros_since_epoch(*self)?).write_binary(ty, out)
        }
    }

    impl CopyValue for DateTime<Utc> {
        fn write_binary(&self, ty: &Type, out: &mut Vec<u8>) -> Result<Option<()>, String> {
            PgTimestampTz(micros_since_epoch(self.naive_utc())?).write_binary(ty, out)
        }
    }
}
