//! The apply engine against a real PostgreSQL: DESIGN.md §6 point by point.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use cdc_core::checksum::{assemble, split_migration};
use cdc_runtime::{
    ApplyError, ConnectOptions, MigrationFile, Migrations, Migrator, Outcome, SslMode,
};
use tests::copy_dir;
use tests::fixture::{self, migrations_of, DIRECTORY};

/// A copy of the example sink with one file's body replaced (checksum recomputed).
fn with_body(migrations: &Migrations, path: &str, edit: impl Fn(&str) -> String) -> Migrations {
    let files = migrations
        .files()
        .iter()
        .map(|f| {
            if f.path != path {
                return f.clone();
            }
            let split = split_migration(&f.contents).expect("checksum line");
            let contents = assemble(split.header, &edit(split.body));
            MigrationFile {
                checksum: split_migration(&contents).expect("checksum").embedded,
                contents: contents.into(),
                ..f.clone()
            }
        })
        .collect();
    Migrations::from_parts(
        migrations.sink().to_string(),
        migrations.databases().to_vec(),
        files,
    )
}

fn directory() -> Migrations {
    migrations_of(fixture::sink(DIRECTORY))
}

fn history(client: &mut postgres::Client, sink: &str) -> Vec<(String, String, String)> {
    client
        .query(
            "SELECT file_name, checksum, category FROM cdc_management.migration_history WHERE sink = $1 ORDER BY id",
            &[&sink],
        )
        .expect("history")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn table_exists(client: &mut postgres::Client, name: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .expect("regclass")
        .get(0)
}

#[test]
fn a_fresh_database_gets_everything_in_order_and_a_second_run_skips_all() {
    let server = tests::shared();
    let db = server.create_database("apply_fresh");
    let mut client = server.client(&db);
    let migrations = directory();
    let report = Migrator::new(&migrations)
        .apply(&mut client)
        .expect("apply");
    assert_eq!(report.count(Outcome::New), migrations.files().len());
    let order: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    let expected: Vec<&str> = migrations.files().iter().map(|f| f.path.as_ref()).collect();
    assert_eq!(order, expected);
    assert_eq!(order[0], "00-infrastructure/01-create-schemas.sql");
    assert!(
        order.iter().position(|p| *p == "01-tables/Actor.sql")
            < order
                .iter()
                .position(|p| *p == "01-tables/Actor-staging.sql")
    );

    let rows = history(&mut client, DIRECTORY);
    assert_eq!(
        rows.len(),
        migrations.files().len(),
        "every file, the first infrastructure file included, is recorded"
    );
    for (file, (name, checksum, category)) in migrations.files().iter().zip(&rows) {
        assert_eq!(name, file.path.as_ref());
        assert_eq!(checksum, &file.checksum.to_string());
        assert_eq!(category, file.category.as_str());
    }
    assert!(table_exists(&mut client, "directory.\"Order Details\""));

    let again = Migrator::new(&migrations)
        .apply(&mut client)
        .expect("second apply");
    assert_eq!(again.count(Outcome::Skipped), migrations.files().len());
    assert_eq!(again.applied_count(), 0);
    assert_eq!(history(&mut client, DIRECTORY).len(), rows.len());
    let statuses = Migrator::new(&migrations)
        .status(&mut client)
        .expect("status");
    assert!(statuses.iter().all(|s| s.state.label() == "applied"));
}

#[test]
fn a_regenerated_file_is_reapplied_and_its_history_row_updated_not_duplicated() {
    let server = tests::shared();
    let db = server.create_database("apply_changed");
    let mut client = server.client(&db);
    let original = directory();
    Migrator::new(&original).apply(&mut client).expect("apply");
    client
        .batch_execute("INSERT INTO directory.\"Actor\" (actno, \"Navn\", \"IsActive\", \"CreatedAt\") VALUES (1, 'a', true, now())")
        .expect("row");

    // Regenerate from YAML with a new column.
    let project = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &fixture::project_root().join("services"),
        &project.path().join("services"),
    );
    std::fs::copy(
        fixture::project_root().join("sink-groups.yaml"),
        project.path().join("sink-groups.yaml"),
    )
    .expect("copy");
    let actor = project
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    let mut yaml = std::fs::read_to_string(&actor).expect("read");
    yaml.push_str("  - name: Nickname\n    type: nvarchar(40)\n    nullable: true\n");
    std::fs::write(&actor, yaml).expect("write");
    let loaded =
        cdc_build::load_project(project.path(), &cdc_build::Filter::default()).expect("load");
    let regenerated = cdc_build::generate(
        &loaded,
        &cdc_build::GenerateOptions::new(fixture::GENERATED_AT),
    )
    .render_all();
    let changed = migrations_of(
        regenerated
            .iter()
            .find(|s| s.name == DIRECTORY)
            .expect("sink"),
    );

    let report = Migrator::new(&changed)
        .apply(&mut client)
        .expect("apply changed");
    let updated: Vec<&str> = report
        .files
        .iter()
        .filter(|f| f.outcome == Outcome::Updated)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        updated,
        ["01-tables/Actor.sql", "01-tables/Actor-staging.sql"]
    );
    assert_eq!(report.count(Outcome::New), 0);
    let rows = history(&mut client, DIRECTORY);
    assert_eq!(
        rows.len(),
        original.files().len(),
        "history rows updated, not duplicated"
    );
    let actor_row = rows
        .iter()
        .find(|r| r.0 == "01-tables/Actor.sql")
        .expect("row");
    let new_checksum = changed
        .files()
        .iter()
        .find(|f| f.path == "01-tables/Actor.sql")
        .expect("file")
        .checksum;
    assert_eq!(actor_row.1, new_checksum.to_string());
    let column: String = client
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'directory.\"Actor\"'::regclass AND attname = 'Nickname'",
            &[],
        )
        .expect("new column exists")
        .get(0);
    assert_eq!(column, "character varying(40)");
    let kept: i64 = client
        .query_one("SELECT count(*) FROM directory.\"Actor\"", &[])
        .expect("count")
        .get(0);
    assert_eq!(kept, 1, "existing rows survive");
}

