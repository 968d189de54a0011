//! The drift check as CI feels it: `cargo build` of a crate whose `build.rs` runs
//! `cdc_build::builder::Builder` with a committed `migrations/` directory fails
//! when the YAML changed without regenerating, and `CDC_UPDATE=1` fixes it.
//!
//! The crate is written to a temporary directory (the project of
//! `tests/ui-fixtures/projects/original`, a `build.rs`, a `main.rs` that embeds
//! the committed sink) and built with the real `cargo`, offline, against the
//! workspace's lock file; its target directory, `<target>/drift-probe`, is kept
//! between runs so only the probe itself is rebuilt.

use cdc_testkit::copy_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tests_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn workspace_root() -> &'static Path {
    tests_dir()
        .parent()
        .expect("the tests crate lives in the workspace")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The workspace's target directory (`cargo metadata`).
fn target_dir() -> PathBuf {
    let output = Command::new(cargo())
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

fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "/")
}

/// Writes the probe crate: manifest, build script, main, the one-table project.
fn write_probe(dir: &Path) {
    let manifest = format!(
        "[package]\nname = \"drift-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n\
         [dependencies]\ncdc-runtime = {{ path = \"{}\" }}\n\n\
         [build-dependencies]\ncdc-build = {{ path = \"{}\" }}\n",
        toml_path(&workspace_root().join("cdc-runtime")),
        toml_path(&workspace_root().join("cdc-build")),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("writing Cargo.toml");
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .expect("copying Cargo.lock");
    std::fs::write(
        dir.join("build.rs"),
        "fn main() -> Result<(), cdc_build::builder::BuildError> {\n    \
         cdc_build::builder::Builder::new().committed_migrations(\"migrations\").build()?;\n    \
         Ok(())\n}\n",
    )
    .expect("writing build.rs");
    std::fs::create_dir_all(dir.join("src")).expect("creating src");
    std::fs::write(
        dir.join("src/main.rs"),
        "static MIGRATIONS: cdc_runtime::Migrations =\n    \
         cdc_runtime::include_migrations!(path = \"migrations/shop_sink\");\n\n\
         mod rows {\n    cdc_runtime::include_rows!();\n}\n\n\
         fn main() {\n    println!(\"{} files, table {}\", MIGRATIONS.files().len(), rows::shop::Customer::TABLE);\n}\n",
    )
    .expect("writing main.rs");
    copy_dir(&tests_dir().join("ui-fixtures/projects/original"), dir);
}

/// `cargo build` of the probe; `update` sets `CDC_UPDATE=1`.
fn build(dir: &Path, target: &Path, update: bool) -> Output {
    let mut command = Command::new(cargo());
    command
        .args(["build", "--offline"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("OUT_DIR")
        .env_remove("CDC_UPDATE");
    if update {
        command.env("CDC_UPDATE", "1");
    }
    command.output().expect("running cargo build")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("reading the migrations") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let contents = read(&path);
                files.push((path, contents));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn yaml_edit_without_regenerating_fails_the_build_and_cdc_update_fixes_it() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let probe = temp.path();
    let target = target_dir().join("drift-probe");
    write_probe(probe);
    let sink = probe.join("migrations/shop_sink");

    // No committed migrations yet: CDC_UPDATE=1 writes them, then a plain build is clean.
    let first = build(probe, &target, true);
    assert!(
        first.status.success(),
        "CDC_UPDATE=1 build failed:\n{}",
        text(&first)
    );
    assert!(
        text(&first).contains("CDC_UPDATE=1: rewrote"),
        "{}",
        text(&first)
    );
    assert!(read(&sink.join("01-tables/Customer.sql")).contains("\"Age\" integer"));
    let clean = build(probe, &target, false);
    assert!(
        clean.status.success(),
        "build with up-to-date migrations failed:\n{}",
        text(&clean)
    );

    // Edit the YAML without regenerating: Age becomes bigint, a table is added.
    let schemas = probe.join("services/_schemas/shop/dbo");
    let customer = read(&schemas.join("Customer.yaml"))
        .replace("{name: Age, type: int,", "{name: Age, type: bigint,");
    std::fs::write(schemas.join("Customer.yaml"), customer).expect("editing Customer.yaml");
    std::fs::write(
        schemas.join("Order.yaml"),
        "database: Shop\nschema: dbo\nservice: shop\ntable: Order\ncolumns:\n  - {name: OrderId, type: int, nullable: false, primary_key: true}\n",
    )
    .expect("adding Order.yaml");
    let service = read(&probe.join("services/shop.yaml"))
        .replace(
            "      dbo.Customer: {}\n",
            "      dbo.Customer: {}\n      dbo.Order: {}\n",
        )
        .replace(
            "          from: dbo.Customer\n",
            "          from: dbo.Customer\n        shop.Order:\n          from: dbo.Order\n",
        );
    std::fs::write(probe.join("services/shop.yaml"), service).expect("editing shop.yaml");
    let before = snapshot(&sink);

    let drifted = build(probe, &target, false);
    let message = text(&drifted);
    assert!(
        !drifted.status.success(),
        "the build should fail on drift:\n{message}"
    );
    for needle in [
        "the committed migrations in `migrations` differ from what the YAML generates",
        "shop_sink: table `Customer` modified (01-tables/Customer-staging.sql, 01-tables/Customer.sql)",
        "shop_sink: table `Order` added (01-tables/Order-staging.sql, 01-tables/Order.sql)",
        "shop_sink: manifest modified (manifest.yaml)",
        "regenerate them with `cdc manage-migrations generate`",
        "CDC_UPDATE=1",
    ] {
        assert!(message.contains(needle), "missing {needle:?} in:\n{message}");
    }
    assert_eq!(
        snapshot(&sink),
        before,
        "a failed drift check must not touch the committed files"
    );

    // CDC_UPDATE=1 rewrites the committed files and the build passes again.
    let updated = build(probe, &target, true);
    assert!(
        updated.status.success(),
        "CDC_UPDATE=1 build failed:\n{}",
        text(&updated)
    );
    assert!(read(&sink.join("01-tables/Customer.sql")).contains("\"Age\" bigint"));
    assert!(sink.join("01-tables/Order.sql").is_file());
    assert!(read(&sink.join("manifest.yaml")).contains("01-tables/Order-staging.sql"));
    let after = build(probe, &target, false);
    assert!(
        after.status.success(),
        "build after CDC_UPDATE failed:\n{}",
        text(&after)
    );
}
