//! TLS modes against a real server with a (self-signed) certificate:
//! `require` encrypts without verifying, `verify-full` refuses an untrusted
//! certificate, `disable` stays plain.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use cdc_runtime::{ApplyError, ConnectOptions, SslMode};
// The harness crate was renamed from `tests` to `cdc_testkit`; the alias keeps this file's body as it was.
use cdc_testkit as tests;

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
    let server = tests::PgServer::start_with(&[
        ("ssl", "on"),
        ("ssl_cert_file", &cert),
        ("ssl_key_file", &key),
    ])
    .expect("server with TLS");
    let options = |sslmode| ConnectOptions {
        host: server.host().into(),
        port: server.port(),
        user: server.user().into(),
        password: None,
        dbname: "postgres".into(),
        sslmode,
        connect_timeout: Duration::from_secs(5),
        retry_for: Duration::from_millis(300),
    };
    let encrypted = |client: &mut postgres::Client| -> bool {
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .expect("pg_stat_ssl")
            .get(0)
    };
    let mut required = cdc_runtime::connect(&options(SslMode::Require))
        .expect("require accepts a self-signed certificate");
    assert!(encrypted(&mut required));
    let mut preferred = cdc_runtime::connect(&options(SslMode::Prefer)).expect("prefer");
    assert!(encrypted(&mut preferred));
    let mut plain = cdc_runtime::connect(&options(SslMode::Disable)).expect("disable");
    assert!(!encrypted(&mut plain));
    match cdc_runtime::connect(&options(SslMode::VerifyFull)) {
        Err(ApplyError::Connect { source, .. }) => {
            let text = format!("{source:?}").to_lowercase();
            assert!(
                text.contains("certificate") || text.contains("tls") || text.contains("ssl"),
                "{text}"
            );
        }
        other => panic!(
            "verify-full accepted an untrusted certificate: {:?}",
            other.map(|_| ())
        ),
    }
}