#[test]
fn a_tampered_file_is_refused_before_anything_changes() {
    let server = tests::shared();
    let db = server.create_database("apply_tampered");
    let mut client = server.client(&db);
    let migrations = directory();
    let files = migrations
        .files()
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if f.path == "01-tables/select.sql" {
                f.contents = f
                    .contents
                    .replace("\"order\" integer", "\"order\" bigint")
                    .into();
            }
            f
        })
        .collect();
    let tampered = Migrations::from_parts(
        migrations.sink().to_string(),
        migrations.databases().to_vec(),
        files,
    );
    match Migrator::new(&tampered).apply(&mut client) {
        Err(ApplyError::Tampered {
            file,
            embedded,
            actual,
        }) => {
            assert_eq!(file, "01-tables/select.sql");
            assert_ne!(embedded, actual);
            let message = ApplyError::Tampered {
                file,
                embedded,
                actual,
            }
            .to_string();
            assert!(
                message.contains(&embedded.to_string()) && message.contains(&actual.to_string()),
                "{message}"
            );
        }
        other => panic!("expected a tampered-file error, got {other:?}"),
    }
    assert!(
        !table_exists(&mut client, "cdc_management.migration_history"),
        "nothing may run before verification"
    );
}

#[test]
fn a_failing_file_is_rolled_back_earlier_files_stay_and_the_error_names_file_sqlstate_and_line() {
    let server = tests::shared();
    let db = server.create_database("apply_failing");
    let mut client = server.client(&db);
    let broken = with_body(&directory(), "01-tables/AllTypes.sql", |body| {
        body.replacen("CREATE INDEX", "SELECT 1 / 0;\nCREATE INDEX", 1)
    });
    let failing = broken
        .files()
        .iter()
        .find(|f| f.path == "01-tables/AllTypes.sql")
        .expect("file");
    let expected_line = failing
        .contents
        .lines()
        .position(|l| l == "SELECT 1 / 0;")
        .expect("line")
        + 1;
    match Migrator::new(&broken).apply(&mut client) {
        Err(ApplyError::FileFailed {
            file,
            line,
            sqlstate,
            ..
        }) => {
            assert_eq!(file, "01-tables/AllTypes.sql");
            assert_eq!(sqlstate, "22012");
            assert_eq!(line, Some(expected_line));
        }
        other => panic!("expected a file failure, got {other:?}"),
    }
    assert!(
        !table_exists(&mut client, "directory.\"AllTypes\""),
        "the failing file's CREATE TABLE was rolled back"
    );
    assert!(
        table_exists(&mut client, "directory.\"Actor\""),
        "files before it stay applied"
    );
    let names: Vec<String> = history(&mut client, DIRECTORY)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(names.contains(&"01-tables/Actor.sql".to_string()));
    assert!(!names.contains(&"01-tables/AllTypes.sql".to_string()));

    // A syntax error reports the exact line of the error position.
    let db = server.create_database("apply_syntax");
    let mut client = server.client(&db);
    let broken = with_body(
        &directory(),
        "00-infrastructure/01-create-schemas.sql",
        |body| format!("{body}SELECT 1,\n  , 2;\n"),
    );
    let file = broken
        .files()
        .iter()
        .find(|f| f.path.ends_with("01-create-schemas.sql"))
        .expect("file");
    let expected_line = file
        .contents
        .lines()
        .position(|l| l == "  , 2;")
        .expect("line")
        + 1;
    let result = Migrator::new(&broken).apply(&mut client);
    match result {
        Err(ApplyError::FileFailed { line, sqlstate, .. }) => {
            assert_eq!(sqlstate, "42601");
            assert_eq!(line, Some(expected_line));
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn eight_migrators_at_once_apply_each_file_exactly_once() {
    let server = tests::shared();
    let db = server.create_database("apply_concurrent");
    let migrations = Arc::new(directory());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let migrations = Arc::clone(&migrations);
            let barrier = Arc::clone(&barrier);
            let mut client = server.client(&db);
            std::thread::spawn(move || {
                barrier.wait();
                Migrator::new(&migrations).apply(&mut client)
            })
        })
        .collect();
    let reports: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").expect("no migrator fails"))
        .collect();
    for file in migrations.files() {
        let applied = reports
            .iter()
            .filter(|r| {
                r.files
                    .iter()
                    .any(|f| f.path == file.path.as_ref() && f.outcome == Outcome::New)
            })
            .count();
        assert_eq!(applied, 1, "{} applied by {applied} migrators", file.path);
    }
    let mut client = server.client(&db);
    let rows = history(&mut client, DIRECTORY);
    assert_eq!(
        rows.len(),
        migrations.files().len(),
        "no duplicate history rows"
    );
}

#[test]
fn a_held_lock_makes_the_run_wait_then_give_up_with_a_clear_error() {
    let server = tests::shared();
    let db = server.create_database("apply_lock");
    let migrations = directory();
    let mut holder = server.client(&db);
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(migrations.sink())],
        )
        .expect("lock");
    let mut client = server.client(&db);
    let started = std::time::Instant::now();
    match Migrator::new(&migrations)
        .lock_wait(Duration::from_millis(400))
        .apply(&mut client)
    {
        Err(ApplyError::LockTimeout { sink, waited }) => {
            assert_eq!(sink, DIRECTORY);
            assert!(waited >= Duration::from_millis(400));
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!table_exists(
        &mut client,
        "cdc_management.migration_history"
    ));
    holder
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .expect("unlock");
    let report = Migrator::new(&migrations)
        .apply(&mut client)
        .expect("apply once the lock is free");
    assert_eq!(report.count(Outcome::New), migrations.files().len());
    // The run released its lock: another session can take it at once.
    let free: bool = holder
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(migrations.sink())],
        )
        .expect("try lock")
        .get(0);
    assert!(free);
}

