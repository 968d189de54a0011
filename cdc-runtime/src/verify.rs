//! `verify_schema`: compares a sink's live tables with what its migrations declare, in one catalog query, so a service can refuse or warn at boot.
//!
//! The expected shape comes from the migration files alone (embedded by
//! `include_migrations!` or loaded from disk): every table and staging file
//! calls `converge_table(...)` with the table's columns and key, and a staging
//! file creates the staging trigger and the merge function. The comparison and
//! the change kinds are cdc-core's ([`cdc_core::schema`]), the ones
//! `cdc manage-migrations diff` reports.
//!
//! ```rust,no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let migrations = cdc_runtime::Migrations::load_dir("migrations/sink_asma.billing".as_ref())?;
//! let mut client = cdc_runtime::postgres::Client::connect(
//!     "host=localhost user=postgres dbname=billing_dev",
//!     cdc_runtime::postgres::NoTls,
//! )?;
//! let report = cdc_runtime::verify_schema(&mut client, &migrations)?;
//! if report.count(cdc_runtime::Severity::Breaking) > 0 {
//!     return Err(format!("the database has drifted:\n{report}").into());
//! }
//! # Ok(()) }
//! ```

use std::fmt;

use cdc_core::schema::converge::{converge_calls, created_names};
use cdc_core::schema::lex::{lex, Lexed, Token};
use cdc_core::schema::live::{
    catalog_params, compare_live, shape_from_catalog, CatalogColumn, ExpectedTable, LiveTable,
    StagingNames, CATALOG_QUERY,
};
use cdc_core::schema::{Change, Severity};
use cdc_core::{FileCategory, Migrations};
use tokio_postgres::types::{ToSql, Type};

/// Why a schema could not be verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A migration file does not declare its table in a form this reader knows.
    #[error("{file}: cannot read the table it declares: {message}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The catalog query failed.
    #[error("cannot read the catalog: {0}")]
    Query(#[source] tokio_postgres::Error),
}

/// The changes of one table, from the database to its migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TableReport {
    /// Target schema.
    pub schema: String,
    /// Target table.
    pub table: String,
    /// What differs.
    pub changes: Vec<Change>,
}

/// How a sink's database differs from its migrations; empty when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SchemaReport {
    /// The sink.
    pub sink: String,
    /// Tables with at least one change, in migration order.
    pub tables: Vec<TableReport>,
}

impl SchemaReport {
    /// Whether the database matches the migrations.
    pub fn is_clean(&self) -> bool {
        self.tables.is_empty()
    }

    /// Every change with its table.
    pub fn changes(&self) -> impl Iterator<Item = (&TableReport, &Change)> {
        self.tables
            .iter()
            .flat_map(|t| t.changes.iter().map(move |c| (t, c)))
    }

    /// How many changes have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.changes()
            .filter(|(_, c)| c.severity == severity)
            .count()
    }
}

impl fmt::Display for SchemaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(f, "sink {}: the database matches its migrations", self.sink);
        }
        writeln!(f, "sink {}:", self.sink)?;
        for (table, change) in self.changes() {
            write!(
                f,
                "  {}.{} {} {}",
                table.schema,
                table.table,
                change.severity.label(),
                change.kind.label()
            )?;
            if let Some(column) = &change.column {
                write!(f, " {column:?}")?;
            }
            match (&change.from, &change.to) {
                (Some(from), Some(to)) => write!(f, ": {from} -> {to}")?,
                (None, Some(to)) => write!(f, ": {to}")?,
                (Some(from), None) => write!(f, ": was {from}")?,
                (None, None) => {}
            }
            writeln!(f, " ({})", change.reason)?;
        }
        write!(
            f,
            "{} breaking, {} warning, {} info",
            self.count(Severity::Breaking),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        )
    }
}

fn file_error(file: &str, message: impl Into<String>) -> VerifyError {
    VerifyError::File {
        file: file.to_string(),
        message: message.into(),
    }
}

