//! The merge contract (DESIGN.md §7), failures. A row that cannot be applied (a NULL in a NOT
//! NULL column, a NULL key, a value that does not fit) goes with its error and position to the
//! dead letters while the rest of its batch merges, and is replayed after a fix. A merge that
//! fails for any other reason is logged with its SQLSTATE, consumes nothing and stays pending,
//! while the other tables merge.

use cdc_testkit::merge::{
    actor, actors, errors, example_database, merge, pending, query, scalar_i64, stage_actors,
    stage_order_details, staged, trigger_pending_merges, upsert, ActorEvent, TENANT,
};

/// `(sqlstate, message, kafka_offset, row_data->>'actno')` of the Actor dead letters, by id.
fn dead_letters(c: &mut postgres::Client) -> Vec<(String, String, Option<i64>, Option<String>)> {
    query(
        c,
        "SELECT sqlstate, message, kafka_offset, row_data ->> 'actno'
           FROM cdc_management.v_dead_letters
          WHERE schema_name = 'directory' AND table_name = 'Actor' ORDER BY id",
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

#[test]
fn poison_rows_go_to_the_dead_letters_and_the_rest_of_the_batch_merges() {
    let (_db, mut c) = example_database("merge_poison");
    // A connector writing wider values than the final table holds (the staging column widened
    // by hand): the merge meets a value that does not fit.
    c.batch_execute(r#"ALTER TABLE directory."stg_Actor" ALTER COLUMN "Navn" TYPE text"#)
        .unwrap();
    stage_actors(
        &mut c,
        &[
            upsert(1, "fine", 1, 1),
            // NULL in the NOT NULL column "Navn".
            ActorEvent {
                tenant: Some(TENANT),
                key: 2,
                name: None,
                op: "u",
                ts: Some(1),
                offset: Some(2),
            },
            upsert(3, &"x".repeat(101), 1, 3),
            upsert(4, "also fine", 1, 4),
        ],
    );
    // A NULL key.
    c.batch_execute(
        r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ('00000000-0000-0000-0000-00000000000a', NULL, 'no key', 'c', 1, 5)"#,
    )
    .unwrap();

    let (consumed, upserted, deleted, stale) = merge(&mut c, "directory", "Actor");
    assert_eq!((consumed, upserted, deleted, stale), (5, 2, 0, 0));
    assert_eq!(staged(&mut c, "Actor"), 0, "the batch left staging whole");
    assert_eq!(
        actors(&mut c),
        [
            actor(1, "fine", "u", 1, 1),
            actor(4, "also fine", "u", 1, 4)
        ]
    );
    let dead = dead_letters(&mut c);
    let states: Vec<(&str, Option<i64>, Option<&str>)> = dead
        .iter()
        .map(|(s, _, o, k)| (s.as_str(), *o, k.as_deref()))
        .collect();
    assert_eq!(
        states,
        [
            ("23502", Some(5), None),
            ("23502", Some(2), Some("2")),
            ("22001", Some(3), Some("3")),
        ],
        "{dead:?}"
    );
    assert!(dead[1].1.contains("Navn"), "{}", dead[1].1);
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT sum(rows_dead_lettered)::bigint FROM cdc_management.cdc_processing_log
              WHERE table_name = 'Actor'"
        ),
        3,
        "the processing log counts the dead letters"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT dead_letters FROM cdc_management.v_merge_status WHERE table_name = 'Actor'"
        ),
        3
    );
    assert!(errors(&mut c).is_empty(), "{:?}", errors(&mut c));

    // The table keeps merging.
    stage_actors(&mut c, &[upsert(5, "later", 2, 6)]);
    assert_eq!(merge(&mut c, "directory", "Actor").0, 1);

    // Fix the data, replay, merge: the dead letters land, by their positions.
    c.batch_execute(
        r#"UPDATE cdc_management.merge_dead_letters
              SET row_data = row_data || jsonb_build_object('Navn', 'fixed', 'actno', coalesce(row_data ->> 'actno', '6')::int)
            WHERE table_name = 'Actor'"#,
    )
    .unwrap();
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT cdc_management.replay_dead_letters('directory', 'Actor')"
        ),
        3
    );
    assert!(
        pending(&mut c, "directory", "Actor"),
        "a replay flags the table"
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (3, 3, 0, 0));
    assert!(dead_letters(&mut c).is_empty());
    let keys: Vec<i32> = actors(&mut c).iter().map(|a| a.0).collect();
    assert_eq!(keys, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_failing_merge_is_logged_and_keeps_its_rows_while_other_tables_merge() {
    let (_db, mut c) = example_database("merge_failure");

    // Not the rows' fault: the tombstone table is gone (relation missing, 42P01).
    c.batch_execute(r#"DROP TABLE directory."tomb_Actor""#)
        .unwrap();
    stage_actors(
        &mut c,
        &[upsert(1, "fine", 1, 1), upsert(2, "fine too", 1, 2)],
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
    assert_eq!(logged[0].get::<_, String>(3), "42P01", "undefined_table");
    assert!(
        logged[0].get::<_, String>(4).contains("tomb_Actor"),
        "{}",
        logged[0].get::<_, String>(4)
    );
    let last_error = scalar_i64(
        &mut c,
        "SELECT count(*) FROM cdc_management.merge_control
          WHERE table_name = 'Actor' AND last_error_at IS NOT NULL",
    );
    assert_eq!(last_error, 1);

    // The committing orchestrator behaves the same: logs, skips, reports the failure.
    let round = c
        .query_one("CALL cdc_management.run_pending_merges(0)", &[])
        .unwrap();
    let (merged, rows, failed): (i32, i64, i32) = (round.get(0), round.get(1), round.get(2));
    assert_eq!((merged, rows, failed), (0, 0, 1));
    assert_eq!(staged(&mut c, "Actor"), 2);
    assert_eq!(errors(&mut c).len(), 2);
}
