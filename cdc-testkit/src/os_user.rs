//! Running PostgreSQL as the `postgres` OS user when the tests run as root.
//!
//! `initdb` and `postgres` refuse to run with an effective uid of 0. CI runs as root, so there the
//! harness hands the cluster's directory to the `postgres` OS user and runs `initdb` and the
//! server through `runuser -u postgres --` (or `su -s /bin/sh postgres -c`, where `runuser` is
//! missing). As any other user everything runs directly.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// The OS user that runs PostgreSQL when the tests run as root.
const OS_USER: &str = "postgres";

/// Where `runuser` lives on common distributions, besides `$PATH`.
const RUNUSER_CANDIDATES: &[&str] = &["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"];

/// Which OS user runs `initdb` and the server.
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// The current (non-root) user runs them directly.
    CurrentUser,
    /// The tests run as root: the `postgres` OS user runs them.
    Postgres {
        /// The `postgres` user's uid.
        uid: u32,
        /// The `postgres` user's primary gid.
        gid: u32,
        /// `runuser`, if installed; otherwise `su` is used.
        runuser: Option<PathBuf>,
    },
}

impl RunAs {
    /// Decides from the effective uid who runs PostgreSQL.
    pub(crate) fn detect() -> Result<Self, HarnessError> {
        if effective_uid()? != 0 {
            return Ok(Self::CurrentUser);
        }
        let uid = id_of(&["-u", OS_USER])?;
        let gid = id_of(&["-g", OS_USER])?;
        let runuser = find_runuser();
        Ok(Self::Postgres { uid, gid, runuser })
    }

    /// A command that runs `program args...` as the chosen user.
    pub(crate) fn command(&self, program: &Path, args: &[OsString]) -> Command {
        match self {
            Self::CurrentUser => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            Self::Postgres {
                runuser: Some(runuser),
                ..
            } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", OS_USER, "--"]).arg(program).args(args);
                cmd
            }
            Self::Postgres { runuser: None, .. } => {
                let mut line = shell_quote(program.as_os_str());
                for arg in args {
                    line.push(" ");
                    line.push(shell_quote(arg));
                }
                let mut cmd = Command::new("su");
                cmd.args(["-s", "/bin/sh", OS_USER, "-c"]).arg(line);
                cmd
            }
        }
    }

    /// The directory to create the cluster's temporary directory in.
    ///
    /// As root this must be traversable by the `postgres` user: `$TMPDIR` (via
    /// [`std::env::temp_dir`]) if it is, else `/tmp` if that is.
    pub(crate) fn temp_parent(&self) -> Result<PathBuf, HarnessError> {
        let preferred = std::env::temp_dir();
        let Self::Postgres { uid, gid, .. } = self else {
            return Ok(preferred);
        };
        for candidate in [preferred.clone(), PathBuf::from("/tmp")] {
            if traversable_by(&candidate, *uid, *gid) {
                return Ok(candidate);
            }
        }
        Err(HarnessError::TempDirNotTraversable { path: preferred })
    }

    /// Hands `dir` (created by the current user) to the user that runs PostgreSQL.
    pub(crate) fn hand_over(&self, dir: &Path) -> Result<(), HarnessError> {
        match self {
            Self::CurrentUser => Ok(()),
            Self::Postgres { uid, gid, .. } => {
                std::os::unix::fs::chown(dir, Some(*uid), Some(*gid)).map_err(|e| {
                    HarnessError::io(format!("chown {} to {OS_USER}", dir.display()), e)
                })
            }
        }
    }
}

/// The effective uid of this process.
///
/// Read from `/proc/self/status` (the workspace forbids `unsafe`, so no `libc::geteuid`), with
/// `id -u` as the fallback where `/proc` is missing.
fn effective_uid() -> Result<u32, HarnessError> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok());
        if let Some(euid) = euid {
            return Ok(euid);
        }
    }
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| HarnessError::io("running `id -u` to find the effective uid", e))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            HarnessError::io(
                "parsing `id -u`",
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
            )
        })
}

/// Runs `id ARGS` and parses the number it prints.
fn id_of(args: &[&str]) -> Result<u32, HarnessError> {
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| HarnessError::NoPostgresUser {
            detail: format!("could not run `id`: {e}"),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse() {
        Ok(id) if out.status.success() => Ok(id),
        _ => Err(HarnessError::NoPostgresUser {
            detail: format!(
                "`id {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
    }
}

/// `runuser` from `$PATH` or a usual location.
fn find_runuser() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("runuser"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(RUNUSER_CANDIDATES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Whether the user `uid`/`gid` may traverse `dir` and every ancestor of it.
fn traversable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    dir.ancestors().all(|d| match std::fs::metadata(d) {
        Ok(m) => {
            let mode = m.mode();
            mode & 0o001 != 0
                || (m.uid() == uid && mode & 0o100 != 0)
                || (m.gid() == gid && mode & 0o010 != 0)
        }
        Err(_) => false,
    })
}

/// Quotes `arg` for a POSIX shell.
fn shell_quote(arg: &OsStr) -> OsString {
    let mut out = b"'".to_vec();
    for &b in arg.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn shell_quote_escapes_single_quotes() {
        assert_eq!(
            shell_quote(OsStr::new("a'b c")),
            OsString::from("'a'\\''b c'")
        );
    }

    #[test]
    fn root_directory_is_traversable() {
        assert!(traversable_by(Path::new("/"), 65534, 65534));
    }
}
