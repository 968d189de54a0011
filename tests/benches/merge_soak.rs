//! Soak: writers at a fixed rate into 20 staging tables, the runtime's merge scheduler at 1 s, lag and staging size over time, zero difference from the truth at the end.
//!
//! `CDC_SOAK_WRITERS` writer threads (default 4) each own a share of `CDC_SOAK_TABLES` tables
//! (default 20) and stage events at a fixed total rate of `CDC_SOAK_RATE` events/s (default
//! 5,000) for `CDC_SOAK_SECS` seconds (default 600), one multi-row `INSERT` per table and 100 ms
//! tick: inserts, updates and deletes over `CDC_SOAK_KEYS` keys per table (default 2,000), and
//! about 10 % replays of an older event of a key (same key, older position). Every event's
//! `__source_ts_ms` is the wall-clock time it was staged at (and `__kafka_timestamp` the
//! server's); the writers keep the truth (latest event per key, deletes removed).
//! `cdc_runtime::merge::MergeScheduler` runs every second with a window of 0.
//!
//! A sampler reads the probe keys (`id <= CDC_SOAK_PROBE_KEYS`, default 100, so 5 % of the
//! events) of every final table every `CDC_SOAK_POLL_MS` (default 200 ms) and, for each row that
//! changed since the last poll, records two lags: the time it was first seen minus its
//! `__source_ts_ms` (staging insert to visible in the final table; at most a poll late), and
//! `__sync_timestamp - __source_ts_ms` (the merge's `now()`, its transaction's start: an
//! underestimate by up to that transaction's length, clamped at 0). Every 10 s it prints the
//! staged rows and the lags of the last 10 s; at the end, p50/p99/max over the run, and every
//! final table compared with the truth: the difference must be 0 (the exit status says so).
//!
//! `cargo bench -p tests --bench merge_soak`; e.g. `CDC_SOAK_SECS=60 cargo bench -p tests --bench merge_soak`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdc_core::layout::MANAGEMENT_SCHEMA;
use cdc_runtime::merge::{MergeScheduler, SchedulerEvent};
use cdc_runtime::Connector;
use postgres::Client;

mod common;

use common::{env_usize, final_table, scalar, staging_table, Bench, Statistics};

/// The soak's settings, from the environment.
#[derive(Debug, Clone, Copy)]
struct Settings {
    tables: usize,
    writers: usize,
    rate: usize,
    secs: usize,
    keys: i32,
    drain_secs: usize,
    poll_ms: usize,
    probe_keys: i32,
}

impl Settings {
    fn from_env() -> Settings {
        let tables = env_usize("CDC_SOAK_TABLES", 20).max(1);
        Settings {
            tables,
            writers: env_usize("CDC_SOAK_WRITERS", 4).clamp(1, tables),
            rate: env_usize("CDC_SOAK_RATE", 5_000),
            secs: env_usize("CDC_SOAK_SECS", 600),
            keys: i32::try_from(env_usize("CDC_SOAK_KEYS", 2_000).max(1)).unwrap_or(i32::MAX),
            drain_secs: env_usize("CDC_SOAK_DRAIN_SECS", 300),
            poll_ms: env_usize("CDC_SOAK_POLL_MS", 200).max(1),
            probe_keys: i32::try_from(env_usize("CDC_SOAK_PROBE_KEYS", 100)).unwrap_or(i32::MAX),
        }
    }
}

