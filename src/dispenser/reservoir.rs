//! The numbers one instance holds for one sequence, and when to lease more.
//!
//! Pure bookkeeping: no I/O, no clock (callers pass `now`), no locking. The
//! async side ([`super::Dispenser`]) wraps it in a mutex, runs the leases it
//! asks for on the store, and reports back.

use crate::sequence::Block;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A block lasting less than this makes the next one twice as large.
pub const GROW_WHEN_FASTER_THAN: Duration = Duration::from_secs(60);
/// A block lasting more than this makes the next one half as large.
pub const SHRINK_WHEN_SLOWER_THAN: Duration = Duration::from_secs(600);
/// When requests take numbers fast, the next lease starts while about this
/// much time's worth is still on hand (more than the usual half block), so
/// a slow commit (a busy disk, a standby catching up) does not leave
/// requests waiting.
pub const LOOKAHEAD: Duration = Duration::from_secs(2);
/// ... but never more than this many of the largest blocks on hand: what a
/// crash can leave as a gap stays bounded.
pub const MAX_BLOCKS_AHEAD: u64 = 4;

/// How large leases are: adaptive between two bounds, the way Leaf and
/// Tinyid size their segments, so a busy sequence goes to the store a few
/// times a minute at most and an idle one loses little in a crash. Only
/// leases that succeeded count: retries against a failing store do not
/// grow the blocks.
#[derive(Debug, Clone)]
pub struct BlockSizing {
    size: u64,
    min: u64,
    max: u64,
    /// The sequence's whole range.
    lap: u64,
    last_success: Option<Instant>,
}

impl BlockSizing {
    /// Starts at `min` and never leaves `min..=max`.
    pub fn new(min: u64, max: u64) -> Self {
        let min = min.max(1);
        Self {
            size: min,
            min,
            max: max.max(min),
            lap: u64::MAX,
            last_success: None,
        }
    }

    /// The same, but never more than `lap` numbers: a lease larger than the
    /// sequence's whole range would only wrap around it, again and again.
    pub fn within_lap(mut self, lap: u64) -> Self {
        let lap = lap.max(1);
        self.lap = lap;
        self.min = self.min.min(lap);
        self.max = self.max.min(lap);
        self.size = self.size.clamp(self.min, self.max);
        self
    }

    /// The size for a lease starting `now`, adapted to how long the block
    /// of the previous successful lease lasted.
    pub fn size_at(&self, now: Instant) -> u64 {
        let Some(previous) = self.last_success else {
            return self.size;
        };
        let lasted = now.saturating_duration_since(previous);
        if lasted < GROW_WHEN_FASTER_THAN {
            self.size.saturating_mul(2).min(self.max)
        } else if lasted > SHRINK_WHEN_SLOWER_THAN {
            (self.size / 2).max(self.min)
        } else {
            self.size
        }
    }

    /// Records a successful lease of `size` that started at `started`.
    pub fn succeeded(&mut self, started: Instant, size: u64) {
        self.size = size.clamp(self.min, self.max);
        self.last_success = Some(started);
    }

    /// The current size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The most numbers worth holding ahead at once: a few of the largest
    /// blocks, and less than a lap.
    fn most_ahead(&self) -> u64 {
        self.max
            .saturating_mul(MAX_BLOCKS_AHEAD)
            .min(self.lap.div_ceil(2))
    }
}

/// Why numbers could not be taken right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Not enough on hand; a lease is under way or about to be. Wait for it.
    Waiting,
    /// The last lease failed and the next try has not started: answer at once.
    StoreFailing,
    /// A non-cycling sequence has run out for good.
    Exhausted,
    /// The instance is stopping and has given (or is giving) its blocks back.
    Closed,
}

/// What the leaser should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Lease a block of this many numbers now (it is marked in flight).
    Lease(u64),
    /// Enough on hand, or a lease is already in flight.
    Idle,
    /// Stopping: lease nothing more.
    Closed,
}

