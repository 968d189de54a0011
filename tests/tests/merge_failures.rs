//! The merge contract (DESIGN.md §7), failures: a merge that fails is logged with its SQLSTATE,
//! consumes nothing and stays pending, while `trigger_pending_merges()` merges the other tables.

use cdc_testkit::merge::{
    actors, example_database, pending, scalar_i64, stage_actors, stage_order_details, staged,
    trigger_pending_merges, upsert, ActorEvent,
};

#[test]
fn a_failing_merge_is_logged_and_keeps_its_rows_while_other_tables_merge() {
    let (_db, mut c) = example_database("merge_failure");

    // An update without Navn cannot go into the final table (NOT NULL).
    stage_actors(
        &mut c,
        &[
            upsert(1, "fine", 1, 1),
            ActorEvent {
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
