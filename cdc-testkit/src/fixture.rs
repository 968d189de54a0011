//! The bundled example project (`services/` at the workspace root), generated in memory, and
//! helpers that apply its SQL files to a database the way the apply contract does: in apply
//! order (infrastructure, table files, staging files), each file in its own transaction.
//!
//! ```no_run
//! use cdc_testkit::fixture::{self, DIRECTORY};
//!
//! let server = cdc_testkit::shared();
//! let db = server.create_database("example");
//! let mut client = server.client(&db);
//! fixture::apply_sink(&mut client, fixture::sink(DIRECTORY));
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use cdc_build::{GeneratedFile, GeneratedSink};

/// The example sink of the `directory` service (schema `directory`, hard deletes).
pub const DIRECTORY: &str = "sink_asma.directory";
/// The example sink of the `billing` service (schema `billing`, soft deletes).
pub const BILLING: &str = "sink_asma.billing";
/// The `Generated:` timestamp used for the in-memory generation.
pub const GENERATED_AT: &str = "2026-01-01 00:00:00 UTC";

/// The workspace root, which holds the example `services/`.
pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cdc-testkit lives inside the workspace")
}

/// Every sink of the example project, generated once per test binary.
///
/// # Panics
///
/// Panics if the example project does not load.
pub fn example() -> &'static [GeneratedSink] {
    static SINKS: OnceLock<Vec<GeneratedSink>> = OnceLock::new();
    SINKS.get_or_init(|| {
        let project = cdc_build::load_project(project_root(), &cdc_build::Filter::default())
            .unwrap_or_else(|e| panic!("loading the example project: {e}"));
        cdc_build::generate(&project, &cdc_build::GenerateOptions::new(GENERATED_AT)).render_all()
    })
}

/// One sink of the example project, by name.
///
/// # Panics
///
/// Panics if there is no such sink.
pub fn sink(name: &str) -> &'static GeneratedSink {
    example()
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = example().iter().map(|s| s.name.as_str()).collect();
            panic!("no sink {name:?} in the example project (have {names:?})")
        })
}

/// One generated file of a sink, by path relative to the sink directory
/// (e.g. `01-tables/Actor.sql`).
///
/// # Panics
///
/// Panics if the sink has no such file.
pub fn file<'a>(sink: &'a GeneratedSink, path: &str) -> &'a GeneratedFile {
    sink.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("sink {} has no file {path:?}", sink.name))
}

/// The sink's files in apply order, as [`cdc_core::apply_order`] gives it.
pub fn files_in_apply_order(sink: &GeneratedSink) -> Vec<&GeneratedFile> {
    cdc_core::apply_order(&sink.manifest)
        .into_iter()
        .map(|ordered| file(sink, ordered.path))
        .collect()
}

/// Runs one SQL text in its own transaction (committed on success, rolled back on error).
pub fn run_in_transaction(client: &mut postgres::Client, sql: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(sql)?;
    tx.commit()
}

/// Applies one generated file of `sink` in its own transaction.
pub fn apply_file(
    client: &mut postgres::Client,
    sink: &GeneratedSink,
    path: &str,
) -> Result<(), postgres::Error> {
    run_in_transaction(client, &file(sink, path).contents)
}

/// Applies every file of `sink` in apply order, each in its own transaction.
///
/// # Panics
///
/// Panics, naming the file and the server's error, when a file fails.
pub fn apply_sink(client: &mut postgres::Client, sink: &GeneratedSink) {
    for f in files_in_apply_order(sink) {
        if let Err(e) = run_in_transaction(client, &f.contents) {
            panic!(
                "applying {}/{} failed: {}",
                sink.name,
                f.path,
                describe_error(&e)
            );
        }
    }
}

/// Applies both example sinks (directory, then billing) in apply order.
pub fn apply_example(client: &mut postgres::Client) {
    apply_sink(client, sink(DIRECTORY));
    apply_sink(client, sink(BILLING));
}

/// The server's error with SQLSTATE, message, detail, hint and position, for panic messages.
pub fn describe_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut out = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                let _ = write!(out, "\nDETAIL: {detail}");
            }
            if let Some(hint) = db.hint() {
                let _ = write!(out, "\nHINT: {hint}");
            }
            if let Some(position) = db.position() {
                let _ = write!(out, "\nPOSITION: {position:?}");
            }
            if let Some(context) = db.where_() {
                let _ = write!(out, "\nCONTEXT: {context}");
            }
            out
        }
        None => e.to_string(),
    }
}

/// The in-memory migrations of a generated sink, not yet verified (the
/// migrator verifies them before applying).
pub fn migrations_of(sink: &GeneratedSink) -> cdc_core::Migrations {
    use cdc_core::{checksum::split_migration, DatabaseEntry, FileCategory, MigrationFile};
    let files = sink
        .files
        .iter()
        .map(|f| MigrationFile {
            path: f.path.clone().into(),
            category: FileCategory::of_path(&f.path),
            checksum: split_migration(&f.contents)
                .expect("checksum line")
                .embedded,
            contents: f.contents.clone().into(),
        })
        .collect();
    let databases = sink
        .manifest
        .sink_target
        .databases
        .iter()
        .map(|(env, db)| DatabaseEntry {
            env: env.clone().into(),
            database: db.clone().into(),
        })
        .collect();
    cdc_core::Migrations::from_parts(sink.name.clone(), databases, files)
}