/// The tables a sink's migrations declare, as they expect them in the
/// database: each table file's `converge_table` call, with the staging table,
/// trigger and merge function its staging file creates.
pub fn expected_tables(migrations: &Migrations) -> Result<Vec<ExpectedTable>, VerifyError> {
    let mut tables = Vec::new();
    for file in migrations.files() {
        if file.category != FileCategory::Table {
            continue;
        }
        let tokens = lex(file.body()).map_err(|m| file_error(&file.path, m))?;
        let call = converge_calls(&tokens)
            .map_err(|m| file_error(&file.path, m))?
            .into_iter()
            .next()
            .ok_or_else(|| file_error(&file.path, "no CALL converge_table"))?;
        let staging_path = cdc_core::layout::staging_file(&call.table);
        let staging = match migrations.files().iter().find(|f| f.path == staging_path) {
            None => None,
            Some(staging) => Some(staging_names(&staging.path, staging.body())?),
        };
        tables.push(ExpectedTable {
            schema: call.schema,
            table: call.table,
            shape: call.shape,
            keep_extra_columns: call.allow_extra_columns,
            staging,
        });
    }
    Ok(tables)
}

fn staging_names(path: &str, body: &str) -> Result<StagingNames, VerifyError> {
    let tokens = lex(body).map_err(|m| file_error(path, m))?;
    let call = converge_calls(&tokens)
        .map_err(|m| file_error(path, m))?
        .into_iter()
        .next()
        .ok_or_else(|| file_error(path, "no CALL converge_table for the staging table"))?;
    let first = |kind: &str| {
        created_names(&tokens, kind)
            .into_iter()
            .next()
            .ok_or_else(|| file_error(path, format!("no CREATE {kind}")))
    };
    Ok(StagingNames {
        table: call.table,
        trigger: staging_trigger(&tokens).ok_or_else(|| file_error(path, "no CREATE trigger"))?,
        merge_function: first("function")?,
    })
}

/// The staging trigger's name: created at the top level, or inside the `DO` block that creates
/// it only where Citus is absent (a Citus-managed staging table carries no trigger).
fn staging_trigger(tokens: &[Lexed<'_>]) -> Option<String> {
    created_names(tokens, "trigger")
        .into_iter()
        .next()
        .or_else(|| {
            tokens
                .iter()
                .filter_map(|t| match t.token {
                    Token::Dollar(body) => lex(body).ok(),
                    _ => None,
                })
                .find_map(|inner| created_names(&inner, "trigger").into_iter().next())
        })
}

/// The catalog query and its bound parameters.
fn query_params<'a>(params: &'a [Vec<&str>; 5]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
        .collect()
}

/// One row of [`CATALOG_QUERY`].
fn live_table(row: &tokio_postgres::Row) -> Result<LiveTable, tokio_postgres::Error> {
    let shape = if row.try_get::<_, bool>("table_exists")? {
        let names: Vec<String> = row.try_get::<_, Option<_>>("names")?.unwrap_or_default();
        let types: Vec<String> = row.try_get::<_, Option<_>>("types")?.unwrap_or_default();
        let not_nulls: Vec<bool> = row
            .try_get::<_, Option<_>>("not_nulls")?
            .unwrap_or_default();
        let defaults: Vec<Option<String>> =
            row.try_get::<_, Option<_>>("defaults")?.unwrap_or_default();
        let columns = names
            .into_iter()
            .zip(types)
            .zip(not_nulls)
            .zip(defaults)
            .map(|(((name, canonical), not_null), default)| CatalogColumn {
                name,
                canonical,
                not_null,
                default,
            })
            .collect();
        let key = row
            .try_get::<_, Option<Vec<String>>>("primary_key")?
            .unwrap_or_default();
        Some(shape_from_catalog(columns, key))
    } else {
        None
    };
    Ok(LiveTable {
        shape,
        staging_kind: row.try_get("staging_kind")?,
        trigger_exists: row.try_get("trigger_exists")?,
        merge_function_exists: row.try_get("merge_function_exists")?,
    })
}

fn live_tables(rows: &[tokio_postgres::Row]) -> Result<Vec<LiveTable>, VerifyError> {
    rows.iter()
        .map(live_table)
        .collect::<Result<_, _>>()
        .map_err(VerifyError::Query)
}

