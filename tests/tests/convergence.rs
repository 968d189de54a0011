//! Table files are convergent (DESIGN.md §6.5): applied over an older version of a final table
//! they add missing columns, widen types and relax NOT NULL while keeping the rows; a change that
//! cannot be made safely (narrowing, a column missing from the YAML, a different primary key, a
//! new NOT NULL column without default over existing rows) is refused with SQLSTATE 55000, a
//! message naming the column and the manual step, and no change at all.

use cdc_testkit::fixture::{self, describe_error, DIRECTORY};
use postgres::error::SqlState;
use postgres::Client;

/// The CDC metadata columns as the YAML shapes them.
const META: &str = r#""__cdc_operation" text,
    "__source_ts_ms" bigint,
    "__kafka_offset" bigint,
    "__source" text,
    "__source_db" text,
    "__source_table" text,
    "__is_deleted" boolean NOT NULL DEFAULT false,
    "__sync_timestamp" timestamptz NOT NULL DEFAULT now()"#;

/// `directory."Order Details"` written by hand in exactly the YAML's shape, except for the
/// `Quantity` column type and the primary key, which the tests vary.
fn order_details_ddl(quantity_type: &str, primary_key: &str) -> String {
    format!(
        r#"CREATE TABLE directory."Order Details" (
    "OrderID" integer NOT NULL,
    "ProductID" integer NOT NULL,
    "Unit Price" numeric(19,4) NOT NULL DEFAULT 0,
    "Quantity" {quantity_type} NOT NULL DEFAULT 1,
    "Discount" real NOT NULL DEFAULT 0,
    "Row Version" bytea,
    "_customer_id" uuid NOT NULL,
    {META},
    PRIMARY KEY ({primary_key})
);
INSERT INTO directory."Order Details" ("_customer_id", "OrderID", "ProductID", "Unit Price", "Quantity", "Discount")
VALUES ('00000000-0000-0000-0000-00000000000a', 1, 1, 9.99, 3, 0), ('00000000-0000-0000-0000-00000000000a', 1, 2, 19.5, 10, 0.25);"#
    )
}

/// `directory."Actor"` in the YAML's shape plus `extra` column definitions.
fn actor_ddl(navn_type: &str, extra: &str) -> String {
    format!(
        r#"CREATE TABLE directory."Actor" (
    "actno" integer NOT NULL,
    "Navn" {navn_type} NOT NULL,
    "Email" varchar(255),
    "IsActive" boolean NOT NULL DEFAULT true,
    "CreatedAt" timestamp(6) NOT NULL DEFAULT now(),
    "_customer_id" uuid NOT NULL,
    {META},{extra}
    PRIMARY KEY ("_customer_id", "actno")
);
INSERT INTO directory."Actor" ("_customer_id", "actno", "Navn") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'one'), ('00000000-0000-0000-0000-00000000000a', 2, 'two');"#
    )
}

/// A database with the directory sink's schemas and `cdc_management` applied, no tables.
fn infrastructure_only(prefix: &str) -> Client {
    let server = cdc_testkit::shared();
    let db = server.create_database(prefix);
    let mut client = server.client(&db);
    let sink = fixture::sink(DIRECTORY);
    for path in &sink.manifest.infrastructure {
        fixture::apply_file(&mut client, sink, path)
            .unwrap_or_else(|e| panic!("{path}: {}", describe_error(&e)));
    }
    client
}

/// Everything about a table that a convergence could change: its storage file (a rewrite shows),
/// its columns with type, NOT NULL and default, its constraints, and its rows.
fn table_state(client: &mut Client, table: &str) -> Vec<String> {
    let rel = format!("directory.\"{table}\"");
    let mut state: Vec<String> = client
        .query(
            "SELECT format('filenode %s', relfilenode) FROM pg_class WHERE oid = $1::text::regclass",
            &[&rel],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for sql in [
        "SELECT format('col %s %s notnull=%s default=%s', a.attname, format_type(a.atttypid, a.atttypmod),
                       a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
           FROM pg_attribute AS a
           LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
        "SELECT format('con %s', pg_get_constraintdef(oid)) FROM pg_constraint
          WHERE conrelid = $1::text::regclass ORDER BY conname",
    ] {
        state.extend(
            client
                .query(sql, &[&rel])
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0)),
        );
    }
    let rows = client
        .query(
            &format!("SELECT to_jsonb(t)::text FROM {rel} AS t ORDER BY 1"),
            &[],
        )
        .unwrap();
    state.extend(
        rows.iter()
            .map(|r| format!("row {}", r.get::<_, String>(0))),
    );
    state
}

