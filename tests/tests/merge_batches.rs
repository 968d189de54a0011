//! The merge contract (DESIGN.md §7), bounded transactions: `merge_table()` and
//! `run_pending_merges()` commit per batch and per table, so a large backlog drains while
//! staging shrinks and other sessions see the progress, and a merge killed at any moment
//! (`pg_terminate_backend`, inside a batch or between batches) loses and duplicates nothing:
//! after the next merge the final table equals the truth.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use cdc_testkit::merge::{
    actor, actors, example_database, pending, scalar_i64, stage_actors, staged, upsert, ActorEvent,
    ActorRow, TENANT,
};

/// `n` events over `keys` keys, every tenth a delete, positions increasing; and the truth
/// they leave (the newest event per key, deleted keys absent).
fn workload(n: i64, keys: i32, seed: u64) -> (Vec<ActorEvent>, Vec<ActorRow>) {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut truth: BTreeMap<i32, Option<ActorRow>> = BTreeMap::new();
    let mut events = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = i32::try_from(next() % u64::try_from(keys).unwrap()).unwrap() + 1;
        let (ts, offset) = (1_000 + i, i);
        if next() % 10 == 0 {
            events.push(ActorEvent {
                tenant: Some(TENANT),
                key,
                name: None,
                op: "d",
                ts: Some(ts),
                offset: Some(offset),
            });
            truth.insert(key, None);
        } else {
            let name = format!("n{key}-{i}");
            truth.insert(key, Some(actor(key, &name, "u", ts, offset)));
            events.push(upsert(key, &name, ts, offset));
        }
    }
    (events, truth.into_values().flatten().collect())
}

fn stage_in_chunks(c: &mut postgres::Client, events: &[ActorEvent]) {
    for chunk in events.chunks(10_000) {
        stage_actors(c, chunk);
    }
}

/// Makes every merge batch of Actor last at least `ms` milliseconds, inside its transaction
/// (a trigger on the processing log, whose row each batch writes before it commits).
fn slow_batches(c: &mut postgres::Client, ms: u32) {
    c.batch_execute(&format!(
        "CREATE FUNCTION public.slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep({secs}); RETURN NEW; END $$;
         CREATE TRIGGER slow_batch BEFORE INSERT ON cdc_management.cdc_processing_log
            FOR EACH ROW EXECUTE FUNCTION public.slow_batch();",
        secs = f64::from(ms) / 1000.0
    ))
    .unwrap();
}

fn batches_logged(c: &mut postgres::Client) -> i64 {
    scalar_i64(
        c,
        "SELECT count(*) FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'",
    )
}

#[test]
fn a_backlog_drains_in_committed_batches_while_staging_shrinks() {
    let (db, mut c) = example_database("merge_bounded");
    let (events, truth) = workload(20_000, 2_000, 7);
    stage_in_chunks(&mut c, &events);
    slow_batches(&mut c, 100);

    let merger = thread::spawn(move || {
        let mut m = cdc_testkit::shared().client(&db);
        let row = m
            .query_one(
                "CALL cdc_management.merge_table('directory', 'Actor', 2000)",
                &[],
            )
            .unwrap();
        (row.get::<_, i64>(0), row.get::<_, i64>(4))
    });
    // While the merge runs, another session sees batches committed and staging shrinking.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_midway = None;
    while !merger.is_finished() && Instant::now() < deadline {
        let (logged, left) = (batches_logged(&mut c), staged(&mut c, "Actor"));
        if logged >= 2 && left > 0 && left < 20_000 {
            seen_midway = Some((logged, left));
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let (consumed, dead) = merger.join().unwrap();
    let (logged, left) = seen_midway.expect("no committed batch was visible while the merge ran");
    assert_eq!(
        left,
        20_000 - 2_000 * logged,
        "each committed batch took exactly its rows out of staging"
    );
    assert_eq!((consumed, dead), (20_000, 0));
    assert_eq!(batches_logged(&mut c), 10, "one log row per batch");
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT sum(rows_consumed)::bigint FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'"
        ),
        20_000,
        "true counts across separately committed batches"
    );
    assert_eq!(staged(&mut c, "Actor"), 0);
    assert!(!pending(&mut c, "directory", "Actor"));
    assert_eq!(actors(&mut c), truth);
}

