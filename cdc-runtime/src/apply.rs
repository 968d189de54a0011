//! The migrator: verify, plan, lock, apply, record (DESIGN.md §6), over a
//! synchronous `postgres::Client`. The async twin is in `apply_async`.
//!
//! A boot where everything is applied costs one round trip: the server returns
//! the count and a SHA-256 digest of the sink's `(file, checksum)` history rows
//! (with the session settings, in one simple-protocol batch), which must equal
//! the digest of the files' checksums. Only when something is pending does the migrator take
//! the sink's session advisory lock, create or adopt the history table, re-read
//! the history and apply each pending file with its history row in one
//! transaction.

use std::time::{Duration, Instant};

use cdc_core::history::HISTORY_DDL;
use cdc_core::Migrations;

use crate::error::ApplyError;
use crate::plan::{
    anything_to_apply, file_error, history_ddl_lock_key, history_query, history_upsert,
    is_missing_history, lock_key, parse_history, status_of, verify_all, ApplyEvent, ApplyReport,
    FileOutcome, FileStatus, History, Outcome,
};
use crate::sql::split_statements;

/// Limits of a run; the defaults keep a boot from hanging forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateOptions {
    /// How long to wait for another migrator of the same sink (default 60 s).
    pub lock_wait: Duration,
    /// `lock_timeout` for every statement (default 30 s): a file waiting longer
    /// for a table lock fails instead of queueing forever.
    pub lock_timeout: Duration,
    /// `statement_timeout` for every statement (default 10 min).
    pub statement_timeout: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            lock_wait: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(600),
        }
    }
}

type Observer<'a> = Box<dyn Fn(ApplyEvent<'_>) + Send + Sync + 'a>;

/// Applies one sink's migrations.
///
/// ```rust,no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let migrations = cdc_runtime::Migrations::load_dir("migrations/sink_asma.directory".as_ref())?;
/// let mut client = cdc_runtime::postgres::Client::connect("host=localhost user=postgres dbname=directory_dev", cdc_runtime::postgres::NoTls)?;
/// let report = cdc_runtime::Migrator::new(&migrations)
///     .lock_wait(std::time::Duration::from_secs(30))
///     .apply(&mut client)?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct Migrator<'a> {
    pub(crate) migrations: &'a Migrations,
    pub(crate) options: MigrateOptions,
    pub(crate) observer: Option<Observer<'a>>,
}

impl std::fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("sink", &self.migrations.sink())
            .field("files", &self.migrations.files().len())
            .field("options", &self.options)
            .finish()
    }
}

impl<'a> Migrator<'a> {
    /// A migrator with default options.
    pub fn new(migrations: &'a Migrations) -> Migrator<'a> {
        Migrator {
            migrations,
            options: MigrateOptions::default(),
            observer: None,
        }
    }

    /// Replaces all options.
    pub fn options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// How long to wait for another migrator of the same sink.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.options.lock_wait = wait;
        self
    }

