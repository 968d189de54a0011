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
//! Citus's overhead on one machine, not scale-out. Then, on the cluster, one small merge with
//! `citus.log_remote_commands` shows each merge statement sent to the workers as shard-level
//! commands, and `EXPLAIN` on a worker prints the plan of one of them per statement.
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

mod common;

use common::{env_usize, exec, rate, simple_row};

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

/// The first row of a simple query, NULLs as empty strings.
fn first_row(c: &mut Client, sql: &str) -> Vec<String> {
    simple_row(c, sql)
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
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
    exec(c, "VACUUM ANALYZE mt.\"Events\"");
    exec(c, "CHECKPOINT");
    stage(c, keys, events, keys, tenants, false);
    exec(c, "CHECKPOINT");
    let (counts, took) = merge(c);
    (counts, took, fingerprint(c))
}

/// Where the statements of one merge of a few events run on the cluster, and their plans there:
/// with `citus.log_remote_commands` the coordinator reports every command it sends to a worker
/// (a shard-level statement names the shards, `"Events_102008"`); for each kind of merge
/// statement, the plan of one shard's command is printed from `EXPLAIN` on its worker, under the
/// plan settings the merge's transaction sent there.
fn plans(cluster: &CitusCluster, db: &str, keys: i64, tenants: i64) -> String {
    let issued = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let sink = Arc::clone(&issued);
    let mut config = postgres::Config::from_str(&cluster.connection_string(db)).expect("config");
    config.notice_callback(move |n| {
        if let Some(sql) = n.message().strip_prefix("issuing ") {
            let node = n.detail().unwrap_or("").to_string();
            if let Ok(mut all) = sink.lock() {
                all.push((sql.to_string(), node));
            }
        }
    });
    let mut c = config.connect(NoTls).expect("connect");
    stage(&mut c, 10_000_000, 2_000, keys, tenants, false);
    exec(&mut c, "SET citus.log_remote_commands = on");
    first_row(&mut c, "CALL cdc_management.merge_table('mt', 'Events')");
    exec(&mut c, "SET citus.log_remote_commands = off");
    let all = issued.lock().map(|n| n.clone()).unwrap_or_default();
    let kinds: [(&str, &str); 5] = [
        ("classify each key's newest event", "CASE WHEN (EXISTS"),
        ("upsert", "INSERT INTO mt.\"Events_"),
        ("delete", "DELETE FROM mt.\"Events_"),
        ("tombstone", "INSERT INTO mt.\"tomb_Events_"),
        ("empty staging", "DELETE FROM mt.\"stg_Events_"),
    ];
    let mut out = String::new();
    // The plan settings the merge's transaction sent ahead of its statements (SET LOCAL).
    let mut propagated: Vec<String> = all
        .iter()
        .flat_map(|(sql, _)| sql.split(';'))
        .map(str::trim)
        .filter(|part| part.starts_with("SET LOCAL enable_"))
        .map(str::to_string)
        .collect();
    propagated.sort();
    propagated.dedup();
    let _ = writeln!(
        out,
        "  settings sent to the workers: {}",
        propagated.join("; ")
    );
    for (kind, marker) in kinds {
        let sent: Vec<&(String, String)> =
            all.iter().filter(|(sql, _)| sql.contains(marker)).collect();
        let mut nodes: Vec<&str> = sent
            .iter()
            .filter_map(|(_, node)| {
                node.split('@')
                    .nth(1)
                    .and_then(|n| n.split_whitespace().next())
            })
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let _ = writeln!(
            out,
            "  {kind}: {} shard commands, on {}",
            sent.len(),
            nodes.join(" and ")
        );
        let Some((sql, node)) = sent.first() else {
            continue;
        };
        let port: Option<u16> = node
            .split(':')
            .nth(1)
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        let Some(worker) = cluster.nodes().iter().find(|w| Some(w.port()) == port) else {
            continue;
        };
        let mut wc = worker.client(db);
        let plan = wc
            .simple_query(&format!(
                "BEGIN; {settings}; EXPLAIN (COSTS OFF) {sql}; ROLLBACK",
                settings = propagated.join("; ")
            ))
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|e| vec![format!("(EXPLAIN failed: {e})")]);
        let _ = writeln!(
            out,
            "    plan on {} of: {}...",
            node.split_whitespace().nth(2).unwrap_or(""),
            sql.chars().take(110).collect::<String>()
        );
        for line in plan {
            let _ = writeln!(out, "      {line}");
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
        "where the statements of one merge run, and their plans on the shards:\n{}",
        plans(&cluster, &cdb, keys, tenants)
    );
    if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
