//! The runtime's merge scheduler (`cdc_runtime::merge::MergeScheduler`) against a real
//! PostgreSQL 15 server of each test's own, which the tests stop and start under it: rows staged
//! are merged by its rounds; it survives a server restart and an outage of a few seconds without
//! being restarted (disconnects, failed attempts and reconnects reported, no panic); it reports
//! SQL errors and goes on; it stops cleanly, also while it waits to reconnect. And one round of
//! `run_pending_merges` (blocking and async) reports the procedure's totals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdc_runtime::merge::{
    run_pending_merges, run_pending_merges_async, MergeScheduler, MergeSchedulerBuilder,
    SchedulerEvent,
};
use cdc_runtime::Connector;
use cdc_testkit::merge::{
    actor, actors, example_database, processing_log, stage_actors, stage_order_details, staged,
    upsert, ActorRow,
};
use cdc_testkit::PgServer;

/// How long a test waits for the scheduler to do something.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the scheduler reported, one short line per event.
#[derive(Debug, Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn record(&self, event: &SchedulerEvent) {
        let line = match event {
            SchedulerEvent::Connected { .. } => "connected".to_string(),
            SchedulerEvent::ConnectFailed { .. } => "connect failed".to_string(),
            SchedulerEvent::Round(round) => format!(
                "round {} {} {}",
                round.tables_merged, round.rows_merged, round.tables_failed
            ),
            SchedulerEvent::RoundFailed(error) => format!("round failed: {error}"),
            SchedulerEvent::Disconnected => "disconnected".to_string(),
            SchedulerEvent::Reconnected { .. } => "reconnected".to_string(),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(line);
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.all().iter().filter(|e| e.starts_with(prefix)).count()
    }

    /// Rows merged over every round so far.
    fn rows_merged(&self) -> i64 {
        self.all()
            .iter()
            .filter_map(|e| e.strip_prefix("round "))
            .filter_map(|counts| counts.split(' ').nth(1)?.parse::<i64>().ok())
            .sum()
    }
}

/// A server of this test's own with a database where both example sinks are applied.
fn example_server(prefix: &str) -> (PgServer, String) {
    let server = PgServer::start().expect("starting a PostgreSQL server");
    let db = server.create_database(prefix);
    let mut client = server.client(&db);
    cdc_testkit::fixture::apply_example(&mut client);
    (server, db)
}

/// A scheduler on `db` at a short interval, merging everything pending at each round,
/// reconnecting quickly; its events go to `events`.
fn scheduler(server: &PgServer, db: &str, events: &Events) -> MergeSchedulerBuilder {
    let config = server
        .connection_string(db)
        .parse()
        .expect("connection string");
    let events = events.clone();
    MergeScheduler::builder(Connector::without_tls(config))
        .interval(Duration::from_millis(100))
        .window_seconds(0)
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .on_event(move |event| events.record(event))
}

/// Waits until `done` holds, failing the test with `what` and the events after [`PATIENCE`].
fn wait_until(what: &str, events: &Events, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}; events: {:?}",
            events.all()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the scheduler has merged `rows` rows in all, then until `directory.Actor` is `expected`.
fn wait_for_actors(server: &PgServer, db: &str, events: &Events, expected: &[ActorRow]) {
    let mut client = server.client(db);
    wait_until("the staged rows merged", events, || {
        staged(&mut client, "Actor") == 0 && actors(&mut client) == expected
    });
}

#[test]
fn the_scheduler_merges_staged_rows_across_a_server_restart() {
    let (mut server, db) = example_server("scheduler_restart");
    let events = Events::default();
    // No tokio runtime here: the scheduler runs on a thread of its own.
    let scheduler = scheduler(&server, &db, &events).start().unwrap();

    stage_actors(
        &mut server.client(&db),
        &[upsert(1, "Ada", 100, 10), upsert(2, "Bo", 100, 11)],
    );
    wait_for_actors(
        &server,
        &db,
        &events,
        &[actor(1, "Ada", "u", 100, 10), actor(2, "Bo", "u", 100, 11)],
    );
    assert_eq!(events.count("connected"), 1, "{:?}", events.all());

    server.restart().expect("restarting the server");
    stage_actors(
        &mut server.client(&db),
        &[upsert(2, "Bob", 200, 12), upsert(3, "Cy", 200, 13)],
    );
    wait_for_actors(
        &server,
        &db,
        &events,
        &[
            actor(1, "Ada", "u", 100, 10),
            actor(2, "Bob", "u", 200, 12),
            actor(3, "Cy", "u", 200, 13),
        ],
    );
    let seen = events.all();
    assert!(scheduler.is_running(), "{seen:?}");
    assert!(events.count("disconnected") >= 1, "{seen:?}");
    assert!(events.count("reconnected") >= 1, "{seen:?}");
    assert_eq!(events.rows_merged(), 4, "{seen:?}");

    scheduler.stop_blocking();
    let after_stop = events.all().len();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(events.all().len(), after_stop, "no round after stop");
}

