//! Typed binary COPY into staging (`cdc_runtime::rows`), against a real PostgreSQL 15: rows
//! copied with their Kafka coordinates land in staging with `__kafka_partition` and
//! `__kafka_timestamp` set per row, the simple form leaves them NULL, and both merge; the
//! encoded streams (`encode_staging`, `encode_staged`) stage the same rows through
//! tokio-postgres's own `copy_in`.

use cdc_runtime::rows::{
    copy_into_staging, copy_staged, encode_staged, encode_staging, select_all, KafkaCoordinates,
    Staged, StagingRow, TableRow,
};
use cdc_runtime::tokio_postgres;
use cdc_testkit::merge::{example_database, staged, trigger_pending_merges, TENANT};
use chrono::{DateTime, Utc};
use futures_util::SinkExt as _;

mod rows {
    cdc_runtime::include_rows!();
}

use rows::directory::Actor;

/// An upsert of Actor `actno` named `name` at position (`ts`, `offset`).
fn actor(actno: i32, name: &str, ts: i64, offset: i64) -> Actor {
    Actor {
        customer_id: TENANT.parse().unwrap(),
        actno,
        navn: name.to_string(),
        is_active: true,
        cdc_operation: Some("u".to_string()),
        source_ts_ms: Some(ts),
        kafka_offset: Some(offset),
        ..Actor::default()
    }
}

/// `(actno, __kafka_offset, __kafka_partition, __kafka_timestamp)` of every staged Actor row, by offset.
type StagedCoordinates = (i32, i64, Option<i32>, Option<DateTime<Utc>>);