/// Kills the merging backend once `ready` holds, then merges again; the final table must
/// equal the truth and every staged row must have been consumed exactly once.
fn kill_and_recover(prefix: &str, ready: fn(&mut postgres::Client) -> bool) {
    let (db, mut c) = example_database(prefix);
    let (events, truth) = workload(30_000, 3_000, 11);
    stage_in_chunks(&mut c, &events);
    slow_batches(&mut c, 150);

    let db2 = db.clone();
    let merger = thread::spawn(move || {
        let mut m = cdc_testkit::shared().client(&db2);
        m.query_one(
            "CALL cdc_management.merge_table('directory', 'Actor', 3000)",
            &[],
        )
        .map(|_| ())
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&mut c) {
        assert!(
            Instant::now() < deadline,
            "the merge never reached the kill point"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let killed = scalar_i64(
        &mut c,
        // Materialised first: the terminate must only see this database's merging backend.
        "WITH victim AS MATERIALIZED (
             SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND query LIKE 'CALL cdc_management.merge_table%'
         )
         SELECT count(*) FROM victim WHERE pg_terminate_backend(pid)",
    );
    assert_eq!(killed, 1, "the merging backend was found and terminated");
    assert!(
        merger.join().unwrap().is_err(),
        "the killed merge reports an error"
    );
    let consumed_before = scalar_i64(
        &mut c,
        "SELECT coalesce(sum(rows_consumed), 0)::bigint FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'",
    );
    assert_eq!(
        consumed_before + staged(&mut c, "Actor"),
        30_000,
        "every row is either merged (and logged) or still staged"
    );

    c.batch_execute("DROP TRIGGER slow_batch ON cdc_management.cdc_processing_log")
        .unwrap();
    let row = c
        .query_one(
            "CALL cdc_management.merge_table('directory', 'Actor', 3000)",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 30_000 - consumed_before);
    assert_eq!(staged(&mut c, "Actor"), 0);
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT sum(rows_consumed)::bigint FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'"
        ),
        30_000,
        "no row was consumed twice"
    );
    assert_eq!(actors(&mut c), truth);
}

#[test]
fn a_merge_killed_inside_a_batch_loses_and_duplicates_nothing() {
    // The backend sleeps inside the batch transaction after its log row: kill it there, after
    // two batches committed.
    kill_and_recover("merge_kill_inside", |c| {
        scalar_i64(
            c,
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event = 'PgSleep'
                AND query LIKE 'CALL cdc_management.merge_table%'",
        ) == 1
            && batches_logged(c) >= 2
    });
}

#[test]
fn a_merge_killed_in_its_first_batch_loses_and_duplicates_nothing() {
    kill_and_recover("merge_kill_first", |c| {
        scalar_i64(
            c,
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event = 'PgSleep'
                AND query LIKE 'CALL cdc_management.merge_table%'",
        ) == 1
    });
}

#[test]
fn run_pending_merges_commits_each_table_on_its_own_and_reports_the_round() {
    let (_db, mut c) = example_database("merge_round");
    let (events, truth) = workload(5_000, 500, 3);
    stage_in_chunks(&mut c, &events);
    c.batch_execute(
        r#"INSERT INTO directory."stg_Order Details" ("_customer_id", "OrderID", "ProductID", "Quantity", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           SELECT '00000000-0000-0000-0000-00000000000a', g / 10, g % 10, 1, 'c', g, g FROM generate_series(1, 300) AS g"#,
    )
    .unwrap();
    let round = c
        .query_one("CALL cdc_management.run_pending_merges(0, 1000)", &[])
        .unwrap();
    let got: (i32, i64, i32) = (round.get(0), round.get(1), round.get(2));
    assert_eq!(got, (2, 5_300, 0));
    assert_eq!(actors(&mut c), truth);
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM cdc_management.cdc_processing_log WHERE table_name = 'Actor'"
        ),
        5,
        "5,000 Actor events in batches of 1,000"
    );
    assert!(!pending(&mut c, "directory", "Actor"));
    assert!(!pending(&mut c, "directory", "Order Details"));
    // Nothing pending: an empty round.
    let round = c
        .query_one("CALL cdc_management.run_pending_merges(0)", &[])
        .unwrap();
    let got: (i32, i64, i32) = (round.get(0), round.get(1), round.get(2));
    assert_eq!(got, (0, 0, 0));
}

#[test]
fn after_a_truncate_the_next_merge_reads_staging_from_its_first_block() {
    let (_db, mut c) = example_database("merge_truncate");
    // 2,000 events merged: the cursor ends two thirds into where the next 3,000 rows will lie.
    let first: Vec<ActorEvent> = (0..2_000)
        .map(|i| {
            upsert(
                i % 1_000 + 1,
                &format!("x{i:05}"),
                1_000 + i64::from(i),
                i64::from(i),
            )
        })
        .collect();
    stage_actors(&mut c, &first);
    c.query_one(
        "CALL cdc_management.merge_table('directory', 'Actor', 1000)",
        &[],
    )
    .unwrap();
    c.batch_execute(r#"TRUNCATE directory."stg_Actor""#)
        .unwrap();
    // Three generations of the same 1,000 keys, oldest first in staging order.
    let generations: Vec<ActorEvent> = (0..3_000)
        .map(|i| {
            let position = 10_000 + i64::from(i);
            upsert(i % 1_000 + 1, &format!("g{i:05}"), position, position)
        })
        .collect();
    stage_actors(&mut c, &generations);
    let row = c
        .query_one(
            "CALL cdc_management.merge_table('directory', 'Actor', 1000)",
            &[],
        )
        .unwrap();
    let (consumed, upserted, stale): (i64, i64, i64) = (row.get(0), row.get(1), row.get(3));
    assert_eq!(
        (consumed, upserted, stale),
        (3_000, 3_000, 0),
        "batches follow staging order from its first block: every generation is newer than the last"
    );
    let last = actors(&mut c);
    assert_eq!(last.len(), 1_000);
    assert!(
        last.iter().all(|a| a.1.starts_with("g02")),
        "{:?}",
        &last[..3]
    );
}
