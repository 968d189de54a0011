//! pg_cron scheduling of the merge orchestrator (DESIGN.md §7): where the
//! extension is installed, applying `02-cdc-management.sql` schedules
//! `CALL run_pending_merges()` once, by job name, however often it is applied.

use std::path::Path;
use std::process::Command;

use cdc_testkit::fixture::{self, DIRECTORY};

fn pg_cron_installed() -> bool {
    let libdir = Command::new("pg_config")
        .arg("--pkglibdir")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "/usr/lib/postgresql/15/lib".to_string());
    Path::new(&libdir).join("pg_cron.so").is_file()
        || Path::new("/usr/lib/postgresql/15/lib/pg_cron.so").is_file()
}

#[test]
fn the_orchestrator_is_scheduled_once_by_job_name() {
    if !pg_cron_installed() {
        // .ci/run installs the package, so in CI a missing pg_cron is a broken setup, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "pg_cron is not installed although CI is set: .ci/run must install postgresql-15-cron"
        );
        eprintln!(
            "skipped: pg_cron is not installed (apt-get install postgresql-15-cron; .ci/run does)"
        );
        return;
    }
    let server = cdc_testkit::PgServer::start_with(&[
        ("shared_preload_libraries", "pg_cron"),
        ("cron.database_name", "cron_db"),
    ])
    .expect("server with pg_cron");
    server
        .client("postgres")
        .batch_execute("CREATE DATABASE cron_db")
        .expect("create database");
    let mut client = server.client("cron_db");
    client
        .batch_execute("CREATE EXTENSION pg_cron")
        .expect("extension");

    let sink = fixture::sink(DIRECTORY);
    fixture::apply_sink(&mut client, sink);
    let management = "00-infrastructure/02-cdc-management.sql";
    fixture::apply_file(&mut client, sink, management).expect("re-apply is idempotent");
    fixture::apply_file(&mut client, sink, management).expect("re-apply is idempotent");

    let jobs = client
        .query(
            "SELECT schedule, command FROM cron.job WHERE jobname = 'cdc_trigger_pending_merges'",
            &[],
        )
        .expect("cron.job");
    assert_eq!(jobs.len(), 1, "scheduled once by job name");
    assert_eq!(jobs[0].get::<_, String>(0), "* * * * *");
    assert_eq!(
        jobs[0].get::<_, String>(1),
        r#"CALL "cdc_management"."run_pending_merges"()"#,
        "the committing orchestrator, called outside a transaction block"
    );
    // The scheduled command runs as written (a CALL that commits per batch).
    let command: String = jobs[0].get(1);
    client
        .batch_execute(&command)
        .expect("the job's command runs");
}
