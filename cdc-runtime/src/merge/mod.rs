//! Calling the merge orchestrator from the service, where pg_cron is absent or
//! a finer interval than pg_cron's minute is wanted; every round is reported
//! through `tracing` (tables merged, rows, duration, errors).
//!
//! - [`run_pending_merges`] (and its async form) `CALL`s the committing
//!   procedure `cdc_management.run_pending_merges`: each batch and each table
//!   commits on its own, a failing table is logged and the others go on.
//! - [`trigger_pending_merges`] calls the function of the same name, which
//!   merges everything in the caller's one transaction.
//! - [`MergeScheduler`] runs rounds of the procedure every interval on its own
//!   connection, and reconnects with capped exponential backoff when the
//!   connection drops or the server is down.

mod scheduler;

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cdc_core::layout::MANAGEMENT_SCHEMA;
use tracing::{debug, info, warn};

pub use scheduler::{MergeScheduler, MergeSchedulerBuilder, SchedulerEvent};

/// One round of `cdc_management.run_pending_merges`: what it merged, what failed, how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeRound {
    /// Tables merged (each in its own transactions).
    pub tables_merged: i32,
    /// Staged rows consumed over all tables.
    pub rows_merged: i64,
    /// Tables whose merge failed (logged in `cdc_management.error_log`).
    pub tables_failed: i32,
    /// Wall time of the round, as the client saw it.
    pub duration: Duration,
}

/// Why a merge round failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// The server or the connection failed.
    #[error("merge round: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The procedure answered something other than its one result row.
    #[error("merge round: unexpected result from run_pending_merges: {0}")]
    Result(String),
}

/// The driver's error with the server's SQLSTATE and message when there is one
/// (its own `Display` says only "db error").
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => error.to_string(),
    }
}

impl MergeError {
    /// Whether the connection is gone (closed, reset, or the server shutting down),
    /// so that only a new connection can go on.
    pub fn is_disconnect(&self) -> bool {
        let MergeError::Postgres(error) = self else {
            return false;
        };
        if error.is_closed() {
            return true;
        }
        match error.code() {
            // Class 08 (connection exception) and 57P (operator intervention: admin or
            // crash shutdown, cannot connect now).
            Some(code) => code.code().starts_with("08") || code.code().starts_with("57P"),
            // No SQLSTATE: an I/O or protocol error of the connection itself.
            None => true,
        }
    }
}

/// The `CALL` of one round. Values are integers formatted here (never text), and the
/// statement goes through the simple protocol so that the procedure may COMMIT.
fn run_pending_merges_sql(window_seconds: i32, batch_size: Option<i32>) -> String {
    let batch = batch_size.map_or_else(|| "NULL".to_string(), |size| size.to_string());
    format!(
        "CALL \"{MANAGEMENT_SCHEMA}\".\"run_pending_merges\"({window_seconds}, {batch}::integer)"
    )
}

/// Reads the procedure's one row `(tables_merged, rows_merged, tables_failed)`.
fn to_round(
    messages: &[tokio_postgres::SimpleQueryMessage],
    started: Instant,
) -> Result<MergeRound, MergeError> {
    let row = messages
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .ok_or_else(|| MergeError::Result("no result row".to_string()))?;
    fn field<T: std::str::FromStr>(
        row: &tokio_postgres::SimpleQueryRow,
        index: usize,
    ) -> Result<T, MergeError> {
        let text = row
            .try_get(index)
            .map_err(|e| MergeError::Result(e.to_string()))?
            .ok_or_else(|| MergeError::Result(format!("column {index} is NULL")))?;
        text.parse()
            .map_err(|_| MergeError::Result(format!("column {index}: `{text}`")))
    }
    Ok(MergeRound {
        tables_merged: field(row, 0)?,
        rows_merged: field(row, 1)?,
        tables_failed: field(row, 2)?,
        duration: started.elapsed(),
    })
}

/// Reports a round of the procedure: `info` when it merged something or a table
/// failed, `debug` when nothing was pending, `warn` when the call failed.
fn report_run(window_seconds: i32, round: &Result<MergeRound, MergeError>) {
    match round {
        Ok(round) => {
            let duration_ms = u64::try_from(round.duration.as_millis()).unwrap_or(u64::MAX);
            if round.tables_failed > 0 {
                warn!(
                    tables = round.tables_merged,
                    rows = round.rows_merged,
                    tables_failed = round.tables_failed,
                    window_seconds,
                    duration_ms,
                    "merge round: some tables failed (see cdc_management.error_log)"
                );
            } else if round.tables_merged > 0 {
                info!(
                    tables = round.tables_merged,
                    rows = round.rows_merged,
                    window_seconds,
                    duration_ms,
                    "merge round"
                );
            } else {
                debug!(window_seconds, duration_ms, "merge round: nothing pending");
            }
        }
        Err(error) => warn!(window_seconds, %error, "merge round failed"),
    }
}

