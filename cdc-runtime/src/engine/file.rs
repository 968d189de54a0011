//! The steps of one file: its statements and its history row in one transaction, rolled back on failure.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use cdc_core::MigrationFile;
use tracing::{info, warn};

use super::history::record_applied;
use super::{Action, Cleanup, Command, Protocol, Reply, COMMIT, ROLLBACK};
use crate::error::ApplyError;
use crate::plan::{FileOutcome, Outcome};
use crate::sql::{split_statements, Statement};

/// Where a [`FileApply`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileStep {
    /// `BEGIN` and the run's `SET LOCAL` settings, one round trip.
    Begin,
    /// The statement at this index; each goes alone, so that a failure names its line.
    Statement(usize),
    /// The history row, with its values bound.
    Record,
    Commit,
    /// A statement failed: end the transaction.
    Rollback,
    Done,
}

/// Applies one file: `BEGIN`, each statement, the history upsert, `COMMIT`.
#[derive(Debug)]
pub(crate) struct FileApply<'r> {
    sink: &'r str,
    file: &'r MigrationFile,
    statements: Vec<Statement<'r>>,
    outcome: Outcome,
    begin: String,
    started: Instant,
    step: FileStep,
    /// From `BEGIN` to the answer to `COMMIT`.
    duration: Duration,
    failure: Option<ApplyError>,
}

impl<'r> FileApply<'r> {
    /// Applies `file` of `sink` with `outcome` (new or updated), its
    /// transaction bounded by the `SET LOCAL` `settings`, starting at `now`.
    pub(crate) fn new(
        sink: &'r str,
        file: &'r MigrationFile,
        outcome: Outcome,
        settings: &str,
        now: Instant,
    ) -> FileApply<'r> {
        FileApply {
            sink,
            file,
            statements: split_statements(file.body()),
            outcome,
            begin: format!("BEGIN; {settings}"),
            started: now,
            step: FileStep::Begin,
            duration: Duration::ZERO,
            failure: None,
        }
    }

    /// The step after `BEGIN` or after statement `done` (the number of statements run).
    fn after_statements(&self, done: usize) -> FileStep {
        if done < self.statements.len() {
            FileStep::Statement(done)
        } else {
            FileStep::Record
        }
    }

    fn fail(&mut self, error: ApplyError, rollback: bool) {
        warn!(file = %self.file.path, %error, "file failed; its transaction is rolled back");
        self.failure = Some(error);
        self.step = if rollback {
            FileStep::Rollback
        } else {
            FileStep::Done
        };
    }
}

impl Protocol for FileApply<'_> {
    type Output = FileOutcome;

    fn poll(&mut self, now: Instant) -> Action {
        Action::Run(match self.step {
            FileStep::Begin => Command::Simple(Cow::Owned(self.begin.clone())),
            FileStep::Statement(i) => {
                Command::Simple(Cow::Owned(self.statements[i].text.to_string()))
            }
            FileStep::Record => {
                let execution = now.saturating_duration_since(self.started);
                let millis = i64::try_from(execution.as_millis()).unwrap_or(i64::MAX);
                record_applied(self.sink, self.file, millis)
            }
            FileStep::Commit => Command::Simple(Cow::Borrowed(COMMIT)),
            FileStep::Rollback => Command::Simple(Cow::Borrowed(ROLLBACK)),
            FileStep::Done => return Action::Finished,
        })
    }

    fn complete(&mut self, reply: Reply, now: Instant) {
        match (self.step, reply) {
            (FileStep::Begin, Ok(_)) => self.step = self.after_statements(0),
            (FileStep::Begin, Err(error)) => self.fail(ApplyError::Database(error), true),
            (FileStep::Statement(i), Ok(_)) => self.step = self.after_statements(i + 1),
            (FileStep::Statement(i), Err(error)) => {
                let error = ApplyError::file_failed(self.file, Some(&self.statements[i]), error);
                self.fail(error, true);
            }
            (FileStep::Record, Ok(_)) => self.step = FileStep::Commit,
            (FileStep::Record, Err(error)) => self.fail(ApplyError::History(error), true),
            (FileStep::Commit, Ok(_)) => {
                self.duration = now.saturating_duration_since(self.started);
                info!(
                    file = %self.file.path,
                    outcome = self.outcome.label(),
                    duration_ms = u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
                    "applied"
                );
                self.step = FileStep::Done;
            }
            // A failed COMMIT ends the transaction: nothing is left to roll back.
            (FileStep::Commit, Err(error)) => {
                self.fail(ApplyError::file_failed(self.file, None, error), false);
            }
            (FileStep::Rollback | FileStep::Done, _) => self.step = FileStep::Done,
        }
    }

    fn cleanup(&self) -> Cleanup {
        Cleanup {
            // From the moment BEGIN is sent until COMMIT or ROLLBACK answers.
            rollback: self.step != FileStep::Done,
            unlock: None,
        }
    }

    fn finish(self) -> Result<FileOutcome, ApplyError> {
        match self.failure {
            Some(error) => Err(error),
            None => Ok(FileOutcome {
                path: self.file.path.to_string(),
                category: self.file.category,
                outcome: self.outcome,
                duration: self.duration,
            }),
        }
    }
}
