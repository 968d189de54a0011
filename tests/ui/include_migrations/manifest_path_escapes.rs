// manifest.yaml lists `01-tables/../../../Cargo.toml.sql`, a path outside the sink directory.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/manifest_path_escapes");

fn main() {
    let _ = &MIGRATIONS;
}
