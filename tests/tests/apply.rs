//! The apply engine against a real PostgreSQL: DESIGN.md §6 point by point,
//! every scenario run by both drivers (`<scenario>::blocking`, `<scenario>::async_driver`).
#![allow(clippy::result_large_err)]

mod drivers;

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cdc_core::checksum::{assemble, split_migration};
use cdc_core::layout::{SCHEMAS_DIR, SERVICES_DIR, SINK_GROUPS_FILE};
use cdc_runtime::{
    ApplyError, ApplyEvent, ConnectOptions, MigrationFile, Migrations, Migrator, Outcome, SslMode,
};
use cdc_testkit::copy_dir;
use cdc_testkit::fixture::{self, migrations_of, DIRECTORY};
use drivers::{plain_options, Driver, Session};

/// Defines, for each scenario `fn scenario(driver: Driver)`, a module of two
/// tests, `scenario::blocking` and `scenario::async_driver`, so that a
/// failure names its driver.
macro_rules! for_each_driver {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[test]
            fn blocking() {
                super::$scenario(super::Driver::Blocking);
            }

            #[test]
            fn async_driver() {
                super::$scenario(super::Driver::Async);
            }
        }
    )+};
}

for_each_driver!(
    a_fresh_database_gets_everything_in_order_and_a_second_run_skips_all,
    a_regenerated_file_is_reapplied_and_its_history_row_updated_not_duplicated,
    a_tampered_file_is_refused_before_anything_changes,
    a_failing_file_is_rolled_back_earlier_files_stay_and_the_error_names_file_sqlstate_and_line,
    eight_migrators_at_once_apply_each_file_exactly_once,
    a_held_lock_makes_the_run_wait_then_give_up_with_a_clear_error,
    the_older_history_table_is_adopted,
    a_boot_with_nothing_to_do_needs_no_lock_even_with_history_of_removed_files,
    a_panicking_observer_leaves_the_lock_free_and_the_session_out_of_any_transaction,
    a_migrator_killed_mid_file_leaves_nothing_half_applied_and_the_next_run_completes,
    an_unreachable_server_is_retried_with_backoff_then_reported,
    sslmode_require_refuses_a_server_without_tls_and_prefer_falls_back,
);

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

/// A database of its own for a scenario and driver.
fn database(scenario: &str, driver: Driver) -> String {
    cdc_testkit::shared().create_database(&format!("{scenario}_{driver}"))
}

fn a_fresh_database_gets_everything_in_order_and_a_second_run_skips_all(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_fresh", driver);
    let mut session = driver.connect_to(server, &db);
    let mut client = server.client(&db);
    let migrations = directory();
    let report = session.apply(&Migrator::new(&migrations)).expect("apply");
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

    let again = session
        .apply(&Migrator::new(&migrations))
        .expect("second apply");
    assert_eq!(again.count(Outcome::Skipped), migrations.files().len());
    assert_eq!(again.applied_count(), 0);
    assert_eq!(history(&mut client, DIRECTORY).len(), rows.len());
    let statuses = session.status(&Migrator::new(&migrations)).expect("status");
    assert!(statuses.iter().all(|s| s.state.label() == "applied"));
}

fn a_regenerated_file_is_reapplied_and_its_history_row_updated_not_duplicated(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_changed", driver);
    let mut session = driver.connect_to(server, &db);
    let mut client = server.client(&db);
    let original = directory();
    session.apply(&Migrator::new(&original)).expect("apply");
    client
        .batch_execute("INSERT INTO directory.\"Actor\" (_customer_id, actno, \"Navn\", \"IsActive\", \"CreatedAt\") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'a', true, now())")
        .expect("row");

    // Regenerate from YAML with a new column.
    let project = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &fixture::project_root().join(SERVICES_DIR),
        &project.path().join(SERVICES_DIR),
    );
    std::fs::copy(
        fixture::project_root().join(SINK_GROUPS_FILE),
        project.path().join(SINK_GROUPS_FILE),
    )
    .expect("copy");
    let actor = project
        .path()
        .join(SERVICES_DIR)
        .join(SCHEMAS_DIR)
        .join("directory/dbo/Actor.yaml");
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

    let report = session
        .apply(&Migrator::new(&changed))
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

