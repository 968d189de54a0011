//! A batch of change events, as the sink would read them from Kafka, and the checks on what the merge made of it.
//!
//! Values that have a feature-dependent type (timestamps, uuids, numerics, json)
//! are written as text and parsed, so this code compiles whether or not the
//! `cdc-runtime` features `chrono`, `uuid`, `decimal` and `json` are on.

use anyhow::{bail, Context as _};

use crate::rows::directory::{Actor, AllTypes, OrderDetails};

/// Tenant of the events (the `_customer_id` template column).
const CUSTOMER: &str = "5f0c6d3e-8a51-4c0e-9b1a-2d7e4f6a8c90";

/// Change events of `directory.Actor`: two inserts, an update, an insert then
/// its delete, and a replayed (older) update that must not win.
pub fn actor_events() -> Vec<Actor> {
    let event =
        |actno: i32, op: &str, ts: i64, offset: i64, name: &str, email: Option<&str>| Actor {
            actno,
            navn: name.to_string(),
            email: email.map(str::to_string),
            is_active: op != "DELETE",
            created_at: "2026-05-01T09:30:00".parse().unwrap_or_default(),
            customer_id: CUSTOMER.parse().unwrap_or_default(),
            cdc_operation: Some(op.to_string()),
            source_ts_ms: Some(ts),
            kafka_offset: Some(offset),
            source: Some("directory_dev".to_string()),
            ..Actor::default()
        };
    vec![
        event(1, "INSERT", 1_000, 10, "Ada", Some("ada@example.com")),
        event(2, "INSERT", 1_001, 11, "Grace", None),
        event(
            1,
            "UPDATE",
            1_002,
            12,
            "Ada Lovelace",
            Some("ada@example.com"),
        ),
        event(3, "INSERT", 1_003, 13, "Linus", Some("linus@example.com")),
        event(3, "DELETE", 1_004, 14, "Linus", None),
        // A replay of an event older than the update above: ignored by the merge.
        event(1, "UPDATE", 1_001, 9, "Ada (stale)", None),
    ]
}

/// Change events of `directory."Order Details"` (composite key, money and real columns).
pub fn order_events() -> Vec<OrderDetails> {
    let event = |product_id: i32, quantity: i16, price: &str, offset: i64| OrderDetails {
        order_id: 7,
        product_id,
        unit_price: price.parse().unwrap_or_default(),
        quantity,
        discount: 0.25,
        customer_id: CUSTOMER.parse().unwrap_or_default(),
        cdc_operation: Some("INSERT".to_string()),
        source_ts_ms: Some(2_000 + offset),
        kafka_offset: Some(offset),
        ..OrderDetails::default()
    };
    vec![event(1, 2, "19.9900", 1), event(2, 1, "250.0000", 2)]
}

/// One row with every column of `directory.AllTypes` set, chosen so that it reads back unchanged.
pub fn all_types_row() -> anyhow::Result<AllTypes> {
    Ok(AllTypes {
        id: 42,
        c_bit: Some(true),
        c_tinyint: Some(255),
        c_smallint: Some(-32_768),
        c_int: Some(2_147_483_647),
        c_decimal: Some("1234567890123456.78".parse().context("numeric")?),
        c_numeric: Some("3.1416".parse().context("numeric")?),
        c_decimal_bare: Some("123456789.123456789".parse().context("numeric")?),
        c_money: Some("-922337203685.4775".parse().context("numeric")?),
        c_smallmoney: Some("214748.3647".parse().context("numeric")?),
        c_float24: Some(1.5),
        c_real: Some(-2.25),
        c_float: Some(3.125),
        c_float53: Some(1e300),
        c_char: Some("ABCDEFGHIJ".to_string()),
        c_nchar: Some("ÆØÅæø".to_string()),
        c_char_unsized: Some("x".to_string()),
        c_varchar: Some("varchar".to_string()),
        c_nvarchar: Some("nvarchar ✓".to_string()),
        c_varchar_max: Some("max".repeat(1000)),
        c_nvarchar_max: Some("ünïcödé".to_string()),
        c_varchar_unsized: Some("unsized".to_string()),
        c_text: Some("text".to_string()),
        c_ntext: Some("ntext".to_string()),
        c_xml: Some(cdc_runtime::rows::PgXml("<a b=\"1\">x</a>".to_string())),
        c_sysname: Some("sysname".to_string()),
        c_date: Some("2024-02-29".parse().context("date")?),
        c_time: Some("12:34:56.123456".parse().context("time")?),
        c_time3: Some("01:02:03.456".parse().context("time")?),
        c_datetime: Some("2024-01-02T03:04:05.678".parse().context("timestamp")?),
        c_smalldatetime: Some("2024-01-02T03:04:00".parse().context("timestamp")?),
        c_datetime2: Some("1999-12-31T23:59:59.999999".parse().context("timestamp")?),
        c_datetime2_3: Some("2038-01-19T03:14:07.123".parse().context("timestamp")?),
        c_datetimeoffset: Some(
            "2024-01-02T03:04:05.123456Z"
                .parse()
                .context("timestamptz")?,
        ),
        c_uniqueidentifier: Some(CUSTOMER.parse().context("uuid")?),
        c_binary: Some((0u8..16).collect()),
        c_varbinary: Some(vec![0, 255, 1, 254]),
        c_varbinary_max: Some(vec![7; 10_000]),
        c_image: Some(vec![0x89, b'P', b'N', b'G']),
        c_timestamp: Some(vec![0, 0, 0, 0, 0, 0, 7, 209]),
        c_hierarchyid: Some("/1/2/".to_string()),
        c_geography: Some("POINT(1 2)".to_string()),
        c_geometry: Some("POINT(3 4)".to_string()),
        c_sql_variant: Some("variant".to_string()),
        c_json: Some(r#"{"a": [1, 2], "b": null}"#.parse().context("json")?),
        cdc_operation: Some("INSERT".to_string()),
        source_ts_ms: Some(3_000),
        kafka_offset: Some(1),
        source: Some("directory_dev".to_string()),
        ..AllTypes::default()
    })
}

/// Fails unless the merge kept the newest event per key and applied the delete.
pub fn check_expected(actors: &[Actor], orders: &[OrderDetails]) -> anyhow::Result<()> {
    let summary: Vec<(i32, &str)> = actors.iter().map(|a| (a.actno, a.navn.as_str())).collect();
    if summary != [(1, "Ada Lovelace"), (2, "Grace")] {
        bail!("unexpected final Actor rows: {summary:?}");
    }
    if orders.len() != 2 {
        bail!("expected 2 Order Details rows, found {}", orders.len());
    }
    Ok(())
}

/// Fails unless the one `AllTypes` row reads back as it was written (the merge
/// sets `__sync_timestamp` itself).
pub fn check_round_trip(written: &AllTypes, read: &[AllTypes]) -> anyhow::Result<()> {
    let [row] = read else {
        bail!("expected one AllTypes row, found {}", read.len());
    };
    let mut expected = written.clone();
    expected.sync_timestamp = row.sync_timestamp;
    if *row != expected {
        bail!("AllTypes read back differs:\nwritten: {expected:?}\nread:    {row:?}");
    }
    Ok(())
}
