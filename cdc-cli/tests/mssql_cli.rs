//! End-to-end tests of the source-side commands that need no SQL Server:
//! `--dry-run` scripts, usage errors, missing settings and unreachable servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `cdc` with no MSSQL_* variable from the caller's environment.
fn cdc(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("MSSQL_") {
            command.env_remove(key);
        }
    }
    command.envs(vars.iter().copied());
    command.output().expect("run cdc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project with one service whose tables have awkward names.
fn hostile_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("services")).unwrap();
    std::fs::write(
        dir.path().join("services/evil.yaml"),
        "evil:\n  source:\n    tables:\n      'dbo.x]; DROP TABLE y --': {}\n      \"dbo.it's\": {}\n",
    )
    .unwrap();
    dir
}

#[test]
fn enable_cdc_dry_run_covers_every_table_without_connecting() {
    // A host that cannot be reached: a connection attempt would fail the command.
    let unreachable = [("MSSQL_HOST", "127.0.0.1"), ("MSSQL_PORT", "1")];
    let out = cdc(
        &repo_root(),
        &[
            "manage-migrations",
            "enable-cdc",
            "--env",
            "dev",
            "--service",
            "directory",
            "--dry-run",
        ],
        &unreachable,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for table in ["Actor", "AllTypes", "AuditTrail", "Order Details", "select"] {
        assert!(
            stdout.contains(&format!("DECLARE @source_name sysname = N'{table}';")),
            "{table} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("is_tracked_by_cdc = 1"));
    assert!(stdout.contains("@role_name = NULL"));
    assert!(!text(&out.stderr).contains("connecting"));
}

#[test]
fn clean_cdc_dry_run_honours_days_and_table() {
    let out = cdc(
        &repo_root(),
        &[
            "manage-migrations",
            "clean-cdc",
            "--env",
            "dev",
            "--service",
            "directory",
            "--table",
            "dbo.Actor",
            "--days",
            "7",
            "--dry-run",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("DATEADD(day, -7, GETDATE())"), "{stdout}");
    assert!(stdout.contains("N'[dbo].[Actor]'"));
    assert!(!stdout.contains("AllTypes"));
    assert!(stdout.contains("IF @low_water_mark > @start_lsn"));
}

#[test]
fn hostile_names_are_quoted_in_dry_run_output() {
    let project = hostile_project();
    let out = cdc(
        project.path(),
        &[
            "manage-migrations",
            "enable-cdc",
            "--env",
            "dev",
            "--dry-run",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("OBJECT_ID(N'[dbo].[x]]; DROP TABLE y --]', N'U')"),
        "{stdout}"
    );
    assert!(stdout.contains("N'x]; DROP TABLE y --'"));
    assert!(stdout.contains("N'it''s'"));
    // The only DROP is inside literals and comments.
    for line in stdout.lines().filter(|l| l.contains("DROP")) {
        assert!(
            line.starts_with("-- ") || line.contains("N'"),
            "unquoted: {line}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let root = repo_root();
    let several = cdc(
        &root,
        &[
            "manage-migrations",
            "enable-cdc",
            "--env",
            "dev",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(several.status.code(), Some(2));
    assert!(text(&several.stderr).contains("--service"));

    let unknown = cdc(
        &root,
        &[
            "manage-migrations",
            "clean-cdc",
            "--env",
            "dev",
            "--service",
            "directory",
            "--table",
            "Nope",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no source table `Nope`"));

    let no_service = cdc(
        &root,
        &[
            "manage-services",
            "resources",
            "--inspect",
            "--service",
            "nope",
        ],
        &[],
    );
    assert_eq!(no_service.status.code(), Some(2));
    assert!(text(&no_service.stderr).contains("no service `nope`"));
}

#[test]
fn missing_settings_are_named() {
    let out = cdc(
        &repo_root(),
        &[
            "manage-services",
            "resources",
            "--inspect",
            "--service",
            "directory",
            "--env",
            "stage",
        ],
        &[("MSSQL_STAGE_HOST", "db.example.invalid")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MSSQL_STAGE_DATABASE is not set (nor MSSQL_DATABASE)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn connection_errors_name_host_port_and_database_but_not_the_password() {
    let out = cdc(
        &repo_root(),
        &[
            "manage-migrations",
            "enable-cdc",
            "--env",
            "dev",
            "--service",
            "directory",
        ],
        &[
            ("MSSQL_DEV_HOST", "127.0.0.1"),
            ("MSSQL_DEV_PORT", "1"),
            ("MSSQL_DEV_DATABASE", "Directory"),
            ("MSSQL_USER", "cdc"),
            ("MSSQL_PASSWORD", "hunter2-secret"),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to SQL Server at 127.0.0.1:1, database Directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2-secret"));
    assert!(!text(&out.stdout).contains("hunter2-secret"));
}
