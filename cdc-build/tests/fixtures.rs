//! Golden tests: every case under `tests/fixtures/<case>/` holds a `project/`
//! and an `expected/` directory. A project that loads is generated with a fixed
//! timestamp and must match `expected/migrations/` file for file, with its
//! warnings in `expected/warnings.txt`; a project that fails must report exactly
//! `expected/errors.txt`. `UPDATE_EXPECT=1 cargo test -p cdc-build --test fixtures`
//! rewrites the expectations; nothing is ever overwritten silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdc_build::{generate, load_project, Error, Filter, GenerateOptions};

const FIXED_TIME: &str = "2000-01-01 00:00:00 UTC";

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// What a case produces: files under `migrations/` plus `warnings.txt` or `errors.txt`.
fn actual_output(project_dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match load_project(project_dir, &Filter::default()) {
        Ok(project) => {
            let warnings: Vec<String> = project.warnings.iter().map(|w| format!("{w}\n")).collect();
            out.insert("warnings.txt".to_string(), warnings.concat());
            for sink in generate(&project, &GenerateOptions::new(FIXED_TIME)).render_all() {
                for (path, contents) in sink.all_files() {
                    out.insert(format!("migrations/{}/{path}", sink.name), contents);
                }
            }
        }
        Err(Error::Invalid(diagnostics)) => {
            let lines: Vec<String> = diagnostics.iter().map(|d| format!("{d}\n")).collect();
            out.insert("errors.txt".to_string(), lines.concat());
        }
        Err(other) => panic!("{}: unexpected error kind: {other}", project_dir.display()),
    }
    out
}

fn check(case: &str) {
    let case_dir = fixtures_dir().join(case);
    let actual = actual_output(&case_dir.join("project"));
    let expected_dir = case_dir.join("expected");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        if expected_dir.exists() {
            std::fs::remove_dir_all(&expected_dir).unwrap();
        }
        for (path, contents) in &actual {
            let target = expected_dir.join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, contents).unwrap();
        }
        return;
    }
    let expected = read_tree(&expected_dir);
    assert!(
        !expected.is_empty(),
        "{case}: no expectations; run with UPDATE_EXPECT=1 to create them"
    );
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&actual),
        names(&expected),
        "{case}: different files (UPDATE_EXPECT=1 to accept)"
    );
    for (path, contents) in &expected {
        assert_eq!(
            &actual[path], contents,
            "{case}: {path} differs (UPDATE_EXPECT=1 to accept)"
        );
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*
    };
}

cases!(
    long_names,
    target_exists_and_templates,
    unknown_type_warns,
    malformed_yaml,
    missing_field,
    duplicate_column,
    unknown_from,
    unknown_primary_key,
    bad_identifier,
    bad_types,
    alias_bomb,
    deep_nesting,
    db_shared_and_mapping_override,
    duplicate_keys,
    sink_collisions,
    duplicate_primary_key,
    unreadable_inputs,
    type_ranges,
    bom_and_crlf,
    template_default_not_an_expression,
    error_locations,
    renamed_from_misuse,
    renamed_column,
    tenant_key,
    tenant_key_without_source_key,
    tenant_key_not_a_bool,
    distribution,
    distribution_errors,
);

#[test]
fn every_fixture_has_a_test() {
    let mut listed: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut known = vec![
        "long_names",
        "target_exists_and_templates",
        "unknown_type_warns",
        "malformed_yaml",
        "missing_field",
        "duplicate_column",
        "unknown_from",
        "unknown_primary_key",
        "bad_identifier",
        "bad_types",
        "alias_bomb",
        "deep_nesting",
        "db_shared_and_mapping_override",
        "duplicate_keys",
        "sink_collisions",
        "duplicate_primary_key",
        "unreadable_inputs",
        "type_ranges",
        "bom_and_crlf",
        "template_default_not_an_expression",
        "error_locations",
        "renamed_from_misuse",
        "renamed_column",
        "tenant_key",
        "tenant_key_without_source_key",
        "tenant_key_not_a_bool",
        "distribution",
        "distribution_errors",
    ];
    known.sort();
    assert_eq!(listed, known);
}