/// `(column, format_type, NOT NULL)` in column order.
fn columns(client: &mut Client, table: &str) -> Vec<(String, String, bool)> {
    client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
               FROM pg_attribute AS a
              WHERE a.attrelid = format('directory.%I', $1::text)::regclass
                AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Applies a table file in one transaction and expects the refusal: SQLSTATE 55000, a message
/// naming the table and saying nothing changed, and a DETAIL containing every `expected` text.
/// Checks that the table is exactly as before. Returns the DETAIL.
fn assert_refused(client: &mut Client, table: &str, expected: &[&str]) -> String {
    let before = table_state(client, table);
    let path = format!("01-tables/{table}.sql");
    let err = fixture::apply_file(client, fixture::sink(DIRECTORY), &path)
        .expect_err("the unsafe change must be refused");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {err}"));
    assert_eq!(
        db.code(),
        &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
        "{}",
        describe_error(&err)
    );
    assert_eq!(db.code().code(), "55000");
    let relation = format!("directory.\"{table}\"");
    assert!(
        db.message().contains(&relation) && db.message().contains("nothing was changed"),
        "{}",
        describe_error(&err)
    );
    let detail = db.detail().unwrap_or_default().to_string();
    for text in expected {
        assert!(
            detail.contains(text),
            "DETAIL lacks {text:?}:\n{}",
            describe_error(&err)
        );
    }
    assert!(
        db.hint().is_some_and(|h| h.contains("by hand")),
        "{}",
        describe_error(&err)
    );
    assert_eq!(
        table_state(client, table),
        before,
        "the refused file changed {table}"
    );
    detail
}

#[test]
fn an_older_actor_table_gets_the_new_column_and_the_wider_type_and_keeps_its_rows() {
    let mut c = infrastructure_only("converge_actor");
    c.batch_execute(
        r#"CREATE TABLE directory."Actor" (
               "_customer_id" uuid NOT NULL,
               "actno" integer NOT NULL,
               "Navn" varchar(50) NOT NULL,
               "IsActive" boolean NOT NULL DEFAULT true,
               "CreatedAt" timestamp(6) NOT NULL DEFAULT now(),
               "__cdc_operation" text,
               "__source_ts_ms" bigint,
               "__kafka_offset" bigint,
               "__source" text NOT NULL DEFAULT 'legacy',
               PRIMARY KEY ("_customer_id", "actno")
           );
           INSERT INTO directory."Actor" ("_customer_id", "actno", "Navn", "CreatedAt", "__source_ts_ms")
           VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'one', '2020-01-01 10:00:00', 100),
                  ('00000000-0000-0000-0000-00000000000a', 2, repeat('x', 50), '2021-06-30 23:59:59.123456', 200),
                  ('00000000-0000-0000-0000-00000000000a', 3, 'three', '2022-02-02 02:02:02', 300);"#,
    )
    .unwrap();
    let rows_before: Vec<String> = c
        .query(
            r#"SELECT format('%s|%s|%s|%s|%s', "actno", "Navn", "IsActive", "CreatedAt", "__source_ts_ms")
                 FROM directory."Actor" ORDER BY 1"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    let sink = fixture::sink(DIRECTORY);
    fixture::apply_file(&mut c, sink, "01-tables/Actor.sql")
        .unwrap_or_else(|e| panic!("converging Actor: {}", describe_error(&e)));

    let mut got = columns(&mut c, "Actor");
    got.sort();
    let mut expected: Vec<(String, String, bool)> = [
        ("actno", "integer", true),
        ("Navn", "character varying(100)", true),
        ("Email", "character varying(255)", false),
        ("IsActive", "boolean", true),
        ("CreatedAt", "timestamp(6) without time zone", true),
        ("_customer_id", "uuid", true),
        ("__cdc_operation", "text", false),
        ("__source_ts_ms", "bigint", false),
        ("__kafka_offset", "bigint", false),
        ("__source", "text", false),
        ("__source_db", "text", false),
        ("__source_table", "text", false),
        ("__is_deleted", "boolean", true),
        ("__sync_timestamp", "timestamp with time zone", true),
    ]
    .iter()
    .map(|(n, t, nn)| (n.to_string(), t.to_string(), *nn))
    .collect();
    expected.sort();
    assert_eq!(got, expected, "Actor after convergence");

    // The rows are kept, and the added NOT NULL columns got their defaults.
    let rows_after: Vec<String> = c
        .query(
            r#"SELECT format('%s|%s|%s|%s|%s', "actno", "Navn", "IsActive", "CreatedAt", "__source_ts_ms")
                 FROM directory."Actor" ORDER BY 1"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows_after, rows_before);
    let added = c
        .query_one(
            r#"SELECT count(*) FILTER (WHERE NOT "__is_deleted"), count("__sync_timestamp"),
                      count("Email"), count("__source_db")
                 FROM directory."Actor""#,
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            added.get::<_, i64>(0),
            added.get::<_, i64>(1),
            added.get::<_, i64>(2),
            added.get::<_, i64>(3)
        ),
        (3, 3, 0, 0)
    );

    // A second application changes nothing more.
    let converged = table_state(&mut c, "Actor");
    fixture::apply_file(&mut c, sink, "01-tables/Actor.sql").unwrap();
    assert_eq!(table_state(&mut c, "Actor"), converged);

    // The converged table takes what the old one could not: a 100-character name and an e-mail,
    // through the staging table and the merge.
    fixture::apply_file(&mut c, sink, "01-tables/Actor-staging.sql")
        .unwrap_or_else(|e| panic!("Actor-staging.sql: {}", describe_error(&e)));
    c.batch_execute(
        r#"INSERT INTO directory."stg_Actor" ("_customer_id", "actno", "Navn", "Email", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ('00000000-0000-0000-0000-00000000000a', 1, repeat('n', 100), 'one@example.invalid', 'u', 400, 1)"#,
    )
    .unwrap();
    let merged = c
        .query_one(r#"SELECT * FROM directory."sp_merge_Actor"()"#, &[])
        .unwrap();
    assert_eq!(
        (
            merged.get::<_, i64>(0),
            merged.get::<_, i64>(1),
            merged.get::<_, i64>(2),
            merged.get::<_, i64>(3)
        ),
        (1, 1, 0, 0)
    );
    let row = c
        .query_one(
            r#"SELECT length("Navn"), "Email" FROM directory."Actor" WHERE "actno" = 1"#,
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 100);
    assert_eq!(row.get::<_, String>(1), "one@example.invalid");
}

#[test]
fn a_hand_written_table_in_the_yaml_shape_converges_untouched() {
    // The control for the refusals below: the hand-written DDL they vary is the YAML's shape.
    let mut c = infrastructure_only("converge_control");
    c.batch_execute(&order_details_ddl(
        "smallint",
        r#""_customer_id", "OrderID", "ProductID""#,
    ))
    .unwrap();
    c.batch_execute(&actor_ddl("varchar(100)", "")).unwrap();
    let sink = fixture::sink(DIRECTORY);
    for table in ["Order Details", "Actor"] {
        let before = table_state(&mut c, table);
        fixture::apply_file(&mut c, sink, &format!("01-tables/{table}.sql"))
            .unwrap_or_else(|e| panic!("{table}: {}", describe_error(&e)));
        assert_eq!(table_state(&mut c, table), before, "{table} changed");
    }
}

#[test]
fn narrowing_a_column_is_refused_and_changes_nothing() {
    let mut c = infrastructure_only("converge_narrow");
    // Quantity is smallint in the YAML; the table has it wider.
    c.batch_execute(&order_details_ddl(
        "integer",
        r#""_customer_id", "OrderID", "ProductID""#,
    ))
    .unwrap();
    assert_refused(
        &mut c,
        "Order Details",
        &[
            r#"column "Quantity" is integer but the YAML says smallint"#,
            r#"ALTER TABLE directory."Order Details" ALTER COLUMN "Quantity" TYPE smallint USING"#,
        ],
    );

    // psql -1 -v ON_ERROR_STOP=1 shows the same to someone applying the file by hand.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Order Details.sql");
    let sql = &fixture::file(fixture::sink(DIRECTORY), "01-tables/Order Details.sql").contents;
    std::fs::write(&file, sql).unwrap();
    let db: String = c
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    let out = cdc_testkit::shared().psql(
        &db,
        &["-1", "-v", "ON_ERROR_STOP=1", "-f", file.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "psql accepted the narrowing: {stderr}"
    );
    assert!(
        stderr.contains("cannot be brought to the shape of its YAML safely")
            && stderr.contains("DETAIL:")
            && stderr.contains(r#"column "Quantity" is integer but the YAML says smallint"#),
        "{stderr}"
    );
    let quantity: String = c
        .query_one(
            r#"SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = 'directory."Order Details"'::regclass AND attname = 'Quantity'"#,
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(quantity, "integer");
}

#[test]
fn a_column_missing_from_the_yaml_is_refused_naming_the_drop() {
    let mut c = infrastructure_only("converge_extra");
    c.batch_execute(&actor_ddl("varchar(100)", "\n    \"Legacy Code\" text,"))
        .unwrap();
    let detail = assert_refused(
        &mut c,
        "Actor",
        &[
            r#"column "Legacy Code" exists in directory."Actor" but not in the YAML"#,
            r#"ALTER TABLE directory."Actor" DROP COLUMN "Legacy Code""#,
        ],
    );
    assert_eq!(detail.lines().count(), 1, "one problem: {detail}");
}

#[test]
fn a_different_primary_key_is_refused() {
    let mut c = infrastructure_only("converge_pk");
    // The same columns, the key's columns in the other order.
    c.batch_execute(&order_details_ddl(
        "smallint",
        r#""_customer_id", "ProductID", "OrderID""#,
    ))
    .unwrap();
    assert_refused(
        &mut c,
        "Order Details",
        &[
            r#"primary key of directory."Order Details" is (_customer_id, ProductID, OrderID) but the YAML says (_customer_id, OrderID, ProductID)"#,
            "ADD PRIMARY KEY",
        ],
    );
}

#[test]
fn a_new_not_null_column_without_default_is_refused_over_rows_and_added_to_an_empty_table() {
    let mut c = infrastructure_only("converge_not_null");
    // Navn (NOT NULL, no default in the YAML) does not exist yet.
    c.batch_execute(
        &actor_ddl("text", "")
            .replace("    \"Navn\" text NOT NULL,\n", "")
            .replace(
                r#"("_customer_id", "actno", "Navn") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'one'), ('00000000-0000-0000-0000-00000000000a', 2, 'two')"#,
                r#"("_customer_id", "actno") VALUES ('00000000-0000-0000-0000-00000000000a', 1), ('00000000-0000-0000-0000-00000000000a', 2)"#,
            ),
    )
    .unwrap();
    assert!(
        !columns(&mut c, "Actor").iter().any(|col| col.0 == "Navn"),
        "the fixture table must lack Navn"
    );
    assert_refused(
        &mut c,
        "Actor",
        &[
            r#"column "Navn" is new and NOT NULL without a default, but directory."Actor" has rows"#,
            r#"ALTER TABLE directory."Actor" ADD COLUMN "Navn" varchar(100) DEFAULT <value> NOT NULL"#,
        ],
    );

    // Without rows the column can be added as the YAML says.
    c.batch_execute(r#"DELETE FROM directory."Actor""#).unwrap();
    fixture::apply_file(&mut c, fixture::sink(DIRECTORY), "01-tables/Actor.sql")
        .unwrap_or_else(|e| panic!("{}", describe_error(&e)));
    assert!(columns(&mut c, "Actor").contains(&(
        "Navn".to_string(),
        "character varying(100)".to_string(),
        true
    )));
}

#[test]
fn several_problems_are_reported_together() {
    let mut c = infrastructure_only("converge_several");
    // Navn narrower in the YAML (varchar(200) → varchar(100)) and an extra column.
    c.batch_execute(&actor_ddl("varchar(200)", "\n    legacy_flag integer,"))
        .unwrap();
    let detail = assert_refused(
        &mut c,
        "Actor",
        &[
            r#"column "Navn" is character varying(200) but the YAML says character varying(100)"#,
            r#"ALTER TABLE directory."Actor" DROP COLUMN legacy_flag"#,
        ],
    );
    assert_eq!(detail.lines().count(), 2, "{detail}");
}
