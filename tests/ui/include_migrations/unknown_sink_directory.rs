// A committed directory that does not exist: the sinks beside it are listed.
static MIGRATIONS: cdc_runtime::Migrations =
    cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/nope");

fn main() {
    let _ = &MIGRATIONS;
}
