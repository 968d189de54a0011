//! Compile-time tests of `include_migrations!` and the generated row structs (trybuild).
//!
//! trybuild compiles each case in a crate of its own under
//! `<target>/tests/trybuild/tests/`, which has no build script. This driver
//! plays the build script's part: it runs `cdc_build::builder::Builder` into a
//! directory under `<target>/cdc-trybuild/` and hands it to the cases as
//! `OUT_DIR`, and it copies `tests/ui-fixtures/` and the committed `migrations/`
//! into the trybuild crate, against whose `CARGO_MANIFEST_DIR` the cases'
//! `path = "..."` arguments resolve. Four runs:
//!
//! 1. `OUT_DIR` = the bundled example: `pass/embed_*.rs`, `pass/rows_example.rs`,
//!    every `ui/include_migrations/*.rs` and `ui/include_rows/with_arguments.rs`;
//! 2. `OUT_DIR` = `ui-fixtures/projects/original` (Customer.Age `int`):
//!    `pass/rows_column_types.rs` compiles and runs;
//! 3. `OUT_DIR` = `ui-fixtures/projects/retyped` (Age `bigint`, nothing else
//!    changed): the same code, `ui/rows/column_type_changed.rs`, fails to
//!    compile, while `pass/rows_retyped.rs`, written for `i64`, compiles;
//! 4. `OUT_DIR` = `ui-fixtures/projects/original` generated without row structs
//!    (`Builder::rows(false)`): `pass/embed_without_rows.rs` embeds the migrations,
//!    `ui/include_rows/rows_not_generated.rs` fails with what to do.
//!
//! Every run has a `pass` case, so trybuild builds (rather than checks) in all
//! four and they share one set of compiled dependencies.
//!
//! `TRYBUILD=overwrite` refreshes the `.stderr` files.

use std::path::{Path, PathBuf};

use cdc_build::builder::Builder;

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workspace_root() -> &'static Path {
    tests_dir().parent().unwrap_or(Path::new(".."))
}

/// The target directory, as trybuild finds it (`cargo metadata`).
fn target_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(tests_dir())
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = String::from_utf8(output.stdout).expect("cargo metadata prints UTF-8");
    let key = "\"target_directory\":\"";
    let start = json
        .find(key)
        .expect("cargo metadata names the target directory")
        + key.len();
    let end = start + json[start..].find('"').expect("a closed string");
    PathBuf::from(json[start..end].replace("\\\\", "\\"))
}

/// Replaces `to` with a copy of `from`.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    cdc_testkit::copy_dir(from, to);
}

/// Runs the Builder on `project` into `<target>/cdc-trybuild/<name>` and returns that directory.
fn generate(target: &Path, name: &str, project: &Path) -> PathBuf {
    generate_with(target, name, project, Builder::new())
}

/// [`generate`] with a Builder configured by the caller.
fn generate_with(target: &Path, name: &str, project: &Path, builder: Builder) -> PathBuf {
    let out_dir = target.join("cdc-trybuild").join(name);
    builder
        .project_dir(project)
        .out_dir(&out_dir)
        .quiet(true)
        .build()
        .unwrap_or_else(|e| panic!("generating {name}: {e}"));
    out_dir
}

/// Runs one trybuild batch with `OUT_DIR` set to `out_dir`.
fn run_with_out_dir(out_dir: &Path, cases: impl FnOnce(&trybuild::TestCases)) {
    // The cases read OUT_DIR when they compile: `env!` (tracked by cargo) and the
    // macro. This test is alone in its binary, so setting the variable is safe.
    std::env::set_var("OUT_DIR", out_dir);
    let t = trybuild::TestCases::new();
    cases(&t);
    drop(t);
}

#[test]
fn compile_time_behaviour() {
    let target = target_dir();
    // trybuild names its crate directory after the package under test.
    let trybuild_crate = target
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    copy_dir(
        &tests_dir().join("ui-fixtures"),
        &trybuild_crate.join("ui-fixtures"),
    );
    copy_dir(
        &workspace_root().join("migrations"),
        &trybuild_crate.join("migrations"),
    );

    let example = generate(&target, "example", workspace_root());
    let fixtures = tests_dir().join("ui-fixtures").join("projects");
    let original = generate(&target, "original", &fixtures.join("original"));
    let retyped = generate(&target, "retyped", &fixtures.join("retyped"));
    let without_rows = generate_with(
        &target,
        "without_rows",
        &fixtures.join("original"),
        Builder::new().rows(false),
    );

    run_with_out_dir(&example, |t| {
        t.pass("pass/embed_from_out_dir.rs");
        t.pass("pass/embed_committed_path.rs");
        t.pass("pass/rows_example.rs");
        t.compile_fail("ui/include_migrations/*.rs");
        t.compile_fail("ui/include_rows/with_arguments.rs");
    });
    run_with_out_dir(&original, |t| t.pass("pass/rows_column_types.rs"));
    run_with_out_dir(&retyped, |t| {
        t.pass("pass/rows_retyped.rs");
        t.compile_fail("ui/rows/column_type_changed.rs");
    });
    run_with_out_dir(&without_rows, |t| {
        t.pass("pass/embed_without_rows.rs");
        t.compile_fail("ui/include_rows/rows_not_generated.rs");
    });
}
