//! A granted range, and the segment that hands its numbers out without a
//! lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A range of a lease: every number from `first` to `last`, in that order
/// (`first > last` on a descending sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    first: i64,
    last: i64,
}

impl Range {
    /// A range of PEZ numbers (both ends within 1..=i64::MAX), or `None`.
    pub fn new(first: i64, last: i64) -> Option<Self> {
        (first >= 1 && last >= 1).then_some(Range { first, last })
    }

    /// The first number handed out.
    pub fn first(&self) -> i64 {
        self.first
    }

    /// The last number handed out.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// How many numbers it holds (at least 1; at most 2^63 - 1).
    pub fn len(&self) -> u64 {
        self.first.abs_diff(self.last) + 1
    }

    /// Never: a range holds at least one number (for clippy's sake).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `k`-th number, `k < len()`.
    fn nth(&self, k: u64) -> i64 {
        // k < len <= i64::MAX, and first +- k stays within first..=last.
        let k = k as i64;
        if self.first <= self.last {
            self.first + k
        } else {
            self.first - k
        }
    }
}

/// The range numbers are handed out of now. `taken` counts the indexes
/// claimed; `fetch_add` gives each index to exactly one caller, and once
/// it reaches `len` every later claim fails too, so no number of this
/// segment is handed out after the next segment took its place.
#[derive(Debug)]
pub(crate) struct Segment {
    range: Option<Range>,
    len: u64,
    taken: AtomicU64,
    /// The index whose taker asks for the next lease (half used).
    trigger: u64,
    /// When it was put in place, to measure the rate numbers are taken at.
    pub(crate) installed: Instant,
}

/// What one claim on a segment came to: a number ([`Segment::claim`]) or
/// a range of them ([`Segment::claim_many`]).
pub(crate) enum Claim<T> {
    /// Claimed; `prefetch` when this claim is the one that should ask for
    /// the next lease.
    Got { value: T, prefetch: bool },
    /// The segment is used up.
    Empty,
}

impl Segment {
    /// A segment with nothing in it (before the first lease).
    pub(crate) fn empty() -> Self {
        Segment {
            range: None,
            len: 0,
            taken: AtomicU64::new(0),
            trigger: u64::MAX,
            installed: Instant::now(),
        }
    }

    /// A segment over `range`; the next lease is asked for once half of it
    /// is taken (at once for a range of one).
    pub(crate) fn new(range: Range) -> Self {
        let len = range.len();
        Segment {
            range: Some(range),
            len,
            taken: AtomicU64::new(0),
            trigger: len / 2,
            installed: Instant::now(),
        }
    }

    /// Claims the next number: the fast path, one atomic add.
    #[inline]
    pub(crate) fn claim(&self) -> Claim<i64> {
        // Relaxed: the range is immutable and was published by the ArcSwap
        // store/load pair; the counter only has to give each index once.
        let k = self.taken.fetch_add(1, Ordering::Relaxed);
        match self.range {
            Some(range) if k < self.len => Claim::Got {
                value: range.nth(k),
                prefetch: k == self.trigger,
            },
            _ => Claim::Empty,
        }
    }

