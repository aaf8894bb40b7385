//! A sequence's fixed settings, checked, and how blocks are cut from it.

use super::{Block, Direction, MAX_VALUE, MIN_VALUE, Mode};
use serde::Serialize;
use std::fmt;

/// The names of the two sequences every store has and nobody may delete.
pub const BUILTIN: [&str; 2] = ["forward", "reverse"];

/// Names no sequence may take: PEZ's own objects in PostgreSQL's schema
/// `pez`, which holds each sequence as `pez."<name>"` beside them (a
/// sequence of one of these names could not be created there, and its
/// failure looked like an outage). One rule for both stores, so a sequence
/// can always move from the embedded store to PostgreSQL. A migration that
/// adds an object to schema pez names it with [`RESERVED_PREFIX`] or adds
/// its name here (a test of the PostgreSQL store checks every relation).
pub const RESERVED_NAMES: [&str; 5] = [
    "sequences",
    "sequences_pkey",
    "generations",
    "instances",
    "instances_pkey",
];

/// Names starting with this are reserved too: diesel's table of migrations
/// (`__diesel_schema_migrations`, in schema pez when the database user is
/// named pez) and PEZ's future objects.
pub const RESERVED_PREFIX: &str = "__";

/// The longest sequence name (PostgreSQL's identifier limit).
pub const MAX_NAME_LEN: usize = 63;

/// The share of its range a sequence's largest range lease is by default:
/// a thousandth, so that one client needs a thousand leases to go once
/// around it (or to exhaust it).
pub const DEFAULT_LEASE_SHARE: u64 = 1000;

/// The most a default largest lease is: the top of PEZ_MAX_LEASE's own
/// range, so that on a large sequence (`forward`, `reverse`) the server's
/// PEZ_MAX_LEASE, whatever it is set to, stays the limit, as before
/// sequences had limits of their own.
pub const DEFAULT_MAX_LEASE_CEILING: u64 = 1_000_000_000;

/// A sequence's largest range lease when none was given: a thousandth of
/// its range, at least 1, at most [`DEFAULT_MAX_LEASE_CEILING`].
pub fn default_max_lease(min: i64, max: i64) -> u64 {
    let size = min.abs_diff(max).saturating_add(1);
    (size / DEFAULT_LEASE_SHARE).clamp(1, DEFAULT_MAX_LEASE_CEILING)
}

/// Why a sequence's settings are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// Not 1 to 63 of `a-z`, `0-9`, `_`, `-`.
    BadName(String),
    /// The name of one of PEZ's own objects in the store.
    ReservedName(String),
    /// A bound outside 1..=2^63-1.
    OutOfBounds(&'static str, i64),
    /// min not below max: a sequence holds at least two numbers (PostgreSQL
    /// refuses a sequence of one, so neither store takes it).
    MinNotBelowMax(i64, i64),
    /// start outside min..=max.
    StartOutside(i64, i64, i64),
    /// A largest lease below 1, or above the sequence's size (given).
    MaxLease(i64, u64),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::BadName(name) => write!(
                f,
                "a sequence name is 1 to {MAX_NAME_LEN} characters of a-z, 0-9, '_' and '-'; {name:?} is not"
            ),
            SpecError::ReservedName(name) => write!(
                f,
                "{name:?} is reserved: no sequence may be named {} or start with {RESERVED_PREFIX:?} \
                 (PEZ's own objects in the store)",
                RESERVED_NAMES.join(", ")
            ),
            SpecError::OutOfBounds(field, value) => {
                write!(
                    f,
                    "{field} must be from {MIN_VALUE} to {MAX_VALUE}; got {value}"
                )
            }
            SpecError::MinNotBelowMax(min, max) => write!(
                f,
                "min ({min}) must be below max ({max}): a sequence holds at least two numbers"
            ),
            SpecError::StartOutside(start, min, max) => {
                write!(f, "start ({start}) is outside min..max ({min} to {max})")
            }
            SpecError::MaxLease(max_lease, size) => write!(
                f,
                "max_lease must be from 1 to the sequence's {size} numbers; got {max_lease}"
            ),
        }
    }
}

impl std::error::Error for SpecError {}

/// Checks a sequence name: safe in URLs, file names and SQL identifiers.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(SpecError::BadName(name.to_owned()))
    }
}

