//! The merge scheduler: a round of `cdc_management.run_pending_merges` every interval on a
//! connection of its own, reconnecting with capped exponential backoff (with jitter) when the
//! connection drops or the server is down; rounds, errors, disconnects and reconnects are
//! reported through `tracing` and, optionally, to a callback.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, info_span, warn, Instrument as _};

use super::{run_pending_merges_async, MergeError, MergeRound};
use crate::connect::Connector;

/// What the scheduler saw, as [`MergeSchedulerBuilder::on_event`]'s callback gets it
/// (everything here is also reported through `tracing`).
#[derive(Debug)]
#[non_exhaustive]
pub enum SchedulerEvent {
    /// The first connection is up, after `attempts` attempts.
    Connected {
        /// Connection attempts it took.
        attempts: u32,
    },
    /// A connection attempt failed; the next one follows in `retry_in`.
    ConnectFailed {
        /// The attempt's number since the connection was lost (or since the start).
        attempt: u32,
        /// The pause before the next attempt.
        retry_in: Duration,
        /// Why it failed.
        error: tokio_postgres::Error,
    },
    /// A round ran.
    Round(MergeRound),
    /// A round failed; if the connection went with it, [`SchedulerEvent::Disconnected`] follows.
    RoundFailed(MergeError),
    /// The connection was lost; the next round reconnects first.
    Disconnected,
    /// A connection is up again after a disconnect.
    Reconnected {
        /// Connection attempts it took.
        attempts: u32,
        /// Time since the connection was seen lost.
        down_for: Duration,
    },
}

/// The callback of [`MergeSchedulerBuilder::on_event`].
type OnEvent = Arc<dyn Fn(&SchedulerEvent) + Send + Sync>;

/// How a [`MergeScheduler`] runs; made by [`MergeScheduler::builder`].
#[derive(Clone)]
pub struct MergeSchedulerBuilder {
    connector: Connector,
    interval: Duration,
    window_seconds: i32,
    batch_size: Option<i32>,
    backoff_initial: Duration,
    backoff_max: Duration,
    jitter: bool,
    on_event: Option<OnEvent>,
}

impl fmt::Debug for MergeSchedulerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergeSchedulerBuilder")
            .field("connector", &self.connector)
            .field("interval", &self.interval)
            .field("window_seconds", &self.window_seconds)
            .field("batch_size", &self.batch_size)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .field("jitter", &self.jitter)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

impl MergeSchedulerBuilder {
    /// Time between the starts of two rounds (default 1 s; a round that takes
    /// longer delays the next one instead of piling up).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Merge tables whose staged rows waited at least this long (default 5 s; 0:
    /// everything pending at each round).
    pub fn window_seconds(mut self, window_seconds: i32) -> Self {
        self.window_seconds = window_seconds;
        self
    }

    /// Rows per committed batch (default: the procedure's).
    pub fn batch_size(mut self, batch_size: Option<i32>) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Pauses between connection attempts: `initial`, doubled after each
    /// failure up to `max` (defaults 100 ms and 30 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_initial);
        self
    }

    /// Whether each pause is drawn between half and all of its nominal length,
    /// so that replicas that lost the same server do not reconnect in step (default on).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Calls `callback` with every [`SchedulerEvent`] (rounds with their
    /// [`MergeRound`], failures, disconnects, reconnects), on the scheduler's task.
    pub fn on_event(mut self, callback: impl Fn(&SchedulerEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(callback));
        self
    }

    /// Starts the scheduler: on the current tokio runtime when there is one,
    /// otherwise on a thread of its own (`cdc-merge-scheduler`) with its own
    /// single-threaded runtime, so blocking services can use it too.
    ///
    /// # Errors
    ///
    /// Without a current runtime: the thread or its runtime could not be created.
    pub fn start(self) -> std::io::Result<MergeScheduler> {
        let (stop, stopped) = watch::channel(false);
        let span = info_span!(
            "cdc_merge_scheduler",
            target = %self.connector.target(),
            interval_ms = millis(self.interval),
            window_seconds = self.window_seconds
        );
        let run = Loop::new(self).run(stopped).instrument(span);
        let worker = match tokio::runtime::Handle::try_current() {
            Ok(handle) => Worker::Task(handle.spawn(run)),
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let thread = std::thread::Builder::new()
                    .name("cdc-merge-scheduler".to_string())
                    .spawn(move || runtime.block_on(run))?;
                Worker::Thread(thread)
            }
        };
        Ok(MergeScheduler { stop, worker })
    }
}