fn table_name(i: usize) -> String {
    format!("T{:02}", i + 1)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// splitmix64: a small deterministic generator, enough to mix the workload.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One staged event.
#[derive(Debug, Clone, Copy)]
struct Event {
    key: i32,
    op: &'static str,
    ts: i64,
    off: i64,
}

/// What a writer knows of one table: the truth and each key's last two events.
#[derive(Debug, Default)]
struct TableState {
    next_off: i64,
    last_ts: i64,
    /// The position of each live key's latest event.
    live: HashMap<i32, (i64, i64)>,
    /// Each key's latest event.
    last: HashMap<i32, Event>,
    /// Each key's event before its latest (what a replay sends again).
    previous: HashMap<i32, Event>,
}

/// Counts of what the writers staged.
#[derive(Debug, Default)]
struct Sent {
    inserts: AtomicI64,
    updates: AtomicI64,
    deletes: AtomicI64,
    replays: AtomicI64,
}

impl Sent {
    fn total(&self) -> i64 {
        self.inserts.load(Ordering::Relaxed)
            + self.updates.load(Ordering::Relaxed)
            + self.deletes.load(Ordering::Relaxed)
            + self.replays.load(Ordering::Relaxed)
    }
}

impl TableState {
    /// The next event of this table: about 10 % replays of an older event of a key, otherwise
    /// an insert of a key that is not live, or an update (85 %) or delete (15 %) of a live one.
    fn next_event(&mut self, rng: &mut Rng, keys: i32, sent: &Sent) -> Event {
        let key = i32::try_from(rng.below(u64::try_from(keys).unwrap_or(1))).unwrap_or(0) + 1;
        if rng.below(100) < 10 {
            if let Some(old) = self.previous.get(&key) {
                sent.replays.fetch_add(1, Ordering::Relaxed);
                return *old;
            }
        }
        let op = if !self.live.contains_key(&key) {
            sent.inserts.fetch_add(1, Ordering::Relaxed);
            "c"
        } else if rng.below(100) < 15 {
            sent.deletes.fetch_add(1, Ordering::Relaxed);
            "d"
        } else {
            sent.updates.fetch_add(1, Ordering::Relaxed);
            "u"
        };
        self.last_ts = self.last_ts.max(now_ms());
        let event = Event {
            key,
            op,
            ts: self.last_ts,
            off: self.next_off,
        };
        self.next_off += 1;
        if op == "d" {
            self.live.remove(&key);
        } else {
            self.live.insert(key, (event.ts, event.off));
        }
        if let Some(before) = self.last.insert(key, event) {
            self.previous.insert(key, before);
        }
        event
    }
}

/// The insert of one table's events; values derive from (key, offset), so the truth needs
/// only positions.
fn insert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {} (id, name, email, amount, qty, active, created_at, note,
                         __cdc_operation, __source_ts_ms, __kafka_offset, __source,
                         __kafka_partition, __kafka_timestamp)
         SELECT e.id, 'n' || e.id || '-' || e.off, 'u' || e.id || '@example.com',
                (e.off % 100000) / 100.0, (e.off % 1000)::int, e.off % 2 = 0,
                timestamp '2026-01-01' + e.off * interval '1 second', 'note ' || e.off,
                e.op, e.ts, e.off, 'soak', 0, clock_timestamp()
           FROM unnest($1::int4[], $2::text[], $3::int8[], $4::int8[])
                WITH ORDINALITY AS e(id, op, ts, off, pos)
          ORDER BY e.pos",
        staging_table(table)
    )
}

/// One writer: stages events into `tables` at `rate` events/s until `stop`; returns the tables' states.
fn writer(
    mut client: Client,
    tables: Vec<usize>,
    rate: f64,
    keys: i32,
    seed: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<Sent>,
) -> Vec<(usize, TableState)> {
    const TICK: Duration = Duration::from_millis(100);
    let statements: Vec<postgres::Statement> = tables
        .iter()
        .map(|&t| {
            client
                .prepare(&insert_sql(&table_name(t)))
                .unwrap_or_else(|e| panic!("preparing the insert: {e}"))
        })
        .collect();
    let mut states: Vec<TableState> = tables.iter().map(|_| TableState::default()).collect();
    let mut rng = Rng(seed);
    let mut due = 0.0_f64;
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        due += rate * TICK.as_secs_f64();
        let mut batches: Vec<Vec<Event>> = vec![Vec::new(); tables.len()];
        while due >= 1.0 {
            due -= 1.0;
            let i = usize::try_from(rng.below(tables.len() as u64)).unwrap_or(0);
            let event = states[i].next_event(&mut rng, keys, &sent);
            batches[i].push(event);
        }
        for (i, batch) in batches.iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let ids: Vec<i32> = batch.iter().map(|e| e.key).collect();
            let ops: Vec<&str> = batch.iter().map(|e| e.op).collect();
            let ts: Vec<i64> = batch.iter().map(|e| e.ts).collect();
            let offs: Vec<i64> = batch.iter().map(|e| e.off).collect();
            if let Err(e) = client.execute(&statements[i], &[&ids, &ops, &ts, &offs]) {
                panic!("staging into {}: {e}", table_name(tables[i]));
            }
        }
        next_tick += TICK;
        let now = Instant::now();
        if next_tick > now {
            thread::sleep(next_tick - now);
        }
    }
    tables.into_iter().zip(states).collect()
}

