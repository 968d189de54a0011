//! Merge throughput on one PostgreSQL server against the same merge on a Citus cluster (a
//! coordinator and two workers) on this machine, and the plans that show the merge's statements
//! running on the shards.
//!
//! One table of 8 source columns keyed by (`tenant_id`, `id`), `distribution: {by: tenant_id}`;
//! the same generated migration files are applied to a plain server and to the cluster (the
//! Citus calls in them run only where the extension exists). On each: the final table is seeded
//! with every key, then `CDC_BENCH_EVENTS` events (default 500,000) over `CDC_BENCH_KEYS` keys
//! (default a tenth of the events) of `CDC_BENCH_TENANTS` tenants (default 64), about 10 %
//! deletes, are staged and merged with `CALL merge_table(...)`. Both final tables must be equal
//! (count and md5 over the ordered rows). All servers share the same 2 cores, so the ratio is
//! Citus's overhead on one machine, not scale-out. Then, on the cluster, `auto_explain` prints
//! the plan of every statement of one small merge: each is a Citus Adaptive scan whose tasks run
//! on the workers' shards.
//!
//! `cargo bench -p tests --bench merge_citus` (needs Citus: `../shared/vendor/citus/install.sh`).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdc_core::layout::{SCHEMAS_DIR, SERVICES_DIR};
use cdc_testkit::citus::CitusCluster;
use cdc_testkit::fixture::apply_sink;
use cdc_testkit::PgServer;
use postgres::{Client, NoTls, SimpleQueryMessage};

const TABLE_YAML: &str = "schema: dbo
table: Events
columns:
  - {name: tenant_id, type: int, nullable: false, primary_key: true}
  - {name: id, type: int, nullable: false, primary_key: true}
  - {name: name, type: nvarchar(100), nullable: false}
  - {name: email, type: varchar(255), nullable: true}
  - {name: amount, type: decimal, precision: 12, scale: 2, nullable: true}
  - {name: qty, type: int, nullable: true}
  - {name: active, type: bit, nullable: false}
  - {name: created_at, type: datetime2, nullable: true}
";

const SERVICE_YAML: &str = "mt:
  pattern: db-shared
  sinks:
    grp.mt:
      databases: {dev: mt_dev}
      distribution: {by: tenant_id}
      tables:
        mt.Events:
          from: dbo.Events
";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn exec(c: &mut Client, sql: &str) {
    if let Err(e) = c.batch_execute(sql) {
        panic!("{sql}\n{}", cdc_testkit::fixture::describe_error(&e));
    }
}

fn first_row(c: &mut Client, sql: &str) -> Vec<String> {
    let messages = c
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}\n{}", cdc_testkit::fixture::describe_error(&e)));
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// The generated migrations of the bench project.
fn generated() -> Vec<cdc_build::GeneratedSink> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let services = dir.path().join(SERVICES_DIR);
    let schemas = services.join(SCHEMAS_DIR).join("mt").join("dbo");
    std::fs::create_dir_all(&schemas).expect("project directory");
    std::fs::write(schemas.join("Events.yaml"), TABLE_YAML).expect("table yaml");
    std::fs::write(services.join("mt.yaml"), SERVICE_YAML).expect("service yaml");
    let project = cdc_build::load_project(dir.path(), &cdc_build::Filter::default())
        .unwrap_or_else(|e| panic!("loading the bench project: {e}"));
    cdc_build::generate(
        &project,
        &cdc_build::GenerateOptions::new("2026-01-01 00:00:00 UTC"),
    )
    .render_all()
}

/// Stages `events` events with positions from `first`, over `keys` keys of `tenants` tenants;
/// every tenth event (by a hash) a delete unless `upserts_only`.
fn stage(c: &mut Client, first: i64, events: i64, keys: i64, tenants: i64, upserts_only: bool) {
    let op = if upserts_only {
        "'u'".to_string()
    } else {
        "CASE WHEN (hashint8(g)::bigint + 2147483648) % 10 = 0 THEN 'd' ELSE 'u' END".to_string()
    };
    exec(
        c,
        &format!(
            "INSERT INTO mt.\"stg_Events\" (tenant_id, id, name, email, amount, qty, active, created_at,
                                          __cdc_operation, __source_ts_ms, __kafka_offset, __source, __kafka_partition)
             SELECT 1 + (g % {keys}) % {tenants}, 1 + (g % {keys}) / {tenants}, 'name-' || g,
                    'user' || g || '@example.com', (g % 100000) / 100.0, (g % 1000)::int, g % 2 = 0,
                    timestamp '2026-01-01' + g * interval '1 second', {op},
                    {first} + g, {first} + g, 'bench', (g % 4)::int
               FROM generate_series(0::bigint, {last}::bigint) AS g",
            last = events - 1
        ),
    );
}

/// `CALL merge_table` and its counts.
fn merge(c: &mut Client) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let counts = first_row(c, "CALL cdc_management.merge_table('mt', 'Events')");
    (counts, started.elapsed())
}

