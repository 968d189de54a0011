//! The async twin of [`crate::apply`], over `tokio_postgres::Client`; the same
//! plan, statements and history rows, awaited.

use std::time::{Duration, Instant};

use cdc_core::history::HISTORY_DDL;
use futures_util::FutureExt as _;

use crate::apply::Migrator;
use crate::error::ApplyError;
use crate::plan::{
    anything_to_apply, file_error, history_ddl_lock_key, history_upsert, is_missing_history,
    lock_key, parse_history, status_of, verify_all, ApplyEvent, ApplyReport, FileOutcome,
    FileStatus, History, Outcome,
};
use crate::sql::split_statements;

impl Migrator<'_> {
    /// Reads the sink's history; an absent table reads as empty. One round trip.
    pub async fn read_history_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<History, ApplyError> {
        match client.simple_query(&self.history_sql()).await {
            Ok(messages) => Ok(parse_history(messages)),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                if is_missing_history(&e) {
                    Ok(History::new())
                } else {
                    Err(ApplyError::History(e))
                }
            }
        }
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
    /// session advisory lock on this client for the run. The lock is released on
    /// success, on error and on panic; if the future is dropped mid-run, the
    /// server releases it when the connection closes, so give the run a
    /// dedicated connection.
    pub async fn apply_async(
        &self,
        client: &mut tokio_postgres::Client,
    ) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        verify_all(self.migrations)?;
        let all_applied = match client.simple_query(&self.digest_sql()).await {
            Ok(messages) => crate::plan::digest_matches(
                &messages,
                &crate::plan::expected_digest(self.migrations),
            ),
            Err(_) => {
                let _ = client.batch_execute("ROLLBACK").await;
                false
            }
        };
        if all_applied {
            return Ok(self.skipped_all(started));
        }
        let history = self.read_history_async(client).await?;
        if !anything_to_apply(&status_of(self.migrations, &history)) {
            return Ok(self.skipped_all(started));
        }
        let key = lock_key(self.migrations.sink());
        self.acquire_async(client, key).await?;
        let result = std::panic::AssertUnwindSafe(self.apply_locked_async(client))
            .catch_unwind()
            .await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .map_err(ApplyError::Database);
        match result {
            Ok(Ok(outcomes)) => {
                unlocked?;
                Ok(self.report(started, outcomes))
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    async fn acquire_async(
        &self,
        client: &tokio_postgres::Client,
        key: i64,
    ) -> Result<(), ApplyError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        let mut announced = false;
        loop {
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(ApplyError::Database)?;
            if row.get::<_, bool>(0) {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= self.options.lock_wait {
                return Err(ApplyError::LockTimeout {
                    sink: self.migrations.sink().to_string(),
                    waited,
                });
            }
            if !announced {
                self.emit(ApplyEvent::WaitingForLock);
                announced = true;
            }
            tokio::time::sleep(pause.min(self.options.lock_wait.saturating_sub(waited))).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn apply_locked_async(
        &self,
        client: &mut tokio_postgres::Client,
    ) -> Result<Vec<FileOutcome>, ApplyError> {
        let tx = client.transaction().await.map_err(ApplyError::History)?;
        tx.batch_execute(&format!(
            "{}; SELECT pg_advisory_xact_lock({});\n{HISTORY_DDL}",
            self.local_settings(true),
            history_ddl_lock_key()
        ))
        .await
        .map_err(ApplyError::History)?;
        tx.commit().await.map_err(ApplyError::History)?;

        let history = self.read_history_async(client).await?;
        let statuses = status_of(self.migrations, &history);
        let total = crate::plan::pending_count(&statuses);
        let mut outcomes = Vec::with_capacity(statuses.len());
        let mut index = 0;
        for (file, status) in self.migrations.files().iter().zip(&statuses) {
            let outcome = crate::plan::outcome_for(&status.state);
            if outcome == Outcome::Skipped {
                outcomes.push(FileOutcome::skipped(file));
                continue;
            }
            index += 1;
            self.emit(ApplyEvent::Applying {
                path: &file.path,
                index,
                total,
            });
            let started = Instant::now();
            let tx = client.transaction().await.map_err(ApplyError::Database)?;
            tx.batch_execute(&self.local_settings(index == total))
                .await
                .map_err(ApplyError::Database)?;
            for statement in split_statements(file.body()) {
                tx.batch_execute(statement.text)
                    .await
                    .map_err(|e| file_error(file, Some(&statement), e))?;
            }
            let duration = started.elapsed();
            tx.batch_execute(&history_upsert(
                self.migrations.sink(),
                file,
                duration.as_millis(),
            ))
            .await
            .map_err(ApplyError::History)?;
            tx.commit().await.map_err(|e| file_error(file, None, e))?;
            outcomes.push(FileOutcome {
                path: file.path.to_string(),
                category: file.category,
                outcome,
                duration: started.elapsed(),
            });
        }
        Ok(outcomes)
    }
}
