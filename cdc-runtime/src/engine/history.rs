//! The migration history as the engine reads and writes it: the boot digest, the sink's rows, the row of an applied file.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::Instant;

use cdc_core::checksum::Checksum;
use cdc_core::layout::MANAGEMENT_SCHEMA;
use cdc_core::{MigrationFile, Migrations};
use tokio_postgres::error::SqlState;

use super::{
    local_settings, Action, Cleanup, Command, Param, Protocol, Reply, Rows, COMMIT, ROLLBACK,
};
use crate::error::ApplyError;
use crate::plan::{History, HistoryRow};
use crate::Migrator;

/// The history table's name inside [`MANAGEMENT_SCHEMA`], as `cdc_core::history::history_ddl()` creates it.
const HISTORY_TABLE: &str = "migration_history";

fn history_table() -> String {
    format!("\"{MANAGEMENT_SCHEMA}\".\"{HISTORY_TABLE}\"")
}

/// The sink's rows; `$1` is the sink.
static READ_HISTORY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT file_name, checksum, applied_at::text FROM {} WHERE sink = $1",
        history_table()
    )
});

/// Records a file as applied; `$1` sink, `$2` file, `$3` checksum, `$4`
/// category, `$5` execution time in milliseconds.
static RECORD_APPLIED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO {} (sink, file_name, checksum, category, applied_at, execution_ms) \
         VALUES ($1, $2, $3, $4, now(), $5) \
         ON CONFLICT (sink, file_name) DO UPDATE SET checksum = EXCLUDED.checksum, category = EXCLUDED.category, \
         applied_at = EXCLUDED.applied_at, execution_ms = EXCLUDED.execution_ms",
        history_table()
    )
});

/// The query behind the boot fast path: per sink, the count and a digest of
/// its `(file_name, checksum)` rows, computed by the server, so that a boot
/// with nothing to do transfers one short row per sink however many files
/// there are. It takes no value: the sink's row is picked out by
/// [`digest_matches`], so the query fits the one simple-protocol batch that
/// also opens and closes its bounded read-only transaction (one round trip;
/// the simple protocol has no parameters, and nothing is spliced into it).
///
/// Binding the sink instead would take the extended protocol, which the
/// blocking `postgres::Client` cannot pipeline behind `BEGIN READ ONLY; SET
/// LOCAL ...` and `COMMIT`: three round trips. The price of taking no value
/// is that the server digests the rows of every sink of the database, which
/// usually holds one.
static DIGEST_PER_SINK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT sink, count(*)::text, encode(sha256(convert_to(string_agg(file_name || E'\\t' || checksum, E'\\n' \
         ORDER BY file_name COLLATE \"C\"), 'UTF8')), 'hex') FROM {} GROUP BY sink",
        history_table()
    )
});

/// The fast-path batch: a bounded read-only transaction around [`DIGEST_PER_SINK`].
pub(crate) fn digest_check(settings: &str) -> Command {
    Command::Simple(Cow::Owned(format!(
        "BEGIN READ ONLY; {settings}; {}; {COMMIT}",
        *DIGEST_PER_SINK
    )))
}

/// What the digest row of the sink reads when every file of the set is
/// applied and the history holds nothing else for the sink: `(count, digest)`.
pub(crate) fn expected_digest(migrations: &Migrations) -> (String, String) {
    let mut rows: Vec<(&str, String)> = migrations
        .files()
        .iter()
        .map(|f| (f.path.as_ref(), f.checksum.to_string()))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = String::with_capacity(rows.len() * 110);
    for (i, (path, checksum)) in rows.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(path);
        text.push('\t');
        text.push_str(checksum);
    }
    (
        rows.len().to_string(),
        cdc_core::checksum::body_checksum(&text).hex(),
    )
}

/// Whether the digest rows say every file of the sink is applied.
pub(crate) fn digest_matches(rows: &Rows, sink: &str, expected: &(String, String)) -> bool {
    rows.iter().any(|row| match row.as_slice() {
        [Some(row_sink), Some(count), Some(digest)] => {
            row_sink == sink && *count == expected.0 && *digest == expected.1
        }
        _ => false,
    })
}

