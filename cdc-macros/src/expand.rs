//! The expansion of `include_migrations!`: locate the sink directory, load and verify it, emit tokens.
//!
//! No `proc_macro` types here (only `proc_macro2`), so unit tests and the
//! benchmark call [`expand`] directly. Every failure is a [`syn::Error`] spanned
//! on the macro's argument.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use cdc_core::checksum::ChecksumError;
use cdc_core::layout::{MANIFEST_FILE, OUT_DIR_MIGRATIONS, REGENERATE_COMMAND};
use cdc_core::migrations::{category_ident, read_dir_files, LoadError};
use cdc_core::{Manifest, MigrationFile};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::LitStr;

/// What the macro was asked to embed.
#[derive(Debug, Clone)]
pub enum MacroInput {
    /// `include_migrations!("<sink>")`: `$OUT_DIR/cdc/migrations/<sink>`.
    Sink(LitStr),
    /// `include_migrations!(path = "<dir>")`: a directory relative to `CARGO_MANIFEST_DIR`.
    Path(LitStr),
}

impl MacroInput {
    fn literal(&self) -> &LitStr {
        match self {
            MacroInput::Sink(lit) | MacroInput::Path(lit) => lit,
        }
    }
}

impl Parse for MacroInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const USAGE: &str =
            "expected a sink name, `include_migrations!(\"<sink>\")`, or a committed directory, `include_migrations!(path = \"migrations/<sink>\")`";
        let parsed = if input.peek(LitStr) {
            MacroInput::Sink(input.parse()?)
        } else if input.peek(syn::Ident) {
            let key: syn::Ident = input.parse()?;
            if key != "path" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`: {USAGE}"),
                ));
            }
            input.parse::<syn::Token![=]>()?;
            MacroInput::Path(input.parse()?)
        } else {
            return Err(input.error(USAGE));
        };
        if input.peek(syn::Token![,]) {
            input.parse::<syn::Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error(format!("unexpected tokens: {USAGE}")));
        }
        if parsed.literal().value().is_empty() {
            return Err(syn::Error::new(parsed.literal().span(), USAGE));
        }
        Ok(parsed)
    }
}

/// The environment the macro resolves paths against.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `OUT_DIR` of the crate being compiled (set by cargo when it has a build script).
    pub out_dir: Option<PathBuf>,
    /// `CARGO_MANIFEST_DIR` of the crate being compiled.
    pub manifest_dir: Option<PathBuf>,
}

impl Env {
    /// Reads `OUT_DIR` and `CARGO_MANIFEST_DIR` from the compiler's environment.
    pub fn from_process() -> Env {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Env {
            out_dir: var("OUT_DIR"),
            manifest_dir: var("CARGO_MANIFEST_DIR"),
        }
    }
}

/// A sink directory located on disk, with the name errors show for it.
#[derive(Debug, Clone)]
struct SinkDir {
    /// Absolute directory.
    dir: PathBuf,
    /// How errors name the directory: the path as written, or `$OUT_DIR/cdc/migrations/<sink>`.
    shown: String,
}

impl SinkDir {
    fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.dir) {
            Ok(rel) => format!("{}/{}", self.shown, slashes(rel)),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Expands the macro: the `cdc_runtime::Migrations` expression, or a spanned error.
pub fn expand(input: &MacroInput, env: &Env) -> syn::Result<TokenStream> {
    let span = input.literal().span();
    let error = |message: String| syn::Error::new(span, message);
    let sink_dir = locate(input, env).map_err(error)?;
    let (manifest, files) =
        read_dir_files(&sink_dir.dir).map_err(|e| error(describe(&e, &sink_dir)))?;
    emit(&sink_dir.dir, &manifest, &files, span).map_err(error)
}

/// Finds the sink directory, or explains why there is none.
fn locate(input: &MacroInput, env: &Env) -> Result<SinkDir, String> {
    match input {
        MacroInput::Sink(lit) => {
            let sink = lit.value();
            let Some(out_dir) = &env.out_dir else {
                return Err(format!(
                    "`include_migrations!(\"{sink}\")` embeds from OUT_DIR, which is not set: add a build.rs that runs `cdc_build::builder::Builder`, or embed a committed directory with `include_migrations!(path = \"migrations/{sink}\")`"
                ));
            };
            if sink.contains(['/', '\\']) || sink == "." || sink == ".." {
                return Err(format!(
                    "`{sink}` is not a sink name; to embed a directory write `include_migrations!(path = \"{sink}\")`"
                ));
            }
            let root = out_dir.join(OUT_DIR_MIGRATIONS);
            let dir = root.join(&sink);
            if !dir.is_dir() {
                if !root.is_dir() {
                    return Err(format!(
                        "no generated migrations in OUT_DIR ($OUT_DIR/{OUT_DIR_MIGRATIONS} does not exist): the crate's build.rs must run `cdc_build::builder::Builder`"
                    ));
                }
                return Err(format!(
                    "unknown sink `{sink}`; the build script generated: {}",
                    known_sinks(&root)
                ));
            }
            Ok(SinkDir {
                dir,
                shown: format!("$OUT_DIR/{OUT_DIR_MIGRATIONS}/{sink}"),
            })
        }
        MacroInput::Path(lit) => {
            let written = lit.value();
            let relative = Path::new(&written);
            let dir = if relative.is_absolute() {
                relative.to_path_buf()
            } else {
                match &env.manifest_dir {
                    Some(base) => base.join(relative),
                    None => {
                        return Err("CARGO_MANIFEST_DIR is not set: `path = ...` is relative to the crate's directory, so the crate must be built by cargo".to_string())
                    }
                }
            };
            let shown = written.trim_end_matches(['/', '\\']).to_string();
            if !dir.is_dir() {
                let parent = dir.parent().filter(|p| p.is_dir());
                return Err(match parent {
                    Some(parent) => format!(
                        "unknown sink directory `{shown}` (relative to CARGO_MANIFEST_DIR); the sinks beside it are: {}",
                        known_sinks(parent)
                    ),
                    None => format!("no directory `{shown}` (relative to CARGO_MANIFEST_DIR)"),
                });
            }
            Ok(SinkDir { dir, shown })
        }
    }
}

