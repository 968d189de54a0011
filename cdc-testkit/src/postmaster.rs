//! The postmaster process under its shell guard, which stops it when the test process exits.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::os_user::RunAs;
use crate::server::{HOST, POLL};
use crate::HarnessError;

/// How long a stopping server may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Server settings: durability off for speed, room for many parallel tests.
const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "64MB"),
];

/// The guard the postmaster runs under, as `sh -c GUARD_SCRIPT guard DIR POSTGRES ARGS...`.
///
/// It starts `POSTGRES ARGS...` in the background and exits with its status. Its standard input
/// is a pipe whose only writer is the test process: a watcher blocks reading it, so the read sees
/// end-of-file as soon as the test process closes it or exits (normally, by a panic, by a signal,
/// even by SIGKILL). The watcher then shuts the postmaster down (SIGQUIT: immediate shutdown),
/// waits until it is gone and removes DIR. A watcher whose postmaster is already dead does
/// nothing, so a failed start attempt leaves DIR alone. (A non-interactive shell gives background
/// jobs /dev/null as standard input, hence the copy on descriptor 3.)
const GUARD_SCRIPT: &str = r#"dir=$1
shift
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
(
  cat <&3 >/dev/null
  if kill -0 "$pid" 2>/dev/null; then
    kill -QUIT "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -rf -- "$dir"
  fi
) &
exec 3<&-
wait "$pid"
"#;

/// A postmaster running under the [`GUARD_SCRIPT`].
#[derive(Debug)]
pub(crate) struct Postmaster {
    /// The guard process (`sh`, or `runuser`/`su` running it).
    guard: Child,
    /// The write end of the guard's standard input; closing it stops the server.
    lifeline: Option<ChildStdin>,
    /// The data directory, whose `postmaster.pid` names the postmaster if it must be killed.
    data_dir: PathBuf,
}

impl Postmaster {
    /// Starts the postmaster on `port`, logging to `log`.
    pub(crate) fn spawn(
        run_as: &RunAs,
        bindir: &Path,
        dir: &Path,
        data_dir: &Path,
        port: u16,
        log: File,
        extra_settings: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let mut args: Vec<OsString> = vec![
            "-c".into(),
            GUARD_SCRIPT.into(),
            "pg-harness-guard".into(),
            dir.into(),
            bindir.join("postgres").into(),
            "-D".into(),
            data_dir.into(),
            "-p".into(),
            port.to_string().into(),
            "-h".into(),
            HOST.into(),
            "-k".into(),
            dir.into(),
        ];
        for (name, value) in SETTINGS.iter().chain(extra_settings) {
            args.push("-c".into());
            args.push(format!("{name}={value}").into());
        }
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("duplicating the server log handle", e))?;
        let mut guard = run_as
            .command(Path::new("/bin/sh"), &args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| HarnessError::io("starting the PostgreSQL server", e))?;
        let lifeline = guard.stdin.take();
        Ok(Self {
            guard,
            lifeline,
            data_dir: data_dir.to_owned(),
        })
    }

    /// How the guard exited, if it has (it exits when the postmaster does).
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        self.guard
            .try_wait()
            .map_err(|e| HarnessError::io("checking on the PostgreSQL server", e))
    }

    /// Shuts the server down with a fast shutdown (SIGINT: clients are disconnected, the data is
    /// checkpointed) and waits for it, leaving the data directory in place so that a new
    /// postmaster can start on it. The guard's watcher is released afterwards: it finds the
    /// postmaster gone and removes nothing.
    pub(crate) fn shut_down_keeping_data(&mut self) -> Result<(), HarnessError> {
        if self.try_wait()?.is_none() {
            let pid = postmaster_pid(&self.data_dir).ok_or_else(|| {
                HarnessError::io(
                    format!("reading {}/postmaster.pid", self.data_dir.display()),
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no postmaster pid"),
                )
            })?;
            signal(pid, "-INT");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while self.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    signal(pid, "-KILL");
                    let _ = self.guard.wait();
                    break;
                }
                sleep(POLL);
            }
        }
        drop(self.lifeline.take());
        Ok(())
    }

    /// Shuts the server down and waits for it; returns whether it was still running.
    ///
    /// Closing the lifeline makes the guard stop the postmaster; if that takes longer than
    /// [`STOP_TIMEOUT`], the postmaster and the guard are killed.
    pub(crate) fn stop(&mut self) -> bool {
        let was_running = matches!(self.guard.try_wait(), Ok(None));
        drop(self.lifeline.take());
        if !was_running {
            return false;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.guard.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                if let Some(pid) = postmaster_pid(&self.data_dir) {
                    signal(pid, "-KILL");
                }
                let _ = self.guard.kill();
                let _ = self.guard.wait();
                break;
            }
            sleep(POLL);
        }
        true
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `signal` (`-INT`, `-KILL`) to `pid`, best effort: the postmaster is ours (or the
/// `postgres` user's, and we are root), and `std` cannot signal arbitrary pids.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The postmaster's pid from the first line of `postmaster.pid`.
fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}
