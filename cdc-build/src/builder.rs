//! The `build.rs` integration: generate every sink into `OUT_DIR`, check committed migrations for drift.
//!
//! ```no_run
//! // build.rs: the one-liner (project found from CARGO_MANIFEST_DIR upward)
//! fn main() -> Result<(), cdc_build::builder::BuildError> {
//!     cdc_build::builder::build()?;
//!     Ok(())
//! }
//! ```
//!
//! ```no_run
//! // build.rs: with a committed `migrations/` checked against the YAML
//! fn main() -> Result<(), cdc_build::builder::BuildError> {
//!     cdc_build::builder::Builder::new()
//!         .committed_migrations("migrations")
//!         .build()?;
//!     Ok(())
//! }
//! ```
//!
//! [`Builder::build`]:
//!
//! 1. loads `services/` (the project root is the first directory from
//!    `CARGO_MANIFEST_DIR` upward that holds one, or [`Builder::project_dir`]);
//! 2. writes every sink to `$OUT_DIR/cdc/migrations/<sink>/` (what
//!    `include_migrations!("<sink>")` embeds) and the row structs to
//!    `$OUT_DIR/cdc/rows.rs`, touching a file only when its content changes;
//! 3. with [`Builder::committed_migrations`], compares that directory with what
//!    the YAML generates: any difference fails the build, listing tables and
//!    change kinds and the command that regenerates; with `CDC_UPDATE=1` the
//!    committed files are rewritten instead;
//! 4. prints `cargo:rerun-if-changed` for every file and directory it read (so a
//!    new table YAML re-runs it), `cargo:rerun-if-env-changed=CDC_UPDATE`, and
//!    every generation warning as `cargo:warning`.
//!
//! [`generate_outputs`] is the same generation without any I/O, for tests.
//!
//! **Speed.** Cargo re-runs the script only when an input changes, and a run
//! whose tables did not change skips the row structs (their fingerprint, the
//! second line of `rows.rs`, matches). Cargo compiles build scripts without
//! optimisation; for projects of hundreds of tables add
//! `[profile.dev.build-override] opt-level = 3` to the workspace, which makes a
//! 1,000-table run about five times faster.
//! [`BuildError`]'s `Debug` prints its message, so `fn main() -> Result<(), BuildError>`
//! shows a readable failure.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::loader::{load_project, Filter};
use crate::output::{existing_files, sync_sink, ChangeKind, SinkPlan, SyncMode};
use crate::project::Project;
use crate::render::{render_sink, GeneratedSink, MANIFEST_FILE};
use crate::root::{find_project_root, RootMarker};
use crate::rows::{render_rows, rows_fingerprint, RowsError};

/// Where the sinks go inside `OUT_DIR`; `cdc-macros` reads the same directory.
pub const OUT_DIR_MIGRATIONS: &str = "cdc/migrations";
/// Where the row structs go inside `OUT_DIR`.
pub const OUT_DIR_ROWS: &str = "cdc/rows.rs";
/// Set to `1` to rewrite committed migrations instead of failing on drift.
pub const UPDATE_ENV: &str = "CDC_UPDATE";
/// The command that regenerates committed migrations.
pub const REGENERATE_COMMAND: &str = "cdc manage-migrations generate";

