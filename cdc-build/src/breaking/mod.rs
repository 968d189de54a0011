//! Breaking changes on purpose: the explicit, checksummed migration files that `generate --allow-breaking` writes, and the ones earlier runs wrote, kept as they are.
//!
//! [`plan_breaking`] compares each table's YAML with its generated table file
//! (the [`diff`](crate::diff) engine) and collects the breaking changes, which
//! `converge_table` refuses at apply time. Without `--allow-breaking`,
//! `generate` stops and names them; with it, each table with breaking
//! changes gets one new file, `01-tables/breaking/<Table>.<n>.sql`
//! ([`cdc_core::layout::breaking_file`]), listed in the manifest just before
//! the table's own file, that performs them: type conversions
//! (`ALTER COLUMN ... TYPE ... USING ...::...`), NOT NULL (NULLs filled with the
//! default, or a clear error), a new primary key (after checking for NULLs
//! and duplicates), dropped columns; the staging table follows. Every
//! statement is guarded by the catalog, so the file is a no-op on a database
//! that has the new shape or no table yet.
//!
//! A file written once is never rendered again: later runs read it from the
//! sink directory ([`read_kept_files`]) and keep its bytes, so its checksum
//! keeps verifying and a database that applied it skips it.

pub mod sql;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cdc_core::checksum::assemble;
use cdc_core::layout::{breaking_file, table_file, BREAKING_DIR, REGENERATE_COMMAND};
use rayon::prelude::*;

use crate::diff::ddl::{read_table_file, FileTable};
use crate::diff::{compare_table, Change, ChangeKind, DiffError, Severity};
use crate::ident::qualified;
use crate::project::{Project, SinkTable};
use crate::render::{header, mssql_name};
use sql::{push_column_renames, push_step, Step};

/// The flag of `generate` that writes breaking changes.
pub const ALLOW_BREAKING_FLAG: &str = "--allow-breaking";

/// A breaking-change file of a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingFile {
    /// The table it prepares.
    pub table: String,
    /// Its number among the table's breaking files (1, 2, ...): the apply order.
    pub number: u32,
    /// Path relative to the sink directory.
    pub path: String,
    /// Full contents: header, checksum line, body.
    pub contents: String,
}

/// The breaking changes of one table that no file performs yet.
#[derive(Debug, Clone)]
pub struct TableBreaking<'p> {
    /// The table as the YAML describes it.
    pub table: &'p SinkTable,
    /// Its breaking changes, in diff order.
    pub changes: Vec<Change>,
    steps: Vec<Step>,
}

/// The breaking changes and kept files of one sink.
#[derive(Debug, Clone)]
pub struct SinkBreaking<'p> {
    /// Sink name.
    pub sink: String,
    /// Files earlier runs wrote, for tables the sink still has, by table and number.
    pub kept: Vec<BreakingFile>,
    /// Tables with breaking changes, by name.
    pub tables: Vec<TableBreaking<'p>>,
}

/// Every breaking change of a project, and the breaking files already written.
#[derive(Debug, Clone)]
pub struct BreakingPlan<'p> {
    /// Sinks in project order.
    pub sinks: Vec<SinkBreaking<'p>>,
}

/// Why breaking changes could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum BreakingError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A table file could not be compared with its YAML.
    #[error(transparent)]
    Diff(#[from] DiffError),
}

impl<'p> BreakingPlan<'p> {
    /// Whether no table has a breaking change without its file.
    pub fn is_empty(&self) -> bool {
        self.sinks.iter().all(|s| s.tables.is_empty())
    }

