//! The MSSQL source side of the CDC pipeline (DESIGN.md §9): catalog
//! inspection → table YAML, and CDC enabling and cleaning on the source.
//!
//! The crate is a sans-IO core with a thin driver:
//!
//! - [`catalog`]: the catalog query and its rows → [`TableYaml`];
//! - [`table_yaml`]: the table YAML model and its renderer (the format that
//!   cdc-build's loader reads, written so that a saved file round-trips);
//! - [`drift`]: what `--check` reports;
//! - [`plan`] and [`script`]: what enable-cdc and clean-cdc do, live and as an
//!   idempotent `--dry-run` script;
//! - [`connection`] and [`driver`]: settings and the tiberius connection, the
//!   only part that does network I/O.
//!
//! ```
//! use cdc_mssql::catalog::{tables_from_rows, CatalogRow};
//! use cdc_mssql::table_yaml::render_table_yaml;
//!
//! let row = CatalogRow {
//!     schema_name: "dbo".into(),
//!     table_name: "Actor".into(),
//!     column_id: 1,
//!     column_name: "Navn".into(),
//!     type_name: "nvarchar".into(),
//!     is_user_defined: false,
//!     system_type_name: Some("nvarchar".into()),
//!     max_length: 200, // bytes: 100 characters
//!     precision: 0,
//!     scale: 0,
//!     is_nullable: false,
//!     is_identity: false,
//!     is_computed: false,
//!     computed_definition: None,
//!     computed_is_persisted: None,
//!     default_definition: None,
//!     primary_key_ordinal: None,
//! };
//! let tables = tables_from_rows(&[row], Some("Directory"), Some("directory"))?;
//! assert!(render_table_yaml(&tables[0]).contains("    max_length: 100\n"));
//! # Ok::<(), cdc_mssql::Error>(())
//! ```
//!
//! Against a server (`rust,no_run`: it needs one):
//!
//! ```no_run
//! use cdc_mssql::connection::ConnectionSettings;
//! use cdc_mssql::driver::SourceConnection;
//!
//! let settings = ConnectionSettings::from_env(Some("dev"), |key| std::env::var(key).ok())?;
//! let mut source = SourceConnection::connect(&settings)?;
//! let rows = source.catalog_rows(Some("dbo"))?;
//! println!("{} columns", rows.len());
//! # Ok::<(), cdc_mssql::Error>(())
//! ```

pub mod catalog;
pub mod connection;
pub mod drift;
pub mod driver;
pub mod error;
pub mod ident;
pub mod inspect;
pub mod plan;
pub mod project;
mod scalar;
pub mod script;
pub mod table_yaml;

pub use error::Error;
pub use ident::TableRef;
pub use table_yaml::{ColumnYaml, TableYaml};
