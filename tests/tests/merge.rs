//! The merge contract (DESIGN.md §7) on the bundled example, against a real PostgreSQL 15:
//! `sp_merge_<Table>()` keeps the latest event per key, applies deletes (hard in `directory`,
//! soft in `billing`), never lets an older event overwrite or resurrect a row, works for any
//! number of staged rows, and reports and logs true counts; `trigger_pending_merges()` merges what
//! is pending, including from several sessions at once, and rows staged while a merge runs are
//! merged by the next one.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use cdc_testkit::fixture::{self, describe_error};
use postgres::{Client, GenericClient};

/// One change event as the sink connector writes it into a staging table.
#[derive(Debug, Clone)]
struct Event {
    key: i32,
    /// `Navn` of an Actor (`None` for a delete that only carries the key).
    name: Option<String>,
    op: &'static str,
    ts: Option<i64>,
    offset: Option<i64>,
}

fn upsert(key: i32, name: &str, ts: i64, offset: i64) -> Event {
    Event {
        key,
        name: Some(name.to_string()),
        op: "u",
        ts: Some(ts),
        offset: Some(offset),
    }
}

fn delete(key: i32, op: &'static str, ts: i64, offset: i64) -> Event {
    Event {
        key,
        name: None,
        op,
        ts: Some(ts),
        offset: Some(offset),
    }
}

fn literal(value: Option<&str>) -> String {
    value.map_or_else(
        || "NULL".to_string(),
        |v| format!("'{}'", v.replace('\'', "''")),
    )
}

fn number(value: Option<i64>) -> String {
    value.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

/// Stages Actor events with one multi-row INSERT (one statement, so one trigger call).
fn stage_actors(client: &mut impl GenericClient, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let values: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "({}, {}, {}, {}, {}, 0, now())",
                e.key,
                literal(e.name.as_deref()),
                literal(Some(e.op)),
                number(e.ts),
                number(e.offset)
            )
        })
        .collect();
    let sql = format!(
        r#"INSERT INTO directory."stg_Actor"
               ("actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset",
                "__kafka_partition", "__kafka_timestamp")
           VALUES {}"#,
        values.join(",\n")
    );
    client
        .batch_execute(&sql)
        .unwrap_or_else(|e| panic!("staging actors: {}", describe_error(&e)));
}

/// An `Order Details` event: `(OrderID, ProductID, Quantity, op, ts, offset)`.
type OrderEvent<'a> = (i32, i32, Option<i16>, &'a str, i64, i64);

