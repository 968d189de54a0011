//! Generates the bundled example's migrations and row structs into OUT_DIR, and
//! fails the build when the committed `migrations/` drift from `services/`.

fn main() -> Result<(), cdc_build::builder::BuildError> {
    // The project root is found upward from this crate: the workspace's `services/`.
    cdc_build::builder::Builder::new()
        .committed_migrations("migrations")
        .build()?;
    Ok(())
}