#[test]
fn the_older_history_table_is_adopted() {
    let server = tests::shared();
    let db = server.create_database("apply_adopt");
    let mut client = server.client(&db);
    client
        .batch_execute(
            r#"CREATE SCHEMA cdc_management;
               CREATE TABLE "cdc_management"."migration_history" (
                   "id" BIGSERIAL PRIMARY KEY, "file_name" TEXT NOT NULL, "checksum" TEXT NOT NULL,
                   "schema_name" TEXT, "category" TEXT NOT NULL, "applied_at" TIMESTAMPTZ NOT NULL DEFAULT NOW(),
                   UNIQUE ("file_name", "schema_name"));
               INSERT INTO cdc_management.migration_history (file_name, checksum, schema_name, category)
               VALUES ('01-tables/Old.sql', 'abc', 'directory', 'table');"#,
        )
        .expect("old history");
    let migrations = directory();
    let report = Migrator::new(&migrations)
        .apply(&mut client)
        .expect("apply over the old table");
    assert_eq!(report.count(Outcome::New), migrations.files().len());
    let legacy: String = client
        .query_one("SELECT sink FROM cdc_management.migration_history WHERE file_name = '01-tables/Old.sql'", &[])
        .expect("old row kept")
        .get(0);
    assert_eq!(legacy, "legacy:directory");
    assert_eq!(
        history(&mut client, DIRECTORY).len(),
        migrations.files().len()
    );
    assert_eq!(
        Migrator::new(&migrations)
            .apply(&mut client)
            .expect("again")
            .applied_count(),
        0
    );
}

