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
//! The generation itself is [`generate`](crate::generate()), the same as the
//! CLI's; the files go through [`output`](crate::output), the CLI's writer too.
//!
//! **Speed.** Cargo re-runs the script only when an input changes, and a run
//! whose tables did not change skips the row structs (their fingerprint, the
//! second line of `rows.rs`, matches). Cargo compiles build scripts without
//! optimisation; for projects of hundreds of tables add
//! `[profile.dev.build-override] opt-level = 3` to the workspace, which makes a
//! 1,000-table run about five times faster.
//! [`BuildError`]'s `Debug` prints its message, so `fn main() -> Result<(), BuildError>`
//! shows a readable failure.

use std::fmt;
use std::path::{Path, PathBuf};

use cdc_core::layout::{OUT_DIR_MIGRATIONS, OUT_DIR_ROWS};

pub use crate::drift::{DriftEntry, DriftReport, DriftSubject};
use crate::error::Error;
use crate::generate::{generate, GenerateOptions, Generated, RowStructs};
use crate::loader::{load_project, Filter};
use crate::output::{
    existing_files, sync_sinks, undeclared_sinks, write_file_if_changed, SinkPlan, SyncMode,
};
use crate::project::Project;
use crate::root::{find_project_root, RootMarker};
use crate::rows::RowsError;

/// Set to `1` to rewrite committed migrations instead of failing on drift.
pub const UPDATE_ENV: &str = "CDC_UPDATE";

