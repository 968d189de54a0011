//! Generation side of the CDC migration toolkit.
//!
//! `cdc-build` turns a project of MSSQL table definitions (YAML, one file per
//! table, DESIGN.md §3) into PostgreSQL migrations per sink target:
//!
//! 1. [`find_project_root`] finds the project from a directory below it;
//! 2. [`load_project`] reads `services/`, resolves every sink table (with its
//!    [derived names](project::TableNames)) and runs the
//!    [column pipeline](columns::build_full_column_list) (source columns,
//!    column templates, CDC metadata) with the [type mapping](types::TypeMapping);
//! 3. [`generate()`] turns the project into everything it produces, with no I/O:
//!    a streaming [renderer](render::SinkRenderer) per sink and, when asked
//!    for, the [row structs](rows);
//! 4. [`output`] writes that: each sink's files are rendered, compared with
//!    what is on disk and the directory replaced atomically, only when
//!    something changed; the [`DriftReport`] of a comparison names the tables
//!    and change kinds;
//! 5. [`diff`] compares the project with the generated table files and says,
//!    change by change, how much it matters and what apply will do with it
//!    (`cdc manage-migrations diff`).
//!
//! The build script ([`builder::Builder`]) and the `cdc` CLI both take this
//! one path.
//!
//! ```no_run
//! use std::path::Path;
//! use cdc_build::output::{sync_sinks, SyncMode};
//! use cdc_build::{find_project_root, generate, load_project, Filter, GenerateOptions, RootMarker};
//!
//! let root = find_project_root(Path::new("."), RootMarker::Services)?;
//! let project = load_project(&root, &Filter::default())?;
//! for warning in &project.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! let generated = generate(&project, &GenerateOptions::new("2026-01-01 00:00:00 UTC"));
//! // In memory:
//! let sinks = generated.render_all();
//! println!("{} files", sinks.iter().map(|s| s.files.len()).sum::<usize>());
//! // To disk, one file at a time:
//! let plans = sync_sinks(&generated, &root.join("migrations"), None, SyncMode::Write)?;
//! println!("{} sink(s) written", plans.iter().filter(|p| p.written).count());
//! # Ok::<(), cdc_build::Error>(())
//! ```

pub mod breaking;
pub mod builder;
pub mod columns;
pub mod diff;
pub mod drift;
pub mod error;
mod fast_table;
pub mod generate;
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

pub use diff::{diff_project, DiffReport};
pub use drift::DriftReport;
pub use error::{Diagnostic, Error};
pub use generate::{generate, GenerateOptions, Generated};
pub use loader::{load_project, Filter};
pub use project::{Distribution, Project, Sink, SinkTable, TableNames};
pub use render::{GeneratedFile, GeneratedSink};
pub use root::{find_project_root, RootMarker};
