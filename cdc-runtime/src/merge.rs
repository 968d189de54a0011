//! Calling the merge orchestrator from the service, where pg_cron is absent or
//! a finer interval than pg_cron's minute is wanted; every round is reported
//! through `tracing` (tables merged, rows, duration, errors).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cdc_core::layout::MANAGEMENT_SCHEMA;
use tracing::{debug, info, info_span, warn, Instrument as _};

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

/// Calls the orchestrator every `interval` on a tokio task until stopped.
/// Several replicas may run one each: a table is merged by one session at a time.
#[derive(Debug)]
pub struct MergeScheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MergeScheduler {
    /// Starts the loop; `on_result` sees every round's outcome (each round is
    /// also reported through `tracing`, in a `cdc_merge_scheduler` span).
    pub fn start(
        client: tokio_postgres::Client,
        interval: Duration,
        window_seconds: i32,
        on_result: impl Fn(Result<Vec<MergeResult>, tokio_postgres::Error>) + Send + Sync + 'static,
    ) -> MergeScheduler {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let span = info_span!(
            "cdc_merge_scheduler",
            interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            window_seconds
        );
        let task = tokio::spawn(
            async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticker.tick() => on_result(trigger_pending_merges_async(&client, window_seconds).await),
                        _ = stopped.changed() => break,
                    }
                }
                debug!("merge scheduler stopped");
            }
            .instrument(span),
        );
        MergeScheduler { stop, task }
    }

    /// Stops the loop after the round in progress.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