/// The leased, unissued numbers of one sequence in this instance, in
/// sequence order, and the state of the lease that refills them.
#[derive(Debug)]
pub struct Reservoir {
    blocks: VecDeque<Block>,
    available: u64,
    sizing: BlockSizing,
    lease_in_flight: bool,
    /// A take found too little on hand: lease even if not "low", because a
    /// request is waiting (counts larger than half a block, tiny ranges).
    starved: bool,
    failing: bool,
    exhausted: bool,
    closed: bool,
    /// The store's generation of the sequence these blocks belong to; a
    /// lease started under another brings numbers from before a restart
    /// and is dropped. Generations never repeat.
    generation: i64,
    lease_generation: i64,
    /// The sequence's count of laps after the leases whose blocks are on
    /// hand (what a give-back must find unchanged), or `None` once a lease
    /// overlapped numbers on hand (a small ring went a full lap under this
    /// instance) or came under another count than the blocks still on
    /// hand: then no give-back can be proven safe until the stock runs dry.
    laps: Option<i64>,
    /// [`Self::close`] handed blocks over (to be given back): a lease that
    /// lands after it must agree with their stamp as with blocks on hand.
    drained: bool,
    /// When the lease in flight started, and its size.
    lease_started: Option<(Instant, u64)>,
    /// Numbers taken so far, and when and at what count the rate was last
    /// measured: how fast requests take numbers.
    taken: u64,
    rate_mark: Option<(Instant, u64)>,
    /// Stock below this is low too: [`LOOKAHEAD`]'s worth at that rate.
    ahead: u64,
}

impl Reservoir {
    /// An empty reservoir of the sequence's `generation`, whose leases are
    /// sized by `sizing`.
    pub fn new(sizing: BlockSizing, generation: i64) -> Self {
        Self {
            blocks: VecDeque::new(),
            available: 0,
            sizing,
            lease_in_flight: false,
            starved: false,
            failing: false,
            exhausted: false,
            closed: false,
            generation,
            lease_generation: generation,
            laps: Some(0),
            drained: false,
            lease_started: None,
            taken: 0,
            rate_mark: None,
            ahead: 0,
        }
    }

    /// How many numbers are on hand.
    pub fn available(&self) -> u64 {
        self.available
    }

    /// Takes the next `count` numbers, all or none, as the runs of
    /// consecutive numbers they form. Taking none when short means a
    /// request that gives up (503) loses no numbers.
    pub fn take(&mut self, count: u64) -> Result<Vec<Block>, Shortfall> {
        if self.closed {
            return Err(Shortfall::Closed);
        }
        if count > self.available {
            self.starved = true;
            return Err(if self.exhausted {
                Shortfall::Exhausted
            } else if self.failing && !self.lease_in_flight {
                Shortfall::StoreFailing
            } else {
                Shortfall::Waiting
            });
        }
        let mut runs = Vec::with_capacity(1);
        let mut wanted = count;
        while wanted > 0 {
            let Some(block) = self.blocks.pop_front() else {
                unreachable!("available counted numbers that are not there");
            };
            let n = wanted.min(block.len());
            let (front, rest) = block.split_front(n);
            if let Some(rest) = rest {
                self.blocks.push_front(rest);
            }
            runs.push(front);
            wanted -= n;
        }
        self.available -= count;
        self.taken += count;
        Ok(runs)
    }

    /// Whether the leaser should be woken: stock is low and nothing is
    /// being done about it. Cheap, so requests can ask every time.
    pub fn wants_lease(&self) -> bool {
        !self.closed && !self.exhausted && !self.lease_in_flight && (self.starved || self.is_low())
    }

    /// Below half a block on hand: time to fetch the next block in the
    /// background, so requests never wait for the store in steady state.
    fn is_low(&self) -> bool {
        self.available < self.sizing.size().div_ceil(2).max(self.ahead).max(1)
    }