/// Stages `Order Details` events.
fn stage_order_details(client: &mut impl GenericClient, events: &[OrderEvent<'_>]) {
    let values: Vec<String> = events
        .iter()
        .map(|(order, product, quantity, op, ts, offset)| {
            format!(
                "({order}, {product}, {}, {}, {ts}, {offset})",
                quantity.map_or_else(|| "NULL".to_string(), |q| q.to_string()),
                literal(Some(op))
            )
        })
        .collect();
    let sql = format!(
        r#"INSERT INTO directory."stg_Order Details"
               ("OrderID", "ProductID", "Quantity", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES {}"#,
        values.join(",\n")
    );
    client
        .batch_execute(&sql)
        .unwrap_or_else(|e| panic!("staging order details: {}", describe_error(&e)));
}

/// `(rows_consumed, rows_upserted, rows_deleted, rows_stale)`.
type Counts = (i64, i64, i64, i64);

fn merge(client: &mut impl GenericClient, schema: &str, table: &str) -> Counts {
    let sql = format!(r#"SELECT * FROM "{schema}"."sp_merge_{table}"()"#);
    counts(client, &sql)
}

fn merge_in_batches(client: &mut impl GenericClient, table: &str, batch: i32) -> Counts {
    let sql = format!(r#"SELECT * FROM directory."sp_merge_{table}"(p_batch_size => {batch})"#);
    counts(client, &sql)
}

fn counts(client: &mut impl GenericClient, sql: &str) -> Counts {
    let row = client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe_error(&e)));
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// `(actno, Navn, __cdc_operation, __source_ts_ms, __kafka_offset)` of every Actor row.
type ActorRow = (i32, String, Option<String>, Option<i64>, Option<i64>);

fn actors(client: &mut impl GenericClient) -> Vec<ActorRow> {
    client
        .query(
            r#"SELECT "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset"
                 FROM directory."Actor" ORDER BY "actno""#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

fn actor(key: i32, name: &str, op: &str, ts: i64, offset: i64) -> ActorRow {
    (
        key,
        name.to_string(),
        Some(op.to_string()),
        Some(ts),
        Some(offset),
    )
}

fn scalar_i64(client: &mut impl GenericClient, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe_error(&e)))
        .get(0)
}

fn staged(client: &mut impl GenericClient, table: &str) -> i64 {
    scalar_i64(
        client,
        &format!(r#"SELECT count(*) FROM directory."stg_{table}""#),
    )
}

/// The processing-log rows of a table, oldest first:
/// `(consumed, superseded, upserted, deleted, stale, min offset, max offset, min ts, max ts)`.
type LogRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn processing_log(client: &mut impl GenericClient, schema: &str, table: &str) -> Vec<LogRow> {
    client
        .query(
            "SELECT rows_consumed, rows_superseded, rows_upserted, rows_deleted, rows_stale,
                    min_kafka_offset, max_kafka_offset, min_source_ts_ms, max_source_ts_ms
               FROM cdc_management.cdc_processing_log
              WHERE schema_name = $1 AND table_name = $2
              ORDER BY id",
            &[&schema, &table],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        })
        .collect()
}

/// `(pk as text, source_ts_ms, kafka_offset)` of the tombstones of a table.
fn tombstones(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
) -> Vec<(String, i64, i64)> {
    client
        .query(
            "SELECT pk::text, source_ts_ms, kafka_offset FROM cdc_management.merge_tombstones
              WHERE schema_name = $1 AND table_name = $2 ORDER BY pk::text",
            &[&schema, &table],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn pending(client: &mut impl GenericClient, schema: &str, table: &str) -> bool {
    client
        .query_one(
            "SELECT pending FROM cdc_management.merge_control WHERE schema_name = $1 AND table_name = $2",
            &[&schema, &table],
        )
        .unwrap()
        .get(0)
}

/// `(schema, table, rows_merged)` of a `trigger_pending_merges` call (duration checked >= 0).
fn trigger_pending_merges(
    client: &mut impl GenericClient,
    window: i32,
) -> Vec<(String, String, i64)> {
    client
        .query(
            "SELECT schema_name, table_name, rows_merged, duration_ms
               FROM cdc_management.trigger_pending_merges($1)",
            &[&window],
        )
        .unwrap_or_else(|e| panic!("trigger_pending_merges: {}", describe_error(&e)))
        .iter()
        .map(|r| {
            let duration: i64 = r.get(3);
            assert!(duration >= 0, "duration_ms {duration}");
            (r.get(0), r.get(1), r.get(2))
        })
        .collect()
}

fn errors(client: &mut impl GenericClient) -> Vec<String> {
    client
        .query(
            "SELECT format('%s.%s %s %s %s', schema_name, table_name, sqlstate, message, detail)
               FROM cdc_management.error_log ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn database(prefix: &str) -> (String, Client) {
    let server = cdc_testkit::shared();
    let db = server.create_database(prefix);
    let mut client = server.client(&db);
    fixture::apply_example(&mut client);
    (db, client)
}

#[test]
fn inserts_updates_and_deletes_are_merged_with_true_counts_logged() {
    let (_db, mut c) = database("merge_basic");

    stage_actors(
        &mut c,
        &[
            upsert(1, "Ada", 100, 10),
            upsert(2, "Bo", 100, 11),
            upsert(3, "Cy", 100, 12),
        ],
    );
    assert!(
        pending(&mut c, "directory", "Actor"),
        "the staging trigger flags the table"
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (3, 3, 0, 0));
    assert_eq!(staged(&mut c, "Actor"), 0, "merged rows leave staging");
    assert!(!pending(&mut c, "directory", "Actor"));
    assert_eq!(
        actors(&mut c),
        [
            actor(1, "Ada", "u", 100, 10),
            actor(2, "Bo", "u", 100, 11),
            actor(3, "Cy", "u", 100, 12),
        ]
    );
    // Columns the event does not carry take the final table's shape (defaults applied in staging),
    // and the metadata says the row is live.
    let live: (bool, bool) = {
        let r = c
            .query_one(
                r#"SELECT bool_and("IsActive"), bool_and(NOT "__is_deleted") FROM directory."Actor""#,
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(live, (true, true));

    // An update of 2 and a delete of 3 (Debezium's 'd').
    stage_actors(
        &mut c,
        &[upsert(2, "Bob", 200, 13), delete(3, "d", 200, 14)],
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (2, 1, 1, 0));
    assert_eq!(
        actors(&mut c),
        [actor(1, "Ada", "u", 100, 10), actor(2, "Bob", "u", 200, 13)]
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [("[3]".to_string(), 200, 14)],
        "a hard delete leaves a tombstone with its position"
    );

    // A delete spelled 'DELETE'.
    stage_actors(&mut c, &[delete(1, "DELETE", 300, 15)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 1, 0));
    assert_eq!(actors(&mut c), [actor(2, "Bob", "u", 200, 13)]);

    // Nothing staged: nothing consumed, nothing logged.
    assert_eq!(merge(&mut c, "directory", "Actor"), (0, 0, 0, 0));

    assert_eq!(
        processing_log(&mut c, "directory", "Actor"),
        [
            (3, 0, 3, 0, 0, Some(10), Some(12), Some(100), Some(100)),
            (2, 0, 1, 1, 0, Some(13), Some(14), Some(200), Some(200)),
            (1, 0, 0, 1, 0, Some(15), Some(15), Some(300), Some(300)),
        ]
    );
    let status = c
        .query_one(
            "SELECT last_merge_rows, last_kafka_offset, last_source_ts_ms, pending
               FROM cdc_management.v_merge_status
              WHERE schema_name = 'directory' AND table_name = 'Actor'",
            &[],
        )
        .unwrap();
    assert_eq!(
        status.get::<_, Option<i64>>(0),
        Some(0),
        "the last (empty) merge"
    );
    assert_eq!(status.get::<_, Option<i64>>(1), Some(15));
    assert_eq!(status.get::<_, Option<i64>>(2), Some(300));
    assert!(!status.get::<_, bool>(3));
    let lag_rows = scalar_i64(
        &mut c,
        "SELECT count(*) FROM cdc_management.v_cdc_replication_lag
          WHERE schema_name = 'directory' AND table_name = 'Actor'
            AND last_source_change_at = to_timestamp(0.3)",
    );
    assert_eq!(lag_rows, 1);

    // Tombstones older than the retention window are purged, younger ones kept.
    c.batch_execute(
        "UPDATE cdc_management.merge_tombstones SET deleted_at = now() - interval '8 days'
          WHERE pk = '[3]'",
    )
    .unwrap();
    assert_eq!(
        scalar_i64(&mut c, "SELECT cdc_management.purge_tombstones()"),
        1
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [("[1]".to_string(), 300, 15)]
    );
    assert!(errors(&mut c).is_empty());
}

#[test]
fn a_failing_merge_is_logged_and_keeps_its_rows_while_other_tables_merge() {
    let (_db, mut c) = database("merge_failure");

    // An update without Navn cannot go into the final table (NOT NULL).
    stage_actors(
        &mut c,
        &[
            upsert(1, "fine", 1, 1),
            Event {
                key: 2,
                name: None,
                op: "u",
                ts: Some(1),
                offset: Some(2),
            },
        ],
    );
    stage_order_details(&mut c, &[(1, 1, Some(1), "c", 1, 1)]);

    let merged = trigger_pending_merges(&mut c, 0);
    assert_eq!(
        merged,
        [("directory".to_string(), "Order Details".to_string(), 1)],
        "the failing table is skipped, the others are merged"
    );
    assert_eq!(
        staged(&mut c, "Actor"),
        2,
        "the failed merge consumed nothing"
    );
    assert!(actors(&mut c).is_empty());
    assert!(
        pending(&mut c, "directory", "Actor"),
        "still pending for a retry"
    );
    let logged = c
        .query(
            "SELECT schema_name, table_name, operation, sqlstate, message
               FROM cdc_management.v_recent_errors",
            &[],
        )
        .unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].get::<_, String>(0), "directory");
    assert_eq!(logged[0].get::<_, String>(1), "Actor");
    assert_eq!(logged[0].get::<_, String>(2), "merge");
    assert_eq!(logged[0].get::<_, String>(3), "23502", "not_null_violation");
    assert!(
        logged[0].get::<_, String>(4).contains("Navn"),
        "{}",
        logged[0].get::<_, String>(4)
    );
    let last_error = scalar_i64(
        &mut c,
        "SELECT count(*) FROM cdc_management.merge_control
          WHERE table_name = 'Actor' AND last_error_at IS NOT NULL",
    );
    assert_eq!(last_error, 1);
}

#[test]
fn the_latest_event_per_key_wins_within_a_batch_whatever_the_insertion_order() {
    let (_db, mut c) = database("merge_latest");

    stage_actors(
        &mut c,
        &[
            // Key 10: the highest ts wins, and among equal ts the highest offset.
            upsert(10, "v3-early-offset", 300, 5),
            upsert(10, "v1", 100, 9),
            upsert(10, "v3", 300, 7),
            upsert(10, "v2", 200, 8),
            // Key 11: the newest event is a delete, so the key never appears.
            upsert(11, "a", 100, 1),
            delete(11, "DELETE", 200, 2),
            upsert(11, "b", 150, 3),
            // Key 12: insert newer than its delete.
            delete(12, "d", 50, 4),
            upsert(12, "back", 60, 6),
            // Key 13: an event without a position (NULLs) loses to any positioned event.
            Event {
                key: 13,
                name: Some("snapshot".into()),
                op: "r",
                ts: None,
                offset: None,
            },
            upsert(13, "positioned", 0, 0),
        ],
    );
    // 11 consumed; 7 superseded (11 events, 4 keys); 3 upserted (10, 12, 13); the delete of 11 has
    // no row to remove.
    assert_eq!(merge(&mut c, "directory", "Actor"), (11, 3, 0, 0));
    assert_eq!(
        actors(&mut c),
        [
            actor(10, "v3", "u", 300, 7),
            actor(12, "back", "u", 60, 6),
            actor(13, "positioned", "u", 0, 0),
        ]
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [("[11]".to_string(), 200, 2)]
    );
    let log = processing_log(&mut c, "directory", "Actor");
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0],
        (11, 7, 3, 0, 0, Some(0), Some(9), Some(0), Some(300))
    );

    // The same for a composite key: versions of (1, 1) and (1, 2) interleaved.
    stage_order_details(
        &mut c,
        &[
            (1, 1, Some(3), "u", 30, 103),
            (1, 2, Some(20), "u", 20, 102),
            (1, 1, Some(1), "c", 10, 101),
            (1, 2, Some(10), "c", 10, 100),
            (1, 1, Some(2), "u", 20, 104),
        ],
    );
    assert_eq!(merge(&mut c, "directory", "Order Details"), (5, 2, 0, 0));
    let rows: Vec<(i32, i32, i16)> = c
        .query(
            r#"SELECT "OrderID", "ProductID", "Quantity" FROM directory."Order Details" ORDER BY 1, 2"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows, [(1, 1, 3), (1, 2, 20)]);
}

#[test]
fn late_older_events_are_stale_and_never_resurrect_a_deleted_row() {
    let (_db, mut c) = database("merge_late");

    stage_actors(
        &mut c,
        &[upsert(1, "new", 100, 10), upsert(2, "two", 300, 30)],
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (2, 2, 0, 0));

    // An older update arriving after the newer one was merged (a replay): not applied, stale.
    stage_actors(&mut c, &[upsert(1, "old", 50, 5)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    // The very same event again (at-least-once delivery): stale too.
    stage_actors(&mut c, &[upsert(1, "new-replayed", 100, 10)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    // An older delete of a newer row: stale, the row stays.
    stage_actors(&mut c, &[delete(2, "d", 250, 25)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    assert_eq!(
        actors(&mut c),
        [actor(1, "new", "u", 100, 10), actor(2, "two", "u", 300, 30)]
    );

    // Delete 1, then an older insert of 1 arrives: the tombstone keeps it deleted.
    stage_actors(&mut c, &[delete(1, "d", 200, 20)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 1, 0));
    stage_actors(&mut c, &[upsert(1, "zombie", 150, 15)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    assert_eq!(actors(&mut c), [actor(2, "two", "u", 300, 30)]);
    // Same position as the delete: still not newer than it.
    stage_actors(&mut c, &[upsert(1, "zombie", 200, 20)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    assert_eq!(actors(&mut c), [actor(2, "two", "u", 300, 30)]);

    // A newer insert after the delete does bring the key back.
    stage_actors(&mut c, &[upsert(1, "reborn", 400, 40)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 1, 0, 0));
    // And a replay of the old delete cannot remove it again.
    stage_actors(&mut c, &[delete(1, "d", 200, 20)]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    assert_eq!(
        actors(&mut c),
        [
            actor(1, "reborn", "u", 400, 40),
            actor(2, "two", "u", 300, 30)
        ]
    );

    // The stale counts are logged too.
    let stale: Vec<i64> = processing_log(&mut c, "directory", "Actor")
        .iter()
        .map(|l| l.4)
        .collect();
    assert_eq!(stale, [0, 1, 1, 1, 0, 1, 1, 0, 1]);

    // Composite key: the tombstone's key is the JSON array of the key columns, in key order.
    stage_order_details(&mut c, &[(7, 8, Some(1), "c", 10, 1)]);
    assert_eq!(merge(&mut c, "directory", "Order Details"), (1, 1, 0, 0));
    stage_order_details(&mut c, &[(7, 8, None, "DELETE", 20, 2)]);
    assert_eq!(merge(&mut c, "directory", "Order Details"), (1, 0, 1, 0));
    stage_order_details(&mut c, &[(7, 8, Some(5), "u", 15, 3)]);
    assert_eq!(merge(&mut c, "directory", "Order Details"), (1, 0, 0, 1));
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."Order Details""#),
        0,
        "the older insert must not resurrect the deleted row"
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Order Details"),
        [("[7, 8]".to_string(), 20, 2)]
    );
    assert!(errors(&mut c).is_empty());
}

/// Deterministic, scrambled events: 100 events over 10 keys, every third a delete; two versions
/// of a key often share a `__source_ts_ms` (then the offset decides).
fn scrambled_events() -> Vec<Event> {
    let mut events: Vec<Event> = (0..100i64)
        .map(|i| {
            let key = (i % 10) as i32 + 1;
            let ts = 1_000 + i / 20;
            let offset = 5_000 + i;
            if i % 3 == 2 {
                delete(key, if i % 2 == 0 { "d" } else { "DELETE" }, ts, offset)
            } else {
                upsert(key, &format!("k{key}-e{i}"), ts, offset)
            }
        })
        .collect();
    // Insertion order: a fixed pseudo-random shuffle (Fisher-Yates over xorshift), so that
    // batches of 7 hold several versions of a key and older versions follow newer ones.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..events.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        events.swap(i, (state % (i as u64 + 1)) as usize);
    }
    events
}

#[test]
fn more_rows_than_one_batch_end_in_the_latest_state() {
    let (_db, mut c) = database("merge_batches");

    // Some keys exist before: an old version that the events must overwrite (or delete).
    stage_actors(
        &mut c,
        &(1..=10)
            .map(|k| upsert(k, "before", 1, 1))
            .collect::<Vec<_>>(),
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (10, 10, 0, 0));

    let events = scrambled_events();
    stage_actors(&mut c, &events);
    assert_eq!(staged(&mut c, "Actor"), 100);

    let mut latest: BTreeMap<i32, &Event> = BTreeMap::new();
    for e in &events {
        let newer = latest
            .get(&e.key)
            .is_none_or(|old| (e.ts, e.offset) > (old.ts, old.offset));
        if newer {
            latest.insert(e.key, e);
        }
    }
    let expected: Vec<ActorRow> = latest
        .values()
        .filter(|e| e.op == "u")
        .map(|e| {
            actor(
                e.key,
                e.name.as_deref().unwrap(),
                "u",
                e.ts.unwrap(),
                e.offset.unwrap(),
            )
        })
        .collect();
    let deleted_keys = latest.values().filter(|e| e.op != "u").count() as i64;
    assert!(
        !expected.is_empty() && deleted_keys > 0,
        "the fixture should end with both live and deleted keys"
    );

    let (consumed, upserted, deleted, stale) = merge_in_batches(&mut c, "Actor", 7);
    assert_eq!(consumed, 100);
    assert_eq!(staged(&mut c, "Actor"), 0);
    assert_eq!(actors(&mut c), expected);
    // Every key whose latest event is a delete has a tombstone at that event's position.
    let tombs = tombstones(&mut c, "directory", "Actor");
    for e in latest.values().filter(|e| e.op != "u") {
        let key = format!("[{}]", e.key);
        let found = tombs.iter().find(|t| t.0 == key);
        assert_eq!(
            found.map(|t| (t.1, t.2)),
            Some((e.ts.unwrap(), e.offset.unwrap())),
            "tombstone of key {}",
            e.key
        );
    }
    // Every consumed event is accounted for exactly once: superseded in its batch, upserted,
    // deleted, stale, or a delete of a key already gone.
    let log = processing_log(&mut c, "directory", "Actor");
    assert_eq!(log.len(), 2, "one log row per merge call");
    let last = log[1];
    assert_eq!(
        (last.0, last.2, last.3, last.4),
        (consumed, upserted, deleted, stale)
    );
    assert_eq!(
        (last.5, last.6, last.7, last.8),
        (Some(5_000), Some(5_099), Some(1_000), Some(1_004))
    );
    let superseded = last.1;
    assert!(upserted >= expected.len() as i64);
    assert!(deleted >= 1);
    assert!(
        superseded + upserted + deleted + stale <= consumed,
        "{last:?} counts more than it consumed"
    );
    // The shuffle makes both happen: versions superseded inside a batch, and older versions
    // arriving in a later batch than a newer one (stale).
    assert!(superseded > 0 && stale > 0, "{last:?}");

    // The same events merged in one batch give the same final state.
    let server = cdc_testkit::shared();
    let other = server.create_database("merge_one_batch");
    let mut c2 = server.client(&other);
    fixture::apply_example(&mut c2);
    stage_actors(
        &mut c2,
        &(1..=10)
            .map(|k| upsert(k, "before", 1, 1))
            .collect::<Vec<_>>(),
    );
    merge(&mut c2, "directory", "Actor");
    stage_actors(&mut c2, &events);
    assert_eq!(merge(&mut c2, "directory", "Actor").0, 100);
    assert_eq!(actors(&mut c2), expected);
}

#[test]
fn trigger_pending_merges_merges_pending_tables_and_returns_true_counts() {
    let (_db, mut c) = database("merge_trigger");

    stage_actors(
        &mut c,
        &(1..=5)
            .map(|k| upsert(k, "a", 10, k as i64))
            .collect::<Vec<_>>(),
    );
    // Three events, two keys: rows_merged counts consumed rows.
    stage_order_details(
        &mut c,
        &[
            (1, 1, Some(1), "c", 1, 1),
            (1, 1, Some(2), "u", 2, 2),
            (1, 2, Some(1), "c", 1, 3),
        ],
    );
    c.batch_execute(
        r#"INSERT INTO billing."stg_Invoice"
               ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (1, gen_random_uuid(), 'N-1', 1.5, now(), false, 'c', 1, 1),
                  (2, gen_random_uuid(), 'N-2', 2.5, now(), false, 'c', 1, 2)"#,
    )
    .unwrap();
    let flagged: Vec<String> = c
        .query(
            "SELECT schema_name || '.' || table_name FROM cdc_management.merge_control
              WHERE pending ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        flagged,
        [
            "billing.Invoice",
            "directory.Actor",
            "directory.Order Details"
        ]
    );

    // Within the batch window nothing is merged yet.
    assert!(trigger_pending_merges(&mut c, 3600).is_empty());
    assert_eq!(staged(&mut c, "Actor"), 5);

    let merged = trigger_pending_merges(&mut c, 0);
    assert_eq!(
        merged,
        [
            ("billing".to_string(), "Invoice".to_string(), 2),
            ("directory".to_string(), "Actor".to_string(), 5),
            ("directory".to_string(), "Order Details".to_string(), 3),
        ]
    );
    assert_eq!(actors(&mut c).len(), 5);
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."Order Details""#),
        2
    );
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM billing."Invoice""#),
        2
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM cdc_management.merge_control WHERE pending"
        ),
        0
    );
    assert_eq!(
        processing_log(&mut c, "directory", "Order Details")
            .iter()
            .map(|l| (l.0, l.1, l.2))
            .collect::<Vec<_>>(),
        [(3, 1, 2)]
    );
    // Nothing pending: nothing merged, nothing returned.
    assert!(trigger_pending_merges(&mut c, 0).is_empty());

    // A staged table whose flag is down (a flag that raced a merge) is still swept up.
    stage_actors(&mut c, &[upsert(6, "swept", 20, 6)]);
    c.batch_execute(
        "UPDATE cdc_management.merge_control SET pending = false, pending_since = NULL",
    )
    .unwrap();
    assert_eq!(
        trigger_pending_merges(&mut c, 3600),
        [("directory".to_string(), "Actor".to_string(), 1)]
    );
    assert_eq!(actors(&mut c).len(), 6);

    // A disabled table is left alone.
    c.batch_execute(
        "UPDATE cdc_management.merge_control SET enabled = false
          WHERE schema_name = 'directory' AND table_name = 'Actor'",
    )
    .unwrap();
    stage_actors(&mut c, &[upsert(7, "later", 30, 7)]);
    assert!(trigger_pending_merges(&mut c, 0).is_empty());
    assert_eq!(staged(&mut c, "Actor"), 1);

    // manual_merge merges it whatever its flag says, with the same true counts.
    let manual = counts(
        &mut c,
        "SELECT * FROM cdc_management.manual_merge('directory', 'Actor')",
    );
    assert_eq!(manual, (1, 1, 0, 0));
    assert!(errors(&mut c).is_empty());
}

#[test]
fn soft_delete_sink_marks_rows_deleted_and_keeps_them() {
    let (_db, mut c) = database("merge_soft");
    let tenant = "6f1c1d38-54a4-4a8b-9d3e-0a3c4e5f6a7b";
    let customer = "11111111-2222-3333-4444-555555555555";

    let stage = |c: &mut Client, id: i64, number: Option<&str>, op: &str, ts: i64, offset: i64| {
        c.batch_execute(&format!(
            r#"INSERT INTO billing."stg_Invoice"
                   ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "_customer_id",
                    "__cdc_operation", "__source_ts_ms", "__kafka_offset", "__source")
               VALUES ({id}, {cust}, {number}, {amount}, {issued}, {paid}, '{tenant}',
                       '{op}', {ts}, {offset}, 'billing-connector')"#,
            cust = if number.is_some() { format!("'{customer}'") } else { "NULL".into() },
            number = literal(number),
            amount = if number.is_some() { "12.3456" } else { "NULL" },
            issued = if number.is_some() { "'2026-01-02 03:04:05.678+00'" } else { "NULL" },
            paid = if number.is_some() { "true" } else { "NULL" },
        ))
        .unwrap_or_else(|e| panic!("staging invoice: {}", describe_error(&e)));
    };
    type InvoiceRow = (
        i64,
        String,
        bool,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let invoices = |c: &mut Client| -> Vec<InvoiceRow> {
        c.query(
            r#"SELECT "InvoiceId", "Number", "__is_deleted", "__cdc_operation", "__source_ts_ms",
                      "_customer_id"::text
                 FROM billing."Invoice" ORDER BY 1"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
    };
    let row = |id: i64, number: &str, deleted: bool, op: &str, ts: i64| -> InvoiceRow {
        (
            id,
            number.to_string(),
            deleted,
            Some(op.to_string()),
            Some(ts),
            Some(tenant.to_string()),
        )
    };

    stage(&mut c, 1, Some("N-1"), "c", 100, 1);
    stage(&mut c, 2, Some("N-2"), "c", 100, 2);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (2, 2, 0, 0));
    // The template column is carried, and typed values survive the merge.
    let values = c
        .query_one(
            r#"SELECT "Amount"::text, "IssuedAt" = '2026-01-02 03:04:05.678+00', "Paid",
                      "CustomerId"::text, "__source"
                 FROM billing."Invoice" WHERE "InvoiceId" = 1"#,
            &[],
        )
        .unwrap();
    assert_eq!(values.get::<_, String>(0), "12.3456");
    assert!(values.get::<_, bool>(1));
    assert!(values.get::<_, bool>(2));
    assert_eq!(values.get::<_, String>(3), customer);
    assert_eq!(values.get::<_, String>(4), "billing-connector");

    // A delete carrying only the key: the row stays, marked deleted, its values kept.
    stage(&mut c, 2, None, "d", 200, 3);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 1, 0));
    assert_eq!(
        invoices(&mut c),
        [
            row(1, "N-1", false, "c", 100),
            row(2, "N-2", true, "d", 200)
        ]
    );

    // An older update after the delete: stale, the row stays deleted.
    stage(&mut c, 2, Some("N-2-old"), "u", 150, 4);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 0, 1));
    assert_eq!(invoices(&mut c)[1], row(2, "N-2", true, "d", 200));
    // A replayed delete: stale.
    stage(&mut c, 2, None, "DELETE", 200, 3);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 0, 1));

    // A newer insert brings it back to life.
    stage(&mut c, 2, Some("N-2-new"), "c", 300, 5);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        invoices(&mut c),
        [
            row(1, "N-1", false, "c", 100),
            row(2, "N-2-new", false, "c", 300)
        ]
    );

    // Delete and re-insert inside one batch: the latest (the delete) wins, the row is kept.
    stage(&mut c, 1, Some("N-1-b"), "u", 400, 6);
    stage(&mut c, 1, None, "d", 500, 7);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (2, 0, 1, 0));
    assert_eq!(invoices(&mut c)[0], row(1, "N-1", true, "d", 500));

    // InvoiceLine's template column is renamed in the sink (`_tenant_customer_id`).
    c.batch_execute(&format!(
        r#"INSERT INTO billing."stg_InvoiceLine"
               ("InvoiceId", "LineNo", "Quantity", "UnitPrice", "_tenant_customer_id",
                "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (1, 1, 2.5, 9.99, '{tenant}', 'c', 1, 1)"#
    ))
    .unwrap();
    assert_eq!(merge(&mut c, "billing", "InvoiceLine"), (1, 1, 0, 0));
    let carried: String = c
        .query_one(
            r#"SELECT "_tenant_customer_id"::text FROM billing."InvoiceLine""#,
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(carried, tenant);
    assert!(errors(&mut c).is_empty());
}

/// Runs `f` on another thread and waits at most `limit` for it; `None` when it is still running.
fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Option<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    (rx.recv_timeout(limit).ok(), rx)
}

#[test]
fn rows_staged_while_a_merge_runs_are_merged_by_the_next_one() {
    let server = cdc_testkit::shared();
    let (db, mut merger) = database("merge_during");
    let mut sink = server.client(&db);

    // Committed rows first: the table is flagged.
    stage_actors(
        &mut sink,
        &[upsert(1, "one", 10, 1), upsert(2, "two", 10, 2)],
    );

    // The connector stages more rows in a transaction it has not committed yet.
    let mut open = sink.transaction().unwrap();
    stage_actors(
        &mut open,
        &[upsert(3, "three", 10, 3), upsert(4, "four", 10, 4)],
    );

    // A merge now consumes exactly the committed rows.
    let (result, _rx) = within(Duration::from_secs(20), move || {
        let counts = merge(&mut merger, "directory", "Actor");
        (counts, merger)
    });
    let (counts, mut merger) = result.expect("the merge waited on an open staging transaction");
    assert_eq!(counts, (2, 2, 0, 0));

    open.commit().unwrap();
    assert_eq!(
        staged(&mut merger, "Actor"),
        2,
        "the late rows wait in staging"
    );
    // The next merge (here through the orchestrator, which also finds tables whose flag was
    // lowered by a merge that could not see these rows yet) merges them.
    assert_eq!(
        trigger_pending_merges(&mut merger, 0),
        [("directory".to_string(), "Actor".to_string(), 2)]
    );
    assert_eq!(
        actors(&mut merger).iter().map(|a| a.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(staged(&mut merger, "Actor"), 0);

    // The table's flag is down and an uncommitted transaction raises it: a merge started now may
    // have to wait for that transaction, but no row is lost either way.
    assert!(!pending(&mut merger, "directory", "Actor"));
    let mut open = sink.transaction().unwrap();
    stage_actors(&mut open, &[upsert(5, "five", 10, 5)]);
    let (result, rx) = within(Duration::from_millis(300), move || {
        let counts = merge(&mut merger, "directory", "Actor");
        (counts, merger)
    });
    open.commit().unwrap();
    let (first, mut merger) = match result {
        Some(done) => done,
        None => rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the merge never finished after the staging transaction committed"),
    };
    let second = merge(&mut merger, "directory", "Actor");
    assert_eq!(
        first.0 + second.0,
        1,
        "row 5 consumed exactly once: {first:?} {second:?}"
    );
    assert_eq!(
        actors(&mut merger).iter().map(|a| a.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(staged(&mut merger, "Actor"), 0);
    assert!(errors(&mut merger).is_empty());
}

#[test]
fn concurrent_trigger_pending_merges_merge_every_row_exactly_once() {
    const MERGERS: usize = 4;
    const ACTORS: i32 = 3_000;
    const ORDERS: i32 = 2_000;
    let server = cdc_testkit::shared();
    let (db, mut c) = database("merge_concurrent");

    // Two versions of every Actor key (the second wins), one of every order line.
    c.batch_execute(&format!(
        r#"INSERT INTO directory."stg_Actor" ("actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           SELECT k, 'old-' || k, 'c', 1, k FROM generate_series(1, {ACTORS}) AS k;
           INSERT INTO directory."stg_Actor" ("actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           SELECT k, 'new-' || k, 'u', 2, {ACTORS} + k FROM generate_series(1, {ACTORS}) AS k;
           INSERT INTO directory."stg_Order Details" ("OrderID", "ProductID", "Quantity", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           SELECT k / 10, k % 10, 1, 'c', 1, k FROM generate_series(1, {ORDERS}) AS k;"#
    ))
    .unwrap();

    // Several sessions call the orchestrator at once, while a producer keeps staging new keys.
    let start = Arc::new(Barrier::new(MERGERS + 1));
    let mut handles = Vec::new();
    for _ in 0..MERGERS {
        let start = Arc::clone(&start);
        let mut client = server.client(&db);
        handles.push(thread::spawn(move || {
            start.wait();
            let mut results = Vec::new();
            for _ in 0..5 {
                results.extend(trigger_pending_merges(&mut client, 0));
            }
            results
        }));
    }
    let producer = {
        let start = Arc::clone(&start);
        let mut client = server.client(&db);
        thread::spawn(move || {
            start.wait();
            for batch in 0..20 {
                let events: Vec<Event> = (0..10)
                    .map(|i| {
                        let key = 100_000 + batch * 10 + i;
                        upsert(key, "produced", 3, i64::from(key))
                    })
                    .collect();
                stage_actors(&mut client, &events);
            }
        })
    };
    producer.join().unwrap();
    let mut results: Vec<(String, String, i64)> = Vec::new();
    for handle in handles {
        results.extend(handle.join().unwrap());
    }
    // Whatever the producer staged after the last merge of the mergers.
    results.extend(trigger_pending_merges(&mut c, 0));

    let total = |table: &str| -> i64 {
        results
            .iter()
            .filter(|(s, t, _)| s == "directory" && t == table)
            .map(|r| r.2)
            .sum()
    };
    assert_eq!(total("Actor"), 2 * i64::from(ACTORS) + 200, "{results:?}");
    assert_eq!(total("Order Details"), i64::from(ORDERS), "{results:?}");
    assert_eq!(staged(&mut c, "Actor"), 0);
    assert_eq!(staged(&mut c, "Order Details"), 0);

    // The final tables hold every key once, with its latest version.
    let summary = c
        .query_one(
            r#"SELECT count(*), count(*) FILTER (WHERE "Navn" = 'new-' || "actno"),
                      count(*) FILTER (WHERE "Navn" = 'produced')
                 FROM directory."Actor""#,
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            summary.get::<_, i64>(0),
            summary.get::<_, i64>(1),
            summary.get::<_, i64>(2)
        ),
        (i64::from(ACTORS) + 200, i64::from(ACTORS), 200)
    );
    assert_eq!(
        scalar_i64(&mut c, r#"SELECT count(*) FROM directory."Order Details""#),
        i64::from(ORDERS)
    );

    // The processing log agrees: every staged row consumed exactly once, no key upserted twice
    // from its first version after its second.
    let logged = c
        .query_one(
            "SELECT sum(rows_consumed)::bigint, sum(rows_upserted + rows_superseded + rows_stale)::bigint
               FROM cdc_management.cdc_processing_log
              WHERE schema_name = 'directory' AND table_name = 'Actor'",
            &[],
        )
        .unwrap();
    assert_eq!(logged.get::<_, i64>(0), 2 * i64::from(ACTORS) + 200);
    assert_eq!(logged.get::<_, i64>(1), 2 * i64::from(ACTORS) + 200);
    assert!(errors(&mut c).is_empty(), "{:?}", errors(&mut c));
}
