//! What the cdc-build benchmarks share: synthetic projects from `../shared/tools/synth.py` and the sizes to run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The generated-at time every benchmark renders with.
pub const TIME: &str = "2026-01-01 00:00:00 UTC";

/// `../shared/tools/synth.py` next to the checkout, if it is there.
pub fn synth_script() -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/synth.py");
    script.is_file().then_some(script)
}

/// A synthetic project of `tables` tables in `<tempdir>/project`.
pub fn make_project(tables: usize) -> Option<tempfile::TempDir> {
    let script = synth_script()?;
    let dir = tempfile::tempdir().ok()?;
    let out = dir.path().join("project");
    let status = Command::new("python3")
        .arg(script)
        .args(["--tables", &tables.to_string(), "--out"])
        .arg(&out)
        .status()
        .ok()?;
    status.success().then_some(dir)
}

/// The sizes `CDC_BENCH_SIZES` names (`170,1000`), else `default`.
pub fn sizes(default: &[usize]) -> Vec<usize> {
    std::env::var("CDC_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}
