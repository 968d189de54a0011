//! Real writers (DESIGN.md §7): the Debezium JDBC sink connector configured as the README shows
//! writes into a staging table unchanged, and the merge understands what it writes: `__op`
//! codes `c`/`r`/`u`/`d`, rewrite-mode `__deleted = 'true'`, Kafka tombstones dropped before
//! they reach the sink, `__source_db`/`__source_table` carried to the final table. The column
//! names are derived from the README's JSON, so the documented configuration is what is tested.

use std::collections::BTreeMap;

use cdc_testkit::merge::{example_database, merge, query};

/// `(actno, Navn, Email, __cdc_operation, __source_db, __source_table)` of a final row.
type FinalRow = (
    i32,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The README's connector configuration (the JSON block after the marker).
fn readme_config() -> BTreeMap<String, String> {
    let readme = include_str!("../../README.md");
    let marker = "<!-- debezium-jdbc-sink -->";
    let start = readme
        .find(marker)
        .expect("README has the Debezium JDBC sink example")
        + marker.len();
    let block = &readme[start..];
    let open = block
        .find("```json")
        .expect("a json block follows the marker")
        + "```json".len();
    let close = block[open..].find("```").expect("the json block is closed") + open;
    let json: serde_json::Value =
        serde_json::from_str(&block[open..close]).expect("the README's connector JSON parses");
    json["config"]
        .as_object()
        .expect("a `config` object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_string()))
        .collect()
}

/// The fields a record carries after the configured transforms, as the sink names its columns.
fn metadata_fields(config: &BTreeMap<String, String>) -> Vec<String> {
    let transforms: Vec<&str> = config["transforms"].split(',').map(str::trim).collect();
    let mut fields = Vec::new();
    for t in transforms {
        let key = |k: &str| config.get(&format!("transforms.{t}.{k}"));
        match key("type").map(String::as_str) {
            Some("io.debezium.transforms.ExtractNewRecordState") => {
                // add.fields: `__` + the field name with dots as underscores.
                for f in key("add.fields").expect("add.fields").split(',') {
                    fields.push(format!("__{}", f.trim().replace('.', "_")));
                }
                let mode = key("delete.tombstone.handling.mode").map(String::as_str);
                assert_eq!(
                    mode,
                    Some("rewrite"),
                    "deletes must be rewritten, tombstones dropped"
                );
                fields.push("__deleted".to_string());
            }
            Some("org.apache.kafka.connect.transforms.InsertField$Value") => {
                if let Some(field) = key("static.field") {
                    // A constant per connector: the tenant of its source database.
                    assert!(key("static.value").is_some(), "{t}.static.value");
                    fields.push(field.clone());
                    continue;
                }
                for k in ["offset.field", "partition.field", "timestamp.field"] {
                    fields.push(key(k).unwrap_or_else(|| panic!("{t}.{k}")).clone());
                }
            }
            other => panic!("unexpected transform {t}: {other:?}"),
        }
    }
    fields
}

#[test]
fn rows_written_as_the_readme_connector_writes_them_merge_into_the_truth() {
    let config = readme_config();
    assert_eq!(
        config["connector.class"],
        "io.debezium.connector.jdbc.JdbcSinkConnector"
    );
    assert_eq!(config["insert.mode"], "insert", "staging is append-only");
    assert_eq!(config["schema.evolution"], "none");
    assert_eq!(config["quote.identifiers"], "true");
    let (schema, staging) = config["table.name.format"]
        .split_once('.')
        .expect("table.name.format is schema.table");
    assert_eq!((schema, staging), ("directory", "stg_Actor"));
    let fields = metadata_fields(&config);
    assert_eq!(
        fields,
        [
            "__op",
            "__source_ts_ms",
            "__source_db",
            "__source_table",
            "__deleted",
            "__kafka_offset",
            "__kafka_partition",
            "__kafka_timestamp",
            "_customer_id"
        ]
    );
    let tenant = &config["transforms.tenant.static.value"];

    let (_db, mut c) = example_database("merge_debezium");
    // Every field the sink writes is a staging column (schema.evolution=none would fail otherwise).
    let columns: Vec<String> = query(
        &mut c,
        "SELECT attname::text FROM pg_attribute
          WHERE attrelid = 'directory.\"stg_Actor\"'::regclass AND attnum > 0 AND NOT attisdropped",
        &[],
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    for f in &fields {
        assert!(
            columns.contains(f),
            "{f} is not a staging column: {columns:?}"
        );
    }

    // The records of one topic, after the transforms: the row's columns (after state; before
    // state for deletes), then the metadata fields in the order above. A Kafka tombstone (null
    // value) follows each delete and is dropped by the transform: nothing is written for it.
    let insert = format!(
        r#"INSERT INTO "{schema}"."{staging}" ("actno", "Navn", "Email", {meta})
           VALUES ($1, $2, $3, $4, $5, 'Directory', 'Actor', $6, $7, 0, now(), '{tenant}')"#,
        meta = fields
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    type Record<'a> = (i32, &'a str, Option<&'a str>, &'a str, i64, &'a str, i64);
    let records: [Record<'_>; 8] = [
        (1, "Ada", Some("ada@example.com"), "r", 100, "false", 1), // snapshot read
        (2, "Bo", None, "r", 100, "false", 2),
        (3, "Cy", None, "c", 200, "false", 3), // insert
        (1, "Ada L.", Some("ada@example.com"), "u", 300, "false", 4), // update
        (2, "Bo", None, "d", 400, "true", 5),  // delete, rewritten (before state)
        (3, "Cy", None, "u", 150, "false", 6), // a replay of an older change: ignored
        (4, "Di", None, "c", 500, "false", 7),
        (4, "Di", None, "d", 600, "true", 8),
    ];
    for (key, name, email, op, ts, deleted, offset) in records {
        c.execute(&insert, &[&key, &name, &email, &op, &ts, &deleted, &offset])
            .unwrap();
    }
    let (consumed, upserted, deleted, stale) = merge(&mut c, "directory", "Actor");
    assert_eq!(consumed, 8);
    assert_eq!(
        (upserted, deleted, stale),
        (2, 0, 0),
        "keys 1 and 3 land; 2 and 4 end deleted"
    );

    let rows: Vec<FinalRow> = query(
        &mut c,
        r#"SELECT "actno", "Navn", "Email", "__cdc_operation", "__source_db", "__source_table"
                 FROM directory."Actor" ORDER BY 1"#,
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        rows,
        [
            (
                1,
                "Ada L.".into(),
                some("ada@example.com"),
                some("u"),
                some("Directory"),
                some("Actor")
            ),
            (
                3,
                "Cy".into(),
                None,
                some("c"),
                some("Directory"),
                some("Actor")
            ),
        ]
    );
    // A late replay of key 2's insert stays deleted (its tombstone).
    c.execute(
        &insert,
        &[&2, &"Bo", &None::<&str>, &"c", &100i64, &"false", &2i64],
    )
    .unwrap();
    assert_eq!(merge(&mut c, "directory", "Actor"), (1, 0, 0, 1));
    assert_eq!(
        query(
            &mut c,
            r#"SELECT count(*) FROM directory."Actor" WHERE "actno" = 2"#,
            &[]
        )[0]
        .get::<_, i64>(0),
        0
    );
}

#[test]
fn every_spelling_of_the_operations_is_understood() {
    let (_db, mut c) = example_database("merge_ops");
    // Upserts: c, r, u, INSERT, UPDATE, READ (any case); deletes: d, DELETE, or __deleted = 'true'
    // whatever the op says.
    c.batch_execute(
        r#"INSERT INTO directory."stg_Actor" ("actno", "Navn", "__cdc_operation", "__op", "__deleted", "__source_ts_ms", "__kafka_offset", "_customer_id")
           VALUES (1, 'a', 'c', NULL, NULL, 1, 1, '00000000-0000-0000-0000-00000000000a'), (2, 'b', NULL, 'r', NULL, 1, 2, '00000000-0000-0000-0000-00000000000a'),
                  (3, 'c', 'u', NULL, NULL, 1, 3, '00000000-0000-0000-0000-00000000000a'), (4, 'd', 'INSERT', NULL, NULL, 1, 4, '00000000-0000-0000-0000-00000000000a'),
                  (5, 'e', NULL, 'update', NULL, 1, 5, '00000000-0000-0000-0000-00000000000a'), (6, 'f', 'READ', NULL, 'false', 1, 6, '00000000-0000-0000-0000-00000000000a'),
                  (7, 'g', 'c', NULL, NULL, 1, 7, '00000000-0000-0000-0000-00000000000a'), (8, 'h', 'c', NULL, NULL, 1, 8, '00000000-0000-0000-0000-00000000000a'),
                  (9, 'i', 'c', NULL, NULL, 1, 9, '00000000-0000-0000-0000-00000000000a')"#,
    )
    .unwrap();
    assert_eq!(merge(&mut c, "directory", "Actor"), (9, 9, 0, 0));
    c.batch_execute(
        r#"INSERT INTO directory."stg_Actor" ("actno", "Navn", "__cdc_operation", "__op", "__deleted", "__source_ts_ms", "__kafka_offset", "_customer_id")
           VALUES (7, 'g', 'd', NULL, NULL, 2, 10, '00000000-0000-0000-0000-00000000000a'), (8, 'h', NULL, 'D', NULL, 2, 11, '00000000-0000-0000-0000-00000000000a'),
                  (9, 'i', NULL, 'u', 'TRUE', 2, 12, '00000000-0000-0000-0000-00000000000a'), (1, 'a', 'Delete', NULL, NULL, 2, 13, '00000000-0000-0000-0000-00000000000a')"#,
    )
    .unwrap();
    assert_eq!(merge(&mut c, "directory", "Actor"), (4, 0, 4, 0));
    let keys: Vec<i32> = query(
        &mut c,
        r#"SELECT "actno" FROM directory."Actor" ORDER BY 1"#,
        &[],
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(keys, [2, 3, 4, 5, 6]);
}

#[test]
fn offset_gaps_are_reported_per_partition() {
    let (_db, mut c) = example_database("merge_gaps");
    let stage = |c: &mut postgres::Client, partition: i32, from: i64, to: i64| {
        c.execute(
            r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset", "__kafka_partition")
               SELECT '00000000-0000-0000-0000-00000000000a', g::int, 'x', 'c', g, g, $1 FROM generate_series($2::bigint, $3::bigint) AS g"#,
            &[&partition, &from, &to],
        )
        .unwrap();
    };
    stage(&mut c, 0, 1, 10);
    stage(&mut c, 1, 1, 5);
    merge(&mut c, "directory", "Actor");
    stage(&mut c, 0, 15, 20); // 11..14 never arrived on partition 0
    stage(&mut c, 1, 6, 8); // partition 1 is contiguous
    merge(&mut c, "directory", "Actor");
    let gaps: Vec<(Option<i32>, i64, i64, i64)> = query(
        &mut c,
        "SELECT kafka_partition, previous_max_offset, next_min_offset, missing_offsets
           FROM cdc_management.v_cdc_processing_gaps WHERE table_name = 'Actor'",
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    assert_eq!(gaps, [(Some(0), 10, 15, 4)]);
}
