//! `distribution:` of a sink and of its tables (DESIGN.md §12): parsed, resolved per table (a table's own setting wins over its sink's) and checked against what Citus requires.
//!
//! Forms: `distribution: {by: <column>}` shards the table by a column of its primary key,
//! `distribution: reference` replicates it to every node, `distribution: local` keeps it an
//! ordinary table on the coordinator (the default; useful to exempt one table from its sink's
//! `by`). Every problem is an input error at the line of the `distribution` field (or of the
//! table entry, when the table inherits its sink's setting).

use std::collections::BTreeMap;

use serde_norway::Value;

use super::findings::Finding;
use super::services::SinkScope;
use super::Loader;
use crate::location::YamlPath;
use crate::model::RawSinkTable;
use crate::project::{Distribution, SinkTable};

/// The key of the `{by: <column>}` form.
const BY: &str = "by";

/// What the forms look like, for error messages.
const FORMS: &str = "expected `{by: <column>}`, `reference` or `local`";

/// The `distribution` each table entry declares itself, by entry key.
pub(super) fn declared_per_table(
    entries: &BTreeMap<String, RawSinkTable>,
) -> BTreeMap<String, Value> {
    entries
        .iter()
        .filter_map(|(key, entry)| Some((key.clone(), entry.distribution.clone()?)))
        .collect()
}

/// Parses one `distribution` value.
fn parse(value: &Value) -> Result<Distribution, String> {
    match value {
        Value::String(word) if word == "reference" => Ok(Distribution::Reference),
        Value::String(word) if word == "local" => Ok(Distribution::Local),
        Value::String(word) => Err(format!("unknown distribution `{word}`: {FORMS}")),
        Value::Mapping(map) => {
            let mut column = None;
            for (key, value) in map {
                match (key.as_str(), value) {
                    (Some(BY), Value::String(name)) if !name.is_empty() => column = Some(name),
                    (Some(BY), _) => {
                        return Err(format!(
                            "`distribution.by` names one column, as a non-empty string: {FORMS}"
                        ))
                    }
                    (Some(other), _) => {
                        return Err(format!("unknown distribution field `{other}`: {FORMS}"))
                    }
                    (None, _) => return Err(format!("unknown distribution form: {FORMS}")),
                }
            }
            column
                .map(|c| Distribution::By(c.clone()))
                .ok_or_else(|| format!("`distribution` needs `by`: {FORMS}"))
        }
        _ => Err(format!("unknown distribution form: {FORMS}")),
    }
}

impl Loader {
    /// Gives every table its distribution (its own, else its sink's, else local) and records
    /// each problem: an unknown form, a table without a primary key distributed by a column, a
    /// distribution column the table lacks or keeps out of its primary key.
    pub(super) fn resolve_distribution(
        &mut self,
        sink: &SinkScope<'_>,
        sink_value: Option<&Value>,
        declared: &BTreeMap<String, Value>,
        tables: &mut [SinkTable],
    ) {
        let file = &sink.service.file;
        let sink_field = sink.path.clone().key("distribution");
        let sink_distribution = match sink_value.map(parse) {
            None => Distribution::Local,
            Some(Ok(distribution)) => distribution,
            Some(Err(message)) => {
                self.error(Finding::at(file, sink_field, message));
                return;
            }
        };
        for table in tables.iter_mut() {
            let key = format!("{}.{}", table.target_schema, table.target_table);
            let entry = sink.table_path(&key);
            let (distribution, site) = match declared.get(&key).map(parse) {
                None => (sink_distribution.clone(), Site::Sink(entry)),
                Some(Ok(distribution)) => (distribution, Site::Table(entry.key("distribution"))),
                Some(Err(message)) => {
                    self.error(Finding::at(file, entry.key("distribution"), message));
                    continue;
                }
            };
            if let Distribution::By(column) = &distribution {
                if let Err(message) = check_by(table, &key, column, &site) {
                    self.error(site.finding(file, message));
                    continue;
                }
            }
            table.distribution = distribution;
        }
    }
}

/// Where a table's distribution comes from.
enum Site {
    /// Its sink's `distribution` (the finding is at the table entry, where the fix goes).
    Sink(YamlPath),
    /// Its own `distribution` field.
    Table(YamlPath),
}

impl Site {
    /// A finding at the site; for an inherited setting, the field shown is the one to add.
    fn finding(&self, file: &std::path::Path, message: String) -> Finding {
        match self {
            Site::Sink(entry) => Finding::at(file, entry.clone(), message)
                .field(entry.clone().key("distribution").to_string()),
            Site::Table(field) => Finding::at(file, field.clone(), message),
        }
    }

    /// How the message names the setting.
    fn origin(&self) -> &'static str {
        match self {
            Site::Sink(_) => "the sink's ",
            Site::Table(_) => "",
        }
    }
}

/// What Citus requires of a table distributed by `column`: a primary key that includes it.
fn check_by(table: &SinkTable, key: &str, column: &str, site: &Site) -> Result<(), String> {
    let setting = format!("{}`distribution: {{by: {column}}}`", site.origin());
    let exempt = "declare `distribution: reference` or `distribution: local` for the table";
    if table.primary_key.is_empty() {
        return Err(format!(
            "sink table `{key}` has no primary key, so {setting} cannot apply (Citus needs the distribution column in the key); {exempt}"
        ));
    }
    if !table.columns.iter().any(|c| c.name == column) {
        return Err(format!(
            "sink table `{key}` has no column `{column}` for {setting}: every distributed table of a sink has the distribution column (add it, e.g. with its column template), or {exempt}"
        ));
    }
    if !table.primary_key.iter().any(|k| k == column) {
        return Err(format!(
            "distribution column `{column}` of sink table `{key}` is not in its primary key ({}): Citus needs it in every unique key (make it a key column, e.g. a column template with `primary_key: true`), or {exempt}",
            table.primary_key.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn forms_are_parsed_and_unknown_ones_rejected() {
        assert_eq!(
            parse(&yaml("{by: _customer_id}")),
            Ok(Distribution::By("_customer_id".into()))
        );
        assert_eq!(parse(&yaml("reference")), Ok(Distribution::Reference));
        assert_eq!(parse(&yaml("local")), Ok(Distribution::Local));
        for bad in [
            "hash",
            "{by: ''}",
            "{by: [a, b]}",
            "{column: a}",
            "{}",
            "[a]",
            "1",
        ] {
            let message = parse(&yaml(bad)).unwrap_err();
            assert!(message.contains(FORMS), "{bad}: {message}");
        }
        assert!(parse(&yaml("{by: a, colocate: b}"))
            .unwrap_err()
            .contains("unknown distribution field `colocate`"));
    }
}
