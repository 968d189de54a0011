//! The async driver: executes the engine's commands on a `tokio_postgres::Client`.

use std::time::{Duration, Instant};

use futures_util::FutureExt as _;

use crate::engine::{
    drive, simple_rows, typed_rows, ApplyRun, Cleanup, Command, Connection, HistoryRead, Param,
    Reply,
};
use crate::error::ApplyError;
use crate::plan::{status_of, ApplyReport, FileStatus, History};
use crate::Migrator;

impl Migrator<'_> {
    /// Reads the sink's history; an absent table reads as empty.
    pub async fn read_history_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<History, ApplyError> {
        drive(Async(client), HistoryRead::of(self)).await
    }

    /// Every file's status without changing anything.
    pub async fn status_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<FileStatus>, ApplyError> {
        let history = self.read_history_async(client).await?;
        Ok(status_of(self.migrations, &history))
    }

    /// Verifies every file, then applies what is pending, holding the sink's
    /// session advisory lock on this client for the run. The lock is released
    /// on success, on error, on panic and when the future is dropped mid-run
    /// (then the rollback and the release are queued on the connection behind
    /// whatever is in flight); give the run a connection of its own.
    pub async fn apply_async(
        &self,
        client: &mut tokio_postgres::Client,
    ) -> Result<ApplyReport, ApplyError> {
        drive(Async(client), ApplyRun::new(self, Instant::now())).await
    }
}

/// An async client.
struct Async<'c>(&'c tokio_postgres::Client);

impl Connection for Async<'_> {
    async fn execute(&mut self, command: &Command) -> Reply {
        match command {
            Command::Simple(sql) => self.0.simple_query(sql).await.map(simple_rows),
            Command::Bound { sql, params } => {
                typed_rows(self.0.query_typed(sql, &Param::typed(params)).await?)
            }
        }
    }

    async fn pause(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await;
    }

    fn abandon(&mut self, held: Cleanup) {
        for command in held.commands() {
            // The first poll hands the request to the connection task, which
            // sends it whether or not anyone awaits the answer (tokio-postgres
            // rolls back a dropped Transaction the same way).
            let _ = self.execute(&command).now_or_never();
        }
    }
}
