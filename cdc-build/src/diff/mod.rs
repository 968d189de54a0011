//! Schema diff: what the YAML changes compared with the generated table files, with each change's severity and what apply does with it.
//!
//! The YAML side goes through the generator's own column pipeline (the
//! [`Project`] that [`crate::load_project`] returns); the file side is read
//! by [`ddl::read_table_file`]. [`rules`] holds the one copy in Rust of the
//! rules `converge_table` applies at apply time. `cdc manage-migrations diff`
//! shows the [`DiffReport`]'s `Display` or, as JSON, its `Serialize`.
//! [`live`] builds the same report from the live catalog (`diff --env E`);
//! the comparison and the change types are cdc-core's
//! ([`cdc_core::schema`]), shared with the runtime's `verify_schema`.

pub mod compare;
pub mod ddl;
mod fast_ddl;
pub mod live;
pub mod rules;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use cdc_core::layout::{table_file, STAGING_SUFFIX, TABLES_DIR};
use rayon::prelude::*;
use serde::Serialize;

pub use compare::{compare_table, Change, ChangeKind};
pub use ddl::FileTable;
pub use rules::{ApplyAction, Severity};

use crate::project::{Project, Sink, SinkTable};

/// Why a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A table file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A table file holds no table this reader understands.
    #[error("{path}: cannot read the table it declares: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The changes of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDiff {
    /// Target table name (the file's name).
    pub table: String,
    /// The table file, relative to the sink directory.
    pub file: String,
    /// Changes, columns in YAML order, then removed columns, then the key.
    pub changes: Vec<Change>,
}

/// The changed tables of one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkDiff {
    /// Sink name.
    pub sink: String,
    /// Changed tables, by name.
    pub tables: Vec<TableDiff>,
}

/// What the YAML was compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffAgainst {
    /// The generated table files.
    Files,
    /// The database of this environment.
    Database(String),
}

impl DiffAgainst {
    fn is_files(&self) -> bool {
        *self == DiffAgainst::Files
    }
}

/// Every change from the generated files (or the database) to the YAML, by sink and table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// What the YAML was compared with (left out of JSON for the files).
    #[serde(skip_serializing_if = "DiffAgainst::is_files")]
    pub against: DiffAgainst,
    /// Sinks with at least one changed table, by name.
    pub sinks: Vec<SinkDiff>,
}

impl DiffReport {
    /// Whether the files match the YAML.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Every change with its sink and table.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &str, &Change)> {
        self.sinks.iter().flat_map(|sink| {
            sink.tables.iter().flat_map(move |table| {
                table
                    .changes
                    .iter()
                    .map(move |change| (sink.sink.as_str(), table.table.as_str(), change))
            })
        })
    }

    /// How many changes have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.changes()
            .filter(|(_, _, change)| change.severity == severity)
            .count()
    }
}

impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return match &self.against {
                DiffAgainst::Files => {
                    f.write_str("no changes: the generated table files match the YAML")
                }
                DiffAgainst::Database(env) => {
                    write!(f, "no changes: the database of `{env}` matches the YAML")
                }
            };
        }
        for sink in &self.sinks {
            writeln!(f, "{}", sink.sink)?;
            for table in &sink.tables {
                writeln!(f, "  {} ({})", table.table, table.file)?;
                for change in &table.changes {
                    write!(
                        f,
                        "    {:<8} {}",
                        change.severity.label(),
                        change.kind.label()
                    )?;
                    if let Some(column) = &change.column {
                        write!(f, " {column:?}")?;
                    }
                    match (&change.from, &change.to) {
                        (Some(from), Some(to)) => write!(f, ": {from} -> {to}")?,
                        (None, Some(to)) => write!(f, ": {to}")?,
                        (Some(from), None) => write!(f, ": was {from}")?,
                        (None, None) => {}
                    }
                    writeln!(f, "; apply: {} ({})", change.action.label(), change.reason)?;
                }
            }
        }
        let tables: usize = self.sinks.iter().map(|s| s.tables.len()).sum();
        write!(
            f,
            "{} change(s) in {tables} table(s): {} breaking, {} warning, {} info",
            self.changes().count(),
            self.count(Severity::Breaking),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        )
    }
}

/// The final-table files of a sink directory, by table name (staging files left out).
fn table_files(sink_dir: &Path) -> Result<BTreeSet<String>, DiffError> {
    let dir = sink_dir.join(TABLES_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(source) => return Err(DiffError::Read { path: dir, source }),
    };
    let mut tables = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|source| DiffError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(STAGING_SUFFIX) {
            continue;
        }
        if let Some(table) = name.strip_suffix(".sql") {
            tables.insert(table.to_string());
        }
    }
    Ok(tables)
}

/// Reads and parses one table file.
fn read_file_table(path: PathBuf) -> Result<FileTable, DiffError> {
    let text = std::fs::read_to_string(&path).map_err(|source| DiffError::Read {
        path: path.clone(),
        source,
    })?;
    ddl::read_table_file(&text).map_err(|message| DiffError::Parse { path, message })
}

/// The table files of every sink directory under `migrations/`, listed, read
/// and parsed ahead of the diff (see [`with_table_files`]). A file's problem
/// is kept with it and reported only if the diff looks at that file.
#[derive(Debug, Default)]
pub struct TableFiles {
    /// By sink directory name: the table names on disk.
    listed: HashMap<String, Result<BTreeSet<String>, DiffError>>,
    /// By sink, then table: the parsed file.
    parsed: HashMap<String, HashMap<String, Result<FileTable, DiffError>>>,
}

