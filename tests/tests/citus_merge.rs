//! The merge on a real Citus cluster (issue 12): the bundled example's `directory` sink is
//! distributed by its tenant column (`distribution: {by: _customer_id}`), and the same migration
//! files that serve a single server are applied to a coordinator and two workers started by the
//! test harness. Events of many tenants merge into final tables equal to the truth, spread over
//! both workers; replays, deletes and poison rows behave as on one server; a merge killed in the
//! middle of its batch loses and duplicates nothing; a READ COMMITTED caller
//! (`trigger_pending_merges()`) merges the same.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use cdc_testkit::citus::{shared_cluster, CitusCluster};
use cdc_testkit::fixture::{apply_sink, sink, DIRECTORY};
use cdc_testkit::merge::scalar_i64;
use postgres::Client;

/// One staged Actor event: `(tenant, actno, name or NULL, op, ts, offset)`.
#[derive(Debug, Clone)]
struct Event {
    tenant: String,
    actno: i32,
    name: Option<String>,
    op: &'static str,
    ts: i64,
    offset: i64,
}

/// A final Actor row as compared: `(tenant, actno, Navn, ts, offset)`.
type Row = (String, i32, String, i64, i64);

fn tenant(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn upsert(tenant: &str, actno: i32, name: &str, ts: i64, offset: i64) -> Event {
    Event {
        tenant: tenant.to_string(),
        actno,
        name: Some(name.to_string()),
        op: "u",
        ts,
        offset,
    }
}

fn delete(tenant: &str, actno: i32, ts: i64, offset: i64) -> Event {
    Event {
        tenant: tenant.to_string(),
        actno,
        name: None,
        op: "d",
        ts,
        offset,
    }
}

/// A database on the shared cluster with the example's directory sink applied.
fn cluster_database(prefix: &str) -> (&'static CitusCluster, String, Client) {
    let cluster = shared_cluster();
    let db = cluster.create_database(prefix);
    let mut client = cluster.client(&db);
    apply_sink(&mut client, sink(DIRECTORY));
    (cluster, db, client)
}

/// Stages `events` into `directory."stg_Actor"` through the coordinator (bound arrays).
fn stage(c: &mut Client, events: &[Event]) {
    for chunk in events.chunks(5_000) {
        let tenants: Vec<&str> = chunk.iter().map(|e| e.tenant.as_str()).collect();
        let keys: Vec<i32> = chunk.iter().map(|e| e.actno).collect();
        let names: Vec<Option<&str>> = chunk.iter().map(|e| e.name.as_deref()).collect();
        let ops: Vec<&str> = chunk.iter().map(|e| e.op).collect();
        let ts: Vec<i64> = chunk.iter().map(|e| e.ts).collect();
        let offsets: Vec<i64> = chunk.iter().map(|e| e.offset).collect();
        c.execute(
            r#"INSERT INTO directory."stg_Actor"
                   ("_customer_id", "actno", "Navn", "IsActive", "CreatedAt", "__cdc_operation",
                    "__source_ts_ms", "__kafka_offset", "__kafka_partition")
               SELECT t::uuid, k, n, true, timestamp '2026-01-01', o, ts, off, (off % 3)::int
                 FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
                      AS e(t, k, n, o, ts, off)"#,
            &[&tenants, &keys, &names, &ops, &ts, &offsets],
        )
        .unwrap_or_else(|e| panic!("staging: {e}"));
    }
}

/// `CALL merge_table('directory', 'Actor')` (outside a transaction block, so it commits per batch).
fn merge(c: &mut Client) -> Vec<i64> {
    let rows = c
        .simple_query(r#"CALL cdc_management.merge_table('directory', 'Actor')"#)
        .unwrap_or_else(|e| panic!("merge_table: {e}"));
    rows.iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(
                (0..5)
                    .map(|i| r.get(i).unwrap_or("0").parse().unwrap_or(-1))
                    .collect(),
            ),
            _ => None,
        })
        .expect("merge_table returns one row")
}

fn actors(c: &mut Client) -> Vec<Row> {
    c.query(
        r#"SELECT "_customer_id"::text, "actno", "Navn", "__source_ts_ms", "__kafka_offset"
             FROM directory."Actor" ORDER BY 1, 2"#,
        &[],
    )
    .unwrap_or_else(|e| panic!("reading Actor: {e}"))
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// The truth after `events`: per (tenant, key) the event with the highest position; keys whose
/// newest event is a delete have no row.
fn truth(events: &[Event]) -> Vec<Row> {
    let mut newest: BTreeMap<(String, i32), &Event> = BTreeMap::new();
    for e in events {
        let slot = newest.entry((e.tenant.clone(), e.actno)).or_insert(e);
        if (e.ts, e.offset) > (slot.ts, slot.offset) {
            *slot = e;
        }
    }
    newest
        .into_values()
        .filter(|e| e.op != "d")
        .map(|e| {
            (
                e.tenant.clone(),
                e.actno,
                e.name.clone().unwrap_or_default(),
                e.ts,
                e.offset,
            )
        })
        .collect()
}

/// `n` events over `tenants` tenants that all use the same source keys `1..=keys`, every
/// tenth a delete, then `replays` older events re-delivered (as after a connector restart).
fn workload(n: i64, tenants: u32, keys: i32, replays: usize) -> Vec<Event> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut events: Vec<Event> = (0..n)
        .map(|i| {
            let t = tenant(u32::try_from(next() % u64::from(tenants)).expect("tenant"));
            let k = i32::try_from(next() % u64::try_from(keys).expect("keys")).expect("key") + 1;
            let (ts, offset) = (10_000 + i, i);
            if next() % 10 == 0 {
                delete(&t, k, ts, offset)
            } else {
                upsert(&t, k, &format!("{t}/{k}@{i}"), ts, offset)
            }
        })
        .collect();
    let old: Vec<Event> = events
        .iter()
        .step_by(events.len().max(1) / replays.max(1))
        .take(replays)
        .cloned()
        .collect();
    events.extend(old);
    events
}

