//! Bad output-side inputs through the `cdc` binary: a manifest path outside its
//! sink, files cdc did not generate, sinks no service declares, a sink path that
//! is a file. Each error exits 2 and leaves every file as it was (contents and
//! modification times).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use cdc_core::layout::{MANIFEST_FILE, MIGRATIONS_DIR, SERVICES_DIR, SINK_GROUPS_FILE};
use cdc_testkit::copy_dir;

const SINK: &str = "sink_asma.directory";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn cdc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("RUST_LOG")
        .output()
        .expect("run cdc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the example project: its inputs and its committed migrations.
fn example_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in [SERVICES_DIR, MIGRATIONS_DIR] {
        copy_dir(&repo_root().join(sub), &dir.path().join(sub));
    }
    std::fs::copy(
        repo_root().join(SINK_GROUPS_FILE),
        dir.path().join(SINK_GROUPS_FILE),
    )
    .expect("copy sink groups");
    dir
}

/// Every file under `dir` (hidden ones too) with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
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

#[test]
fn a_manifest_path_outside_the_sink_exits_2_in_status_and_apply_alike() {
    let project = example_project();
    let manifest = project
        .path()
        .join(MIGRATIONS_DIR)
        .join(SINK)
        .join(MANIFEST_FILE);
    let good = std::fs::read_to_string(&manifest).expect("manifest");
    let escaping = "01-tables/../../../outside.sql";
    let bad = good.replacen("\"01-tables/Actor.sql\"", &format!("\"{escaping}\""), 1);
    assert_ne!(bad, good, "the example lists 01-tables/Actor.sql");
    std::fs::write(&manifest, &bad).expect("write manifest");
    std::fs::write(project.path().join("outside.sql"), "DROP TABLE x;\n").expect("write");
    let line = bad
        .lines()
        .position(|l| l.contains(escaping))
        .expect("listed")
        + 1;
    let before = snapshot(project.path());

    let runs: [&[&str]; 4] = [
        &["status", "--offline", "--sink", SINK],
        &["apply", "--dry-run", "--env", "dev", "--sink", SINK],
        &["apply", "--env", "dev", "--sink", SINK],
        &["status", "--env", "dev", "--sink", SINK],
    ];
    for args in runs {
        let out = cdc(project.path(), &[&["manage-migrations"], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let located = format!("manifest.yaml line {line}: path \"{escaping}\"");
        assert_eq!(
            stderr.matches(&located).count(),
            1,
            "{args:?}: named once: {stderr}"
        );
        assert!(stderr.contains("`.` or `..` segment"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let json = cdc(
        project.path(),
        &[
            "manage-migrations",
            "apply",
            "--dry-run",
            "--env",
            "dev",
            "--sink",
            SINK,
            "--format",
            "json",
        ],
    );
    assert_eq!(json.status.code(), Some(2));
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let message = document["error"].to_string();
    assert_eq!(
        message.matches("`.` or `..` segment").count(),
        1,
        "{message}"
    );
    assert_eq!(snapshot(project.path()), before, "nothing written");
}

#[test]
fn generate_keeps_files_it_did_not_generate_and_says_so() {
    let project = example_project();
    let sink_dir = project.path().join(MIGRATIONS_DIR).join(SINK);
    std::fs::write(sink_dir.join("NOTES.md"), "hand-written notes\n").expect("write");
    std::fs::write(sink_dir.join("01-tables/custom.sql"), "SELECT 1;\n").expect("write");

    let check = cdc(
        project.path(),
        &["manage-migrations", "generate", "--check"],
    );
    let stdout = text(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(0),
        "a warning, not drift: {stdout}"
    );
    for file in ["NOTES.md", "01-tables/custom.sql"] {
        assert!(
            stdout.contains(&format!(
                "warning: migrations/{SINK}/{file}: not generated by cdc; kept"
            )),
            "{stdout}"
        );
    }

    // A change to the YAML makes generate rewrite the sink: the foreign files stay.
    let actor = project
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    let mut yaml = std::fs::read_to_string(&actor).expect("read");
    yaml.push_str("  - name: Nickname\n    type: nvarchar(40)\n    nullable: true\n");
    std::fs::write(&actor, yaml).expect("write");
    let out = cdc(project.path(), &["manage-migrations", "generate"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        text(&out.stdout).contains("modified"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "warning: migrations/{SINK}/NOTES.md: not generated by cdc"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: migrations/{SINK}/01-tables/custom.sql")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(sink_dir.join("NOTES.md")).expect("kept"),
        "hand-written notes\n"
    );
    assert_eq!(
        std::fs::read_to_string(sink_dir.join("01-tables/custom.sql")).expect("kept"),
        "SELECT 1;\n"
    );
    let manifest = std::fs::read_to_string(sink_dir.join(MANIFEST_FILE)).expect("manifest");
    assert!(
        !manifest.contains("custom.sql"),
        "never listed, never applied"
    );
}

#[test]
fn check_names_a_sink_directory_that_no_service_declares() {
    let project = example_project();
    let migrations = project.path().join(MIGRATIONS_DIR);
    copy_dir(
        &migrations.join(SINK),
        &migrations.join("sink_asma.retired"),
    );
    let before = snapshot(project.path());

    let check = cdc(
        project.path(),
        &["manage-migrations", "generate", "--check"],
    );
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "sink_asma.retired: no service declares this sink any more, but `apply --sink sink_asma.retired` would still apply it"
        ),
        "{stdout}"
    );
    let json = cdc(
        project.path(),
        &[
            "manage-migrations",
            "generate",
            "--check",
            "--format",
            "json",
        ],
    );
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(
        report["undeclared_sinks"],
        serde_json::json!(["sink_asma.retired"])
    );
    assert_eq!(snapshot(project.path()), before, "--check writes nothing");

    let out = cdc(project.path(), &["manage-migrations", "generate"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("migrations/sink_asma.retired: no service declares this sink"),
        "{}",
        text(&out.stderr)
    );
    assert!(migrations
        .join("sink_asma.retired")
        .join(MANIFEST_FILE)
        .is_file());
}

#[test]
fn a_sink_path_that_is_a_file_exits_2_and_leaves_no_backup() {
    let project = example_project();
    let migrations = project.path().join(MIGRATIONS_DIR);
    std::fs::remove_dir_all(migrations.join("sink_asma.billing")).expect("remove");
    std::fs::write(migrations.join("sink_asma.billing"), "a file\n").expect("write");
    // The other sink would change, so a partial write would show.
    let actor = project
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    let mut yaml = std::fs::read_to_string(&actor).expect("read");
    yaml.push_str("  - name: Nickname\n    type: nvarchar(40)\n    nullable: true\n");
    std::fs::write(&actor, yaml).expect("write");
    let before = snapshot(project.path());

    for args in [
        &["generate"][..],
        &["generate", "--check"],
        &["generate", "--dry-run"],
    ] {
        let out = cdc(project.path(), &[&["manage-migrations"], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("sink_asma.billing"), "{stderr}");
        assert!(stderr.contains("but it is a file"), "{stderr}");
        assert_eq!(
            snapshot(project.path()),
            before,
            "{args:?}: nothing written"
        );
        let mut names: Vec<String> = std::fs::read_dir(&migrations)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["sink_asma.billing", SINK],
            "no .old or staging left"
        );
    }
}

#[test]
fn a_tampered_file_exits_1_in_status_and_apply_alike() {
    let project = example_project();
    let file = project
        .path()
        .join(MIGRATIONS_DIR)
        .join(SINK)
        .join("01-tables/Actor.sql");
    let contents = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, contents.replacen("CREATE TABLE", "CREATE  TABLE", 1)).expect("write");
    let before = snapshot(project.path());
    let runs: [&[&str]; 3] = [
        &["status", "--offline", "--sink", SINK],
        &["apply", "--dry-run", "--env", "dev", "--sink", SINK],
        &["apply", "--env", "dev", "--sink", SINK],
    ];
    for args in runs {
        let out = cdc(project.path(), &[&["manage-migrations"], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("01-tables/Actor.sql") && stderr.contains("checksum mismatch"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: said once: {stderr}");
    }
    assert_eq!(snapshot(project.path()), before, "nothing written");
}