    /// Measures how fast numbers went since the last measurement (at least
    /// a tenth of a second ago) and sets how much stock counts as low.
    fn measure_rate(&mut self, now: Instant) {
        let Some((at, taken)) = self.rate_mark else {
            self.rate_mark = Some((now, self.taken));
            return;
        };
        let secs = now.saturating_duration_since(at).as_secs_f64();
        if secs < 0.1 {
            return;
        }
        let per_second = (self.taken - taken) as f64 / secs;
        self.ahead = ((per_second * LOOKAHEAD.as_secs_f64()) as u64).min(self.sizing.most_ahead());
        self.rate_mark = Some((now, self.taken));
    }

    /// Decides whether to lease now; a `Lease` is marked in flight until
    /// [`Self::lease_succeeded`] or [`Self::lease_failed`].
    pub fn start_lease(&mut self, now: Instant) -> LeaseDecision {
        if self.closed {
            return LeaseDecision::Closed;
        }
        if !self.wants_lease() {
            return LeaseDecision::Idle;
        }
        self.lease_in_flight = true;
        self.lease_generation = self.generation;
        self.measure_rate(now);
        let size = self.sizing.size_at(now);
        self.lease_started = Some((now, size));
        LeaseDecision::Lease(size)
    }

    /// Adds freshly leased blocks behind the ones on hand, reserved when
    /// the sequence had begun `laps` laps. Accepted even when closed, so
    /// that [`Self::close`] gives them back too.
    /// Returns false, dropping the blocks, when a [`Self::reset`] happened
    /// while the lease was in flight: they predate a restart. The numbers of
    /// a block that are on hand already (a small cycling sequence wrapped,
    /// and other instances took some of the next lap) are dropped: the
    /// blocks on hand never share a number, so no answer holds one twice.
    pub fn lease_succeeded(&mut self, blocks: impl IntoIterator<Item = Block>, laps: i64) -> bool {
        self.lease_in_flight = false;
        self.failing = false;
        if let Some((started, size)) = self.lease_started.take() {
            self.sizing.succeeded(started, size);
        }
        if self.lease_generation != self.generation {
            return false;
        }
        self.starved = false;
        let had_blocks = !self.blocks.is_empty() || self.drained;
        let mut overlapped = false;
        for block in blocks {
            let mut parts = vec![block];
            for held in &self.blocks {
                if parts.iter().any(|part| part.overlaps(held)) {
                    overlapped = true;
                    parts = parts.iter().flat_map(|part| part.minus(held)).collect();
                }
            }
            for part in parts {
                self.available += part.len();
                self.blocks.push_back(part);
            }
        }
        // One stamp covers every block on hand, so they must all come
        // from leases under the same count of laps: blocks of two laps
        // (a lease that began a lap while blocks of the last one are still
        // here) cannot be proven safe to give back together.
        let mixed = had_blocks && self.laps != Some(laps);
        self.laps = if overlapped || mixed || self.laps.is_none() && had_blocks {
            None
        } else {
            Some(laps)
        };
        true
    }

    /// Moves to the store's `generation` of the sequence: drops every block
    /// on hand without giving it back (the sequence was restarted: they may
    /// hold numbers the restart hands out again), and disowns the lease in
    /// flight, if any. Returns how many were dropped.
    pub fn reset(&mut self, generation: i64) -> u64 {
        let dropped = self.available;
        self.blocks.clear();
        self.available = 0;
        self.exhausted = false;
        self.generation = generation;
        self.laps = Some(0);
        dropped
    }

    /// The generation the blocks on hand belong to.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// What a give-back of the blocks on hand names: their generation and
    /// the count of laps of the latest lease; `None` when no give-back can
    /// be proven safe (a lease overlapped numbers on hand).
    pub fn stamp(&self) -> Option<crate::store::Stamp> {
        self.laps.map(|laps| crate::store::Stamp {
            generation: self.generation,
            laps,
        })
    }

    /// The next number a take would hand out, if any is on hand.
    pub fn peek(&self) -> Option<i64> {
        self.blocks.front().map(|block| block.first)
    }

    /// Records a failed lease. `exhausted` means the sequence has no numbers
    /// left at all (a non-cycling sequence at its end), not a store fault.
    pub fn lease_failed(&mut self, exhausted: bool) {
        self.lease_in_flight = false;
        self.lease_started = None;
        if !exhausted {
            self.failing = true;
        } else if self.lease_generation == self.generation {
            // A lease begun before a restart found the old position at its
            // end; the restarted sequence has numbers again.
            self.exhausted = true;
        }
    }

