//! The engine's conversations scripted without a server: what it sends, in which order, and what the answers make of it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cdc_core::checksum::{assemble, split_migration};
use cdc_core::history::history_ddl;
use cdc_core::{FileCategory, MigrationFile, Migrations};

use super::history::expected_digest;
use super::{Action, ApplyRun, Cleanup, Command, Param, Protocol, Rows};
use crate::plan::{lock_key, ApplyEvent, Outcome};
use crate::{ApplyError, Migrator};

const SINK: &str = "sink_test.unit";

fn file(path: &str, body: &str) -> MigrationFile {
    let contents = assemble("-- test file\n", body);
    MigrationFile {
        path: path.to_string().into(),
        category: FileCategory::of_path(path),
        checksum: split_migration(&contents).expect("checksum line").embedded,
        contents: contents.into(),
    }
}

fn migrations() -> Migrations {
    Migrations::from_parts(
        SINK.to_string(),
        Vec::new(),
        vec![
            file(
                "00-infrastructure/01-create-schemas.sql",
                "CREATE SCHEMA IF NOT EXISTS s;\n",
            ),
            file(
                "01-tables/A.sql",
                "CREATE TABLE s.a (x int);\nCREATE INDEX ON s.a (x);\n",
            ),
        ],
    )
}

fn rows(values: &[&[&str]]) -> Rows {
    values
        .iter()
        .map(|row| row.iter().map(|v| Some(v.to_string())).collect())
        .collect()
}

/// Polls and expects a command.
fn next_command(run: &mut ApplyRun<'_>, now: Instant) -> Command {
    match run.poll(now) {
        Action::Run(command) => command,
        other => panic!("expected a command, got {other:?}"),
    }
}

fn simple_text(command: &Command) -> String {
    match command {
        Command::Simple(sql) => sql.to_string(),
        other => panic!("expected a simple-protocol batch, got {other:?}"),
    }
}

/// Polls, expects a command with no value spliced into it, and answers it.
fn answer(run: &mut ApplyRun<'_>, now: Instant, reply: Rows) -> Command {
    let command = next_command(run, now);
    if let Command::Simple(sql) = &command {
        assert!(
            !sql.contains(SINK),
            "the sink is never spliced into SQL: {sql}"
        );
    }
    run.complete(Ok(reply), now);
    command
}

#[test]
fn a_boot_with_everything_applied_is_one_command() {
    let migrations = migrations();
    let migrator = Migrator::new(&migrations);
    let now = Instant::now();
    let mut run = ApplyRun::new(&migrator, now);
    let batch = simple_text(&next_command(&mut run, now));
    assert!(batch.starts_with("BEGIN READ ONLY; SET LOCAL statement_timeout = 600000"));
    assert!(
        batch.contains("GROUP BY sink") && batch.ends_with("COMMIT"),
        "{batch}"
    );
    assert!(
        !batch.contains(SINK),
        "the sink is never spliced into SQL: {batch}"
    );
    let (count, digest) = expected_digest(&migrations);
    run.complete(
        Ok(rows(&[&["legacy:s", "3", "00"], &[SINK, &count, &digest]])),
        now,
    );
    assert_eq!(run.poll(now), Action::Finished);
    assert_eq!(run.cleanup(), Cleanup::default());
    let report = run.finish().expect("report");
    assert_eq!(report.count(Outcome::Skipped), 2);
}

