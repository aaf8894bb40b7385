//! A run of consecutive numbers in a sequence's direction.

use super::Direction;

/// step at a time up to and including `last`. Never empty, never wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The first number of the run.
    pub first: i64,
    /// The last number of the run, inclusive.
    pub last: i64,
    /// Which way the run counts.
    pub direction: Direction,
}

impl Block {
    /// The run of `len` numbers (at least one) starting at `first`. The
    /// caller ensures it stays inside 1..=2^63-1.
    pub fn new(first: i64, direction: Direction, len: u64) -> Self {
        debug_assert!(len >= 1);
        // len - 1 <= 2^63 - 2 whenever the block fits the range, so the
        // conversion and the step below cannot overflow.
        let span = i64::try_from(len - 1).unwrap_or(i64::MAX);
        let last = match direction {
            Direction::Ascending => first.saturating_add(span),
            Direction::Descending => first.saturating_sub(span),
        };
        Self {
            first,
            last,
            direction,
        }
    }

    /// How many numbers the block holds.
    pub fn len(&self) -> u64 {
        self.first.abs_diff(self.last) + 1
    }

    /// Always false: a block holds at least one number. Here for clippy's
    /// `len_without_is_empty` and for readers who look for it.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Splits off the first `n` numbers (`0 < n <= len`). Returns them and
    /// what remains, if anything.
    pub fn split_front(self, n: u64) -> (Block, Option<Block>) {
        debug_assert!(n >= 1 && n <= self.len());
        let front = Block::new(self.first, self.direction, n);
        if n == self.len() {
            return (front, None);
        }
        let rest_first = match self.direction {
            Direction::Ascending => front.last + 1,
            Direction::Descending => front.last - 1,
        };
        (
            front,
            Some(Block {
                first: rest_first,
                last: self.last,
                direction: self.direction,
            }),
        )
    }

    /// The one block made of `self` then `next`, when `next` continues
    /// `self` without a wrap.
    pub fn join(self, next: Block) -> Option<Block> {
        let continues = self.direction == next.direction
            && match self.direction {
                Direction::Ascending => self.last.checked_add(1) == Some(next.first),
                Direction::Descending => self.last.checked_sub(1) == Some(next.first),
            };
        continues.then_some(Block {
            first: self.first,
            last: next.last,
            direction: self.direction,
        })
    }

    /// Whether the two blocks hold a number in common.
    pub fn overlaps(&self, other: &Block) -> bool {
        let (lo, hi) = (self.first.min(self.last), self.first.max(self.last));
        let (other_lo, other_hi) = (other.first.min(other.last), other.first.max(other.last));
        lo <= other_hi && other_lo <= hi
    }

    /// The parts of this block that `other` does not hold, in this block's
    /// order: none, one, or two (when `other` lies inside it).
    pub fn minus(&self, other: &Block) -> Vec<Block> {
        if !self.overlaps(other) {
            return vec![*self];
        }
        let (lo, hi) = (self.first.min(self.last), self.first.max(self.last));
        let (other_lo, other_hi) = (other.first.min(other.last), other.first.max(other.last));
        // Below and above `other`, as plain intervals (they cannot overflow:
        // other_lo > lo >= 1 and other_hi < hi <= i64::MAX).
        let below = (lo < other_lo).then(|| (lo, other_lo - 1));
        let above = (other_hi < hi).then(|| (other_hi + 1, hi));
        let mut parts: Vec<Block> = [below, above]
            .into_iter()
            .flatten()
            .map(|(from, to)| match self.direction {
                Direction::Ascending => Block {
                    first: from,
                    last: to,
                    direction: self.direction,
                },
                Direction::Descending => Block {
                    first: to,
                    last: from,
                    direction: self.direction,
                },
            })
            .collect();
        if self.direction == Direction::Descending {
            parts.reverse();
        }
        parts
    }

    /// The numbers of the block in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + use<> {
        let (first, direction) = (self.first, self.direction);
        // i < len <= 2^63-1, and first +/- i stays inside the block.
        (0..self.len()).map(move |i| match direction {
            Direction::Ascending => first + i as i64,
            Direction::Descending => first - i as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_keeps_every_number_once() {
        let block = Block::new(10, Direction::Descending, 5);
        let (front, rest) = block.split_front(2);
        assert_eq!(front.iter().collect::<Vec<_>>(), vec![10, 9]);
        assert_eq!(
            rest.map(|b| b.iter().collect::<Vec<_>>()),
            Some(vec![8, 7, 6])
        );
        assert_eq!(block.split_front(5), (block, None));
    }

    #[test]
    fn blocks_overlap_when_they_share_a_number_whichever_way_they_count() {
        let up = Block::new(5, Direction::Ascending, 5); // 5..=9
        assert!(up.overlaps(&Block::new(9, Direction::Ascending, 3)));
        assert!(!up.overlaps(&Block::new(10, Direction::Ascending, 3)));
        assert!(up.overlaps(&Block::new(6, Direction::Descending, 3))); // 6, 5, 4
        assert!(!up.overlaps(&Block::new(4, Direction::Descending, 3)));
    }

    #[test]
    fn what_a_block_leaves_of_another_keeps_its_order() {
        let up = Block::new(1, Direction::Ascending, 10); // 1..=10
        let numbers =
            |parts: Vec<Block>| -> Vec<i64> { parts.iter().flat_map(Block::iter).collect() };
        assert_eq!(
            numbers(up.minus(&Block::new(4, Direction::Ascending, 3))),
            [1, 2, 3, 7, 8, 9, 10]
        );
        assert_eq!(
            numbers(up.minus(&Block::new(8, Direction::Ascending, 5))),
            (1..=7).collect::<Vec<_>>()
        );
        assert_eq!(
            numbers(up.minus(&Block::new(1, Direction::Ascending, 10))),
            Vec::<i64>::new()
        );
        assert_eq!(
            numbers(up.minus(&Block::new(20, Direction::Ascending, 1))),
            (1..=10).collect::<Vec<_>>()
        );
        let down = Block::new(10, Direction::Descending, 10); // 10..=1
        assert_eq!(
            numbers(down.minus(&Block::new(6, Direction::Descending, 3))),
            [10, 9, 8, 7, 3, 2, 1]
        );
        let top = Block::new(i64::MAX, Direction::Descending, 3);
        assert_eq!(
            numbers(top.minus(&Block::new(i64::MAX - 1, Direction::Ascending, 1))),
            [i64::MAX, i64::MAX - 2]
        );
    }

    #[test]
    fn blocks_join_only_when_they_follow_each_other() {
        let a = Block::new(1, Direction::Ascending, 3);
        let b = Block::new(4, Direction::Ascending, 2);
        assert_eq!(a.join(b), Some(Block::new(1, Direction::Ascending, 5)));
        assert_eq!(b.join(a), None);
        let down = Block::new(10, Direction::Descending, 2);
        assert_eq!(
            down.join(Block::new(8, Direction::Descending, 1)),
            Some(Block::new(10, Direction::Descending, 3))
        );
        assert_eq!(down.join(Block::new(7, Direction::Descending, 1)), None);
    }
}
