// Embeds the committed migrations (path = ...) and checks that they carry the
// same files, checksums and bodies as what the Builder generated into OUT_DIR.
use cdc_runtime::Migrations;

static COMMITTED: Migrations =
    cdc_runtime::include_migrations!(path = "migrations/sink_asma.directory");
static GENERATED: Migrations = cdc_runtime::include_migrations!("sink_asma.directory");

fn main() {
    assert_eq!(COMMITTED.sink(), GENERATED.sink());
    assert_eq!(COMMITTED.databases(), GENERATED.databases());
    assert_eq!(COMMITTED.files().len(), GENERATED.files().len());
    for (committed, generated) in COMMITTED.files().iter().zip(GENERATED.files()) {
        assert_eq!(committed.path, generated.path);
        assert_eq!(committed.category, generated.category);
        assert_eq!(committed.checksum, generated.checksum, "{}", committed.path);
        assert_eq!(committed.body(), generated.body(), "{}", committed.path);
    }
    let valid = cdc_runtime::include_migrations!(path = "ui-fixtures/sinks/valid/");
    assert_eq!(valid.sink(), "ui_sink");
    assert_eq!(valid.files().len(), 3);
}
