//! The merge contract (DESIGN.md §7) on the bundled example, against a real PostgreSQL 15: the
//! basics. `sp_merge_<Table>()` upserts and hard-deletes with true counts in its result, the
//! processing log and the status views, leaves tombstones that age out; and
//! `trigger_pending_merges()` merges the pending tables (and only those) with true counts.
//!
//! The other merge tests: `merge_ordering` (latest event wins, stale events, tombstones, many
//! batches), `merge_soft_delete`, `merge_failures`, `merge_concurrency`.

use cdc_testkit::merge::{
    actor, actors, counts, delete, errors, example_database, merge, pending, processing_log,
    scalar_i64, stage_actors, stage_order_details, staged, tenant_key, tombstones,
    trigger_pending_merges, upsert,
};
use rust_decimal::Decimal;

#[test]
fn inserts_updates_and_deletes_are_merged_with_true_counts_logged() {
    let (_db, mut c) = example_database("merge_basic");

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
        [(tenant_key("3"), 200, 14)],
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
        "UPDATE directory.\"tomb_Actor\" SET \"__deleted_at\" = now() - interval '8 days'
          WHERE \"actno\" = 3",
    )
    .unwrap();
    assert_eq!(
        scalar_i64(&mut c, "SELECT cdc_management.purge_tombstones()"),
        1
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [(tenant_key("1"), 300, 15)]
    );
    assert!(errors(&mut c).is_empty());
}

#[test]
fn trigger_pending_merges_merges_pending_tables_and_returns_true_counts() {
    let (_db, mut c) = example_database("merge_trigger");

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
    // Two invoices in one statement, values bound: (InvoiceId, Number, Amount, __kafka_offset).
    let invoices: [(i64, &str, Decimal, i64); 2] = [
        (1, "N-1", Decimal::new(15, 1), 1),
        (2, "N-2", Decimal::new(25, 1), 2),
    ];
    c.execute(
        r#"INSERT INTO billing."stg_Invoice"
               ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           SELECT id, gen_random_uuid(), number, amount, now(), false, 'c', 1, kafka_offset
             FROM unnest($1::int8[], $2::text[], $3::numeric[], $4::int8[])
                  WITH ORDINALITY AS i(id, number, amount, kafka_offset, position)
            ORDER BY position"#,
        &[
            &invoices.map(|i| i.0).to_vec(),
            &invoices.map(|i| i.1).to_vec(),
            &invoices.map(|i| i.2).to_vec(),
            &invoices.map(|i| i.3).to_vec(),
        ],
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
        "SELECT * FROM cdc_management.manual_merge($1, $2)",
        &[&"directory", &"Actor"],
    );
    assert_eq!(manual, (1, 1, 0, 0));
    assert!(errors(&mut c).is_empty());
}
