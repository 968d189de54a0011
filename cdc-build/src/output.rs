//! Writing what [`generate`](crate::generate()) produced: change detection, determinism, atomicity.
//!
//! The one writer of the build script and the CLI. A file whose content
//! differs from the existing one only in its `-- Generated:` line (or the
//! manifest's `generated_at`) is left untouched, so regenerating an unchanged
//! project writes nothing. A sink that changes is assembled in a temporary
//! sibling directory (changed files written, unchanged ones hard-linked) and
//! swapped in by rename, so a reader never sees a half-written sink and a
//! failed run leaves the old one in place; a single file (`rows.rs`) is written
//! beside its target and renamed over it.
//!
//! Files stream through one at a time: memory stays flat however large the sink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cdc_core::layout::{staging_file, table_file, MANIFEST_FILE, REGENERATE_COMMAND};
use serde::Serialize;

use crate::error::{Diagnostic, Error};
use crate::generate::Generated;
use crate::render::SinkRenderer;

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// New file.
    Added,
    /// Content changed.
    Modified,
    /// File no longer generated (its table left the sink).
    Removed,
    /// Same content (a different `Generated:` time does not count).
    Unchanged,
}

impl ChangeKind {
    /// Short label for listings.
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Removed => "removed",
            ChangeKind::Unchanged => "unchanged",
        }
    }
}

/// One file of a sink plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path relative to the sink directory.
    pub path: String,
    /// What happens to it.
    pub kind: ChangeKind,
}

/// What syncing one sink did, or would do.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// Sink name.
    pub name: String,
    /// The sink directory.
    pub dir: PathBuf,
    /// Every file, sorted by path.
    pub changes: Vec<FileChange>,
    /// Whether the directory was replaced.
    pub written: bool,
    /// Files in the sink directory that cdc did not generate (no generated
    /// header, or not SQL): kept as they are, never read by apply; worth a warning.
    pub foreign: Vec<String>,
}

impl SinkPlan {
    /// Whether anything differs from what is on disk.
    pub fn is_changed(&self) -> bool {
        self.changes.iter().any(|c| c.kind != ChangeKind::Unchanged)
    }

    /// Files that differ.
    pub fn changed(&self) -> impl Iterator<Item = &FileChange> {
        self.changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
    }

    /// How many files have a kind.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }
}

/// Whether to touch the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Compare only (`--dry-run`, `--check`).
    Compare,
    /// Compare and replace the directory when something changed.
    Write,
}

fn is_timestamp_line(line: &str) -> bool {
    line.starts_with("-- Generated: ") || line.starts_with("generated_at: ")
}

/// Drops the line that carries the generation time, for comparison.
fn without_timestamp(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !is_timestamp_line(line))
}

/// The text before and after its first timestamp line (the line's end
/// included in neither), or the whole text when it has none.
fn around_timestamp(text: &str) -> (&str, &str) {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if is_timestamp_line(line) {
            return (&text[..start], &text[start + line.len()..]);
        }
        start += line.len();
    }
    (text, "")
}

/// Whether two generated files differ only in their generation time.
pub fn same_ignoring_timestamp(a: &str, b: &str) -> bool {
    // Fast path: byte-equal around the first timestamp line, which is the
    // third line of every generated file. Otherwise compare line by line, which
    // also ignores line endings and further timestamp lines.
    around_timestamp(a) == around_timestamp(b) || without_timestamp(a).eq(without_timestamp(b))
}

/// Runs `f` on the text of a file, read into a buffer that each thread reuses
/// (comparing a large sink reads every file of it).
fn with_file_text<R>(path: &Path, f: impl FnOnce(&str) -> R) -> std::io::Result<R> {
    use std::cell::RefCell;
    use std::io::Read as _;
    thread_local! {
        static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
    }
    BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        std::fs::File::open(path)?.read_to_string(&mut buffer)?;
        let result = f(&buffer);
        if buffer.capacity() > 1 << 20 {
            // Do not keep a huge file's buffer alive.
            *buffer = String::new();
        }
        Ok(result)
    })
}

/// Relative paths (`/`-separated) of the SQL files and manifest in a sink directory.
pub fn existing_files(dir: &Path) -> Result<BTreeSet<String>, Error> {
    Ok(all_files(dir)?
        .into_iter()
        .filter(|rel| rel.ends_with(".sql") || rel == MANIFEST_FILE)
        .collect())
}