/// Checks the name of a sequence to be created: [`check_name`], and not
/// one of [`RESERVED_NAMES`] nor starting with [`RESERVED_PREFIX`].
/// Sequences already in a store are addressed with [`check_name`] only, so
/// one an older release let through is still served, listed and deletable.
pub fn check_new_name(name: &str) -> Result<(), SpecError> {
    check_name(name)?;
    if RESERVED_NAMES.contains(&name) || name.starts_with(RESERVED_PREFIX) {
        return Err(SpecError::ReservedName(name.to_owned()));
    }
    Ok(())
}

/// The fixed settings of a sequence: everything except its current position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceSpec {
    /// Unique name, used in URLs and in the store.
    pub name: String,
    /// Which way it counts.
    pub direction: Direction,
    /// Smallest number it issues.
    pub min: i64,
    /// Largest number it issues.
    pub max: i64,
    /// The first number it issued (or will issue), when it was created.
    pub start: i64,
    /// Whether it starts over at the far end after its last number.
    pub cycle: bool,
    /// Leased (fast) or strict (one global order).
    pub mode: Mode,
    /// The largest range lease one request may take (PEZ_MAX_LEASE caps it
    /// further): a few leases must not wrap or exhaust the sequence.
    pub max_lease: u64,
}

impl SequenceSpec {
    /// The original's ascending sequence: 1, 2, ... 2^63-1, then 1 again.
    pub fn forward() -> Self {
        Self {
            name: "forward".to_owned(),
            direction: Direction::Ascending,
            min: MIN_VALUE,
            max: MAX_VALUE,
            start: MIN_VALUE,
            cycle: true,
            mode: Mode::Leased,
            max_lease: default_max_lease(MIN_VALUE, MAX_VALUE),
        }
    }

    /// The original's descending sequence: 2^63-1, ... 1, then 2^63-1 again.
    pub fn reverse() -> Self {
        Self {
            name: "reverse".to_owned(),
            direction: Direction::Descending,
            min: MIN_VALUE,
            max: MAX_VALUE,
            start: MAX_VALUE,
            cycle: true,
            mode: Mode::Leased,
            max_lease: default_max_lease(MIN_VALUE, MAX_VALUE),
        }
    }

    /// A new sequence's settings, checked; `start` defaults to the origin
    /// (min when ascending, max when descending).
    pub fn new(
        name: &str,
        direction: Direction,
        min: i64,
        max: i64,
        start: Option<i64>,
        cycle: bool,
        mode: Mode,
    ) -> Result<Self, SpecError> {
        check_new_name(name)?;
        for (field, value) in [("min", min), ("max", max)] {
            if value < MIN_VALUE {
                return Err(SpecError::OutOfBounds(field, value));
            }
        }
        if min >= max {
            return Err(SpecError::MinNotBelowMax(min, max));
        }
        let origin = match direction {
            Direction::Ascending => min,
            Direction::Descending => max,
        };
        let start = start.unwrap_or(origin);
        if !(min..=max).contains(&start) {
            return Err(SpecError::StartOutside(start, min, max));
        }
        Ok(Self {
            name: name.to_owned(),
            direction,
            min,
            max,
            start,
            cycle,
            mode,
            max_lease: default_max_lease(min, max),
        })
    }

    /// These settings with `max_lease` as the largest range lease (`None`:
    /// the default, [`default_max_lease`]), checked: from 1 to the
    /// sequence's size.
    pub fn with_max_lease(self, max_lease: Option<i64>) -> Result<Self, SpecError> {
        let Some(given) = max_lease else {
            return Ok(self);
        };
        match u64::try_from(given) {
            Ok(n) if (1..=self.size()).contains(&n) => Ok(Self {
                max_lease: n,
                ..self
            }),
            _ => Err(SpecError::MaxLease(given, self.size())),
        }
    }

    /// The largest range lease of this sequence on a server whose
    /// PEZ_MAX_LEASE is `server_max`: the smaller of the two.
    pub fn lease_limit(&self, server_max: u64) -> u64 {
        self.max_lease.min(server_max)
    }

    /// Whether this is `forward` or `reverse`, which cannot be deleted.
    pub fn is_builtin(&self) -> bool {
        BUILTIN.contains(&self.name.as_str())
    }

