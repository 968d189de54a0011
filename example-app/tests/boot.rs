//! Runs the service as `cargo run -p example-app` does, on a throwaway PostgreSQL:
//! three replicas boot at once and exactly one applies the embedded migrations,
//! the staged batch is merged (newest event per key, deletes applied, a replayed
//! older event ignored), and a row of every column type reads back unchanged.

use std::process::Command;

#[test]
fn boots_stages_merges_and_reads_back() {
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
    let output = command.output().expect("running example-app");
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
        "throwaway local PostgreSQL",
        "final table directory.Actor (2 rows):",
        "Navn=Ada Lovelace",
        "Navn=Grace",
        "final table directory.Order Details (2 rows):",
        "directory.AllTypes: all 51 columns written by binary COPY read back equal",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("Linus") && !stdout.contains("(stale)"),
        "{stdout}"
    );
}
