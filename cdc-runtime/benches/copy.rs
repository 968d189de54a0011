//! Staging speed: typed binary COPY (`cdc_runtime::rows::copy_into_staging`) against
//! multi-row `INSERT ... VALUES (...), (...)` statements of 1,000 rows through bound
//! parameters (one prepared statement), into the same staging table, on one throwaway
//! PostgreSQL 15 (started by the test harness; fsync is off there, as in the tests).
//!
//! The table is the bundled example's `directory."stg_Actor"`, generated and applied with the
//! embedded-migrations engine. The row struct is the generated one's twin, written out here
//! because a bench has no build script; the bench checks first that its COPY statement is the
//! one `cdc-build` generates, so the two cannot drift apart silently.
//!
//! For each size (`CDC_BENCH_ROWS`, default `100000,1000000`): the rows are built in memory
//! first (the INSERT's parameter values too), then the methods take turns `CDC_BENCH_RUNS`
//! times (default 3), each on an empty staging table (truncated before each run); the best and
//! the median run of each are printed with rows/s and the ratios. COPY runs twice: the whole
//! batch in one `copy_into_staging` call, and in calls of 1,000 rows (as a sink that stages
//! each consumed batch of that size would).
//!
//! `cargo bench -p cdc-runtime --bench copy`

use std::path::Path;
use std::time::{Duration, Instant};

use cdc_runtime::postgres::types::{ToSql, Type};
use cdc_runtime::postgres::{Client, Row};
use cdc_runtime::rows::{
    copy_into_staging, CopyError, CopyRow, PgTimestamp, PgUuid, StagingRow, TableRow,
};
use cdc_runtime::Migrator;

/// Rows per INSERT statement (and per COPY call in the batched COPY run).
const BATCH: usize = 1_000;

/// Distinct keys the generated events cycle through.
const KEYS: usize = 100_000;

/// `directory."Actor"` as `cdc-build` generates its row struct (staged columns only).
#[derive(Debug, Clone)]
struct Actor {
    actno: i32,
    navn: String,
    email: Option<String>,
    is_active: bool,
    created_at: PgTimestamp,
    customer_id: Option<PgUuid>,
    cdc_operation: Option<String>,
    source_ts_ms: Option<i64>,
    kafka_offset: Option<i64>,
    source: Option<String>,
    source_db: Option<String>,
    source_table: Option<String>,
}

const COLUMNS: &[&str] = &[
    "actno",
    "Navn",
    "Email",
    "IsActive",
    "CreatedAt",
    "_customer_id",
    "__cdc_operation",
    "__source_ts_ms",
    "__kafka_offset",
    "__source",
    "__source_db",
    "__source_table",
];

impl TableRow for Actor {
    const SCHEMA: &'static str = "directory";
    const TABLE: &'static str = "Actor";
    const COLUMNS: &'static [&'static str] = COLUMNS;
    const SELECT: &'static str = "SELECT \"actno\" FROM \"directory\".\"Actor\"";

    fn from_row(_row: &Row) -> Result<Self, cdc_runtime::postgres::Error> {
        unreachable!("the bench only writes")
    }
}

impl StagingRow for Actor {
    const STAGING_TABLE: &'static str = "stg_Actor";
    const STAGING_COLUMNS: &'static [&'static str] = COLUMNS;
    const COPY_STATEMENT: &'static str = "COPY \"directory\".\"stg_Actor\" (\"actno\", \"Navn\", \"Email\", \"IsActive\", \"CreatedAt\", \"_customer_id\", \"__cdc_operation\", \"__source_ts_ms\", \"__kafka_offset\", \"__source\", \"__source_db\", \"__source_table\") FROM STDIN (FORMAT binary)";
    const COPY_WITH_COORDINATES: &'static str = "COPY \"directory\".\"stg_Actor\" (\"actno\", \"Navn\", \"Email\", \"IsActive\", \"CreatedAt\", \"_customer_id\", \"__cdc_operation\", \"__source_ts_ms\", \"__kafka_offset\", \"__source\", \"__source_db\", \"__source_table\", \"__kafka_partition\", \"__kafka_timestamp\") FROM STDIN (FORMAT binary)";

    fn write_staging(&self, row: &mut CopyRow<'_>) -> Result<(), CopyError> {
        row.field(COLUMNS[0], &Type::INT4, &self.actno)?;
        row.field(COLUMNS[1], &Type::VARCHAR, &self.navn)?;
        row.field(COLUMNS[2], &Type::VARCHAR, &self.email)?;
        row.field(COLUMNS[3], &Type::BOOL, &self.is_active)?;
        row.field(COLUMNS[4], &Type::TIMESTAMP, &self.created_at)?;
        row.field(COLUMNS[5], &Type::UUID, &self.customer_id)?;
        row.field(COLUMNS[6], &Type::TEXT, &self.cdc_operation)?;
        row.field(COLUMNS[7], &Type::INT8, &self.source_ts_ms)?;
        row.field(COLUMNS[8], &Type::INT8, &self.kafka_offset)?;
        row.field(COLUMNS[9], &Type::TEXT, &self.source)?;
        row.field(COLUMNS[10], &Type::TEXT, &self.source_db)?;
        row.field(COLUMNS[11], &Type::TEXT, &self.source_table)
    }
}

