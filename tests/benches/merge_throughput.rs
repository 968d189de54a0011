//! Merge throughput against the bare statement pair on the same rows, and the cost of tombstones of other keys.
//!
//! One table of 8 source columns, `CDC_BENCH_EVENTS` staged events (default 1,000,000) over
//! `CDC_BENCH_KEYS` keys (default a tenth of the events), about 10 % deletes, the final table
//! already holding every key; all in one run on one server:
//!
//! 1. the bare baseline on a plain copy of the staged rows and final table: `INSERT ... SELECT
//!    DISTINCT ON (id) ... ON CONFLICT (id) DO UPDATE ... WHERE <position guard>` and `DELETE
//!    ... USING <latest deletes>`, in one transaction;
//! 2. our merge with its default batch size, then with `p_batch_size = 1,000,000`; after each,
//!    the final table must equal the baseline's (count and md5 over ordered rows);
//! 3. our merge (default batch) again, then with `CDC_BENCH_TOMBSTONES` tombstones (default 1,000,000) of
//!    other keys present.
//!
//! `cargo bench -p tests --bench merge_throughput`; e.g.
//! `CDC_BENCH_EVENTS=100000 CDC_BENCH_TOMBSTONES=100000 cargo bench -p tests --bench merge_throughput`.

use std::process::ExitCode;
use std::time::Duration;

use postgres::Client;

mod common;

use common::{
    env_usize, exec, final_table, fingerprint, insert_tombstones, merge, rate, reset, stage,
    staging_table, timed, tombstone_count, Bench, MergeCounts, Statistics, EVENT_COLUMNS,
    SOURCE_COLUMNS,
};

/// The one bench table.
const TABLE: &str = "Bench";

/// The schema holding the baseline's plain copies.
const BARE: &str = "bare";

/// Copies the staged rows and the final table into plain tables of schema [`BARE`].
fn prepare_bare(c: &mut Client) {
    exec(
        c,
        &format!(
            "DROP SCHEMA IF EXISTS {BARE} CASCADE; CREATE SCHEMA {BARE};
             CREATE TABLE {BARE}.final (LIKE {fin} INCLUDING ALL);
             INSERT INTO {BARE}.final SELECT * FROM {fin};
             CREATE UNLOGGED TABLE {BARE}.stg AS SELECT * FROM {stg}",
            fin = final_table(TABLE),
            stg = staging_table(TABLE)
        ),
    );
    exec(c, &format!("VACUUM ANALYZE {BARE}.final"));
    exec(c, "CHECKPOINT");
}

/// The bare statement pair, in one transaction.
fn bare_merge(c: &mut Client) {
    let columns: Vec<&str> = SOURCE_COLUMNS
        .iter()
        .chain(&EVENT_COLUMNS)
        .copied()
        .collect();
    let list = columns.join(", ");
    let set = columns[1..]
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let latest = format!(
        "SELECT DISTINCT ON (id) * FROM {BARE}.stg ORDER BY id, __source_ts_ms DESC, __kafka_offset DESC"
    );
    exec(
        c,
        &format!(
            "BEGIN;
             INSERT INTO {BARE}.final AS f ({list}, __sync_timestamp)
             SELECT {list}, now() FROM ({latest}) AS l WHERE l.__cdc_operation <> 'd'
             ON CONFLICT (id) DO UPDATE SET {set}, __sync_timestamp = EXCLUDED.__sync_timestamp
              WHERE (f.__source_ts_ms, f.__kafka_offset) < (EXCLUDED.__source_ts_ms, EXCLUDED.__kafka_offset);
             DELETE FROM {BARE}.final AS f USING ({latest}) AS l
              WHERE l.__cdc_operation = 'd' AND f.id = l.id
                AND (f.__source_ts_ms, f.__kafka_offset) < (l.__source_ts_ms, l.__kafka_offset);
             COMMIT"
        ),
    );
}

/// One timed merge of ours, with its counts.
struct Run {
    label: String,
    counts: MergeCounts,
    took: Duration,
}

