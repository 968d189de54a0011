//! What the merge benchmarks share: a tiny generated project, a tuned throwaway server, synthetic staging, and the one place that calls the merge.
//!
//! The project is one service `bench` with one sink (schema [`SCHEMA`]) whose tables all have
//! the same 8 source columns ([`SOURCE_COLUMNS`]); it is written to a temporary directory,
//! loaded, generated and applied with the library APIs, as the merge tests do with the example.
//!
//! Every bench uses a part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cdc_core::layout::{MANAGEMENT_SCHEMA, SCHEMAS_DIR, SERVICES_DIR};
use cdc_testkit::fixture::{apply_sink, describe_error};
use cdc_testkit::PgServer;
use postgres::{Client, SimpleQueryMessage};

/// The sink's target schema.
pub const SCHEMA: &str = "bench";

/// The source columns of every bench table (the key first), as generated from the YAML below.
pub const SOURCE_COLUMNS: [&str; 8] = [
    "id",
    "name",
    "email",
    "amount",
    "qty",
    "active",
    "created_at",
    "note",
];

/// The metadata columns a staged event sets and the final table keeps.
pub const EVENT_COLUMNS: [&str; 4] = [
    "__cdc_operation",
    "__source_ts_ms",
    "__kafka_offset",
    "__source",
];

/// The table YAML (MSSQL shape) of a bench table; `{table}` is replaced by its name.
const TABLE_YAML: &str = "schema: dbo
table: {table}
columns:
  - {name: id, type: int, nullable: false, primary_key: true}
  - {name: name, type: nvarchar(100), nullable: false}
  - {name: email, type: varchar(255), nullable: true}
  - {name: amount, type: decimal, precision: 12, scale: 2, nullable: true}
  - {name: qty, type: int, nullable: true}
  - {name: active, type: bit, nullable: false}
  - {name: created_at, type: datetime2, nullable: true}
  - {name: note, type: nvarchar(200), nullable: true}
";

/// A `usize` from the environment, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of sizes from the environment (`1000000,3000000`), else `default`.
pub fn env_sizes(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

/// Writes the project of `tables` to `root`.
fn write_project(root: &Path, tables: &[String]) -> std::io::Result<()> {
    let services = root.join(SERVICES_DIR);
    let schemas = services.join(SCHEMAS_DIR).join("bench").join("dbo");
    std::fs::create_dir_all(&schemas)?;
    let mut service = String::from(
        "bench:\n  pattern: db-shared\n  sinks:\n    grp.bench:\n      databases: {dev: bench_dev}\n      tables:\n",
    );
    for table in tables {
        let _ = writeln!(
            service,
            "        {SCHEMA}.{table}:\n          from: dbo.{table}"
        );
        std::fs::write(
            schemas.join(format!("{table}.yaml")),
            TABLE_YAML.replace("{table}", table),
        )?;
    }
    std::fs::write(services.join("bench.yaml"), service)
}

/// The server settings of every bench (durability off, room for a large backlog);
/// `CDC_BENCH_SHARED_BUFFERS` overrides `shared_buffers` (default `1GB`).
fn server_settings(statistics: Statistics) -> Vec<(&'static str, String)> {
    let autovacuum = match statistics {
        Statistics::Autovacuum => "on",
        Statistics::Frozen => "off",
    };
    vec![
        ("autovacuum", autovacuum.into()),
        ("fsync", "off".into()),
        ("synchronous_commit", "off".into()),
        ("full_page_writes", "off".into()),
        (
            "shared_buffers",
            std::env::var("CDC_BENCH_SHARED_BUFFERS").unwrap_or_else(|_| "1GB".into()),
        ),
        ("max_wal_size", "8GB".into()),
        ("checkpoint_timeout", "30min".into()),
        ("work_mem", "64MB".into()),
        ("maintenance_work_mem", "256MB".into()),
    ]
}

/// Whether autovacuum keeps the statistics up to date while a bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// Autovacuum on, as in production (the soak).
    Autovacuum,
    /// Autovacuum off: staging and tombstones are never analyzed, final tables only when the
    /// bench resets them; the adverse case the merge's plans must not depend on, and the same
    /// in every run.
    Frozen,
}

/// A started server with the project of `tables` applied to a fresh database.
#[derive(Debug)]
pub struct Bench {
    /// The throwaway server (stopped on drop).
    pub server: PgServer,
    /// The database the sink is applied to.
    pub db: String,
}

