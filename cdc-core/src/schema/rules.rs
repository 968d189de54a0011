//! The rules of schema change: each change's severity and apply action, and which type changes apply widens on its own.
//!
//! [`is_safe_type_change`] is the Rust twin of `is_safe_type_change` in
//! cdc-build's `render/management.sql`, which `converge_table` runs at apply
//! time: the two must agree, and the tests here pin the same cases. Types are
//! compared in PostgreSQL's canonical form (`format_type()`).

/// How much a change matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum Severity {
    /// Nothing can be lost.
    Info,
    /// Applied on its own, but worth a look (a widening, a table left behind).
    Warning,
    /// Could lose or alter data: apply refuses it, or refuses it over existing data.
    Breaking,
}

impl Severity {
    /// The lowercase label.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Breaking => "breaking",
        }
    }
}

/// What apply (`converge_table`) does with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum ApplyAction {
    /// Applied with no manual step.
    Automatic,
    /// Applied when the table holds no data in the way (no rows, no NULLs); refused otherwise.
    AutomaticUnlessData,
    /// Refused: nothing is changed and the manual steps are listed.
    Refused,
    /// Left as it is in the database: apply does not act on it.
    NotApplied,
}

impl ApplyAction {
    /// The label used in text output.
    pub fn label(self) -> &'static str {
        match self {
            ApplyAction::Automatic => "automatic",
            ApplyAction::AutomaticUnlessData => "automatic unless data is in the way",
            ApplyAction::Refused => "refused",
            ApplyAction::NotApplied => "not applied",
        }
    }
}

/// The base name and numeric parameters of a canonical type:
/// `timestamp(3) with time zone` → (`timestamp with time zone`, `[3]`).
fn base_and_args(canonical: &str) -> (String, Option<Vec<i64>>) {
    match (canonical.find('('), canonical.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            let base = format!("{}{}", &canonical[..open], &canonical[close + 1..]);
            let args = canonical[open + 1..close]
                .split(',')
                .map(|a| a.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .ok();
            (base, args)
        }
        _ => (canonical.to_string(), None),
    }
}

/// Whether apply changes a column from one canonical type to the other on its
/// own because no value can change (the rule of `is_safe_type_change` in
/// cdc-build's `render/management.sql`).
pub fn is_safe_type_change(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    let (f_base, f_args) = base_and_args(from);
    let (t_base, t_args) = base_and_args(to);
    let arg = |args: &Option<Vec<i64>>, i: usize| args.as_ref().and_then(|a| a.get(i).copied());
    let ints = ["smallint", "integer", "bigint"];
    let rank = |base: &str| ints.iter().position(|i| *i == base);
    let digits = |args: &Option<Vec<i64>>| arg(args, 0).map(|p| p - arg(args, 1).unwrap_or(0));
    match (f_base.as_str(), t_base.as_str()) {
        (f, t) if rank(f).is_some() && rank(t).is_some() => rank(t) >= rank(f),
        (f, "numeric") if rank(f).is_some() => {
            let needed = match f {
                "smallint" => 5,
                "integer" => 10,
                _ => 19,
            };
            t_args.is_none() || digits(&t_args).is_some_and(|d| d >= needed)
        }
        ("real", "double precision") => true,
        ("numeric", "numeric") => {
            t_args.is_none()
                || (f_args.is_some()
                    && digits(&t_args) >= digits(&f_args)
                    && arg(&t_args, 1).unwrap_or(0) >= arg(&f_args, 1).unwrap_or(0))
        }
        ("character varying", "text") => true,
        ("character varying", "character varying") => {
            t_args.is_none() || (f_args.is_some() && arg(&t_args, 0) >= arg(&f_args, 0))
        }
        ("character", "bpchar") => true,
        ("character", "character") => arg(&t_args, 0) >= arg(&f_args, 0),
        (f, t)
            if f == t
                && [
                    "time without time zone",
                    "timestamp without time zone",
                    "timestamp with time zone",
                    "time with time zone",
                ]
                .contains(&f) =>
        {
            arg(&t_args, 0).unwrap_or(6) >= arg(&f_args, 0).unwrap_or(6)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widenings_are_safe() {
        for (from, to) in [
            ("character varying(50)", "character varying(100)"),
            ("character varying(50)", "character varying"),
            ("character varying(50)", "text"),
            ("smallint", "integer"),
            ("integer", "bigint"),
            ("integer", "numeric(10,0)"),
            ("bigint", "numeric"),
            ("numeric(10,2)", "numeric(12,2)"),
            ("numeric(10,2)", "numeric(12,4)"),
            ("numeric(10,2)", "numeric"),
            ("real", "double precision"),
            ("character(3)", "character(5)"),
            ("character(3)", "bpchar"),
            (
                "timestamp(3) without time zone",
                "timestamp(6) without time zone",
            ),
            ("timestamp(3) with time zone", "timestamp with time zone"),
            ("time(0) without time zone", "time(3) without time zone"),
            ("uuid", "uuid"),
        ] {
            assert!(is_safe_type_change(from, to), "{from} -> {to}");
        }
    }

    #[test]
    fn narrowings_and_incompatible_changes_are_not() {
        for (from, to) in [
            ("character varying(100)", "character varying(50)"),
            ("character varying", "character varying(50)"),
            ("text", "character varying(50)"),
            ("bigint", "integer"),
            ("integer", "smallint"),
            ("integer", "numeric(9,0)"),
            ("bigint", "numeric(20,2)"),
            ("numeric(12,2)", "numeric(10,2)"),
            ("numeric(12,4)", "numeric(12,2)"),
            ("numeric", "numeric(12,2)"),
            ("double precision", "real"),
            (
                "timestamp(6) without time zone",
                "timestamp(3) without time zone",
            ),
            ("timestamp without time zone", "timestamp with time zone"),
            ("integer", "text"),
            ("text", "uuid"),
            ("character(5)", "character(3)"),
        ] {
            assert!(!is_safe_type_change(from, to), "{from} -> {to}");
        }
    }
}
