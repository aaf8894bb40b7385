//! Waiting for a store that is not reachable yet (starting, recovering,
//! failing over): how long, how often, and what the log says meanwhile.
//!
//! An operator watching a start that does not come must see why: the first
//! failure is logged at once, then a line every few seconds says what PEZ
//! is still waiting for and how long it will go on, and the caller's final
//! error says why it gave up.

use crate::config::{Settings, StoreChoice};
use std::fmt;
use std::time::{Duration, Instant};

/// How often a wait that goes on says so again.
const SAY_AGAIN: Duration = Duration::from_secs(3);

/// How long to keep trying while the store is not reachable yet: the
/// startup timeout on PostgreSQL; the embedded store is there or not.
pub fn startup_timeout(settings: &Settings) -> Duration {
    match &settings.store {
        StoreChoice::Embedded => Duration::ZERO,
        StoreChoice::Postgres(pg) => pg.startup_timeout,
    }
}

/// When to try again while the store is not reachable yet at start-up (it
/// may be starting, recovering or failing over): until `timeout` has
/// passed, backing off from 100 ms to 2 s. Logs the first failure, and
/// every few seconds what it is still waiting for.
#[derive(Debug)]
pub struct StartupRetry {
    started: Instant,
    timeout: Duration,
    pause: Duration,
    said: Option<Instant>,
}

impl StartupRetry {
    /// Starts counting now.
    pub fn new(timeout: Duration) -> Self {
        Self {
            started: Instant::now(),
            timeout,
            pause: Duration::from_millis(100),
            said: None,
        }
    }

    /// After a failed attempt (`transient` when trying again may help):
    /// how long to wait before the next one, or `None` to give up.
    pub fn after_failure(&mut self, transient: bool, error: &dyn fmt::Display) -> Option<Duration> {
        let waited = self.started.elapsed();
        let left = self.timeout.saturating_sub(waited);
        if !transient || left.is_zero() {
            return None;
        }
        match self.said {
            None => {
                log::warn!(
                    "the store is not reachable yet; waiting for it, retrying for up to {:?}: \
                     {error}",
                    self.timeout
                );
                self.said = Some(Instant::now());
            }
            Some(at) if at.elapsed() >= SAY_AGAIN => {
                log::warn!(
                    "still waiting for the store after {:.0?}, retrying for {:.0?} more: {error}",
                    waited,
                    left
                );
                self.said = Some(Instant::now());
            }
            Some(_) => {}
        }
        let pause = self.pause.min(left);
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        Some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_at_its_timeout_and_a_final_verdict_ends_it_at_once() {
        let mut retry = StartupRetry::new(Duration::from_millis(300));
        assert!(retry.after_failure(false, &"no such database").is_none());
        let mut slept = Duration::ZERO;
        while let Some(pause) = retry.after_failure(true, &"refused") {
            assert!(pause <= Duration::from_secs(2));
            std::thread::sleep(pause);
            slept += pause;
        }
        assert!(slept >= Duration::from_millis(250), "{slept:?}");
        assert!(slept < Duration::from_secs(1), "{slept:?}");
    }
}