/// Why a build script run failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A variable cargo sets for build scripts is missing.
    #[error("{0} is not set: cdc_build::builder::Builder runs from a build script (or give Builder::out_dir / Builder::project_dir)")]
    MissingEnv(&'static str),
    /// The project could not be loaded (the message names file, line and field).
    #[error("cdc: {0}")]
    Project(#[from] Error),
    /// The row structs could not be generated.
    #[error(transparent)]
    Rows(#[from] RowsError),
    /// A file could not be written.
    #[error("cdc: {}: {source}", .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Committed migrations differ from what the YAML generates.
    #[error("{0}")]
    Drift(DriftReport),
}

impl fmt::Debug for BuildError {
    /// The message, so that `main() -> Result<(), BuildError>` prints it readably.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs [`Builder::new`] with its defaults: the one-liner for `build.rs`.
pub fn build() -> Result<BuildSummary, BuildError> {
    Builder::new().build()
}

/// Generation for `build.rs`; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    project_dir: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    committed: Option<PathBuf>,
    filter: Filter,
    rows: bool,
    quiet: bool,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    /// The project root.
    pub root: PathBuf,
    /// Each sink as synced into `OUT_DIR`.
    pub out_dir: Vec<SinkPlan>,
    /// Each sink as compared with (or, with `CDC_UPDATE=1`, written to) the committed directory.
    pub committed: Vec<SinkPlan>,
    /// Whether `rows.rs` was rewritten.
    pub rows_written: bool,
}

/// Everything a build writes, computed without I/O.
#[derive(Debug, Clone)]
pub struct BuildOutputs {
    /// Every sink's files.
    pub sinks: Vec<GeneratedSink>,
    /// The row structs (`rows.rs`).
    pub rows: String,
    /// `cargo:` lines: warnings, then `rerun-if-changed` / `rerun-if-env-changed`.
    pub cargo_lines: Vec<String>,
}

/// Renders every sink and the row structs of a loaded project, with the cargo
/// lines a build script prints for it; no I/O.
pub fn generate_outputs(project: &Project, generated_at: &str) -> Result<BuildOutputs, BuildError> {
    let sinks = project
        .sinks()
        .map(|sink| render_sink(sink, generated_at))
        .collect();
    let rows = render_rows(project.sinks())?;
    Ok(BuildOutputs {
        sinks,
        rows,
        cargo_lines: cargo_lines(project, &[]),
    })
}

/// `cargo:warning` for every warning, `cargo:rerun-if-changed` for every input
/// and every `extra` path, `cargo:rerun-if-env-changed` for [`UPDATE_ENV`].
pub fn cargo_lines(project: &Project, extra: &[PathBuf]) -> Vec<String> {
    let mut lines =
        Vec::with_capacity(project.inputs.len() + extra.len() + project.warnings.len() + 1);
    for warning in &project.warnings {
        for line in warning.to_string().lines() {
            lines.push(format!("cargo:warning={line}"));
        }
    }
    for path in project.inputs.iter().chain(extra) {
        let shown = path.display().to_string();
        if !shown.contains(['\n', '\r']) {
            lines.push(format!("cargo:rerun-if-changed={shown}"));
        }
    }
    lines.push(format!("cargo:rerun-if-env-changed={UPDATE_ENV}"));
    lines
}

impl Builder {
    /// A builder with the defaults: the project found from `CARGO_MANIFEST_DIR`
    /// upward, every sink, output in `OUT_DIR`, row structs on, no committed directory.
    pub fn new() -> Builder {
        Builder {
            rows: true,
            ..Builder::default()
        }
    }

    /// The project root (holding `services/`), or a directory below it;
    /// relative to `CARGO_MANIFEST_DIR`.
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.project_dir = Some(dir.into());
        self
    }

    /// Writes into `dir` instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Checks the committed migrations in `dir` (holding one directory per sink,
    /// as `cdc manage-migrations generate` writes them) against the YAML; a
    /// relative `dir` is taken from the project root, so `"migrations"` is the CLI's.
    pub fn committed_migrations(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.committed = Some(dir.into());
        self
    }

    /// Generates only this sink.
    pub fn sink(mut self, name: impl Into<String>) -> Builder {
        self.filter.sink = Some(name.into());
        self
    }

    /// Generates only this service's sinks.
    pub fn service(mut self, name: impl Into<String>) -> Builder {
        self.filter.service = Some(name.into());
        self
    }

    /// Whether to write `rows.rs` (on by default).
    pub fn rows(mut self, enabled: bool) -> Builder {
        self.rows = enabled;
        self
    }

    /// Stops printing `cargo:` lines (for calling the builder outside a build script).
    pub fn quiet(mut self, quiet: bool) -> Builder {
        self.quiet = quiet;
        self
    }

    fn emit(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }

    /// Loads, generates, writes and checks; see the [module docs](self).
    pub fn build(&self) -> Result<BuildSummary, BuildError> {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        let out_dir = match (&self.out_dir, std::env::var_os("OUT_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => return Err(BuildError::MissingEnv("OUT_DIR")),
        };
        let start = match (&self.project_dir, &manifest_dir) {
            (Some(dir), Some(base)) => base.join(dir),
            (Some(dir), None) => dir.clone(),
            (None, Some(base)) => base.clone(),
            (None, None) => return Err(BuildError::MissingEnv("CARGO_MANIFEST_DIR")),
        };
        let root = find_project_root(&start, RootMarker::Services)?;
        let project = load_project(&root, &self.filter)?;
        let generated_at = cdc_core::time::now_utc();

        // Each sink is rendered once, for OUT_DIR and the committed directory alike.
        let generated: Vec<GeneratedSink> = project
            .sinks()
            .map(|sink| render_sink(sink, &generated_at))
            .collect();
        let migrations_dir = out_dir.join(OUT_DIR_MIGRATIONS);
        let mut out_plans = Vec::new();
        for sink in &generated {
            let dir = migrations_dir.join(&sink.name);
            out_plans.push(sync_sink(&sink.name, &dir, sink, None, SyncMode::Write)?);
        }
        remove_stale_sinks(&migrations_dir, &project)?;
        let rows_written = if self.rows {
            write_rows(&out_dir.join(OUT_DIR_ROWS), &project)?
        } else {
            false
        };

        let mut watched = Vec::new();
        let mut committed_plans = Vec::new();
        if let Some(committed) = &self.committed {
            let committed = root.join(committed);
            let update = std::env::var(UPDATE_ENV).is_ok_and(|v| v.trim() == "1");
            let mode = if update {
                SyncMode::Write
            } else {
                SyncMode::Compare
            };
            for sink in &generated {
                let dir = committed.join(&sink.name);
                committed_plans.push(sync_sink(&sink.name, &dir, sink, None, mode)?);
                watched.push(dir.clone());
                watched.extend(existing_files(&dir)?.into_iter().map(|rel| dir.join(rel)));
            }
            watched.push(committed.clone());
            let report = DriftReport::new(&root, &committed, &committed_plans);
            for line in cargo_lines(&project, &watched) {
                self.emit(&line);
            }
            if !report.is_empty() {
                if !update {
                    return Err(BuildError::Drift(report));
                }
                self.emit(&format!(
                    "cargo:warning={UPDATE_ENV}=1: rewrote {} file(s) in {}",
                    report.entries.iter().map(|e| e.files.len()).sum::<usize>(),
                    committed.display()
                ));
            }
        } else {
            for line in cargo_lines(&project, &watched) {
                self.emit(&line);
            }
        }
        Ok(BuildSummary {
            root,
            out_dir: out_plans,
            committed: committed_plans,
            rows_written,
        })
    }
}

/// Removes sink directories under `dir` that the project no longer generates,
/// so `include_migrations!` cannot embed a sink that left the YAML.
fn remove_stale_sinks(dir: &Path, project: &Project) -> Result<(), BuildError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() && !project.sinks().any(|s| s.name == name) {
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Writes the row structs unless the file already holds the rows of the same
/// input (its fingerprint line matches); returns whether it wrote.
fn write_rows(path: &Path, project: &Project) -> Result<bool, BuildError> {
    let fingerprint = rows_fingerprint(project.sinks());
    let current = std::fs::read_to_string(path).ok();
    if current.is_some_and(|text| text.lines().nth(1) == Some(fingerprint.as_str())) {
        return Ok(false);
    }
    write_if_changed(path, &render_rows(project.sinks())?)
}

/// Writes `contents` to `path` unless it already holds exactly that; returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &str) -> Result<bool, BuildError> {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temp, contents).map_err(io_error(&temp))?;
    std::fs::rename(&temp, path).map_err(io_error(path))?;
    Ok(true)
}

/// What a changed file belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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
        match path.strip_prefix("01-tables/") {
            Some(file) => {
                let stem = file.strip_suffix(".sql").unwrap_or(file);
                DriftSubject::Table(stem.strip_suffix("-staging").unwrap_or(stem).to_string())
            }
            None => DriftSubject::Infrastructure,
        }
    }
}