impl TableFiles {
    /// Lists, reads and parses every table file under `migrations/`, in parallel.
    pub fn read(migrations: &Path) -> TableFiles {
        let Ok(entries) = std::fs::read_dir(migrations) else {
            return TableFiles::default();
        };
        let sinks: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let listed: HashMap<String, Result<BTreeSet<String>, DiffError>> = sinks
            .into_iter()
            .map(|sink| {
                let tables = table_files(&migrations.join(&sink));
                (sink, tables)
            })
            .collect();
        let wanted: Vec<(&String, &String)> = listed
            .iter()
            .filter_map(|(sink, tables)| tables.as_ref().ok().map(|t| (sink, t)))
            .flat_map(|(sink, tables)| tables.iter().map(move |table| (sink, table)))
            .collect();
        let read: Vec<(&String, &String, Result<FileTable, DiffError>)> = wanted
            .into_par_iter()
            .map(|(sink, table)| {
                let path = migrations.join(sink).join(table_file(table));
                (sink, table, read_file_table(path))
            })
            .collect();
        let mut parsed: HashMap<String, HashMap<String, _>> = HashMap::new();
        for (sink, table, result) in read {
            parsed
                .entry(sink.clone())
                .or_default()
                .insert(table.clone(), result);
        }
        TableFiles { listed, parsed }
    }
}

/// Runs `load` (loading the project) while every table file under
/// `migrations/` is read and parsed on the other threads, for
/// [`diff_project_with`]: the files do not depend on the YAML, so the diff's
/// reading overlaps the loader's sequential steps.
pub fn with_table_files<T: Send>(
    migrations: &Path,
    load: impl FnOnce() -> T + Send,
) -> (T, TableFiles) {
    rayon::join(load, || TableFiles::read(migrations))
}

fn diff_table(
    sink_dir: &Path,
    sink: &str,
    table: &SinkTable,
    on_disk: &BTreeSet<String>,
    files: &TableFiles,
) -> Result<Vec<Change>, DiffError> {
    if !on_disk.contains(&table.target_table) {
        return Ok(vec![compare::table_added(table)]);
    }
    let read_ahead = files
        .parsed
        .get(sink)
        .and_then(|tables| tables.get(&table.target_table));
    if let Some(Ok(found)) = read_ahead {
        return Ok(compare_table(table, found));
    }
    // Not read ahead, or failed: read it now, for the error with its cause.
    let found = read_file_table(sink_dir.join(table_file(&table.target_table)))?;
    Ok(compare_table(table, &found))
}

fn diff_sink(
    sink: &Sink,
    sink_dir: &Path,
    only: Option<&str>,
    files: &TableFiles,
) -> Result<SinkDiff, DiffError> {
    let on_disk = match files.listed.get(&sink.name) {
        Some(Ok(listed)) => listed.clone(),
        _ => table_files(sink_dir)?,
    };
    let wanted = |name: &str| only.is_none_or(|only| only == name);
    let results: Vec<Result<TableDiff, DiffError>> = sink
        .tables
        .par_iter()
        .filter(|table| wanted(&table.target_table))
        .map(|table| {
            let changes = diff_table(sink_dir, &sink.name, table, &on_disk, files)?;
            Ok(TableDiff {
                table: table.target_table.clone(),
                file: table_file(&table.target_table),
                changes,
            })
        })
        .collect();
    // The first error in table order, whichever thread met it first.
    let mut tables = results.into_iter().collect::<Result<Vec<_>, DiffError>>()?;
    let declared: BTreeSet<&str> = sink
        .tables
        .iter()
        .map(|t| t.target_table.as_str())
        .collect();
    for name in &on_disk {
        if !declared.contains(name.as_str()) && wanted(name) {
            tables.push(TableDiff {
                table: name.clone(),
                file: table_file(name),
                changes: vec![compare::table_removed()],
            });
        }
    }
    tables.retain(|t| !t.changes.is_empty());
    tables.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(SinkDiff {
        sink: sink.name.clone(),
        tables,
    })
}

/// Compares every sink of `project` (as loaded, with its filter) with the
/// table files under `migrations/<sink>/01-tables/`; `only` keeps one table.
pub fn diff_project(
    project: &Project,
    migrations: &Path,
    only: Option<&str>,
) -> Result<DiffReport, DiffError> {
    diff_project_with(project, migrations, only, &TableFiles::default())
}

/// [`diff_project`] with table files read ahead ([`with_table_files`]); a
/// file not among them is read now.
pub fn diff_project_with(
    project: &Project,
    migrations: &Path,
    only: Option<&str>,
    files: &TableFiles,
) -> Result<DiffReport, DiffError> {
    let mut sinks = Vec::new();
    for sink in project.sinks() {
        let diff = diff_sink(sink, &migrations.join(&sink.name), only, files)?;
        if !diff.tables.is_empty() {
            sinks.push(diff);
        }
    }
    sinks.sort_by(|a, b| a.sink.cmp(&b.sink));
    Ok(DiffReport {
        against: DiffAgainst::Files,
        sinks,
    })
}
