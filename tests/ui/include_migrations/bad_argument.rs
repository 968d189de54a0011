// Neither a sink name nor `path = "..."`.
static MIGRATIONS: cdc_runtime::Migrations = cdc_runtime::include_migrations!(dir = "migrations");

fn main() {
    let _ = &MIGRATIONS;
}
