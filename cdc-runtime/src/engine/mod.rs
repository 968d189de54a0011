//! The apply engine without IO: what to send, in which order, how long to wait and what each answer means.
//!
//! The engine never touches a connection. A protocol ([`ApplyRun`], and the
//! [`HistoryRead`] and per-file steps it is made of) hands out one [`Action`]
//! at a time: run a [`Command`] and [`complete`](Protocol::complete) the
//! protocol with the rows or the error, sleep, or stop and
//! [`finish`](Protocol::finish). The plan, the per-file steps, the lock-wait
//! policy and the error mapping live here once, as `quinn-proto` sits under
//! `quinn`; so does the loop that runs a protocol ([`drive()`]) and the guard
//! that, when a run is cut short (a panic in an observer, a dropped future),
//! rolls back and releases the lock ([`Protocol::cleanup`]).
//!
//! The drivers only execute: `crate::apply` sends each command on a blocking
//! `postgres::Client`, `crate::apply_async` on a `tokio_postgres::Client`.

mod drive;
mod file;
mod history;
mod lock_wait;
mod run;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage};

use crate::error::ApplyError;
use crate::MigrateOptions;

pub(crate) use drive::{drive, Connection};
pub(crate) use history::HistoryRead;
pub(crate) use run::ApplyRun;

/// What a protocol asks its driver to do next.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Send this and pass the answer to [`Protocol::complete`].
    Run(Command),
    /// Wait this long, then poll again.
    Sleep(Duration),
    /// Nothing more to send: call [`Protocol::finish`].
    Finished,
}

/// One request to the server; every command is one round trip. A command owns
/// its text and values (a statement's text is copied once, as the driver
/// copies it into its send buffer anyway), so that it borrows nothing from the
/// protocol that issued it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Simple protocol: one or more statements, no parameters.
    Simple(Cow<'static, str>),
    /// One statement with typed parameters, parsed, bound and executed in one
    /// round trip (the unnamed statement; nothing is prepared).
    Bound {
        /// The statement, with `$1, $2, ...`.
        sql: &'static str,
        /// The values.
        params: Vec<Param>,
    },
}

/// A value bound to a [`Command::Bound`] statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// `text`.
    Text(String),
    /// `bigint`.
    BigInt(i64),
}

impl Param {
    /// The parameters as the drivers' `query_typed` takes them.
    pub(crate) fn typed(params: &[Param]) -> Vec<(&(dyn ToSql + Sync), Type)> {
        params
            .iter()
            .map(|param| match param {
                Param::Text(text) => (text as &(dyn ToSql + Sync), Type::TEXT),
                Param::BigInt(number) => (number as &(dyn ToSql + Sync), Type::INT8),
            })
            .collect()
    }
}

/// The rows a command returned, every value in PostgreSQL's text format
/// (`t`/`f` for booleans), whichever protocol carried them.
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// The answer to a [`Command`].
pub(crate) type Reply = Result<Rows, tokio_postgres::Error>;

/// The rows of a simple-protocol answer.
pub(crate) fn simple_rows(messages: Vec<SimpleQueryMessage>) -> Rows {
    messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The rows of an extended-protocol answer; the engine selects only `text`
/// and `boolean` columns.
pub(crate) fn typed_rows(rows: Vec<Row>) -> Reply {
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    if *row.columns()[i].type_() == Type::BOOL {
                        Ok(row
                            .try_get::<_, Option<bool>>(i)?
                            .map(|b| if b { "t" } else { "f" }.to_string()))
                    } else {
                        row.try_get::<_, Option<String>>(i)
                    }
                })
                .collect()
        })
        .collect()
}

/// A conversation with the server that a driver executes.
pub(crate) trait Protocol {
    /// What the protocol yields when it went well.
    type Output;

    /// The next thing to do; `now` drives the lock-wait policy and the timings.
    fn poll(&mut self, now: Instant) -> Action;

    /// The answer to the command of the last [`Action::Run`], received at `now`.
    fn complete(&mut self, reply: Reply, now: Instant);

    /// What the session holds right now, should the driver stop here.
    fn cleanup(&self) -> Cleanup;

    /// The result, once [`Protocol::poll`] said [`Action::Finished`].
    fn finish(self) -> Result<Self::Output, ApplyError>;
}

/// What a session holds that a driver stopping early must let go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cleanup {
    /// A transaction is (or may be) open.
    pub(crate) rollback: bool,
    /// The sink's session advisory lock is held under this key.
    pub(crate) unlock: Option<i64>,
}

impl Cleanup {
    /// The commands that release it, in order; none when nothing is held.
    pub(crate) fn commands(self) -> Vec<Command> {
        let mut commands = Vec::new();
        if self.rollback {
            commands.push(Command::Simple(Cow::Borrowed(ROLLBACK)));
        }
        if let Some(key) = self.unlock {
            commands.push(unlock(key));
        }
        commands
    }
}

pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// Releases the sink's session advisory lock.
pub(crate) fn unlock(key: i64) -> Command {
    Command::Bound {
        sql: "SELECT pg_advisory_unlock($1)",
        params: vec![Param::BigInt(key)],
    }
}

/// The `SET LOCAL` statements that bound every transaction of a run.
///
/// `synchronous` is off for every file but the last: the last commit flushes
/// the WAL of all of them, so the run ends durable.
pub(crate) fn local_settings(options: &MigrateOptions, synchronous: bool) -> String {
    // client_connection_check_interval (PostgreSQL 14+): a migrator killed in
    // the middle of a long statement is noticed within a second, its
    // transaction rolled back and its locks freed, instead of the server
    // finishing the statement for nobody while the next migrator waits.
    format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; SET LOCAL synchronous_commit = {}; \
         SET LOCAL client_connection_check_interval = 1000",
        options.statement_timeout.as_millis(),
        options.lock_timeout.as_millis(),
        if synchronous { "on" } else { "off" }
    )
}

#[cfg(test)]
mod tests;
