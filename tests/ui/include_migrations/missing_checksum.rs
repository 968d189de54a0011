// 01-tables/T.sql has no `-- Checksum: sha256:` line.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/no_checksum");

fn main() {
    let _ = &MIGRATIONS;
}