/// Where the loop runs.
#[derive(Debug)]
enum Worker {
    /// A task on the runtime that was current at the start.
    Task(tokio::task::JoinHandle<()>),
    /// A thread of its own with its own runtime.
    Thread(std::thread::JoinHandle<()>),
}

/// Calls `cdc_management.run_pending_merges` every interval until stopped, on a
/// connection of its own that it re-opens whenever it is lost: the scheduler
/// survives database restarts and outages. Several replicas may run one each: a
/// table is merged by one session at a time. Dropping it stops it too, without
/// waiting for the round in progress.
///
/// ```rust,no_run
/// use std::time::Duration;
/// use cdc_runtime::merge::{MergeScheduler, SchedulerEvent};
/// use cdc_runtime::{ConnectOptions, Connector};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = Connector::new(&ConnectOptions::from_env("dev", "directory")?)?;
/// let scheduler = MergeScheduler::builder(connector)
///     .interval(Duration::from_secs(1))
///     .window_seconds(0)
///     .on_event(|event| {
///         if let SchedulerEvent::Round(round) = event {
///             println!("{} rows in {:?}", round.rows_merged, round.duration);
///         }
///     })
///     .start()?;
/// // ... the service runs ...
/// scheduler.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MergeScheduler {
    stop: watch::Sender<bool>,
    worker: Worker,
}

impl MergeScheduler {
    /// A scheduler that connects with `connector`; see [`MergeSchedulerBuilder`] for the settings.
    pub fn builder(connector: Connector) -> MergeSchedulerBuilder {
        MergeSchedulerBuilder {
            connector,
            interval: Duration::from_secs(1),
            window_seconds: 5,
            batch_size: None,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            jitter: true,
            on_event: None,
        }
    }

    /// Whether the loop is still running (it ends only when stopped, or if the
    /// event callback panics).
    pub fn is_running(&self) -> bool {
        match &self.worker {
            Worker::Task(task) => !task.is_finished(),
            Worker::Thread(thread) => !thread.is_finished(),
        }
    }

