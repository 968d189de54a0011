//! Merge time against backlog size (linear?), and the staging table's size before, after the merge and after a VACUUM.
//!
//! For every backlog of `CDC_BENCH_BACKLOGS` (default `1000000,3000000`; add `10000000` to
//! opt in to 10M) staged events over the same `CDC_BENCH_KEYS` keys (default 100,000, so the
//! work on the final table grows with the backlog; about 10 % deletes, the final table already
//! holding every key): merge time, events/s, seconds per million events, and the
//! staging table's `pg_total_relation_size` before, after the merge and after `VACUUM`.
//!
//! `cargo bench -p tests --bench merge_linearity`; e.g.
//! `CDC_BENCH_BACKLOGS=100000,300000 cargo bench -p tests --bench merge_linearity`.

use std::process::ExitCode;

mod common;

use common::{
    difference_from_expected, env_sizes, env_usize, exec, merge, mib, rate, relation_size, reset,
    stage, staging_table, timed, Bench, Statistics,
};

/// The one bench table.
const TABLE: &str = "Bench";

fn main() -> ExitCode {
    let backlogs = env_sizes("CDC_BENCH_BACKLOGS", &[1_000_000, 3_000_000]);
    let keys = env_usize("CDC_BENCH_KEYS", 100_000) as i64;
    println!("merge_linearity: backlogs {backlogs:?} over {keys} keys (~10 % deletes)");
    let bench = Bench::start(&[TABLE.to_string()], Statistics::Frozen);
    let mut c = bench.client();
    let stg = staging_table(TABLE);

    let mut rows = Vec::new();
    for &backlog in &backlogs {
        let events = backlog as i64;
        let keys = keys.min(events).max(1);
        reset(&mut c, TABLE, keys);
        // VACUUM the emptied staging table too, so each backlog starts from the same place.
        exec(&mut c, &format!("VACUUM {stg}"));
        stage(&mut c, TABLE, events, keys);
        exec(&mut c, "CHECKPOINT");
        let before = relation_size(&mut c, &stg);
        let (counts, took) = timed(|| merge(&mut c, TABLE, None));
        if counts.consumed != events {
            eprintln!(
                "FAILED: backlog {events}: consumed {} staged events",
                counts.consumed
            );
            return ExitCode::FAILURE;
        }
        let wrong = difference_from_expected(&mut c, TABLE, events, keys);
        if wrong != 0 {
            eprintln!(
                "FAILED: backlog {events}: {wrong} final rows differ from the expected state"
            );
            return ExitCode::FAILURE;
        }
        let after = relation_size(&mut c, &stg);
        exec(&mut c, &format!("VACUUM {stg}"));
        let vacuumed = relation_size(&mut c, &stg);
        println!("  {events} events: {:.2} s, {counts:?}", took.as_secs_f64());
        rows.push((events, took, before, after, vacuumed));
    }

    println!();
    println!(
        "{:>12} {:>10} {:>12} {:>10} {:>14} {:>14} {:>14}",
        "events", "seconds", "events/s", "s/million", "stg before", "stg after", "after VACUUM"
    );
    for (events, took, before, after, vacuumed) in &rows {
        println!(
            "{:>12} {:>10.2} {:>12.0} {:>10.2} {:>14} {:>14} {:>14}",
            events,
            took.as_secs_f64(),
            rate(*events, *took),
            took.as_secs_f64() / (*events as f64 / 1e6),
            mib(*before),
            mib(*after),
            mib(*vacuumed)
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let per = |(events, took, ..): &(i64, std::time::Duration, i64, i64, i64)| {
            took.as_secs_f64() / *events as f64
        };
        println!(
            "\ntime per event, largest backlog / smallest: {:.2} (1.00 = linear)",
            per(last) / per(first)
        );
    }
    ExitCode::SUCCESS
}
