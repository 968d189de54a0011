//! The example's merge path as the merge tests drive it: stage change events, merge, read back.
//!
//! Every helper works on a database where both example sinks are applied ([`example_database`]
//! makes one on the shared server). Staging binds every value as a typed parameter: one
//! `INSERT ... SELECT ... FROM unnest($1, $2, ...)` per call, so a call is one statement and the
//! staging table's statement trigger flags the table once, however many events it carries; the
//! events are inserted in the order given.
//!
//! ```no_run
//! use cdc_testkit::merge::{actors, example_database, merge, stage_actors, upsert};
//!
//! let (_db, mut client) = example_database("merge_example");
//! stage_actors(&mut client, &[upsert(1, "Ada", 100, 10)]);
//! assert_eq!(merge(&mut client, "directory", "Actor"), (1, 1, 0, 0));
//! assert_eq!(actors(&mut client).len(), 1);
//! ```

use postgres::types::ToSql;
use postgres::{Client, GenericClient};

use crate::fixture::{self, describe_error};

/// The tenant (`_customer_id`, which leads the example's keys) of events staged without one given.
pub const TENANT: &str = "00000000-0000-0000-0000-00000000000a";

/// One change event of `directory.Actor` as the sink connector writes it into `stg_Actor`.
#[derive(Debug, Clone)]
pub struct ActorEvent {
    /// `_customer_id`, the tenant, which leads the primary key (`None`: a NULL tenant).
    pub tenant: Option<&'static str>,
    /// `actno`, the source primary key.
    pub key: i32,
    /// `Navn` (`None` for a delete that only carries the key).
    pub name: Option<String>,
    /// `__cdc_operation`.
    pub op: &'static str,
    /// `__source_ts_ms` (`None`: an event without a position).
    pub ts: Option<i64>,
    /// `__kafka_offset`.
    pub offset: Option<i64>,
}

/// An update (`u`) of Actor `key` to `name`, at position (`ts`, `offset`).
pub fn upsert(key: i32, name: &str, ts: i64, offset: i64) -> ActorEvent {
    ActorEvent {
        tenant: Some(TENANT),
        key,
        name: Some(name.to_string()),
        op: "u",
        ts: Some(ts),
        offset: Some(offset),
    }
}

/// A delete of Actor `key` spelled `op` (`d`, `DELETE`, ...), carrying only the key.
pub fn delete(key: i32, op: &'static str, ts: i64, offset: i64) -> ActorEvent {
    ActorEvent {
        tenant: Some(TENANT),
        key,
        name: None,
        op,
        ts: Some(ts),
        offset: Some(offset),
    }
}

impl ActorEvent {
    /// The same event of another tenant (`None`: a NULL `_customer_id`).
    pub fn of_tenant(self, tenant: Option<&'static str>) -> ActorEvent {
        ActorEvent { tenant, ..self }
    }
}

/// Runs one statement with bound parameters.
///
/// # Panics
///
/// Panics with `what` and the server's error when the statement fails.
fn execute(client: &mut impl GenericClient, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) {
    if let Err(e) = client.execute(sql, params) {
        panic!("{what}: {}", describe_error(&e));
    }
}

/// Stages Actor events with one statement (so one trigger call), in the order given.
///
/// # Panics
///
/// Panics with the server's error when the insert fails.
pub fn stage_actors(client: &mut impl GenericClient, events: &[ActorEvent]) {
    if events.is_empty() {
        return;
    }
    let keys: Vec<i32> = events.iter().map(|e| e.key).collect();
    let names: Vec<Option<&str>> = events.iter().map(|e| e.name.as_deref()).collect();
    let ops: Vec<&str> = events.iter().map(|e| e.op).collect();
    let timestamps: Vec<Option<i64>> = events.iter().map(|e| e.ts).collect();
    let offsets: Vec<Option<i64>> = events.iter().map(|e| e.offset).collect();
    let tenants: Vec<Option<&str>> = events.iter().map(|e| e.tenant).collect();
    execute(
        client,
        "staging actors",
        r#"INSERT INTO directory."stg_Actor"
               ("_customer_id", "actno", "Navn", "__cdc_operation", "__source_ts_ms",
                "__kafka_offset", "__kafka_partition", "__kafka_timestamp")
           SELECT tenant::uuid, actno, navn, op, ts, kafka_offset, 0, now()
             FROM unnest($1::int4[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[])
                  WITH ORDINALITY AS e(actno, navn, op, ts, kafka_offset, tenant, position)
            ORDER BY position"#,
        &[&keys, &names, &ops, &timestamps, &offsets, &tenants],
    );
}

/// An `Order Details` event: `(OrderID, ProductID, Quantity, op, ts, offset)`.
pub type OrderEvent<'a> = (i32, i32, Option<i16>, &'a str, i64, i64);

