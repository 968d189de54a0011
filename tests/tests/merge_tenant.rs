//! The tenant key (issue 12 item 1), against a real PostgreSQL 15: the example's `directory.Actor`
//! is keyed by (`_customer_id`, `actno`) (`column_templates: [{template: customer_id,
//! primary_key: true}]`), so two tenants with the same source key are two rows: inserts, updates,
//! deletes and late replays of one tenant never touch the other's row; tombstones are per
//! (tenant, key); a staged row without a tenant is keyless and goes to the dead letters.

use cdc_testkit::merge::{
    delete, errors, example_database, merge, query, scalar_i64, stage_actors, staged, tombstones,
    upsert, TENANT,
};

/// The first tenant is the testkit's default one.
const ACME: &str = TENANT;
/// A second tenant.
const GLOBEX: &str = "00000000-0000-0000-0000-00000000000b";

/// `(tenant, actno, Navn, __source_ts_ms, __kafka_offset)` of every Actor row, by tenant and key.
type TenantRow = (String, i32, String, Option<i64>, Option<i64>);

fn tenant_actors(client: &mut postgres::Client) -> Vec<TenantRow> {
    query(
        client,
        r#"SELECT "_customer_id"::text, "actno", "Navn", "__source_ts_ms", "__kafka_offset"
             FROM directory."Actor" ORDER BY 1, 2"#,
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

fn row(tenant: &str, actno: i32, name: &str, ts: i64, offset: i64) -> TenantRow {
    (
        tenant.to_string(),
        actno,
        name.to_string(),
        Some(ts),
        Some(offset),
    )
}

/// A tombstone of `tenant`'s `actno` as [`tombstones`] shows it.
fn tomb(tenant: &str, actno: i32, ts: i64, offset: i64) -> (String, i64, i64) {
    (format!("[\"{tenant}\", {actno}]"), ts, offset)
}

#[test]
fn the_key_leads_with_the_tenant_column_in_the_final_and_tombstone_tables() {
    let (_db, mut c) = example_database("tenant_key_shape");
    for table in ["Actor", "tomb_Actor"] {
        let key: Vec<String> = query(
            &mut c,
            "SELECT a.attname::text
               FROM pg_index AS i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = format('directory.%I', $1::text)::regclass AND i.indisprimary
              ORDER BY k.ord",
            &[&table],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
        assert_eq!(key, ["_customer_id", "actno"], "{table}");
    }
    let not_null: bool = query(
        &mut c,
        r#"SELECT attnotnull FROM pg_attribute
            WHERE attrelid = 'directory."Actor"'::regclass AND attname = '_customer_id'"#,
        &[],
    )[0]
    .get(0);
    assert!(not_null, "the tenant column is NOT NULL");
}

#[test]
fn two_tenants_with_the_same_source_key_are_kept_apart() {
    let (_db, mut c) = example_database("tenant_apart");

    // Both tenants insert actno = 1 in one batch: two rows, neither superseding the other.
    stage_actors(
        &mut c,
        &[
            upsert(1, "Ada (acme)", 100, 10).of_tenant(Some(ACME)),
            upsert(1, "Ada (globex)", 100, 11).of_tenant(Some(GLOBEX)),
            upsert(2, "Bob (acme)", 100, 12).of_tenant(Some(ACME)),
        ],
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (3, 3, 0, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 1, "Ada (acme)", 100, 10),
            row(ACME, 2, "Bob (acme)", 100, 12),
            row(GLOBEX, 1, "Ada (globex)", 100, 11),
        ]
    );

    // An update of one tenant's actno 1 leaves the other's untouched.
    stage_actors(
        &mut c,
        &[upsert(1, "Ada Lovelace (globex)", 200, 20).of_tenant(Some(GLOBEX))],
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 1, 0, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 1, "Ada (acme)", 100, 10),
            row(ACME, 2, "Bob (acme)", 100, 12),
            row(GLOBEX, 1, "Ada Lovelace (globex)", 200, 20),
        ]
    );

    // A delete of one tenant's actno 1 leaves the other's row; the tombstone is per tenant.
    stage_actors(&mut c, &[delete(1, "d", 300, 30).of_tenant(Some(ACME))]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 1, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 2, "Bob (acme)", 100, 12),
            row(GLOBEX, 1, "Ada Lovelace (globex)", 200, 20),
        ]
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [tomb(ACME, 1, 300, 30)]
    );

    // Late, older events (a replay): the deleted row of one tenant stays deleted, the other
    // tenant's newer row is not overwritten, and a newer event of the other tenant for the
    // tombstoned key is not held back by the first tenant's tombstone.
    stage_actors(
        &mut c,
        &[
            upsert(1, "Ada (acme, replayed)", 100, 10).of_tenant(Some(ACME)),
            upsert(1, "Ada (globex, replayed)", 100, 11).of_tenant(Some(GLOBEX)),
            upsert(2, "Bob (acme, newer)", 400, 40).of_tenant(Some(ACME)),
        ],
    );
    let (consumed, upserted, deleted, _stale) = merge(&mut c, "directory", "Actor");
    assert_eq!((consumed, upserted, deleted), (3, 1, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 2, "Bob (acme, newer)", 400, 40),
            row(GLOBEX, 1, "Ada Lovelace (globex)", 200, 20),
        ]
    );

    // A delete of the other tenant's actno 1 makes a second tombstone for the same source key.
    stage_actors(&mut c, &[delete(1, "d", 500, 50).of_tenant(Some(GLOBEX))]);
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 1, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [row(ACME, 2, "Bob (acme, newer)", 400, 40)]
    );
    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        [tomb(ACME, 1, 300, 30), tomb(GLOBEX, 1, 500, 50)]
    );

    // The first tenant re-creates actno 1 with a newer event: its tombstone no longer holds it
    // back, and the other tenant's tombstone does not either.
    stage_actors(
        &mut c,
        &[upsert(1, "Ada (acme, again)", 600, 60).of_tenant(Some(ACME))],
    );
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 1, 0, 0));
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 1, "Ada (acme, again)", 600, 60),
            row(ACME, 2, "Bob (acme, newer)", 400, 40),
        ]
    );
    assert!(errors(&mut c).is_empty(), "{:?}", errors(&mut c));
}

