//! MSSQL column types with their parameters, and the built-in MSSQL → PostgreSQL mapping with a project's overrides.

use std::collections::BTreeMap;
use std::fmt;

use super::{check_length, check_numeric, split_type, PgType, TypeArg};

/// An MSSQL column type with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssqlType {
    /// Lowercase base name (`nvarchar`, `decimal`, ...).
    pub name: String,
    /// Length in characters (`-1` is `max`).
    pub length: Option<i64>,
    /// Precision (decimal, numeric, float, time, datetime2, datetimeoffset).
    pub precision: Option<u32>,
    /// Scale (decimal, numeric).
    pub scale: Option<u32>,
}

impl fmt::Display for MssqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match (self.length, self.precision, self.scale) {
            (Some(-1), _, _) => f.write_str("(max)"),
            (Some(n), _, _) => write!(f, "({n})"),
            (None, Some(p), Some(s)) => write!(f, "({p},{s})"),
            (None, Some(p), None) => write!(f, "({p})"),
            _ => Ok(()),
        }
    }
}

/// Types whose single parameter is a length.
const LENGTH_TYPES: &[&str] = &[
    "char",
    "nchar",
    "varchar",
    "nvarchar",
    "binary",
    "varbinary",
];
/// Types whose single parameter is a precision.
const PRECISION_TYPES: &[&str] = &["float", "time", "datetime2", "datetimeoffset"];

impl MssqlType {
    /// Builds a type from the YAML `type` (possibly with inline parameters) and
    /// the separate `max_length`, `precision` and `scale` fields. Parameters given
    /// both ways must agree.
    pub fn from_parts(
        type_text: &str,
        max_length: Option<i64>,
        precision: Option<u32>,
        scale: Option<u32>,
    ) -> Result<MssqlType, String> {
        let (name, args) = split_type(type_text)?;
        let mut ty = MssqlType {
            name,
            length: None,
            precision: None,
            scale: None,
        };
        if let Some(args) = args {
            let is_length = LENGTH_TYPES.contains(&ty.name.as_str());
            match args.as_slice() {
                [TypeArg::Max] if is_length => ty.length = Some(-1),
                [TypeArg::Number(n)] if is_length => ty.length = Some(i64::from(*n)),
                [TypeArg::Number(p)] if PRECISION_TYPES.contains(&ty.name.as_str()) => {
                    ty.precision = Some(*p)
                }
                [TypeArg::Number(p)] if matches!(ty.name.as_str(), "decimal" | "numeric") => {
                    ty.precision = Some(*p);
                    ty.scale = Some(0);
                }
                [TypeArg::Number(p), TypeArg::Number(s)]
                    if matches!(ty.name.as_str(), "decimal" | "numeric") =>
                {
                    ty.precision = Some(*p);
                    ty.scale = Some(*s);
                }
                _ => {
                    return Err(format!(
                        "`{type_text}`: parameters do not fit type `{}`",
                        ty.name
                    ))
                }
            }
        }
        merge_param("max_length", &mut ty.length, max_length, type_text)?;
        merge_param("precision", &mut ty.precision, precision, type_text)?;
        merge_param("scale", &mut ty.scale, scale, type_text)?;
        if let Some(length) = ty.length {
            if length == 0 || length < -1 {
                return Err(format!(
                    "max_length {length} must be positive, or -1 for max"
                ));
            }
        }
        ty.check_source_range()?;
        Ok(ty)
    }

