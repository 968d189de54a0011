//! The blocking driver: executes the engine's commands on a `postgres::Client`.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::engine::{
    drive, simple_rows, typed_rows, ApplyRun, Cleanup, Command, Connection, HistoryRead, Param,
    Reply,
};
use crate::error::ApplyError;
use crate::plan::{status_of, ApplyReport, FileStatus, History};
use crate::Migrator;

impl Migrator<'_> {
    /// Reads the sink's history; an absent table reads as empty.
    pub fn read_history(&self, client: &mut postgres::Client) -> Result<History, ApplyError> {
        run_blocking(drive(Blocking(client), HistoryRead::of(self)))
    }

    /// Every file's status (applied, pending, modified) without changing anything.
    pub fn status(&self, client: &mut postgres::Client) -> Result<Vec<FileStatus>, ApplyError> {
        let history = self.read_history(client)?;
        Ok(status_of(self.migrations, &history))
    }

    /// Verifies every file, then applies what is pending. The client is used
    /// exclusively by this run: the sink's session advisory lock is held on it
    /// until the run ends, on every path (a panic included).
    pub fn apply(&self, client: &mut postgres::Client) -> Result<ApplyReport, ApplyError> {
        run_blocking(drive(Blocking(client), ApplyRun::new(self, Instant::now())))
    }
}

/// A blocking client: every command is done when its future is first polled.
struct Blocking<'c>(&'c mut postgres::Client);

impl Blocking<'_> {
    fn send(&mut self, command: &Command) -> Reply {
        match command {
            Command::Simple(sql) => self.0.simple_query(sql).map(simple_rows),
            Command::Bound { sql, params } => self
                .0
                .query_typed(sql, &Param::typed(params))
                .and_then(typed_rows),
        }
    }
}

impl Connection for Blocking<'_> {
    async fn execute(&mut self, command: &Command) -> Reply {
        self.send(command)
    }

    async fn pause(&mut self, pause: Duration) {
        std::thread::sleep(pause);
    }

    fn abandon(&mut self, held: Cleanup) {
        if self.0.is_closed() {
            return;
        }
        for command in held.commands() {
            let _ = self.send(&command);
        }
    }
}

/// Runs the engine's loop over a [`Blocking`] client to its end. Its futures
/// never wait (each blocks until done instead), so one poll completes it; the
/// no-op waker is never woken.
fn run_blocking<F: Future>(run: F) -> F::Output {
    let mut run = std::pin::pin!(run);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = run.as_mut().poll(&mut context) {
            return output;
        }
    }
}