/// The same row as the INSERT binds it (chrono and uuid values for the driver's `ToSql`).
struct Params {
    actno: i32,
    navn: String,
    email: Option<String>,
    is_active: bool,
    created_at: chrono::NaiveDateTime,
    customer_id: Option<uuid::Uuid>,
    cdc_operation: Option<String>,
    source_ts_ms: Option<i64>,
    kafka_offset: Option<i64>,
    source: Option<String>,
    source_db: Option<String>,
    source_table: Option<String>,
}

impl Params {
    fn of(row: &Actor) -> Params {
        let micros = row.created_at.0 + 946_684_800_000_000;
        Params {
            actno: row.actno,
            navn: row.navn.clone(),
            email: row.email.clone(),
            is_active: row.is_active,
            created_at: chrono::DateTime::from_timestamp_micros(micros)
                .expect("timestamp")
                .naive_utc(),
            customer_id: row.customer_id.map(|id| uuid::Uuid::from_bytes(id.0)),
            cdc_operation: row.cdc_operation.clone(),
            source_ts_ms: row.source_ts_ms,
            kafka_offset: row.kafka_offset,
            source: row.source.clone(),
            source_db: row.source_db.clone(),
            source_table: row.source_table.clone(),
        }
    }

    fn push<'a>(&'a self, out: &mut Vec<&'a (dyn ToSql + Sync)>) {
        out.extend([
            &self.actno as &(dyn ToSql + Sync),
            &self.navn,
            &self.email,
            &self.is_active,
            &self.created_at,
            &self.customer_id,
            &self.cdc_operation,
            &self.source_ts_ms,
            &self.kafka_offset,
            &self.source,
            &self.source_db,
            &self.source_table,
        ]);
    }
}

/// `n` change events over [`KEYS`] keys, 10 % deletes.
fn events(n: usize) -> Vec<Actor> {
    let tenant: PgUuid = "5f0c6d3e-8a51-4c0e-9b1a-2d7e4f6a8c90"
        .parse()
        .expect("uuid");
    let created: PgTimestamp = "2026-05-01 09:30:00.123456".parse().expect("timestamp");
    (0..n)
        .map(|i| {
            let delete = i % 10 == 9;
            Actor {
                actno: i32::try_from(i % KEYS).expect("key"),
                navn: format!("Actor number {i}"),
                email: (i % 3 != 0).then(|| format!("actor{i}@example.com")),
                is_active: !delete,
                created_at: PgTimestamp(created.0 + i64::try_from(i).expect("i")),
                customer_id: Some(tenant),
                cdc_operation: Some(if delete { "d" } else { "u" }.to_string()),
                source_ts_ms: Some(1_700_000_000_000 + i64::try_from(i).expect("i")),
                kafka_offset: Some(i64::try_from(i).expect("i")),
                source: Some("directory_dev".to_string()),
                source_db: Some("directory".to_string()),
                source_table: Some("Actor".to_string()),
            }
        })
        .collect()
}

/// `INSERT INTO stg_Actor (...) VALUES ($1, ..., $10), ... ` for `rows` rows.
fn insert_statement(rows: usize) -> String {
    let columns: Vec<String> = COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=COLUMNS.len())
                .map(|c| format!("${}", r * COLUMNS.len() + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO \"directory\".\"stg_Actor\" ({}) VALUES {}",
        columns.join(", "),
        values.join(", ")
    )
}

fn insert_all(client: &mut Client, params: &[Params]) -> u64 {
    let full = client.prepare(&insert_statement(BATCH)).expect("prepare");
    let mut written = 0;
    let mut bound: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(BATCH * COLUMNS.len());
    for chunk in params.chunks(BATCH) {
        bound.clear();
        for row in chunk {
            row.push(&mut bound);
        }
        written += if chunk.len() == BATCH {
            client.execute(&full, &bound).expect("insert")
        } else {
            client
                .execute(insert_statement(chunk.len()).as_str(), &bound)
                .expect("insert")
        };
    }
    written
}

