//! End-to-end tests of `cdc manage-migrations diff` on copies of the bundled example whose YAML is edited.

mod common;

use common::{example_project, repo_root, text};

use std::path::Path;
use std::process::{Command, Output};

/// Runs `cdc manage-migrations diff` with `args`.
fn cdc(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["manage-migrations", "diff"];
    all.extend_from_slice(args);
    common::cdc(dir, &all)
}

/// Replaces `from` (which must be there) by `to` in a project file.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.contains(from), "{file} lacks {from:?}");
    std::fs::write(&path, content.replacen(from, to, 1)).unwrap();
}

const INVOICE: &str = "services/_schemas/billing/sales/Invoice.yaml";
const INVOICE_LINE: &str = "services/_schemas/billing/sales/InvoiceLine.yaml";

/// The JSON report's changes as (sink, table, kind, column, severity, action).
fn json_changes(out: &Output) -> Vec<(String, String, String, String, String, String)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let mut changes = Vec::new();
    for sink in report["sinks"].as_array().unwrap() {
        for table in sink["tables"].as_array().unwrap() {
            for change in table["changes"].as_array().unwrap() {
                changes.push((
                    field(sink, "sink"),
                    field(table, "table"),
                    field(change, "kind"),
                    field(change, "column"),
                    field(change, "severity"),
                    field(change, "action"),
                ));
            }
        }
    }
    changes
}