    /// Claims up to `most` (at least 1) consecutive numbers at once: fewer
    /// at the end of the range. `prefetch` when the claim holds the index
    /// that asks for the next lease.
    ///
    /// A compare-exchange, not a `fetch_add`: adding a caller's `most` to
    /// `taken` on every call would, on a used-up segment that stays in
    /// place (an exhausted sequence, a store that is down), wrap the
    /// counter after 2^64 / `most` calls (two, for `most` = 2^63) and hand
    /// the segment's numbers out again. Here `taken` never passes `len`.
    #[inline]
    pub(crate) fn claim_many(&self, most: u64) -> Claim<Range> {
        let Some(range) = self.range else {
            return Claim::Empty;
        };
        let mut k = self.taken.load(Ordering::Relaxed);
        loop {
            if k >= self.len {
                return Claim::Empty;
            }
            let claimed = most.max(1).min(self.len - k);
            // Relaxed, as in `claim`: the range itself is immutable.
            match self.taken.compare_exchange_weak(
                k,
                k + claimed,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Claim::Got {
                        value: Range {
                            first: range.nth(k),
                            last: range.nth(k + claimed - 1),
                        },
                        prefetch: (k..k + claimed).contains(&self.trigger),
                    };
                }
                Err(now) => k = now,
            }
        }
    }

    /// The index whose claim asks for the next lease.
    pub(crate) fn trigger(&self) -> u64 {
        self.trigger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(segment: &Segment) -> Vec<i64> {
        let mut out = Vec::new();
        while let Claim::Got { value, .. } = segment.claim() {
            out.push(value);
        }
        out
    }

    #[test]
    fn a_segment_hands_out_its_range_in_order_either_way() {
        let up = Segment::new(Range::new(5, 8).unwrap());
        assert_eq!(all(&up), vec![5, 6, 7, 8]);
        assert!(matches!(up.claim(), Claim::Empty));
        let down = Segment::new(Range::new(i64::MAX, i64::MAX - 2).unwrap());
        assert_eq!(all(&down), vec![i64::MAX, i64::MAX - 1, i64::MAX - 2]);
    }

    #[test]
    fn exactly_one_claim_asks_for_the_next_lease() {
        for len in [1, 2, 3, 10, 1001] {
            let s = Segment::new(Range::new(1, len).unwrap());
            let mut asks = 0;
            while let Claim::Got { prefetch, .. } = s.claim() {
                asks += usize::from(prefetch);
            }
            assert_eq!(asks, 1, "len {len}");
        }
    }

    #[test]
    fn claims_of_many_split_a_segment_between_threads_exactly_once() {
        for (first, last) in [(1, 100_003), (i64::MAX, i64::MAX - 50_000)] {
            let segment = Segment::new(Range::new(first, last).unwrap());
            let prefetches = std::sync::atomic::AtomicU64::new(0);
            let mut taken: Vec<i64> = std::thread::scope(|s| {
                let claimers: Vec<_> = [1, 7, 1000, 4096]
                    .into_iter()
                    .map(|most| {
                        let (segment, prefetches) = (&segment, &prefetches);
                        s.spawn(move || {
                            let mut mine = Vec::new();
                            while let Claim::Got {
                                value: range,
                                prefetch,
                            } = segment.claim_many(most)
                            {
                                assert!(range.len() <= most);
                                prefetches.fetch_add(u64::from(prefetch), Ordering::Relaxed);
                                let step = if range.first() <= range.last() { 1 } else { -1 };
                                let mut n = range.first();
                                mine.push(n);
                                while n != range.last() {
                                    n += step;
                                    mine.push(n);
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                claimers
                    .into_iter()
                    .flat_map(|c| c.join().unwrap())
                    .collect()
            });
            taken.sort_unstable();
            let expected: Vec<i64> = (first.min(last)..=first.max(last)).collect();
            assert_eq!(taken, expected, "every number once, none outside");
            assert_eq!(
                prefetches.into_inner(),
                1,
                "one claim asks for the next lease"
            );
            assert!(matches!(segment.claim(), Claim::Empty));
        }
    }

    /// Review of issue 20: with `fetch_add(most)`, a used-up segment that
    /// stays in place gave its numbers out again once the counter wrapped
    /// (two claims of 2^63), and asked for the next lease twice.
    #[test]
    fn huge_claims_on_a_used_up_segment_never_give_its_numbers_again() {
        let segment = Segment::new(Range::new(1, 10).unwrap());
        let mut handed = 0;
        let mut prefetches = 0;
        for _ in 0..1000 {
            if let Claim::Got {
                value: range,
                prefetch,
            } = segment.claim_many(1 << 63)
            {
                handed += range.len();
                prefetches += u64::from(prefetch);
            }
        }
        assert_eq!(handed, 10, "the segment's numbers went out more than once");
        assert_eq!(prefetches, 1);
        assert!(matches!(segment.claim_many(u64::MAX), Claim::Empty));
    }

    #[test]
    fn a_range_holds_what_it_says() {
        assert_eq!(Range::new(1, i64::MAX).unwrap().len(), i64::MAX as u64);
        assert_eq!(Range::new(3, 3).unwrap().len(), 1);
        assert!(Range::new(0, 3).is_none());
    }
}
