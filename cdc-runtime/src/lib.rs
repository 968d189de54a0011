//! Applying CDC migrations to PostgreSQL (being built).

pub use cdc_core::{Checksum, DatabaseEntry, FileCategory, MigrationFile, Migrations};
pub use {postgres, tokio_postgres};