    /// Stops all taking and leasing, and hands over the unissued blocks in
    /// sequence order, to be given back to the store.
    pub fn close(&mut self) -> Vec<Block> {
        self.closed = true;
        self.available = 0;
        self.drained |= !self.blocks.is_empty();
        self.blocks.drain(..).collect()
    }

    /// Whether a lease is under way.
    pub fn lease_in_flight(&self) -> bool {
        self.lease_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::{Direction, SequenceSpec};
    use proptest::prelude::*;

    fn numbers(runs: &[Block]) -> Vec<i64> {
        runs.iter().flat_map(|b| b.iter()).collect()
    }

    fn filled(blocks: &[(i64, u64)]) -> Reservoir {
        let mut r = Reservoir::new(BlockSizing::new(10, 100), 0);
        for &(first, len) in blocks {
            assert!(r.lease_succeeded([Block::new(first, Direction::Ascending, len)], 0));
        }
        r
    }

    #[test]
    fn a_take_spans_blocks_in_order() {
        let mut r = filled(&[(1, 3), (4, 10)]);
        assert_eq!(numbers(&r.take(2).unwrap()), vec![1, 2]);
        assert_eq!(numbers(&r.take(3).unwrap()), vec![3, 4, 5]);
        assert_eq!(r.available(), 8);
    }

    #[test]
    fn a_take_larger_than_the_stock_takes_nothing() {
        let mut r = filled(&[(1, 3)]);
        assert_eq!(r.take(4), Err(Shortfall::Waiting));
        assert_eq!(numbers(&r.take(3).unwrap()), vec![1, 2, 3]);
    }

    #[test]
    fn a_request_larger_than_the_stock_asks_for_a_lease_even_when_stock_is_not_low() {
        let mut r = filled(&[(1, 50)]);
        assert!(!r.wants_lease());
        assert_eq!(r.take(60), Err(Shortfall::Waiting));
        assert!(r.wants_lease());
    }

    #[test]
    fn a_failed_lease_answers_at_once_until_the_next_try_starts() {
        let mut r = filled(&[]);
        let now = Instant::now();
        assert_eq!(r.start_lease(now), LeaseDecision::Lease(10));
        assert_eq!(r.take(1), Err(Shortfall::Waiting));
        r.lease_failed(false);
        assert_eq!(r.take(1), Err(Shortfall::StoreFailing));
        assert!(matches!(r.start_lease(now), LeaseDecision::Lease(_)));
        assert_eq!(r.take(1), Err(Shortfall::Waiting));
        r.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 0);
        assert_eq!(numbers(&r.take(1).unwrap()), vec![1]);
    }

    #[test]
    fn an_exhausted_sequence_says_so() {
        let mut r = filled(&[(1, 2)]);
        r.lease_failed(true);
        assert_eq!(r.take(3), Err(Shortfall::Exhausted));
        assert_eq!(r.start_lease(Instant::now()), LeaseDecision::Idle);
        assert_eq!(numbers(&r.take(2).unwrap()), vec![1, 2]);
    }