/// Why a build script run failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A variable cargo sets for build scripts is missing.
    #[error("{0} is not set: cdc_build::builder::Builder runs from a build script (or give Builder::out_dir / Builder::project_dir)")]
    MissingEnv(&'static str),
    /// The project could not be loaded (the message names file, line and
    /// field), or a file could not be read or written.
    #[error("cdc: {0}")]
    Project(#[from] Error),
    /// The row structs could not be generated.
    #[error(transparent)]
    Rows(#[from] RowsError),
    /// Committed migrations differ from what the YAML generates.
    #[error("{0}")]
    Drift(Box<DriftReport>),
}

impl fmt::Debug for BuildError {
    /// The message, so that `main() -> Result<(), BuildError>` prints it readably.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
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
        let options = GenerateOptions::new(cdc_core::time::now_utc()).with_rows(self.rows);
        let mut generated = generate(&project, &options);
        if let Some(committed) = &self.committed {
            // Breaking-change files are written once, by `generate --allow-breaking`.
            generated
                .keep_breaking_files(&root.join(committed))
                .map_err(|e| Error::io(&root.join(committed), std::io::Error::other(e)))?;
        }

        let migrations_dir = out_dir.join(OUT_DIR_MIGRATIONS);
        let out_plans = sync_sinks(&generated, &migrations_dir, None, SyncMode::Write)?;
        remove_stale_sinks(&migrations_dir, &project)?;
        let rows_written = match &generated.rows {
            Some(rows) => write_rows(&out_dir.join(OUT_DIR_ROWS), rows)?,
            None => false,
        };
        let committed = match &self.committed {
            Some(committed) => self.check_committed(&project, &root.join(committed), &generated)?,
            None => {
                for line in cargo_lines(&project, &[]) {
                    self.emit(&line);
                }
                Vec::new()
            }
        };
        Ok(BuildSummary {
            root,
            out_dir: out_plans,
            committed,
            rows_written,
        })
    }

    /// Compares the committed directory with what was generated (or rewrites
    /// it with `CDC_UPDATE=1`), prints the cargo lines, which watch it too,
    /// and fails on drift.
    fn check_committed(
        &self,
        project: &Project,
        committed: &Path,
        generated: &Generated<'_>,
    ) -> Result<Vec<SinkPlan>, BuildError> {
        let update = std::env::var(UPDATE_ENV).is_ok_and(|v| v.trim() == "1");
        let mode = if update {
            SyncMode::Write
        } else {
            SyncMode::Compare
        };
        let plans = sync_sinks(generated, committed, None, mode)?;
        let mut watched = Vec::new();
        for plan in &plans {
            watched.push(plan.dir.clone());
            watched.extend(
                existing_files(&plan.dir)?
                    .into_iter()
                    .map(|rel| plan.dir.join(rel)),
            );
        }
        watched.push(committed.to_path_buf());
        for line in cargo_lines(project, &watched) {
            self.emit(&line);
        }
        // As `generate --check`: a committed sink that no service declares is
        // drift (only knowable when every service is loaded).
        let undeclared = if self.filter.service.is_none() && self.filter.sink.is_none() {
            undeclared_sinks(committed, project.sinks().map(|s| s.name.as_str()))?
        } else {
            Vec::new()
        };
        let report = DriftReport::new(&project.root, committed, &plans)
            .with_undeclared_sinks(undeclared)
            .rewritable_with(UPDATE_ENV);
        for file in &report.foreign_files {
            self.emit(&format!(
                "cargo:warning={}: not generated by cdc; kept as it is (apply never reads it)",
                committed.join(&file.sink).join(&file.path).display()
            ));
        }
        if !report.is_empty() {
            if !update {
                return Err(BuildError::Drift(Box::new(report)));
            }
            self.emit(&format!(
                "cargo:warning={UPDATE_ENV}=1: rewrote {} file(s) in {}",
                report.file_count(),
                committed.display()
            ));
            for sink in &report.undeclared_sinks {
                self.emit(&format!(
                    "cargo:warning={}: no service declares this sink any more; delete the directory",
                    committed.join(sink).display()
                ));
            }
        }
        Ok(plans)
    }
}

/// Removes sink directories under `dir` that the project no longer generates,
/// so `include_migrations!` cannot embed a sink that left the YAML.
fn remove_stale_sinks(dir: &Path, project: &Project) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() && !project.sinks().any(|s| s.name == name) {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// Writes the row structs unless the file already holds the rows of the same
/// input (its fingerprint line matches); returns whether it wrote.
fn write_rows(path: &Path, rows: &RowStructs<'_>) -> Result<bool, BuildError> {
    let current = std::fs::read_to_string(path).ok();
    if current.is_some_and(|text| text.lines().nth(1) == Some(rows.fingerprint())) {
        return Ok(false);
    }
    Ok(write_file_if_changed(path, &rows.render()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let options = GenerateOptions::new("2026-01-01 00:00:00 UTC").with_rows(true);
        let generated = generate(&project, &options);
        assert_eq!(generated.render_all().len(), 2);
        let rows = generated.rows.as_ref().unwrap().render().unwrap();
        assert!(rows.starts_with(crate::rows::GENERATED_HEADER));
        assert!(rows.contains("pub struct OrderDetails"), "{rows}");
        assert!(rows.contains("pub unit_price: ::cdc_runtime::rows::Numeric"));
        let cargo_lines = cargo_lines(&project, &[]);
        let reruns = cargo_lines
            .iter()
            .filter(|l| l.starts_with("cargo:rerun-if-changed="))
            .count();
        assert_eq!(reruns, project.inputs.len());
        assert!(cargo_lines
            .iter()
            .any(|l| l.contains("services/_schemas/directory/dbo/Actor.yaml")));
        assert!(cargo_lines
            .iter()
            .any(|l| l.starts_with("cargo:warning=") && l.contains("AuditTrail")));
        assert!(cargo_lines.contains(&"cargo:rerun-if-env-changed=CDC_UPDATE".to_string()));
    }

    #[test]
    fn a_committed_sink_no_service_declares_is_drift() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = tempfile::tempdir().unwrap();
        let committed = tempfile::tempdir().unwrap();
        let builder = Builder::new()
            .project_dir("..")
            .out_dir(out.path())
            .committed_migrations(committed.path())
            .quiet(true);
        // The committed sinks as they are, plus one that no service declares.
        let project = load_project(&root, &Filter::default()).unwrap();
        let generated = generate(&project, &GenerateOptions::new("2026-01-01 00:00:00 UTC"));
        sync_sinks(&generated, committed.path(), None, SyncMode::Write).unwrap();
        builder.build().unwrap();
        let retired = committed.path().join("sink_asma.retired");
        std::fs::create_dir_all(&retired).unwrap();
        std::fs::copy(
            committed
                .path()
                .join("sink_asma.directory")
                .join(cdc_core::layout::MANIFEST_FILE),
            retired.join(cdc_core::layout::MANIFEST_FILE),
        )
        .unwrap();
        match builder.build() {
            Err(BuildError::Drift(report)) => {
                assert_eq!(report.undeclared_sinks, ["sink_asma.retired"]);
                assert!(report.entries.is_empty(), "{report}");
            }
            other => panic!("expected drift, got {other:?}"),
        }
    }
}
