//! What the store's calls said lately: whether it answers, since when it
//! does not, its last error and when, the last good reservation. Kept here,
//! beside the calls, so readiness, the status page and the log read one
//! account; the HTTP layer only reads a [`HealthReport`].
//!
//! An outage ends only when a call of the kind that found it answers. A
//! store can answer reads while it refuses writes (SQLite while another
//! process holds its write lock; a PostgreSQL standby): were any answer to
//! end an outage a write found, the sync's reads would flap it ok, failing,
//! ok every second. So an outage a write found ([`Kind::Write`]: a
//! reservation, an admin change, the background probe) waits for a write
//! that answers; one a read found ends with any answer.

use std::time::{Duration, Instant};

/// Whether a store call proves the store takes writes, or only that it
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads (and calls that may not touch the store at all, such as
    /// SQLite's heartbeat): an answer shows the store answers, not that it
    /// takes writes.
    Read,
    /// Writes, and the probe, which takes the store's write lock.
    Write,
}

impl Kind {
    /// The kind of the store call `operation` (as named in the metrics).
    pub fn of(operation: &str) -> Self {
        match operation {
            "list" | "generations" | "heartbeat" | "farewell" => Kind::Read,
            _ => Kind::Write,
        }
    }
}

/// A store that stopped answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outage {
    /// When the first call of this outage failed.
    since: Instant,
    /// The kind of call that found it: only an answer of this kind (or a
    /// write) ends it.
    found_by: Kind,
}

/// The store's health as its calls tell it.
#[derive(Debug, Default)]
pub struct StoreHealth {
    last_answer: Option<Instant>,
    outage: Option<Outage>,
    last_error: Option<(Instant, String)>,
    last_reservation: Option<Instant>,
}

/// What changed with one call's outcome, for the log: each outage is
/// logged once when it begins and once when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing worth a line.
    None,
    /// The store stopped answering.
    Down,
    /// The store answers again, after this long.
    Up(Duration),
}

impl StoreHealth {
    /// Records a call of `kind` that the store answered at `now` (a verdict
    /// such as "unknown sequence" is an answer too).
    pub fn answered(&mut self, operation: &str, now: Instant) -> Change {
        let kind = Kind::of(operation);
        self.last_answer = Some(now);
        if operation == "reserve" {
            self.last_reservation = Some(now);
        }
        match self.outage {
            Some(outage) if kind == Kind::Write || outage.found_by == Kind::Read => {
                self.outage = None;
                Change::Up(now.saturating_duration_since(outage.since))
            }
            _ => Change::None,
        }
    }

    /// Records a call of `operation` that found the store out at `now`, with
    /// the store's own error text (for the log and the status page's
    /// details, never for /readyz).
    pub fn failed(&mut self, operation: &str, cause: String, now: Instant) -> Change {
        self.last_error = Some((now, cause));
        match &mut self.outage {
            Some(outage) => {
                // A write failing during an outage a read found: now only a
                // write ends it.
                if Kind::of(operation) == Kind::Write {
                    outage.found_by = Kind::Write;
                }
                Change::None
            }
            None => {
                self.outage = Some(Outage {
                    since: now,
                    found_by: Kind::of(operation),
                });
                Change::Down
            }
        }
    }

    /// Why the store does not count as answering at `now`, if it does not:
    /// an outage, or no answer within `fresh`.
    pub fn trouble(&self, fresh: Duration, now: Instant) -> Option<String> {
        if let Some(outage) = self.outage {
            let cause = self.last_error.as_ref().map_or("", |(_, cause)| cause);
            return Some(format!(
                "the store has not answered for {:.1?}: {cause}",
                now.saturating_duration_since(outage.since)
            ));
        }
        match self.last_answer {
            Some(answered) if now.saturating_duration_since(answered) <= fresh => None,
            Some(answered) => Some(format!(
                "the store has not answered for {:.1?}",
                now.saturating_duration_since(answered)
            )),
            None => Some("the store has not answered yet".to_owned()),
        }
    }

    /// A copy for readers, ages taken at `now`.
    pub fn report(&self, now: Instant) -> HealthReport {
        let age = |at: Instant| now.saturating_duration_since(at);
        HealthReport {
            down_for: self.outage.map(|outage| age(outage.since)),
            last_answer: self.last_answer.map(age),
            last_reservation: self.last_reservation.map(age),
            last_error: self
                .last_error
                .as_ref()
                .map(|(at, cause)| (age(*at), cause.clone())),
        }
    }
}

/// The store's health at one moment, as ages (how long ago).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// How long the store has not answered; `None`: it answers.
    pub down_for: Option<Duration>,
    /// How long ago it last answered.
    pub last_answer: Option<Duration>,
    /// How long ago a reservation (a lease of numbers) last succeeded.
    pub last_reservation: Option<Duration>,
    /// The last error a store call met, however long ago, and how long ago:
    /// the store's own text, which may name hosts, users and tables.
    pub last_error: Option<(Duration, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_a_write_found_is_not_ended_by_reads() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut health = StoreHealth::default();
        assert_eq!(health.answered("reserve", at(0)), Change::None);
        assert_eq!(health.failed("probe", "locked".into(), at(1)), Change::Down);
        // The sync's reads go on answering: still down, and logged once.
        for s in 2..6 {
            assert_eq!(health.answered("list", at(s)), Change::None);
            assert_eq!(health.answered("heartbeat", at(s)), Change::None);
            assert!(health.trouble(Duration::from_secs(60), at(s)).is_some());
            assert_eq!(health.failed("probe", "locked".into(), at(s)), Change::None);
        }
        let report = health.report(at(6));
        assert_eq!(report.down_for, Some(Duration::from_secs(5)));
        assert_eq!(report.last_reservation, Some(Duration::from_secs(6)));
        assert_eq!(
            report.last_error,
            Some((Duration::from_secs(1), "locked".to_owned()))
        );
        assert_eq!(
            health.answered("probe", at(7)),
            Change::Up(Duration::from_secs(6))
        );
        assert_eq!(health.trouble(Duration::from_secs(60), at(7)), None);
        // The last error stays on record after the recovery.
        assert!(health.report(at(8)).last_error.is_some());
        assert_eq!(health.report(at(8)).down_for, None);
    }

    #[test]
    fn an_outage_a_read_found_ends_with_any_answer_unless_a_write_failed_too() {
        let t0 = Instant::now();
        let mut health = StoreHealth::default();
        assert_eq!(health.failed("list", "gone".into(), t0), Change::Down);
        assert!(matches!(health.answered("list", t0), Change::Up(_)));
        assert_eq!(health.failed("list", "gone".into(), t0), Change::Down);
        assert_eq!(health.failed("reserve", "gone".into(), t0), Change::None);
        assert_eq!(health.answered("list", t0), Change::None);
        assert!(matches!(health.answered("reserve", t0), Change::Up(_)));
    }

    #[test]
    fn a_store_that_never_answered_or_went_quiet_is_trouble() {
        let t0 = Instant::now();
        let mut health = StoreHealth::default();
        assert!(health.trouble(Duration::from_secs(1), t0).is_some());
        health.answered("list", t0);
        assert_eq!(health.trouble(Duration::from_secs(1), t0), None);
        assert!(
            health
                .trouble(Duration::from_secs(1), t0 + Duration::from_secs(2))
                .is_some()
        );
    }
}