    /// Parameters MSSQL itself would refuse: such a column cannot exist in
    /// the source, so the YAML is wrong and the mapping would be a guess.
    fn check_source_range(&self) -> Result<(), String> {
        let name = self.name.as_str();
        let out_of_range = |what: &str, value: i64, range: &str| {
            Err(format!(
                "`{self}`: {what} {value} is out of MSSQL's range for {name} ({range})"
            ))
        };
        match name {
            "decimal" | "numeric" => {
                if let Some(p) = self.precision.filter(|p| !(1..=38).contains(p)) {
                    return out_of_range("precision", p.into(), "1 to 38");
                }
                // A scale above the precision is refused when mapped (`check_numeric`).
            }
            "float" => {
                if let Some(n) = self.precision.filter(|n| !(1..=53).contains(n)) {
                    return out_of_range("precision", n.into(), "1 to 53");
                }
            }
            "time" | "datetime2" | "datetimeoffset" => {
                if let Some(p) = self.precision.filter(|p| *p > 7) {
                    return out_of_range("fractional-seconds precision", p.into(), "0 to 7");
                }
            }
            "char" | "varchar" | "binary" | "varbinary" | "nchar" | "nvarchar" => {
                let limit = if name.starts_with('n') { 4000 } else { 8000 };
                if let Some(n) = self.length.filter(|n| *n > limit) {
                    return out_of_range("length", n, &format!("1 to {limit}, or max"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn merge_param<T: PartialEq + Copy + fmt::Display>(
    field: &str,
    inline: &mut Option<T>,
    separate: Option<T>,
    type_text: &str,
) -> Result<(), String> {
    match (*inline, separate) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "`{field}: {b}` contradicts the parameters written in `type: {type_text}`"
        )),
        (None, Some(b)) => {
            *inline = Some(b);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The result of mapping one column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The PostgreSQL type.
    pub pg: PgType,
    /// Whether the source type was unknown and fell back to `text`.
    pub fallback: bool,
}

/// The built-in MSSQL → PostgreSQL mapping plus a project's overrides.
#[derive(Debug, Clone, Default)]
pub struct TypeMapping {
    overrides: BTreeMap<String, PgType>,
}

impl TypeMapping {
    /// A mapping with overrides keyed by lowercase MSSQL base type name.
    pub fn with_overrides(overrides: BTreeMap<String, PgType>) -> TypeMapping {
        TypeMapping { overrides }
    }

    /// Maps one MSSQL type; an error means the parameters are out of range.
    pub fn map(&self, ty: &MssqlType) -> Result<Mapped, String> {
        if let Some(pg) = self.overrides.get(&ty.name) {
            return Ok(Mapped {
                pg: pg.clone(),
                fallback: false,
            });
        }
        let known = |pg| {
            Ok(Mapped {
                pg,
                fallback: false,
            })
        };
        let capped = |p: Option<u32>| -> Option<u8> { Some(p.unwrap_or(7).min(6) as u8) };
        match ty.name.as_str() {
            "bit" => known(PgType::Boolean),
            "tinyint" | "smallint" => known(PgType::SmallInt),
            "int" | "integer" => known(PgType::Integer),
            "bigint" => known(PgType::BigInt),
            "decimal" | "numeric" => match (ty.precision, ty.scale) {
                (Some(p), s) => known(PgType::Numeric(Some(check_numeric(p, s.unwrap_or(0))?))),
                (None, None) => known(PgType::Numeric(None)),
                (None, Some(_)) => Err("a scale without a precision".to_string()),
            },
            "money" => known(PgType::Numeric(Some((19, 4)))),
            "smallmoney" => known(PgType::Numeric(Some((10, 4)))),
            "real" => known(PgType::Real),
            "float" => match ty.precision {
                Some(n) if n <= 24 => known(PgType::Real),
                _ => known(PgType::Double),
            },
            "char" | "nchar" => match ty.length {
                Some(-1) | None => known(PgType::Char(None)),
                Some(n) => known(PgType::Char(Some(check_length(length_u32(n)?)?))),
            },
            "varchar" | "nvarchar" => match ty.length {
                Some(-1) => known(PgType::Text),
                None => known(PgType::Varchar(None)),
                Some(n) => known(PgType::Varchar(Some(check_length(length_u32(n)?)?))),
            },
            "text" | "ntext" => known(PgType::Text),
            "xml" => known(PgType::Xml),
            "sysname" => known(PgType::Varchar(Some(128))),
            "date" => known(PgType::Date),
            "time" => known(PgType::Time(capped(ty.precision))),
            "datetime" => known(PgType::Timestamp(Some(3))),
            "smalldatetime" => known(PgType::Timestamp(Some(0))),
            "datetime2" => known(PgType::Timestamp(capped(ty.precision))),
            "datetimeoffset" => known(PgType::TimestampTz(capped(ty.precision))),
            "uniqueidentifier" => known(PgType::Uuid),
            "binary" | "varbinary" | "image" | "timestamp" | "rowversion" => known(PgType::Bytea),
            "hierarchyid" | "geography" | "geometry" | "sql_variant" => known(PgType::Text),
            "json" => known(PgType::Jsonb),
            _ => Ok(Mapped {
                pg: PgType::Text,
                fallback: true,
            }),
        }
    }
}

fn length_u32(n: i64) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("length {n} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> String {
        let ty = MssqlType::from_parts(text, None, None, None).unwrap();
        TypeMapping::default().map(&ty).unwrap().pg.sql()
    }

    #[test]
    fn design_table() {
        let cases = [
            ("bit", "boolean"),
            ("tinyint", "smallint"),
            ("smallint", "smallint"),
            ("int", "integer"),
            ("bigint", "bigint"),
            ("decimal(18,2)", "numeric(18,2)"),
            ("numeric(10, 4)", "numeric(10,4)"),
            ("decimal", "numeric"),
            ("money", "numeric(19,4)"),
            ("smallmoney", "numeric(10,4)"),
            ("float(24)", "real"),
            ("real", "real"),
            ("float", "double precision"),
            ("float(53)", "double precision"),
            ("char(10)", "char(10)"),
            ("nchar(3)", "char(3)"),
            ("char", "bpchar"),
            ("varchar(50)", "varchar(50)"),
            ("nvarchar(max)", "text"),
            ("NVARCHAR", "varchar"),
            ("text", "text"),
            ("ntext", "text"),
            ("xml", "xml"),
            ("sysname", "varchar(128)"),
            ("date", "date"),
            ("time(7)", "time(6)"),
            ("time(3)", "time(3)"),
            ("time", "time(6)"),
            ("datetime", "timestamp(3)"),
            ("smalldatetime", "timestamp(0)"),
            ("datetime2(7)", "timestamp(6)"),
            ("datetime2(2)", "timestamp(2)"),
            ("datetimeoffset(7)", "timestamptz(6)"),
            ("uniqueidentifier", "uuid"),
            ("binary(16)", "bytea"),
            ("varbinary(max)", "bytea"),
            ("image", "bytea"),
            ("timestamp", "bytea"),
            ("rowversion", "bytea"),
            ("hierarchyid", "text"),
            ("geography", "text"),
            ("geometry", "text"),
            ("sql_variant", "text"),
            ("json", "jsonb"),
        ];
        for (mssql, pg) in cases {
            assert_eq!(map(mssql), pg, "{mssql}");
        }
    }

    #[test]
    fn separate_parameters_and_conflicts() {
        let ty = MssqlType::from_parts("nvarchar", Some(-1), None, None).unwrap();
        assert_eq!(TypeMapping::default().map(&ty).unwrap().pg, PgType::Text);
        let ty = MssqlType::from_parts("decimal", None, Some(18), Some(2)).unwrap();
        assert_eq!(
            TypeMapping::default().map(&ty).unwrap().pg.sql(),
            "numeric(18,2)"
        );
        assert!(MssqlType::from_parts("nvarchar(50)", Some(60), None, None).is_err());
        assert!(MssqlType::from_parts("nvarchar(50)", Some(50), None, None).is_ok());
        assert!(MssqlType::from_parts("int(4", None, None, None).is_err());
        assert!(MssqlType::from_parts("decimal(a,b)", None, None, None).is_err());
    }

    #[test]
    fn unknown_falls_back_to_text() {
        let ty = MssqlType::from_parts("cursor", None, None, None).unwrap();
        let mapped = TypeMapping::default().map(&ty).unwrap();
        assert!(mapped.fallback);
        assert_eq!(mapped.pg, PgType::Text);
    }

    #[test]
    fn overrides_win() {
        let mapping = TypeMapping::with_overrides(
            [("money".to_string(), PgType::Numeric(Some((19, 2))))].into(),
        );
        let ty = MssqlType::from_parts("money", None, None, None).unwrap();
        assert_eq!(mapping.map(&ty).unwrap().pg.sql(), "numeric(19,2)");
    }
}
