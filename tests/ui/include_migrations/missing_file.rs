// The manifest lists 01-tables/T-staging.sql, which is not there.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/missing_file");

fn main() {
    let _ = &MIGRATIONS;
}
