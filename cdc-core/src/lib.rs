//! Shared definitions of the CDC migration toolkit.
//!
//! Everything that must agree between the generator (`cdc-build`), the
//! compile-time embedder (`cdc-macros`), the runtime (`cdc-runtime`) and the CLI
//! lives here, once:
//!
//! - [`checksum`]: the persisted checksum format (`-- Checksum: sha256:<hex>`),
//!   computed over a file's body only;
//! - [`manifest`]: the `manifest.yaml` model, its renderer and a strict reader
//!   for the exact subset the generator writes (no YAML library needed at runtime);
//! - [`layout`]: every directory and file name, the OUT_DIR layout, the
//!   management schema and the regenerate command;
//! - [`category`]: file categories and the apply order;
//! - [`history`]: the DDL of `cdc_management.migration_history`;
//! - [`migrations`]: a sink's files as one value, loaded from a directory or
//!   embedded by `include_migrations!`, verified the same way in both cases;
//! - [`schema`]: table shapes, schema changes and their one comparison, the
//!   reader of `converge_table` calls and the live catalog query, shared by
//!   the diff and the runtime's `verify_schema`.
//!
//! ```
//! use cdc_core::checksum::{body_checksum, split_migration};
//!
//! let file = "-- header\n-- Checksum: sha256:".to_string()
//!     + &body_checksum("SELECT 1;\n").to_string()[7..]
//!     + "\nSELECT 1;\n";
//! let parsed = split_migration(&file).unwrap();
//! assert_eq!(parsed.body, "SELECT 1;\n");
//! assert!(parsed.verify().is_ok());
//! ```

pub mod category;
pub mod checksum;
pub mod history;
pub mod layout;
pub mod manifest;
pub mod migrations;
pub mod schema;
pub mod time;

pub use category::{apply_order, FileCategory, OrderedFile};
pub use checksum::{body_checksum, split_migration, Checksum, ChecksumError, SplitMigration};
pub use manifest::{Manifest, ManifestError, SinkTarget};
pub use migrations::{DatabaseEntry, LoadError, MigrationFile, Migrations};
