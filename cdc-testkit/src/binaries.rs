//! Locating the PostgreSQL binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// Environment variable that names the PostgreSQL binary directory.
const BINDIR_ENV: &str = "PG_BINDIR";

/// Where Debian and Ubuntu install PostgreSQL 15.
const DEFAULT_BINDIR: &str = "/usr/lib/postgresql/15/bin";

/// Returns the directory holding `initdb`, `postgres` and `psql`.
///
/// `$PG_BINDIR` wins if set (and must then hold `initdb`); otherwise `pg_config --bindir` is used
/// if it names a directory with `initdb`; otherwise [`DEFAULT_BINDIR`].
pub(crate) fn find_bindir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return check(dir.clone(), format!("{BINDIR_ENV}={}", dir.display()));
    }
    let mut tried = Vec::new();
    match pg_config_bindir() {
        Some(dir) if has_initdb(&dir) => return Ok(dir),
        Some(dir) => tried.push(format!("pg_config --bindir ({})", dir.display())),
        None => tried.push("pg_config --bindir (not available)".to_owned()),
    }
    tried.push(DEFAULT_BINDIR.to_owned());
    check(PathBuf::from(DEFAULT_BINDIR), tried.join(", "))
}

/// Accepts `dir` if it holds `initdb`.
fn check(dir: PathBuf, tried: String) -> Result<PathBuf, HarnessError> {
    if has_initdb(&dir) {
        Ok(dir)
    } else {
        Err(HarnessError::BinariesNotFound { bindir: dir, tried })
    }
}

/// Whether `dir` holds an `initdb` file.
fn has_initdb(dir: &Path) -> bool {
    dir.join("initdb").is_file()
}

/// What `pg_config --bindir` prints, if it runs and succeeds.
fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}
