//! Apply-engine speed against a throwaway PostgreSQL 15 (started by the test
//! harness; fsync is off there, as in the tests).
//!
//! - `noop_boot`: a boot where everything is already applied (the bundled
//!   example; a synthetic 1,000-table sink, 2,002 files), over the blocking
//!   driver and (`_async`) the async one, next to one `SELECT 1` round trip
//!   on the same connection for scale.
//! - `fresh_apply`: applying a synthetic 1,000-table sink to an empty database,
//!   against `psql -1 -f` over the concatenated files on the same server; the
//!   ratio is printed.
//!
//! `cargo bench -p cdc-runtime --bench apply`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cdc_build::GeneratedSink;
use cdc_runtime::{ConnectOptions, Migrations, Migrator, SslMode};
use criterion::{criterion_group, Criterion};

/// What a binary embeds: the generated files, verified once (here by loading them from disk).
fn migrations_of(sink: &GeneratedSink) -> Migrations {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in sink.all_files() {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(target, contents).expect("write");
    }
    Migrations::load_dir(dir.path()).expect("load")
}

fn generate(root: &Path, sink: &str) -> Migrations {
    let project = cdc_build::load_project(root, &cdc_build::Filter::default()).expect("load");
    let sinks = cdc_build::generate(
        &project,
        &cdc_build::GenerateOptions::new("2026-01-01 00:00:00 UTC"),
    )
    .render_all();
    migrations_of(sinks.iter().find(|s| s.name == sink).expect("sink"))
}

fn synthetic(tables: usize) -> Option<(tempfile::TempDir, Migrations)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/synth.py");
    if !script.is_file() {
        eprintln!(
            "skipping the synthetic sink: {} not found",
            script.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
    let out = dir.path().join("p");
    let ok = Command::new("python3")
        .arg(&script)
        .args(["--tables", &tables.to_string(), "--out"])
        .arg(&out)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let migrations = generate(&out, "sink_synth.synth");
    Some((dir, migrations))
}

fn bench_apply(c: &mut Criterion) {
    let server = cdc_testkit::shared();
    let example_root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf();
    let example = generate(&example_root, "sink_asma.directory");
    let synth = synthetic(1_000);

    let mut group = c.benchmark_group("noop_boot");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    let mut cases = vec![("example", &example)];
    if let Some((_, m)) = &synth {
        cases.push(("synthetic_1000_tables", m));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for (name, migrations) in cases {
        let db = server.create_database(&format!("bench_noop_{name}"));
        let mut client = server.client(&db);
        Migrator::new(migrations)
            .apply(&mut client)
            .expect("first apply");
        let files = migrations.files().len();
        group.bench_function(format!("{name}_{files}_files"), |b| {
            b.iter(|| {
                let report = Migrator::new(migrations).apply(&mut client).expect("apply");
                assert_eq!(report.applied_count(), 0);
            })
        });
        let options = ConnectOptions {
            host: server.host().into(),
            port: server.port(),
            user: server.user().into(),
            password: None,
            dbname: db.clone(),
            sslmode: SslMode::Disable,
            connect_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(5),
        };
        let mut async_client = runtime
            .block_on(cdc_runtime::connect_async(&options))
            .expect("connect");
        group.bench_function(format!("{name}_{files}_files_async"), |b| {
            b.iter(|| {
                let report = runtime
                    .block_on(Migrator::new(migrations).apply_async(&mut async_client))
                    .expect("apply");
                assert_eq!(report.applied_count(), 0);
            })
        });
    }
    let mut client = server.client("postgres");
    group.bench_function("round_trip_select_1", |b| {
        b.iter(|| client.simple_query("SELECT 1").expect("select"))
    });
    group.finish();

    if let Some((dir, migrations)) = &synth {
        let concatenated = dir.path().join("all.sql");
        let mut text = String::new();
        for file in migrations.files() {
            text.push_str(&file.contents);
            text.push('\n');
        }
        std::fs::write(&concatenated, text).expect("write");
        let runs = 3;
        let (mut ours, mut psql) = (Duration::ZERO, Duration::ZERO);
        for run in 0..runs {
            let db = server.create_database(&format!("bench_fresh_ours_{run}"));
            let mut client = server.client(&db);
            let started = Instant::now();
            Migrator::new(migrations)
                .apply(&mut client)
                .expect("fresh apply");
            ours += started.elapsed();

            let db = server.create_database(&format!("bench_fresh_psql_{run}"));
            let path = concatenated.to_string_lossy().into_owned();
            let started = Instant::now();
            let out = server.psql(&db, &["-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", &path]);
            psql += started.elapsed();
            assert!(
                out.status.success(),
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ours = ours / runs;
        let psql = psql / runs;
        println!(
            "fresh_apply of {} files (mean of {runs}): cdc-runtime {:.0} ms, psql -1 -f {:.0} ms, ratio {:.2}",
            migrations.files().len(),
            ours.as_secs_f64() * 1e3,
            psql.as_secs_f64() * 1e3,
            ours.as_secs_f64() / psql.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench_apply);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
