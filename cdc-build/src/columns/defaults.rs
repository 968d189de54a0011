//! MSSQL column defaults translated to PostgreSQL where the meaning is exact.

use crate::types::PgType;

/// Translates the MSSQL defaults that have an exact PostgreSQL meaning.
pub fn translate_default(mssql: &str, pg_type: &PgType) -> Option<String> {
    let mut text = mssql.trim();
    while let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "getdate()" | "sysdatetime()" | "current_timestamp" => {
            return matches!(
                pg_type,
                PgType::Timestamp(_) | PgType::TimestampTz(_) | PgType::Date
            )
            .then(|| "now()".to_string())
        }
        "getutcdate()" | "sysutcdatetime()" => {
            return matches!(pg_type, PgType::Timestamp(_))
                .then(|| "timezone('utc', now())".to_string())
        }
        "sysdatetimeoffset()" => {
            return matches!(pg_type, PgType::TimestampTz(_)).then(|| "now()".to_string())
        }
        "newid()" | "newsequentialid()" => {
            return matches!(pg_type, PgType::Uuid).then(|| "gen_random_uuid()".to_string())
        }
        _ => {}
    }
    let numeric = {
        let digits = lower.strip_prefix('-').unwrap_or(&lower);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().filter(|c| *c == '.').count() <= 1
            && !digits.starts_with('.')
            && !digits.ends_with('.')
    };
    if numeric {
        return match pg_type {
            PgType::Boolean => match lower.as_str() {
                "0" => Some("false".to_string()),
                "1" => Some("true".to_string()),
                _ => None,
            },
            PgType::SmallInt
            | PgType::Integer
            | PgType::BigInt
            | PgType::Numeric(_)
            | PgType::Real
            | PgType::Double => Some(lower.clone()),
            _ => None,
        };
    }
    let quoted = text.strip_prefix('N').unwrap_or(text);
    if quoted.len() >= 2 && quoted.starts_with('\'') && quoted.ends_with('\'') {
        let inner = &quoted[1..quoted.len() - 1];
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        let value = inner.replace("''", "'");
        return matches!(pg_type, PgType::Char(_) | PgType::Varchar(_) | PgType::Text)
            .then(|| crate::ident::quote_literal(&value));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(
            translate_default("((0))", &PgType::Boolean).as_deref(),
            Some("false")
        );
        assert_eq!(
            translate_default("((42))", &PgType::Integer).as_deref(),
            Some("42")
        );
        assert_eq!(
            translate_default("(-1.5)", &PgType::Numeric(None)).as_deref(),
            Some("-1.5")
        );
        assert_eq!(
            translate_default("(getdate())", &PgType::Timestamp(Some(3))).as_deref(),
            Some("now()")
        );
        assert_eq!(
            translate_default("(newid())", &PgType::Uuid).as_deref(),
            Some("gen_random_uuid()")
        );
        assert_eq!(
            translate_default("(N'it''s')", &PgType::Varchar(Some(5))).as_deref(),
            Some("'it''s'")
        );
        assert_eq!(translate_default("(dbo.fn())", &PgType::Integer), None);
        assert_eq!(translate_default("((1))", &PgType::Uuid), None);
    }
}
