//! How large the next lease is: a few seconds' worth at the rate numbers
//! are taken, moving by doubling and halving, within `[1, lease_limit]`.

use std::time::Duration;

/// The lease size, and what it learns from.
#[derive(Debug, Clone)]
pub(crate) struct Sizer {
    size: u64,
    limit: Option<u64>,
    target: Duration,
}

impl Sizer {
    /// Starts at `initial`; `target` is how long a lease should last.
    pub(crate) fn new(initial: u64, target: Duration) -> Self {
        Sizer {
            size: initial.max(1),
            limit: None,
            target,
        }
    }

    /// The size of the next lease.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The server's limit (from `lease_limit`, or a 400's `maximum`).
    pub(crate) fn set_limit(&mut self, limit: u64) {
        let limit = limit.max(1);
        self.limit = Some(limit);
        self.size = self.size.min(limit);
    }

    /// Learns from the last lease: `stalled` when a caller had to wait for
    /// a lease (it came too late: double), else the rate (numbers per
    /// second) measured over its first half, if any.
    pub(crate) fn learn(&mut self, rate: Option<f64>, stalled: bool) {
        let size = if stalled {
            self.size.saturating_mul(2)
        } else if let Some(rate) = rate {
            let wanted = rate * self.target.as_secs_f64();
            if wanted >= 2.0 * self.size as f64 {
                self.size.saturating_mul(2)
            } else if wanted * 2.0 <= self.size as f64 {
                self.size / 2
            } else {
                self.size
            }
        } else {
            self.size
        };
        self.size = size.clamp(1, self.limit.unwrap_or(u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_doubles_and_halves_towards_a_few_seconds_worth() {
        let mut s = Sizer::new(1000, Duration::from_secs(2));
        s.learn(Some(10_000.0), false); // 20,000 wanted
        assert_eq!(s.size(), 2000);
        s.learn(Some(10_000.0), false);
        assert_eq!(s.size(), 4000);
        s.learn(Some(10_000.0), false);
        assert_eq!(s.size(), 8000);
        s.learn(Some(10_000.0), false);
        assert_eq!(s.size(), 16000);
        s.learn(Some(10_000.0), false); // within a factor of two: stays
        assert_eq!(s.size(), 16000);
        s.learn(Some(10.0), false);
        assert_eq!(s.size(), 8000);
    }

    #[test]
    fn the_size_stays_within_one_and_the_limit() {
        let mut s = Sizer::new(4, Duration::from_secs(2));
        for _ in 0..10 {
            s.learn(Some(0.0), false);
        }
        assert_eq!(s.size(), 1);
        s.set_limit(5);
        for _ in 0..10 {
            s.learn(None, true);
        }
        assert_eq!(s.size(), 5);
        s.set_limit(3);
        assert_eq!(s.size(), 3);
    }
}
