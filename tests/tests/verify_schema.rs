//! `cdc_runtime::verify_schema` on a real PostgreSQL, over both drivers: the applied example matches its migrations, and hand-made drift is found with the kinds the diff reports.

mod drivers;

use cdc_runtime::{verify_schema, verify_schema_async, Migrations, SchemaReport, Severity};
use cdc_testkit::fixture::{apply_example, migrations_of, sink, BILLING, DIRECTORY};
use drivers::{Driver, Session};

fn verify(session: &mut Session, migrations: &Migrations) -> SchemaReport {
    match session {
        Session::Blocking(client) => verify_schema(client, migrations),
        Session::Async { runtime, client } => {
            runtime.block_on(verify_schema_async(client, migrations))
        }
    }
    .unwrap_or_else(|e| panic!("verify_schema: {e}"))
}

/// (table, kind, column) of every change.
fn changes(report: &SchemaReport) -> Vec<(String, &'static str, String)> {
    let mut out: Vec<_> = report
        .changes()
        .map(|(table, change)| {
            (
                table.table.clone(),
                change.kind.label(),
                change.column.clone().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn found(table: &str, kind: &'static str, column: &str) -> (String, &'static str, String) {
    (table.to_string(), kind, column.to_string())
}

#[test]
fn the_applied_example_verifies_clean_and_drift_is_found_by_both_drivers() {
    let server = cdc_testkit::shared();
    let db = server.create_database("verify_schema");
    let mut client = server.client(&db);
    apply_example(&mut client);
    let billing = migrations_of(sink(BILLING));
    let directory = migrations_of(sink(DIRECTORY));

    for driver in [Driver::Blocking, Driver::Async] {
        let mut session = driver.connect_to(server, &db);
        for migrations in [&billing, &directory] {
            let report = verify(&mut session, migrations);
            assert!(report.is_clean(), "{driver}: {report}");
            assert_eq!(report.sink, migrations.sink());
        }
    }

    client
        .batch_execute(
            r#"
            ALTER TABLE billing."Invoice" ADD COLUMN "Extra" text;
            ALTER TABLE billing."Invoice" ALTER COLUMN "Number" TYPE text;
            ALTER TABLE billing."Invoice" ALTER COLUMN "CustomerId" DROP NOT NULL;
            ALTER TABLE billing."Invoice" ALTER COLUMN "Paid" SET DEFAULT true;
            DROP TRIGGER cdc_mark_for_merge ON billing."stg_Invoice";
            DROP FUNCTION billing."sp_merge_Invoice";
            ALTER TABLE billing."InvoiceLine" DROP CONSTRAINT "InvoiceLine_pkey";
            DROP TABLE directory."stg_Actor";
            DROP TABLE directory."select";
            "#,
        )
        .unwrap();

    for driver in [Driver::Blocking, Driver::Async] {
        let mut session = driver.connect_to(server, &db);
        let report = verify(&mut session, &billing);
        assert_eq!(
            changes(&report),
            vec![
                found("Invoice", "COLUMN_REMOVED", "Extra"),
                found("Invoice", "COLUMN_TYPE_CHANGED", "Number"),
                found("Invoice", "DEFAULT_CHANGED", "Paid"),
                found("Invoice", "MERGE_FUNCTION_MISSING", ""),
                found("Invoice", "NULLABILITY_CHANGED", "CustomerId"),
                found("Invoice", "STAGING_TRIGGER_MISSING", ""),
                found("InvoiceLine", "PRIMARY_KEY_CHANGED", ""),
            ],
            "{driver}: {report}"
        );
        assert_eq!(report.count(Severity::Breaking), 6, "{report}");
        assert_eq!(report.count(Severity::Warning), 1, "{report}");
        let text = report.to_string();
        assert!(
            text.contains("billing.Invoice breaking COLUMN_TYPE_CHANGED \"Number\": text -> character varying(20)"),
            "{text}"
        );
        let report = verify(&mut session, &directory);
        assert_eq!(
            changes(&report),
            vec![
                found("Actor", "STAGING_TABLE_MISSING", ""),
                found("select", "TABLE_MISSING", ""),
            ],
            "{driver}: {report}"
        );
    }
}

#[test]
fn the_report_serialises_with_the_diff_kinds() {
    let server = cdc_testkit::shared();
    let db = server.create_database("verify_schema_json");
    let mut client = server.client(&db);
    apply_example(&mut client);
    client
        .batch_execute(r#"ALTER TABLE billing."Invoice" ALTER COLUMN "InvoiceId" TYPE integer;"#)
        .unwrap();
    let report = verify_schema(&mut client, &migrations_of(sink(BILLING))).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "sink": BILLING,
            "tables": [{
                "schema": "billing",
                "table": "Invoice",
                "changes": [{
                    "kind": "COLUMN_TYPE_CHANGED",
                    "column": "InvoiceId",
                    "from": "integer",
                    "to": "bigint",
                    "severity": "warning",
                    "action": "automatic",
                    "reason": "a widening: apply alters the type and no value changes"
                }]
            }]
        })
    );
}
