//! The one generation path: [`generate`] turns a loaded project into everything it produces, without I/O.
//!
//! The build script ([`Builder`](crate::builder::Builder)) and the CLI both
//! call [`generate`] and hand the result to [`output`](crate::output), the one
//! writer (as prost-build's `compile_fds` calls `generate` and then writes).
//! A sink's files are rendered by a [`SinkRenderer`] one at a time, when they
//! are written or compared, so memory stays flat however large the project;
//! [`Generated::render_all`] renders everything into memory instead.

use crate::project::{Project, Sink};
use crate::render::{GeneratedSink, SinkRenderer};
use crate::rows::{render_rows, rows_fingerprint, RowsError};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// The time stamped into `-- Generated:` header lines and the manifest's
    /// `generated_at` (it never changes a checksum).
    pub generated_at: String,
    /// Whether to generate the row structs too.
    pub rows: bool,
}

impl GenerateOptions {
    /// The migrations only, stamped `generated_at`.
    pub fn new(generated_at: impl Into<String>) -> GenerateOptions {
        GenerateOptions {
            generated_at: generated_at.into(),
            rows: false,
        }
    }

    /// Whether to generate the row structs too.
    pub fn with_rows(mut self, rows: bool) -> GenerateOptions {
        self.rows = rows;
        self
    }
}

/// Everything a project generates, nothing written yet.
#[derive(Debug)]
pub struct Generated<'p> {
    /// One renderer per sink, in project order.
    pub sinks: Vec<SinkRenderer<'p>>,
    /// The row structs, when [`GenerateOptions::rows`] asked for them.
    pub rows: Option<RowStructs<'p>>,
}

impl Generated<'_> {
    /// Gives each sink its breaking-change files ([`crate::breaking`]): the
    /// ones already written in `migrations/<sink>/` and, when `allow`, the new
    /// ones that `plan` describes, stamped `generated_at`.
    pub fn set_breaking_files(
        &mut self,
        plan: &crate::breaking::BreakingPlan<'_>,
        generated_at: &str,
        allow: bool,
    ) {
        for sink in &mut self.sinks {
            let files = plan.files(sink.name(), generated_at, allow);
            sink.set_breaking_files(files);
        }
    }

    /// Gives each sink the breaking-change files already written in
    /// `migrations/<sink>/` for the tables it still has (the build script,
    /// whose committed migrations may hold some).
    pub fn keep_breaking_files(
        &mut self,
        migrations: &std::path::Path,
    ) -> Result<(), crate::breaking::BreakingError> {
        for sink in &mut self.sinks {
            let tables = &sink.sink().tables;
            let files = crate::breaking::read_kept_files(&migrations.join(sink.name()))?
                .into_iter()
                .filter(|f| tables.iter().any(|t| t.target_table == f.table))
                .collect();
            sink.set_breaking_files(files);
        }
        Ok(())
    }

    /// Renders every file of every sink into memory.
    pub fn render_all(&self) -> Vec<GeneratedSink> {
        self.sinks.iter().map(SinkRenderer::render_all).collect()
    }
}

/// The row structs of a project's tables (`rows.rs`), rendered on demand:
/// rendering and formatting them is the costly part of a build script, and
/// its [`fingerprint`](RowStructs::fingerprint) tells whether a file on disk
/// holds them already.
#[derive(Debug)]
pub struct RowStructs<'p> {
    sinks: Vec<&'p Sink>,
    fingerprint: String,
}

impl RowStructs<'_> {
    /// The second line of the rendered file, which identifies its input.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The formatted file.
    pub fn render(&self) -> Result<String, RowsError> {
        render_rows(self.sinks.iter().copied())
    }
}

/// Generates every sink of a loaded project (and, when asked for, its row
/// structs); no I/O.
pub fn generate<'p>(project: &'p Project, options: &GenerateOptions) -> Generated<'p> {
    let sinks = project
        .sinks()
        .map(|sink| SinkRenderer::new(sink, options.generated_at.as_str()))
        .collect();
    let rows = options.rows.then(|| RowStructs {
        sinks: project.sinks().collect(),
        fingerprint: rows_fingerprint(project.sinks()),
    });
    Generated { sinks, rows }
}