#[test]
fn many_tenants_merge_on_the_shards_into_the_truth_spread_over_both_workers() {
    let (cluster, _db, mut c) = cluster_database("citus_merge_truth");

    // The final, staging and tombstone tables are distributed by the tenant and co-located.
    let placed = c
        .query(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id
               FROM citus_tables
              WHERE table_name::text IN ('directory.\"Actor\"', 'directory.\"stg_Actor\"', 'directory.\"tomb_Actor\"')
              ORDER BY 1",
            &[],
        )
        .expect("citus_tables");
    assert_eq!(
        placed.len(),
        3,
        "Actor, stg_Actor and tomb_Actor are Citus tables"
    );
    for row in &placed {
        let (name, kind, column): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(
            (kind.as_str(), column.as_str()),
            ("distributed", "_customer_id"),
            "{name}"
        );
    }
    let colocation: Vec<i32> = placed.iter().map(|r| r.get(3)).collect();
    assert!(
        colocation.windows(2).all(|w| w[0] == w[1]),
        "co-located: {colocation:?}"
    );

    let events = workload(30_000, 40, 60, 3_000);
    stage(&mut c, &events);
    let counts = merge(&mut c);
    assert_eq!(
        counts[0],
        i64::try_from(events.len()).expect("n"),
        "every staged event consumed"
    );
    let expected = truth(&events);
    let got = actors(&mut c);
    assert_eq!(got.len(), expected.len(), "one row per live (tenant, key)");
    assert_eq!(got, expected, "the final table equals the truth");
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."stg_Actor""#),
        0
    );
    assert_eq!(
        scalar_i64(&mut c, "SELECT coalesce(sum(rows_consumed), 0)::bigint FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'"),
        i64::try_from(events.len()).expect("n"),
        "the processing log counts every consumed event once"
    );
    // The same source key lives once per tenant.
    let tenants_of_key_1 = got.iter().filter(|r| r.1 == 1).count();
    assert!(
        tenants_of_key_1 > 20,
        "actno 1 of many tenants: {tenants_of_key_1}"
    );

    // The rows are on both workers: count each worker's shards of Actor directly.
    let shards = c
        .query(
            "SELECT shard_name::text, nodeport FROM citus_shards WHERE table_name = 'directory.\"Actor\"'::regclass",
            &[],
        )
        .expect("citus_shards");
    let mut per_port: BTreeMap<i32, i64> = BTreeMap::new();
    for worker in cluster.nodes() {
        let port = i32::from(worker.port());
        let mut wc = worker.client(&_db);
        for shard in shards.iter().filter(|s| s.get::<_, i32>(1) == port) {
            let name: String = shard.get(0);
            *per_port.entry(port).or_default() +=
                scalar_i64(&mut wc, &format!("SELECT count(*) FROM {name}"));
        }
    }
    assert_eq!(per_port.len(), 2, "shards on both workers: {per_port:?}");
    assert!(
        per_port.values().all(|&n| n > 0),
        "rows on both workers: {per_port:?}"
    );
    assert_eq!(
        per_port.values().sum::<i64>(),
        i64::try_from(expected.len()).expect("n"),
        "the workers hold exactly the final rows"
    );
}

