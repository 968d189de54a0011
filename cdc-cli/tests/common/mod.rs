//! What the CLI's end-to-end tests share: the `cdc` binary, copies of the bundled example, file snapshots.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use cdc_core::layout::{MIGRATIONS_DIR, SERVICES_DIR, SINK_GROUPS_FILE};
use cdc_testkit::copy_dir;

/// The workspace root, which holds the bundled example.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `cdc` in `dir`, without the caller's `SOURCE_DATE_EPOCH` or `RUST_LOG`.
pub fn cdc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run cdc")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary copy of the example project's inputs (`services/`, `sink-groups.yaml`),
/// with its committed `migrations/` when `with_migrations`.
pub fn example_project(with_migrations: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &repo_root().join(SERVICES_DIR),
        &dir.path().join(SERVICES_DIR),
    );
    if with_migrations {
        copy_dir(
            &repo_root().join(MIGRATIONS_DIR),
            &dir.path().join(MIGRATIONS_DIR),
        );
    }
    std::fs::copy(
        repo_root().join(SINK_GROUPS_FILE),
        dir.path().join(SINK_GROUPS_FILE),
    )
    .expect("copy sink groups");
    dir
}

/// Every file under `dir` with its bytes and modification time, sorted.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                out.push((path.clone(), std::fs::read(&path).expect("read"), modified));
            }
        }
    }
    out.sort();
    out
}
