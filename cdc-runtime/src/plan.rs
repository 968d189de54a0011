//! What a run will do and what it did: pure functions over the files and the
//! history, shared by the sync and async drivers, the CLI and the tests.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use cdc_core::checksum::Checksum;
use cdc_core::history::MANAGEMENT_SCHEMA;
use cdc_core::{FileCategory, MigrationFile, Migrations};
use sha2_free::stable_key;

use crate::error::ApplyError;

/// One row of `cdc_management.migration_history` for the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The recorded checksum (`None` when the text is not a checksum).
    pub checksum: Option<Checksum>,
    /// When the file was applied, as the server printed it.
    pub applied_at: String,
}

/// The sink's history: file name → row.
pub type History = HashMap<String, HistoryRow>;

/// Where a file stands against the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Applied with this very checksum.
    Applied {
        /// When.
        applied_at: String,
    },
    /// Never applied.
    Pending,
    /// Applied with another checksum: the file was regenerated and will be re-applied.
    Modified {
        /// When the older version was applied.
        applied_at: String,
    },
}

impl FileState {
    /// `applied`, `pending` or `modified`.
    pub fn label(&self) -> &'static str {
        match self {
            FileState::Applied { .. } => "applied",
            FileState::Pending => "pending",
            FileState::Modified { .. } => "modified",
        }
    }
}

/// One file's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Path relative to the sink directory.
    pub path: String,
    /// What the file holds.
    pub category: FileCategory,
    /// Where it stands.
    pub state: FileState,
}

/// The status of every file of a sink, in apply order.
pub fn status_of(migrations: &Migrations, history: &History) -> Vec<FileStatus> {
    migrations
        .files()
        .iter()
        .map(|file| FileStatus {
            path: file.path.to_string(),
            category: file.category,
            state: match history.get(file.path.as_ref()) {
                None => FileState::Pending,
                Some(row) if row.checksum == Some(file.checksum) => FileState::Applied {
                    applied_at: row.applied_at.clone(),
                },
                Some(row) => FileState::Modified {
                    applied_at: row.applied_at.clone(),
                },
            },
        })
        .collect()
}

/// Whether any file still needs applying.
pub fn anything_to_apply(statuses: &[FileStatus]) -> bool {
    statuses
        .iter()
        .any(|s| !matches!(s.state, FileState::Applied { .. }))
}

/// Verifies every file before anything touches the database; a set verified
/// when it was built (loaded from disk, or embedded and verified at compile
/// time) is not hashed again.
pub fn verify_all(migrations: &Migrations) -> Result<(), ApplyError> {
    if migrations.is_verified() {
        return Ok(());
    }
    for file in migrations.files() {
        verify_file(file)?;
    }
    Ok(())
}

pub(crate) fn verify_file(file: &MigrationFile) -> Result<(), ApplyError> {
    use cdc_core::checksum::ChecksumError;
    match file.verify() {
        Ok(()) => Ok(()),
        Err(ChecksumError::Mismatch { embedded, actual }) => Err(ApplyError::Tampered {
            file: file.path.to_string(),
            embedded,
            actual,
        }),
        Err(reason) => Err(ApplyError::Unreadable {
            file: file.path.to_string(),
            reason,
        }),
    }
}

/// What happened to one file in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied for the first time.
    New,
    /// Re-applied because its checksum changed; its history row was updated.
    Updated,
    /// Already applied with the same checksum.
    Skipped,
}

impl Outcome {
    /// `new`, `updated` or `skipped`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One file of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    /// Path relative to the sink directory.
    pub path: String,
    /// What the file holds.
    pub category: FileCategory,
    /// What happened.
    pub outcome: Outcome,
    /// Time spent applying it (zero when skipped).
    pub duration: Duration,
}

impl FileOutcome {
    /// A file this run did not need to apply.
    pub fn skipped(file: &MigrationFile) -> FileOutcome {
        FileOutcome {
            path: file.path.to_string(),
            category: file.category,
            outcome: Outcome::Skipped,
            duration: Duration::ZERO,
        }
    }
}

/// What a run does with a file in a given state.
pub fn outcome_for(state: &FileState) -> Outcome {
    match state {
        FileState::Applied { .. } => Outcome::Skipped,
        FileState::Pending => Outcome::New,
        FileState::Modified { .. } => Outcome::Updated,
    }
}

/// How many files a run will apply.
pub fn pending_count(statuses: &[FileStatus]) -> usize {
    statuses
        .iter()
        .filter(|s| outcome_for(&s.state) != Outcome::Skipped)
        .count()
}

/// The result of a successful run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// The sink.
    pub sink: String,
    /// Every file, in apply order.
    pub files: Vec<FileOutcome>,
    /// Wall time of the whole run.
    pub total: Duration,
}

impl ApplyReport {
    /// Files applied (new or updated) in this run.
    pub fn applied_count(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.outcome != Outcome::Skipped)
            .count()
    }

    /// Files with a given outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.files.iter().filter(|f| f.outcome == outcome).count()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(
                f,
                "{:<8} {} ({} ms)",
                file.outcome.label(),
                file.path,
                file.duration.as_millis()
            )?;
        }
        write!(
            f,
            "sink {}: {} new, {} updated, {} skipped in {} ms",
            self.sink,
            self.count(Outcome::New),
            self.count(Outcome::Updated),
            self.count(Outcome::Skipped),
            self.total.as_millis()
        )
    }
}