/// Relative paths (`/`-separated) of every file in a sink directory, whatever its name.
fn all_files(dir: &Path) -> Result<BTreeSet<String>, Error> {
    let mut out = BTreeSet::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(|e| Error::io(&current, e))? {
            let path = entry.map_err(|e| Error::io(&current, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                let parts: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect();
                out.insert(parts.join("/"));
            }
        }
    }
    Ok(out)
}

/// Whether a file was written by cdc: the manifest, or SQL whose header says so.
fn is_generated_file(dir: &Path, rel: &str) -> Result<bool, Error> {
    use std::io::Read as _;
    if rel == MANIFEST_FILE {
        return Ok(true);
    }
    if !rel.ends_with(".sql") {
        return Ok(false);
    }
    let path = dir.join(rel);
    let mut start = Vec::with_capacity(256);
    std::fs::File::open(&path)
        .and_then(|file| file.take(256).read_to_end(&mut start))
        .map_err(|e| Error::io(&path, e))?;
    let marker = format!("-- DO NOT EDIT — AUTO-GENERATED by: {REGENERATE_COMMAND}");
    Ok(String::from_utf8_lossy(&start).contains(&marker))
}

/// Sink directories under `dir` (those holding a manifest, which `apply
/// --sink` would apply) whose name is not in `declared`, sorted.
pub fn undeclared_sinks<'a>(
    dir: &Path,
    declared: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, Error> {
    let declared: BTreeSet<&str> = declared.into_iter().collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join(MANIFEST_FILE).is_file() && !declared.contains(name.as_str()) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Refuses a sink path that exists but is not a directory (replacing it would
/// lose a file that cdc did not write).
fn sink_path_is_usable(sink: &str, dir: &Path) -> Result<(), Error> {
    if dir.exists() && !dir.is_dir() {
        let message = format!(
            "the sink `{sink}` needs this path as its directory, but it is a file; move the file away"
        );
        return Err(Error::invalid(Diagnostic::new(dir, message)));
    }
    Ok(())
}

/// Syncs every sink of `generated` into `dir/<sink>` with [`sync_sink`]; every
/// sink path is checked first, so a bad one stops the run before anything is written.
pub fn sync_sinks(
    generated: &Generated<'_>,
    dir: &Path,
    only_table: Option<&str>,
    mode: SyncMode,
) -> Result<Vec<SinkPlan>, Error> {
    for sink in &generated.sinks {
        sink_path_is_usable(sink.name(), &dir.join(sink.name()))?;
    }
    generated
        .sinks
        .iter()
        .map(|sink| sync_sink(sink, &dir.join(sink.name()), only_table, mode))
        .collect()
}

/// Renders a sink's files in parallel and compares each with `dir`; in
/// [`SyncMode::Write`], changed files go to a staging directory that replaces
/// `dir` when anything differs. With `only_table`, only that table's files (and
/// the manifest) may change; the rest stay as they are on disk.
pub fn sync_sink(
    sink: &SinkRenderer<'_>,
    dir: &Path,
    only_table: Option<&str>,
    mode: SyncMode,
) -> Result<SinkPlan, Error> {
    use rayon::prelude::*;
    sink_path_is_usable(sink.name(), dir)?;
    let existing = all_files(dir)?;
    let scope = only_table.map(|table| (table, table_file(table), staging_file(table)));
    let in_scope = |path: &str| match &scope {
        None => true,
        Some((name, table, staging)) => {
            path == MANIFEST_FILE
                || path == table
                || path == staging
                || crate::breaking::is_breaking_file_of(path, name)
        }
    };
    let staging = std::sync::Mutex::new(StagingDir::new(dir));
    let paths = sink.paths();
    let results: Vec<Result<Option<FileChange>, Error>> = paths
        .par_iter()
        .enumerate()
        .map(|(index, &path)| {
            let new = sink.render_path(index);
            let kind = if existing.contains(path) {
                let old_path = dir.join(path);
                let same = with_file_text(&old_path, |old| same_ignoring_timestamp(old, &new))
                    .map_err(|e| Error::io(&old_path, e))?;
                if same || !in_scope(path) {
                    ChangeKind::Unchanged
                } else {
                    ChangeKind::Modified
                }
            } else if in_scope(path) {
                ChangeKind::Added
            } else {
                return Ok(None);
            };
            if kind != ChangeKind::Unchanged && mode == SyncMode::Write {
                let target = staging
                    .lock()
                    .map_err(|_| Error::io(dir, std::io::Error::other("lock poisoned")))?
                    .prepare(path)?;
                std::fs::write(&target, &new).map_err(|e| Error::io(&target, e))?;
            }
            Ok(Some(FileChange {
                path: path.to_string(),
                kind,
            }))
        })
        .collect();
    let mut staging = staging
        .into_inner()
        .map_err(|_| Error::io(dir, std::io::Error::other("lock poisoned")))?;
    let mut changes = Vec::with_capacity(results.len());
    for result in results {
        if let Some(change) = result? {
            changes.push(change);
        }
    }
    let generated: BTreeSet<&str> = paths.iter().copied().collect();
    let mut kept: Vec<String> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Unchanged)
        .map(|c| c.path.clone())
        .collect();
    let mut foreign = Vec::new();
    for path in existing.iter().filter(|p| !generated.contains(p.as_str())) {
        if !is_generated_file(dir, path)? {
            foreign.push(path.clone());
            kept.push(path.clone());
        } else if in_scope(path) {
            changes.push(FileChange {
                path: path.clone(),
                kind: ChangeKind::Removed,
            });
        } else {
            kept.push(path.clone());
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let mut plan = SinkPlan {
        name: sink.name().to_string(),
        dir: dir.to_path_buf(),
        changes,
        written: false,
        foreign,
    };
    if mode == SyncMode::Write && plan.is_changed() {
        for path in &kept {
            staging.keep(path)?;
        }
        staging.commit()?;
        plan.written = true;
    }
    Ok(plan)
}

/// A sink directory being assembled beside the real one.
struct StagingDir {
    target: PathBuf,
    temp: PathBuf,
    created: bool,
    committed: bool,
    /// Directories made inside `temp` so far.
    dirs: BTreeSet<PathBuf>,
}

impl StagingDir {
    fn new(target: &Path) -> StagingDir {
        let parent = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sink".to_string());
        StagingDir {
            target: target.to_path_buf(),
            temp: parent.join(format!(".{name}.tmp-{}", std::process::id())),
            created: false,
            committed: false,
            dirs: BTreeSet::new(),
        }
    }

    fn ensure(&mut self) -> Result<(), Error> {
        if !self.created {
            if self.temp.exists() {
                std::fs::remove_dir_all(&self.temp).map_err(|e| Error::io(&self.temp, e))?;
            }
            std::fs::create_dir_all(&self.temp).map_err(|e| Error::io(&self.temp, e))?;
            self.created = true;
        }
        Ok(())
    }

    /// The path of `rel` inside the staging directory, its parent made.
    fn prepare(&mut self, rel: &str) -> Result<PathBuf, Error> {
        self.ensure()?;
        let path = self.temp.join(rel);
        if let Some(dir) = path.parent() {
            if !self.dirs.contains(dir) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                self.dirs.insert(dir.to_path_buf());
            }
        }
        Ok(path)
    }

    /// Carries an unchanged file over: a hard link where possible, a copy otherwise.
    fn keep(&mut self, rel: &str) -> Result<(), Error> {
        let path = self.prepare(rel)?;
        let old = self.target.join(rel);
        if std::fs::hard_link(&old, &path).is_err() {
            std::fs::copy(&old, &path).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Error> {
        self.ensure()?;
        let backup = self.temp.with_extension("old");
        let had_old = self.target.exists();
        if had_old {
            if backup.exists() {
                std::fs::remove_dir_all(&backup).map_err(|e| Error::io(&backup, e))?;
            }
            std::fs::rename(&self.target, &backup).map_err(|e| Error::io(&self.target, e))?;
        }
        if let Err(e) = std::fs::rename(&self.temp, &self.target) {
            // Put the old sink back; the backup stays only if that fails too,
            // since it then holds the only copy.
            if had_old && std::fs::rename(&backup, &self.target).is_err() {
                return Err(Error::io(
                    &self.target,
                    std::io::Error::other(format!(
                        "{e}; the previous contents are in {}",
                        backup.display()
                    )),
                ));
            }
            return Err(Error::io(&self.target, e));
        }
        self.committed = true;
        if had_old {
            std::fs::remove_dir_all(&backup).map_err(|e| Error::io(&backup, e))?;
        }
        Ok(())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.created && !self.committed {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

/// Writes `contents` to `path` unless it already holds exactly that: into a
/// temporary sibling, renamed over `path`, so a reader never sees half a file.
/// Returns whether it wrote.
pub fn write_file_if_changed(path: &Path, contents: &str) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = std::fs::write(&temp, contents)
        .map_err(|e| Error::io(&temp, e))
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if written.is_err() {
        // Leave no temporary file behind.
        let _ = std::fs::remove_file(&temp);
    }
    written.map(|()| true)
}

/// Reads every file of a sink directory into memory (tests and tooling).
pub fn read_sink_dir(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    existing_files(dir)?
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            std::fs::read_to_string(&path)
                .map(|text| (rel, text))
                .map_err(|e| Error::io(&path, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_ignored() {
        let a = "-- x\n-- Generated: 2026-01-01\n-- y\nSELECT 1;\n";
        let b = "-- x\n-- Generated: 2027-02-02\n-- y\nSELECT 1;\n";
        assert!(same_ignoring_timestamp(a, b));
        assert!(same_ignoring_timestamp(a, &b.replace('\n', "\r\n")));
        assert!(!same_ignoring_timestamp(a, &b.replace("1;", "2;")));
        assert!(!same_ignoring_timestamp(a, &b.replace("-- y\n", "")));
        assert!(same_ignoring_timestamp(
            "generated_at: 1\nx: 1\n",
            "generated_at: 2\nx: 1\n"
        ));
        assert!(same_ignoring_timestamp("x", "x"));
        assert!(!same_ignoring_timestamp("x", "y"));
    }

    #[test]
    fn single_files_are_written_only_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdc/rows.rs");
        assert!(write_file_if_changed(&path, "a").unwrap());
        assert!(!write_file_if_changed(&path, "a").unwrap());
        assert!(write_file_if_changed(&path, "b").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b");
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file is left behind");

        let blocked = dir.path().join("cdc/blocked.rs");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write_file_if_changed(&blocked, "c").is_err());
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 2, "a failed write leaves no temporary file");
    }

    fn empty_sink(name: &str) -> crate::project::Sink {
        crate::project::Sink {
            name: name.to_string(),
            databases: [("dev".to_string(), "db".to_string())].into(),
            tables: Vec::new(),
        }
    }

    /// Every entry directly in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn files_cdc_did_not_generate_are_kept_and_named() {
        let root = tempfile::tempdir().unwrap();
        let sink = empty_sink("s");
        let renderer = SinkRenderer::new(&sink, "2000-01-01 00:00:00 UTC");
        let dir = root.path().join("s");
        sync_sink(&renderer, &dir, None, SyncMode::Write).unwrap();
        std::fs::write(dir.join("README.md"), "notes").unwrap();
        std::fs::write(dir.join("01-tables-extra.sql"), "SELECT 1;\n").unwrap();
        let stale = renderer.render_path(0).replace("CREATE SCHEMA", "-- was");
        std::fs::create_dir_all(dir.join("01-tables")).unwrap();
        std::fs::write(dir.join("01-tables/Gone.sql"), stale).unwrap();

        let compared = sync_sink(&renderer, &dir, None, SyncMode::Compare).unwrap();
        assert_eq!(compared.foreign, ["01-tables-extra.sql", "README.md"]);
        assert_eq!(compared.count(ChangeKind::Removed), 1, "{compared:?}");

        let written = sync_sink(&renderer, &dir, None, SyncMode::Write).unwrap();
        assert!(written.written);
        assert_eq!(written.foreign, ["01-tables-extra.sql", "README.md"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("README.md")).unwrap(),
            "notes"
        );
        assert!(dir.join("01-tables-extra.sql").is_file());
        assert!(
            !dir.join("01-tables/Gone.sql").exists(),
            "a generated file that left is removed"
        );
        assert_eq!(
            entries(root.path()),
            ["s"],
            "no staging or backup left behind"
        );
    }

    #[test]
    fn a_sink_path_that_is_a_file_is_refused_and_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let sink = empty_sink("s");
        let renderer = SinkRenderer::new(&sink, "2000-01-01 00:00:00 UTC");
        let dir = root.path().join("s");
        std::fs::write(&dir, "not a directory").unwrap();
        for mode in [SyncMode::Write, SyncMode::Compare] {
            let err = sync_sink(&renderer, &dir, None, mode).unwrap_err();
            assert!(err.to_string().contains("it is a file"), "{err}");
            assert_eq!(
                entries(root.path()),
                ["s"],
                "no `.s.old` or staging directory"
            );
            assert_eq!(std::fs::read_to_string(&dir).unwrap(), "not a directory");
        }
    }
}
