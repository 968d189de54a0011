//! Runs the service as `cargo run -p example-app` does, on a throwaway PostgreSQL:
//! three replicas boot at once and exactly one applies the embedded migrations,
//! the staged batch is merged (newest event per key, deletes applied, a replayed
//! older event ignored), and a row of every column type reads back unchanged.
//!
//! The binary is built as a deployment builds it, without the `throwaway-postgres`
//! feature: the test starts the throwaway server itself (cdc-testkit is a
//! dev-dependency) and hands it over as `DATABASE_URL`, and checks that with no
//! database configured the binary refuses and names the feature. With the feature
//! (`cargo test -p example-app --features throwaway-postgres`, run by `.ci/run`)
//! the binary starts its own server, as `cargo run` with the feature does.

use std::process::{Command, Output};

/// The service binary with no `DATABASE_URL` and no `PG_*` connection variables.
fn service_without_database() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_example-app"));
    command.env_remove("DATABASE_URL");
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k.starts_with("PG_") && k != "PG_BINDIR")
        {
            command.env_remove(key);
        }
    }
    command
}

/// Checks a successful run: `database` is how the service describes where it worked.
fn assert_booted_staged_merged_and_read_back(output: &Output, database: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "example-app failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let applied: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("replica ") && l.contains(": applied "))
        .collect();
    assert_eq!(applied.len(), 3, "{stdout}");
    assert_eq!(
        applied
            .iter()
            .filter(|l| l.ends_with(": applied 0 file(s)"))
            .count(),
        2,
        "one replica applies, the others wait for the lock and find nothing to do:\n{stdout}"
    );
    for needle in [
        database,
        "final table directory.Actor (2 rows):",
        "Navn=Ada Lovelace",
        "Navn=Grace",
        "final table directory.Order Details (2 rows):",
        "directory.AllTypes: all 53 columns written by binary COPY read back equal",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("Linus") && !stdout.contains("(stale)"),
        "{stdout}"
    );
}

#[cfg(not(feature = "throwaway-postgres"))]
#[test]
fn boots_stages_merges_and_reads_back() {
    let server = cdc_testkit::shared();
    let db = server.create_database("example_app");
    let output = service_without_database()
        .env("DATABASE_URL", server.connection_string(&db))
        .output()
        .expect("running example-app");
    assert_booted_staged_merged_and_read_back(&output, "database: DATABASE_URL");
}

#[cfg(not(feature = "throwaway-postgres"))]
#[test]
fn without_a_database_it_says_how_to_get_a_throwaway_one() {
    let output = service_without_database()
        .output()
        .expect("running example-app");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for needle in [
        "no database configured",
        "DATABASE_URL",
        "PG_<ENV>_HOST/PORT/USER/PASSWORD",
        "cargo run -p example-app --features throwaway-postgres",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

#[cfg(feature = "throwaway-postgres")]
#[test]
fn boots_stages_merges_and_reads_back() {
    let output = service_without_database()
        .output()
        .expect("running example-app");
    assert_booted_staged_merged_and_read_back(&output, "throwaway local PostgreSQL");
}
