//! One apply run as a state machine: verify, fast path, history, lock, each pending file in its transaction, release.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use cdc_core::history::history_ddl;
use cdc_core::Migrations;
use tracing::{debug, info, info_span, warn, Span};

use super::file::FileApply;
use super::history::{digest_check, digest_matches, expected_digest, HistoryRead};
use super::lock_wait::{AfterRefusal, LockWait};
use super::{
    local_settings, unlock, Action, Cleanup, Command, Param, Protocol, Reply, COMMIT, ROLLBACK,
};
use crate::error::ApplyError;
use crate::plan::{
    anything_to_apply, history_ddl_lock_key, lock_key, outcome_for, pending_count, status_of,
    verify_all, ApplyEvent, ApplyReport, FileOutcome, FileStatus, Outcome,
};
use crate::Migrator;

/// Where a run is.
#[derive(Debug)]
enum Stage<'r> {
    /// Check every checksum before anything is sent.
    Verify,
    /// One round trip: is everything applied already?
    FastPath,
    /// The fast-path batch failed (no history table yet): end its transaction.
    FastPathRollback,
    /// Reading the sink's history, before (`locked: false`) or under the lock.
    Read {
        read: Box<HistoryRead<'r>>,
        locked: bool,
    },
    /// Try to take the sink's session advisory lock.
    TryLock,
    /// The lock was refused: wait before the next try.
    Pause(Duration),
    /// Create or adopt the history table, serialised by a transaction lock.
    CreateHistory,
    CommitHistory,
    /// Apply the next pending file at or after this index of the plan.
    NextFile(usize),
    /// Applying the file at `index` of the plan.
    File {
        apply: Box<FileApply<'r>>,
        index: usize,
    },
    /// End the transaction a failure left open.
    Rollback,
    /// Release the sink's lock.
    Release,
    Done,
}

/// One apply run of a sink (DESIGN.md §6), without IO.
#[derive(Debug)]
pub(crate) struct ApplyRun<'r> {
    migrator: &'r Migrator<'r>,
    span: Span,
    started: Instant,
    stage: Stage<'r>,
    lock_key: i64,
    lock_wait: Option<LockWait>,
    holds_lock: bool,
    in_transaction: bool,
    /// Every file's status under the lock, in apply order.
    plan: Vec<FileStatus>,
    /// How many files this run applies, and how many it has started.
    to_apply: usize,
    applying: usize,
    outcomes: Vec<FileOutcome>,
    failure: Option<ApplyError>,
    total: Duration,
}

