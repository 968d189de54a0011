//! The merge contract (DESIGN.md §7), ordering: per key the latest event by `__source_ts_ms`, then
//! `__kafka_offset`, wins within a batch whatever the insertion order; an older event arriving
//! late never overwrites a newer row nor resurrects a deleted one (tombstones, simple and composite
//! keys); and any number of staged rows, merged in many batches, ends in the latest state.

use std::collections::BTreeMap;

use cdc_testkit::fixture;
use cdc_testkit::merge::{
    actor, actors, delete, errors, example_database, merge, merge_in_batches, processing_log,
    scalar_i64, stage_actors, stage_order_details, staged, tenant_key, tombstones, upsert,
    ActorEvent, ActorRow, LogRow, TENANT,
};

#[test]
fn the_latest_event_per_key_wins_within_a_batch_whatever_the_insertion_order() {
    let (_db, mut c) = example_database("merge_latest");

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
            ActorEvent {
                tenant: Some(TENANT),
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
        [(tenant_key("11"), 200, 2)]
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
    let (_db, mut c) = example_database("merge_late");

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
        [(tenant_key("7, 8"), 20, 2)]
    );
    assert!(errors(&mut c).is_empty());
}

/// Deterministic, scrambled events: 100 events over 10 keys, every third a delete; two versions
/// of a key often share a `__source_ts_ms` (then the offset decides).
fn scrambled_events() -> Vec<ActorEvent> {
    let mut events: Vec<ActorEvent> = (0..100i64)
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
    let (_db, mut c) = example_database("merge_batches");

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

    let mut latest: BTreeMap<i32, &ActorEvent> = BTreeMap::new();
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
        let key = tenant_key(&e.key.to_string());
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
    assert_eq!(
        log.len(),
        1 + 15,
        "one log row per committed batch: 100 events in batches of 7"
    );
    let batches = &log[1..];
    let sum = |f: fn(&LogRow) -> i64| batches.iter().map(f).sum::<i64>();
    assert_eq!(
        (sum(|r| r.0), sum(|r| r.2), sum(|r| r.3), sum(|r| r.4)),
        (consumed, upserted, deleted, stale),
        "the batches' counts add up to the call's"
    );
    assert!(batches[..14].iter().all(|r| r.0 == 7) && batches[14].0 == 2);
    assert_eq!(
        (
            batches.iter().filter_map(|r| r.5).min(),
            batches.iter().filter_map(|r| r.6).max(),
            batches.iter().filter_map(|r| r.7).min(),
            batches.iter().filter_map(|r| r.8).max()
        ),
        (Some(5_000), Some(5_099), Some(1_000), Some(1_004))
    );
    let superseded = sum(|r| r.1);
    let last = (consumed, superseded, upserted, deleted, stale);
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
