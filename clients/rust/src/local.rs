//! [`Local`]: numbers for one thread, claimed from a [`Client`] a chunk at
//! a time.

use crate::{Client, Error, Range};

/// Hands out numbers of a [`Client`] on one thread, without an atomic
/// operation per number: it claims `chunk` consecutive numbers at once
/// ([`Client::take_range`]) and counts through them.
///
/// Threads sharing one `Client` contend on its counter, one atomic add per
/// number on a cache line every core writes; on this repository's 2-core
/// machine two threads took fewer numbers per second than one
/// (docs/benchmarks.md). One `Local` per thread claims once per chunk
/// instead.
///
/// What it keeps of the client's promises:
/// - **never a number twice**: each chunk is claimed by one atomic
///   compare-exchange and belongs to this `Local` alone; numbers left in it when it is dropped
///   are a gap, like a client's;
/// - **in order within the `Local`**: its chunks come in the order it
///   claimed them, each from first to last.
///
/// What it gives up: **order across threads**. A `Local` hands out the
/// rest of its chunk after other threads (and other `Local`s) have taken
/// later numbers, so a number one thread got may be smaller than one
/// another thread got before it. Use [`Client::next`] where that order
/// matters.
///
/// `Send`, not `Sync`: one per thread (`&mut self`).
#[derive(Debug)]
pub struct Local {
    client: Client,
    chunk: u64,
    /// The next number of the chunk on hand, valid while `left > 0`.
    next: i64,
    /// +1 on an ascending range, -1 on a descending one.
    step: i64,
    /// Numbers of the chunk still on hand.
    left: u64,
}

impl Local {
    pub(crate) fn new(client: Client, chunk: u64) -> Self {
        Local {
            client,
            chunk: chunk.max(1),
            next: 0,
            step: 1,
            left: 0,
        }
    }

    /// The next number: from the chunk on hand, or a new chunk claimed
    /// from the client (which may wait for a lease, as [`Client::next`]).
    ///
    /// # Errors
    /// As [`Client::next`], when a new chunk is needed.
    // Named like `Client::next`, which it stands in for. Not an Iterator:
    // it never ends, and every item would be a Result to unwrap.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Result<i64, Error> {
        if self.left == 0 {
            self.refill()?;
        }
        let number = self.next;
        self.left -= 1;
        // Past the chunk's end this may leave 1..=i64::MAX; it is not
        // read again before the next refill.
        self.next = number.wrapping_add(self.step);
        Ok(number)
    }

    #[cold]
    fn refill(&mut self) -> Result<(), Error> {
        let range: Range = self.client.take_range(self.chunk)?;
        self.next = range.first();
        self.step = if range.first() <= range.last() { 1 } else { -1 };
        self.left = range.len();
        Ok(())
    }

    /// The client it claims from.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
