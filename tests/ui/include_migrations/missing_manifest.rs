// A sink directory without manifest.yaml.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/no_manifest");

fn main() {
    let _ = &MIGRATIONS;
}
