//! TLS modes against a real server with a (self-signed) certificate:
//! `require` encrypts without verifying, `verify-full` refuses an untrusted
//! certificate, `disable` stays plain; with both drivers' connect functions.

mod drivers;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use cdc_runtime::{ApplyError, ConnectOptions, SslMode};
use drivers::{Driver, Session};

fn make_certificate(dir: &std::path::Path) -> bool {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(dir.join("server.crt"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return false;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod key");
    // As root the server runs as `postgres`, which must own its key.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        let chowned = Command::new("chown")
            .arg("-R")
            .arg("postgres")
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(chowned, "chown of the certificate to postgres");
    }
    true
}

#[test]
fn tls_modes_behave_like_libpq() {
    let dir = tempfile::Builder::new()
        .prefix("pg-tls-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    if !make_certificate(dir.path()) {
        eprintln!("skipped: the openssl command is not available to make a test certificate");
        return;
    }
    let cert = dir.path().join("server.crt").to_string_lossy().into_owned();
    let key = dir.path().join("server.key").to_string_lossy().into_owned();
    let server = cdc_testkit::PgServer::start_with(&[
        ("ssl", "on"),
        ("ssl_cert_file", &cert),
        ("ssl_key_file", &key),
    ])
    .expect("server with TLS");
    let options = |sslmode| ConnectOptions {
        sslmode,
        retry_for: Duration::from_millis(300),
        ..drivers::plain_options(&server, "postgres")
    };
    let encrypted = |session: &mut Session| -> bool {
        session.value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    };
    // One server for both drivers; every message names the driver.
    for driver in [Driver::Blocking, Driver::Async] {
        let mut required = driver
            .connect(&options(SslMode::Require))
            .unwrap_or_else(|e| panic!("{driver}: require accepts a self-signed certificate: {e}"));
        assert!(encrypted(&mut required), "{driver}: require encrypts");
        let mut preferred = driver
            .connect(&options(SslMode::Prefer))
            .unwrap_or_else(|e| panic!("{driver}: prefer: {e}"));
        assert!(
            encrypted(&mut preferred),
            "{driver}: prefer encrypts when offered"
        );
        let mut plain = driver
            .connect(&options(SslMode::Disable))
            .unwrap_or_else(|e| panic!("{driver}: disable: {e}"));
        assert!(!encrypted(&mut plain), "{driver}: disable stays plain");
        match driver.connect(&options(SslMode::VerifyFull)) {
            Err(ApplyError::Connect { source, .. }) => {
                let text = format!("{source:?}").to_lowercase();
                assert!(
                    text.contains("certificate") || text.contains("tls") || text.contains("ssl"),
                    "{driver}: {text}"
                );
            }
            other => panic!(
                "{driver}: verify-full accepted an untrusted certificate: {:?}",
                other.map(|_| ())
            ),
        }
    }
}