/// Progress of a run, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyEvent<'a> {
    /// Waiting for another migrator's lock.
    WaitingForLock,
    /// About to apply a file (`index` of `total` files to apply).
    Applying {
        /// The file.
        path: &'a str,
        /// 1-based position among the files this run applies.
        index: usize,
        /// How many files this run applies.
        total: usize,
    },
}

/// Key of the session advisory lock that serialises migrators of one sink.
pub fn lock_key(sink: &str) -> i64 {
    stable_key(&format!("{MANAGEMENT_SCHEMA}.migration_history:{sink}"))
}

/// Key of the transaction lock taken while creating or adopting the history table.
pub fn history_ddl_lock_key() -> i64 {
    stable_key(&format!("{MANAGEMENT_SCHEMA}.migration_history:ddl"))
}

mod sha2_free {
    /// A 64-bit key from the first bytes of the text's SHA-256 (stable across
    /// versions and platforms, unlike `Hash`).
    pub fn stable_key(text: &str) -> i64 {
        let checksum = cdc_core::checksum::body_checksum(text);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&checksum.0[..8]);
        i64::from_be_bytes(bytes)
    }
}

/// A string literal for simple-protocol queries.
pub(crate) fn literal(value: &str) -> String {
    let escaped = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", escaped.replace('\\', "\\\\"))
    } else {
        format!("'{escaped}'")
    }
}

/// The query that reads a sink's history.
pub(crate) fn history_query(sink: &str) -> String {
    format!(
        "SELECT file_name, checksum, applied_at::text FROM \"cdc_management\".\"migration_history\" WHERE sink = {}",
        literal(sink)
    )
}

/// The query behind the boot fast path: the count and a digest of the sink's
/// `(file_name, checksum)` rows, computed by the server, so that a boot with
/// nothing to do transfers one short row however many files there are.
pub(crate) fn digest_query(sink: &str) -> String {
    format!(
        "SELECT count(*)::text, encode(sha256(convert_to(coalesce(string_agg(file_name || E'\\t' || checksum, E'\\n' \
         ORDER BY file_name COLLATE \"C\"), ''), 'UTF8')), 'hex') \
         FROM \"cdc_management\".\"migration_history\" WHERE sink = {}",
        literal(sink)
    )
}

/// What [`digest_query`] returns when every file of the set is applied and
/// the history holds nothing else for the sink.
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

/// Whether a digest response says everything is applied.
pub(crate) fn digest_matches(
    messages: &[tokio_postgres::SimpleQueryMessage],
    expected: &(String, String),
) -> bool {
    messages.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => {
            row.get(0) == Some(expected.0.as_str()) && row.get(1) == Some(expected.1.as_str())
        }
        _ => false,
    })
}

/// The statement that records a file as applied.
pub(crate) fn history_upsert(sink: &str, file: &MigrationFile, execution_ms: u128) -> String {
    format!(
        "INSERT INTO \"cdc_management\".\"migration_history\" (sink, file_name, checksum, category, applied_at, execution_ms) \
         VALUES ({}, {}, {}, {}, now(), {execution_ms}) \
         ON CONFLICT (sink, file_name) DO UPDATE SET checksum = EXCLUDED.checksum, category = EXCLUDED.category, \
         applied_at = EXCLUDED.applied_at, execution_ms = EXCLUDED.execution_ms",
        literal(sink),
        literal(&file.path),
        literal(&file.checksum.to_string()),
        literal(file.category.as_str()),
    )
}

/// Whether an error means "the history table is not there (in our shape) yet".
pub(crate) fn is_missing_history(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(error.code(), Some(code) if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::UNDEFINED_COLUMN || *code == SqlState::INVALID_SCHEMA_NAME)
}

/// Builds the error of a failed statement: SQLSTATE, message and the line in the file.
pub(crate) fn file_error(
    file: &MigrationFile,
    statement: Option<&crate::sql::Statement<'_>>,
    error: tokio_postgres::Error,
) -> ApplyError {
    let body = file.body();
    let first = file.body_first_line();
    let (sqlstate, message, detail, hint, position) = match error.as_db_error() {
        Some(db) => (
            db.code().code().to_string(),
            db.message().to_string(),
            db.detail().map(str::to_string),
            db.hint().map(str::to_string),
            match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                _ => None,
            },
        ),
        None => ("08000".to_string(), error.to_string(), None, None, None),
    };
    let line = statement.map(|s| {
        let within = match position {
            Some(p) => s.line_of(body, p),
            None => s.line,
        };
        first + within - 1
    });
    ApplyError::FileFailed {
        file: file.path.to_string(),
        line,
        sqlstate,
        message,
        detail,
        hint,
        source: error,
    }
}

/// Parses history rows from a simple-query response.
pub(crate) fn parse_history(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> History {
    let mut history = History::new();
    for message in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            if let (Some(name), Some(checksum)) = (row.get(0), row.get(1)) {
                history.insert(
                    name.to_string(),
                    HistoryRow {
                        checksum: Checksum::parse(checksum.trim()),
                        applied_at: row.get(2).unwrap_or_default().to_string(),
                    },
                );
            }
        }
    }
    history
}
