//! The resolved project: services, sinks and sink tables with their columns and derived names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cdc_core::layout::{staging_file, table_file};

use crate::columns::Column;
use crate::error::Diagnostic;
use crate::ident::derived_name;

/// A loaded project, ready to generate.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project root (the directory holding `services/`).
    pub root: PathBuf,
    /// Services in file-name order.
    pub services: Vec<Service>,
    /// Warnings found while loading (unknown types, missing customer_id templates, ...).
    pub warnings: Vec<Diagnostic>,
    /// Every file and directory read, for `cargo:rerun-if-changed`.
    pub inputs: Vec<PathBuf>,
}

impl Project {
    /// Every sink of every service, in order.
    pub fn sinks(&self) -> impl Iterator<Item = &Sink> {
        self.services.iter().flat_map(|s| s.sinks.iter())
    }
}

/// One service file.
#[derive(Debug, Clone)]
pub struct Service {
    /// Service name (the root key of the file).
    pub name: String,
    /// Sinks in name order.
    pub sinks: Vec<Sink>,
}

/// One sink target: one migrations directory.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Sink name, such as `sink_asma.directory`.
    pub name: String,
    /// Database per environment.
    pub databases: BTreeMap<String, String>,
    /// Tables in `(target schema, table)` order.
    pub tables: Vec<SinkTable>,
}

impl Sink {
    /// Distinct target schemas, sorted.
    pub fn schemas(&self) -> Vec<&str> {
        let mut schemas: Vec<&str> = self
            .tables
            .iter()
            .map(|t| t.target_schema.as_str())
            .collect();
        schemas.sort_unstable();
        schemas.dedup();
        schemas
    }
}

/// One table of a sink, with its resolved columns and the names derived from it.
#[derive(Debug, Clone)]
pub struct SinkTable {
    /// Target schema in PostgreSQL.
    pub target_schema: String,
    /// Target table name in PostgreSQL (also the file stem).
    pub target_table: String,
    /// Source database, when the table YAML names it.
    pub source_database: Option<String>,
    /// Source schema.
    pub source_schema: String,
    /// Source table.
    pub source_table: String,
    /// Final-table columns: source, templates, CDC metadata.
    pub columns: Vec<Column>,
    /// Primary key, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// The final table is managed elsewhere: check and extend it, never create it.
    pub target_exists: bool,
    /// Deletes mark rows instead of removing them.
    pub soft_delete: bool,
    /// Names derived from `target_table`: objects and files.
    pub names: TableNames,
    /// Columns renamed at the source (`renamed_from` in the table YAML), in
    /// column order: the table file renames them in place.
    pub renames: Vec<ColumnRename>,
    /// Placement on a Citus cluster (ignored by plain PostgreSQL).
    pub distribution: Distribution,
}

/// How a sink table is placed when the sink database runs Citus (DESIGN.md §12); plain
/// PostgreSQL ignores it (the generated calls are guarded by the extension's presence).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Distribution {
    /// An ordinary table on the coordinator (the default; `distribution: local`).
    #[default]
    Local,
    /// A reference table, replicated to every node (`distribution: reference`).
    Reference,
    /// A distributed table, sharded by this column of its primary key, with its staging and
    /// tombstone tables co-located (`distribution: {by: <column>}`).
    By(String),
}

impl Distribution {
    /// Whether Citus manages the table (distributed or reference): its staging table then
    /// carries no trigger.
    pub fn is_citus_table(&self) -> bool {
        !matches!(self, Distribution::Local)
    }
}

/// A column the table YAML declares `renamed_from` an older name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRename {
    /// The old name, as earlier migrations created it.
    pub from: String,
    /// The column's name now.
    pub to: String,
}

impl SinkTable {
    /// Whether the table has a staging table and a merge function (it needs a primary key).
    pub fn has_staging(&self) -> bool {
        !self.primary_key.is_empty()
    }
}

/// Name of the statement trigger on every staging table. Trigger names live in
/// their table's namespace, so one name serves every table.
pub const MARK_TRIGGER: &str = "cdc_mark_for_merge";

/// The names derived from a sink table's target name, computed once when the
/// table is loaded. Object names fit PostgreSQL's 63-byte limit (shortened
/// deterministically with a hash suffix by [`derived_name`]); file names are
/// relative to the sink directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Staging table (`stg_<Table>`).
    pub staging: String,
    /// Merge function (`sp_merge_<Table>`).
    pub merge_function: String,
    /// Positions of hard deletes, keyed by the primary key (`tomb_<Table>`).
    pub tombstones: String,
    /// Index on `__sync_timestamp` (`<Table>__sync_ts_idx`).
    pub sync_index: String,
    /// The final-table file (`01-tables/<Table>.sql`).
    pub table_file: String,
    /// The staging file (`01-tables/<Table>-staging.sql`), for tables with a primary key.
    pub staging_file: String,
}

impl TableNames {
    /// Derives every name from the target table's name.
    pub fn derive(target_table: &str) -> TableNames {
        TableNames {
            staging: derived_name("stg_", target_table, ""),
            merge_function: derived_name("sp_merge_", target_table, ""),
            tombstones: derived_name("tomb_", target_table, ""),
            sync_index: derived_name("", target_table, "__sync_ts_idx"),
            table_file: table_file(target_table),
            staging_file: staging_file(target_table),
        }
    }
}