    /// Whether `other` has the same settings (names aside).
    pub fn same_settings(&self, other: &SequenceSpec) -> bool {
        (
            self.direction,
            self.min,
            self.max,
            self.start,
            self.cycle,
            self.mode,
            self.max_lease,
        ) == (
            other.direction,
            other.min,
            other.max,
            other.start,
            other.cycle,
            other.mode,
            other.max_lease,
        )
    }

    /// The first number a fresh sequence issues (and the one it wraps to).
    pub fn origin(&self) -> i64 {
        match self.direction {
            Direction::Ascending => self.min,
            Direction::Descending => self.max,
        }
    }

    /// The last number before the sequence wraps or runs out.
    pub fn terminus(&self) -> i64 {
        match self.direction {
            Direction::Ascending => self.max,
            Direction::Descending => self.min,
        }
    }

    /// The fraction of the range used before the sequence wraps (or runs
    /// out) when `next` is the next number it issues; 1 when exhausted.
    pub fn used_fraction(&self, next: Option<i64>) -> f64 {
        let Some(next) = next else { return 1.0 };
        let size = (self.max as f64 - self.min as f64) + 1.0;
        let used = match self.direction {
            Direction::Ascending => next.abs_diff(self.min),
            Direction::Descending => self.max.abs_diff(next),
        };
        (used as f64 / size).clamp(0.0, 1.0)
    }

    /// How many numbers are left before the sequence wraps (or runs out)
    /// when `next` is the next number it issues, `next` included; 0 when
    /// exhausted.
    pub fn remaining(&self, next: Option<i64>) -> u64 {
        let Some(next) = next.filter(|next| self.contains(*next)) else {
            return 0;
        };
        self.terminus().abs_diff(next) + 1
    }

    /// How many numbers one lap of the sequence holds.
    pub fn size(&self) -> u64 {
        self.min.abs_diff(self.max) + 1
    }

    /// Whether `value` lies at or ahead of `frontier` in this lap: a
    /// number not yet handed out when `frontier` is where the store stands.
    /// Moving the store to such a value skips numbers but never repeats one.
    pub fn is_at_or_ahead(&self, value: i64, frontier: i64) -> bool {
        match self.direction {
            Direction::Ascending => value >= frontier,
            Direction::Descending => value <= frontier,
        }
    }

