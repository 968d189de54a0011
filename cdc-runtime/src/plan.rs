//! What a run will do and what it did: the statuses, outcomes and reports, pure functions over the files and the history.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use cdc_core::checksum::{Checksum, ChecksumError};
use cdc_core::layout::MANAGEMENT_SCHEMA;
use cdc_core::{FileCategory, MigrationFile, Migrations};

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
///
/// As JSON (feature `serde`) it is two fields of its [`FileStatus`]:
/// `"state"` (its [`label`](FileState::label)) and `"applied_at"` (null when pending).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(into = "FileStateJson")
)]
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

    /// When the file (or an older version of it) was applied.
    pub fn applied_at(&self) -> Option<&str> {
        match self {
            FileState::Applied { applied_at } | FileState::Modified { applied_at } => {
                Some(applied_at)
            }
            FileState::Pending => None,
        }
    }
}

/// The JSON shape of a [`FileState`].
#[cfg(feature = "serde")]
#[derive(serde::Serialize)]
struct FileStateJson {
    state: &'static str,
    applied_at: Option<String>,
}

#[cfg(feature = "serde")]
impl From<FileState> for FileStateJson {
    fn from(state: FileState) -> FileStateJson {
        FileStateJson {
            state: state.label(),
            applied_at: state.applied_at().map(str::to_string),
        }
    }
}

/// One file's status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FileStatus {
    /// Path relative to the sink directory.
    pub path: String,
    /// What the file holds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "json::category"))]
    pub category: FileCategory,
    /// Where it stands.
    #[cfg_attr(feature = "serde", serde(flatten))]
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
    migrations.files().iter().try_for_each(verify_file)
}

/// Checks one file's checksum against its body.
pub(crate) fn verify_file(file: &MigrationFile) -> Result<(), ApplyError> {
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
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
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
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FileOutcome {
    /// Path relative to the sink directory.
    pub path: String,
    /// What the file holds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "json::category"))]
    pub category: FileCategory,
    /// What happened.
    pub outcome: Outcome,
    /// Time spent applying it (zero when skipped); `duration_ms` in JSON.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "duration_ms", serialize_with = "json::millis")
    )]
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
///
/// As JSON (feature `serde`): `sink`, `files`, the counts `new`, `updated`,
/// `skipped`, and `total_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(into = "ApplyReportJson")
)]
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

/// The JSON shape of an [`ApplyReport`]: its fields and the counts per outcome.
#[cfg(feature = "serde")]
#[derive(serde::Serialize)]
struct ApplyReportJson {
    sink: String,
    files: Vec<FileOutcome>,
    new: usize,
    updated: usize,
    skipped: usize,
    #[serde(serialize_with = "json::millis")]
    total_ms: Duration,
}

#[cfg(feature = "serde")]
impl From<ApplyReport> for ApplyReportJson {
    fn from(report: ApplyReport) -> ApplyReportJson {
        ApplyReportJson {
            new: report.count(Outcome::New),
            updated: report.count(Outcome::Updated),
            skipped: report.count(Outcome::Skipped),
            total_ms: report.total,
            sink: report.sink,
            files: report.files,
        }
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
///
/// The text it hashes is part of the contract between versions: migrators of
/// two releases booting at once must agree on it.
pub fn lock_key(sink: &str) -> i64 {
    stable_key(&format!("{MANAGEMENT_SCHEMA}.migration_history:{sink}"))
}

/// Key of the transaction lock taken while creating or adopting the history table.
pub fn history_ddl_lock_key() -> i64 {
    stable_key(&format!("{MANAGEMENT_SCHEMA}.migration_history:ddl"))
}

/// A 64-bit key from the first bytes of the text's SHA-256 (stable across
/// versions and platforms, unlike `Hash`).
fn stable_key(text: &str) -> i64 {
    let checksum = cdc_core::checksum::body_checksum(text);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&checksum.0[..8]);
    i64::from_be_bytes(bytes)
}

/// Field serialisers of the JSON shapes.
#[cfg(feature = "serde")]
mod json {
    use std::time::Duration;

    use cdc_core::FileCategory;

    pub(super) fn category<S: serde::Serializer>(
        category: &FileCategory,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(category.as_str())
    }

    pub(super) fn millis<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_across_releases() {
        // Migrators of two releases booting at once must take the same lock.
        assert_eq!(
            lock_key("sink_asma.directory"),
            lock_key("sink_asma.directory")
        );
        assert_ne!(
            lock_key("sink_asma.directory"),
            lock_key("sink_asma.billing")
        );
        assert_eq!(
            lock_key("sink_asma.directory"),
            stable_key("cdc_management.migration_history:sink_asma.directory")
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn reports_serialise_with_the_field_names_the_cli_prints() {
        let report = ApplyReport {
            sink: "s".into(),
            files: vec![FileOutcome {
                path: "01-tables/A.sql".into(),
                category: FileCategory::Table,
                outcome: Outcome::New,
                duration: Duration::from_millis(12),
            }],
            total: Duration::from_millis(30),
        };
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "sink": "s",
                "files": [{"path": "01-tables/A.sql", "category": "table", "outcome": "new", "duration_ms": 12}],
                "new": 1, "updated": 0, "skipped": 0, "total_ms": 30
            })
        );
        let statuses = [
            FileStatus {
                path: "a".into(),
                category: FileCategory::Infrastructure,
                state: FileState::Applied {
                    applied_at: "2026-01-01 00:00:00+00".into(),
                },
            },
            FileStatus {
                path: "b".into(),
                category: FileCategory::Staging,
                state: FileState::Pending,
            },
        ];
        assert_eq!(
            serde_json::to_value(statuses).expect("json"),
            serde_json::json!([
                {"path": "a", "category": "infrastructure", "state": "applied", "applied_at": "2026-01-01 00:00:00+00"},
                {"path": "b", "category": "staging", "state": "pending", "applied_at": null}
            ])
        );
    }
}