/// One drifted table (or infrastructure, or manifest) of one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    /// The project root.
    pub root: PathBuf,
    /// The committed directory.
    pub committed: PathBuf,
    /// Differences, by sink, subject and kind.
    pub entries: Vec<DriftEntry>,
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
            entries: grouped
                .into_iter()
                .map(|((sink, subject, kind), files)| DriftEntry {
                    sink,
                    subject,
                    kind,
                    files,
                })
                .collect(),
        }
    }

    /// Whether nothing drifted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self
            .committed
            .strip_prefix(&self.root)
            .unwrap_or(&self.committed);
        writeln!(
            f,
            "cdc: the committed migrations in `{}` differ from what the YAML generates:",
            shown.display()
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
            "regenerate them with `{REGENERATE_COMMAND}` (in {}) and commit the result, or build once with {UPDATE_ENV}=1 to rewrite them",
            self.root.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::FileChange;

    #[test]
    fn drift_groups_files_by_table_and_kind() {
        let change = |path: &str, kind| FileChange {
            path: path.to_string(),
            kind,
        };
        let plan = SinkPlan {
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
        };
        let report = DriftReport::new(Path::new("/p"), Path::new("/p/migrations"), &[plan]);
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
    }

    #[test]
    fn a_second_build_writes_nothing() {
        let out = tempfile::tempdir().unwrap();
        let builder = Builder::new()
            .project_dir("..")
            .out_dir(out.path())
            .quiet(true);
        let first = builder.build().unwrap();
        assert!(first.rows_written);
        assert!(first.out_dir.iter().all(|plan| plan.written));
        let rows = out.path().join(OUT_DIR_ROWS);
        let sql = out
            .path()
            .join(OUT_DIR_MIGRATIONS)
            .join("sink_asma.directory/01-tables/Actor.sql");
        let stamp = |path: &Path| std::fs::metadata(path).unwrap().modified().unwrap();
        let (rows_time, sql_time) = (stamp(&rows), stamp(&sql));
        let second = builder.build().unwrap();
        assert!(!second.rows_written);
        assert!(second
            .out_dir
            .iter()
            .all(|plan| !plan.written && !plan.is_changed()));
        assert_eq!((stamp(&rows), stamp(&sql)), (rows_time, sql_time));
        // A stale sink directory (a sink that left the YAML) is removed.
        std::fs::create_dir_all(out.path().join(OUT_DIR_MIGRATIONS).join("gone")).unwrap();
        builder.build().unwrap();
        assert!(!out.path().join(OUT_DIR_MIGRATIONS).join("gone").exists());
    }

    #[test]
    fn outputs_of_the_example_project_without_io() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = load_project(&root, &Filter::default()).unwrap();
        let outputs = generate_outputs(&project, "2026-01-01 00:00:00 UTC").unwrap();
        assert_eq!(outputs.sinks.len(), 2);
        assert!(outputs.rows.starts_with(crate::rows::GENERATED_HEADER));
        assert!(
            outputs.rows.contains("pub struct OrderDetails"),
            "{}",
            outputs.rows
        );
        assert!(outputs
            .rows
            .contains("pub unit_price: ::cdc_runtime::rows::Numeric"));
        let reruns = outputs
            .cargo_lines
            .iter()
            .filter(|l| l.starts_with("cargo:rerun-if-changed="))
            .count();
        assert_eq!(reruns, project.inputs.len());
        assert!(outputs
            .cargo_lines
            .iter()
            .any(|l| l.contains("services/_schemas/directory/dbo/Actor.yaml")));
        assert!(outputs
            .cargo_lines
            .iter()
            .any(|l| l.starts_with("cargo:warning=") && l.contains("AuditTrail")));
        assert!(outputs
            .cargo_lines
            .contains(&"cargo:rerun-if-env-changed=CDC_UPDATE".to_string()));
    }
}
