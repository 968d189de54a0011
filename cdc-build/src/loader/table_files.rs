//! Table YAML files (`services/_schemas/<service>/<schema>/<Table>.yaml`): lookup, parsing, checks and the parse cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::findings::{unreadable, Finding};
use super::services::is_yaml;
use super::Loader;
use crate::location::YamlPath;
use crate::model::RawTable;
use crate::yaml::{parse_yaml, read_text};

/// A parsed table file, or the problems found in it.
type ParsedTable = Result<Arc<RawTable>, Vec<Finding>>;

/// Table files parsed so far, by path; `None` for a file whose problems were
/// already recorded. Only the parsed table is kept, never the file's text:
/// a problem found later is located by reading the file again when reported.
#[derive(Debug, Default)]
pub(super) struct TableFiles {
    parsed: HashMap<PathBuf, Option<Arc<RawTable>>>,
    /// Per `_schemas/<service>` directory: lowercased `schema/table` → the files.
    indexes: HashMap<PathBuf, HashMap<String, Vec<PathBuf>>>,
}

impl TableFiles {
    /// The table files of a service by lowercased `schema/table`, listed once.
    fn index_of(&mut self, schemas_dir: &Path) -> &HashMap<String, Vec<PathBuf>> {
        self.indexes
            .entry(schemas_dir.to_path_buf())
            .or_insert_with(|| {
                let mut index: HashMap<String, Vec<PathBuf>> = HashMap::new();
                for (key, path) in table_index(schemas_dir) {
                    index.entry(key.to_lowercase()).or_default().push(path);
                }
                index
            })
    }

    /// The parsed table at `path`, when it is cached and valid.
    pub fn cached(&self, path: &Path) -> Option<Arc<RawTable>> {
        self.parsed.get(path).cloned().flatten()
    }

    fn contains(&self, path: &Path) -> bool {
        self.parsed.contains_key(path)
    }

    /// Records a parse result: the file as an input, its problems as errors.
    fn insert(
        &mut self,
        path: PathBuf,
        parsed: ParsedTable,
        errors: &mut Vec<Finding>,
        inputs: &mut Vec<PathBuf>,
    ) {
        inputs.push(path.clone());
        let cached = match parsed {
            Ok(table) => Some(table),
            Err(findings) => {
                errors.extend(findings);
                None
            }
        };
        self.parsed.insert(path, cached);
    }

    /// Parses the files at `paths` in parallel (YAML parsing is the bulk of
    /// loading). Paths that are not files are left out: the lookup reports them.
    pub fn prefetch(
        &mut self,
        root: &Path,
        paths: Vec<PathBuf>,
        errors: &mut Vec<Finding>,
        inputs: &mut Vec<PathBuf>,
    ) {
        use rayon::prelude::*;
        let mut paths: Vec<PathBuf> = paths.into_iter().filter(|p| !self.contains(p)).collect();
        paths.sort();
        paths.dedup();
        let parsed: Vec<(PathBuf, ParsedTable)> = paths
            .into_par_iter()
            .filter(|path| path.is_file())
            .map(|path| {
                let result = parse_table_file(root, &path);
                (path, result)
            })
            .collect();
        for (path, result) in parsed {
            self.insert(path, result, errors, inputs);
        }
    }

    /// Drops every parsed table, using all threads (a large project's tables
    /// take a while to free).
    pub fn free_in_parallel(&mut self) {
        use rayon::prelude::*;
        std::mem::take(&mut self.parsed)
            .into_par_iter()
            .for_each(drop);
    }
}

impl Loader {
    /// The table file for `<schema>.<table>`, matched case-insensitively
    /// (MSSQL names are case-insensitive): `Ok(None)` when there is none,
    /// `Err` with every match when names differing only in case (or in the
    /// `.yaml`/`.yml` extension) leave the choice open.
    pub(super) fn find_table(
        &mut self,
        schemas_dir: &Path,
        schema: &str,
        table: &str,
    ) -> Result<Option<PathBuf>, Vec<PathBuf>> {
        let wanted = format!("{schema}/{table}").to_lowercase();
        let found = match self.tables.index_of(schemas_dir).get(&wanted) {
            None => return Ok(None),
            Some(found) => found.clone(),
        };
        match found.as_slice() {
            [one] => {
                if let Some(parent) = one.parent() {
                    self.inputs.push(parent.to_path_buf());
                }
                Ok(Some(one.clone()))
            }
            _ => Err(found),
        }
    }

    /// The parsed table at `path`, parsing it now when it was not prefetched;
    /// `None` when it has problems (recorded).
    pub(super) fn load_table(&mut self, path: &Path) -> Option<Arc<RawTable>> {
        if !self.tables.contains(path) {
            let parsed = parse_table_file(&self.root, path);
            self.tables.insert(
                path.to_path_buf(),
                parsed,
                &mut self.errors,
                &mut self.inputs,
            );
        }
        self.tables.cached(path)
    }
}

/// Up to three `<schema>.<Table>` names of a service's tables that look like `wanted`.
pub(super) fn closest_tables(schemas_dir: &Path, wanted: &str) -> Vec<String> {
    let wanted = wanted.replace('.', "/").to_lowercase();
    let mut scored: Vec<(f64, String)> = table_index(schemas_dir)
        .into_iter()
        .map(|(key, _)| {
            (
                strsim::jaro_winkler(&wanted, &key.to_lowercase()),
                key.replace('/', "."),
            )
        })
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(3).map(|(_, key)| key).collect()
}

/// `schema/Table` → path for every table YAML of a service, sorted.
fn table_index(schemas_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(schemas) = std::fs::read_dir(schemas_dir) else {
        return out;
    };
    for schema in schemas
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
    {
        let Ok(files) = std::fs::read_dir(&schema) else {
            continue;
        };
        let schema_name = file_name(&schema);
        for file in files.filter_map(Result::ok).map(|e| e.path()) {
            if is_yaml(&file) {
                if let Some(stem) = file.file_stem() {
                    out.push((format!("{schema_name}/{}", stem.to_string_lossy()), file));
                }
            }
        }
    }
    out.sort();
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads, parses and checks one table YAML against its location
/// (`table` and `schema` must name its file and directory).
fn parse_table_file(root: &Path, path: &Path) -> ParsedTable {
    let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    let text = read_text(path, &rel).map_err(|e| unreadable(&rel, e))?;
    let table = match crate::fast_table::parse_simple_table(&text) {
        Some(table) => table,
        None => parse_yaml::<RawTable>(&rel, &text).map_err(|d| vec![d.into()])?,
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().map(file_name).unwrap_or_default();
    let mut problems = Vec::new();
    for (field, value, expected) in [
        ("table", &table.table, &stem),
        ("schema", &table.schema, &dir),
    ] {
        if !value.eq_ignore_ascii_case(expected) {
            problems.push(Finding::at(
                &rel,
                YamlPath::root().key(field),
                format!("`{field}: {value}` does not match the file's location (`{expected}`)"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(Arc::new(table))
    } else {
        Err(problems)
    }
}
