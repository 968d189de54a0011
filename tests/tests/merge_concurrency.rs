//! The merge contract (DESIGN.md §7), concurrency: rows staged while a merge runs are merged by the
//! next one, never lost nor merged twice; `trigger_pending_merges()` called from several sessions
//! at once, while a producer keeps staging, merges every row exactly once.

use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use cdc_testkit::merge::{
    actors, errors, example_database, merge, pending, scalar_i64, stage_actors, staged,
    trigger_pending_merges, upsert, ActorEvent,
};

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
    let (db, mut merger) = example_database("merge_during");
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
    let (db, mut c) = example_database("merge_concurrent");

    // Two versions of every Actor key (the second wins), one of every order line.
    let mut staging = c.transaction().unwrap();
    staging
        .execute(
            r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
               SELECT '00000000-0000-0000-0000-00000000000a', k, 'old-' || k, 'c', 1, k FROM generate_series(1, $1) AS k"#,
            &[&ACTORS],
        )
        .unwrap();
    staging
        .execute(
            r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
               SELECT '00000000-0000-0000-0000-00000000000a', k, 'new-' || k, 'u', 2, $1 + k FROM generate_series(1, $1) AS k"#,
            &[&ACTORS],
        )
        .unwrap();
    staging
        .execute(
            r#"INSERT INTO directory."stg_Order Details" ("_customer_id", "OrderID", "ProductID", "Quantity", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
               SELECT '00000000-0000-0000-0000-00000000000a', k / 10, k % 10, 1, 'c', 1, k FROM generate_series(1, $1) AS k"#,
            &[&ORDERS],
        )
        .unwrap();
    staging.commit().unwrap();

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
                let events: Vec<ActorEvent> = (0..10)
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
