//! Pauses between tries against a failing store: the leaser's, a strict
//! sequence's workers' and a range lease's, one schedule for all.

use std::time::Duration;

/// A pause that doubles after every failed try, up to a ceiling, and
/// starts over after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Pauses of `first`, then twice as long each time, at most `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            next: first.min(max),
            max,
        }
    }

    /// The pause before the next try; the one after it is longer.
    pub fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(self.max);
        pause
    }

    /// Whether no try has failed since the start or the last success: the
    /// first failure of an outage, worth a louder log line.
    pub fn is_fresh(&self) -> bool {
        self.next == self.first.min(self.max)
    }

    /// A try worked: the next failure pauses `first` again.
    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_ceiling_and_start_over_after_a_success() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1000));
        assert!(backoff.is_fresh());
        let pauses: Vec<_> = (0..6).map(|_| backoff.pause()).collect();
        assert_eq!(
            pauses,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert!(!backoff.is_fresh());
        backoff.reset();
        assert!(backoff.is_fresh());
        assert_eq!(backoff.pause(), ms(100));
    }
}