/// The statement that records a file as applied, with its history row's values bound.
pub(crate) fn record_applied(sink: &str, file: &MigrationFile, execution_ms: i64) -> Command {
    Command::Bound {
        sql: RECORD_APPLIED.as_str(),
        params: vec![
            Param::Text(sink.to_string()),
            Param::Text(file.path.to_string()),
            Param::Text(file.checksum.to_string()),
            Param::Text(file.category.as_str().to_string()),
            Param::BigInt(execution_ms),
        ],
    }
}

/// Whether an error means "the history table is not there (in our shape) yet".
fn is_missing_history(error: &tokio_postgres::Error) -> bool {
    matches!(error.code(), Some(code) if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::UNDEFINED_COLUMN || *code == SqlState::INVALID_SCHEMA_NAME)
}

/// History rows from the answer to [`READ_HISTORY`].
fn parse_history(rows: Rows) -> History {
    let mut history = History::new();
    for row in rows {
        if let [Some(name), Some(checksum), applied_at] = row.as_slice() {
            history.insert(
                name.clone(),
                HistoryRow {
                    checksum: Checksum::parse(checksum.trim()),
                    applied_at: applied_at.clone().unwrap_or_default(),
                },
            );
        }
    }
    history
}

/// Where a [`HistoryRead`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadStep {
    Begin,
    Query,
    Commit,
    Rollback,
    Done,
}

/// Reads the sink's history in a bounded read-only transaction; an absent
/// table (or the older tool's, without a `sink` column) reads as empty.
#[derive(Debug)]
pub(crate) struct HistoryRead<'r> {
    sink: &'r str,
    settings: String,
    step: ReadStep,
    history: History,
    failure: Option<ApplyError>,
}

impl<'r> HistoryRead<'r> {
    /// A read of the migrator's sink under its limits.
    pub(crate) fn of(migrator: &'r Migrator<'_>) -> HistoryRead<'r> {
        HistoryRead::new(
            migrator.migrations.sink(),
            local_settings(&migrator.options, true),
        )
    }

    /// A read of `sink`'s rows under the `SET LOCAL` `settings`.
    pub(crate) fn new(sink: &'r str, settings: String) -> HistoryRead<'r> {
        HistoryRead {
            sink,
            settings,
            step: ReadStep::Begin,
            history: History::new(),
            failure: None,
        }
    }

    fn fail(&mut self, error: tokio_postgres::Error) {
        if is_missing_history(&error) {
            self.history.clear();
        } else {
            self.failure = Some(ApplyError::History(error));
        }
        self.step = ReadStep::Rollback;
    }
}

impl Protocol for HistoryRead<'_> {
    type Output = History;

    fn poll(&mut self, _now: Instant) -> Action {
        Action::Run(match self.step {
            ReadStep::Begin => {
                Command::Simple(Cow::Owned(format!("BEGIN READ ONLY; {}", self.settings)))
            }
            ReadStep::Query => Command::Bound {
                sql: READ_HISTORY.as_str(),
                params: vec![Param::Text(self.sink.to_string())],
            },
            ReadStep::Commit => Command::Simple(Cow::Borrowed(COMMIT)),
            ReadStep::Rollback => Command::Simple(Cow::Borrowed(ROLLBACK)),
            ReadStep::Done => return Action::Finished,
        })
    }

    fn complete(&mut self, reply: Reply, _now: Instant) {
        match (self.step, reply) {
            (ReadStep::Begin, Ok(_)) => self.step = ReadStep::Query,
            (ReadStep::Query, Ok(rows)) => {
                self.history = parse_history(rows);
                self.step = ReadStep::Commit;
            }
            (ReadStep::Begin | ReadStep::Query, Err(error)) => self.fail(error),
            (ReadStep::Commit, Err(error)) => {
                self.failure = Some(ApplyError::History(error));
                self.step = ReadStep::Done;
            }
            (ReadStep::Commit | ReadStep::Rollback | ReadStep::Done, _) => {
                self.step = ReadStep::Done;
            }
        }
    }

    fn cleanup(&self) -> Cleanup {
        Cleanup {
            // Once BEGIN is sent, a transaction may be open until COMMIT or ROLLBACK answers.
            rollback: self.step != ReadStep::Done,
            unlock: None,
        }
    }

    fn finish(self) -> Result<History, ApplyError> {
        match self.failure {
            Some(error) => Err(error),
            None => Ok(self.history),
        }
    }
}
