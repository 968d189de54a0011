//! Calling the merge orchestrator from the service, where pg_cron is absent or
//! a finer interval than pg_cron's minute is wanted.

use std::time::Duration;

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

const TRIGGER_SQL: &str = "SELECT schema_name, table_name, rows_merged, duration_ms \
                           FROM \"cdc_management\".\"trigger_pending_merges\"($1)";

fn to_result(row: &tokio_postgres::Row) -> MergeResult {
    MergeResult {
        schema_name: row.get(0),
        table_name: row.get(1),
        rows_merged: row.get(2),
        duration_ms: row.get(3),
    }
}

/// Merges every table whose staged rows waited at least `window_seconds`
/// (0: everything pending now).
pub fn trigger_pending_merges(
    client: &mut postgres::Client,
    window_seconds: i32,
) -> Result<Vec<MergeResult>, postgres::Error> {
    Ok(client
        .query(TRIGGER_SQL, &[&window_seconds])?
        .iter()
        .map(to_result)
        .collect())
}

/// The async form of [`trigger_pending_merges`].
pub async fn trigger_pending_merges_async(
    client: &tokio_postgres::Client,
    window_seconds: i32,
) -> Result<Vec<MergeResult>, tokio_postgres::Error> {
    Ok(client
        .query(TRIGGER_SQL, &[&window_seconds])
        .await?
        .iter()
        .map(to_result)
        .collect())
}

/// Calls the orchestrator every `interval` on a tokio task until stopped.
/// Several replicas may run one each: a table is merged by one session at a time.
#[derive(Debug)]
pub struct MergeScheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MergeScheduler {
    /// Starts the loop; `on_result` sees every round's outcome (log it).
    pub fn start(
        client: tokio_postgres::Client,
        interval: Duration,
        window_seconds: i32,
        on_result: impl Fn(Result<Vec<MergeResult>, tokio_postgres::Error>) + Send + Sync + 'static,
    ) -> MergeScheduler {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => on_result(trigger_pending_merges_async(&client, window_seconds).await),
                    _ = stopped.changed() => break,
                }
            }
        });
        MergeScheduler { stop, task }
    }

    /// Stops the loop after the round in progress.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
