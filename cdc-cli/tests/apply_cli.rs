//! End-to-end tests of `cdc manage-migrations apply` and `status` against a real PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cdc_core::checksum::{assemble, split_migration};
use cdc_core::layout::{MANIFEST_FILE, MIGRATIONS_DIR};
use cdc_testkit::copy_dir;

const SINK: &str = "sink_asma.directory";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A project holding a copy of the committed migrations, with `dev` pointing at a fresh database.
fn project(db: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &repo_root().join(MIGRATIONS_DIR),
        &dir.path().join(MIGRATIONS_DIR),
    );
    for sink in ["sink_asma.directory", "sink_asma.billing"] {
        let manifest = dir
            .path()
            .join(MIGRATIONS_DIR)
            .join(sink)
            .join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        let text = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("dev:") {
                    format!("    dev: \"{db}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&manifest, text + "\n").expect("write manifest");
    }
    dir
}

fn cdc(project: &Path, args: &[&str]) -> Command {
    let server = cdc_testkit::shared();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command
        .args(args)
        .current_dir(project)
        .env("PG_DEV_HOST", server.host())
        .env("PG_DEV_PORT", server.port().to_string())
        .env("PG_DEV_USER", server.user())
        .env("PG_DEV_SSLMODE", "disable")
        .env_remove("PG_HOST")
        .env_remove("PG_PORT")
        .env_remove("RUST_LOG");
    command
}

fn run(project: &Path, args: &[&str]) -> Output {
    cdc(project, args).output().expect("run cdc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn rewrite_body(file: &Path, edit: impl Fn(&str) -> String) {
    let contents = std::fs::read_to_string(file).expect("read");
    let split = split_migration(&contents).expect("checksum line");
    std::fs::write(file, assemble(split.header, &edit(split.body))).expect("write");
}

#[test]
fn apply_then_status_with_exit_codes_and_json() {
    let db = cdc_testkit::shared().create_database("cli_apply");
    let project = project(&db);
    let dir = project.path();

    let several = run(dir, &["manage-migrations", "apply", "--env", "dev"]);
    assert_eq!(several.status.code(), Some(2));
    assert!(
        text(&several.stderr).contains("several sinks; choose one with --sink"),
        "{}",
        text(&several.stderr)
    );
    let unknown_env = run(
        dir,
        &["manage-migrations", "apply", "--env", "qa", "--sink", SINK],
    );
    assert_eq!(unknown_env.status.code(), Some(2));
    assert!(
        text(&unknown_env.stderr).contains("environment `qa` is not in the manifest"),
        "{}",
        text(&unknown_env.stderr)
    );

    let offline = run(
        dir,
        &["manage-migrations", "status", "--offline", "--sink", SINK],
    );
    assert_eq!(offline.status.code(), Some(1));
    assert!(
        text(&offline.stdout).contains("0 applied, 11 pending, 0 modified"),
        "{}",
        text(&offline.stdout)
    );

    let dry = run(
        dir,
        &[
            "manage-migrations",
            "apply",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--dry-run",
        ],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("apply     01-tables/Actor.sql  (new)"),
        "{}",
        text(&dry.stdout)
    );
    let pending = run(
        dir,
        &[
            "manage-migrations",
            "status",
            "--env",
            "dev",
            "--sink",
            SINK,
        ],
    );
    assert_eq!(pending.status.code(), Some(1), "dry run changed nothing");

    let apply = run(
        dir,
        &[
            "manage-migrations",
            "apply",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--format",
            "json",
        ],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply.stderr));
    let report: serde_json::Value = serde_json::from_slice(&apply.stdout).expect("json");
    assert_eq!(report["new"], 11);
    assert_eq!(
        report["files"][0]["path"],
        "00-infrastructure/01-create-schemas.sql"
    );

    let status = run(
        dir,
        &[
            "manage-migrations",
            "status",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--format",
            "json",
        ],
    );
    assert_eq!(status.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["applied"], 11);
    assert!(status["files"][0]["applied_at"].is_string());

    // A regenerated file shows as modified, and apply re-applies it.
    rewrite_body(
        &dir.join(MIGRATIONS_DIR)
            .join(SINK)
            .join("01-tables/AuditTrail.sql"),
        |b| format!("{b}-- regenerated\n"),
    );
    let modified = run(
        dir,
        &[
            "manage-migrations",
            "status",
            "--env",
            "dev",
            "--sink",
            SINK,
        ],
    );
    assert_eq!(modified.status.code(), Some(1));
    assert!(
        text(&modified.stdout).contains("modified  01-tables/AuditTrail.sql"),
        "{}",
        text(&modified.stdout)
    );
    let again = run(
        dir,
        &["manage-migrations", "apply", "--env", "dev", "--sink", SINK],
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(
        text(&again.stdout).contains("0 new, 1 updated, 10 skipped"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn verbose_logs_go_to_stderr_and_leave_stdout_as_it_was() {
    let db = cdc_testkit::shared().create_database("cli_verbose");
    let project = project(&db);
    let dir = project.path();
    let apply = ["manage-migrations", "apply", "--env", "dev", "--sink", SINK];

    let verbose = run(dir, &[&apply[..], &["-v"]].concat());
    assert_eq!(verbose.status.code(), Some(0), "{}", text(&verbose.stderr));
    let (stdout, stderr) = (text(&verbose.stdout), text(&verbose.stderr));
    assert!(
        stdout.contains("sink sink_asma.directory: 11 new, 0 updated, 0 skipped"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("INFO"),
        "logs never reach stdout: {stdout}"
    );
    for needle in [
        "INFO",
        "applied",
        "file=01-tables/Actor.sql",
        "outcome=\"new\"",
        "apply finished",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    assert!(!stderr.contains("DEBUG"), "-v is info: {stderr}");

    // Without -v only warnings are logged; a boot with nothing to do has none.
    let quiet = run(dir, &apply);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(text(&quiet.stdout).contains("0 new, 0 updated, 11 skipped"));
    assert_eq!(text(&quiet.stderr), "", "nothing logged by default");

    // -vv adds debug events; RUST_LOG, when set, decides instead of -v.
    let debug = run(
        dir,
        &[
            "-vv", apply[0], apply[1], apply[2], apply[3], apply[4], apply[5],
        ],
    );
    assert!(
        text(&debug.stderr).contains("fast path"),
        "{}",
        text(&debug.stderr)
    );
    let filtered = cdc(dir, &[&apply[..], &["-vv"]].concat())
        .env("RUST_LOG", "off")
        .output()
        .expect("run cdc");
    assert_eq!(filtered.status.code(), Some(0));
    assert_eq!(text(&filtered.stderr), "", "RUST_LOG=off silences -vv");
    let by_env = cdc(dir, &apply)
        .env("RUST_LOG", "cdc_runtime=info")
        .output()
        .expect("run cdc");
    assert!(
        text(&by_env.stderr).contains("fast path"),
        "{}",
        text(&by_env.stderr)
    );
}

#[test]
fn a_tampered_file_fails_apply_with_exit_1_before_connecting() {
    let db = cdc_testkit::shared().create_database("cli_tampered");
    let project = project(&db);
    let file = project
        .path()
        .join(MIGRATIONS_DIR)
        .join(SINK)
        .join("01-tables/Actor.sql");
    let contents = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        contents.replace("\"Navn\" varchar(100)", "\"Navn\" varchar(10)"),
    )
    .expect("write");
    let out = run(
        project.path(),
        &["manage-migrations", "apply", "--env", "dev", "--sink", SINK],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("01-tables/Actor.sql") && stderr.contains("checksum mismatch"),
        "{stderr}"
    );
    let mut client = cdc_testkit::shared().client(&db);
    let exists: bool = client
        .query_one("SELECT to_regnamespace('directory') IS NOT NULL", &[])
        .expect("q")
        .get(0);
    assert!(!exists, "nothing was applied");
}

#[test]
fn a_failing_file_exits_1_naming_file_sqlstate_and_line() {
    let db = cdc_testkit::shared().create_database("cli_failing");
    let project = project(&db);
    let file = project
        .path()
        .join(MIGRATIONS_DIR)
        .join(SINK)
        .join("01-tables/select.sql");
    rewrite_body(&file, |b| {
        b.replacen(
            "CREATE INDEX",
            "SELECT * FROM no_such_table;\nCREATE INDEX",
            1,
        )
    });
    let line = std::fs::read_to_string(&file)
        .expect("read")
        .lines()
        .position(|l| l.contains("no_such_table"))
        .expect("line")
        + 1;
    let out = run(
        project.path(),
        &[
            "manage-migrations",
            "apply",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(error["error"]["file"], "01-tables/select.sql");
    assert_eq!(error["error"]["sqlstate"], "42P01");
    assert_eq!(error["error"]["line"], line);
}

#[test]
fn a_migrator_killed_mid_run_leaves_no_half_applied_file_and_the_next_run_completes() {
    let server = cdc_testkit::shared();
    let db = server.create_database("cli_killed");
    let project = project(&db);
    let sink_dir = project.path().join(MIGRATIONS_DIR).join(SINK);
    let actor = sink_dir.join("01-tables/Actor.sql");
    let original = std::fs::read(&actor).expect("read");
    // A slow statement after the CREATE TABLE of one file.
    rewrite_body(&actor, |b| {
        b.replacen("CALL ", "SELECT pg_sleep(60);\nCALL ", 1)
    });
    let mut child = cdc(
        project.path(),
        &["manage-migrations", "apply", "--env", "dev", "--sink", SINK],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn");
    let mut client = server.client(&db);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sleeping: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'",
                &[],
            )
            .expect("activity")
            .get(0);
        if sleeping > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the migrator never reached the slow file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    // The server notices the dead session and rolls its transaction back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'", &[])
        .expect("activity")
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the killed session lingers");
        std::thread::sleep(Duration::from_millis(50));
    }
    let actor_exists: bool = client
        .query_one("SELECT to_regclass('directory.\"Actor\"') IS NOT NULL", &[])
        .expect("q")
        .get(0);
    assert!(!actor_exists, "the file in progress left nothing behind");
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM cdc_management.migration_history WHERE file_name = '01-tables/Actor.sql'", &[])
        .expect("q")
        .get(0);
    assert_eq!(recorded, 0);
    let before: i64 = client
        .query_one("SELECT count(*) FROM cdc_management.migration_history", &[])
        .expect("q")
        .get(0);
    assert!(
        before >= 2,
        "the infrastructure files before it stay applied"
    );

    std::fs::write(&actor, original).expect("restore");
    let out = run(
        project.path(),
        &["manage-migrations", "apply", "--env", "dev", "--sink", SINK],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = run(
        project.path(),
        &[
            "manage-migrations",
            "status",
            "--env",
            "dev",
            "--sink",
            SINK,
        ],
    );
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
}

#[test]
fn an_unreachable_server_exits_1_after_a_bounded_retry() {
    let project = project("nowhere");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let started = Instant::now();
    let out = cdc(
        project.path(),
        &[
            "manage-migrations",
            "apply",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--connect-retry",
            "2",
        ],
    )
    .env("PG_DEV_PORT", port.to_string())
    .env("PG_DEV_PASSWORD", "hunter2")
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "could not connect to 127.0.0.1:{port}/nowhere after"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password is never printed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the retry is bounded"
    );
}