    /// `lock_timeout` for every statement.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// `statement_timeout` for every statement.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.options.statement_timeout = timeout;
        self
    }

    /// Calls `observer` as the run progresses (waiting for the lock, each file).
    pub fn on_event(mut self, observer: impl Fn(ApplyEvent<'_>) + Send + Sync + 'a) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Checks every file's checksum against its body (whether or not the set
    /// was verified when built).
    pub fn verify(&self) -> Result<(), ApplyError> {
        for file in self.migrations.files() {
            crate::plan::verify_file(file)?;
        }
        Ok(())
    }

    pub(crate) fn emit(&self, event: ApplyEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    pub(crate) fn history_sql(&self) -> String {
        format!(
            "BEGIN READ ONLY; {}; {}; COMMIT",
            self.local_settings(true),
            history_query(self.migrations.sink())
        )
    }

    pub(crate) fn digest_sql(&self) -> String {
        format!(
            "BEGIN READ ONLY; {}; {}; COMMIT",
            self.local_settings(true),
            crate::plan::digest_query(self.migrations.sink())
        )
    }

    /// The boot fast path: one round trip answering "is everything applied?".
    fn all_applied(&self, client: &mut postgres::Client) -> bool {
        match client.simple_query(&self.digest_sql()) {
            Ok(messages) => crate::plan::digest_matches(
                &messages,
                &crate::plan::expected_digest(self.migrations),
            ),
            Err(_) => {
                let _ = client.batch_execute("ROLLBACK");
                false
            }
        }
    }

    pub(crate) fn local_settings(&self, synchronous: bool) -> String {
        // client_connection_check_interval (PostgreSQL 14+): a migrator killed in
        // the middle of a long statement is noticed within a second, its
        // transaction rolled back and its locks freed, instead of the server
        // finishing the statement for nobody while the next migrator waits.
        format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; SET LOCAL synchronous_commit = {}; \
             SET LOCAL client_connection_check_interval = 1000",
            self.options.statement_timeout.as_millis(),
            self.options.lock_timeout.as_millis(),
            if synchronous { "on" } else { "off" }
        )
    }

    pub(crate) fn report(&self, started: Instant, outcomes: Vec<FileOutcome>) -> ApplyReport {
        ApplyReport {
            sink: self.migrations.sink().to_string(),
            files: outcomes,
            total: started.elapsed(),
        }
    }

    pub(crate) fn skipped_all(&self, started: Instant) -> ApplyReport {
        let outcomes = self
            .migrations
            .files()
            .iter()
            .map(FileOutcome::skipped)
            .collect();
        self.report(started, outcomes)
    }

    /// Reads the sink's history; an absent table reads as empty. One round trip.
    pub fn read_history(&self, client: &mut postgres::Client) -> Result<History, ApplyError> {
        match client.simple_query(&self.history_sql()) {
            Ok(messages) => Ok(parse_history(messages)),
            Err(e) => {
                // The batch opened a transaction that the error left aborted.
                let _ = client.batch_execute("ROLLBACK");
                if is_missing_history(&e) {
                    Ok(History::new())
                } else {
                    Err(ApplyError::History(e))
                }
            }
        }
    }

    /// Every file's status (applied, pending, modified) without changing anything.
    pub fn status(&self, client: &mut postgres::Client) -> Result<Vec<FileStatus>, ApplyError> {
        let history = self.read_history(client)?;
        Ok(status_of(self.migrations, &history))
    }

    /// Verifies every file, then applies what is pending. The client is used
    /// exclusively by this run: the sink's session advisory lock is held on it
    /// until the run ends, on every path.
    pub fn apply(&self, client: &mut postgres::Client) -> Result<ApplyReport, ApplyError> {
        let started = Instant::now();
        verify_all(self.migrations)?;
        if self.all_applied(client) {
            return Ok(self.skipped_all(started));
        }
        let history = self.read_history(client)?;
        if !anything_to_apply(&status_of(self.migrations, &history)) {
            return Ok(self.skipped_all(started));
        }
        let mut locked = SessionLock::acquire(client, self)?;
        self.ensure_history(locked.client())?;
        let history = self.read_history(locked.client())?;
        let outcomes = self.apply_pending(locked.client(), &history)?;
        locked.release()?;
        Ok(self.report(started, outcomes))
    }

    fn ensure_history(&self, client: &mut postgres::Client) -> Result<(), ApplyError> {
        let mut tx = client.transaction().map_err(ApplyError::History)?;
        tx.batch_execute(&format!(
            "{}; SELECT pg_advisory_xact_lock({});\n{HISTORY_DDL}",
            self.local_settings(true),
            history_ddl_lock_key()
        ))
        .map_err(ApplyError::History)?;
        tx.commit().map_err(ApplyError::History)
    }

    fn apply_pending(
        &self,
        client: &mut postgres::Client,
        history: &History,
    ) -> Result<Vec<FileOutcome>, ApplyError> {
        let statuses = status_of(self.migrations, history);
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
            let mut tx = client.transaction().map_err(ApplyError::Database)?;
            // Every file but the last commits asynchronously; the last commit
            // flushes the WAL of all of them, so the run ends durable.
            tx.batch_execute(&self.local_settings(index == total))
                .map_err(ApplyError::Database)?;
            let body = file.body();
            for statement in split_statements(body) {
                tx.batch_execute(statement.text)
                    .map_err(|e| file_error(file, Some(&statement), e))?;
            }
            let duration = started.elapsed();
            tx.batch_execute(&history_upsert(
                self.migrations.sink(),
                file,
                duration.as_millis(),
            ))
            .map_err(ApplyError::History)?;
            tx.commit().map_err(|e| file_error(file, None, e))?;
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

/// The sink's session advisory lock; released when dropped (also while a panic
/// unwinds). The server releases it too if the session ends.
struct SessionLock<'c> {
    client: &'c mut postgres::Client,
    key: i64,
    held: bool,
}

impl<'c> SessionLock<'c> {
    fn acquire(
        client: &'c mut postgres::Client,
        migrator: &Migrator<'_>,
    ) -> Result<SessionLock<'c>, ApplyError> {
        let key = lock_key(migrator.migrations.sink());
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        let mut announced = false;
        loop {
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(ApplyError::Database)?;
            if row.get::<_, bool>(0) {
                return Ok(SessionLock {
                    client,
                    key,
                    held: true,
                });
            }
            let waited = started.elapsed();
            if waited >= migrator.options.lock_wait {
                return Err(ApplyError::LockTimeout {
                    sink: migrator.migrations.sink().to_string(),
                    waited,
                });
            }
            if !announced {
                migrator.emit(ApplyEvent::WaitingForLock);
                announced = true;
            }
            std::thread::sleep(pause.min(migrator.options.lock_wait.saturating_sub(waited)));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    fn client(&mut self) -> &mut postgres::Client {
        self.client
    }

    fn release(&mut self) -> Result<(), ApplyError> {
        if self.held {
            self.held = false;
            self.client
                .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
                .map_err(ApplyError::Database)?;
        }
        Ok(())
    }
}

impl Drop for SessionLock<'_> {
    fn drop(&mut self) {
        if self.held && !self.client.is_closed() {
            let _ = self
                .client
                .execute("SELECT pg_advisory_unlock($1)", &[&self.key]);
        }
    }
}