fn a_tampered_file_is_refused_before_anything_changes(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_tampered", driver);
    let mut session = driver.connect_to(server, &db);
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
    match session.apply(&Migrator::new(&tampered)) {
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
        !table_exists(&mut server.client(&db), "cdc_management.migration_history"),
        "nothing may run before verification"
    );
}

fn a_failing_file_is_rolled_back_earlier_files_stay_and_the_error_names_file_sqlstate_and_line(
    driver: Driver,
) {
    let server = cdc_testkit::shared();
    let db = database("apply_failing", driver);
    let mut session = driver.connect_to(server, &db);
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
    match session.apply(&Migrator::new(&broken)) {
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
    let free: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(DIRECTORY)],
        )
        .expect("try lock")
        .get(0);
    assert!(free, "a failed run releases the lock");

    // A syntax error reports the exact line of the error position.
    let db = database("apply_syntax", driver);
    let mut session = driver.connect_to(server, &db);
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
    let result = session.apply(&Migrator::new(&broken));
    match result {
        Err(ApplyError::FileFailed { line, sqlstate, .. }) => {
            assert_eq!(sqlstate, "42601");
            assert_eq!(line, Some(expected_line));
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

fn eight_migrators_at_once_apply_each_file_exactly_once(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_concurrent", driver);
    let migrations = Arc::new(directory());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let migrations = Arc::clone(&migrations);
            let barrier = Arc::clone(&barrier);
            let mut session = driver.connect_to(server, &db);
            std::thread::spawn(move || {
                barrier.wait();
                session.apply(&Migrator::new(&migrations))
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
    let rows = history(&mut server.client(&db), DIRECTORY);
    assert_eq!(
        rows.len(),
        migrations.files().len(),
        "no duplicate history rows"
    );
}

fn a_held_lock_makes_the_run_wait_then_give_up_with_a_clear_error(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_lock", driver);
    let migrations = directory();
    let mut holder = server.client(&db);
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(migrations.sink())],
        )
        .expect("lock");
    let mut session = driver.connect_to(server, &db);
    let started = Instant::now();
    match session.apply(&Migrator::new(&migrations).lock_wait(Duration::from_millis(400))) {
        Err(ApplyError::LockTimeout { sink, waited }) => {
            assert_eq!(sink, DIRECTORY);
            assert!(waited >= Duration::from_millis(400));
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!table_exists(
        &mut server.client(&db),
        "cdc_management.migration_history"
    ));
    holder
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .expect("unlock");
    let report = session
        .apply(&Migrator::new(&migrations))
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

fn the_older_history_table_is_adopted(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_adopt", driver);
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
    let mut session = driver.connect_to(server, &db);
    let migrations = directory();
    let report = session
        .apply(&Migrator::new(&migrations))
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
        session
            .apply(&Migrator::new(&migrations))
            .expect("again")
            .applied_count(),
        0
    );
}

fn a_boot_with_nothing_to_do_needs_no_lock_even_with_history_of_removed_files(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_noop", driver);
    let mut session = driver.connect_to(server, &db);
    let mut client = server.client(&db);
    let migrations = directory();
    session.apply(&Migrator::new(&migrations)).expect("apply");
    let mut holder = server.client(&db);
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(migrations.sink())],
        )
        .expect("lock");
    // Everything applied: the digest fast path answers without the lock.
    let report = session
        .apply(&Migrator::new(&migrations).lock_wait(Duration::from_millis(100)))
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
    let report = session
        .apply(&Migrator::new(&migrations).lock_wait(Duration::from_millis(100)))
        .expect("no-op boot");
    assert_eq!(report.applied_count(), 0);
    // A changed file does need the lock.
    let changed = with_body(&migrations, "01-tables/AuditTrail.sql", |b| {
        format!("{b}-- changed\n")
    });
    let result = session.apply(&Migrator::new(&changed).lock_wait(Duration::from_millis(100)));
    assert!(
        matches!(result, Err(ApplyError::LockTimeout { .. })),
        "expected the run to wait for the lock, got {result:?}"
    );
}

fn a_panicking_observer_leaves_the_lock_free_and_the_session_out_of_any_transaction(
    driver: Driver,
) {
    let server = cdc_testkit::shared();
    let db = database("apply_panic", driver);
    let mut session = driver.connect_to(server, &db);
    let migrations = directory();
    let panicking = Migrator::new(&migrations).on_event(|event| {
        if let ApplyEvent::Applying { index: 3, .. } = event {
            panic!("the observer fails while the run holds the lock");
        }
    });
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| session.apply(&panicking)));
    assert!(outcome.is_err(), "the observer's panic reaches the caller");

    // The session answers (after what the run's guard queued on it), outside any transaction.
    let pid: i32 = session.value("SELECT pg_backend_pid()");
    let mut client = server.client(&db);
    let state: String = client
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .expect("the session is alive")
        .get(0);
    assert_eq!(state, "idle", "no transaction is left open");
    let free: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(DIRECTORY)],
        )
        .expect("try lock")
        .get(0);
    assert!(free, "the lock was released while the panic unwound");
    client
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .expect("unlock");
    assert_eq!(
        history(&mut client, DIRECTORY).len(),
        2,
        "the two files before the panic stay applied"
    );

    let report = session
        .apply(&Migrator::new(&migrations))
        .expect("the next run on the same session");
    assert_eq!(report.count(Outcome::New), migrations.files().len() - 2);
}

