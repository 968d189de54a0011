//! Bringing a cluster up: `initdb`, a free port, and waiting until the server accepts connections.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::os_user::RunAs;
use crate::postmaster::Postmaster;
use crate::server::{HOST, POLL, SUPERUSER};
use crate::HarnessError;

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How many server-log lines to quote in errors.
const LOG_TAIL_LINES: usize = 40;

/// Why one start attempt failed.
pub(crate) enum StartFailure {
    /// Another process took the port: try another.
    PortTaken,
    /// Anything else.
    Fatal(HarnessError),
}

/// Runs `initdb` for `data_dir` (inside `dir`, which the server's user owns).
pub(crate) fn initdb(
    run_as: &RunAs,
    bindir: &Path,
    dir: &Path,
    data_dir: &Path,
) -> Result<(), HarnessError> {
    let args: Vec<OsString> = vec![
        "-D".into(),
        data_dir.into(),
        "-A".into(),
        "trust".into(),
        "-U".into(),
        SUPERUSER.into(),
        "-E".into(),
        "UTF8".into(),
        "--locale=C".into(),
        "--no-sync".into(),
    ];
    let out = run_as
        .command(&bindir.join("initdb"), &args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io(format!("running {}/initdb", bindir.display()), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(HarnessError::Initdb {
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

/// Waits until the server accepts connections, fails, or times out.
pub(crate) fn wait_until_ready(
    postmaster: &mut Postmaster,
    port: u16,
    data_dir: &Path,
    log_path: &Path,
) -> Result<(), StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = postmaster.try_wait().map_err(StartFailure::Fatal)? {
            let tail = log_tail(log_path);
            if is_bind_failure(&tail) {
                return Err(StartFailure::PortTaken);
            }
            return Err(StartFailure::Fatal(HarnessError::ServerExited {
                status: status.to_string(),
                log_tail: tail,
            }));
        }
        let last_error = match probe(port, data_dir) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(StartFailure::Fatal(HarnessError::StartTimeout {
                port,
                waited_secs: START_TIMEOUT.as_secs(),
                last_error,
                log_tail: log_tail(log_path),
            }));
        }
        sleep(POLL);
    }
}

/// Connects to `port` and checks that the server there serves `data_dir` (and not another
/// process that grabbed the port first).
fn probe(port: u16, data_dir: &Path) -> Result<(), String> {
    let mut client = postgres::Config::new()
        .host(HOST)
        .port(port)
        .user(SUPERUSER)
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(2))
        .connect(postgres::NoTls)
        .map_err(|e| e.to_string())?;
    let served: String = client
        .query_one("SELECT current_setting('data_directory')", &[])
        .map_err(|e| e.to_string())?
        .get(0);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same(Path::new(&served), data_dir) {
        Ok(())
    } else {
        Err(format!(
            "port {port} is served by another cluster ({served})"
        ))
    }
}

/// Whether a server log says the TCP port was taken.
fn is_bind_failure(log: &str) -> bool {
    log.contains("could not bind") || log.contains("could not create any TCP/IP sockets")
}

/// Picks a TCP port on [`HOST`] that is free right now.
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::io("finding a free TCP port", e))
}

/// The last [`LOG_TAIL_LINES`] lines of the server log.
pub(crate) fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn bind_failures_are_recognised() {
        assert!(is_bind_failure(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!is_bind_failure(
            "LOG:  database system is ready to accept connections"
        ));
    }
}