/// Count and md5 of the final table's rows in key order.
fn fingerprint(c: &mut Client) -> Vec<String> {
    first_row(
        c,
        "SELECT count(*), md5(string_agg(f::text, '|' ORDER BY f.tenant_id, f.id))
           FROM (SELECT tenant_id, id, name, email, amount, qty, active, created_at,
                        __cdc_operation, __source_ts_ms, __kafka_offset FROM mt.\"Events\") AS f",
    )
}

/// Seeds every key, stages the workload, merges it; returns the merge's counts and time and
/// the final table's fingerprint.
fn run(
    c: &mut Client,
    events: i64,
    keys: i64,
    tenants: i64,
) -> (Vec<String>, Duration, Vec<String>) {
    stage(c, 0, keys, keys, tenants, true);
    merge(c);
    exec(c, "VACUUM ANALYZE mt.\"Events\"; CHECKPOINT");
    stage(c, keys, events, keys, tenants, false);
    exec(c, "CHECKPOINT");
    let (counts, took) = merge(c);
    (counts, took, fingerprint(c))
}

fn rate(events: i64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

/// The plans of every statement of one merge of a few events on the cluster, as auto_explain
/// reports them to the client; condensed to each statement's first line, the Citus scan, its
/// task count, node and the first plan node on the shard.
fn plans(cluster: &CitusCluster, db: &str, keys: i64, tenants: i64) -> String {
    let notices = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&notices);
    let mut config = postgres::Config::from_str(&cluster.connection_string(db)).expect("config");
    config.notice_callback(move |n| {
        if let Ok(mut all) = sink.lock() {
            all.push(n.message().to_string());
        }
    });
    let mut c = config.connect(NoTls).expect("connect");
    stage(&mut c, 10_000_000, 2_000, keys, tenants, false);
    exec(
        &mut c,
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
         SET auto_explain.log_nested_statements = on; SET client_min_messages = log;",
    );
    first_row(&mut c, "SELECT * FROM mt.\"sp_merge_Events\"()");
    exec(&mut c, "SET client_min_messages = notice");
    let all = notices.lock().map(|n| n.clone()).unwrap_or_default();
    let mut out = String::new();
    for plan in all
        .iter()
        .filter(|p| p.contains("Citus Adaptive") && p.contains("->  Task"))
    {
        let mut lines = plan.lines();
        let text: String = lines
            .by_ref()
            .take_while(|l| {
                !l.contains("Citus Adaptive") && !l.trim_start().starts_with("->  Distributed")
            })
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let text = text.trim_start_matches("duration:").trim();
        let _ = writeln!(out, "  {}", text.chars().take(150).collect::<String>());
        let mut after_task = 0;
        for line in plan.lines() {
            let t = line.trim();
            if t.starts_with("Task Count") || t.starts_with("Node:") {
                let _ = writeln!(out, "      {t}");
            }
            if t.starts_with("->  Task") {
                after_task = 1;
            } else if after_task == 1 && t.starts_with("->") {
                let _ = writeln!(out, "      shard: {t}");
                after_task = 2;
            }
        }
    }
    out
}

fn main() -> ExitCode {
    let events = i64::try_from(env_usize("CDC_BENCH_EVENTS", 500_000)).expect("events");
    let keys = i64::try_from(env_usize(
        "CDC_BENCH_KEYS",
        usize::try_from(events / 10).expect("keys"),
    ))
    .expect("keys");
    let tenants = i64::try_from(env_usize("CDC_BENCH_TENANTS", 64)).expect("tenants");
    let sinks = generated();
    println!("merge_citus: {events} events over {keys} keys of {tenants} tenants, ~10 % deletes, final table seeded with every key");

    let single = PgServer::start().unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
    let sdb = single.create_database("merge_citus");
    let mut sc = single.client(&sdb);
    for sink in &sinks {
        apply_sink(&mut sc, sink);
    }
    let (s_counts, s_took, s_print) = run(&mut sc, events, keys, tenants);
    println!(
        "single server: {:>8.3} s  {:>9.0} events/s  counts {:?}",
        s_took.as_secs_f64(),
        rate(events, s_took),
        s_counts
    );
    drop(sc);
    drop(single);

    let cluster =
        CitusCluster::start().unwrap_or_else(|e| panic!("starting the Citus cluster: {e}"));
    let cdb = cluster.create_database("merge_citus");
    let mut cc = cluster.client(&cdb);
    for sink in &sinks {
        apply_sink(&mut cc, sink);
    }
    let placed = first_row(
        &mut cc,
        "SELECT string_agg(table_name::text || ' ' || citus_table_type || ' by ' || coalesce(distribution_column, '-') || ' colocation ' || colocation_id || ', ' || shard_count || ' shards', '; ' ORDER BY table_name::text) FROM citus_tables",
    );
    println!("cluster: {}", placed.join(""));
    let (c_counts, c_took, c_print) = run(&mut cc, events, keys, tenants);
    println!(
        "citus (coordinator + 2 workers): {:>8.3} s  {:>9.0} events/s  counts {:?}",
        c_took.as_secs_f64(),
        rate(events, c_took),
        c_counts
    );
    println!(
        "ratio citus / single (time): {:.2}x; throughput {:.2}x of the single server",
        c_took.as_secs_f64() / s_took.as_secs_f64(),
        s_took.as_secs_f64() / c_took.as_secs_f64()
    );
    let same = s_print == c_print && s_counts == c_counts;
    println!(
        "final tables equal: {} (single {:?}, citus {:?})",
        if same { "yes" } else { "NO" },
        s_print,
        c_print
    );
    println!(
        "per-statement plans of one merge on the cluster (auto_explain):\n{}",
        plans(&cluster, &cdb, keys, tenants)
    );
    if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