#[test]
fn the_scheduler_keeps_running_while_the_server_is_down() {
    let (mut server, db) = example_server("scheduler_outage");
    let events = Events::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Started on a tokio runtime: the scheduler is a task of it.
    let scheduler = {
        let _context = runtime.enter();
        scheduler(&server, &db, &events).start().unwrap()
    };
    wait_until("the first round", &events, || events.count("round ") > 0);

    server.stop().expect("stopping the server");
    std::thread::sleep(Duration::from_secs(3));
    let seen = events.all();
    assert!(scheduler.is_running(), "{seen:?}");
    assert!(events.count("disconnected") >= 1, "{seen:?}");
    assert!(
        events.count("connect failed") >= 2,
        "attempts go on while the server is down: {seen:?}"
    );
    assert_eq!(events.count("reconnected"), 0, "{seen:?}");

    server.resume().expect("starting the server again");
    stage_actors(&mut server.client(&db), &[upsert(1, "Ada", 100, 10)]);
    wait_for_actors(&server, &db, &events, &[actor(1, "Ada", "u", 100, 10)]);
    assert!(events.count("reconnected") >= 1, "{:?}", events.all());
    runtime.block_on(scheduler.stop());
}

#[test]
fn a_scheduler_waiting_to_reconnect_stops_without_waiting_for_its_backoff() {
    let (mut server, db) = example_server("scheduler_stop");
    server.stop().expect("stopping the server");
    let events = Events::default();
    // After the first failed attempt the scheduler pauses an hour: a stop that waited for
    // the pause (or for the server) would hang this test.
    let hour = Duration::from_secs(3600);
    let scheduler = scheduler(&server, &db, &events)
        .backoff(hour, hour)
        .jitter(false)
        .start()
        .unwrap();
    wait_until("a failed attempt", &events, || {
        events.count("connect failed") >= 1
    });
    assert!(scheduler.is_running());
    scheduler.stop_blocking();
    assert_eq!(events.all(), ["connect failed"]);
}

#[test]
fn a_failing_round_is_reported_and_the_scheduler_goes_on() {
    let server = PgServer::start().expect("starting a PostgreSQL server");
    // A database without the management schema: every round fails, the connection stays.
    let db = server.create_database("scheduler_no_schema");
    let events = Events::default();
    let scheduler = scheduler(&server, &db, &events).start().unwrap();
    wait_until("three failed rounds", &events, || {
        events.count("round failed") >= 3
    });
    assert!(scheduler.is_running());
    let seen = events.all();
    assert_eq!(events.count("connected"), 1, "{seen:?}");
    assert_eq!(events.count("disconnected"), 0, "{seen:?}");
    let failure = seen.iter().find(|e| e.starts_with("round failed")).unwrap();
    assert!(
        failure.contains("3F000") && failure.contains("cdc_management"),
        "the server's SQLSTATE and message are reported: {failure}"
    );
    scheduler.stop_blocking();
}

#[test]
fn a_round_of_run_pending_merges_reports_its_totals_blocking_and_async() {
    let (db, mut c) = example_database("run_pending_merges");
    stage_actors(
        &mut c,
        &[
            upsert(1, "Ada", 100, 10),
            upsert(2, "Bo", 100, 11),
            upsert(3, "Cy", 100, 12),
        ],
    );
    stage_order_details(&mut c, &[(7, 1, Some(2), "c", 100, 1)]);
    let round = run_pending_merges(&mut c, 0, Some(2)).unwrap();
    assert_eq!(
        (round.tables_merged, round.rows_merged, round.tables_failed),
        (2, 4, 0)
    );
    assert_eq!(actors(&mut c).len(), 3);
    let log = processing_log(&mut c, "directory", "Actor");
    assert_eq!(log.iter().map(|row| row.0).sum::<i64>(), 3, "{log:?}");
    let round = run_pending_merges(&mut c, 0, None).unwrap();
    assert_eq!(
        (round.tables_merged, round.rows_merged, round.tables_failed),
        (0, 0, 0),
        "nothing pending"
    );

    stage_actors(&mut c, &[upsert(4, "Di", 100, 13)]);
    let config = cdc_testkit::shared()
        .connection_string(&db)
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let round = runtime
        .block_on(async {
            let client = Connector::without_tls(config).connect().await?;
            Ok::<_, Box<dyn std::error::Error>>(run_pending_merges_async(&client, 0, None).await?)
        })
        .unwrap();
    assert_eq!(
        (round.tables_merged, round.rows_merged, round.tables_failed),
        (1, 1, 0)
    );
    assert_eq!(actors(&mut c).len(), 4);
}