impl<'r> ApplyRun<'r> {
    /// A run of `migrator`'s files, starting at `now`.
    pub(crate) fn new(migrator: &'r Migrator<'r>, now: Instant) -> ApplyRun<'r> {
        let sink = migrator.migrations.sink();
        ApplyRun {
            migrator,
            span: info_span!("cdc_apply", sink),
            started: now,
            stage: Stage::Verify,
            lock_key: lock_key(sink),
            lock_wait: None,
            holds_lock: false,
            in_transaction: false,
            plan: Vec::new(),
            to_apply: 0,
            applying: 0,
            outcomes: Vec::new(),
            failure: None,
            total: Duration::ZERO,
        }
    }

    fn migrations(&self) -> &'r Migrations {
        self.migrator.migrations
    }

    fn settings(&self, synchronous: bool) -> String {
        local_settings(&self.migrator.options, synchronous)
    }

    fn history_read(&self, locked: bool) -> Stage<'r> {
        Stage::Read {
            read: Box::new(HistoryRead::of(self.migrator)),
            locked,
        }
    }

    /// Stops the run with `error`, rolling back the open transaction first
    /// when `rollback`; the lock is released either way.
    fn fail(&mut self, error: ApplyError, rollback: bool) {
        self.failure = Some(error);
        self.stage = if rollback {
            Stage::Rollback
        } else {
            self.after_transaction()
        };
    }

    /// No transaction is open any more: release the lock, if held, and stop.
    fn after_transaction(&mut self) -> Stage<'r> {
        self.in_transaction = false;
        if self.holds_lock {
            Stage::Release
        } else {
            Stage::Done
        }
    }

    fn skip_everything(&mut self) {
        self.outcomes = self
            .migrations()
            .files()
            .iter()
            .map(FileOutcome::skipped)
            .collect();
        self.stage = Stage::Done;
    }

    fn read_finished(&mut self, now: Instant) {
        let Stage::Read { read, locked } = std::mem::replace(&mut self.stage, Stage::Done) else {
            return;
        };
        let history = match read.finish() {
            Ok(history) => history,
            Err(error) => return self.fail(error, false),
        };
        let statuses = status_of(self.migrations(), &history);
        if locked {
            self.to_apply = pending_count(&statuses);
            self.plan = statuses;
            self.stage = Stage::NextFile(0);
        } else if anything_to_apply(&statuses) {
            self.lock_wait = Some(LockWait::new(self.migrator.options.lock_wait, now));
            self.stage = Stage::TryLock;
        } else {
            info!("nothing to apply: every file is applied");
            self.skip_everything();
        }
    }

    /// Starts the next pending file at or after `from`, recording the skipped
    /// ones on the way; releases the lock when the plan is done.
    fn start_next_file(&mut self, from: usize, now: Instant) {
        let files = self.migrations().files();
        for (index, (status, file)) in self.plan.iter().zip(files).enumerate().skip(from) {
            let outcome = outcome_for(&status.state);
            if outcome == Outcome::Skipped {
                self.outcomes.push(FileOutcome::skipped(file));
                continue;
            }
            self.applying += 1;
            self.migrator.emit(ApplyEvent::Applying {
                path: &file.path,
                index: self.applying,
                total: self.to_apply,
            });
            let settings = self.settings(self.applying == self.to_apply);
            let sink = self.migrations().sink();
            self.stage = Stage::File {
                apply: Box::new(FileApply::new(sink, file, outcome, &settings, now)),
                index,
            };
            return;
        }
        self.stage = self.after_transaction();
    }

    fn file_finished(&mut self) {
        let Stage::File { apply, index } = std::mem::replace(&mut self.stage, Stage::Done) else {
            return;
        };
        match apply.finish() {
            Ok(outcome) => {
                self.outcomes.push(outcome);
                self.stage = Stage::NextFile(index + 1);
            }
            // The file rolled its own transaction back.
            Err(error) => self.fail(error, false),
        }
    }

    fn lock_refused(&mut self, now: Instant) {
        let Some(wait) = &mut self.lock_wait else {
            self.stage = Stage::Done;
            return;
        };
        match wait.refused(now) {
            AfterRefusal::Retry { pause, first } => {
                if first {
                    info!(
                        limit_ms = millis(self.migrator.options.lock_wait),
                        "waiting for another migrator of the sink to release the migration lock"
                    );
                    self.migrator.emit(ApplyEvent::WaitingForLock);
                }
                self.stage = Stage::Pause(pause);
            }
            AfterRefusal::GiveUp { waited } => {
                warn!(
                    waited_ms = millis(waited),
                    "gave up waiting for the migration lock"
                );
                let sink = self.migrations().sink().to_string();
                self.fail(ApplyError::LockTimeout { sink, waited }, false);
            }
        }
    }

    fn lock_acquired(&mut self, now: Instant) {
        self.holds_lock = true;
        match &self.lock_wait {
            Some(wait) if wait.was_refused() => info!(
                waited_ms = millis(wait.waited(now)),
                "migration lock acquired after waiting"
            ),
            _ => debug!("migration lock acquired"),
        }
        self.stage = Stage::CreateHistory;
    }

    fn finish_run(&mut self, now: Instant) {
        self.total = now.saturating_duration_since(self.started);
        if self.failure.is_none() {
            let count = |outcome| {
                self.outcomes
                    .iter()
                    .filter(|f| f.outcome == outcome)
                    .count()
            };
            info!(
                new = count(Outcome::New),
                updated = count(Outcome::Updated),
                skipped = count(Outcome::Skipped),
                total_ms = millis(self.total),
                "apply finished"
            );
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The first value of the first row.
fn first_value(rows: &super::Rows) -> Option<&str> {
    rows.first()?.first()?.as_deref()
}

impl Protocol for ApplyRun<'_> {
    type Output = ApplyReport;

    fn poll(&mut self, now: Instant) -> Action {
        let span = self.span.clone();
        let _entered = span.enter();
        loop {
            let command = match &mut self.stage {
                Stage::Verify => {
                    match verify_all(self.migrations()) {
                        Ok(()) => self.stage = Stage::FastPath,
                        Err(error) => self.fail(error, false),
                    }
                    continue;
                }
                Stage::FastPath => {
                    self.in_transaction = true;
                    digest_check(&self.settings(true))
                }
                Stage::FastPathRollback => Command::Simple(Cow::Borrowed(ROLLBACK)),
                Stage::Read { read, .. } => match read.poll(now) {
                    Action::Finished => {
                        self.read_finished(now);
                        continue;
                    }
                    action => return action,
                },
                Stage::TryLock => Command::Bound {
                    sql: "SELECT pg_try_advisory_lock($1)",
                    params: vec![Param::BigInt(self.lock_key)],
                },
                Stage::Pause(pause) => {
                    let pause = *pause;
                    self.stage = Stage::TryLock;
                    return Action::Sleep(pause);
                }
                Stage::CreateHistory => {
                    self.in_transaction = true;
                    Command::Simple(Cow::Owned(format!(
                        "BEGIN; {}; SELECT pg_advisory_xact_lock({});\n{}",
                        self.settings(true),
                        history_ddl_lock_key(),
                        history_ddl()
                    )))
                }
                Stage::CommitHistory => Command::Simple(Cow::Borrowed(COMMIT)),
                Stage::NextFile(from) => {
                    let from = *from;
                    self.start_next_file(from, now);
                    continue;
                }
                Stage::File { apply, .. } => match apply.poll(now) {
                    Action::Finished => {
                        self.file_finished();
                        continue;
                    }
                    action => return action,
                },
                Stage::Rollback => Command::Simple(Cow::Borrowed(ROLLBACK)),
                Stage::Release => unlock(self.lock_key),
                Stage::Done => {
                    self.finish_run(now);
                    return Action::Finished;
                }
            };
            return Action::Run(command);
        }
    }

    fn complete(&mut self, reply: Reply, now: Instant) {
        let span = self.span.clone();
        let _entered = span.enter();
        match &mut self.stage {
            Stage::FastPath => match reply {
                Ok(rows) => {
                    self.in_transaction = false;
                    let expected = expected_digest(self.migrations());
                    if digest_matches(&rows, self.migrations().sink(), &expected) {
                        info!(
                            files = self.migrations().files().len(),
                            "every file is applied (fast path, one round trip)"
                        );
                        self.skip_everything();
                    } else {
                        debug!("the history differs from the files: reading it");
                        self.stage = self.history_read(false);
                    }
                }
                Err(error) => {
                    debug!(%error, "no digest of the history (not created yet?)");
                    self.stage = Stage::FastPathRollback;
                }
            },
            Stage::FastPathRollback => {
                self.in_transaction = false;
                self.stage = self.history_read(false);
            }
            Stage::Read { read, .. } => read.complete(reply, now),
            Stage::TryLock => match reply {
                Ok(rows) if first_value(&rows) == Some("t") => self.lock_acquired(now),
                Ok(_) => self.lock_refused(now),
                Err(error) => self.fail(ApplyError::Database(error), false),
            },
            Stage::CreateHistory => match reply {
                Ok(_) => self.stage = Stage::CommitHistory,
                Err(error) => self.fail(ApplyError::History(error), true),
            },
            Stage::CommitHistory => match reply {
                Ok(_) => {
                    self.in_transaction = false;
                    self.stage = self.history_read(true);
                }
                Err(error) => {
                    self.in_transaction = false;
                    self.fail(ApplyError::History(error), false);
                }
            },
            Stage::File { apply, .. } => apply.complete(reply, now),
            Stage::Rollback => self.stage = self.after_transaction(),
            Stage::Release => {
                self.holds_lock = false;
                if let (Err(error), None) = (reply, &self.failure) {
                    self.failure = Some(ApplyError::Database(error));
                }
                self.stage = Stage::Done;
            }
            Stage::Verify | Stage::Pause(_) | Stage::NextFile(_) | Stage::Done => {}
        }
    }

    fn cleanup(&self) -> Cleanup {
        let nested = match &self.stage {
            Stage::Read { read, .. } => read.cleanup().rollback,
            Stage::File { apply, .. } => apply.cleanup().rollback,
            _ => false,
        };
        Cleanup {
            rollback: self.in_transaction || nested,
            unlock: self.holds_lock.then_some(self.lock_key),
        }
    }

    fn finish(self) -> Result<ApplyReport, ApplyError> {
        match self.failure {
            Some(error) => Err(error),
            None => Ok(ApplyReport {
                sink: self.migrations().sink().to_string(),
                files: self.outcomes,
                total: self.total,
            }),
        }
    }
}