    /// Every breaking change with its sink and table.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &str, &Change)> {
        self.sinks.iter().flat_map(|sink| {
            sink.tables.iter().flat_map(move |t| {
                t.changes
                    .iter()
                    .map(move |c| (sink.sink.as_str(), t.table.target_table.as_str(), c))
            })
        })
    }

    /// The breaking files of `sink`: the kept ones and, when `allow`, one new
    /// file per table with breaking changes, stamped `generated_at`; by table and number.
    pub fn files(&self, sink: &str, generated_at: &str, allow: bool) -> Vec<BreakingFile> {
        let Some(plan) = self.sinks.iter().find(|s| s.sink == sink) else {
            return Vec::new();
        };
        let mut files = plan.kept.clone();
        if allow {
            for table in &plan.tables {
                let number = plan
                    .kept
                    .iter()
                    .filter(|f| f.table == table.table.target_table)
                    .map(|f| f.number)
                    .max()
                    .unwrap_or(0)
                    + 1;
                files.push(render_breaking_file(table, number, generated_at));
            }
        }
        files.sort_by(|a, b| (&a.table, a.number).cmp(&(&b.table, b.number)));
        files
    }

    /// The refusal shown when breaking changes are found without `--allow-breaking`.
    pub fn refusal(&self) -> String {
        let mut out = String::from(
            "breaking changes: apply would refuse them and generate does not write them by accident:\n",
        );
        for (sink, table, change) in self.changes() {
            out.push_str(&format!("  {sink} {table}: {}", change.kind.label()));
            if let Some(column) = &change.column {
                out.push_str(&format!(" {column:?}"));
            }
            match (&change.from, &change.to) {
                (Some(from), Some(to)) => out.push_str(&format!(" ({from} -> {to})")),
                (None, Some(to)) => out.push_str(&format!(" ({to})")),
                (Some(from), None) => out.push_str(&format!(" (was {from})")),
                (None, None) => {}
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "review them (`cdc manage-migrations diff`), then write an explicit migration for each table with `{REGENERATE_COMMAND} {ALLOW_BREAKING_FLAG}`"
        ));
        out
    }
}

/// The steps that perform `changes` (the breaking changes of `table` against `found`).
fn steps_for(table: &SinkTable, found: &FileTable, changes: &[Change]) -> Vec<Step> {
    let column = |name: &Option<String>| {
        name.as_deref()
            .and_then(|n| table.columns.iter().find(|c| c.name == n))
    };
    let mut steps = Vec::new();
    let mut drops = Vec::new();
    for change in changes {
        match (change.kind, column(&change.column)) {
            (ChangeKind::ColumnTypeChanged, Some(c)) => steps.push(Step::ConvertType {
                column: c.name.clone(),
                pg_type: c.pg_type.clone(),
            }),
            (ChangeKind::NullabilityChanged, Some(c)) => steps.push(Step::SetNotNull {
                column: c.name.clone(),
                default: c.default.clone(),
            }),
            (ChangeKind::ColumnAdded, Some(c)) => steps.push(Step::AddRequiredColumn {
                column: c.name.clone(),
            }),
            (ChangeKind::ColumnRemoved, _) => {
                if let Some(name) = &change.column {
                    drops.push(Step::DropColumn {
                        column: name.clone(),
                    });
                }
            }
            (ChangeKind::PrimaryKeyChanged, _) => {
                let known = |name: &str| {
                    found.columns.iter().any(|c| c.name == name)
                        || table
                            .renames
                            .iter()
                            .any(|r| r.to == name && found.columns.iter().any(|c| c.name == r.from))
                };
                let added = table
                    .primary_key
                    .iter()
                    .filter(|k| !known(k))
                    .filter_map(|k| table.columns.iter().find(|c| &c.name == k))
                    .map(|c| (c.name.clone(), c.pg_type.clone()))
                    .collect();
                steps.push(Step::PrimaryKey {
                    from: found.primary_key.clone(),
                    to: table.primary_key.clone(),
                    added,
                });
            }
            _ => {}
        }
    }
    // Columns go last: a key step may still need to drop the constraint that holds them.
    steps.extend(drops);
    steps
}

