//! End-to-end tests of `cdc manage-migrations generate` on copies of the bundled example.

mod common;

use common::{cdc, example_project, repo_root, snapshot, text};

use std::path::{Path, PathBuf};

#[test]
fn committed_example_migrations_match_the_yaml() {
    let out = cdc(&repo_root(), &["manage-migrations", "generate", "--check"]);
    assert!(
        out.status.success(),
        "committed migrations/ drifted from services/: {}{}\nrun `cargo run -p cdc-cli -- manage-migrations generate`",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("up to date"));
}

#[test]
fn regenerating_an_unchanged_project_writes_nothing() {
    let project = example_project(false);
    let first = cdc(project.path(), &["manage-migrations", "generate"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let migrations = project.path().join("migrations");
    let before = snapshot(&migrations);
    assert!(
        before.len() >= 19,
        "expected every file of both sinks, got {}",
        before.len()
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = cdc(project.path(), &["manage-migrations", "generate"]);
    assert!(second.status.success());
    assert!(
        text(&second.stdout).contains("0 added, 0 modified, 0 removed"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(
        snapshot(&migrations),
        before,
        "a regeneration rewrote files"
    );
}

#[test]
fn check_names_stale_files_and_dry_run_writes_nothing() {
    let project = example_project(false);
    assert!(cdc(project.path(), &["manage-migrations", "generate"])
        .status
        .success());
    let actor = project
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    let mut yaml = std::fs::read_to_string(&actor).unwrap();
    yaml.push_str("  - name: Nickname\n    type: nvarchar(40)\n    nullable: true\n");
    std::fs::write(&actor, yaml).unwrap();
    let migrations = project.path().join("migrations");
    let before = snapshot(&migrations);

    let check = cdc(
        project.path(),
        &["manage-migrations", "generate", "--check"],
    );
    assert_eq!(check.status.code(), Some(1));
    let stdout = text(&check.stdout);
    // The build script's drift report: by table and change kind, with the remedy.
    assert!(
        stdout.contains(
            "the committed migrations in `migrations` differ from what the YAML generates"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "sink_asma.directory: table `Actor` modified (01-tables/Actor-staging.sql, 01-tables/Actor.sql)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("regenerate them with `cdc manage-migrations generate`"),
        "{stdout}"
    );
    assert!(!stdout.contains("AllTypes"), "only Actor changed: {stdout}");
    assert!(
        !stdout.contains("CDC_UPDATE"),
        "a build-script remedy: {stdout}"
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
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["sinks_checked"], 2, "{report}");
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{report}");
    assert_eq!(entries[0]["sink"], "sink_asma.directory");
    assert_eq!(entries[0]["subject"]["table"], "Actor");
    assert_eq!(entries[0]["kind"], "modified");
    assert_eq!(
        entries[0]["files"],
        serde_json::json!(["01-tables/Actor-staging.sql", "01-tables/Actor.sql"])
    );

    let dry = cdc(
        project.path(),
        &["manage-migrations", "generate", "--dry-run"],
    );
    assert!(dry.status.success());
    assert!(text(&dry.stdout)
        .contains("would write: migrations/sink_asma.directory/01-tables/Actor.sql (modified)"));
    assert_eq!(snapshot(&migrations), before, "--dry-run wrote files");

    let real = cdc(project.path(), &["manage-migrations", "generate"]);
    assert!(real.status.success());
    let sql = std::fs::read_to_string(migrations.join("sink_asma.directory/01-tables/Actor.sql"))
        .unwrap();
    assert!(sql.contains("\"Nickname\" varchar(40)"));
    assert_eq!(
        cdc(
            project.path(),
            &["manage-migrations", "generate", "--check"]
        )
        .status
        .code(),
        Some(0)
    );
}

#[test]
fn bad_input_exits_2_and_leaves_everything_as_it_was() {
    let project = example_project(false);
    // Without migrations: nothing is created.
    let actor = project
        .path()
        .join("services/_schemas/directory/dbo/Actor.yaml");
    let good = std::fs::read_to_string(&actor).unwrap();
    std::fs::write(&actor, good.replace("    type: int\n", "")).unwrap();
    let out = cdc(project.path(), &["manage-migrations", "generate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("services/_schemas/directory/dbo/Actor.yaml:"),
        "{stderr}"
    );
    assert!(stderr.contains("missing field `type`"), "{stderr}");
    assert!(!project.path().join("migrations").exists());

    // With migrations: they stay byte-identical.
    std::fs::write(&actor, &good).unwrap();
    assert!(cdc(project.path(), &["manage-migrations", "generate"])
        .status
        .success());
    let before = snapshot(&project.path().join("migrations"));
    std::fs::write(&actor, good.replace("name: Navn", "name: actno")).unwrap();
    let out = cdc(project.path(), &["manage-migrations", "generate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("listed twice"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(snapshot(&project.path().join("migrations")), before);
}

#[test]
fn finds_the_project_root_from_a_subdirectory_and_filters() {
    let project = example_project(false);
    let sub = project.path().join("services/_schemas/billing");
    let out = cdc(
        &sub,
        &["manage-migrations", "generate", "--service", "billing"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(project
        .path()
        .join("migrations/sink_asma.billing/manifest.yaml")
        .is_file());
    assert!(!project
        .path()
        .join("migrations/sink_asma.directory")
        .exists());

    let unknown = cdc(&sub, &["manage-migrations", "generate", "--sink", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no sink named `nope`"));
    let no_project = cdc(&std::env::temp_dir(), &["manage-migrations", "generate"]);
    assert_eq!(no_project.status.code(), Some(2));
    assert!(text(&no_project.stderr).contains("no project found"));
}

#[test]
fn a_table_left_out_of_a_sink_loses_its_files() {
    let project = example_project(false);
    assert!(cdc(project.path(), &["manage-migrations", "generate"])
        .status
        .success());
    let service = project.path().join("services/directory.yaml");
    let yaml = std::fs::read_to_string(&service).unwrap();
    std::fs::write(
        &service,
        yaml.replace(
            "        directory.AuditTrail:\n          from: dbo.AuditTrail\n          distribution: local\n",
            "",
        ),
    )
    .unwrap();
    let out = cdc(project.path(), &["manage-migrations", "generate"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("sink_asma.directory: 0 added, 1 modified, 1 removed"),
        "{}",
        text(&out.stdout)
    );
    let dir = project.path().join("migrations/sink_asma.directory");
    assert!(!dir.join("01-tables/AuditTrail.sql").exists());
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert!(!manifest.contains("AuditTrail"));
    assert!(manifest.contains("table_count: 4"));
}

#[test]
fn table_option_regenerates_only_that_tables_files() {
    let project = example_project(false);
    assert!(cdc(project.path(), &["manage-migrations", "generate"])
        .status
        .success());
    for table in ["Actor", "AuditTrail"] {
        let path = project
            .path()
            .join(format!("services/_schemas/directory/dbo/{table}.yaml"));
        let mut yaml = std::fs::read_to_string(&path).unwrap();
        yaml.push_str("  - name: Extra\n    type: int\n    nullable: true\n");
        std::fs::write(&path, yaml).unwrap();
    }
    let out = cdc(
        project.path(),
        &["manage-migrations", "generate", "--table", "Actor"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let check = cdc(
        project.path(),
        &["manage-migrations", "generate", "--check"],
    );
    assert_eq!(check.status.code(), Some(1));
    let stdout = text(&check.stdout);
    assert!(
        stdout.contains(
            "sink_asma.directory: table `AuditTrail` modified (01-tables/AuditTrail.sql)"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("Actor"), "Actor was regenerated: {stdout}");
    let unknown = cdc(
        project.path(),
        &["manage-migrations", "generate", "--table", "Actr"],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no sink table named `Actr`"));
}

/// Each class of input fault of issue 9, written into a generated copy of the
/// example: `generate` exits 2, names the file, and leaves `migrations/`
/// byte-identical with the same modification times.
#[test]
fn every_input_fault_exits_2_and_writes_nothing() {
    let project = example_project(false);
    let root = project.path();
    assert!(cdc(root, &["manage-migrations", "generate"])
        .status
        .success());
    let migrations = root.join("migrations");
    let before = snapshot(&migrations);
    let service = root.join("services/directory.yaml");
    let actor = root.join("services/_schemas/directory/dbo/Actor.yaml");
    let templates = root.join("services/_schemas/column-templates.yaml");
    let originals: Vec<(PathBuf, String)> = [&service, &actor, &templates]
        .into_iter()
        .map(|path| (path.clone(), std::fs::read_to_string(path).unwrap()))
        .collect();
    let restore = || {
        for (path, contents) in &originals {
            std::fs::write(path, contents).unwrap();
        }
    };
    let replace = |path: &Path, from: &str, to: &str| {
        let contents = std::fs::read_to_string(path).unwrap();
        assert!(contents.contains(from), "{}: no `{from}`", path.display());
        std::fs::write(path, contents.replacen(from, to, 1)).unwrap();
    };
    type Fault<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let huge = "N".repeat(1 << 20);
    let faults: Vec<Fault<'_>> = vec![
        (
            "field `directory.sinks.sink_asma.directory.databases.dev`: duplicate key `dev` at line 18 (first at line 16)",
            Box::new(|| replace(&service, "        stage: directory_stage\n", "        stage: directory_stage\n        dev: directory\n")),
        ),
        (
            "duplicate key `type` at line",
            Box::new(|| replace(&actor, "    type: int\n", "    type: int\n    type: bigint\n")),
        ),
        (
            "services/zz-broken.yaml: is a symbolic link to nowhere.yaml, which does not exist",
            Box::new(|| std::os::unix::fs::symlink("nowhere.yaml", root.join("services/zz-broken.yaml")).unwrap()),
        ),
        (
            "precision 39 is out of MSSQL's range for decimal (1 to 38)",
            Box::new(|| replace(&actor, "    type: int\n", "    type: decimal(39,2)\n")),
        ),
        (
            "field `templates.customer_id.default`: default `gen_random_uuid(); drop table x` contains `;`",
            Box::new(|| replace(&templates, "    not_null: false\n", "    not_null: false\n    default: gen_random_uuid(); drop table x\n")),
        ),
        (
            "… (1048586 bytes)` has no table YAML",
            Box::new(|| replace(&service, "          from: dbo.Actor\n", &format!("          from: dbo.{huge}\n"))),
        ),
    ];
    for (expected, break_input) in faults {
        break_input();
        let out = cdc(root, &["manage-migrations", "generate"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
        assert!(
            stderr.len() < 4096,
            "unbounded message: {} bytes",
            stderr.len()
        );
        assert_eq!(
            snapshot(&migrations),
            before,
            "{expected}: migrations changed"
        );
        restore();
        let _ = std::fs::remove_file(root.join("services/zz-broken.yaml"));
    }
    assert!(cdc(root, &["manage-migrations", "generate", "--check"])
        .status
        .success());
}

/// A UTF-8 byte-order mark and CRLF line endings change nothing: `--check`
/// still finds the committed migrations up to date.
#[test]
fn byte_order_mark_and_crlf_are_tolerated() {
    let project = example_project(false);
    let root = project.path();
    assert!(cdc(root, &["manage-migrations", "generate"])
        .status
        .success());
    let before = snapshot(&root.join("migrations"));
    for file in [
        "services/directory.yaml",
        "services/_schemas/directory/dbo/Actor.yaml",
        "services/_schemas/column-templates.yaml",
    ] {
        let path = root.join(file);
        let contents = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("\u{feff}{}", contents.replace('\n', "\r\n"))).unwrap();
    }
    let out = cdc(root, &["manage-migrations", "generate", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(snapshot(&root.join("migrations")), before);
}
