//! Live schema comparison speed against a throwaway PostgreSQL 15: a synthetic
//! 1,000-table sink (`../shared/tools/synth.py`) generated, applied, then
//! compared with its YAML the way `cdc manage-migrations diff --env` does it
//! (one catalog query for the sink, then cdc-core's comparison), and with its
//! migration files the way a service's `verify_schema` does.
//!
//! - `live_diff/load_yaml`: loading the project's YAML (the CLI's first step);
//! - `live_diff/catalog_and_compare`: the catalog round trip and the comparison;
//! - `live_diff/verify_schema`: the runtime check from the files alone.
//!
//! `cargo bench -p cdc-runtime --bench live_diff` (`CDC_BENCH_SIZES=2000` for
//! another size).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cdc_build::diff::live::{expected_tables, live_sink_diff};
use cdc_build::{Filter, Project};
use cdc_core::schema::live::ExpectedTable;
use cdc_runtime::verify::read_catalog;
use cdc_runtime::{verify_schema, Migrations, Migrator};
use criterion::{criterion_group, Criterion};

const SINK: &str = "sink_synth.synth";

fn synthetic(tables: usize) -> Option<(tempfile::TempDir, Project, Migrations)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/synth.py");
    if !script.is_file() {
        eprintln!("skipping: {} not found", script.display());
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let root = dir.path().join("p");
    let ok = Command::new("python3")
        .arg(&script)
        .args(["--tables", &tables.to_string(), "--out"])
        .arg(&root)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let project = cdc_build::load_project(&root, &Filter::default()).expect("load");
    let generated = cdc_build::generate(
        &project,
        &cdc_build::GenerateOptions::new("2026-01-01 00:00:00 UTC"),
    )
    .render_all();
    let sink = generated.iter().find(|s| s.name == SINK).expect("sink");
    let files = dir.path().join("migrations");
    for (path, contents) in sink.all_files() {
        let target = files.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    }
    let migrations = Migrations::load_dir(&files).expect("load migrations");
    Some((dir, project, migrations))
}

fn sizes() -> Vec<usize> {
    std::env::var("CDC_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000])
}

fn bench_live_diff(c: &mut Criterion) {
    let server = cdc_testkit::shared();
    let mut group = c.benchmark_group("live_diff");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for tables in sizes() {
        let Some((dir, project, migrations)) = synthetic(tables) else {
            continue;
        };
        let db = server.create_database(&format!("bench_live_{tables}"));
        let mut client = server.client(&db);
        Migrator::new(&migrations)
            .apply(&mut client)
            .expect("apply the synthetic sink");
        let sink = project.sinks().find(|s| s.name == SINK).expect("sink");

        let root = dir.path().join("p");
        group.bench_function(format!("load_yaml_{tables}_tables"), |b| {
            b.iter(|| cdc_build::load_project(&root, &Filter::default()).expect("load"))
        });
        let diff = |client: &mut cdc_runtime::postgres::Client| {
            let expected = expected_tables(sink, None);
            let wanted: Vec<ExpectedTable> = expected.iter().map(|(_, e)| e.clone()).collect();
            let live = read_catalog(client, &wanted).expect("catalog");
            live_sink_diff(sink, &expected, &live)
        };
        assert!(
            diff(&mut client).tables.is_empty(),
            "the applied sink is clean"
        );
        group.bench_function(format!("catalog_and_compare_{tables}_tables"), |b| {
            b.iter(|| diff(&mut client))
        });
        group.bench_function(format!("verify_schema_{tables}_tables"), |b| {
            b.iter(|| verify_schema(&mut client, &migrations).expect("verify"))
        });

        // One figure for the whole command as a user runs it: load the YAML,
        // connect, query, compare (mean of 5).
        let runs = 5;
        let started = Instant::now();
        for _ in 0..runs {
            let project = cdc_build::load_project(&root, &Filter::default()).expect("load");
            let sink = project.sinks().find(|s| s.name == SINK).expect("sink");
            let mut client = server.client(&db);
            let expected = expected_tables(sink, None);
            let wanted: Vec<ExpectedTable> = expected.iter().map(|(_, e)| e.clone()).collect();
            let live = read_catalog(&mut client, &wanted).expect("catalog");
            assert!(live_sink_diff(sink, &expected, &live).tables.is_empty());
        }
        println!(
            "live diff of a {tables}-table database (load YAML + connect + one catalog query + compare, mean of {runs}): {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
        );
    }
    group.finish();
}

criterion_group!(benches, bench_live_diff);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