/// The sink directories (those holding a manifest) directly under `root`, sorted.
fn known_sinks(root: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join(MANIFEST_FILE).is_file())
        .map(|entry| format!("`{}`", entry.file_name().to_string_lossy()))
        .collect();
    names.sort();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The message of a load failure: what, which file, and what to do.
fn describe(error: &LoadError, sink: &SinkDir) -> String {
    match error {
        LoadError::Io { path, source }
            if source.kind() == std::io::ErrorKind::NotFound && path.ends_with(MANIFEST_FILE) =>
        {
            format!(
                "missing manifest: `{}` not found; regenerate the sink with `{REGENERATE_COMMAND}`",
                sink.show(path)
            )
        }
        LoadError::Io { path, source } => format!("cannot read `{}`: {source}", sink.show(path)),
        LoadError::Manifest { path, source } => {
            format!("malformed manifest `{}`: {source}", sink.show(path))
        }
        LoadError::MissingFile { path } => format!(
            "missing file: `{}` is listed in {MANIFEST_FILE} but does not exist; regenerate the sink with `{REGENERATE_COMMAND}`",
            sink.show(path)
        ),
        LoadError::Checksum {
            path,
            source: ChecksumError::Mismatch { embedded, actual },
        } => format!(
            "tampered file: `{}` was edited after generation: its checksum line says {embedded} but its body hashes to {actual}; change the YAML and regenerate with `{REGENERATE_COMMAND}` instead",
            sink.show(path)
        ),
        LoadError::Checksum { path, source } => format!(
            "bad checksum in `{}`: {source}; regenerate the sink with `{REGENERATE_COMMAND}`",
            sink.show(path)
        ),
        other => other.to_string(),
    }
}

