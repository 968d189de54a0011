//! The drift report: how committed migrations differ from what the YAML generates, by sink, table and change kind.
//!
//! One type serves the build script (where drift fails compilation) and
//! `cdc manage-migrations generate --check` (where it exits 1): both show its
//! `Display`, and the CLI's `--format json` its `Serialize`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use cdc_core::layout::{MANIFEST_FILE, REGENERATE_COMMAND, STAGING_SUFFIX, TABLES_DIR};
use serde::Serialize;

use crate::output::{ChangeKind, SinkPlan};

/// What a changed file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSubject {
    /// `00-infrastructure/...`
    Infrastructure,
    /// A table's final-table and staging files.
    Table(String),
    /// `manifest.yaml`
    Manifest,
}

impl fmt::Display for DriftSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriftSubject::Infrastructure => f.write_str("infrastructure"),
            DriftSubject::Table(table) => write!(f, "table `{table}`"),
            DriftSubject::Manifest => f.write_str("manifest"),
        }
    }
}

impl DriftSubject {
    /// The subject of a file path relative to a sink directory.
    pub fn of_path(path: &str) -> DriftSubject {
        if path == MANIFEST_FILE {
            return DriftSubject::Manifest;
        }
        match path
            .strip_prefix(TABLES_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(file) => {
                let table = file
                    .strip_suffix(STAGING_SUFFIX)
                    .or_else(|| file.strip_suffix(".sql"))
                    .unwrap_or(file);
                DriftSubject::Table(table.to_string())
            }
            None => DriftSubject::Infrastructure,
        }
    }
}

/// One drifted table (or infrastructure, or manifest) of one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftEntry {
    /// The sink.
    pub sink: String,
    /// The table or part.
    pub subject: DriftSubject,
    /// What happened to it.
    pub kind: ChangeKind,
    /// The files, relative to the sink directory.
    pub files: Vec<String>,
}

/// Every difference between committed migrations and the YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// The project root.
    pub root: PathBuf,
    /// The committed directory (one sub-directory per sink).
    pub committed: PathBuf,
    /// How many sinks were compared.
    pub sinks_checked: usize,
    /// Differences, by sink, subject and kind; empty when nothing drifted.
    pub entries: Vec<DriftEntry>,
    /// The environment variable that makes a build script rewrite the
    /// committed files, when the report comes from one.
    pub rewrite_env: Option<String>,
}

impl DriftReport {
    /// Groups the changed files of sink plans by table and change kind.
    pub fn new(root: &Path, committed: &Path, plans: &[SinkPlan]) -> DriftReport {
        let mut grouped: BTreeMap<(String, DriftSubject, ChangeKind), Vec<String>> =
            BTreeMap::new();
        for plan in plans {
            for change in plan.changed() {
                grouped
                    .entry((
                        plan.name.clone(),
                        DriftSubject::of_path(&change.path),
                        change.kind,
                    ))
                    .or_default()
                    .push(change.path.clone());
            }
        }
        DriftReport {
            root: root.to_path_buf(),
            committed: committed.to_path_buf(),
            sinks_checked: plans.len(),
            entries: grouped
                .into_iter()
                .map(|((sink, subject, kind), files)| DriftEntry {
                    sink,
                    subject,
                    kind,
                    files,
                })
                .collect(),
            rewrite_env: None,
        }
    }

    /// Names the variable that makes a build script rewrite the committed
    /// files, so that the report offers it as a remedy.
    pub fn rewritable_with(mut self, env: &str) -> DriftReport {
        self.rewrite_env = Some(env.to_string());
        self
    }