/// How the parent test tells [`migrator_child_process`] what to run.
const CHILD_DRIVER: &str = "CDC_TEST_CHILD_DRIVER";
const CHILD_PORT: &str = "CDC_TEST_CHILD_PORT";
const CHILD_DB: &str = "CDC_TEST_CHILD_DB";

/// The example sink with a 60-second statement inside `01-tables/Actor.sql`.
fn with_a_slow_file() -> Migrations {
    with_body(&directory(), "01-tables/Actor.sql", |b| {
        b.replacen("CALL ", "SELECT pg_sleep(60);\nCALL ", 1)
    })
}

/// Not a test of its own: the migrator process that
/// `a_migrator_killed_mid_file...` starts (this test binary, run again with
/// `--ignored --exact migrator_child_process`) and kills with SIGKILL.
#[test]
#[ignore = "the child process of a_migrator_killed_mid_file_*"]
fn migrator_child_process() {
    let (Ok(driver), Ok(port), Ok(db)) = (
        std::env::var(CHILD_DRIVER),
        std::env::var(CHILD_PORT),
        std::env::var(CHILD_DB),
    ) else {
        eprintln!("run only by a_migrator_killed_mid_file_*: {CHILD_DRIVER} is not set");
        return;
    };
    let driver = match driver.as_str() {
        "blocking" => Driver::Blocking,
        _ => Driver::Async,
    };
    let options = ConnectOptions {
        host: "127.0.0.1".into(),
        port: port.parse().expect("port"),
        user: "postgres".into(),
        password: None,
        dbname: db,
        sslmode: SslMode::Disable,
        connect_timeout: Duration::from_secs(5),
        retry_for: Duration::from_secs(5),
    };
    let migrations = with_a_slow_file();
    let mut session = driver.connect(&options).expect("connect");
    let result = session.apply(&Migrator::new(&migrations));
    panic!("the migrator should have been killed mid-file, but it ended: {result:?}");
}

fn sleeping_sessions(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'",
            &[],
        )
        .expect("activity")
        .get(0)
}