impl Bench {
    /// Starts a server, generates the project of `tables` in a temporary directory and applies it.
    ///
    /// # Panics
    ///
    /// Panics when the server does not start or the project does not load or apply.
    pub fn start(tables: &[String], statistics: Statistics) -> Bench {
        let settings = server_settings(statistics);
        let borrowed: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server =
            PgServer::start_with(&borrowed).unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
        let dir = tempfile::tempdir().expect("temporary directory");
        write_project(dir.path(), tables).expect("writing the bench project");
        let project = cdc_build::load_project(dir.path(), &cdc_build::Filter::default())
            .unwrap_or_else(|e| panic!("loading the bench project: {e}"));
        let sinks = cdc_build::generate(
            &project,
            &cdc_build::GenerateOptions::new("2026-01-01 00:00:00 UTC"),
        )
        .render_all();
        let db = server.create_database("merge_bench");
        let mut client = server.client(&db);
        for sink in &sinks {
            apply_sink(&mut client, sink);
        }
        println!(
            "server: PostgreSQL on 127.0.0.1:{} with {}",
            server.port(),
            borrowed
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Bench { server, db }
    }

    /// A new connection to the bench database.
    pub fn client(&self) -> Client {
        self.server.client(&self.db)
    }
}

/// `"bench"."<table>"`.
pub fn final_table(table: &str) -> String {
    format!(r#""{SCHEMA}"."{table}""#)
}

/// `"bench"."stg_<table>"`.
pub fn staging_table(table: &str) -> String {
    format!(r#""{SCHEMA}"."stg_{table}""#)
}

/// Runs SQL (one or more statements, no parameters).
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails.
pub fn exec(client: &mut Client, sql: &str) {
    if let Err(e) = client.batch_execute(sql) {
        panic!("{sql}\n{}", describe_error(&e));
    }
}

/// The one `bigint` a query returns.
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails.
pub fn scalar(client: &mut Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}\n{}", describe_error(&e)))
        .get(0)
}

/// The text columns of the first row of a simple query (a `CALL` or a `SELECT`).
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails or returns no row.
pub fn simple_row(client: &mut Client, sql: &str) -> Vec<Option<String>> {
    let messages = client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}\n{}", describe_error(&e)));
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql} returned no row"))
}

/// The counts of one merge call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Staged rows consumed.
    pub consumed: i64,
    /// Rows inserted or updated in the final table.
    pub upserted: i64,
    /// Rows deleted from the final table.
    pub deleted: i64,
    /// Events older than what the final table (or a tombstone) already holds.
    pub stale: i64,
    /// Rows sent to the dead-letter table (0 where the merge does not report it).
    pub dead_lettered: i64,
}

/// Merges the backlog of `table` the way production does it; `batch` is `p_batch_size`
/// (`None`: the table's default). The one place that names the merge's entry point.
///
/// `CALL cdc_management.merge_table(...)`, a procedure that commits per batch, so it is sent
/// as a simple query outside any transaction block.
pub fn merge(client: &mut Client, table: &str, batch: Option<i32>) -> MergeCounts {
    let batch = batch.map_or_else(|| "NULL".to_string(), |b| b.to_string());
    let sql =
        format!(r#"CALL "{MANAGEMENT_SCHEMA}"."merge_table"('{SCHEMA}', '{table}', {batch})"#);
    let row = simple_row(client, &sql);
    let count = |i: usize| -> i64 {
        row.get(i).and_then(|v| v.as_deref()).map_or(0, |v| {
            v.parse().unwrap_or_else(|e| panic!("{sql}: {v:?}: {e}"))
        })
    };
    MergeCounts {
        consumed: count(0),
        upserted: count(1),
        deleted: count(2),
        stale: count(3),
        dead_lettered: count(4),
    }
}

/// `"bench"."tomb_<table>"`: the table's typed tombstones (key columns and position).
pub fn tombstone_table(table: &str) -> String {
    format!(r#""{SCHEMA}"."tomb_{table}""#)
}

/// Removes every tombstone of `table`.
pub fn clear_tombstones(client: &mut Client, table: &str) {
    exec(client, &format!("TRUNCATE {}", tombstone_table(table)));
}

/// Inserts `count` tombstones of `table` for the keys `first_key..first_key + count`,
/// at a position older than any staged event, as merges of deletes would have left them (not
/// analyzed).
pub fn insert_tombstones(client: &mut Client, table: &str, first_key: i64, count: i64) {
    exec(
        client,
        &format!(
            "INSERT INTO {} (id, __source_ts_ms, __kafka_offset, __deleted_at)
             SELECT k, 500, k, now()
               FROM generate_series({first_key}::bigint, {last}::bigint) AS k",
            tombstone_table(table),
            last = first_key + count - 1
        ),
    );
}

/// How many tombstones `table` has.
pub fn tombstone_count(client: &mut Client, table: &str) -> i64 {
    scalar(
        client,
        &format!("SELECT count(*) FROM {}", tombstone_table(table)),
    )
}

/// Empties the final and staging tables and the tombstones of `table`, then fills the final
/// table with `keys` rows (keys `1..=keys`, position (0, 0), older than every staged event).
pub fn reset(client: &mut Client, table: &str, keys: i64) {
    let (fin, stg) = (final_table(table), staging_table(table));
    exec(client, &format!("TRUNCATE {fin}, {stg}"));
    clear_tombstones(client, table);
    exec(
        client,
        &format!(
            "INSERT INTO {fin} (id, name, email, amount, qty, active, created_at, note,
                                __cdc_operation, __source_ts_ms, __kafka_offset, __source)
             SELECT k, 'seed-' || k, 'seed' || k || '@example.com', k % 1000, k % 100, true,
                    timestamp '2025-01-01', 'seed', 'r', 0, 0, 'bench'
               FROM generate_series(1, {keys}) AS k"
        ),
    );
    exec(client, &format!("VACUUM ANALYZE {fin}"));
    exec(client, "CHECKPOINT");
}

/// Stages `events` events of `table` over keys `1..=keys` with one `INSERT ... SELECT ... FROM
/// generate_series`: event `g` (from 0) is for key `1 + g % keys` at position
/// (`1000 + g`, `g`), increasing with `g`; about 10 % are deletes (`d`), the rest updates (`u`).
pub fn stage(client: &mut Client, table: &str, events: i64, keys: i64) {
    exec(
        client,
        &format!(
            "INSERT INTO {} (id, name, email, amount, qty, active, created_at, note,
                             __cdc_operation, __source_ts_ms, __kafka_offset, __source,
                             __kafka_partition, __kafka_timestamp)
             SELECT {}, 'bench', 0, now()
               FROM generate_series(0::bigint, {}::bigint) AS g",
            staging_table(table),
            event_values(keys),
            events - 1
        ),
    );
}

