// The row structs of the bundled example, compiled with the cdc-runtime features
// chrono, uuid, decimal and json: names, types, constants and the traits.
mod rows {
    cdc_runtime::include_rows!();
}

use cdc_runtime::rows::{StagingRow, TableRow};
use rows::directory::{Actor, AllTypes, AuditTrail, OrderDetails, Select};

fn typed(all: &AllTypes, actor: &Actor) {
    // Field types follow the PostgreSQL types; nullable columns are options.
    let _: i64 = all.id;
    let _: Option<bool> = all.c_bit;
    let _: Option<i16> = all.c_tinyint;
    let _: Option<rust_decimal::Decimal> = all.c_decimal;
    let _: Option<f32> = all.c_real;
    let _: Option<f64> = all.c_float;
    let _: Option<String> = all.c_nvarchar.clone();
    let _: Option<chrono::NaiveDate> = all.c_date;
    let _: Option<chrono::NaiveTime> = all.c_time;
    let _: Option<chrono::NaiveDateTime> = all.c_datetime2;
    let _: Option<chrono::DateTime<chrono::Utc>> = all.c_datetimeoffset;
    let _: Option<uuid::Uuid> = all.c_uniqueidentifier;
    let _: Option<Vec<u8>> = all.c_varbinary.clone();
    let _: Option<serde_json::Value> = all.c_json.clone();
    let _: Option<cdc_runtime::rows::PgXml> = all.c_xml.clone();
    // NOT NULL columns are plain values; `IsActive` → is_active, `_customer_id` → customer_id.
    let _: String = actor.navn.clone();
    let _: bool = actor.is_active;
    // The tenant key (`primary_key: true` on the template) is NOT NULL.
    let _: uuid::Uuid = actor.customer_id;
    let _: chrono::NaiveDateTime = actor.created_at;
    let _: Option<String> = actor.cdc_operation.clone();
}

fn reserved_words(row: &Select, order: &OrderDetails) {
    // Table `select`, columns `order`, `from`, `user`, `Group`; `Unit Price`, `OrderID`.
    let _: i32 = row.order;
    let _: Option<&String> = row.from.as_ref();
    let _: Option<&String> = row.user.as_ref();
    let _: Option<&String> = row.group.as_ref();
    let _: rust_decimal::Decimal = order.unit_price;
    let _: (i32, i32) = (order.order_id, order.product_id);
}

fn needs_staging<R: StagingRow>() -> &'static str {
    R::COPY_STATEMENT
}

/// Compiles only for types that do NOT implement `StagingRow`: with an impl, the
/// call below would be ambiguous (the trick of `static_assertions::assert_not_impl_any!`).
trait NotStagingRow<Marker> {
    fn check() {}
}
impl<T: ?Sized> NotStagingRow<()> for T {}
struct ImplementsStagingRow;
impl<T: ?Sized + StagingRow> NotStagingRow<ImplementsStagingRow> for T {}

fn main() {
    typed(&AllTypes::default(), &Actor::default());
    reserved_words(&Select::default(), &OrderDetails::default());

    assert_eq!(OrderDetails::SCHEMA, "directory");
    assert_eq!(OrderDetails::TABLE, "Order Details");
    assert_eq!(OrderDetails::STAGING_TABLE, "stg_Order Details");
    assert_eq!(
        OrderDetails::PRIMARY_KEY,
        ["_customer_id", "OrderID", "ProductID"]
    );
    assert_eq!(OrderDetails::COL_UNIT_PRICE, "Unit Price");
    assert_eq!(Select::COL_GROUP, "Group");
    assert_eq!(Actor::COL_CUSTOMER_ID, "_customer_id");
    assert_eq!(<Actor as TableRow>::COLUMNS, Actor::COLUMNS);
    assert_eq!(Actor::COLUMNS.len(), 14);
    // Staging takes every column but the two the merge sets.
    assert_eq!(<Actor as StagingRow>::STAGING_COLUMNS.len(), 12);
    assert!(!<Actor as StagingRow>::STAGING_COLUMNS.contains(&"__sync_timestamp"));
    assert_eq!(
        needs_staging::<OrderDetails>(),
        "COPY \"directory\".\"stg_Order Details\" (\"OrderID\", \"ProductID\", \"Unit Price\", \"Quantity\", \"Discount\", \"Row Version\", \"_customer_id\", \"__cdc_operation\", \"__source_ts_ms\", \"__kafka_offset\", \"__source\", \"__source_db\", \"__source_table\") FROM STDIN (FORMAT binary)"
    );
    assert!(<AuditTrail as TableRow>::SELECT.ends_with("FROM \"directory\".\"AuditTrail\""));
    // dbo.AuditTrail has no primary key, hence no staging table: its rows cannot be staged.
    assert!(AuditTrail::PRIMARY_KEY.is_empty());
    <AuditTrail as NotStagingRow<_>>::check();
    // Conversion from a row is available as TryFrom too.
    fn _converts(row: &cdc_runtime::postgres::Row) -> Result<Actor, cdc_runtime::postgres::Error> {
        Actor::try_from(row)
    }
}
