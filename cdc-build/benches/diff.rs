//! Diff speed on synthetic projects made by `../shared/tools/synth.py`
//! (1,000 and 10,000 tables): the project is generated to disk once, then
//! `diff` compares the YAML with those files (load + diff, and diff alone),
//! and as the CLI runs it: the table files read while the YAML loads
//! (`load_and_diff_overlapped`).
//!
//! `cargo bench -p cdc-build --bench diff` (set `CDC_BENCH_SIZES=1000` to
//! choose sizes).

use std::time::Duration;

use cdc_build::diff::{diff_project_with, with_table_files};
use cdc_build::output::{sync_sinks, SyncMode};
use cdc_build::{diff_project, generate, load_project, Filter, GenerateOptions};
use criterion::{criterion_group, BenchmarkId, Criterion};

mod common;

use common::{make_project, sizes, synth_script, TIME};

fn bench_diff(c: &mut Criterion) {
    let Some(_) = synth_script() else {
        eprintln!("skipping: ../shared/tools/synth.py not found next to the checkout");
        return;
    };
    let mut group = c.benchmark_group("diff");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for tables in sizes(&[1_000, 10_000]) {
        let Some(dir) = make_project(tables) else {
            eprintln!("skipping {tables}: synth.py failed");
            continue;
        };
        let root = dir.path().join("project");
        let migrations = root.join(cdc_core::layout::MIGRATIONS_DIR);
        let project = load_project(&root, &Filter::default()).expect("load");
        let generated = generate(&project, &GenerateOptions::new(TIME));
        sync_sinks(&generated, &migrations, None, SyncMode::Write).expect("write migrations");
        group.bench_with_input(
            BenchmarkId::new("load_and_diff", tables),
            &root,
            |b, root| {
                b.iter(|| {
                    let project = load_project(root, &Filter::default()).expect("load");
                    let report = diff_project(&project, &migrations, None).expect("diff");
                    assert!(report.is_empty());
                    report
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("load_and_diff_overlapped", tables),
            &root,
            |b, root| {
                b.iter(|| {
                    let (project, files) = with_table_files(&migrations, || {
                        load_project(root, &Filter::default()).expect("load")
                    });
                    let report =
                        diff_project_with(&project, &migrations, None, &files).expect("diff");
                    assert!(report.is_empty());
                    report
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("diff_only", tables),
            &project,
            |b, project| b.iter(|| diff_project(project, &migrations, None).expect("diff")),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_diff);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
