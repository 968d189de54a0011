// A Builder with `.rows(false)` still writes the migrations: include_migrations!
// embeds them although there are no row structs.
static MIGRATIONS: cdc_runtime::Migrations = cdc_runtime::include_migrations!("shop_sink");

fn main() {
    assert_eq!(MIGRATIONS.sink(), "shop_sink");
    assert!(MIGRATIONS
        .files()
        .iter()
        .any(|f| f.path == "01-tables/Customer-staging.sql"));
    assert!(MIGRATIONS.verify().is_ok());
}
