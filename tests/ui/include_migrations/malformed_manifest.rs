// manifest.yaml says `table_count: one`.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/malformed_manifest");

fn main() {
    let _ = &MIGRATIONS;
}