/// The tokens of the `Migrations` value: two statics and a `from_static` call.
fn emit(
    dir: &Path,
    manifest: &Manifest,
    files: &[MigrationFile],
    span: Span,
) -> Result<TokenStream, String> {
    let manifest_path = absolute_str(&dir.join(MANIFEST_FILE))?;
    let sink = Literal::string(&manifest.sink_target.name);
    let databases = manifest
        .sink_target
        .databases
        .iter()
        .map(|(env, database)| {
            let env = Literal::string(env);
            let database = Literal::string(database);
            quote! {
                ::cdc_runtime::DatabaseEntry {
                    env: ::std::borrow::Cow::Borrowed(#env),
                    database: ::std::borrow::Cow::Borrowed(#database),
                }
            }
        });
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        let full = absolute_str(&dir.join(file.path.as_ref()))?;
        let path = Literal::string(&file.path);
        let category = format_ident!("{}", category_ident(file.category), span = span);
        // One byte-string token rather than 32 integer literals.
        let checksum = Literal::byte_string(&file.checksum.0);
        entries.push(quote! {
            ::cdc_runtime::MigrationFile {
                path: ::std::borrow::Cow::Borrowed(#path),
                category: ::cdc_runtime::FileCategory::#category,
                checksum: ::cdc_runtime::Checksum(*#checksum),
                contents: ::std::borrow::Cow::Borrowed(::core::include_str!(#full)),
            }
        });
    }
    let database_count = manifest.sink_target.databases.len();
    let file_count = entries.len();
    Ok(quote! {
        {
            const _: &str = ::core::include_str!(#manifest_path);
            static __CDC_DATABASES: [::cdc_runtime::DatabaseEntry; #database_count] = [#(#databases),*];
            static __CDC_FILES: [::cdc_runtime::MigrationFile; #file_count] = [#(#entries),*];
            ::cdc_runtime::Migrations::from_static(#sink, &__CDC_DATABASES, &__CDC_FILES)
        }
    })
}

/// An absolute path as a string literal for `include_str!` and `include!`.
pub(crate) fn absolute_str(path: &Path) -> Result<Literal, String> {
    let absolute: Cow<'_, Path> = if path.is_absolute() {
        Cow::Borrowed(path)
    } else {
        match std::env::current_dir() {
            Ok(cwd) => Cow::Owned(cwd.join(path)),
            Err(e) => return Err(format!("cannot resolve `{}`: {e}", path.display())),
        }
    };
    match absolute.to_str() {
        Some(text) => Ok(Literal::string(text)),
        None => Err(format!(
            "`{}` is not valid UTF-8, which include_str! and include! need",
            absolute.display()
        )),
    }
}

/// A relative path with `/` separators.
fn slashes(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_core::checksum::assemble;
    use cdc_core::manifest::SinkTarget;

    fn write_sink(dir: &Path, name: &str) {
        let manifest = Manifest {
            generated_at: "2026-01-01 00:00:00 UTC".into(),
            table_count: 1,
            schema_count: 1,
            sink_target: SinkTarget {
                name: name.into(),
                databases: [("dev".to_string(), "db_dev".to_string())].into(),
            },
            infrastructure: vec!["00-infrastructure/01-create-schemas.sql".into()],
            tables: vec!["01-tables/T.sql".into(), "01-tables/T-staging.sql".into()],
        };
        std::fs::create_dir_all(dir.join("00-infrastructure")).unwrap();
        std::fs::create_dir_all(dir.join("01-tables")).unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), manifest.render()).unwrap();
        for (path, body) in [
            (
                "00-infrastructure/01-create-schemas.sql",
                "CREATE SCHEMA s;\n",
            ),
            ("01-tables/T.sql", "CREATE TABLE s.t ();\n"),
            ("01-tables/T-staging.sql", "CREATE TABLE s.stg_t ();\n"),
        ] {
            std::fs::write(dir.join(path), assemble("-- h\n", body)).unwrap();
        }
    }

    fn lit(text: &str) -> LitStr {
        LitStr::new(text, Span::call_site())
    }

    fn env(out_dir: &Path) -> Env {
        Env {
            out_dir: Some(out_dir.to_path_buf()),
            manifest_dir: Some(out_dir.to_path_buf()),
        }
    }

    fn error_of(input: MacroInput, env: &Env) -> String {
        match expand(&input, env) {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_both_forms_and_rejects_others() {
        assert!(matches!(
            syn::parse_str::<MacroInput>("\"s\""),
            Ok(MacroInput::Sink(_))
        ));
        assert!(matches!(
            syn::parse_str::<MacroInput>("path = \"m/s\","),
            Ok(MacroInput::Path(_))
        ));
        for bad in ["", "dir = \"x\"", "\"a\" \"b\"", "\"\"", "42"] {
            assert!(
                syn::parse_str::<MacroInput>(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn embeds_files_in_apply_order_with_include_str() {
        let tmp = tempfile::tempdir().unwrap();
        write_sink(&tmp.path().join(OUT_DIR_MIGRATIONS).join("s"), "s");
        let tokens = expand(&MacroInput::Sink(lit("s")), &env(tmp.path()))
            .unwrap()
            .to_string();
        let order: Vec<usize> = ["01-create-schemas.sql", "T.sql\"", "T-staging.sql\""]
            .iter()
            .map(|needle| tokens.find(needle).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{tokens}");
        assert_eq!(
            tokens.matches("include_str !").count(),
            4,
            "three files and the manifest"
        );
        assert!(tokens.contains("FileCategory :: Staging"));
        assert!(tokens.contains("from_static (\"s\""));
        assert!(tokens.contains("\"db_dev\""));
    }

    #[test]
    fn reports_every_problem_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join(OUT_DIR_MIGRATIONS);
        write_sink(&root.join("good"), "good");
        write_sink(&root.join("tampered"), "tampered");
        let table = root.join("tampered/01-tables/T.sql");
        let text = std::fs::read_to_string(&table).unwrap();
        std::fs::write(&table, text.replace("s.t", "s.u")).unwrap();
        write_sink(&root.join("missing_file"), "missing_file");
        std::fs::remove_file(root.join("missing_file/01-tables/T-staging.sql")).unwrap();
        std::fs::create_dir_all(root.join("no_manifest")).unwrap();
        let env = env(tmp.path());

        let unknown = error_of(MacroInput::Sink(lit("nope")), &env);
        assert!(
            unknown.contains("unknown sink `nope`")
                && unknown.contains("`good`, `missing_file`, `tampered`"),
            "{unknown}"
        );
        let tampered = error_of(MacroInput::Sink(lit("tampered")), &env);
        assert!(
            tampered.contains("tampered file: `$OUT_DIR/cdc/migrations/tampered/01-tables/T.sql`"),
            "{tampered}"
        );
        assert_eq!(tampered.matches("sha256:").count(), 2, "{tampered}");
        let missing = error_of(MacroInput::Sink(lit("missing_file")), &env);
        assert!(
            missing.contains(
                "missing file: `$OUT_DIR/cdc/migrations/missing_file/01-tables/T-staging.sql`"
            ),
            "{missing}"
        );
        let no_manifest = error_of(MacroInput::Path(lit("cdc/migrations/no_manifest/")), &env);
        assert!(
            no_manifest.contains("missing manifest: `cdc/migrations/no_manifest/manifest.yaml`"),
            "{no_manifest}"
        );
        let no_dir = error_of(MacroInput::Path(lit("cdc/migrations/other")), &env);
        assert!(
            no_dir.contains("unknown sink directory `cdc/migrations/other`")
                && no_dir.contains("`good`"),
            "{no_dir}"
        );
        let no_out_dir = error_of(MacroInput::Sink(lit("good")), &Env::default());
        assert!(
            no_out_dir.contains("OUT_DIR, which is not set"),
            "{no_out_dir}"
        );
        let empty_out_dir = error_of(MacroInput::Sink(lit("good")), &self::env(&root));
        assert!(
            empty_out_dir.contains("no generated migrations in OUT_DIR"),
            "{empty_out_dir}"
        );
    }
}