    /// Stops the loop after the round in progress, and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        match self.worker {
            Worker::Task(task) => {
                let _ = task.await;
            }
            Worker::Thread(thread) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }

    /// [`MergeScheduler::stop`] for blocking code. Called on a tokio runtime's
    /// thread, it cannot wait for a scheduler running on that runtime: it asks it
    /// to stop and returns.
    pub fn stop_blocking(self) {
        let _ = self.stop.send(true);
        match self.worker {
            Worker::Thread(thread) => {
                let _ = thread.join();
            }
            Worker::Task(task) => {
                if tokio::runtime::Handle::try_current().is_ok() {
                    return;
                }
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() {
                    let _ = runtime.block_on(task);
                }
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Capped exponential pauses, optionally jittered (a small xorshift generator:
/// spreading replicas needs no cryptographic randomness).
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    jitter: bool,
    state: u64,
}

impl Backoff {
    fn new(initial: Duration, max: Duration, jitter: bool) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let seed = (u64::from(nanos) << 32) ^ u64::from(std::process::id()) ^ 0x9E37_79B9_7F4A_7C15;
        Backoff {
            initial,
            max,
            next: initial,
            jitter,
            state: seed | 1,
        }
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The pause before the next attempt.
    fn pause(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        if !self.jitter {
            return nominal;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let half = nominal / 2;
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_micros(self.state % spread)
    }
}

/// The scheduler's loop and what it needs.
struct Loop {
    connector: Connector,
    interval: Duration,
    window_seconds: i32,
    batch_size: Option<i32>,
    backoff: Backoff,
    on_event: Option<OnEvent>,
}

impl Loop {
    fn new(builder: MergeSchedulerBuilder) -> Loop {
        Loop {
            backoff: Backoff::new(builder.backoff_initial, builder.backoff_max, builder.jitter),
            connector: builder.connector,
            interval: builder.interval,
            window_seconds: builder.window_seconds,
            batch_size: builder.batch_size,
            on_event: builder.on_event,
        }
    }

    fn emit(&self, event: SchedulerEvent) {
        if let Some(callback) = &self.on_event {
            callback(&event);
        }
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        info!("merge scheduler started");
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut client: Option<tokio_postgres::Client> = None;
        let mut lost_at: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break,
                _ = ticker.tick() => {}
            }
            if client
                .as_ref()
                .is_some_and(tokio_postgres::Client::is_closed)
            {
                client = None;
                lost_at = Some(self.disconnected());
            }
            let connected = match client.take() {
                Some(connected) => connected,
                None => match self.connect(&mut stopped, lost_at.take()).await {
                    Some(connected) => connected,
                    None => break,
                },
            };
            match run_pending_merges_async(&connected, self.window_seconds, self.batch_size).await {
                Ok(round) => {
                    self.emit(SchedulerEvent::Round(round));
                    client = Some(connected);
                }
                Err(error) => {
                    let lost = error.is_disconnect() || connected.is_closed();
                    self.emit(SchedulerEvent::RoundFailed(error));
                    if lost {
                        lost_at = Some(self.disconnected());
                    } else {
                        client = Some(connected);
                    }
                }
            }
        }
        info!("merge scheduler stopped");
    }

    /// Reports a lost connection; returns when it was seen lost.
    fn disconnected(&self) -> Instant {
        warn!("merge scheduler: connection lost; reconnecting before the next round");
        self.emit(SchedulerEvent::Disconnected);
        Instant::now()
    }

    /// Connects, retrying with backoff until it succeeds or the scheduler is stopped (`None`).
    async fn connect(
        &mut self,
        stopped: &mut watch::Receiver<bool>,
        lost_at: Option<Instant>,
    ) -> Option<tokio_postgres::Client> {
        self.backoff.reset();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = tokio::select! {
                biased;
                _ = stopped.changed() => return None,
                result = self.connector.connect() => result,
            };
            match result {
                Ok(client) => {
                    match lost_at {
                        Some(lost) => {
                            let down_for = lost.elapsed();
                            info!(
                                attempts = attempt,
                                down_ms = millis(down_for),
                                "merge scheduler reconnected"
                            );
                            self.emit(SchedulerEvent::Reconnected {
                                attempts: attempt,
                                down_for,
                            });
                        }
                        None => {
                            debug!(attempts = attempt, "merge scheduler connected");
                            self.emit(SchedulerEvent::Connected { attempts: attempt });
                        }
                    }
                    return Some(client);
                }
                Err(error) => {
                    let retry_in = self.backoff.pause();
                    warn!(
                        attempt,
                        retry_in_ms = millis(retry_in),
                        %error,
                        "merge scheduler: cannot connect"
                    );
                    self.emit(SchedulerEvent::ConnectFailed {
                        attempt,
                        retry_in,
                        error,
                    });
                    tokio::select! {
                        biased;
                        _ = stopped.changed() => return None,
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_jitter_stays_within_half_and_all() {
        let mut plain = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(700),
            false,
        );
        let pauses: Vec<u64> = (0..5).map(|_| millis(plain.pause())).collect();
        assert_eq!(pauses, [100, 200, 400, 700, 700]);
        plain.reset();
        assert_eq!(millis(plain.pause()), 100);

        let mut jittered = Backoff::new(Duration::from_millis(100), Duration::from_secs(30), true);
        let mut nominal = Duration::from_millis(100);
        for _ in 0..20 {
            let pause = jittered.pause();
            assert!(
                pause >= nominal / 2 && pause <= nominal,
                "{pause:?} for {nominal:?}"
            );
            nominal = (nominal * 2).min(Duration::from_secs(30));
        }
    }
}