/// Renders the `number`th breaking file of a table.
fn render_breaking_file(
    table: &TableBreaking<'_>,
    number: u32,
    generated_at: &str,
) -> BreakingFile {
    let t = table.table;
    let path = breaking_file(&t.target_table, number);
    let source = format!(
        "Source: MSSQL {}{}",
        t.source_database
            .as_deref()
            .map(|d| format!("[{}].", d.replace(']', "]]")))
            .unwrap_or_default(),
        mssql_name(&t.source_schema, &t.source_table)
    );
    let target = format!("Target: {}", qualified(&t.target_schema, &t.target_table));
    let purpose = format!(
        "Purpose: breaking changes made on purpose ({REGENERATE_COMMAND} {ALLOW_BREAKING_FLAG}), applied once before {}",
        table_file(&t.target_table)
    );
    let mut body = String::with_capacity(2_000);
    body.push_str(
        "-- Review before applying: these changes can alter or lose data. Each step is\n",
    );
    body.push_str(
        "-- guarded by the catalog: it does nothing where the table already has the new\n",
    );
    body.push_str("-- shape or does not exist yet (a new database gets it from the table file).\n");
    for change in &table.changes {
        body.push_str("--   ");
        body.push_str(change.kind.label());
        if let Some(column) = &change.column {
            crate::render::push_comment_text(&mut body, &format!(" {column:?}"));
        }
        let values = match (&change.from, &change.to) {
            (Some(from), Some(to)) => format!(": {from} -> {to}"),
            (None, Some(to)) => format!(": {to}"),
            (Some(from), None) => format!(": was {from}"),
            (None, None) => String::new(),
        };
        crate::render::push_comment_text(&mut body, &values);
        body.push('\n');
    }
    body.push('\n');
    push_column_renames(&mut body, t);
    for step in &table.steps {
        push_step(&mut body, t, step);
        body.push('\n');
    }
    let contents = assemble(&header(generated_at, &[source, target, purpose]), &body);
    BreakingFile {
        table: t.target_table.clone(),
        number,
        path,
        contents,
    }
}

/// The table and number of a breaking file's name (`<Table>.<n>.sql`).
fn parse_name(name: &str) -> Option<(&str, u32)> {
    let (table, number) = name.strip_suffix(".sql")?.rsplit_once('.')?;
    if table.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.starts_with('0') {
        return None;
    }
    Some((table, number.parse().ok()?))
}

/// Whether `path` (relative to a sink directory) names a breaking file of `table`.
pub fn is_breaking_file_of(path: &str, table: &str) -> bool {
    path.strip_prefix(BREAKING_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(parse_name)
        .is_some_and(|(name, _)| name == table)
}

/// The breaking files in `sink_dir` that cdc wrote (the generated header), by
/// table and number; a missing directory holds none. Other files are left to
/// the writer, which keeps and names them.
pub fn read_kept_files(sink_dir: &Path) -> Result<Vec<BreakingFile>, BreakingError> {
    let dir = sink_dir.join(BREAKING_DIR);
    if !dir.is_dir() {
        // Missing, or a sink path that is not a directory (the writer reports that).
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(BreakingError::Read { path: dir, source }),
    };
    let marker = format!("-- DO NOT EDIT — AUTO-GENERATED by: {REGENERATE_COMMAND}");
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| BreakingError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((table, number)) = parse_name(&name) else {
            continue;
        };
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let contents = std::fs::read_to_string(&path)
            .map_err(|source| BreakingError::Read { path, source })?;
        if !contents.lines().take(4).any(|l| l == marker) {
            continue;
        }
        files.push(BreakingFile {
            table: table.to_string(),
            number,
            path: breaking_file(table, number),
            contents,
        });
    }
    files.sort_by(|a, b| (&a.table, a.number).cmp(&(&b.table, b.number)));
    Ok(files)
}

/// The breaking changes of `table` against its file in `dir`; `None` when it
/// has none or no file yet.
fn table_breaking<'p>(
    dir: &Path,
    table: &'p SinkTable,
) -> Result<Option<TableBreaking<'p>>, BreakingError> {
    let path = dir.join(table_file(&table.target_table));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DiffError::Read { path, source }.into()),
    };
    let found = read_table_file(&text).map_err(|message| DiffError::Parse { path, message })?;
    let changes: Vec<Change> = compare_table(table, &found)
        .into_iter()
        .filter(|c| c.severity == Severity::Breaking)
        .collect();
    if changes.is_empty() {
        return Ok(None);
    }
    let steps = steps_for(table, &found, &changes);
    Ok(Some(TableBreaking {
        table,
        changes,
        steps,
    }))
}