    /// Whether nothing drifted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many files differ.
    pub fn file_count(&self) -> usize {
        self.entries.iter().map(|e| e.files.len()).sum()
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self
            .committed
            .strip_prefix(&self.root)
            .unwrap_or(&self.committed)
            .display();
        if self.is_empty() {
            return write!(
                f,
                "cdc: the committed migrations in `{shown}` are up to date ({} sink(s))",
                self.sinks_checked
            );
        }
        writeln!(
            f,
            "cdc: the committed migrations in `{shown}` differ from what the YAML generates:"
        )?;
        for entry in &self.entries {
            writeln!(
                f,
                "  {}: {} {} ({})",
                entry.sink,
                entry.subject,
                entry.kind.label(),
                entry.files.join(", ")
            )?;
        }
        write!(
            f,
            "regenerate them with `{REGENERATE_COMMAND}` (in {}) and commit the result",
            self.root.display()
        )?;
        if let Some(env) = &self.rewrite_env {
            write!(f, ", or build once with {env}=1 to rewrite them")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::FileChange;

    fn plan() -> SinkPlan {
        let change = |path: &str, kind| FileChange {
            path: path.to_string(),
            kind,
        };
        SinkPlan {
            name: "s".into(),
            dir: PathBuf::from("/p/migrations/s"),
            changes: vec![
                change("01-tables/Actor-staging.sql", ChangeKind::Modified),
                change("01-tables/Actor.sql", ChangeKind::Modified),
                change("01-tables/New.sql", ChangeKind::Added),
                change("01-tables/Old.sql", ChangeKind::Removed),
                change("01-tables/Same.sql", ChangeKind::Unchanged),
                change(MANIFEST_FILE, ChangeKind::Modified),
            ],
            written: false,
        }
    }

    #[test]
    fn drift_groups_files_by_table_and_kind() {
        let report = DriftReport::new(Path::new("/p"), Path::new("/p/migrations"), &[plan()])
            .rewritable_with("CDC_UPDATE");
        let text = report.to_string();
        assert!(text.contains("in `migrations` differ"), "{text}");
        assert!(
            text.contains(
                "  s: table `Actor` modified (01-tables/Actor-staging.sql, 01-tables/Actor.sql)"
            ),
            "{text}"
        );
        assert!(
            text.contains("  s: table `New` added (01-tables/New.sql)"),
            "{text}"
        );
        assert!(text.contains("  s: table `Old` removed"), "{text}");
        assert!(text.contains("  s: manifest modified"), "{text}");
        assert!(!text.contains("Same"), "{text}");
        assert!(
            text.contains(REGENERATE_COMMAND) && text.contains("CDC_UPDATE=1"),
            "{text}"
        );
        assert_eq!(report.entries.len(), 4);
        assert_eq!(report.file_count(), 5);
    }

    #[test]
    fn the_cli_report_offers_no_build_variable_and_serializes() {
        let report = DriftReport::new(Path::new("/p"), Path::new("/p/migrations"), &[plan()]);
        assert!(!report.to_string().contains("CDC_UPDATE"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["sinks_checked"], 1);
        assert_eq!(json["entries"][0]["subject"]["table"], "Actor");
        assert_eq!(json["entries"][0]["kind"], "modified");
        assert_eq!(json["entries"][3]["subject"], "manifest");
        let clean = DriftReport::new(Path::new("/p"), Path::new("/p/migrations"), &[]);
        assert_eq!(
            clean.to_string(),
            "cdc: the committed migrations in `migrations` are up to date (0 sink(s))"
        );
    }

    #[test]
    fn subjects_of_paths() {
        assert_eq!(
            DriftSubject::of_path("01-tables/Order Details-staging.sql"),
            DriftSubject::Table("Order Details".into())
        );
        assert_eq!(
            DriftSubject::of_path("01-tables/Actor.sql"),
            DriftSubject::Table("Actor".into())
        );
        assert_eq!(
            DriftSubject::of_path("00-infrastructure/01-create-schemas.sql"),
            DriftSubject::Infrastructure
        );
        assert_eq!(DriftSubject::of_path(MANIFEST_FILE), DriftSubject::Manifest);
    }
}
