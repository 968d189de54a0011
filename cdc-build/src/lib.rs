//! Generation side of the CDC migration toolkit.
//!
//! `cdc-build` turns a project of MSSQL table definitions (YAML, one file per
//! table, DESIGN.md §3) into PostgreSQL migrations per sink target:
//!
//! 1. [`load_project`] reads `services/`, resolves every sink table and runs the
//!    [column pipeline](columns::build_full_column_list) (source columns, column
//!    templates, CDC metadata) with the [type mapping](types::TypeMapping);
//! 2. [`generate`] renders every sink in memory, with no I/O;
//! 3. [`output::sync_sink`] streams a sink's files against what is on disk and
//!    replaces the directory atomically, only when something changed.
//!
//! ```no_run
//! use std::path::Path;
//! use cdc_build::{generate, load_project, Filter};
//!
//! let project = load_project(Path::new("."), &Filter::default())?;
//! for warning in &project.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! // In memory:
//! let sinks = generate(&project, "2026-01-01 00:00:00 UTC");
//! println!("{} files", sinks.iter().map(|s| s.files.len()).sum::<usize>());
//! // To disk, one file at a time:
//! use cdc_build::output::{sync_sink, SyncMode};
//! use cdc_build::render::SinkRenderer;
//! for sink in project.sinks() {
//!     let renderer = SinkRenderer::new(sink, "2026-01-01 00:00:00 UTC");
//!     let dir = project.root.join("migrations").join(&sink.name);
//!     sync_sink(&sink.name, &dir, &renderer, None, SyncMode::Write)?;
//! }
//! # Ok::<(), cdc_build::Error>(())
//! ```

pub mod builder;
pub mod columns;
pub mod error;
mod fast_table;
pub mod ident;
pub mod loader;
pub mod location;
pub mod model;
pub mod output;
pub mod project;
pub mod render;
pub mod root;
pub mod rows;
pub mod types;
pub mod yaml;

pub use error::{Diagnostic, Error};
pub use loader::{load_project, Filter};
pub use project::{Project, Sink, SinkTable, TableNames};
pub use render::{GeneratedFile, GeneratedSink};
pub use root::{find_project_root, RootMarker};

/// Renders every sink of a loaded project; no I/O. `generated_at` goes into the
/// `Generated:` header lines and the manifest.
pub fn generate(project: &Project, generated_at: &str) -> Vec<GeneratedSink> {
    project
        .sinks()
        .map(|sink| render::render_sink(sink, generated_at))
        .collect()
}