    #[test]
    fn the_next_block_is_leased_when_half_the_current_one_is_gone() {
        let mut r = filled(&[]);
        let now = Instant::now();
        assert_eq!(r.start_lease(now), LeaseDecision::Lease(10));
        assert_eq!(
            r.start_lease(now),
            LeaseDecision::Idle,
            "one lease at a time"
        );
        r.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 0);
        r.take(5).unwrap();
        assert!(!r.wants_lease());
        r.take(1).unwrap();
        assert!(r.wants_lease());
    }

    #[test]
    fn a_reset_drops_the_stock_and_the_lease_in_flight() {
        let mut r = filled(&[(1, 4)]);
        r.take(1).unwrap();
        assert_eq!(r.peek(), Some(2));
        assert!(matches!(
            r.start_lease(Instant::now()),
            LeaseDecision::Lease(_)
        ));
        assert_eq!(r.reset(1), 3);
        assert_eq!(r.peek(), None);
        assert!(!r.lease_succeeded([Block::new(11, Direction::Ascending, 10)], 0));
        assert_eq!(
            r.available(),
            0,
            "a lease from before the reset is not served"
        );
        assert!(matches!(
            r.start_lease(Instant::now()),
            LeaseDecision::Lease(_)
        ));
        assert!(r.lease_succeeded([Block::new(500, Direction::Ascending, 10)], 0));
        assert_eq!(numbers(&r.take(2).unwrap()), vec![500, 501]);
    }

    #[test]
    fn a_lease_that_lands_after_the_close_keeps_the_stamp_of_the_blocks_handed_over() {
        // Blocks of lap 1 handed over at the close, a lease of lap 2 landing
        // after it: given back together under lap 2's stamp, the older ones
        // could go back over numbers issued in lap 2 (found by review).
        let mut r = Reservoir::new(BlockSizing::new(10, 10), 7);
        assert_eq!(r.start_lease(Instant::now()), LeaseDecision::Lease(10));
        assert!(r.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 1));
        r.take(8).expect("numbers on hand");
        assert_eq!(r.start_lease(Instant::now()), LeaseDecision::Lease(10));
        let handed_over = r.close();
        assert_eq!(handed_over.len(), 1);
        assert!(r.lease_succeeded([Block::new(11, Direction::Ascending, 10)], 2));
        assert_eq!(r.stamp(), None);
        // The same lap: one stamp covers both.
        let mut same = Reservoir::new(BlockSizing::new(10, 10), 7);
        same.start_lease(Instant::now());
        same.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 1);
        same.take(8).expect("numbers on hand");
        same.start_lease(Instant::now());
        same.close();
        same.lease_succeeded([Block::new(11, Direction::Ascending, 10)], 1);
        assert_eq!(
            same.stamp(),
            Some(crate::store::Stamp {
                generation: 7,
                laps: 1
            })
        );
    }

    #[test]
    fn closing_hands_back_everything_and_stops_taking() {
        let mut r = filled(&[(1, 3), (4, 3)]);
        r.take(1).unwrap();
        let back = r.close();
        assert_eq!(numbers(&back), vec![2, 3, 4, 5, 6]);
        assert_eq!(r.take(1), Err(Shortfall::Closed));
        assert_eq!(r.start_lease(Instant::now()), LeaseDecision::Closed);
    }

    #[test]
    fn blocks_grow_when_they_go_fast_and_shrink_when_they_go_slow() {
        let mut s = BlockSizing::new(1000, 4000);
        let t0 = Instant::now();
        let mut lease = |at: u64| {
            let now = t0 + Duration::from_secs(at);
            let size = s.size_at(now);
            s.succeeded(now, size);
            size
        };
        assert_eq!(lease(0), 1000);
        assert_eq!(lease(1), 2000);
        assert_eq!(lease(2), 4000);
        assert_eq!(lease(3), 4000, "capped");
        assert_eq!(lease(200), 4000, "steady");
        assert_eq!(lease(1000), 2000);
        assert_eq!(lease(2000), 1000);
        assert_eq!(lease(3000), 1000, "floored");
    }

    #[test]
    fn failed_leases_do_not_grow_the_blocks() {
        let mut r = Reservoir::new(BlockSizing::new(10, 1000), 0);
        let t0 = Instant::now();
        assert_eq!(r.start_lease(t0), LeaseDecision::Lease(10));
        r.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 0);
        r.take(10).unwrap();
        for i in 1..20 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(r.start_lease(now), LeaseDecision::Lease(20), "attempt {i}");
            r.lease_failed(false);
        }
        assert_eq!(
            r.start_lease(t0 + Duration::from_millis(30)),
            LeaseDecision::Lease(20)
        );
        r.lease_succeeded([Block::new(11, Direction::Ascending, 20)], 0);
        assert_eq!(r.available(), 20);
    }

    #[test]
    fn fast_takes_lease_ahead_by_a_couple_of_seconds_within_a_few_blocks() {
        let mut r = Reservoir::new(BlockSizing::new(1000, 1000), 0);
        let t0 = Instant::now();
        let lease = |r: &mut Reservoir, at: Instant, first: i64| {
            assert!(matches!(r.start_lease(at), LeaseDecision::Lease(1000)));
            assert!(r.lease_succeeded([Block::new(first, Direction::Ascending, 1000)], 0));
        };
        lease(&mut r, t0, 1);
        // 1,000 numbers in half a second: 2,000 a second.
        r.take(1000).unwrap();
        lease(&mut r, t0 + Duration::from_millis(500), 1001);
        // Two seconds' worth is 4,000: low until that much is on hand.
        for (i, at) in (1..=3i64).map(|i| (i, t0 + Duration::from_millis(500 + i as u64))) {
            assert!(r.wants_lease(), "with {} on hand", r.available());
            lease(&mut r, at, 1 + 1000 * (i + 1));
        }
        assert_eq!(r.available(), 4000);
        assert!(!r.wants_lease());
        // Very fast takes: at most four of the largest blocks ahead.
        r.take(3999).unwrap();
        lease(&mut r, t0 + Duration::from_millis(700), 5001);
        for i in 0..10 {
            if !r.wants_lease() {
                break;
            }
            lease(
                &mut r,
                t0 + Duration::from_millis(701 + i),
                6001 + 1000 * i as i64,
            );
        }
        assert!(r.available() <= 4 * 1000 + 1, "{} on hand", r.available());
        assert!(!r.wants_lease());
    }

    #[test]
    fn leases_never_exceed_one_lap_of_a_small_sequence() {
        let mut r = Reservoir::new(BlockSizing::new(200, 1_000_000).within_lap(10), 0);
        let t0 = Instant::now();
        assert_eq!(r.start_lease(t0), LeaseDecision::Lease(10));
        r.lease_succeeded([Block::new(1, Direction::Ascending, 10)], 0);
        assert!(!r.wants_lease(), "a full lap on hand is plenty");
        r.take(6).unwrap();
        assert!(r.wants_lease());
        assert_eq!(r.start_lease(t0), LeaseDecision::Lease(10), "still one lap");
    }

    #[test]
    fn a_lease_from_before_a_restart_that_found_the_end_does_not_exhaust_the_sequence() {
        let mut r = filled(&[]);
        assert!(matches!(
            r.start_lease(Instant::now()),
            LeaseDecision::Lease(_)
        ));
        r.reset(1);
        r.lease_failed(true);
        assert_eq!(r.take(1), Err(Shortfall::Waiting), "not exhausted");
        assert!(r.wants_lease());
    }

    proptest! {
        /// Whatever mix of takes, leases and closes happens, the numbers
        /// taken and given back are the numbers leased, each exactly once,
        /// in the order they were leased.
        #[test]
        fn every_leased_number_leaves_exactly_once_in_order(
            ops in prop::collection::vec((any::<bool>(), 1u64..40), 1..200),
        ) {
            let spec = SequenceSpec::forward();
            let mut r = Reservoir::new(BlockSizing::new(4, 64), 0);
            let mut store_next = Some(1);
            let mut leased = Vec::new();
            let mut out = Vec::new();
            let now = Instant::now();
            for (op, n) in ops {
                let lease = op;
                if lease {
                    if let LeaseDecision::Lease(size) = r.start_lease(now) {
                        let (block, after) = spec.cut(store_next.unwrap(), size);
                        store_next = after;
                        leased.extend(block.iter());
                        r.lease_succeeded([block], 0);
                    }
                } else {
                    let before = r.available();
                    match r.take(n) {
                        Ok(runs) => {
                            prop_assert_eq!(runs.iter().map(Block::len).sum::<u64>(), n);
                            prop_assert_eq!(r.available(), before - n);
                            out.extend(numbers(&runs));
                        }
                        Err(_) => prop_assert!(n > before),
                    }
                }
            }
            out.extend(numbers(&r.close()));
            prop_assert_eq!(out, leased);
        }
    }
}