/// The breaking changes of every sink table of `project` (only `only`, when
/// given) against its table file under `migrations/<sink>/`, with the
/// breaking files already there for the tables the sink still has.
pub fn plan_breaking<'p>(
    project: &'p Project,
    migrations: &Path,
    only: Option<&str>,
) -> Result<BreakingPlan<'p>, BreakingError> {
    let mut sinks = Vec::new();
    for sink in project.sinks() {
        let dir = migrations.join(&sink.name);
        let declared: BTreeSet<&str> = sink
            .tables
            .iter()
            .map(|t| t.target_table.as_str())
            .collect();
        let kept = read_kept_files(&dir)?
            .into_iter()
            .filter(|f| declared.contains(f.table.as_str()))
            .collect();
        // A sink path that is not a directory holds no table file (the writer reports it).
        let candidates: Vec<&SinkTable> = if dir.is_dir() {
            sink.tables
                .iter()
                .filter(|t| only.is_none_or(|only| only == t.target_table))
                .collect()
        } else {
            Vec::new()
        };
        let tables = candidates
            .par_iter()
            .map(|table| table_breaking(&dir, table))
            .collect::<Result<Vec<_>, BreakingError>>()?
            .into_iter()
            .flatten()
            .collect();
        sinks.push(SinkBreaking {
            sink: sink.name.clone(),
            kept,
            tables,
        });
    }
    Ok(BreakingPlan { sinks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PgType;

    /// The bundled `Invoice` table, edited by `edit`, against its committed file.
    fn invoice_plan(edit: impl FnOnce(&mut SinkTable)) -> (SinkTable, FileTable) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = crate::load_project(&root, &crate::Filter::default()).unwrap();
        let mut table = project
            .sinks()
            .flat_map(|s| s.tables.iter())
            .find(|t| t.target_table == "Invoice")
            .unwrap()
            .clone();
        edit(&mut table);
        let file = include_str!("../../../migrations/sink_asma.billing/01-tables/Invoice.sql");
        (table, read_table_file(file).unwrap())
    }

    #[test]
    fn each_breaking_change_becomes_a_guarded_step_in_one_checksummed_file() {
        let (table, found) = invoice_plan(|t| {
            for c in &mut t.columns {
                if c.name == "Number" {
                    c.pg_type = PgType::parse("varchar(10)").unwrap();
                }
                if c.name == "CustomerId" {
                    c.not_null = true;
                }
            }
            t.columns.retain(|c| c.name != "Paid");
            t.primary_key.push("Number".into());
        });
        let changes: Vec<Change> = compare_table(&table, &found)
            .into_iter()
            .filter(|c| c.severity == Severity::Breaking)
            .collect();
        let steps = steps_for(&table, &found, &changes);
        assert!(
            matches!(&steps[..], [
                Step::ConvertType { column: a, .. },
                Step::PrimaryKey { from, to, added },
                Step::DropColumn { column: d },
            ] if a == "Number" && from == &["InvoiceId"] && to == &["InvoiceId", "Number"]
                && added.is_empty() && d == "Paid"),
            "{steps:?}"
        );
        let breaking = TableBreaking {
            table: &table,
            changes,
            steps,
        };
        let file = render_breaking_file(&breaking, 3, "2000-01-01 00:00:00 UTC");
        assert_eq!(file.path, "01-tables/breaking/Invoice.3.sql");
        let split = cdc_core::checksum::split_migration(&file.contents).unwrap();
        split.verify().unwrap();
        let body = split.body;
        let at = |needle: &str| {
            body.find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in\n{body}"))
        };
        assert!(
            at(
                r#"ALTER TABLE "billing"."Invoice" ALTER COLUMN "Number" TYPE varchar(10) USING "Number"::varchar(10)"#
            ) < at(r#"ALTER TABLE "billing"."stg_Invoice" ALTER COLUMN "Number" TYPE varchar(10)"#)
        );
        assert!(
            at("GROUP BY \"InvoiceId\", \"Number\" HAVING count(*) > 1")
                < at("ADD PRIMARY KEY (\"InvoiceId\", \"Number\")")
        );
        assert!(
            at("ADD PRIMARY KEY")
                < at(r#"ALTER TABLE IF EXISTS "billing"."Invoice" DROP COLUMN IF EXISTS "Paid""#)
        );
        assert!(body.contains(
            r#"ALTER TABLE IF EXISTS "billing"."stg_Invoice" DROP COLUMN IF EXISTS "Paid""#
        ));
        assert!(body.contains("--   PRIMARY_KEY_CHANGED: (InvoiceId) -> (InvoiceId, Number)"));
    }

    #[test]
    fn kept_files_are_listed_before_their_table_and_never_drift() {
        use crate::output::{sync_sinks, ChangeKind, SyncMode};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = crate::load_project(&root, &crate::Filter::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let generate = |keep: bool| {
            let mut generated = crate::generate(
                &project,
                &crate::GenerateOptions::new("2000-01-01 00:00:00 UTC"),
            );
            if keep {
                generated.keep_breaking_files(dir.path()).unwrap();
            }
            generated
        };
        sync_sinks(&generate(false), dir.path(), None, SyncMode::Write).unwrap();
        let sink = dir.path().join("sink_asma.billing");
        let kept = assemble(&header("1999-01-01 00:00:00 UTC", &[]), "SELECT 1;\n");
        std::fs::create_dir_all(sink.join(BREAKING_DIR)).unwrap();
        std::fs::write(sink.join(breaking_file("Invoice", 1)), &kept).unwrap();
        // A file of a table the sink no longer has is not kept.
        std::fs::write(sink.join(breaking_file("Gone", 1)), &kept).unwrap();

        let plans = sync_sinks(&generate(true), dir.path(), None, SyncMode::Write).unwrap();
        let changed: Vec<(&str, ChangeKind)> = plans
            .iter()
            .flat_map(|p| p.changed().map(|c| (c.path.as_str(), c.kind)))
            .collect();
        assert_eq!(
            changed,
            [
                ("01-tables/breaking/Gone.1.sql", ChangeKind::Removed),
                ("manifest.yaml", ChangeKind::Modified)
            ]
        );
        assert_eq!(
            std::fs::read_to_string(sink.join(breaking_file("Invoice", 1))).unwrap(),
            kept,
            "kept byte for byte, its own Generated: line too"
        );
        let manifest = std::fs::read_to_string(sink.join("manifest.yaml")).unwrap();
        assert!(
            manifest.contains(
                "  - \"01-tables/breaking/Invoice.1.sql\"\n  - \"01-tables/Invoice.sql\"\n"
            ),
            "{manifest}"
        );
        let again = sync_sinks(&generate(true), dir.path(), None, SyncMode::Compare).unwrap();
        assert!(again.iter().all(|p| !p.is_changed()), "{again:?}");
    }

    #[test]
    fn kept_files_are_read_back_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let breaking = dir.path().join(BREAKING_DIR);
        std::fs::create_dir_all(&breaking).unwrap();
        let generated = assemble(&header("t", &[]), "SELECT 1;\n");
        std::fs::write(breaking.join("Invoice.2.sql"), &generated).unwrap();
        std::fs::write(breaking.join("Invoice.10.sql"), &generated).unwrap();
        std::fs::write(breaking.join("Mine.1.sql"), "-- by hand\nSELECT 1;\n").unwrap();
        std::fs::write(breaking.join("notes.txt"), "x").unwrap();
        let kept = read_kept_files(dir.path()).unwrap();
        let names: Vec<(&str, u32)> = kept.iter().map(|f| (f.table.as_str(), f.number)).collect();
        assert_eq!(names, [("Invoice", 2), ("Invoice", 10)]);
        assert_eq!(kept[0].contents, generated);
        assert!(read_kept_files(&dir.path().join("none"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn file_names_carry_table_and_number() {
        assert_eq!(parse_name("Invoice.1.sql"), Some(("Invoice", 1)));
        assert_eq!(
            parse_name("Order.Details.12.sql"),
            Some(("Order.Details", 12))
        );
        assert_eq!(parse_name("Invoice.sql"), None);
        assert_eq!(parse_name("Invoice.01.sql"), None);
        assert_eq!(parse_name("Invoice.x.sql"), None);
        assert_eq!(parse_name(".1.sql"), None);
        assert!(is_breaking_file_of(
            "01-tables/breaking/Invoice.2.sql",
            "Invoice"
        ));
        assert!(!is_breaking_file_of(
            "01-tables/breaking/InvoiceLine.2.sql",
            "Invoice"
        ));
        assert!(!is_breaking_file_of("01-tables/Invoice.2.sql", "Invoice"));
    }
}