/// Merges every table whose staged rows waited at least `window_seconds` (0:
/// everything pending now) with `CALL cdc_management.run_pending_merges`: each
/// batch (`batch_size` rows, `None` for the procedure's default) and each table
/// commits on its own. Must run outside an explicit transaction.
pub fn run_pending_merges(
    client: &mut postgres::Client,
    window_seconds: i32,
    batch_size: Option<i32>,
) -> Result<MergeRound, MergeError> {
    let started = Instant::now();
    let round = client
        .simple_query(&run_pending_merges_sql(window_seconds, batch_size))
        .map_err(MergeError::from)
        .and_then(|messages| to_round(&messages, started));
    report_run(window_seconds, &round);
    round
}

/// The async form of [`run_pending_merges`].
pub async fn run_pending_merges_async(
    client: &tokio_postgres::Client,
    window_seconds: i32,
    batch_size: Option<i32>,
) -> Result<MergeRound, MergeError> {
    let started = Instant::now();
    let round = client
        .simple_query(&run_pending_merges_sql(window_seconds, batch_size))
        .await
        .map_err(MergeError::from)
        .and_then(|messages| to_round(&messages, started));
    report_run(window_seconds, &round);
    round
}

/// One merged table, as `cdc_management.trigger_pending_merges()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeResult {
    /// Target schema.
    pub schema_name: String,
    /// Final table.
    pub table_name: String,
    /// Staged rows consumed.
    pub rows_merged: i64,
    /// Time the merge took.
    pub duration_ms: i64,
}

/// One merge round; `$1` is the batch window in seconds.
static TRIGGER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT schema_name, table_name, rows_merged, duration_ms \
         FROM \"{MANAGEMENT_SCHEMA}\".\"trigger_pending_merges\"($1)"
    )
});

fn to_result(row: &tokio_postgres::Row) -> MergeResult {
    MergeResult {
        schema_name: row.get(0),
        table_name: row.get(1),
        rows_merged: row.get(2),
        duration_ms: row.get(3),
    }
}

/// Reports one round: `info` when it merged something (`debug` per table),
/// `debug` when nothing was pending, `warn` when it failed.
fn report_round(
    window_seconds: i32,
    started: Instant,
    round: Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Result<Vec<MergeResult>, tokio_postgres::Error> {
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let merged: Vec<MergeResult> = match round {
        Ok(rows) => rows.iter().map(to_result).collect(),
        Err(error) => {
            warn!(window_seconds, duration_ms, %error, "merge round failed");
            return Err(error);
        }
    };
    for table in &merged {
        debug!(
            schema = %table.schema_name,
            table = %table.table_name,
            rows = table.rows_merged,
            duration_ms = table.duration_ms,
            "table merged"
        );
    }
    let rows: i64 = merged.iter().map(|table| table.rows_merged).sum();
    if merged.is_empty() {
        debug!(window_seconds, duration_ms, "merge round: nothing pending");
    } else {
        info!(
            tables = merged.len(),
            rows, window_seconds, duration_ms, "merge round"
        );
    }
    Ok(merged)
}

/// Merges every table whose staged rows waited at least `window_seconds`
/// (0: everything pending now).
pub fn trigger_pending_merges(
    client: &mut postgres::Client,
    window_seconds: i32,
) -> Result<Vec<MergeResult>, postgres::Error> {
    let started = Instant::now();
    let round = client.query(TRIGGER_SQL.as_str(), &[&window_seconds]);
    report_round(window_seconds, started, round)
}

/// The async form of [`trigger_pending_merges`].
pub async fn trigger_pending_merges_async(
    client: &tokio_postgres::Client,
    window_seconds: i32,
) -> Result<Vec<MergeResult>, tokio_postgres::Error> {
    let started = Instant::now();
    let round = client.query(TRIGGER_SQL.as_str(), &[&window_seconds]).await;
    report_round(window_seconds, started, round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_formats_integers_and_a_typed_null() {
        assert_eq!(
            run_pending_merges_sql(5, None),
            r#"CALL "cdc_management"."run_pending_merges"(5, NULL::integer)"#
        );
        assert_eq!(
            run_pending_merges_sql(0, Some(1000)),
            r#"CALL "cdc_management"."run_pending_merges"(0, 1000::integer)"#
        );
    }
}