/// Stages `Order Details` events of tenant [`TENANT`] with one statement, in the order given.
///
/// # Panics
///
/// Panics with the server's error when the insert fails.
pub fn stage_order_details(client: &mut impl GenericClient, events: &[OrderEvent<'_>]) {
    if events.is_empty() {
        return;
    }
    let orders: Vec<i32> = events.iter().map(|e| e.0).collect();
    let products: Vec<i32> = events.iter().map(|e| e.1).collect();
    let quantities: Vec<Option<i16>> = events.iter().map(|e| e.2).collect();
    let ops: Vec<&str> = events.iter().map(|e| e.3).collect();
    let timestamps: Vec<i64> = events.iter().map(|e| e.4).collect();
    let offsets: Vec<i64> = events.iter().map(|e| e.5).collect();
    execute(
        client,
        "staging order details",
        r#"INSERT INTO directory."stg_Order Details"
               ("_customer_id", "OrderID", "ProductID", "Quantity", "__cdc_operation",
                "__source_ts_ms", "__kafka_offset")
           SELECT $7::text::uuid, order_id, product_id, quantity, op, ts, kafka_offset
             FROM unnest($1::int4[], $2::int4[], $3::int2[], $4::text[], $5::int8[], $6::int8[])
                  WITH ORDINALITY AS e(order_id, product_id, quantity, op, ts, kafka_offset, position)
            ORDER BY position"#,
        &[
            &orders,
            &products,
            &quantities,
            &ops,
            &timestamps,
            &offsets,
            &TENANT,
        ],
    );
}

/// `(rows_consumed, rows_upserted, rows_deleted, rows_stale)`.
pub type Counts = (i64, i64, i64, i64);

/// Merges a table the committing way (`CALL cdc_management.merge_table`) and returns its counts.
pub fn merge(client: &mut impl GenericClient, schema: &str, table: &str) -> Counts {
    counts(
        client,
        "CALL cdc_management.merge_table($1, $2)",
        &[&schema, &table],
    )
}

/// Calls `directory."sp_merge_<table>"` with batches of `batch` rows and returns its counts.
pub fn merge_in_batches(client: &mut impl GenericClient, table: &str, batch: i32) -> Counts {
    let sql = format!(r#"SELECT * FROM directory."sp_merge_{table}"(p_batch_size => $1)"#);
    counts(client, &sql, &[&batch])
}

/// The counts returned by a merge call (`sql`, with `params` bound).
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails.
pub fn counts(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Counts {
    let row = client
        .query_one(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {}", describe_error(&e)));
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// `(actno, Navn, __cdc_operation, __source_ts_ms, __kafka_offset)` of an Actor row.
pub type ActorRow = (i32, String, Option<String>, Option<i64>, Option<i64>);

/// Every row of `directory.Actor`, by key.
pub fn actors(client: &mut impl GenericClient) -> Vec<ActorRow> {
    query(
        client,
        r#"SELECT "actno", "Navn", "__cdc_operation", "__source_ts_ms", "__kafka_offset"
             FROM directory."Actor" ORDER BY "actno""#,
        &[],
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// The Actor row an event at (`ts`, `offset`) leaves.
pub fn actor(key: i32, name: &str, op: &str, ts: i64, offset: i64) -> ActorRow {
    (
        key,
        name.to_string(),
        Some(op.to_string()),
        Some(ts),
        Some(offset),
    )
}

/// Runs a query with bound parameters.
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails.
pub fn query(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Vec<postgres::Row> {
    client
        .query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {}", describe_error(&e)))
}

/// The one `bigint` a query returns.
///
/// # Panics
///
/// Panics with the statement and the server's error when it fails.
pub fn scalar_i64(client: &mut impl GenericClient, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe_error(&e)))
        .get(0)
}

/// How many rows wait in `directory."stg_<table>"`.
pub fn staged(client: &mut impl GenericClient, table: &str) -> i64 {
    scalar_i64(
        client,
        &format!(r#"SELECT count(*) FROM directory."stg_{table}""#),
    )
}

/// A processing-log row:
/// `(consumed, superseded, upserted, deleted, stale, min offset, max offset, min ts, max ts)`.
pub type LogRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The processing-log rows of a table, oldest first.
pub fn processing_log(client: &mut impl GenericClient, schema: &str, table: &str) -> Vec<LogRow> {
    query(
        client,
        "SELECT rows_consumed, rows_superseded, rows_upserted, rows_deleted, rows_stale,
                min_kafka_offset, max_kafka_offset, min_source_ts_ms, max_source_ts_ms
           FROM cdc_management.cdc_processing_log
          WHERE schema_name = $1 AND table_name = $2
          ORDER BY id",
        &[&schema, &table],
    )
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
        )
    })
    .collect()
}

/// `(key as a JSON array text, source_ts_ms, kafka_offset)` of the tombstones of a
/// table (its typed `tomb_<table>`, key columns in key order), by key.
pub fn tombstones(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
) -> Vec<(String, i64, i64)> {
    let tomb = format!(
        "\"{}\".\"tomb_{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    );
    let keys: Vec<String> = query(
        client,
        "SELECT quote_ident(a.attname)
           FROM pg_index AS i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1::text::regclass AND i.indisprimary
          ORDER BY k.ord",
        &[&tomb],
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(!keys.is_empty(), "{tomb} has no primary key");
    let sql = format!(
        r#"SELECT jsonb_build_array({keys})::text, "__source_ts_ms", "__kafka_offset"
             FROM {tomb} ORDER BY 1"#,
        keys = keys.join(", ")
    );
    query(client, &sql, &[])
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A tombstone key as [`tombstones`] shows it: the tenant [`TENANT`] first, then `source_key`
/// (`"3"`, `"7, 8"`).
pub fn tenant_key(source_key: &str) -> String {
    format!("[\"{TENANT}\", {source_key}]")
}

/// Whether a table's merge-control flag says it has rows pending.
///
/// # Panics
///
/// Panics when the table has no merge-control row.
pub fn pending(client: &mut impl GenericClient, schema: &str, table: &str) -> bool {
    client
        .query_one(
            "SELECT pending FROM cdc_management.merge_control WHERE schema_name = $1 AND table_name = $2",
            &[&schema, &table],
        )
        .unwrap_or_else(|e| panic!("merge_control of {schema}.{table}: {}", describe_error(&e)))
        .get(0)
}

/// `(schema, table, rows_merged)` of a `trigger_pending_merges(window)` call.
///
/// # Panics
///
/// Panics when the call fails or reports a negative `duration_ms`.
pub fn trigger_pending_merges(
    client: &mut impl GenericClient,
    window: i32,
) -> Vec<(String, String, i64)> {
    client
        .query(
            "SELECT schema_name, table_name, rows_merged, duration_ms
               FROM cdc_management.trigger_pending_merges($1)",
            &[&window],
        )
        .unwrap_or_else(|e| panic!("trigger_pending_merges: {}", describe_error(&e)))
        .iter()
        .map(|r| {
            let duration: i64 = r.get(3);
            assert!(duration >= 0, "duration_ms {duration}");
            (r.get(0), r.get(1), r.get(2))
        })
        .collect()
}

/// The rows of `cdc_management.error_log` as `schema.table sqlstate message detail`, oldest first.
pub fn errors(client: &mut impl GenericClient) -> Vec<String> {
    query(
        client,
        "SELECT format('%s.%s %s %s %s', schema_name, table_name, sqlstate, message, detail)
           FROM cdc_management.error_log ORDER BY id",
        &[],
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A fresh database on the shared server with both example sinks applied, and a client to it.
pub fn example_database(prefix: &str) -> (String, Client) {
    let server = crate::shared();
    let db = server.create_database(prefix);
    let mut client = server.client(&db);
    fixture::apply_example(&mut client);
    (db, client)
}