/// Resets, stages and merges with `batch`, then checks the final table against the baseline's.
fn run_ours(
    c: &mut Client,
    label: &str,
    events: i64,
    keys: i64,
    tombstones: i64,
    batch: Option<i32>,
    expected: &(i64, String),
) -> Result<Run, String> {
    reset(c, TABLE, keys);
    if tombstones > 0 {
        insert_tombstones(c, TABLE, keys + 1, tombstones);
    }
    stage(c, TABLE, events, keys);
    exec(c, "CHECKPOINT");
    let (counts, took) = timed(|| merge(c, TABLE, batch));
    if counts.consumed != events {
        return Err(format!(
            "{label}: consumed {} of {events} staged events",
            counts.consumed
        ));
    }
    let got = fingerprint(c, &final_table(TABLE));
    if &got != expected {
        return Err(format!(
            "{label}: the final table differs from the baseline's: {got:?} != {expected:?}"
        ));
    }
    Ok(Run {
        label: label.to_string(),
        counts,
        took,
    })
}

fn main() -> ExitCode {
    let events = env_usize("CDC_BENCH_EVENTS", 1_000_000) as i64;
    let keys = env_usize("CDC_BENCH_KEYS", (events as usize / 10).max(1)) as i64;
    let tombstones = env_usize("CDC_BENCH_TOMBSTONES", 1_000_000) as i64;
    let big_batch = env_usize("CDC_BENCH_BIG_BATCH", 1_000_000) as i32;
    println!(
        "merge_throughput: {events} events over {keys} keys (~10 % deletes), final table holding the {keys} keys"
    );

    let bench = Bench::start(&[TABLE.to_string()], Statistics::Frozen);
    let mut c = bench.client();

    // The baseline, on plain copies of exactly the rows ours merges.
    reset(&mut c, TABLE, keys);
    stage(&mut c, TABLE, events, keys);
    prepare_bare(&mut c);
    let ((), bare_took) = timed(|| bare_merge(&mut c));
    let expected = fingerprint(&mut c, &format!("{BARE}.final"));
    exec(&mut c, &format!("DROP SCHEMA {BARE} CASCADE"));

    // The run without tombstones is repeated right before the one with them, so that their
    // ratio compares neighbours (the first run of a fresh server pays for cold caches).
    let plan: [(String, i64, Option<i32>); 4] = [
        ("ours, default batch".into(), 0, None),
        (
            format!("ours, p_batch_size = {big_batch}"),
            0,
            Some(big_batch),
        ),
        ("ours, default batch (again)".into(), 0, None),
        (
            format!("ours, default batch, {tombstones} tombstones of other keys"),
            tombstones,
            None,
        ),
    ];
    let mut runs = Vec::new();
    for (label, tombs, batch) in &plan {
        match run_ours(&mut c, label, events, keys, *tombs, *batch, &expected) {
            Ok(run) => runs.push(run),
            Err(message) => {
                eprintln!("FAILED: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    if tombstones > 0 {
        let left = tombstone_count(&mut c, TABLE);
        println!("tombstones after the last run: {left}");
    }

    let bare_rate = rate(events, bare_took);
    println!();
    println!(
        "{:<58} {:>10} {:>12} {:>8}",
        "merge", "seconds", "events/s", "ours/bare"
    );
    println!(
        "{:<58} {:>10.2} {:>12.0} {:>8}",
        "bare INSERT..DISTINCT ON..ON CONFLICT + DELETE",
        bare_took.as_secs_f64(),
        bare_rate,
        "1.00"
    );
    for run in &runs {
        let r = rate(events, run.took);
        println!(
            "{:<58} {:>10.2} {:>12.0} {:>8.3}",
            run.label,
            run.took.as_secs_f64(),
            r,
            r / bare_rate
        );
    }
    for run in &runs {
        println!("  {}: {:?}", run.label, run.counts);
    }
    println!("final table equal to the baseline's after every run: {expected:?}");
    let without = runs[2].took.as_secs_f64();
    let with = runs[3].took.as_secs_f64();
    println!();
    println!(
        "ratio ours/bare (throughput, default batch, best of 2): {:.3} (target >= 0.8)",
        rate(events, runs[0].took.min(runs[2].took)) / bare_rate
    );
    println!(
        "ratio with/without {tombstones} tombstones (time): {:.3} (target <= 1.2)",
        with / without
    );
    ExitCode::SUCCESS
}
