//! The generated SQL of the bundled example, applied to a real PostgreSQL 15: the catalog ends in
//! exactly the shape the YAML describes (DESIGN.md §4, §5, §7), and applying everything a second
//! time succeeds and changes nothing.

use cdc_testkit::fixture::{self, BILLING, DIRECTORY};
use postgres::Client;

/// `(column, format_type, NOT NULL)`.
type Col = (&'static str, &'static str, bool);

/// The CDC metadata columns every final table ends with.
const META: [Col; 8] = [
    ("__cdc_operation", "text", false),
    ("__source_ts_ms", "bigint", false),
    ("__kafka_offset", "bigint", false),
    ("__source", "text", false),
    ("__source_db", "text", false),
    ("__source_table", "text", false),
    ("__is_deleted", "boolean", true),
    ("__sync_timestamp", "timestamp with time zone", true),
];

struct Expected {
    schema: &'static str,
    table: &'static str,
    primary_key: &'static [&'static str],
    columns: Vec<Col>,
}

fn with_meta(columns: &[Col]) -> Vec<Col> {
    columns.iter().chain(META.iter()).copied().collect()
}

fn expected_tables() -> Vec<Expected> {
    vec![
        Expected {
            schema: "directory",
            table: "Actor",
            primary_key: &["_customer_id", "actno"],
            columns: with_meta(&[
                ("actno", "integer", true),
                ("Navn", "character varying(100)", true),
                ("Email", "character varying(255)", false),
                ("IsActive", "boolean", true),
                ("CreatedAt", "timestamp(6) without time zone", true),
                ("_customer_id", "uuid", true),
            ]),
        },
        Expected {
            schema: "directory",
            table: "AllTypes",
            primary_key: &["Id"],
            columns: with_meta(&[
                ("Id", "bigint", true),
                ("c_bit", "boolean", false),
                ("c_tinyint", "smallint", false),
                ("c_smallint", "smallint", false),
                ("c_int", "integer", false),
                ("c_decimal", "numeric(18,2)", false),
                ("c_numeric", "numeric(10,4)", false),
                ("c_decimal_bare", "numeric", false),
                ("c_money", "numeric(19,4)", false),
                ("c_smallmoney", "numeric(10,4)", false),
                ("c_float24", "real", false),
                ("c_real", "real", false),
                ("c_float", "double precision", false),
                ("c_float53", "double precision", false),
                ("c_char", "character(10)", false),
                ("c_nchar", "character(5)", false),
                ("c_char_unsized", "bpchar", false),
                ("c_varchar", "character varying(50)", false),
                ("c_nvarchar", "character varying(200)", false),
                ("c_varchar_max", "text", false),
                ("c_nvarchar_max", "text", false),
                ("c_varchar_unsized", "character varying", false),
                ("c_text", "text", false),
                ("c_ntext", "text", false),
                ("c_xml", "xml", false),
                ("c_sysname", "character varying(128)", false),
                ("c_date", "date", false),
                ("c_time", "time(6) without time zone", false),
                ("c_time3", "time(3) without time zone", false),
                ("c_datetime", "timestamp(3) without time zone", false),
                ("c_smalldatetime", "timestamp(0) without time zone", false),
                ("c_datetime2", "timestamp(6) without time zone", false),
                ("c_datetime2_3", "timestamp(3) without time zone", false),
                ("c_datetimeoffset", "timestamp(6) with time zone", false),
                ("c_uniqueidentifier", "uuid", false),
                ("c_binary", "bytea", false),
                ("c_varbinary", "bytea", false),
                ("c_varbinary_max", "bytea", false),
                ("c_image", "bytea", false),
                ("c_timestamp", "bytea", false),
                ("c_hierarchyid", "text", false),
                ("c_geography", "text", false),
                ("c_geometry", "text", false),
                ("c_sql_variant", "text", false),
                ("c_json", "jsonb", false),
            ]),
        },
        Expected {
            schema: "directory",
            table: "Order Details",
            primary_key: &["_customer_id", "OrderID", "ProductID"],
            columns: with_meta(&[
                ("OrderID", "integer", true),
                ("ProductID", "integer", true),
                ("Unit Price", "numeric(19,4)", true),
                ("Quantity", "smallint", true),
                ("Discount", "real", true),
                ("Row Version", "bytea", false),
                ("_customer_id", "uuid", true),
            ]),
        },
        Expected {
            schema: "directory",
            table: "select",
            primary_key: &["order"],
            columns: with_meta(&[
                ("order", "integer", true),
                ("from", "character varying(50)", false),
                ("user", "character varying(128)", false),
                ("Group", "character(3)", false),
            ]),
        },
        Expected {
            schema: "directory",
            table: "AuditTrail",
            primary_key: &[],
            columns: with_meta(&[
                ("At", "timestamp(3) without time zone", true),
                ("Who", "character varying(128)", true),
                ("What", "character varying(400)", false),
            ]),
        },
        Expected {
            schema: "billing",
            table: "Invoice",
            primary_key: &["InvoiceId"],
            columns: with_meta(&[
                ("InvoiceId", "bigint", true),
                ("CustomerId", "uuid", true),
                ("Number", "character varying(20)", true),
                ("Amount", "numeric(19,4)", true),
                ("IssuedAt", "timestamp(3) with time zone", true),
                ("Paid", "boolean", true),
                ("_customer_id", "uuid", false),
            ]),
        },
        Expected {
            schema: "billing",
            table: "InvoiceLine",
            primary_key: &["InvoiceId", "LineNo"],
            columns: with_meta(&[
                ("InvoiceId", "bigint", true),
                ("LineNo", "integer", true),
                ("Description", "character varying(200)", false),
                ("Quantity", "numeric(9,3)", true),
                ("UnitPrice", "numeric(10,4)", true),
                ("_tenant_customer_id", "uuid", false),
            ]),
        },
    ]
}

