//! Writing generated sinks to disk: change detection, determinism, atomicity.
//!
//! A file whose content differs from the existing one only in its
//! `-- Generated:` line (or the manifest's `generated_at`) is left untouched, so
//! regenerating an unchanged project writes nothing. A sink that changes is
//! written completely into a temporary sibling directory and swapped in by
//! rename, so a reader never sees a half-written sink.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::render::{GeneratedSink, MANIFEST_FILE};

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// What writing one sink would do.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// Sink name.
    pub name: String,
    /// The sink directory.
    pub dir: PathBuf,
    /// Every file, sorted by path.
    pub changes: Vec<FileChange>,
    /// The directory's contents after the write: path → contents.
    contents: BTreeMap<String, String>,
}

impl SinkPlan {
    /// Whether anything would change on disk.
    pub fn is_changed(&self) -> bool {
        self.changes.iter().any(|c| c.kind != ChangeKind::Unchanged)
    }

    /// Files that would change.
    pub fn changed(&self) -> impl Iterator<Item = &FileChange> {
        self.changes.iter().filter(|c| c.kind != ChangeKind::Unchanged)
    }
}

/// Drops the line that carries the generation time, for comparison.
fn without_timestamp(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.starts_with("-- Generated: ") && !line.starts_with("generated_at: "))
}

fn same_ignoring_timestamp(a: &str, b: &str) -> bool {
    without_timestamp(a).eq(without_timestamp(b))
}

/// Reads the files currently in a sink directory (SQL and manifest).
pub fn read_existing(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).map_err(|e| Error::io(&current, e))? {
            let path = entry.map_err(|e| Error::io(&current, e))?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if rel.ends_with(".sql") || rel == MANIFEST_FILE {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                out.insert(rel, text);
            }
        }
    }
    Ok(out)
}

/// Plans the write of one sink into `dir`. With `only_table`, only that table's
/// files (and the manifest) may change; the rest stay as they are on disk.
pub fn plan_sink(dir: &Path, sink: &GeneratedSink, only_table: Option<&str>) -> Result<SinkPlan, Error> {
    let existing = read_existing(dir)?;
    let mut contents = BTreeMap::new();
    let mut changes = Vec::new();
    let in_scope = |path: &str| match only_table {
        None => true,
        Some(table) => {
            path == MANIFEST_FILE
                || path == format!("01-tables/{table}.sql")
                || path == format!("01-tables/{table}-staging.sql")
        }
    };
    for (path, new) in sink.all_files() {
        let old = existing.get(&path);
        let (kind, text) = match old {
            Some(old) if same_ignoring_timestamp(old, &new) => (ChangeKind::Unchanged, old.clone()),
            Some(old) if !in_scope(&path) => (ChangeKind::Unchanged, old.clone()),
            Some(_) => (ChangeKind::Modified, new),
            None if !in_scope(&path) => continue,
            None => (ChangeKind::Added, new),
        };
        changes.push(FileChange { path: path.clone(), kind });
        contents.insert(path, text);
    }
    for (path, old) in &existing {
        if contents.contains_key(path) {
            continue;
        }
        if in_scope(path) {
            changes.push(FileChange {
                path: path.clone(),
                kind: ChangeKind::Removed,
            });
        } else {
            contents.insert(path.clone(), old.clone());
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SinkPlan {
        name: sink.name.clone(),
        dir: dir.to_path_buf(),
        changes,
        contents,
    })
}

/// Writes a planned sink: nothing when unchanged, otherwise the whole directory
/// is built beside the old one and swapped in.
pub fn write_sink(plan: &SinkPlan) -> Result<bool, Error> {
    if !plan.is_changed() {
        return Ok(false);
    }
    let parent = plan.dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let file_name = plan
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sink".to_string());
    let staging_dir = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let backup_dir = parent.join(format!(".{file_name}.old-{}", std::process::id()));
    let cleanup = |dir: &Path| {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(dir);
        }
    };
    cleanup(&staging_dir);
    let result = (|| -> Result<(), Error> {
        for (path, text) in &plan.contents {
            let target = staging_dir.join(path);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::write(&target, text).map_err(|e| Error::io(&target, e))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        cleanup(&staging_dir);
        return Err(e);
    }
    let had_old = plan.dir.exists();
    if had_old {
        cleanup(&backup_dir);
        if let Err(e) = std::fs::rename(&plan.dir, &backup_dir) {
            cleanup(&staging_dir);
            return Err(Error::io(&plan.dir, e));
        }
    }
    if let Err(e) = std::fs::rename(&staging_dir, &plan.dir) {
        if had_old {
            let _ = std::fs::rename(&backup_dir, &plan.dir);
        }
        cleanup(&staging_dir);
        return Err(Error::io(&plan.dir, e));
    }
    cleanup(&backup_dir);
    Ok(true)
}