fn staged(client: &mut Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM \"directory\".\"stg_Actor\"", &[])
        .expect("count")
        .get(0)
}

fn truncate(client: &mut Client) {
    client
        .batch_execute("TRUNCATE \"directory\".\"stg_Actor\"; CHECKPOINT")
        .expect("truncate");
}

/// Times `run` on an empty staging table and checks that it staged `n` rows.
fn timed(client: &mut Client, n: usize, run: impl FnOnce(&mut Client) -> u64) -> Duration {
    truncate(client);
    let started = Instant::now();
    let written = run(client);
    let elapsed = started.elapsed();
    assert_eq!(written, n as u64);
    assert_eq!(staged(client), i64::try_from(n).expect("n"));
    elapsed
}

fn rate(n: usize, time: Duration) -> String {
    format!(
        "{:>9.0} rows/s ({:.2} s)",
        n as f64 / time.as_secs_f64(),
        time.as_secs_f64()
    )
}

/// The bundled example's generated `directory` sink, and a check that the bench's row
/// struct copies with the generated statement.
fn example() -> cdc_runtime::Migrations {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let project = cdc_build::load_project(root, &cdc_build::Filter::default()).expect("load");
    let generated = cdc_build::generate(
        &project,
        &cdc_build::GenerateOptions::new("2026-01-01 00:00:00 UTC").with_rows(true),
    );
    let rows = generated
        .rows
        .as_ref()
        .expect("rows")
        .render()
        .expect("render rows");
    let statement = format!("{:?}", Actor::COPY_STATEMENT);
    assert!(
        rows.contains(&statement),
        "the bench's Actor no longer matches the generated one: update it to {}",
        rows.lines()
            .find(|l| l.contains("COPY \\\"directory\\\".\\\"stg_Actor\\\""))
            .unwrap_or("(no stg_Actor COPY in the generated rows)")
    );
    let sinks = generated.render_all();
    let sink = sinks
        .iter()
        .find(|s| s.name == "sink_asma.directory")
        .expect("the directory sink");
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in sink.all_files() {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    }
    cdc_runtime::Migrations::load_dir(dir.path()).expect("load migrations")
}

fn main() {
    let sizes: Vec<usize> = std::env::var("CDC_BENCH_ROWS")
        .unwrap_or_else(|_| "100000,1000000".to_string())
        .split(',')
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse()
                .expect("CDC_BENCH_ROWS: numbers")
        })
        .collect();
    let runs: usize = std::env::var("CDC_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let migrations = example();
    let server = cdc_testkit::PgServer::start().expect("PostgreSQL server");
    let db = server.create_database("bench_copy");
    let mut client = server.client(&db);
    Migrator::new(&migrations)
        .apply(&mut client)
        .expect("apply");

    println!("staging into directory.\"stg_Actor\" (12 columns), {BATCH} rows per INSERT:");
    for n in sizes {
        let rows = events(n);
        let params: Vec<Params> = rows.iter().map(Params::of).collect();
        // The methods take turns, `runs` times, so that a busy moment of a shared machine
        // hits all of them; each is reported by its best and its median run.
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..runs {
            times[0].push(timed(&mut client, n, |c| insert_all(c, &params)));
            times[1].push(timed(&mut client, n, |c| {
                copy_into_staging(c, &rows).expect("copy")
            }));
            times[2].push(timed(&mut client, n, |c| {
                rows.chunks(BATCH)
                    .map(|chunk| copy_into_staging(c, chunk).expect("copy"))
                    .sum()
            }));
        }
        let [insert, copy, copy_batched] = times.map(|mut t| {
            t.sort();
            (t[0], t[t.len() / 2])
        });
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!("{n:>9} rows (best / median of {runs} runs):");
        println!(
            "  multi-row INSERT ({BATCH} rows)  {} / {}",
            rate(n, insert.0),
            rate(n, insert.1)
        );
        println!(
            "  COPY, one call                {} / {}  {:.1}x / {:.1}x the INSERT",
            rate(n, copy.0),
            rate(n, copy.1),
            ratio(insert.0, copy.0),
            ratio(insert.1, copy.1)
        );
        println!(
            "  COPY, calls of {BATCH} rows       {} / {}  {:.1}x / {:.1}x the INSERT",
            rate(n, copy_batched.0),
            rate(n, copy_batched.1),
            ratio(insert.0, copy_batched.0),
            ratio(insert.1, copy_batched.1)
        );
    }
    truncate(&mut client);
}
