//! `include_migrations!`: embeds a sink's verified migrations in the binary.
//!
//! ```ignore
//! // build.rs runs cdc_build::builder::Builder, which writes the sinks to OUT_DIR:
//! static MIGRATIONS: cdc_runtime::Migrations = cdc_runtime::include_migrations!("sink_asma.directory");
//!
//! // or a committed directory, relative to CARGO_MANIFEST_DIR:
//! static COMMITTED: cdc_runtime::Migrations =
//!     cdc_runtime::include_migrations!(path = "migrations/sink_asma.directory");
//! ```
//!
//! At compile time the macro reads `manifest.yaml` and every file it lists with
//! `cdc_core::migrations::read_dir_files`, the function the CLI and the runtime
//! use, so every checksum is verified before anything is embedded. Each file is
//! embedded with `include_str!` of its absolute path, so editing it rebuilds the
//! crate. Any problem (OUT_DIR not set, unknown sink, missing manifest, missing
//! file, tampered file) is a `compile_error!` pointing at the macro's argument.
//!
//! Use it through `cdc_runtime::include_migrations!`: the expansion names
//! `::cdc_runtime` items.

use proc_macro::TokenStream;

mod expand;

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
