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

/// A file in a sink directory that cdc did not generate: kept, never applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignFile {
    /// The sink directory's name.
    pub sink: String,
    /// The file, relative to the sink directory.
    pub path: String,
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
    /// Sink directories that no service declares any more (`apply --sink`
    /// would still apply them): drift.
    pub undeclared_sinks: Vec<String>,
    /// Files that cdc did not generate in a sink directory: a warning, not
    /// drift, since apply reads only what the manifest lists.
    pub foreign_files: Vec<ForeignFile>,
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
            undeclared_sinks: Vec::new(),
            foreign_files: plans
                .iter()
                .flat_map(|plan| {
                    plan.foreign.iter().map(|path| ForeignFile {
                        sink: plan.name.clone(),
                        path: path.clone(),
                    })
                })
                .collect(),
            rewrite_env: None,
        }
    }

    /// Adds the sink directories that no service declares (see
    /// [`undeclared_sinks`](crate::output::undeclared_sinks)).
    pub fn with_undeclared_sinks(mut self, sinks: Vec<String>) -> DriftReport {
        self.undeclared_sinks = sinks;
        self
    }

    /// Names the variable that makes a build script rewrite the committed
    /// files, so that the report offers it as a remedy.
    pub fn rewritable_with(mut self, env: &str) -> DriftReport {
        self.rewrite_env = Some(env.to_string());
        self
    }

    /// Whether nothing drifted (foreign files are only warnings).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.undeclared_sinks.is_empty()
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
            write!(
                f,
                "cdc: the committed migrations in `{shown}` are up to date ({} sink(s))",
                self.sinks_checked
            )?;
            return self.fmt_foreign_files(f);
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
        for sink in &self.undeclared_sinks {
            writeln!(
                f,
                "  {sink}: no service declares this sink any more, but `apply --sink {sink}` would still apply it; delete `{shown}/{sink}` or declare the sink again",
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
        self.fmt_foreign_files(f)
    }
}

impl DriftReport {
    fn fmt_foreign_files(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.foreign_files {
            write!(
                f,
                "\nwarning: {}: not generated by cdc; kept as it is (apply never reads it)",
                foreign_file_path(&self.committed, &self.root, file)
            )?;
        }
        Ok(())
    }
}

/// `migrations/<sink>/<path>`, relative to the project root where possible.
fn foreign_file_path(committed: &Path, root: &Path, file: &ForeignFile) -> String {
    let dir = committed.strip_prefix(root).unwrap_or(committed);
    format!("{}/{}/{}", dir.display(), file.sink, file.path)
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
            foreign: Vec::new(),
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
    fn undeclared_sinks_drift_and_foreign_files_warn() {
        let mut with_foreign = plan();
        with_foreign.changes.clear();
        with_foreign.foreign = vec!["notes.txt".into()];
        let report = DriftReport::new(Path::new("/p"), Path::new("/p/migrations"), &[with_foreign]);
        assert!(report.is_empty(), "a foreign file is not drift");
        assert_eq!(
            report.to_string(),
            "cdc: the committed migrations in `migrations` are up to date (1 sink(s))\n\
             warning: migrations/s/notes.txt: not generated by cdc; kept as it is (apply never reads it)"
        );
        let report = report.with_undeclared_sinks(vec!["old_sink".into()]);
        assert!(!report.is_empty());
        let text = report.to_string();
        assert!(
            text.contains("  old_sink: no service declares this sink any more, but `apply --sink old_sink` would still apply it; delete `migrations/old_sink`"),
            "{text}"
        );
        assert!(text.contains("warning: migrations/s/notes.txt"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["undeclared_sinks"][0], "old_sink");
        assert_eq!(json["foreign_files"][0]["path"], "notes.txt");
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