#[test]
fn tenants_replays_deletes_and_poison_rows_behave_as_on_one_server() {
    let (_cluster, _db, mut c) = cluster_database("citus_merge_tenants");
    let (a, b) = (tenant(1), tenant(2));

    stage(
        &mut c,
        &[upsert(&a, 7, "a-7", 100, 1), upsert(&b, 7, "b-7", 100, 1)],
    );
    merge(&mut c);
    assert_eq!(
        actors(&mut c),
        vec![
            (a.clone(), 7, "a-7".into(), 100, 1),
            (b.clone(), 7, "b-7".into(), 100, 1)
        ]
    );

    // An update of one tenant and a delete of the other, then late replays of both.
    stage(
        &mut c,
        &[upsert(&a, 7, "a-7 v2", 200, 2), delete(&b, 7, 200, 2)],
    );
    let counts = merge(&mut c);
    assert_eq!(
        (counts[1], counts[2]),
        (1, 1),
        "one upsert, one delete: {counts:?}"
    );
    stage(
        &mut c,
        &[
            upsert(&a, 7, "a-7 stale", 150, 3),
            upsert(&b, 7, "b-7 resurrected", 150, 3),
        ],
    );
    let counts = merge(&mut c);
    assert_eq!(
        (counts[1], counts[2], counts[3]),
        (0, 0, 2),
        "both replays are stale: {counts:?}"
    );
    assert_eq!(
        actors(&mut c),
        vec![(a.clone(), 7, "a-7 v2".into(), 200, 2)]
    );
    assert_eq!(
        scalar_i64(&mut c, &format!("SELECT count(*) FROM directory.\"tomb_Actor\" WHERE \"_customer_id\" = '{b}' AND actno = 7")),
        1,
        "the delete left a tombstone for (tenant b, 7) only"
    );

    // A row the final table refuses (IsActive NULL) goes to the dead letters; the rest merges.
    c.batch_execute(&format!(
        r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "IsActive", "CreatedAt",
                                             "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ('{a}', 8, 'poison', NULL, timestamp '2026-01-01', 'u', 300, 4),
                  ('{b}', 8, 'fine', true, timestamp '2026-01-01', 'u', 300, 5)"#
    ))
    .expect("staging a poison row");
    let counts = merge(&mut c);
    assert_eq!((counts[0], counts[1], counts[4]), (2, 1, 1), "{counts:?}");
    assert_eq!(
        scalar_i64(&mut c, "SELECT count(*) FROM cdc_management.v_dead_letters WHERE table_name = 'Actor' AND sqlstate = '23502'"),
        1
    );
    assert!(actors(&mut c).contains(&(b.clone(), 8, "fine".into(), 300, 5)));
    // Fixed and replayed, it merges.
    c.batch_execute(
        r#"UPDATE cdc_management.merge_dead_letters SET row_data = jsonb_set(row_data, '{IsActive}', 'true');
           SELECT cdc_management.replay_dead_letters('directory', 'Actor');"#,
    )
    .expect("replaying");
    merge(&mut c);
    assert!(actors(&mut c).contains(&(a.clone(), 8, "poison".into(), 300, 4)));

    // A READ COMMITTED caller in its own transaction block (trigger_pending_merges) merges too.
    stage(&mut c, &[upsert(&a, 9, "rc", 400, 6)]);
    let mut tx = c.transaction().expect("begin");
    let merged: i64 = tx
        .query_one(
            "SELECT coalesce(sum(rows_merged), 0)::bigint FROM cdc_management.trigger_pending_merges(0) WHERE table_name = 'Actor'",
            &[],
        )
        .expect("trigger_pending_merges")
        .get(0);
    tx.commit().expect("commit");
    assert_eq!(merged, 1);
    assert!(actors(&mut c).contains(&(a.clone(), 9, "rc".into(), 400, 6)));
}

#[test]
fn a_merge_killed_inside_its_batch_loses_and_duplicates_nothing() {
    let (cluster, db, mut c) = cluster_database("citus_merge_killed");
    let events = workload(20_000, 16, 200, 1_000);
    stage(&mut c, &events);
    // Each batch writes its processing-log row (on the coordinator) just before it commits:
    // hold it there so that the kill lands inside the batch.
    c.batch_execute(
        "CREATE FUNCTION public.hold_batch() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
         CREATE TRIGGER hold BEFORE INSERT ON cdc_management.cdc_processing_log
            FOR EACH ROW EXECUTE FUNCTION public.hold_batch();",
    )
    .expect("slow trigger");
    let conninfo = cluster.connection_string(&db);
    let merging = thread::spawn(move || {
        let mut mc = Client::connect(&conninfo, postgres::NoTls).expect("connect");
        mc.simple_query("CALL cdc_management.merge_table('directory', 'Actor')")
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = loop {
        let held = c
            .query(
                "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()",
                &[],
            )
            .expect("pg_stat_activity");
        if let Some(row) = held.first() {
            break row.get::<_, i32>(0);
        }
        assert!(
            Instant::now() < deadline,
            "the merge never reached the end of its batch"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(c
        .query_one(
            "SELECT pg_catalog.pg_terminate_backend($1::integer)",
            &[&pid]
        )
        .expect("terminate")
        .get::<_, bool>(0));
    let outcome = merging.join().expect("merge thread");
    assert!(outcome.is_err(), "the killed merge reports its failure");

    // Nothing of the killed batch stayed: every event is still staged, nothing reached the final table.
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."stg_Actor""#),
        i64::try_from(events.len()).expect("n")
    );
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."Actor""#),
        0
    );

    c.batch_execute("DROP TRIGGER hold ON cdc_management.cdc_processing_log")
        .expect("drop trigger");
    let counts = merge(&mut c);
    assert_eq!(counts[0], i64::try_from(events.len()).expect("n"));
    assert_eq!(
        actors(&mut c),
        truth(&events),
        "after the next merge the final table equals the truth"
    );
}