/// The staging table's expected columns: the final table's, only the key NOT NULL, plus the
/// Kafka position columns.
/// The final table's columns, all nullable (a row the final table refuses goes to the dead
/// letters, not back to the connector), then the staging-only ones.
fn staging_columns(table: &Expected) -> Vec<(String, String, bool)> {
    table
        .columns
        .iter()
        .map(|(name, ty, _)| (name.to_string(), ty.to_string(), false))
        .chain([
            ("__kafka_partition".into(), "integer".into(), false),
            (
                "__kafka_timestamp".into(),
                "timestamp with time zone".into(),
                false,
            ),
            ("__op".into(), "text".into(), false),
            ("__deleted".into(), "text".into(), false),
        ])
        .collect()
}

fn columns_of(client: &mut Client, schema: &str, table: &str) -> Vec<(String, String, bool)> {
    client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
               FROM pg_attribute AS a
              WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&schema, &table],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn primary_key_of(client: &mut Client, schema: &str, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT a.attname::text
               FROM pg_index AS i
              CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND i.indisprimary
              ORDER BY k.ord",
            &[&schema, &table],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `relpersistence` of a relation, `None` when it does not exist.
fn persistence_of(client: &mut Client, schema: &str, relation: &str) -> Option<i8> {
    client
        .query_opt(
            "SELECT c.relpersistence::\"char\" FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &relation],
        )
        .unwrap()
        .map(|r| r.get(0))
}

fn default_of(client: &mut Client, schema: &str, table: &str, column: &str) -> Option<String> {
    client
        .query_one(
            "SELECT pg_get_expr(d.adbin, d.adrelid)
               FROM pg_attribute AS a
               LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.attrelid = format('%I.%I', $1::text, $2::text)::regclass AND a.attname = $3",
            &[&schema, &table, &column],
        )
        .unwrap()
        .get(0)
}

fn owned(columns: &[Col]) -> Vec<(String, String, bool)> {
    columns
        .iter()
        .map(|(n, t, nn)| (n.to_string(), t.to_string(), *nn))
        .collect()
}

/// Everything the generated files create, as sorted text lines: relations (with their storage
/// file, so that a rewrite shows), columns, defaults, constraints, indexes, triggers, functions
/// (with their full definition), views, and the merge registrations.
fn catalog_snapshot(client: &mut Client) -> Vec<String> {
    const QUERIES: [&str; 8] = [
        "SELECT format('rel %s.%s kind=%s persistence=%s filenode=%s', n.nspname, c.relname,
                       c.relkind, c.relpersistence, c.relfilenode)
           FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management')",
        "SELECT format('col %s.%s.%s %s notnull=%s default=%s', n.nspname, c.relname, a.attname,
                       format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid))
           FROM pg_attribute AS a
           JOIN pg_class AS c ON c.oid = a.attrelid
           JOIN pg_namespace AS n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management')
            AND a.attnum > 0 AND NOT a.attisdropped",
        "SELECT format('con %s.%s %s %s', n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid))
           FROM pg_constraint AS k
           JOIN pg_class AS c ON c.oid = k.conrelid
           JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management')",
        "SELECT format('idx %s', pg_get_indexdef(i.indexrelid))
           FROM pg_index AS i
           JOIN pg_class AS c ON c.oid = i.indrelid
           JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management')",
        "SELECT format('trg %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
           FROM pg_trigger AS t
           JOIN pg_class AS c ON c.oid = t.tgrelid
           JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management') AND NOT t.tgisinternal",
        "SELECT format('fn oid=%s %s', p.oid, pg_get_functiondef(p.oid))
           FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
          WHERE n.nspname IN ('directory', 'billing', 'cdc_management')",
        "SELECT format('view %s.%s %s', n.nspname, c.relname, pg_get_viewdef(c.oid))
           FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
          WHERE n.nspname = 'cdc_management' AND c.relkind = 'v'",
        "SELECT format('merge %s', to_jsonb(mc) - 'last_merge_started_at' - 'last_merge_at')
           FROM cdc_management.merge_control AS mc",
    ];
    let mut lines: Vec<String> = QUERIES
        .iter()
        .flat_map(|q| {
            client
                .query(*q, &[])
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn every_generated_file_applies_in_order_and_builds_the_exact_catalog() {
    let server = cdc_testkit::shared();
    let db = server.create_database("generated_sql");
    let mut client = server.client(&db);

    // Every file carries a valid checksum, and the apply order puts infrastructure first and
    // every staging file after every table file.
    for sink in [fixture::sink(DIRECTORY), fixture::sink(BILLING)] {
        let ordered = fixture::files_in_apply_order(sink);
        assert_eq!(ordered.len(), sink.files.len(), "{}", sink.name);
        assert!(ordered[0].path.starts_with("00-infrastructure/"));
        assert!(ordered[1].path.starts_with("00-infrastructure/"));
        let first_staging = ordered
            .iter()
            .position(|f| f.path.ends_with("-staging.sql"))
            .unwrap();
        assert!(ordered[first_staging..]
            .iter()
            .all(|f| f.path.ends_with("-staging.sql")));
        for f in &ordered {
            let split = cdc_core::split_migration(&f.contents)
                .unwrap_or_else(|e| panic!("{}/{}: {e:?}", sink.name, f.path));
            split
                .verify()
                .unwrap_or_else(|e| panic!("{}/{}: {e:?}", sink.name, f.path));
        }
    }

    fixture::apply_example(&mut client);

    for table in expected_tables() {
        let what = format!("{}.{}", table.schema, table.table);
        assert_eq!(
            columns_of(&mut client, table.schema, table.table),
            owned(&table.columns),
            "columns of {what}"
        );
        assert_eq!(
            primary_key_of(&mut client, table.schema, table.table),
            table.primary_key,
            "primary key of {what}"
        );
        assert_eq!(
            persistence_of(&mut client, table.schema, table.table),
            Some(b'p' as i8),
            "{what} is a logged table"
        );
        let index = format!("{}__sync_ts_idx", table.table);
        assert!(
            persistence_of(&mut client, table.schema, &index).is_some(),
            "index {index} on {what}"
        );
        assert_eq!(
            default_of(&mut client, table.schema, table.table, "__is_deleted").as_deref(),
            Some("false")
        );
        assert_eq!(
            default_of(&mut client, table.schema, table.table, "__sync_timestamp").as_deref(),
            Some("now()")
        );

        let staging = format!("stg_{}", table.table);
        let merge_function = format!("sp_merge_{}", table.table);
        if table.primary_key.is_empty() {
            assert_eq!(
                persistence_of(&mut client, table.schema, &staging),
                None,
                "{what} has no primary key, so no staging table"
            );
            let functions: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                      WHERE n.nspname = $1 AND p.proname = $2",
                    &[&table.schema, &merge_function],
                )
                .unwrap()
                .get(0);
            assert_eq!(functions, 0, "{what} has no merge function");
            continue;
        }

        assert_eq!(
            persistence_of(&mut client, table.schema, &staging),
            Some(b'u' as i8),
            "{}.{staging} is UNLOGGED",
            table.schema
        );
        assert_eq!(
            columns_of(&mut client, table.schema, &staging),
            staging_columns(&table),
            "columns of {}.{staging}",
            table.schema
        );
        assert!(
            primary_key_of(&mut client, table.schema, &staging).is_empty(),
            "a staging table has no primary key (it holds several versions of a key)"
        );

        // One statement-level AFTER INSERT trigger that flags the table for the next merge.
        // tgtype 4 = TRIGGER_TYPE_INSERT, without ROW (1), BEFORE (2) or INSTEAD (64).
        let triggers = client
            .query(
                "SELECT t.tgname::text, t.tgtype::int, t.tgenabled::text,
                        p.proname::text, pn.nspname::text,
                        encode(t.tgargs, 'escape')
                   FROM pg_trigger AS t
                   JOIN pg_proc AS p ON p.oid = t.tgfoid
                   JOIN pg_namespace AS pn ON pn.oid = p.pronamespace
                  WHERE t.tgrelid = format('%I.%I', $1::text, $2::text)::regclass
                    AND NOT t.tgisinternal",
                &[&table.schema, &staging],
            )
            .unwrap();
        assert_eq!(triggers.len(), 1, "triggers on {}.{staging}", table.schema);
        let trigger = &triggers[0];
        assert_eq!(trigger.get::<_, String>(0), "cdc_mark_for_merge");
        assert_eq!(
            trigger.get::<_, i32>(1),
            4,
            "AFTER INSERT FOR EACH STATEMENT"
        );
        assert_eq!(trigger.get::<_, String>(2), "O", "trigger enabled");
        assert_eq!(trigger.get::<_, String>(3), "mark_table_for_merge");
        assert_eq!(trigger.get::<_, String>(4), "cdc_management");
        assert_eq!(
            trigger.get::<_, String>(5),
            format!("{}\\000", table.table),
            "trigger argument is the final table's name"
        );

        let merge = client
            .query_one(
                "SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)
                   FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                  WHERE n.nspname = $1 AND p.proname = $2",
                &[&table.schema, &merge_function],
            )
            .unwrap_or_else(|e| panic!("{}.{merge_function}: {e}", table.schema));
        assert_eq!(
            merge.get::<_, String>(0),
            "p_batch_size integer DEFAULT 1000000, p_max_batches integer DEFAULT NULL::integer"
        );
        assert_eq!(
            merge.get::<_, String>(1),
            "TABLE(rows_consumed bigint, rows_upserted bigint, rows_deleted bigint, rows_stale bigint, rows_dead_lettered bigint)"
        );
        let tombstones = format!("tomb_{}", table.table);
        assert_eq!(
            primary_key_of(&mut client, table.schema, &tombstones),
            table.primary_key,
            "{}.{tombstones} is keyed like its table",
            table.schema
        );

        let registration = client
            .query_one(
                "SELECT staging_table, merge_function, enabled, pending, tombstone_table
                   FROM cdc_management.merge_control WHERE schema_name = $1 AND table_name = $2",
                &[&table.schema, &table.table],
            )
            .unwrap_or_else(|e| panic!("merge_control row of {what}: {e}"));
        assert_eq!(registration.get::<_, String>(0), staging);
        assert_eq!(registration.get::<_, String>(1), merge_function);
        assert_eq!(registration.get::<_, String>(4), tombstones);
        assert!(registration.get::<_, bool>(2), "merge of {what} enabled");
        assert!(!registration.get::<_, bool>(3), "nothing staged yet");
    }

    // Defaults of source columns survive the mapping (MSSQL ((1)) → true, sysdatetime() → now()).
    assert_eq!(
        default_of(&mut client, "directory", "Actor", "IsActive").as_deref(),
        Some("true")
    );
    assert_eq!(
        default_of(&mut client, "directory", "Actor", "CreatedAt").as_deref(),
        Some("now()")
    );

    let registered: i64 = client
        .query_one("SELECT count(*) FROM cdc_management.merge_control", &[])
        .unwrap()
        .get(0);
    assert_eq!(registered, 6, "one merge registration per table with a key");

    // The management objects.
    let objects: Vec<(String, String)> = client
        .query(
            "SELECT c.relname::text, c.relkind::text FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
              WHERE n.nspname = 'cdc_management' AND c.relkind IN ('r', 'v')
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected_objects: Vec<(String, String)> = [
        ("cdc_processing_log", "r"),
        ("cdc_processing_offsets", "r"),
        ("error_log", "r"),
        ("merge_control", "r"),
        ("merge_cursor", "r"),
        ("merge_dead_letters", "r"),
        ("migration_history", "r"),
        ("v_cdc_processing_gaps", "v"),
        ("v_cdc_replication_lag", "v"),
        ("v_dead_letters", "v"),
        ("v_merge_status", "v"),
        ("v_recent_errors", "v"),
    ]
    .iter()
    .map(|(n, k)| (n.to_string(), k.to_string()))
    .collect();
    assert_eq!(objects, expected_objects);

    let routines: Vec<(String, String, String)> = client
        .query(
            "SELECT p.proname::text, p.prokind::text, pg_get_function_arguments(p.oid)
               FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
              WHERE n.nspname = 'cdc_management'
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let names: Vec<&str> = routines.iter().map(|(n, _, _)| n.as_str()).collect();
    for (name, kind) in [
        ("trigger_pending_merges", "f"),
        ("mark_table_for_merge", "f"),
        ("manual_merge", "f"),
        ("purge_tombstones", "f"),
        ("replay_dead_letters", "f"),
        ("converge_table", "p"),
        ("merge_table", "p"),
        ("merge_table_batches", "p"),
        ("run_pending_merges", "p"),
    ] {
        let found = routines
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("cdc_management.{name} missing (have {names:?})"));
        assert_eq!(found.1, kind, "kind of cdc_management.{name}");
    }
    let trigger_pending = client
        .query_one(
            "SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)
               FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
              WHERE n.nspname = 'cdc_management' AND p.proname = 'trigger_pending_merges'",
            &[],
        )
        .unwrap();
    assert_eq!(
        trigger_pending.get::<_, String>(0),
        "p_batch_window_seconds integer DEFAULT 5"
    );
    assert_eq!(
        trigger_pending.get::<_, String>(1),
        "TABLE(schema_name text, table_name text, rows_merged bigint, duration_ms bigint)"
    );
    let mark_result: String = client
        .query_one(
            "SELECT pg_get_function_result('cdc_management.mark_table_for_merge'::regproc)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(mark_result, "trigger");

    // The views answer (empty on a fresh database).
    for view in [
        "v_merge_status",
        "v_recent_errors",
        "v_cdc_processing_gaps",
        "v_cdc_replication_lag",
    ] {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM cdc_management.{view}"), &[])
            .unwrap()
            .get(0);
        let expected = if view == "v_merge_status" { 6 } else { 0 };
        assert_eq!(rows, expected, "rows of cdc_management.{view}");
    }
}

#[test]
fn applying_everything_a_second_time_succeeds_and_changes_nothing() {
    let server = cdc_testkit::shared();
    let db = server.create_database("generated_sql_twice");
    let mut client = server.client(&db);

    fixture::apply_example(&mut client);
    // A row in each final table with a key, so that a table rewrite or a lost row would show.
    client
        .batch_execute(
            r#"INSERT INTO directory."Actor" (_customer_id, actno, "Navn") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'one');
               INSERT INTO directory."Order Details" (_customer_id, "OrderID", "ProductID") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 2);
               INSERT INTO billing."Invoice" ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt")
                    VALUES (1, gen_random_uuid(), 'N-1', 10.5, now());"#,
        )
        .unwrap();
    let before = catalog_snapshot(&mut client);
    assert!(before.len() > 300, "snapshot too small: {}", before.len());

    fixture::apply_example(&mut client);
    let after = catalog_snapshot(&mut client);

    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "the second apply changed the catalog\n  gone: {gone:#?}\n  new: {new:#?}"
    );
    let rows: (i64, i64, i64) = {
        let r = client
            .query_one(
                r#"SELECT (SELECT count(*) FROM directory."Actor"),
                          (SELECT count(*) FROM directory."Order Details"),
                          (SELECT count(*) FROM billing."Invoice")"#,
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(rows, (1, 1, 1));
}
