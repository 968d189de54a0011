//! Schema evolution end to end on a real PostgreSQL: renames, breaking changes made on purpose with `generate --allow-breaking`, and staging tables that follow.
//!
//! Each test: generate → apply → stage and merge rows → change the YAML →
//! diff (kinds, text and JSON) → generate (refused without the flag where the
//! change is breaking) → apply → the live tables equal the YAML, the rows are
//! kept and merging still works.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use cdc_build::{load_project, Filter, SinkTable};
use cdc_core::checksum::split_migration;
use cdc_core::layout::{breaking_file, MANIFEST_FILE, MIGRATIONS_DIR};
use cdc_testkit::merge::merge;
use common::{example_project, snapshot, text};

const BILLING: &str = "sink_asma.billing";
const INVOICE: &str = "services/_schemas/billing/sales/Invoice.yaml";
const INVOICE_LINE: &str = "services/_schemas/billing/sales/InvoiceLine.yaml";

/// A copy of the example whose billing sink is applied to a fresh database, with two invoices merged.
struct Project {
    dir: tempfile::TempDir,
    client: postgres::Client,
}

impl Project {
    fn new(prefix: &str) -> Project {
        let server = cdc_testkit::shared();
        let db = server.create_database(prefix);
        let dir = example_project(true);
        edit(
            dir.path(),
            "sink-groups.yaml",
            "database: billing_dev",
            &format!("database: \"{db}\""),
        );
        let mut project = Project {
            client: server.client(&db),
            dir,
        };
        project.ok(&["generate"]);
        project.apply_ok();
        project.sql(
            r#"INSERT INTO billing."stg_Invoice" ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
               VALUES (1, '00000000-0000-0000-0000-000000000001', 'N-1', 12.5, '2026-01-01T00:00:00Z', false, 'c', 100, 1),
                      (2, '00000000-0000-0000-0000-000000000002', 'N-2', 7.25, '2026-01-02T00:00:00Z', true, 'c', 101, 2)"#,
        );
        assert_eq!(
            merge(&mut project.client, "billing", "Invoice"),
            (2, 2, 0, 0)
        );
        project
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cdc manage-migrations <args>` with `dev` pointing at the shared server.
    fn run(&self, args: &[&str]) -> Output {
        let server = cdc_testkit::shared();
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .arg("manage-migrations")
            .args(args)
            .current_dir(self.path())
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

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    fn apply(&self) -> Output {
        self.run(&["apply", "--env", "dev", "--sink", BILLING])
    }

    fn apply_ok(&self) {
        let out = self.apply();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    fn sql(&mut self, sql: &str) {
        self.client
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", cdc_testkit::fixture::describe_error(&e)));
    }

    fn strings(&mut self, sql: &str) -> Vec<String> {
        self.client
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// `(kind, column, severity, action)` of every change `diff --format json` reports for `table`.
    fn diff(&self, table: &str) -> Vec<(String, String, String, String)> {
        let out = self.run(&["diff", "--format", "json", "--table", table]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
        let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
        let mut changes = Vec::new();
        for sink in report["sinks"].as_array().unwrap() {
            for t in sink["tables"].as_array().unwrap() {
                for c in t["changes"].as_array().unwrap() {
                    changes.push((
                        field(c, "kind"),
                        field(c, "column"),
                        field(c, "severity"),
                        field(c, "action"),
                    ));
                }
            }
        }
        let expected = if changes.is_empty() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stderr));
        changes
    }

    /// The table as the YAML now describes it.
    fn yaml_table(&self, name: &str) -> SinkTable {
        let project = load_project(self.path(), &Filter::default()).expect("load");
        let table = project
            .sinks()
            .flat_map(|s| s.tables.iter())
            .find(|t| t.target_table == name)
            .expect("table")
            .clone();
        table
    }

    /// `(name, format_type, NOT NULL)` of the live columns of `billing.<table>`, in order.
    fn live_columns(&mut self, table: &str) -> Vec<(String, String, bool)> {
        self.client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
                   FROM pg_attribute AS a
                  WHERE a.attrelid = to_regclass(format('%I.%I', 'billing', $1::text))
                    AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum",
                &[&table],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    fn live_key(&mut self, table: &str) -> Vec<String> {
        self.strings(&format!(
            r#"SELECT a.attname::text FROM pg_index AS i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = 'billing."{table}"'::regclass AND i.indisprimary ORDER BY k.ord"#
        ))
    }

    /// The live final and staging tables have the YAML's columns, types,
    /// nullability and key (the staging table: names and types, plus its
    /// two connector columns).
    fn assert_live_matches_yaml(&mut self, name: &str) {
        let table = self.yaml_table(name);
        let mut expected: Vec<(String, String, bool)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.pg_type.canonical(), c.not_null))
            .collect();
        let mut live = self.live_columns(name);
        expected.sort();
        live.sort();
        assert_eq!(live, expected, "final table {name}");
        assert_eq!(self.live_key(name), table.primary_key, "key of {name}");
        let mut staged: Vec<(String, String)> = table
            .columns
            .iter()
            .chain(cdc_build::columns::staging_extra_columns().iter())
            .map(|c| (c.name.clone(), c.pg_type.canonical()))
            .collect();
        let mut live: Vec<(String, String)> = self
            .live_columns(&table.names.staging)
            .into_iter()
            .map(|(n, t, _)| (n, t))
            .collect();
        staged.sort();
        live.sort();
        assert_eq!(live, staged, "staging table of {name}");
        assert!(self.diff(name).is_empty(), "the files match the YAML");
        // And the live database matches it too: the catalog diff is clean.
        let live_diff = self.run(&["diff", "--env", "dev", "--sink", BILLING, "--table", name]);
        assert_eq!(
            live_diff.status.code(),
            Some(0),
            "live diff of {name} after apply:\n{}{}",
            String::from_utf8_lossy(&live_diff.stdout),
            String::from_utf8_lossy(&live_diff.stderr)
        );
    }

    fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(MIGRATIONS_DIR).join(BILLING).join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn manifest_tables(&self) -> Vec<String> {
        self.file(MANIFEST_FILE)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- \"01-tables/"))
            .map(|l| format!("01-tables/{}", l.trim_end_matches('"')))
            .collect()
    }
}

/// Replaces `from` (which must be there) by `to` in a project file.
fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.contains(from), "{file} lacks {from:?}");
    std::fs::write(&path, content.replacen(from, to, 1)).unwrap();
}

fn change(
    kind: &str,
    column: &str,
    severity: &str,
    action: &str,
) -> (String, String, String, String) {
    (kind.into(), column.into(), severity.into(), action.into())
}

/// `generate` and `generate --check` refuse breaking changes, name them and
/// the command, and write nothing.
fn assert_refused(project: &Project, names: &[&str]) {
    let before = snapshot(&project.path().join(MIGRATIONS_DIR));
    for args in [
        &["generate"][..],
        &["generate", "--check"],
        &["generate", "--dry-run"],
    ] {
        let out = project.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("cdc manage-migrations generate --allow-breaking"),
            "{args:?}: {stderr}"
        );
        for name in names {
            assert!(
                stderr.contains(name),
                "{args:?} does not name {name}: {stderr}"
            );
        }
    }
    assert_eq!(
        snapshot(&project.path().join(MIGRATIONS_DIR)),
        before,
        "a refused generate wrote something"
    );
}

#[test]
fn a_rename_keeps_the_data_and_the_staging_table_follows_adds_and_widenings() {
    let mut p = Project::new("evo_rename");
    edit(
        p.path(),
        INVOICE,
        "{name: Number, type: varchar(20), nullable: false}",
        "{name: InvoiceNumber, type: varchar(30), nullable: false, renamed_from: Number}\n  - {name: Note, type: nvarchar(50), nullable: true}",
    );
    assert_eq!(
        p.diff("Invoice"),
        vec![
            change("COLUMN_RENAMED", "InvoiceNumber", "info", "automatic"),
            change(
                "COLUMN_TYPE_CHANGED",
                "InvoiceNumber",
                "warning",
                "automatic"
            ),
            change("COLUMN_ADDED", "Note", "info", "automatic"),
        ]
    );
    let shown = p.run(&["diff", "--table", "Invoice"]);
    assert!(
        text(&shown.stdout).contains("COLUMN_RENAMED \"InvoiceNumber\": Number -> InvoiceNumber"),
        "{}",
        text(&shown.stdout)
    );
    p.ok(&["generate"]);
    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
    assert_eq!(
        p.strings(r#"SELECT "InvoiceNumber" FROM billing."Invoice" ORDER BY "InvoiceId""#),
        ["N-1", "N-2"],
        "the renamed column kept its values"
    );
    // The table file again, by hand: the rename is guarded and does nothing twice.
    let body = p.file("01-tables/Invoice.sql");
    let body = split_migration(&body).unwrap().body.to_string();
    p.sql(&body);
    p.sql(&body);
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("InvoiceId", "CustomerId", "InvoiceNumber", "Note", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (2, '00000000-0000-0000-0000-000000000002', 'N-2-renumbered-to-thirty', 'late', 7.25, '2026-01-02T00:00:00Z', true, 'u', 200, 3)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        p.strings(r#"SELECT "InvoiceNumber" || '/' || coalesce("Note", '-') FROM billing."Invoice" ORDER BY "InvoiceId""#),
        ["N-1/-", "N-2-renumbered-to-thirty/late"]
    );
}

#[test]
fn a_narrowing_needs_allow_breaking_then_converts_the_rows_once() {
    let mut p = Project::new("evo_narrow");
    edit(p.path(), INVOICE, "type: varchar(20)", "type: varchar(12)");
    edit(
        p.path(),
        INVOICE,
        "type: \"decimal(19,4)\"",
        "type: \"decimal(10,2)\"",
    );
    let breaking = [
        change("COLUMN_TYPE_CHANGED", "Number", "breaking", "refused"),
        change("COLUMN_TYPE_CHANGED", "Amount", "breaking", "refused"),
    ];
    assert_eq!(p.diff("Invoice"), breaking);
    let shown = p.run(&["diff"]);
    assert_eq!(shown.status.code(), Some(1));
    assert!(
        text(&shown.stdout).contains("cdc manage-migrations generate --allow-breaking"),
        "{}",
        text(&shown.stdout)
    );
    assert_refused(
        &p,
        &["Invoice", "COLUMN_TYPE_CHANGED", "\"Number\"", "\"Amount\""],
    );

    let out = p.ok(&["generate", "--allow-breaking"]);
    let path = breaking_file("Invoice", 1);
    assert!(text(&out.stdout).contains(&path), "{}", text(&out.stdout));
    let written = p.file(&path);
    split_migration(&written)
        .unwrap()
        .verify()
        .expect("checksummed");
    assert!(
        written.contains(r#"ALTER COLUMN "Number" TYPE varchar(12) USING "Number"::varchar(12)"#),
        "{written}"
    );
    let tables = p.manifest_tables();
    let at = |f: &str| {
        tables
            .iter()
            .position(|t| t == f)
            .unwrap_or_else(|| panic!("{f} not in {tables:?}"))
    };
    assert_eq!(
        at(&path) + 1,
        at("01-tables/Invoice.sql"),
        "listed just before its table"
    );

    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
    assert_eq!(
        p.strings(
            r#"SELECT "Number" || ' ' || "Amount" FROM billing."Invoice" ORDER BY "InvoiceId""#
        ),
        ["N-1 12.50", "N-2 7.25"],
        "rows kept, converted"
    );
    // Later runs keep the file byte for byte; the database skips it.
    p.ok(&["generate"]);
    p.ok(&["generate", "--check"]);
    assert_eq!(p.file(&path), written);
    p.apply_ok();
    // Its body is guarded: running it again changes nothing.
    p.sql(split_migration(&written).unwrap().body);
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (3, '00000000-0000-0000-0000-000000000003', 'N-3', 1.5, '2026-01-03T00:00:00Z', false, 'c', 300, 4)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 1, 0, 0));

    // A second breaking change gets the next number; the first file stays.
    edit(p.path(), INVOICE, "type: varchar(12)", "type: varchar(8)");
    assert_refused(&p, &["\"Number\""]);
    p.ok(&["generate", "--allow-breaking"]);
    assert_eq!(p.file(&path), written);
    let second = breaking_file("Invoice", 2);
    let tables = p.manifest_tables();
    let at = |f: &str| tables.iter().position(|t| t == f).unwrap();
    assert!(
        at(&path) < at(&second) && at(&second) + 1 == at("01-tables/Invoice.sql"),
        "{tables:?}"
    );
    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
}

#[test]
fn a_narrowing_that_would_cut_values_stops_with_a_clear_error() {
    let mut p = Project::new("evo_cut");
    edit(p.path(), INVOICE, "type: varchar(20)", "type: varchar(2)");
    p.ok(&["generate", "--allow-breaking"]);
    let out = p.apply();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("holds values longer than 2 characters")
            && stderr.contains(&breaking_file("Invoice", 1)),
        "{stderr}"
    );
    assert_eq!(
        p.live_columns("Invoice")[2],
        (
            "Number".to_string(),
            "character varying(20)".to_string(),
            true
        ),
        "nothing changed"
    );
}

#[test]
fn a_dropped_column_and_a_new_primary_key_are_made_on_purpose() {
    let mut p = Project::new("evo_drop_key");
    edit(
        p.path(),
        INVOICE,
        "  - {name: Paid, type: bit, nullable: false, default_value: ((0))}\n",
        "",
    );
    edit(
        p.path(),
        INVOICE,
        "{name: Number, type: varchar(20), nullable: false}",
        "{name: Number, type: varchar(20), nullable: false, primary_key: true}",
    );
    assert_eq!(
        p.diff("Invoice"),
        vec![
            change("COLUMN_REMOVED", "Paid", "breaking", "refused"),
            change("PRIMARY_KEY_CHANGED", "", "breaking", "refused"),
        ]
    );
    assert_refused(&p, &["COLUMN_REMOVED", "\"Paid\"", "PRIMARY_KEY_CHANGED"]);
    p.ok(&["generate", "--allow-breaking"]);
    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
    assert_eq!(p.live_key("Invoice"), ["InvoiceId", "Number"]);
    assert_eq!(
        p.strings(r#"SELECT "InvoiceId" || ' ' || "Number" FROM billing."Invoice" ORDER BY 1"#),
        ["1 N-1", "2 N-2"]
    );
    // The merge follows the new key: the same id with another number is another row.
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (1, '00000000-0000-0000-0000-000000000001', 'N-1b', 3, '2026-01-04T00:00:00Z', 'c', 400, 5)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        p.strings(r#"SELECT count(*)::text FROM billing."Invoice" WHERE "InvoiceId" = 1"#),
        ["2"]
    );
}

#[test]
fn a_new_primary_key_over_duplicates_stops_and_says_so() {
    let mut p = Project::new("evo_dup_key");
    p.sql(r#"UPDATE billing."Invoice" SET "Number" = 'SAME'"#);
    edit(
        p.path(),
        INVOICE,
        "{name: InvoiceId, type: bigint, nullable: false, primary_key: true}",
        "{name: InvoiceId, type: bigint, nullable: false}",
    );
    edit(
        p.path(),
        INVOICE,
        "{name: Number, type: varchar(20), nullable: false}",
        "{name: Number, type: varchar(20), nullable: false, primary_key: true}",
    );
    p.ok(&["generate", "--allow-breaking"]);
    let out = p.apply();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("some key values occur more than once"),
        "{stderr}"
    );
    assert_eq!(
        p.live_key("Invoice"),
        ["InvoiceId"],
        "the key is left as it was"
    );
    // Once the duplicates are resolved by hand, the same file applies.
    p.sql(r#"UPDATE billing."Invoice" SET "Number" = 'N-' || "InvoiceId""#);
    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
}

#[test]
fn not_null_over_nulls_stops_until_they_are_filled() {
    let mut p = Project::new("evo_not_null");
    p.sql(
        r#"INSERT INTO billing."stg_InvoiceLine" ("InvoiceId", "LineNo", "Description", "Quantity", "UnitPrice", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (1, 1, NULL, 1, 2.5, 'c', 100, 1), (1, 2, 'two', 1, 2.5, 'c', 100, 2)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "InvoiceLine"), (2, 2, 0, 0));
    edit(
        p.path(),
        INVOICE_LINE,
        "type: nvarchar(200), nullable: true",
        "type: nvarchar(200), nullable: false",
    );
    assert_eq!(
        p.diff("InvoiceLine"),
        vec![change(
            "NULLABILITY_CHANGED",
            "Description",
            "breaking",
            "automatic_unless_data"
        )]
    );
    assert_refused(
        &p,
        &["InvoiceLine", "NULLABILITY_CHANGED", "\"Description\""],
    );
    p.ok(&["generate", "--allow-breaking"]);
    let out = p.apply();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("holds NULLs") && stderr.contains("Description"),
        "{stderr}"
    );
    p.sql(r#"UPDATE billing."InvoiceLine" SET "Description" = '' WHERE "Description" IS NULL"#);
    p.apply_ok();
    p.assert_live_matches_yaml("InvoiceLine");
    assert_eq!(
        p.strings(r#"SELECT "Description" FROM billing."InvoiceLine" ORDER BY "LineNo""#),
        ["", "two"]
    );
}

#[test]
fn apply_without_the_breaking_file_refuses_and_names_the_command() {
    let mut p = Project::new("evo_no_file");
    edit(p.path(), INVOICE, "type: varchar(20)", "type: varchar(12)");
    p.ok(&["generate", "--allow-breaking"]);
    // Someone deletes the explicit migration and regenerates: the table file alone asks for a narrowing.
    let path = breaking_file("Invoice", 1);
    std::fs::remove_file(p.path().join(MIGRATIONS_DIR).join(BILLING).join(&path)).unwrap();
    p.ok(&["generate"]);
    assert!(!p.manifest_tables().contains(&path));
    let out = p.apply();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for needle in [
        "55000",
        "billing.\"Invoice\" cannot be brought to the shape of its YAML",
        "column \"Number\" is character varying(20) but the YAML says character varying(12)",
        "cdc manage-migrations generate --allow-breaking",
    ] {
        assert!(
            stderr.contains(needle),
            "apply does not name {needle:?}: {stderr}"
        );
    }
    assert_eq!(p.live_columns("Invoice")[2].1, "character varying(20)");
}

#[test]
fn misused_renamed_from_is_an_input_error_with_file_line_and_field() {
    let dir = example_project(false);
    let dir = dir.path();
    edit(
        dir,
        INVOICE,
        "{name: Amount, type: \"decimal(19,4)\", nullable: false}",
        "{name: Amount, type: \"decimal(19,4)\", nullable: false, renamed_from: Number}",
    );
    edit(
        dir,
        INVOICE_LINE,
        "{name: Quantity, type: \"decimal(9,3)\", nullable: false}",
        "{name: Quantity, type: \"decimal(9,3)\", nullable: false, renamed_from: Qty}",
    );
    edit(
        dir,
        INVOICE_LINE,
        "{name: UnitPrice, type: smallmoney, nullable: false}",
        "{name: UnitPrice, type: smallmoney, nullable: false, renamed_from: Qty}",
    );
    let out = common::cdc(dir, &["manage-migrations", "generate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for needle in [
        "Invoice.yaml:9: field `columns[3].renamed_from`",
        "`Number` is still a column of the table",
        "InvoiceLine.yaml:11: field `columns[4].renamed_from`",
        "both renamed from `Qty`",
    ] {
        assert!(stderr.contains(needle), "lacks {needle:?}: {stderr}");
    }
    assert!(!dir.join(MIGRATIONS_DIR).exists(), "nothing written");
}

#[test]
fn a_new_not_null_column_without_default_stops_on_rows_until_added_by_hand() {
    let mut p = Project::new("evo_required");
    edit(
        p.path(),
        INVOICE,
        "  - {name: Paid,",
        "  - {name: Code, type: varchar(5), nullable: false}\n  - {name: Paid,",
    );
    assert_eq!(
        p.diff("Invoice"),
        vec![change(
            "COLUMN_ADDED",
            "Code",
            "breaking",
            "automatic_unless_data"
        )]
    );
    assert_refused(&p, &["COLUMN_ADDED", "\"Code\""]);
    p.ok(&["generate", "--allow-breaking"]);
    let out = p.apply();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is new and NOT NULL without a default") && stderr.contains("ADD COLUMN"),
        "{stderr}"
    );
    p.sql(r#"ALTER TABLE billing."Invoice" ADD COLUMN "Code" varchar(5) DEFAULT 'old' NOT NULL"#);
    p.apply_ok();
    // The default used to fill the existing rows is drift from the YAML: the live diff says so.
    let drift = p.run(&[
        "diff", "--env", "dev", "--sink", BILLING, "--table", "Invoice",
    ]);
    assert_eq!(drift.status.code(), Some(1));
    let report = text(&drift.stdout);
    assert!(
        report.contains("DEFAULT_CHANGED") && report.contains("\"Code\""),
        "{report}"
    );
    p.sql(r#"ALTER TABLE billing."Invoice" ALTER COLUMN "Code" DROP DEFAULT"#);
    p.assert_live_matches_yaml("Invoice");
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("InvoiceId", "CustomerId", "Number", "Code", "Amount", "IssuedAt", "Paid", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES (3, '00000000-0000-0000-0000-000000000003', 'N-3', 'new', 1, '2026-01-03T00:00:00Z', false, 'c', 300, 3)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        p.strings(r#"SELECT "Code" FROM billing."Invoice" ORDER BY "InvoiceId""#),
        ["old", "old", "new"]
    );
}

#[test]
fn a_tenant_column_joining_the_key_is_breaking_and_made_on_purpose() {
    let mut p = Project::new("evo_tenant_key");
    const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
    edit(
        p.path(),
        "services/billing.yaml",
        "          from: sales.Invoice\n          column_templates:\n            - template: customer_id\n",
        "          from: sales.Invoice\n          column_templates:\n            - template: customer_id\n              primary_key: true\n",
    );
    let breaking = [
        change(
            "NULLABILITY_CHANGED",
            "_customer_id",
            "breaking",
            "automatic_unless_data",
        ),
        change("PRIMARY_KEY_CHANGED", "", "breaking", "refused"),
    ];
    assert_eq!(p.diff("Invoice"), breaking);
    // The live catalog says the same before anything is written.
    let live = p.run(&[
        "diff", "--env", "dev", "--sink", BILLING, "--table", "Invoice",
    ]);
    assert_eq!(live.status.code(), Some(1), "{}", text(&live.stderr));
    let shown = text(&live.stdout);
    assert!(
        shown.contains("PRIMARY_KEY_CHANGED") && shown.contains("(_customer_id, InvoiceId)"),
        "{shown}"
    );
    assert_refused(
        &p,
        &[
            "Invoice",
            "PRIMARY_KEY_CHANGED",
            "((InvoiceId) -> (_customer_id, InvoiceId))",
            "NULLABILITY_CHANGED",
        ],
    );

    let out = p.ok(&["generate", "--allow-breaking"]);
    let path = breaking_file("Invoice", 1);
    assert!(text(&out.stdout).contains(&path), "{}", text(&out.stdout));
    let written = p.file(&path);
    assert!(written.contains("_customer_id"), "{written}");
    // The rows merged before have no tenant: the key cannot be made over them.
    let refused = p.apply();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("_customer_id") && stderr.contains("NULL"),
        "the refusal names the tenant column and its NULLs: {stderr}"
    );
    assert_eq!(
        p.live_key("Invoice"),
        ["InvoiceId"],
        "the key is left as it was"
    );
    // Once the tenant is filled in (as an operator backfills it), the same file applies.
    p.sql(&format!(
        r#"UPDATE billing."Invoice" SET "_customer_id" = '{TENANT}'"#
    ));
    p.apply_ok();
    p.assert_live_matches_yaml("Invoice");
    assert_eq!(p.live_key("Invoice"), ["_customer_id", "InvoiceId"]);
    assert_eq!(
        p.strings(r#"SELECT "InvoiceId" || ' ' || "Number" FROM billing."Invoice" ORDER BY 1"#),
        ["1 N-1", "2 N-2"],
        "rows kept"
    );
    // The merge follows the new key: the same InvoiceId of another tenant is another row, and a
    // delete of it leaves the first tenant's row.
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("_customer_id", "InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ('00000000-0000-0000-0000-0000000000bb', 1, '00000000-0000-0000-0000-000000000001', 'B-1', 3, '2026-01-04T00:00:00Z', 'c', 400, 5)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        p.strings(r#"SELECT "Number" FROM billing."Invoice" WHERE "InvoiceId" = 1 ORDER BY 1"#),
        ["B-1", "N-1"]
    );
    p.sql(
        r#"INSERT INTO billing."stg_Invoice" ("_customer_id", "InvoiceId", "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ('00000000-0000-0000-0000-0000000000bb', 1, 'd', 500, 6)"#,
    );
    assert_eq!(merge(&mut p.client, "billing", "Invoice"), (1, 0, 1, 0));
    assert_eq!(
        p.strings(
            r#"SELECT "Number" FROM billing."Invoice" WHERE "InvoiceId" = 1 AND NOT "__is_deleted" ORDER BY 1"#
        ),
        ["N-1"]
    );
    // Later runs keep the file; the database skips it.
    p.ok(&["generate", "--check"]);
    assert_eq!(p.file(&path), written);
    p.apply_ok();
}

#[test]
fn a_tenant_template_outside_the_key_of_a_db_per_tenant_table_is_warned_about() {
    let dir = example_project(true);
    // The example's directory service is db-per-tenant; Actor's tenant leaves its key.
    edit(
        dir.path(),
        "services/directory.yaml",
        "          from: dbo.Actor\n          column_templates:\n            - template: customer_id\n              primary_key: true\n",
        // Out of the key, the tenant cannot shard the table on Citus: it stays local there.
        "          from: dbo.Actor\n          column_templates:\n            - template: customer_id\n          distribution: local\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(["manage-migrations", "generate", "--dry-run"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run cdc");
    let stderr = text(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("pattern db-per-tenant"))
        .collect();
    assert_eq!(
        warnings,
        ["warning: services/directory.yaml:26: field `column_templates[0]`: pattern db-per-tenant: sink table `directory.Actor` carries the tenant template `customer_id` (`_customer_id`) outside its primary key: rows of two tenants with the same source key would overwrite each other; add `primary_key: true` to the template reference"],
        "{stderr}"
    );
    // Order Details keeps its tenant key and is not warned about; the key change is breaking.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PRIMARY_KEY_CHANGED ((_customer_id, actno) -> (actno))"),
        "{stderr}"
    );
}
