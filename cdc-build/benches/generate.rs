//! Generation speed on synthetic projects made by `../shared/tools/synth.py`
//! (170, 1,000 and 10,000 tables): load + render to memory, and load + sync to
//! disk (fresh directory, then an unchanged regeneration that writes nothing).
//! Prints peak resident memory (VmHWM) at the end.
//!
//! `cargo bench -p cdc-build --bench generate` (set `CDC_BENCH_SIZES=170,1000`
//! to choose sizes).

use std::time::Duration;

use cdc_build::output::{sync_sinks, SyncMode};
use cdc_build::{generate, load_project, Filter, GenerateOptions};
use criterion::{criterion_group, BenchmarkId, Criterion};

mod common;

use common::{make_project, sizes, synth_script, TIME};

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn bench_generate(c: &mut Criterion) {
    let Some(_) = synth_script() else {
        eprintln!("skipping: ../shared/tools/synth.py not found next to the checkout");
        return;
    };
    let mut group = c.benchmark_group("generate");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for tables in sizes(&[170, 1_000, 10_000]) {
        let Some(dir) = make_project(tables) else {
            eprintln!("skipping {tables}: synth.py failed");
            continue;
        };
        let root = dir.path().join("project");
        group.bench_with_input(
            BenchmarkId::new("load_and_render_to_memory", tables),
            &root,
            |b, root| {
                b.iter(|| {
                    let project = load_project(root, &Filter::default()).expect("load");
                    let sinks = generate(&project, &GenerateOptions::new(TIME)).render_all();
                    assert_eq!(sinks[0].manifest.table_count, tables);
                    sinks
                })
            },
        );
        let project = load_project(&root, &Filter::default()).expect("load");
        group.bench_with_input(BenchmarkId::new("load_only", tables), &root, |b, root| {
            b.iter(|| load_project(root, &Filter::default()).expect("load"))
        });
        group.bench_with_input(
            BenchmarkId::new("render_only", tables),
            &project,
            |b, project| b.iter(|| generate(project, &GenerateOptions::new(TIME)).render_all()),
        );
        let out = dir.path().join("out");
        let sync = |mode| {
            let project = load_project(&root, &Filter::default()).expect("load");
            let generated = generate(&project, &GenerateOptions::new(TIME));
            let plans = sync_sinks(&generated, &out, None, mode).expect("sync");
            assert_eq!(plans.len(), 1, "one sink");
            plans.into_iter().next().expect("one sink")
        };
        group.bench_function(BenchmarkId::new("to_disk_fresh", tables), |b| {
            b.iter(|| {
                let _ = std::fs::remove_dir_all(&out);
                assert!(sync(SyncMode::Write).written);
            })
        });
        group.bench_function(BenchmarkId::new("to_disk_unchanged", tables), |b| {
            b.iter(|| assert!(!sync(SyncMode::Write).written))
        });
    }
    group.finish();
    if let Some(kb) = peak_rss_kb() {
        println!(
            "peak resident memory of the benchmark process (VmHWM): {:.1} MB",
            kb as f64 / 1024.0
        );
    }
}

criterion_group!(benches, bench_generate);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
