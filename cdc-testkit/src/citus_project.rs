//! A project generated in memory and applied to a Citus cluster, and change events staged into its staging tables: what the Citus tests share.
//!
//! ```no_run
//! use cdc_testkit::citus::shared_cluster;
//! use cdc_testkit::citus_project::{apply_project, generate_project, stage_json};
//!
//! let cluster = shared_cluster();
//! let db = cluster.create_database("citus_merge");
//! let mut client = cluster.client(&db);
//! let sinks = generate_project(std::path::Path::new("path/to/project"));
//! apply_project(&mut client, &sinks);
//! stage_json(&mut client, "sales", "stg_Orders", r#"[{"TenantId": 1, "Id": 1, "__cdc_operation": "c"}]"#);
//! ```

use std::path::Path;

use cdc_build::GeneratedSink;
use cdc_runtime::Migrator;
use postgres::Client;

use crate::citus::CitusCluster;
use crate::fixture::{describe_error, files_in_apply_order, migrations_of, run_in_transaction};

/// The `Generated:` timestamp used for the in-memory generation.
const GENERATED_AT: &str = "2026-01-01 00:00:00 UTC";

/// Every sink of the project under `root`, generated in memory.
///
/// # Panics
///
/// Panics with the input errors if the project does not load.
pub fn generate_project(root: &Path) -> Vec<GeneratedSink> {
    let project = cdc_build::load_project(root, &cdc_build::Filter::default())
        .unwrap_or_else(|e| panic!("loading the project at {}: {e}", root.display()));
    cdc_build::generate(&project, &cdc_build::GenerateOptions::new(GENERATED_AT)).render_all()
}

/// A fresh database on `cluster` (every node, the extension, the nodes registered) with the
/// project under `root` generated and applied: the database's name, a coordinator client and
/// the generated sinks.
///
/// # Panics
///
/// Panics if the project does not load or a file fails.
pub fn cluster_database_with_project(
    cluster: &CitusCluster,
    prefix: &str,
    root: &Path,
) -> (String, Client, Vec<GeneratedSink>) {
    let db = cluster.create_database(prefix);
    let mut client = cluster.client(&db);
    let sinks = generate_project(root);
    apply_project(&mut client, &sinks);
    (db, client, sinks)
}

/// Applies every sink with the runtime's migrator (history, checksums, one transaction per
/// file), as a service does at boot, and returns how many files it applied.
///
/// # Panics
///
/// Panics with the failure report if a file fails.
pub fn apply_project(client: &mut Client, sinks: &[GeneratedSink]) -> usize {
    sinks
        .iter()
        .map(|sink| {
            let migrations = migrations_of(sink);
            let report = Migrator::new(&migrations)
                .apply(client)
                .unwrap_or_else(|e| panic!("applying sink {}: {e}", sink.name));
            report.applied_count()
        })
        .sum()
}

/// Runs every file of every sink again, in apply order, each in its own transaction, as if
/// its history row were gone: every file must be idempotent.
///
/// # Panics
///
/// Panics, naming the file and the server's error, when a file fails.
pub fn rerun_every_file(client: &mut Client, sinks: &[GeneratedSink]) {
    for sink in sinks {
        for file in files_in_apply_order(sink) {
            if let Err(e) = run_in_transaction(client, &file.contents) {
                panic!(
                    "re-running {}/{} failed: {}",
                    sink.name,
                    file.path,
                    describe_error(&e)
                );
            }
        }
    }
}

/// Stages rows given as a JSON array of objects (keys are column names of the staging table,
/// values are cast to the columns' types) into `schema.staging` with one statement, and
/// returns how many rows it inserted.
///
/// # Panics
///
/// Panics with the server's error when the insert fails.
pub fn stage_json(client: &mut Client, schema: &str, staging: &str, rows: &str) -> u64 {
    let relation = format!("{}.{}", quote(schema), quote(staging));
    let sql = format!(
        "INSERT INTO {relation} SELECT * FROM json_populate_recordset(NULL::{relation}, $1::text::json)"
    );
    client
        .execute(&sql, &[&rows])
        .unwrap_or_else(|e| panic!("staging into {relation}: {}", describe_error(&e)))
}

/// How Citus places `relation` (`"schema"."table"`): `by <column>`, `reference`, `local` for a
/// Citus-managed local table, `None` when Citus does not manage it.
///
/// # Panics
///
/// Panics with the server's error when the query fails.
pub fn placement(client: &mut Client, relation: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT CASE WHEN p.partmethod = 'h'
                         THEN 'by ' || column_to_column_name(p.logicalrelid, p.partkey)
                         WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END
               FROM pg_dist_partition AS p WHERE p.logicalrelid = $1::text::regclass",
            &[&relation],
        )
        .unwrap_or_else(|e| {
            panic!(
                "reading the placement of {relation}: {}",
                describe_error(&e)
            )
        })
        .map(|row| row.get(0))
}

/// One shard placement of a distributed table, from `citus_shards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlacement {
    /// The shard's position in its table's hash range (0-based, by the range's lower bound).
    pub index: i64,
    /// The worker's port.
    pub node_port: i32,
    /// The co-location group of the table.
    pub colocation_id: i32,
}

/// The shard placements of `relation` (`"schema"."table"`), in hash-range order.
///
/// # Panics
///
/// Panics with the server's error when the query fails.
pub fn shard_placements(client: &mut Client, relation: &str) -> Vec<ShardPlacement> {
    client
        .query(
            "SELECT (row_number() OVER (ORDER BY s.shardminvalue::bigint) - 1)::bigint,
                    cs.nodeport, cs.colocation_id
               FROM citus_shards AS cs
               JOIN pg_dist_shard AS s USING (shardid)
              WHERE cs.table_name = $1::text::regclass
              ORDER BY s.shardminvalue::bigint",
            &[&relation],
        )
        .unwrap_or_else(|e| panic!("reading the shards of {relation}: {}", describe_error(&e)))
        .iter()
        .map(|row| ShardPlacement {
            index: row.get(0),
            node_port: row.get(1),
            colocation_id: row.get(2),
        })
        .collect()
}

/// Quotes an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
