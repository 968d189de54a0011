//! How long a migrator waits for another migrator of its sink: retries with a growing pause, up to a limit.

use std::time::{Duration, Instant};

/// The first pause after a refused lock.
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause between two tries.
const LONGEST_PAUSE: Duration = Duration::from_millis(500);

/// The waiting policy of one lock acquisition: try, then pause 20 ms, 40 ms,
/// ... up to 500 ms between tries, never past the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockWait {
    limit: Duration,
    started: Instant,
    pause: Duration,
    refusals: u32,
}

/// What to do after the lock was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRefusal {
    /// Pause this long and try again; `first` on the first refusal.
    Retry { pause: Duration, first: bool },
    /// The limit is reached after waiting this long.
    GiveUp { waited: Duration },
}

impl LockWait {
    /// A wait of at most `limit`, starting at `now`.
    pub(crate) fn new(limit: Duration, now: Instant) -> LockWait {
        LockWait {
            limit,
            started: now,
            pause: FIRST_PAUSE,
            refusals: 0,
        }
    }

    /// How long the lock has been awaited at `now`.
    pub(crate) fn waited(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Whether the lock was ever refused.
    pub(crate) fn was_refused(&self) -> bool {
        self.refusals > 0
    }

    /// The lock was refused at `now`.
    pub(crate) fn refused(&mut self, now: Instant) -> AfterRefusal {
        self.refusals += 1;
        let waited = self.waited(now);
        if waited >= self.limit {
            return AfterRefusal::GiveUp { waited };
        }
        let pause = self.pause.min(self.limit - waited);
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        AfterRefusal::Retry {
            pause,
            first: self.refusals == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_half_a_second_and_never_pass_the_limit() {
        let start = Instant::now();
        let mut wait = LockWait::new(Duration::from_millis(1000), start);
        let mut now = start;
        let mut pauses = Vec::new();
        loop {
            match wait.refused(now) {
                AfterRefusal::Retry { pause, first } => {
                    assert_eq!(first, pauses.is_empty());
                    pauses.push(pause.as_millis());
                    now += pause;
                }
                AfterRefusal::GiveUp { waited } => {
                    assert_eq!(waited, Duration::from_millis(1000));
                    break;
                }
            }
        }
        assert_eq!(pauses, [20, 40, 80, 160, 320, 380]);
    }

    #[test]
    fn a_zero_limit_gives_up_at_the_first_refusal() {
        let now = Instant::now();
        let mut wait = LockWait::new(Duration::ZERO, now);
        assert!(!wait.was_refused());
        assert_eq!(
            wait.refused(now),
            AfterRefusal::GiveUp {
                waited: Duration::ZERO
            }
        );
        assert!(wait.was_refused());
    }
}