fn a_migrator_killed_mid_file_leaves_nothing_half_applied_and_the_next_run_completes(
    driver: Driver,
) {
    let server = cdc_testkit::shared();
    assert_eq!(
        server.host(),
        "127.0.0.1",
        "the child connects to 127.0.0.1"
    );
    assert_eq!(server.user(), "postgres", "the child connects as postgres");
    let db = database("apply_killed", driver);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "migrator_child_process",
            "--nocapture",
        ])
        .env(CHILD_DRIVER, driver.to_string())
        .env(CHILD_PORT, server.port().to_string())
        .env(CHILD_DB, &db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the migrator");
    let mut client = server.client(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sleeping_sessions(&mut client) == 0 {
        if let Some(status) = child.try_wait().expect("child") {
            panic!("the migrator ended ({status}) before it reached the slow file");
        }
        assert!(
            Instant::now() < deadline,
            "the migrator never reached the slow file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    // The server notices the dead session and rolls its transaction back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sleeping_sessions(&mut client) > 0 {
        assert!(Instant::now() < deadline, "the killed session lingers");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !table_exists(&mut client, "directory.\"Actor\""),
        "the file in progress left nothing behind"
    );
    let names: Vec<String> = history(&mut client, DIRECTORY)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(!names.contains(&"01-tables/Actor.sql".to_string()));
    assert!(
        names.len() >= 2,
        "the infrastructure files before it stay applied"
    );

    let migrations = directory();
    let mut session = driver.connect_to(server, &db);
    let report = session
        .apply(&Migrator::new(&migrations))
        .expect("the next run");
    assert_eq!(
        report.applied_count(),
        migrations.files().len() - names.len()
    );
    let statuses = session.status(&Migrator::new(&migrations)).expect("status");
    assert!(statuses.iter().all(|s| s.state.label() == "applied"));
}

/// Async only: a future can be dropped mid-run, a blocking call cannot.
#[test]
fn a_dropped_async_run_rolls_back_the_file_in_flight_and_releases_the_lock() {
    let server = cdc_testkit::shared();
    let db = database("apply_dropped", Driver::Async);
    let Session::Async {
        runtime,
        mut client,
    } = Driver::Async.connect_to(server, &db)
    else {
        unreachable!("the async driver gives an async session")
    };
    let migrations = with_body(&directory(), "01-tables/Actor.sql", |b| {
        b.replacen("CALL ", "SELECT pg_sleep(3);\nCALL ", 1)
    });
    let pid = runtime.block_on(async {
        let inspector = cdc_runtime::connect_async(&plain_options(server, &db))
            .await
            .expect("inspector");
        let migrator = Migrator::new(&migrations);
        let in_the_slow_file = async {
            loop {
                let sleeping: i64 = inspector
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'",
                        &[],
                    )
                    .await
                    .expect("activity")
                    .get(0);
                if sleeping > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            result = migrator.apply_async(&mut client) => panic!("the run ended before it was dropped: {result:?}"),
            () = in_the_slow_file => {}
        }
        // The run's future is dropped: its guard queued ROLLBACK and the
        // unlock behind the statement in flight; this query comes after them.
        client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("the session answers")
            .get::<_, i32>(0)
    });
    let mut client = server.client(&db);
    let state: String = client
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .expect("the session is alive")
        .get(0);
    assert_eq!(state, "idle", "no transaction is left open");
    assert!(
        !table_exists(&mut client, "directory.\"Actor\""),
        "the file in flight was rolled back"
    );
    let names: Vec<String> = history(&mut client, DIRECTORY)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(!names.contains(&"01-tables/Actor.sql".to_string()));
    assert_eq!(names.len(), 2, "the files before it stay applied");
    let free: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&cdc_runtime::plan::lock_key(DIRECTORY)],
        )
        .expect("try lock")
        .get(0);
    assert!(free, "the lock was released");
}

fn an_unreachable_server_is_retried_with_backoff_then_reported(driver: Driver) {
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
    let started = Instant::now();
    match driver.connect(&options) {
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

fn sslmode_require_refuses_a_server_without_tls_and_prefer_falls_back(driver: Driver) {
    let server = cdc_testkit::shared();
    let db = database("apply_tls", driver);
    let options = |sslmode| ConnectOptions {
        sslmode,
        retry_for: Duration::from_millis(500),
        ..plain_options(server, &db)
    };
    // The harness's server has no certificate: `require` must not silently go plain.
    let refused = driver.connect(&options(SslMode::Require));
    assert!(
        matches!(refused, Err(ApplyError::Connect { .. })),
        "require connected without TLS"
    );
    let mut session = driver
        .connect(&options(SslMode::Prefer))
        .expect("prefer falls back to plain");
    assert_eq!(session.value::<i32>("SELECT 1"), 1);
}
