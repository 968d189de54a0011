//! End-to-end tests of `cdc manage-migrations diff --env` against a real PostgreSQL: the example applied is clean, hand-made drift is found.

mod common;

use common::{example_project, text};

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

/// Replaces `from` (which must be there) by `to` in a project file.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.contains(from), "{file} lacks {from:?}");
    std::fs::write(&path, content.replacen(from, to, 1)).unwrap();
}

/// Runs `cdc` in `dir` with `dev` pointing at the shared test server.
fn cdc(dir: &Path, args: &[&str]) -> Output {
    let server = cdc_testkit::shared();
    std::process::Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(args)
        .current_dir(dir)
        .env("PG_DEV_HOST", server.host())
        .env("PG_DEV_PORT", server.port().to_string())
        .env("PG_DEV_USER", server.user())
        .env("PG_DEV_SSLMODE", "disable")
        .env_remove("PG_HOST")
        .env_remove("PG_PORT")
        .env_remove("RUST_LOG")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run cdc")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A copy of the example whose `dev` databases are fresh ones, generated and
/// applied with `cdc`; returns the project and the two databases.
fn applied_example() -> (tempfile::TempDir, String, String) {
    let server = cdc_testkit::shared();
    let directory = server.create_database("live_directory");
    let billing = server.create_database("live_billing");
    let dir = example_project(false);
    edit(
        dir.path(),
        "services/directory.yaml",
        "dev: directory_dev",
        &format!("dev: {directory}"),
    );
    edit(
        dir.path(),
        "sink-groups.yaml",
        "database: billing_dev",
        &format!("database: {billing}"),
    );
    ok(&cdc(dir.path(), &["manage-migrations", "generate"]));
    for sink in ["sink_asma.directory", "sink_asma.billing"] {
        ok(&cdc(
            dir.path(),
            &["manage-migrations", "apply", "--env", "dev", "--sink", sink],
        ));
    }
    (dir, directory, billing)
}

fn live_diff(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["manage-migrations", "diff", "--env", "dev"];
    all.extend_from_slice(args);
    cdc(dir, &all)
}

/// The JSON report's changes as (sink, table, kind, column, severity).
fn json_changes(out: &Output) -> BTreeSet<(String, String, String, String, String)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["against"], serde_json::json!({"database": "dev"}));
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut out = BTreeSet::new();
    for sink in report["sinks"].as_array().unwrap() {
        for table in sink["tables"].as_array().unwrap() {
            for change in table["changes"].as_array().unwrap() {
                out.insert((
                    field(sink, "sink"),
                    field(table, "table"),
                    field(change, "kind"),
                    field(change, "column"),
                    field(change, "severity"),
                ));
            }
        }
    }
    out
}

fn row(sink: &str, table: &str, kind: &str, column: &str, severity: &str) -> [String; 5] {
    [sink, table, kind, column, severity].map(String::from)
}

#[test]
fn the_applied_example_is_clean_and_hand_made_drift_is_found() {
    let (dir, directory, billing) = applied_example();
    let dir = dir.path();

    let clean = live_diff(dir, &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    assert!(
        text(&clean.stdout).contains("no changes: the database of `dev` matches the YAML"),
        "{}",
        text(&clean.stdout)
    );
    let clean = live_diff(dir, &["--format", "json"]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!(json_changes(&clean), BTreeSet::new());

    let server = cdc_testkit::shared();
    server
        .client(&billing)
        .batch_execute(
            r#"
            ALTER TABLE billing."Invoice" ADD COLUMN "Extra" text;
            ALTER TABLE billing."Invoice" ALTER COLUMN "Number" TYPE text;
            ALTER TABLE billing."Invoice" ALTER COLUMN "CustomerId" DROP NOT NULL;
            DROP TRIGGER cdc_mark_for_merge ON billing."stg_Invoice";
            DROP FUNCTION billing."sp_merge_Invoice";
            ALTER TABLE billing."InvoiceLine" DROP CONSTRAINT "InvoiceLine_pkey";
            "#,
        )
        .unwrap();
    server
        .client(&directory)
        .batch_execute(
            r#"
            DROP TABLE directory."stg_Actor";
            DROP TABLE directory."select";
            "#,
        )
        .unwrap();

    let b = "sink_asma.billing";
    let d = "sink_asma.directory";
    let expected: BTreeSet<(String, String, String, String, String)> = [
        row(b, "Invoice", "COLUMN_REMOVED", "Extra", "breaking"),
        row(b, "Invoice", "COLUMN_TYPE_CHANGED", "Number", "breaking"),
        row(
            b,
            "Invoice",
            "NULLABILITY_CHANGED",
            "CustomerId",
            "breaking",
        ),
        row(b, "Invoice", "STAGING_TRIGGER_MISSING", "", "breaking"),
        row(b, "Invoice", "MERGE_FUNCTION_MISSING", "", "breaking"),
        row(b, "InvoiceLine", "PRIMARY_KEY_CHANGED", "", "breaking"),
        row(d, "Actor", "STAGING_TABLE_MISSING", "", "breaking"),
        row(d, "select", "TABLE_MISSING", "", "breaking"),
    ]
    .into_iter()
    .map(|[s, t, k, c, v]| (s, t, k, c, v))
    .collect();
    let drift = live_diff(dir, &["--format", "json"]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift.stderr));
    assert_eq!(json_changes(&drift), expected);

    let drift = live_diff(dir, &[]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift.stderr));
    let out = text(&drift.stdout);
    for line in [
        "breaking COLUMN_REMOVED \"Extra\": was text",
        "breaking COLUMN_TYPE_CHANGED \"Number\": text -> character varying(20)",
        "breaking NULLABILITY_CHANGED \"CustomerId\": NULL -> NOT NULL",
        "breaking STAGING_TRIGGER_MISSING: cdc_mark_for_merge",
        "breaking MERGE_FUNCTION_MISSING: sp_merge_Invoice",
        "breaking PRIMARY_KEY_CHANGED: () -> (InvoiceId, LineNo)",
        "breaking STAGING_TABLE_MISSING: stg_Actor",
        "breaking TABLE_MISSING",
        "8 change(s) in 4 table(s): 8 breaking, 0 warning, 0 info",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }

    // The filters apply: one sink, one table.
    let one = live_diff(dir, &["--format", "json", "--sink", d, "--table", "Actor"]);
    assert_eq!(one.status.code(), Some(1), "{}", text(&one.stderr));
    let only_actor: BTreeSet<_> = expected
        .iter()
        .filter(|c| c.1 == "Actor")
        .cloned()
        .collect();
    assert_eq!(json_changes(&one), only_actor);
    let clean = live_diff(dir, &["--table", "AllTypes"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
}

#[test]
fn an_unknown_environment_or_server_is_an_error() {
    let (dir, _, _) = applied_example();
    let out = live_diff(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = cdc(
        dir.path(),
        &["manage-migrations", "diff", "--env", "nowhere"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("environment `nowhere` has no database"),
        "{}",
        text(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args([
            "manage-migrations",
            "diff",
            "--env",
            "dev",
            "--connect-retry",
            "0",
        ])
        .current_dir(dir.path())
        .env("PG_DEV_HOST", "127.0.0.1")
        .env("PG_DEV_PORT", "1")
        .env("PG_DEV_USER", "postgres")
        .env("PG_DEV_SSLMODE", "disable")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot connect"),
        "{}",
        text(&out.stderr)
    );
}