/// Runs diff as JSON on an edited Invoice and returns (kind, column, severity, action).
fn invoice_changes(dir: &Path) -> Vec<(String, String, String, String)> {
    let out = cdc(dir, &["--format", "json", "--table", "Invoice"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    json_changes(&out)
        .into_iter()
        .map(|(sink, table, kind, column, severity, action)| {
            assert_eq!(
                (sink.as_str(), table.as_str()),
                ("sink_asma.billing", "Invoice")
            );
            (kind, column, severity, action)
        })
        .collect()
}

fn change(
    kind: &str,
    column: &str,
    severity: &str,
    action: &str,
) -> (String, String, String, String) {
    (kind.into(), column.into(), severity.into(), action.into())
}

#[test]
fn no_change_exits_0_in_text_and_json() {
    let out = cdc(&repo_root(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "no changes: the generated table files match the YAML\n"
    );
    let out = cdc(&repo_root(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, serde_json::json!({"sinks": []}));
    let elsewhere = tempfile::tempdir().unwrap();
    let root = repo_root();
    let out = cdc(elsewhere.path(), &["--project-dir", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cdc(elsewhere.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no project found"));
}

#[test]
fn an_added_column_is_info_and_automatic() {
    let dir = example_project(true);
    let yaml = std::fs::read_to_string(dir.path().join(INVOICE)).unwrap();
    std::fs::write(
        dir.path().join(INVOICE),
        yaml + "  - {name: Note, type: nvarchar(100), nullable: true}\n",
    )
    .unwrap();
    assert_eq!(
        invoice_changes(dir.path()),
        vec![change("COLUMN_ADDED", "Note", "info", "automatic")]
    );
    let out = cdc(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "sink_asma.billing\n  Invoice (01-tables/Invoice.sql)\n    info     COLUMN_ADDED \"Note\": character varying(100); apply: automatic (apply adds the column)\n1 change(s) in 1 table(s): 0 breaking, 0 warning, 1 info\n"
    );
}

#[test]
fn a_widening_is_a_warning_applied_automatically() {
    let dir = example_project(true);
    edit(dir.path(), INVOICE, "varchar(20)", "varchar(40)");
    assert_eq!(
        invoice_changes(dir.path()),
        vec![change(
            "COLUMN_TYPE_CHANGED",
            "Number",
            "warning",
            "automatic"
        )]
    );
    let out = cdc(dir.path(), &[]);
    assert!(text(&out.stdout).contains(
        "    warning  COLUMN_TYPE_CHANGED \"Number\": character varying(20) -> character varying(40); apply: automatic"
    ));
}

#[test]
fn a_narrowing_is_breaking_and_refused() {
    let dir = example_project(true);
    edit(dir.path(), INVOICE, "decimal(19,4)", "decimal(10,2)");
    assert_eq!(
        invoice_changes(dir.path()),
        vec![change(
            "COLUMN_TYPE_CHANGED",
            "Amount",
            "breaking",
            "refused"
        )]
    );
    let out = cdc(dir.path(), &[]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("    breaking COLUMN_TYPE_CHANGED \"Amount\": numeric(19,4) -> numeric(10,2); apply: refused ("));
    assert!(stdout.ends_with("1 change(s) in 1 table(s): 1 breaking, 0 warning, 0 info\n"));
}

#[test]
fn a_dropped_column_is_breaking_and_refused() {
    let dir = example_project(true);
    edit(
        dir.path(),
        INVOICE,
        "  - {name: Paid, type: bit, nullable: false, default_value: ((0))}\n",
        "",
    );
    assert_eq!(
        invoice_changes(dir.path()),
        vec![change("COLUMN_REMOVED", "Paid", "breaking", "refused")]
    );
}

#[test]
fn nullability_relaxed_is_automatic_and_default_changed_is_not_applied() {
    let dir = example_project(true);
    edit(
        dir.path(),
        INVOICE,
        "{name: Number, type: varchar(20), nullable: false}",
        "{name: Number, type: varchar(20), nullable: true}",
    );
    edit(
        dir.path(),
        INVOICE,
        "default_value: ((0))",
        "default_value: ((1))",
    );
    assert_eq!(
        invoice_changes(dir.path()),
        vec![
            change("NULLABILITY_CHANGED", "Number", "info", "automatic"),
            change("DEFAULT_CHANGED", "Paid", "warning", "not_applied"),
        ]
    );
}

#[test]
fn a_changed_key_is_breaking_and_refused() {
    let dir = example_project(true);
    edit(
        dir.path(),
        INVOICE_LINE,
        "primary_key: [InvoiceId, LineNo]",
        "primary_key: [LineNo, InvoiceId]",
    );
    let out = cdc(
        dir.path(),
        &["--format", "json", "--sink", "sink_asma.billing"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let change = &report["sinks"][0]["tables"][0]["changes"][0];
    assert_eq!(report["sinks"][0]["tables"][0]["table"], "InvoiceLine");
    assert_eq!(change["kind"], "PRIMARY_KEY_CHANGED");
    assert_eq!(change["from"], "(InvoiceId, LineNo)");
    assert_eq!(change["to"], "(LineNo, InvoiceId)");
    assert_eq!(change["severity"], "breaking");
    assert_eq!(change["action"], "refused");
}

#[test]
fn an_added_and_a_removed_table() {
    let dir = example_project(true);
    edit(
        dir.path(),
        "services/directory.yaml",
        "        directory.select:",
        "        directory.Chosen:",
    );
    let out = cdc(dir.path(), &["--format", "json", "--service", "directory"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let sink = "sink_asma.directory".to_string();
    assert_eq!(
        json_changes(&out),
        vec![
            (
                sink.clone(),
                "Chosen".into(),
                "TABLE_ADDED".into(),
                String::new(),
                "info".into(),
                "automatic".into()
            ),
            (
                sink,
                "select".into(),
                "TABLE_REMOVED".into(),
                String::new(),
                "warning".into(),
                "not_applied".into()
            ),
        ]
    );
    // The removed table can be asked for by name; the other sink has no change.
    let out = cdc(dir.path(), &["--table", "select"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(
        "  select (01-tables/select.sql)\n    warning  TABLE_REMOVED; apply: not applied ("
    ));
    let out = cdc(dir.path(), &["--service", "billing"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn errors_exit_2() {
    let out = cdc(&repo_root(), &["--table", "NoSuchTable"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no sink table named `NoSuchTable`"));
    let dir = example_project(true);
    std::fs::write(
        dir.path()
            .join("migrations/sink_asma.billing/01-tables/Invoice.sql"),
        "CREATE TABLE \"billing\".\"Invoice\" (\"InvoiceId\" bigint",
    )
    .unwrap();
    let out = cdc(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("01-tables/Invoice.sql: cannot read the table it declares"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_first_broken_file_in_table_order_is_the_one_reported() {
    let dir = example_project(true);
    let tables = dir.path().join("migrations/sink_asma.directory/01-tables");
    for table in ["Actor", "AllTypes", "Order Details", "select"] {
        std::fs::write(
            tables.join(format!("{table}.sql")),
            format!("CREATE TABLE \"directory\".\"{table}\" (\"Id\" bigint"),
        )
        .unwrap();
    }
    // Files are read on several threads; the report is the same every time.
    for _ in 0..5 {
        let out = cdc(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("01-tables/Actor.sql: cannot read the table it declares"),
            "{stderr}"
        );
        assert!(!stderr.contains("select.sql"), "{stderr}");
    }
}

/// Runs a `cdc manage-migrations` command with `dev` pointing at the shared test server.
fn cdc_on_server(dir: &Path, args: &[&str]) -> Output {
    let server = cdc_testkit::shared();
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("manage-migrations")
        .args(args)
        .current_dir(dir)
        .env("PG_DEV_HOST", server.host())
        .env("PG_DEV_PORT", server.port().to_string())
        .env("PG_DEV_USER", server.user())
        .env("PG_DEV_SSLMODE", "disable")
        .env_remove("PG_HOST")
        .env_remove("PG_PORT")
        .env_remove("RUST_LOG")
        .output()
        .expect("run cdc")
}

const ACTOR: &str = "services/_schemas/directory/dbo/Actor.yaml";
const DIRECTORY_SINK: &str = "sink_asma.directory";

/// What `diff` says of a change agrees with what `apply` then does on a real
/// PostgreSQL: a widening reported automatic is applied, a narrowing
/// reported refused is refused by generate until `--allow-breaking` writes it.
#[test]
fn diff_and_apply_agree_on_a_real_postgresql() {
    let server = cdc_testkit::shared();
    let db = server.create_database("cli_diff_apply");
    let dir = example_project(true);
    let dir = dir.path();
    edit(
        dir,
        "services/directory.yaml",
        "dev: directory_dev",
        &format!("dev: \"{db}\""),
    );
    let apply = [
        "apply",
        "--env",
        "dev",
        "--sink",
        DIRECTORY_SINK,
        "--format",
        "json",
    ];
    let generated = cdc_on_server(dir, &["generate"]);
    assert_eq!(
        generated.status.code(),
        Some(0),
        "{}",
        text(&generated.stderr)
    );
    let applied = cdc_on_server(dir, &apply);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stdout));
    let mut client = server.client(&db);
    client
        .batch_execute(r#"INSERT INTO directory."Actor" ("_customer_id", "actno", "Navn", "Email", "CreatedAt") VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'one', 'one@example.invalid', now())"#)
        .unwrap();
    let email_type = |client: &mut postgres::Client| -> String {
        client
            .query_one(
                r#"SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'directory."Actor"'::regclass AND attname = 'Email'"#,
                &[],
            )
            .unwrap()
            .get(0)
    };

    // Widening: diff says automatic, apply does it and keeps the row.
    edit(dir, ACTOR, "type: varchar(255)", "type: varchar(300)");
    assert_eq!(
        diff_changes(dir, "Actor"),
        vec![change(
            "COLUMN_TYPE_CHANGED",
            "Email",
            "warning",
            "automatic"
        )]
    );
    assert_eq!(cdc_on_server(dir, &["generate"]).status.code(), Some(0));
    let applied = cdc_on_server(dir, &apply);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stdout));
    assert_eq!(email_type(&mut client), "character varying(300)");
    let rows: i64 = client
        .query_one(r#"SELECT count(*) FROM directory."Actor""#, &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    assert_eq!(cdc(dir, &[]).status.code(), Some(0));

    // Narrowing: diff says refused, apply refuses with 55000 and changes nothing.
    edit(dir, ACTOR, "type: varchar(300)", "type: varchar(100)");
    assert_eq!(
        diff_changes(dir, "Actor"),
        vec![change(
            "COLUMN_TYPE_CHANGED",
            "Email",
            "breaking",
            "refused"
        )]
    );
    // generate refuses it too (issue 10: breaking changes only on purpose),
    // so apply has nothing new and the column stays as it was.
    let generated = cdc_on_server(dir, &["generate"]);
    assert_eq!(generated.status.code(), Some(1));
    assert!(
        text(&generated.stderr).contains("cdc manage-migrations generate --allow-breaking"),
        "{}",
        text(&generated.stderr)
    );
    let applied = cdc_on_server(dir, &apply);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stdout));
    assert_eq!(email_type(&mut client), "character varying(300)");
    // Made on purpose, the narrowing is applied and the row kept. (Apply
    // refusing a narrowed table file with 55000 is in evolution_cli.rs.)
    let generated = cdc_on_server(dir, &["generate", "--allow-breaking"]);
    assert_eq!(
        generated.status.code(),
        Some(0),
        "{}",
        text(&generated.stderr)
    );
    let applied = cdc_on_server(dir, &apply);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stdout));
    assert_eq!(email_type(&mut client), "character varying(100)");
    assert_eq!(cdc(dir, &[]).status.code(), Some(0));
}

/// Runs diff as JSON for one table of the directory sink: (kind, column, severity, action).
fn diff_changes(dir: &Path, table: &str) -> Vec<(String, String, String, String)> {
    let out = cdc(dir, &["--format", "json", "--table", table]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    json_changes(&out)
        .into_iter()
        .map(|(sink, found, kind, column, severity, action)| {
            assert_eq!((sink.as_str(), found.as_str()), (DIRECTORY_SINK, table));
            (kind, column, severity, action)
        })
        .collect()
}