#[test]
fn a_staged_row_without_a_tenant_is_dead_lettered_and_the_rest_merges() {
    let (_db, mut c) = example_database("tenant_null");
    stage_actors(
        &mut c,
        &[
            upsert(1, "no tenant", 100, 1).of_tenant(None),
            upsert(1, "Ada (acme)", 100, 2).of_tenant(Some(ACME)),
            upsert(1, "Ada (globex)", 100, 3).of_tenant(Some(GLOBEX)),
        ],
    );
    let (consumed, upserted, deleted, stale) = merge(&mut c, "directory", "Actor");
    assert_eq!((consumed, upserted, deleted, stale), (3, 2, 0, 0));
    assert_eq!(staged(&mut c, "Actor"), 0, "the batch left staging whole");
    assert_eq!(
        tenant_actors(&mut c),
        [
            row(ACME, 1, "Ada (acme)", 100, 2),
            row(GLOBEX, 1, "Ada (globex)", 100, 3),
        ]
    );
    let dead: Vec<(String, String, Option<i64>, Option<String>)> = query(
        &mut c,
        "SELECT sqlstate, message, kafka_offset, row_data ->> 'Navn'
           FROM cdc_management.merge_dead_letters WHERE table_name = 'Actor' ORDER BY id",
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, "23502");
    assert!(dead[0].1.contains("_customer_id"), "{}", dead[0].1);
    assert_eq!(
        (dead[0].2, dead[0].3.as_deref()),
        (Some(1), Some("no tenant"))
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT sum(rows_dead_lettered)::bigint FROM cdc_management.cdc_processing_log
              WHERE table_name = 'Actor'"
        ),
        1
    );
    assert!(errors(&mut c).is_empty(), "{:?}", errors(&mut c));
}

/// Tombstones kept by earlier versions in the shared JSONB table move to the typed table when
/// the staging file is applied, but only keys of the current shape: one recorded before the
/// tenant joined the key (`[actno]`) stays where it is instead of failing the cast (and the
/// apply) on a table whose key now leads with the tenant.
#[test]
fn legacy_tombstones_of_the_current_key_move_and_older_key_shapes_stay() {
    use cdc_testkit::fixture::{apply_file, describe_error, sink, DIRECTORY};

    let (_db, mut c) = example_database("tenant_legacy_tombstones");
    c.batch_execute(&format!(
        r#"CREATE TABLE cdc_management."merge_tombstones" (
               "schema_name" TEXT NOT NULL, "table_name" TEXT NOT NULL, "pk" JSONB NOT NULL,
               "source_ts_ms" BIGINT NOT NULL, "kafka_offset" BIGINT NOT NULL,
               "deleted_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
               PRIMARY KEY ("schema_name", "table_name", "pk"));
           INSERT INTO cdc_management."merge_tombstones" ("schema_name", "table_name", "pk", "source_ts_ms", "kafka_offset")
           VALUES ('directory', 'Actor', '["{ACME}", 7]', 500, 5),
                  ('directory', 'Actor', '[8]', 600, 6);"#
    ))
    .expect("legacy tombstones");

    if let Err(e) = apply_file(&mut c, sink(DIRECTORY), "01-tables/Actor-staging.sql") {
        panic!("re-applying Actor's staging file: {}", describe_error(&e));
    }

    assert_eq!(
        tombstones(&mut c, "directory", "Actor"),
        vec![tomb(ACME, 7, 500, 5)],
        "the tombstone of the current key shape moved to tomb_Actor"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            r#"SELECT count(*) FROM cdc_management."merge_tombstones" WHERE "pk" = '[8]'"#
        ),
        1,
        "the tombstone of the older key shape is kept, not lost"
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            r#"SELECT count(*) FROM cdc_management."merge_tombstones""#
        ),
        1
    );
    // The moved tombstone still blocks an older event of its key.
    stage_actors(&mut c, &[upsert(7, "older than the delete", 400, 4)]);
    merge(&mut c, "directory", "Actor");
    assert!(tenant_actors(&mut c).iter().all(|r| r.1 != 7));
}
