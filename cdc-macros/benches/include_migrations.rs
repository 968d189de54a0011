//! Compile-time cost of `include_migrations!` on a 2,000-file sink: the
//! expansion (read the manifest and every file, verify every checksum, emit the
//! tokens) called directly, and its parts.
//!
//! `cargo bench -p cdc-macros --bench include_migrations`. The sink has 2
//! infrastructure files and 999 tables with a final-table file (about 3 KB) and
//! a staging file (about 10 KB), the sizes of the bundled example's files.

use std::path::Path;
use std::time::Instant;

use cdc_core::checksum::assemble;
use cdc_core::layout::OUT_DIR_MIGRATIONS;
use cdc_core::manifest::{Manifest, SinkTarget};
use criterion::{criterion_group, Criterion};
use proc_macro2::Span;

#[allow(dead_code)]
#[path = "../src/expand.rs"]
mod expand;

const TABLES: usize = 999;

/// A body of about `bytes` bytes of SQL-looking text.
fn body(table: usize, bytes: usize) -> String {
    let line = format!("    \"column_{table}\" varchar(100) DEFAULT 'x' NOT NULL, -- filler\n");
    let mut out = format!("CREATE TABLE IF NOT EXISTS \"bench\".\"T{table}\" (\n");
    while out.len() < bytes {
        out.push_str(&line);
    }
    out.push_str(");\n");
    out
}

fn write_sink(dir: &Path) -> (usize, u64) {
    let mut tables = Vec::new();
    let infrastructure = vec![
        "00-infrastructure/01-create-schemas.sql".to_string(),
        "00-infrastructure/02-cdc-management.sql".to_string(),
    ];
    for table in 0..TABLES {
        tables.push(format!("01-tables/T{table}.sql"));
        tables.push(format!("01-tables/T{table}-staging.sql"));
    }
    let manifest = Manifest {
        generated_at: "2026-01-01 00:00:00 UTC".into(),
        table_count: TABLES,
        schema_count: 1,
        sink_target: SinkTarget {
            name: "bench_sink".into(),
            databases: [("dev".to_string(), "bench_dev".to_string())].into(),
        },
        infrastructure: infrastructure.clone(),
        tables: tables.clone(),
    };
    std::fs::create_dir_all(dir.join("00-infrastructure")).expect("mkdir");
    std::fs::create_dir_all(dir.join("01-tables")).expect("mkdir");
    std::fs::write(dir.join("manifest.yaml"), manifest.render()).expect("write manifest");
    let mut bytes = 0u64;
    for (i, path) in infrastructure.iter().chain(&tables).enumerate() {
        let size = if path.ends_with("-staging.sql") {
            10_000
        } else {
            3_000
        };
        let text = assemble("-- header\n", &body(i, size));
        bytes += text.len() as u64;
        std::fs::write(dir.join(path), text).expect("write file");
    }
    (infrastructure.len() + tables.len(), bytes)
}

fn bench(c: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("cdc-macros-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sink_dir = root.join(OUT_DIR_MIGRATIONS).join("bench_sink");
    let (files, bytes) = write_sink(&sink_dir);
    let env = expand::Env {
        out_dir: Some(root.clone()),
        manifest_dir: Some(root.clone()),
    };
    let input = expand::MacroInput::Sink(syn::LitStr::new("bench_sink", Span::call_site()));

    let started = Instant::now();
    let tokens = expand::expand(&input, &env).expect("the bench sink expands");
    let once = started.elapsed();
    let text = tokens.to_string();
    println!(
        "include_migrations! on {files} files ({:.1} MB): first expansion {:.1} ms, {:.0} KB of tokens as text",
        bytes as f64 / 1e6,
        once.as_secs_f64() * 1e3,
        text.len() as f64 / 1e3,
    );

    let mut group = c.benchmark_group("include_migrations_2000_files");
    group.sample_size(20);
    group.bench_function("expand (read + verify + emit)", |b| {
        b.iter(|| expand::expand(&input, &env).expect("expands"))
    });
    group.bench_function("read_dir_files (read + verify)", |b| {
        b.iter(|| cdc_core::migrations::read_dir_files(&sink_dir).expect("loads"))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
