//! `include_migrations!` and `include_rows!`: embed a sink's verified migrations and its row structs in the binary.
//!
//! ```ignore
//! // build.rs runs cdc_build::builder::Builder, which writes the sinks to OUT_DIR:
//! static MIGRATIONS: cdc_runtime::Migrations = cdc_runtime::include_migrations!("sink_asma.directory");
//!
//! // or a committed directory, relative to CARGO_MANIFEST_DIR:
//! static COMMITTED: cdc_runtime::Migrations =
//!     cdc_runtime::include_migrations!(path = "migrations/sink_asma.directory");
//!
//! // the row structs the same Builder wrote next to them:
//! mod rows {
//!     cdc_runtime::include_rows!();
//! }
//! ```
//!
//! At compile time `include_migrations!` reads `manifest.yaml` and every file it
//! lists with `cdc_core::migrations::read_dir_files`, the function the CLI and the
//! runtime use, so every checksum is verified before anything is embedded. Each
//! file is embedded with `include_str!` of its absolute path, so editing it
//! rebuilds the crate. Any problem (OUT_DIR not set, unknown sink, missing
//! manifest, missing file, tampered file) is a `compile_error!` pointing at the
//! macro's argument.
//!
//! `include_rows!()` expands to `include!` of the absolute path of
//! `$OUT_DIR/cdc/rows.rs` (`cdc_core::layout::OUT_DIR_ROWS`); without a build
//! script that generated it, it is a `compile_error!` saying so.
//!
//! Use them through `cdc_runtime::include_migrations!` and
//! `cdc_runtime::include_rows!`: the expansions name `::cdc_runtime` items.

use proc_macro::TokenStream;

mod expand;
mod rows;

/// Embeds a sink's migrations as a `cdc_runtime::Migrations` expression.
///
/// `include_migrations!("<sink>")` embeds `$OUT_DIR/cdc/migrations/<sink>/`, written by
/// `cdc_build::builder::Builder` from `build.rs`; `include_migrations!(path = "<dir>")`
/// embeds a committed sink directory, relative to `CARGO_MANIFEST_DIR`.
#[proc_macro]
pub fn include_migrations(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as expand::MacroInput);
    expand::expand(&input, &expand::Env::from_process())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Includes the row structs that `cdc_build::builder::Builder` wrote to `$OUT_DIR/cdc/rows.rs`.
///
/// Items, one module per target schema: call it inside a module of your own,
/// `mod rows { cdc_runtime::include_rows!(); }`, then name `rows::<schema>::<Table>`.
#[proc_macro]
pub fn include_rows(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as rows::NoArguments);
    rows::expand(input, &expand::Env::from_process())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