#[test]
fn a_fresh_database_gets_each_file_with_its_history_row_in_one_transaction() {
    let migrations = migrations();
    let events = Mutex::new(Vec::new());
    let migrator = Migrator::new(&migrations).on_event(|event| {
        if let ApplyEvent::Applying { path, index, total } = event {
            events
                .lock()
                .expect("events")
                .push(format!("{index}/{total} {path}"));
        }
    });
    let now = Instant::now();
    let mut run = ApplyRun::new(&migrator, now);
    // Fast path: no row for the sink; the history is read, empty.
    answer(&mut run, now, rows(&[]));
    assert!(simple_text(&answer(&mut run, now, rows(&[]))).starts_with("BEGIN READ ONLY"));
    let read = answer(&mut run, now, rows(&[]));
    assert!(
        matches!(&read, Command::Bound { sql, params } if sql.contains("WHERE sink = $1") && params == &[Param::Text(SINK.into())]),
        "{read:?}"
    );
    answer(&mut run, now, rows(&[]));
    // The lock, then the history table, then the history again under the lock.
    let key = lock_key(SINK);
    assert_eq!(
        answer(&mut run, now, rows(&[&["t"]])),
        Command::Bound {
            sql: "SELECT pg_try_advisory_lock($1)",
            params: vec![Param::BigInt(key)]
        }
    );
    assert_eq!(run.cleanup().unlock, Some(key));
    assert!(simple_text(&answer(&mut run, now, rows(&[]))).ends_with(history_ddl()));
    for _ in 0..4 {
        answer(&mut run, now, rows(&[]));
    }
    // The first file: BEGIN with asynchronous commit, its statement, its row.
    let begin = simple_text(&answer(&mut run, now, rows(&[])));
    assert!(begin.starts_with("BEGIN; SET LOCAL") && begin.contains("synchronous_commit = off"));
    assert_eq!(
        run.cleanup(),
        Cleanup {
            rollback: true,
            unlock: Some(key)
        }
    );
    assert!(simple_text(&answer(&mut run, now, rows(&[]))).starts_with("CREATE SCHEMA"));
    match answer(&mut run, now, rows(&[])) {
        Command::Bound { sql, params } => {
            assert!(sql.starts_with("INSERT INTO \"cdc_management\".\"migration_history\""));
            assert_eq!(
                params[..4],
                [
                    Param::Text(SINK.into()),
                    Param::Text("00-infrastructure/01-create-schemas.sql".into()),
                    Param::Text(migrations.files()[0].checksum.to_string()),
                    Param::Text("infrastructure".into()),
                ]
            );
        }
        other => panic!("expected the history row, got {other:?}"),
    }
    assert_eq!(simple_text(&answer(&mut run, now, rows(&[]))), "COMMIT");
    // The last file commits synchronously; each statement goes alone.
    let begin = simple_text(&answer(&mut run, now, rows(&[])));
    assert!(begin.contains("synchronous_commit = on"), "{begin}");
    assert!(simple_text(&answer(&mut run, now, rows(&[]))).contains("CREATE TABLE"));
    assert!(simple_text(&answer(&mut run, now, rows(&[]))).contains("CREATE INDEX"));
    answer(&mut run, now, rows(&[]));
    answer(&mut run, now, rows(&[]));
    assert_eq!(
        answer(&mut run, now, rows(&[&["t"]])),
        super::unlock(key),
        "the lock is released last"
    );
    assert_eq!(run.poll(now), Action::Finished);
    assert_eq!(run.cleanup(), Cleanup::default());
    let report = run.finish().expect("report");
    assert_eq!(report.count(Outcome::New), 2);
    assert_eq!(
        *events.lock().expect("events"),
        [
            "1/2 00-infrastructure/01-create-schemas.sql",
            "2/2 01-tables/A.sql"
        ]
    );
}

#[test]
fn a_refused_lock_is_retried_after_growing_pauses_then_given_up() {
    let migrations = migrations();
    let waits = Mutex::new(0);
    let migrator = Migrator::new(&migrations)
        .lock_wait(Duration::from_millis(50))
        .on_event(|event| {
            if event == ApplyEvent::WaitingForLock {
                *waits.lock().expect("waits") += 1;
            }
        });
    let mut now = Instant::now();
    let mut run = ApplyRun::new(&migrator, now);
    for _ in 0..4 {
        next_command(&mut run, now);
        run.complete(Ok(rows(&[])), now);
    }
    let mut pauses = Vec::new();
    loop {
        match run.poll(now) {
            Action::Run(Command::Bound { sql, .. }) if sql.contains("pg_try_advisory_lock") => {
                run.complete(Ok(rows(&[&["f"]])), now);
            }
            Action::Sleep(pause) => {
                pauses.push(pause.as_millis());
                now += pause;
            }
            Action::Finished => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pauses, [20, 30]);
    assert_eq!(*waits.lock().expect("waits"), 1, "announced once");
    assert_eq!(run.cleanup(), Cleanup::default());
    match run.finish() {
        Err(ApplyError::LockTimeout { sink, waited }) => {
            assert_eq!(sink, SINK);
            assert_eq!(waited, Duration::from_millis(50));
        }
        other => panic!("expected a lock timeout, got {other:?}"),
    }
}

#[test]
fn a_tampered_file_stops_the_run_before_anything_is_sent() {
    let migrations = migrations();
    let mut files = migrations.files().to_vec();
    files[1].contents = files[1].contents.replace("x int", "x bigint").into();
    let tampered = Migrations::from_parts(SINK.to_string(), Vec::new(), files);
    let migrator = Migrator::new(&tampered);
    let now = Instant::now();
    let mut run = ApplyRun::new(&migrator, now);
    assert_eq!(run.poll(now), Action::Finished);
    assert!(
        matches!(run.finish(), Err(ApplyError::Tampered { file, .. }) if file == "01-tables/A.sql")
    );
}

#[test]
fn the_async_run_can_be_spawned() {
    // Compiles only while the future of an async run is Send (tokio::spawn needs it).
    fn spawnable<'a>(
        migrator: &'a Migrator<'_>,
        client: &'a mut tokio_postgres::Client,
    ) -> impl std::future::Future<Output = Result<crate::ApplyReport, ApplyError>> + Send + 'a {
        migrator.apply_async(client)
    }
    let _ = spawnable;
}
