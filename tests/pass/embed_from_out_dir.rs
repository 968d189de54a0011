// Embeds the sinks that the Builder wrote to OUT_DIR; runs checks on what was embedded.
use cdc_runtime::{FileCategory, Migrations};

static DIRECTORY: Migrations = cdc_runtime::include_migrations!("sink_asma.directory");

fn main() {
    assert_eq!(DIRECTORY.sink(), "sink_asma.directory");
    assert_eq!(DIRECTORY.database("dev"), Some("directory_dev"));
    assert_eq!(DIRECTORY.database("prod"), Some("directory"));
    let paths: Vec<&str> = DIRECTORY.files().iter().map(|f| f.path.as_ref()).collect();
    assert_eq!(paths[0], "00-infrastructure/01-create-schemas.sql");
    assert_eq!(paths[1], "00-infrastructure/02-cdc-management.sql");
    assert!(paths.contains(&"01-tables/Order Details.sql"));
    // Apply order: infrastructure, then every final table, then every staging file.
    let categories: Vec<FileCategory> = DIRECTORY.files().iter().map(|f| f.category).collect();
    assert!(
        categories.windows(2).all(|w| w[0] <= w[1]),
        "{categories:?}"
    );
    assert!(DIRECTORY.verify().is_ok());

    // An expression: usable in a function body too.
    let billing = cdc_runtime::include_migrations!("sink_asma.billing");
    assert_eq!(billing.sink(), "sink_asma.billing");
    assert_eq!(billing.database("dev"), Some("billing_dev"));
    assert!(billing
        .files()
        .iter()
        .any(|f| f.path == "01-tables/InvoiceLine-staging.sql"));
}