fn staged_coordinates(client: &mut postgres::Client) -> Vec<StagedCoordinates> {
    staged_by_offset(
        client,
        r#""actno", "__kafka_offset", "__kafka_partition", "__kafka_timestamp""#,
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// `SELECT <select> FROM <Actor's staging table> s` in `__kafka_offset` order.
fn staged_by_offset(client: &mut postgres::Client, select: &str) -> Vec<postgres::Row> {
    let sql = format!(
        r#"SELECT {select} FROM "{}"."{}" s ORDER BY "__kafka_offset""#,
        <Actor as TableRow>::SCHEMA,
        Actor::STAGING_TABLE
    );
    client.query(&sql, &[]).unwrap()
}

fn at_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap()
}

#[test]
fn rows_copied_with_coordinates_land_in_staging_with_them_and_merge() {
    let (_db, mut c) = example_database("copy_coordinates");
    let batch = [
        (actor(1, "Ada", 100, 10), 0, 1_700_000_000_000),
        (actor(2, "Bo", 100, 11), 1, 1_700_000_000_001),
        (actor(1, "Ada Lovelace", 200, 12), 2, 1_700_000_000_002),
        // A record without a timestamp (Kafka's -1) stages a NULL timestamp.
        (actor(3, "Cy", 100, 13), 0, -1),
    ];
    let written = copy_staged(
        &mut c,
        batch.iter().map(|(row, partition, ts)| {
            Staged::new(row, KafkaCoordinates::from_record(*partition, *ts))
        }),
    )
    .unwrap();
    assert_eq!(written, 4);
    assert_eq!(
        staged_coordinates(&mut c),
        [
            (1, 10, Some(0), Some(at_millis(1_700_000_000_000))),
            (2, 11, Some(1), Some(at_millis(1_700_000_000_001))),
            (1, 12, Some(2), Some(at_millis(1_700_000_000_002))),
            (3, 13, Some(0), None),
        ]
    );

    // Coordinates set by hand: a partition without a timestamp, and nothing at all.
    let (di, ed) = (actor(4, "Di", 100, 14), actor(5, "Ed", 100, 15));
    let explicit = [
        Staged::new(
            &di,
            KafkaCoordinates {
                partition: Some(7),
                timestamp: None,
            },
        ),
        Staged::new(&ed, KafkaCoordinates::default()),
    ];
    assert_eq!(copy_staged(&mut c, explicit).unwrap(), 2);
    let rows = staged_coordinates(&mut c);
    assert_eq!(&rows[4..], [(4, 14, Some(7), None), (5, 15, None, None)]);

    let merged = trigger_pending_merges(&mut c, 0);
    assert!(
        merged.contains(&("directory".to_string(), "Actor".to_string(), 6)),
        "{merged:?}"
    );
    assert_eq!(staged(&mut c, "Actor"), 0);
    let mut actors: Vec<Actor> = select_all(&mut c).unwrap();
    actors.sort_by_key(|a| a.actno);
    let names: Vec<(i32, &str, Option<i64>)> = actors
        .iter()
        .map(|a| (a.actno, a.navn.as_str(), a.kafka_offset))
        .collect();
    assert_eq!(
        names,
        [
            (1, "Ada Lovelace", Some(12)),
            (2, "Bo", Some(11)),
            (3, "Cy", Some(13)),
            (4, "Di", Some(14)),
            (5, "Ed", Some(15)),
        ]
    );
}

#[test]
fn the_simple_form_leaves_the_coordinates_null_and_merges() {
    let (_db, mut c) = example_database("copy_simple");
    let batch = vec![actor(1, "Ada", 100, 10), actor(2, "Bo", 100, 11)];
    assert_eq!(copy_into_staging(&mut c, &batch).unwrap(), 2);
    assert_eq!(
        staged_coordinates(&mut c),
        [(1, 10, None, None), (2, 11, None, None)]
    );
    let merged = trigger_pending_merges(&mut c, 0);
    assert!(
        merged.contains(&("directory".to_string(), "Actor".to_string(), 2)),
        "{merged:?}"
    );
    let actors: Vec<Actor> = select_all(&mut c).unwrap();
    assert_eq!(actors.len(), 2);
}

#[test]
fn the_generated_statements_name_the_coordinate_columns_last() {
    assert!(Actor::COPY_STATEMENT.starts_with(r#"COPY "directory"."stg_Actor" ("#));
    assert!(!Actor::COPY_STATEMENT.contains("__kafka_partition"));
    let with = Actor::COPY_WITH_COORDINATES;
    let columns = Actor::COPY_STATEMENT.trim_end_matches(") FROM STDIN (FORMAT binary)");
    assert_eq!(
        with,
        format!(
            r#"{columns}, "__kafka_partition", "__kafka_timestamp") FROM STDIN (FORMAT binary)"#
        )
    );
}

/// Every staged Actor row as JSON, by offset, without `__sync_timestamp` (the clock of the insert).
fn staged_rows(client: &mut postgres::Client) -> Vec<String> {
    staged_by_offset(client, "(to_jsonb(s) - '__sync_timestamp')::text")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn encoded_streams_stage_the_same_rows_through_any_client() {
    let (db, mut c) = example_database("copy_encoded");
    let mut ada = actor(1, "Ada", 100, 10);
    ada.email = Some("ada@example.com".to_string());
    let rows = [
        ada,
        actor(2, "Bø", 100, 11),
        actor(1, "Ada Lovelace", 200, 12),
    ];
    let staged_at = |i: usize| {
        Staged::new(
            &rows[i],
            KafkaCoordinates::from_record(i32::try_from(i).unwrap(), 1_700_000_000_000),
        )
    };
    let truncate = |c: &mut postgres::Client| {
        c.batch_execute(r#"TRUNCATE "directory"."stg_Actor""#)
            .unwrap()
    };

    // What the blocking client's COPY functions stage.
    copy_into_staging(&mut c, &rows).unwrap();
    let plain = staged_rows(&mut c);
    truncate(&mut c);
    copy_staged(&mut c, (0..rows.len()).map(staged_at)).unwrap();
    let with_coordinates = staged_rows(&mut c);
    truncate(&mut c);
    assert_eq!(plain.len(), 3);
    assert_ne!(plain, with_coordinates, "the coordinates are staged");
    assert!(
        with_coordinates[2].contains(r#""__kafka_partition": 2"#),
        "{with_coordinates:?}"
    );

    // The encoded streams through tokio-postgres's own `copy_in`, as an async sink sends them.
    let stream = encode_staging(&rows).unwrap();
    let stream_with = encode_staged((0..rows.len()).map(staged_at)).unwrap();
    let connection_string = cdc_testkit::shared().connection_string(&db);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let copy_async = |statement: &'static str, bytes: Vec<u8>| {
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&connection_string, tokio_postgres::NoTls)
                    .await
                    .unwrap();
            let driver = tokio::spawn(connection);
            let sink = client.copy_in(statement).await.unwrap();
            let mut sink = std::pin::pin!(sink);
            sink.send(bytes::Bytes::from(bytes)).await.unwrap();
            let written = sink.as_mut().finish().await.unwrap();
            drop(client);
            driver.await.unwrap().unwrap();
            written
        })
    };
    assert_eq!(copy_async(Actor::COPY_STATEMENT, stream.clone()), 3);
    assert_eq!(staged_rows(&mut c), plain);
    truncate(&mut c);
    assert_eq!(copy_async(Actor::COPY_WITH_COORDINATES, stream_with), 3);
    assert_eq!(staged_rows(&mut c), with_coordinates);

    // The same bytes through the blocking client's raw `copy_in`, then merged.
    truncate(&mut c);
    let mut writer = c.copy_in(Actor::COPY_STATEMENT).unwrap();
    std::io::Write::write_all(&mut writer, &stream).unwrap();
    assert_eq!(writer.finish().unwrap(), 3);
    assert_eq!(staged_rows(&mut c), plain);
    let merged = trigger_pending_merges(&mut c, 0);
    assert!(
        merged.contains(&("directory".to_string(), "Actor".to_string(), 3)),
        "{merged:?}"
    );
    let mut actors: Vec<Actor> = select_all(&mut c).unwrap();
    actors.sort_by_key(|a| a.actno);
    let names: Vec<(i32, &str)> = actors.iter().map(|a| (a.actno, a.navn.as_str())).collect();
    assert_eq!(names, [(1, "Ada Lovelace"), (2, "Bø")]);
}