/// The values of staged event `g`: the source columns, `__cdc_operation`, `__source_ts_ms`
/// and `__kafka_offset`.
fn event_values(keys: i64) -> String {
    format!(
        "1 + g % {keys}, 'name-' || g, 'user' || (g % {keys}) || '@example.com',
         (g % 100000) / 100.0, (g % 1000)::int, g % 2 = 0,
         timestamp '2026-01-01' + g * interval '1 second', md5(g::text),
         CASE WHEN (hashint8(g)::bigint + 2147483648) % 10 = 0 THEN 'd' ELSE 'u' END,
         1000 + g, g"
    )
}

/// How many rows of the final table differ from what merging the [`stage`]d backlog of
/// `events` events over `keys` keys must leave (rows missing, extra or different, compared on
/// the source columns and the event's operation and position). Each key's latest event is one
/// of the last `keys` events; keys whose latest event is a delete have no row.
///
/// # Panics
///
/// Panics when `events < keys` (some keys would keep their seed rows).
pub fn difference_from_expected(client: &mut Client, table: &str, events: i64, keys: i64) -> i64 {
    assert!(events >= keys, "every key must have an event");
    let columns: Vec<&str> = SOURCE_COLUMNS
        .iter()
        .chain(&EVENT_COLUMNS[..3])
        .copied()
        .collect();
    scalar(
        client,
        &format!(
            "WITH expected ({list}) AS (
                 SELECT {values} FROM generate_series({first}::bigint, {last}::bigint) AS g
             ), expected_rows AS (
                 SELECT * FROM expected WHERE __cdc_operation <> 'd'
             ), actual AS (
                 SELECT {list} FROM {fin}
             )
             SELECT (SELECT count(*) FROM (SELECT * FROM expected_rows EXCEPT ALL SELECT * FROM actual) AS missing)
                  + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected_rows) AS extra)",
            list = columns.join(", "),
            values = event_values(keys),
            first = events - keys,
            last = events - 1,
            fin = final_table(table)
        ),
    )
}

/// `(rows, md5 over the rows in key order)` of a table with the bench columns: the source
/// columns and the event's operation and position (not `__sync_timestamp`).
pub fn fingerprint(client: &mut Client, relation: &str) -> (i64, String) {
    let columns: Vec<String> = SOURCE_COLUMNS
        .iter()
        .chain(&EVENT_COLUMNS[..3])
        .map(|c| format!("t.{c}"))
        .collect();
    let sql = format!(
        "SELECT count(*), coalesce(md5(string_agg(row({})::text, ',' ORDER BY t.id)), '')
           FROM {relation} AS t",
        columns.join(", ")
    );
    let row = client
        .query_one(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}\n{}", describe_error(&e)));
    (row.get(0), row.get(1))
}

/// `pg_total_relation_size` of a relation, in bytes.
pub fn relation_size(client: &mut Client, relation: &str) -> i64 {
    scalar(
        client,
        &format!(
            "SELECT pg_total_relation_size('{}')",
            relation.replace('\'', "''")
        ),
    )
}

/// Runs `f` and returns its result with the wall time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// Events per second.
pub fn rate(events: i64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}

/// Bytes as MiB with one decimal, or KiB below 1 MiB.
pub fn mib(bytes: i64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}