#[test]
fn an_unreachable_server_is_retried_with_backoff_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let options = ConnectOptions {
        host: "127.0.0.1".into(),
        port,
        user: "postgres".into(),
        password: Some("never-printed".into()),
        dbname: "nowhere".into(),
        sslmode: SslMode::Disable,
        connect_timeout: Duration::from_secs(1),
        retry_for: Duration::from_millis(1500),
    };
    let started = std::time::Instant::now();
    match cdc_runtime::connect(&options) {
        Err(error @ ApplyError::Connect { .. }) => {
            let ApplyError::Connect {
                attempts, target, ..
            } = &error
            else {
                unreachable!()
            };
            assert!(*attempts >= 3, "retried {attempts} times");
            assert_eq!(target, &format!("127.0.0.1:{port}/nowhere"));
            assert!(!error.to_string().contains("never-printed"));
        }
        other => panic!("expected a connection error, got {:?}", other.map(|_| ())),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the retry is bounded"
    );
}

#[test]
fn the_async_engine_applies_the_same_way() {
    let server = tests::shared();
    let db = server.create_database("apply_async");
    let migrations = directory();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = ConnectOptions {
            host: server.host().into(),
            port: server.port(),
            user: server.user().into(),
            password: None,
            dbname: db.clone(),
            sslmode: SslMode::Disable,
            connect_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(5),
        };
        let mut client = cdc_runtime::connect_async(&options).await.expect("connect");
        let report = Migrator::new(&migrations)
            .apply_async(&mut client)
            .await
            .expect("apply");
        assert_eq!(report.count(Outcome::New), migrations.files().len());
        let again = Migrator::new(&migrations)
            .apply_async(&mut client)
            .await
            .expect("again");
        assert_eq!(again.applied_count(), 0);
        let statuses = Migrator::new(&migrations)
            .status_async(&client)
            .await
            .expect("status");
        assert!(statuses.iter().all(|s| s.state.label() == "applied"));
    });
    let mut client = server.client(&db);
    assert_eq!(
        history(&mut client, DIRECTORY).len(),
        migrations.files().len()
    );
}

#[test]
fn a_boot_with_nothing_to_do_needs_no_lock_even_with_history_of_removed_files() {
    let server = tests::shared();
    let db = server.create_database("apply_noop");
    let mut client = server.client(&db);
    let migrations = directory();
    Migrator::new(&migrations)
        .apply(&mut client)
        .expect("apply");
    let mut holder = server.client(&db);
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(migrations.sink())],
        )
        .expect("lock");
    // Everything applied: the digest fast path answers without the lock.
    let report = Migrator::new(&migrations)
        .lock_wait(Duration::from_millis(100))
        .apply(&mut client)
        .expect("no-op boot");
    assert_eq!(report.applied_count(), 0);
    // A history row of a file that is no longer generated: the digest differs,
    // the full history is read, still nothing to apply and no lock needed.
    client
        .execute(
            "INSERT INTO cdc_management.migration_history (sink, file_name, checksum, category) VALUES ($1, '01-tables/Gone.sql', 'sha256:00', 'table')",
            &[&DIRECTORY],
        )
        .expect("extra row");
    let report = Migrator::new(&migrations)
        .lock_wait(Duration::from_millis(100))
        .apply(&mut client)
        .expect("no-op boot");
    assert_eq!(report.applied_count(), 0);
    // A changed file does need the lock.
    let changed = with_body(&migrations, "01-tables/AuditTrail.sql", |b| {
        format!("{b}-- changed\n")
    });
    let result = Migrator::new(&changed)
        .lock_wait(Duration::from_millis(100))
        .apply(&mut client);
    assert!(
        matches!(result, Err(ApplyError::LockTimeout { .. })),
        "expected the run to wait for the lock, got {result:?}"
    );
}

#[test]
fn sslmode_require_refuses_a_server_without_tls_and_prefer_falls_back() {
    let server = tests::shared();
    let db = server.create_database("apply_tls");
    let options = |sslmode| ConnectOptions {
        host: server.host().into(),
        port: server.port(),
        user: server.user().into(),
        password: None,
        dbname: db.clone(),
        sslmode,
        connect_timeout: Duration::from_secs(5),
        retry_for: Duration::from_millis(500),
    };
    // The harness's server has no certificate: `require` must not silently go plain.
    let refused = cdc_runtime::connect(&options(SslMode::Require));
    assert!(
        matches!(refused, Err(ApplyError::Connect { .. })),
        "require connected without TLS"
    );
    let mut client =
        cdc_runtime::connect(&options(SslMode::Prefer)).expect("prefer falls back to plain");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
}