/// Reads what the catalog holds for each expected table, in one query.
pub fn read_catalog(
    client: &mut postgres::Client,
    expected: &[ExpectedTable],
) -> Result<Vec<LiveTable>, VerifyError> {
    let params = catalog_params(expected);
    let rows = client
        .query_typed(CATALOG_QUERY, &query_params(&params))
        .map_err(VerifyError::Query)?;
    live_tables(&rows)
}

/// [`read_catalog`] over an async client.
pub async fn read_catalog_async(
    client: &tokio_postgres::Client,
    expected: &[ExpectedTable],
) -> Result<Vec<LiveTable>, VerifyError> {
    let params = catalog_params(expected);
    let rows = client
        .query_typed(CATALOG_QUERY, &query_params(&params))
        .await
        .map_err(VerifyError::Query)?;
    live_tables(&rows)
}

fn report(migrations: &Migrations, expected: &[ExpectedTable], live: &[LiveTable]) -> SchemaReport {
    let tables: Vec<TableReport> = expected
        .iter()
        .zip(live)
        .map(|(expected, live)| TableReport {
            schema: expected.schema.clone(),
            table: expected.table.clone(),
            changes: compare_live(expected, live),
        })
        .filter(|t| !t.changes.is_empty())
        .collect();
    let report = SchemaReport {
        sink: migrations.sink().to_string(),
        tables,
    };
    tracing::info!(
        sink = %report.sink,
        tables = expected.len(),
        breaking = report.count(Severity::Breaking),
        warning = report.count(Severity::Warning),
        info = report.count(Severity::Info),
        "schema verified"
    );
    report
}

/// Compares the sink's live tables with what its migrations declare (one
/// catalog query); changes nothing. Refuse to start on
/// `report.count(Severity::Breaking) > 0`, or log the report.
pub fn verify_schema(
    client: &mut postgres::Client,
    migrations: &Migrations,
) -> Result<SchemaReport, VerifyError> {
    let expected = expected_tables(migrations)?;
    let live = read_catalog(client, &expected)?;
    Ok(report(migrations, &expected, &live))
}

/// [`verify_schema`] over an async client.
pub async fn verify_schema_async(
    client: &tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<SchemaReport, VerifyError> {
    let expected = expected_tables(migrations)?;
    let live = read_catalog_async(client, &expected).await?;
    Ok(report(migrations, &expected, &live))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_migrations_declare_their_tables_and_staging_objects() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations/sink_asma.billing");
        let migrations = Migrations::load_dir(&dir).unwrap();
        let tables = expected_tables(&migrations).unwrap();
        let names: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(names, vec!["Invoice", "InvoiceLine"]);
        let invoice = &tables[0];
        assert_eq!(invoice.schema, "billing");
        assert_eq!(invoice.shape.primary_key, vec!["InvoiceId"]);
        assert!(!invoice.keep_extra_columns);
        let staging = invoice.staging.as_ref().unwrap();
        assert_eq!(staging.table, "stg_Invoice");
        assert_eq!(staging.merge_function, "sp_merge_Invoice");
        assert_eq!(staging.trigger, "cdc_mark_for_merge");
    }

    #[test]
    fn a_staging_trigger_created_only_where_citus_is_absent_is_found_in_its_do_block() {
        let body = "CREATE TABLE t (a int);\nDO $cdc$\nBEGIN\n    IF NOT EXISTS (SELECT 1) THEN\n        CREATE OR REPLACE TRIGGER \"cdc_mark_for_merge\" AFTER INSERT ON t\n            FOR EACH STATEMENT EXECUTE FUNCTION f();\n    END IF;\nEND\n$cdc$;";
        let tokens = lex(body).unwrap();
        assert_eq!(
            staging_trigger(&tokens).as_deref(),
            Some("cdc_mark_for_merge")
        );
        assert_eq!(
            staging_trigger(&lex("CREATE TABLE t (a int);").unwrap()),
            None
        );
    }
}
