// 01-tables/T.sql was edited by hand after generation: the error names it and both hashes.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/tampered");

fn main() {
    let _ = &MIGRATIONS;
}
