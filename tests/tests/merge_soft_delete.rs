//! The merge contract (DESIGN.md §7), soft delete: the `billing` sink marks deleted rows
//! (`__is_deleted`) and keeps their values, stale events leave them deleted, a newer insert brings
//! them back, and column-template columns and typed values survive the merge.

use cdc_testkit::fixture::describe_error;
use cdc_testkit::merge::{errors, example_database, merge};
use chrono::{DateTime, Utc};
use postgres::Client;
use rust_decimal::Decimal;
use uuid::Uuid;

#[test]
fn soft_delete_sink_marks_rows_deleted_and_keeps_them() {
    let (_db, mut c) = example_database("merge_soft");
    let tenant = "6f1c1d38-54a4-4a8b-9d3e-0a3c4e5f6a7b";
    let customer = "11111111-2222-3333-4444-555555555555";

    let tenant_id = Uuid::parse_str(tenant).unwrap();
    let customer_id = Uuid::parse_str(customer).unwrap();
    let issued_at: DateTime<Utc> = "2026-01-02T03:04:05.678Z".parse().unwrap();
    // An event with a Number carries every column; one without (a delete) only the key.
    let stage = |c: &mut Client, id: i64, number: Option<&str>, op: &str, ts: i64, offset: i64| {
        let full = number.is_some();
        c.execute(
            r#"INSERT INTO billing."stg_Invoice"
                   ("InvoiceId", "CustomerId", "Number", "Amount", "IssuedAt", "Paid", "_customer_id",
                    "__cdc_operation", "__source_ts_ms", "__kafka_offset", "__source")
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
            &[
                &id,
                &full.then_some(customer_id),
                &number,
                &full.then(|| Decimal::new(123_456, 4)),
                &full.then_some(issued_at),
                &full.then_some(true),
                &tenant_id,
                &op,
                &ts,
                &offset,
                &"billing-connector",
            ],
        )
        .unwrap_or_else(|e| panic!("staging invoice: {}", describe_error(&e)));
    };
    type InvoiceRow = (
        i64,
        String,
        bool,
        Option<String>,
        Option<i64>,
        Option<String>,
    );
    let invoices = |c: &mut Client| -> Vec<InvoiceRow> {
        c.query(
            r#"SELECT "InvoiceId", "Number", "__is_deleted", "__cdc_operation", "__source_ts_ms",
                      "_customer_id"::text
                 FROM billing."Invoice" ORDER BY 1"#,
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
    };
    let row = |id: i64, number: &str, deleted: bool, op: &str, ts: i64| -> InvoiceRow {
        (
            id,
            number.to_string(),
            deleted,
            Some(op.to_string()),
            Some(ts),
            Some(tenant.to_string()),
        )
    };

    stage(&mut c, 1, Some("N-1"), "c", 100, 1);
    stage(&mut c, 2, Some("N-2"), "c", 100, 2);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (2, 2, 0, 0));
    // The template column is carried, and typed values survive the merge.
    let values = c
        .query_one(
            r#"SELECT "Amount"::text, "IssuedAt" = '2026-01-02 03:04:05.678+00', "Paid",
                      "CustomerId"::text, "__source"
                 FROM billing."Invoice" WHERE "InvoiceId" = 1"#,
            &[],
        )
        .unwrap();
    assert_eq!(values.get::<_, String>(0), "12.3456");
    assert!(values.get::<_, bool>(1));
    assert!(values.get::<_, bool>(2));
    assert_eq!(values.get::<_, String>(3), customer);
    assert_eq!(values.get::<_, String>(4), "billing-connector");

    // A delete carrying only the key: the row stays, marked deleted, its values kept.
    stage(&mut c, 2, None, "d", 200, 3);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 1, 0));
    assert_eq!(
        invoices(&mut c),
        [
            row(1, "N-1", false, "c", 100),
            row(2, "N-2", true, "d", 200)
        ]
    );

    // An older update after the delete: stale, the row stays deleted.
    stage(&mut c, 2, Some("N-2-old"), "u", 150, 4);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 0, 1));
    assert_eq!(invoices(&mut c)[1], row(2, "N-2", true, "d", 200));
    // A replayed delete: stale.
    stage(&mut c, 2, None, "DELETE", 200, 3);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 0, 0, 1));

    // A newer insert brings it back to life.
    stage(&mut c, 2, Some("N-2-new"), "c", 300, 5);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (1, 1, 0, 0));
    assert_eq!(
        invoices(&mut c),
        [
            row(1, "N-1", false, "c", 100),
            row(2, "N-2-new", false, "c", 300)
        ]
    );

    // Delete and re-insert inside one batch: the latest (the delete) wins, the row is kept.
    stage(&mut c, 1, Some("N-1-b"), "u", 400, 6);
    stage(&mut c, 1, None, "d", 500, 7);
    assert_eq!(merge(&mut c, "billing", "Invoice"), (2, 0, 1, 0));
    assert_eq!(invoices(&mut c)[0], row(1, "N-1", true, "d", 500));

    // InvoiceLine's template column is renamed in the sink (`_tenant_customer_id`).
    c.execute(
        r#"INSERT INTO billing."stg_InvoiceLine"
               ("InvoiceId", "LineNo", "Quantity", "UnitPrice", "_tenant_customer_id",
                "__cdc_operation", "__source_ts_ms", "__kafka_offset")
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#,
        &[
            &1_i64,
            &1_i32,
            &Decimal::new(25, 1),
            &Decimal::new(999, 2),
            &tenant_id,
            &"c",
            &1_i64,
            &1_i64,
        ],
    )
    .unwrap();
    assert_eq!(merge(&mut c, "billing", "InvoiceLine"), (1, 1, 0, 0));
    let carried: String = c
        .query_one(
            r#"SELECT "_tenant_customer_id"::text FROM billing."InvoiceLine""#,
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(carried, tenant);
    assert!(errors(&mut c).is_empty());
}
