// OUT_DIR holds the bundled example's sinks; this one is not among them.
static MIGRATIONS: cdc_runtime::Migrations = cdc_runtime::include_migrations!("sink_asma.nope");

fn main() {
    let _ = &MIGRATIONS;
}
