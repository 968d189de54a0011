//! The expansion of `include_rows!()`: the row structs that the build script wrote to `OUT_DIR`.
//!
//! No `proc_macro` types here (only `proc_macro2`), so unit tests call [`expand`]
//! directly. Every failure is a [`syn::Error`] spanned on the macro call.

use cdc_core::layout::OUT_DIR_ROWS;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};

use crate::expand::{absolute_str, Env};

/// What to do when the row structs are not there, said by every error.
const ADD_BUILD_SCRIPT: &str =
    "add a build.rs that runs cdc_build::builder::Builder with rows enabled";

/// The (empty) argument list of `include_rows!()`.
#[derive(Debug, Clone, Copy)]
pub struct NoArguments;

impl Parse for NoArguments {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            Ok(NoArguments)
        } else {
            Err(input.error(format!(
                "`include_rows!()` takes no arguments: it includes `$OUT_DIR/{OUT_DIR_ROWS}`, every row struct the build script generated"
            )))
        }
    }
}

/// Expands the macro: `include!` of the absolute path of `$OUT_DIR/cdc/rows.rs`, or a spanned error.
///
/// `include!` itself tracks the file, so regenerated rows rebuild the crate.
pub fn expand(_input: NoArguments, env: &Env) -> syn::Result<TokenStream> {
    let error = |message: String| syn::Error::new(Span::call_site(), message);
    let Some(out_dir) = &env.out_dir else {
        return Err(error(format!(
            "`include_rows!()` reads `$OUT_DIR/{OUT_DIR_ROWS}`, but OUT_DIR is not set: {ADD_BUILD_SCRIPT}"
        )));
    };
    let rows = out_dir.join(OUT_DIR_ROWS);
    if !rows.is_file() {
        return Err(error(format!(
            "no row structs in OUT_DIR (`$OUT_DIR/{OUT_DIR_ROWS}` does not exist): {ADD_BUILD_SCRIPT}"
        )));
    }
    let path = absolute_str(&rows).map_err(error)?;
    Ok(quote! { ::core::include!(#path); })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proc_macro2::Literal;

    use super::*;

    fn env(out_dir: &Path) -> Env {
        Env {
            out_dir: Some(out_dir.to_path_buf()),
            manifest_dir: None,
        }
    }

    fn error_of(env: &Env) -> String {
        match expand(NoArguments, env) {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn takes_no_arguments() {
        assert!(syn::parse_str::<NoArguments>("").is_ok());
        for bad in ["\"sink\"", "path = \"x\"", ","] {
            let message = match syn::parse_str::<NoArguments>(bad) {
                Ok(_) => panic!("{bad:?} should not parse"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains("takes no arguments"), "{message}");
        }
    }

    #[test]
    fn includes_the_absolute_path_of_the_generated_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let rows = tmp.path().join(OUT_DIR_ROWS);
        std::fs::create_dir_all(rows.parent().unwrap()).unwrap();
        std::fs::write(&rows, "pub mod shop {}\n").unwrap();
        let tokens = expand(NoArguments, &env(tmp.path())).unwrap().to_string();
        assert!(rows.is_absolute());
        let path = Literal::string(rows.to_str().unwrap());
        assert_eq!(tokens, quote! { ::core::include!(#path); }.to_string());
    }

    #[test]
    fn says_how_to_generate_rows_when_they_are_missing() {
        let unset = error_of(&Env::default());
        assert!(unset.contains("OUT_DIR is not set"), "{unset}");
        assert!(unset.contains(ADD_BUILD_SCRIPT), "{unset}");

        let tmp = tempfile::tempdir().unwrap();
        let missing = error_of(&env(tmp.path()));
        assert!(
            missing.contains("`$OUT_DIR/cdc/rows.rs` does not exist"),
            "{missing}"
        );
        assert!(missing.contains(ADD_BUILD_SCRIPT), "{missing}");
    }
}