/// Lags (ms) recorded by the sampler.
#[derive(Debug, Default)]
struct Lags {
    /// `__sync_timestamp - __source_ts_ms`.
    sync: Vec<i64>,
    /// First seen minus `__source_ts_ms`.
    visible: Vec<i64>,
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(values: &[i64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    format!(
        "p50 {} ms, p99 {} ms, max {} ms (n={})",
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(0),
        sorted.len()
    )
}

/// Total rows staged over every table.
fn staged_rows(client: &mut Client, tables: usize) -> i64 {
    let sql = (0..tables)
        .map(|t| format!("(SELECT count(*) FROM {})", staging_table(&table_name(t))))
        .collect::<Vec<_>>()
        .join(" + ");
    scalar(client, &format!("SELECT {sql}"))
}

/// The sampler: every poll, reads the probe keys (`id <= probe_keys`) of every final table
/// in one query and records the lags of the rows that changed since the last poll; the writers
/// pick keys uniformly, so the probes see a fixed share of the events.
struct Sampler {
    client: Client,
    tables: usize,
    probe: postgres::Statement,
    probe_keys: i32,
    seen: HashMap<(i32, i32), i64>,
    lags: Lags,
    window: Lags,
    max_staged: i64,
}

impl Sampler {
    fn new(mut client: Client, tables: usize, probe_keys: i32) -> Sampler {
        let sql = (0..tables)
            .map(|t| {
                format!(
                    "SELECT {t}::int4, id, __kafka_offset, __source_ts_ms, __sync_timestamp
                       FROM {} WHERE id <= $1",
                    final_table(&table_name(t))
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let probe = client
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("preparing the probe: {e}"));
        Sampler {
            client,
            tables,
            probe,
            probe_keys,
            seen: HashMap::new(),
            lags: Lags::default(),
            window: Lags::default(),
            max_staged: 0,
        }
    }

    fn poll(&mut self) {
        let rows = self
            .client
            .query(&self.probe, &[&self.probe_keys])
            .unwrap_or_else(|e| panic!("probing the final tables: {e}"));
        let seen_at = now_ms();
        for row in rows {
            let (t, id, off, ts): (i32, i32, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let synced: SystemTime = row.get(4);
            if self.seen.insert((t, id), off) == Some(off) {
                continue;
            }
            let synced_ms = synced
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            for (lags, value) in [
                (&mut self.lags.sync, (synced_ms - ts).max(0)),
                (&mut self.lags.visible, (seen_at - ts).max(0)),
                (&mut self.window.sync, (synced_ms - ts).max(0)),
                (&mut self.window.visible, (seen_at - ts).max(0)),
            ] {
                lags.push(value);
            }
        }
    }

    fn report(&mut self, elapsed: Duration, sent: &Sent, rounds: &Rounds) {
        let staged = staged_rows(&mut self.client, self.tables);
        self.max_staged = self.max_staged.max(staged);
        println!(
            "[{:>4} s] sent {:>9}, staged {:>7} rows, rounds {} (errors {}); last 10 s lag: applied {}; visible {}",
            elapsed.as_secs(),
            sent.total(),
            staged,
            rounds.rounds.load(Ordering::Relaxed),
            rounds.errors.load(Ordering::Relaxed),
            summary(&self.window.sync),
            summary(&self.window.visible)
        );
        self.window = Lags::default();
    }
}

/// The scheduler's rounds, as its callback sees them.
#[derive(Debug, Default)]
struct Rounds {
    rounds: AtomicI64,
    errors: AtomicI64,
    rows: AtomicI64,
}

/// Starts the runtime's merge scheduler (1 s, window 0) on the runtime, with its own
/// connection (which it re-opens if lost).
fn start_scheduler(
    runtime: &tokio::runtime::Runtime,
    conninfo: &str,
    rounds: Arc<Rounds>,
) -> MergeScheduler {
    let config = conninfo
        .parse()
        .unwrap_or_else(|e| panic!("connection string {conninfo}: {e}"));
    let _entered = runtime.enter();
    MergeScheduler::builder(Connector::without_tls(config))
        .interval(Duration::from_secs(1))
        .window_seconds(0)
        .on_event(move |event| match event {
            SchedulerEvent::Round(round) => {
                rounds.rounds.fetch_add(1, Ordering::Relaxed);
                rounds.rows.fetch_add(round.rows_merged, Ordering::Relaxed);
                if round.tables_failed > 0 {
                    rounds
                        .errors
                        .fetch_add(i64::from(round.tables_failed), Ordering::Relaxed);
                }
            }
            SchedulerEvent::RoundFailed(e) => {
                rounds.rounds.fetch_add(1, Ordering::Relaxed);
                rounds.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("merge round failed: {e}");
            }
            _ => {}
        })
        .start()
        .unwrap_or_else(|e| panic!("starting the merge scheduler: {e}"))
}

/// Differences between a final table and the truth: missing, extra and wrong rows.
fn differences(client: &mut Client, table: usize, truth: &TableState) -> usize {
    let sql = format!(
        "SELECT id, name, qty, __source_ts_ms, __kafka_offset FROM {}",
        final_table(&table_name(table))
    );
    let rows = client
        .query(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut diff = 0;
    let mut found = 0;
    for row in rows {
        let (id, name, qty): (i32, String, Option<i32>) = (row.get(0), row.get(1), row.get(2));
        let (ts, off): (Option<i64>, Option<i64>) = (row.get(3), row.get(4));
        match truth.live.get(&id) {
            None => diff += 1,
            Some(&(want_ts, want_off)) => {
                found += 1;
                let want_qty = i32::try_from(want_off % 1000).ok();
                if ts != Some(want_ts)
                    || off != Some(want_off)
                    || name != format!("n{id}-{want_off}")
                    || qty != want_qty
                {
                    diff += 1;
                }
            }
        }
    }
    diff + (truth.live.len() - found)
}

fn main() -> ExitCode {
    let s = Settings::from_env();
    println!("merge_soak: {s:?}");
    let tables: Vec<String> = (0..s.tables).map(table_name).collect();
    let bench = Bench::start(&tables, Statistics::Autovacuum);
    let conninfo = bench.server.connection_string(&bench.db);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rounds = Arc::new(Rounds::default());
    let scheduler = start_scheduler(&runtime, &conninfo, Arc::clone(&rounds));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Sent::default());
    let per_writer = s.rate as f64 / s.writers as f64;
    let writers: Vec<_> = (0..s.writers)
        .map(|w| {
            let owned: Vec<usize> = (0..s.tables).filter(|t| t % s.writers == w).collect();
            let (client, stop, sent) = (bench.client(), Arc::clone(&stop), Arc::clone(&sent));
            let keys = s.keys;
            thread::spawn(move || {
                writer(
                    client,
                    owned,
                    per_writer,
                    keys,
                    0x5eed + w as u64,
                    stop,
                    sent,
                )
            })
        })
        .collect();

    let mut sampler = Sampler::new(bench.client(), s.tables, s.probe_keys);
    let started = Instant::now();
    let run = Duration::from_secs(s.secs as u64);
    let mut next_report = Duration::from_secs(10);
    let poll = Duration::from_millis(s.poll_ms as u64);
    while started.elapsed() < run {
        thread::sleep(poll);
        sampler.poll();
        if started.elapsed() >= next_report {
            sampler.report(started.elapsed(), &sent, &rounds);
            next_report += Duration::from_secs(10);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ran = started.elapsed();
    let mut truth: Vec<Option<TableState>> = (0..s.tables).map(|_| None).collect();
    for handle in writers {
        let states = handle
            .join()
            .unwrap_or_else(|_| panic!("a writer panicked"));
        for (t, state) in states {
            truth[t] = Some(state);
        }
    }
    let total = sent.total();
    println!(
        "writers stopped after {:.1} s: {total} events ({:.0}/s; {} inserts, {} updates, {} deletes, {} replays)",
        ran.as_secs_f64(),
        total as f64 / ran.as_secs_f64(),
        sent.inserts.load(Ordering::Relaxed),
        sent.updates.load(Ordering::Relaxed),
        sent.deletes.load(Ordering::Relaxed),
        sent.replays.load(Ordering::Relaxed)
    );

    // Drain: wait for the scheduler to merge what is left.
    let drain = Instant::now();
    while staged_rows(&mut sampler.client, s.tables) > 0
        && drain.elapsed() < Duration::from_secs(s.drain_secs as u64)
    {
        thread::sleep(poll);
        sampler.poll();
    }
    let left = staged_rows(&mut sampler.client, s.tables);
    println!(
        "drained in {:.1} s ({left} rows left staged)",
        drain.elapsed().as_secs_f64()
    );
    runtime.block_on(scheduler.stop());

    let mut diff = 0;
    for (t, state) in truth.iter().enumerate() {
        let state = state
            .as_ref()
            .unwrap_or_else(|| panic!("no truth for table {t}"));
        diff += differences(&mut sampler.client, t, state);
    }
    let errors = scalar(
        &mut sampler.client,
        &format!("SELECT count(*) FROM \"{MANAGEMENT_SCHEMA}\".error_log"),
    );
    println!();
    println!(
        "scheduler: {} rounds, {} errors, {} rows merged; error_log rows: {errors}",
        rounds.rounds.load(Ordering::Relaxed),
        rounds.errors.load(Ordering::Relaxed),
        rounds.rows.load(Ordering::Relaxed)
    );
    println!("largest staged backlog seen: {} rows", sampler.max_staged);
    println!(
        "lag, staging insert to applied (__sync_timestamp): {}",
        summary(&sampler.lags.sync)
    );
    println!(
        "lag, staging insert to visible (probes every {} ms): {}",
        s.poll_ms,
        summary(&sampler.lags.visible)
    );
    println!("difference from the truth: {diff} rows (must be 0)");
    if diff == 0 && left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
