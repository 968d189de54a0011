//! Generates the bundled example's migrations and row structs into OUT_DIR, for
//! the tests that stage typed rows (`include_rows!()`, tests/copy_staging.rs).

fn main() -> Result<(), cdc_build::builder::BuildError> {
    // The project root is found upward from this crate: the workspace's `services/`.
    cdc_build::builder::Builder::new().build()?;
    Ok(())
}