    /// Whether `value` is a number this sequence can issue.
    pub fn contains(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// The number that follows `value`: one step on, wrapping to the origin
    /// after the terminus. `None` when a non-cycling sequence has run out.
    pub fn successor(&self, value: i64) -> Option<i64> {
        if value == self.terminus() {
            return self.cycle.then(|| self.origin());
        }
        Some(match self.direction {
            Direction::Ascending => value + 1,
            Direction::Descending => value - 1,
        })
    }

    /// Cuts a block of at most `size` numbers (at least one) starting at
    /// `next`, stopping at the terminus so a block never wraps. Returns the
    /// block and the position the store must record after it.
    ///
    /// `next` must be inside the range; the store guarantees that.
    pub fn cut(&self, next: i64, size: u64) -> (Block, Option<i64>) {
        debug_assert!(
            self.contains(next),
            "{next} outside {}..={}",
            self.min,
            self.max
        );
        let size = size.max(1);
        // Numbers left before the terminus, counting `next` itself.
        let room = self.distance(next, self.terminus()) + 1;
        let len = size.min(room);
        let block = Block::new(next, self.direction, len);
        (block, self.successor(block.last))
    }

    /// How many steps separate `from` and `to` when walking in the
    /// sequence's direction without wrapping (`to` must not be behind).
    fn distance(&self, from: i64, to: i64) -> u64 {
        match self.direction {
            Direction::Ascending => to.abs_diff(from),
            Direction::Descending => from.abs_diff(to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(direction: Direction, min: i64, max: i64, cycle: bool) -> SequenceSpec {
        SequenceSpec::new("t", direction, min, max, None, cycle, Mode::Leased).unwrap()
    }

    #[test]
    fn the_used_fraction_grows_from_the_origin_towards_the_end() {
        let s =
            SequenceSpec::new("s", Direction::Ascending, 1, 100, None, true, Mode::Leased).unwrap();
        assert_eq!(s.used_fraction(Some(1)), 0.0);
        assert_eq!(s.used_fraction(Some(51)), 0.5);
        assert_eq!(s.used_fraction(None), 1.0);
        let r = SequenceSpec::reverse();
        assert_eq!(r.used_fraction(Some(i64::MAX)), 0.0);
        assert!(r.used_fraction(Some(1)) > 0.999_999);
        assert!(SequenceSpec::forward().used_fraction(Some(1_000_001)) > 0.0);
    }

    #[test]
    fn the_numbers_left_count_from_next_to_the_terminus() {
        let up = spec(Direction::Ascending, 11, 110, false);
        assert_eq!(up.remaining(Some(11)), 100);
        assert_eq!(up.remaining(Some(110)), 1);
        assert_eq!(up.remaining(None), 0);
        let down = spec(Direction::Descending, 1, 50, true);
        assert_eq!(down.remaining(Some(50)), 50);
        assert_eq!(down.remaining(Some(48)), 48);
        assert_eq!(SequenceSpec::forward().remaining(Some(1)), i64::MAX as u64);
    }

    #[test]
    fn the_names_of_pezs_own_objects_are_reserved_for_new_sequences() {
        for reserved in RESERVED_NAMES
            .iter()
            .copied()
            .chain(["__x", "__diesel_schema_migrations"])
        {
            assert_eq!(check_name(reserved), Ok(()), "{reserved} stays addressable");
            let refused = check_new_name(reserved).unwrap_err();
            assert_eq!(refused, SpecError::ReservedName(reserved.to_owned()));
            assert!(refused.to_string().contains("reserved"), "{refused}");
            assert!(
                SequenceSpec::new(
                    reserved,
                    Direction::Ascending,
                    1,
                    9,
                    None,
                    true,
                    Mode::Leased
                )
                .is_err()
            );
        }
        for ordinary in ["sequence", "_sequences", "sequences2", "a__b", "_"] {
            assert_eq!(check_new_name(ordinary), Ok(()), "{ordinary}");
        }
        assert!(matches!(check_new_name("Bad"), Err(SpecError::BadName(_))));
    }

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["a", "orders", "order-ids_2", &"x".repeat(63)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Orders",
            "a b",
            "../etc",
            "a/b",
            "a;drop",
            "é",
            "a'b",
            "a\"b",
            &"x".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_checked() {
        let new = |min, max, start| {
            SequenceSpec::new(
                "s",
                Direction::Ascending,
                min,
                max,
                start,
                true,
                Mode::Leased,
            )
        };
        assert_eq!(new(1, 10, None).unwrap().start, 1);
        assert_eq!(
            SequenceSpec::new("s", Direction::Descending, 1, 10, None, true, Mode::Strict)
                .unwrap()
                .start,
            10
        );
        assert_eq!(new(0, 10, None), Err(SpecError::OutOfBounds("min", 0)));
        assert_eq!(new(5, 4, None), Err(SpecError::MinNotBelowMax(5, 4)));
        assert_eq!(new(5, 5, None), Err(SpecError::MinNotBelowMax(5, 5)));
        assert_eq!(new(5, 9, Some(10)), Err(SpecError::StartOutside(10, 5, 9)));
        assert_eq!(new(5, 9, Some(4)), Err(SpecError::StartOutside(4, 5, 9)));
    }

    #[test]
    fn the_largest_lease_is_by_default_a_thousandth_of_the_range() {
        assert_eq!(
            spec(Direction::Ascending, 1, 3_000_000, true).max_lease,
            3000
        );
        assert_eq!(spec(Direction::Descending, 1, 10, false).max_lease, 1);
        assert_eq!(
            SequenceSpec::forward().max_lease,
            DEFAULT_MAX_LEASE_CEILING,
            "PEZ_MAX_LEASE stays the limit of the built-in sequences"
        );
        assert_eq!(SequenceSpec::forward().lease_limit(1_000_000), 1_000_000);
        let given = spec(Direction::Ascending, 1, 100, true);
        assert_eq!(
            given.clone().with_max_lease(Some(100)).unwrap().max_lease,
            100
        );
        assert_eq!(given.clone().with_max_lease(None).unwrap().max_lease, 1);
        for bad in [0, -1, 101] {
            assert_eq!(
                given.clone().with_max_lease(Some(bad)),
                Err(SpecError::MaxLease(bad, 100))
            );
        }
        let limited = given.with_max_lease(Some(50)).unwrap();
        assert_eq!((limited.lease_limit(20), limited.lease_limit(80)), (20, 50));
    }

    #[test]
    fn forward_starts_at_one_and_wraps_after_the_largest_bigint() {
        let f = SequenceSpec::forward();
        assert_eq!(f.origin(), 1);
        assert_eq!(f.successor(1), Some(2));
        assert_eq!(f.successor(i64::MAX), Some(1));
    }

    #[test]
    fn reverse_starts_at_the_largest_bigint_and_wraps_after_one() {
        let r = SequenceSpec::reverse();
        assert_eq!(r.origin(), i64::MAX);
        assert_eq!(r.successor(i64::MAX), Some(i64::MAX - 1));
        assert_eq!(r.successor(1), Some(i64::MAX));
    }

    #[test]
    fn a_block_is_cut_at_the_end_of_the_range() {
        let f = SequenceSpec::forward();
        let (block, after) = f.cut(i64::MAX - 1, 1000);
        assert_eq!(
            (block.first, block.last, block.len()),
            (i64::MAX - 1, i64::MAX, 2)
        );
        assert_eq!(after, Some(1));

        let r = SequenceSpec::reverse();
        let (block, after) = r.cut(3, 1000);
        assert_eq!(block.iter().collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(after, Some(i64::MAX));
    }

    #[test]
    fn a_non_cycling_sequence_has_no_successor_at_its_end() {
        let s = spec(Direction::Ascending, 5, 10, false);
        let (block, after) = s.cut(8, 100);
        assert_eq!(block.iter().collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(after, None);
    }

    #[test]
    fn the_whole_range_fits_one_block() {
        let f = SequenceSpec::forward();
        let (block, after) = f.cut(1, u64::MAX);
        assert_eq!(block.len(), i64::MAX as u64);
        assert_eq!(after, Some(1));
    }

    fn any_spec() -> impl Strategy<Value = SequenceSpec> {
        (any::<bool>(), 1..i64::MAX, 1u64..2000, any::<bool>()).prop_map(
            |(ascending, min, width, cycle)| {
                let max = min.saturating_add(width as i64);
                let direction = if ascending {
                    Direction::Ascending
                } else {
                    Direction::Descending
                };
                spec(direction, min, max, cycle)
            },
        )
    }

    proptest! {
        /// Walking a sequence block by block visits exactly the numbers that
        /// stepping one at a time visits, in the same order.
        #[test]
        fn blocks_walk_the_sequence_one_step_at_a_time(
            s in any_spec(),
            offset in 0u64..2000,
            sizes in prop::collection::vec(1u64..50, 1..40),
        ) {
            let width = s.min.abs_diff(s.max);
            let start = match s.direction {
                Direction::Ascending => s.min + (offset.min(width) as i64),
                Direction::Descending => s.max - (offset.min(width) as i64),
            };
            let mut by_blocks = Vec::new();
            let mut next = Some(start);
            for size in sizes {
                let Some(at) = next else { break };
                let (block, after) = s.cut(at, size);
                prop_assert!(block.len() <= size);
                prop_assert!(s.contains(block.first) && s.contains(block.last));
                by_blocks.extend(block.iter());
                next = after;
            }
            let mut by_steps = vec![start];
            while by_steps.len() < by_blocks.len() {
                let last = *by_steps.last().unwrap();
                by_steps.push(s.successor(last).expect("blocks went past a non-cycling end"));
            }
            prop_assert_eq!(by_blocks, by_steps);
        }

        /// Near the top of the range the arithmetic never overflows.
        #[test]
        fn blocks_near_the_ends_of_bigint_stay_in_range(
            ascending in any::<bool>(),
            from_end in 0i64..1000,
            size in 1u64..u64::MAX,
        ) {
            let s = if ascending { SequenceSpec::forward() } else { SequenceSpec::reverse() };
            let at = if ascending { i64::MAX - from_end } else { 1 + from_end };
            let (block, after) = s.cut(at, size);
            prop_assert_eq!(block.len(), size.min(from_end as u64 + 1));
            prop_assert_eq!(block.last == s.terminus(), size > from_end as u64);
            prop_assert_eq!(after, s.successor(block.last));
            let (front, rest) = block.split_front(1);
            prop_assert_eq!(front.first, at);
            prop_assert_eq!(rest.map_or(0, |r| r.len()) + 1, block.len());
        }
    }
}
