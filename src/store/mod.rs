//! Durable storage of each sequence's position.
//!
//! The store is the single source of truth: a number is issued only from a
//! block the store has durably recorded as leased. Backends are synchronous
//! (diesel is), so callers run them off the async executor, on
//! `spawn_blocking` threads.

mod lock;
mod sqlite;

pub use lock::{DataDirLock, LockError};
pub use sqlite::{DATABASE_FILE, OpenError, SqliteStore};

use crate::sequence::{Block, SequenceSpec};
use std::fmt;

/// A sequence as the store knows it: its settings and the next number the
/// store will lease out (`None` once a non-cycling sequence has run out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceState {
    /// The sequence's fixed settings.
    pub spec: SequenceSpec,
    /// First number of the next lease; numbers before it are leased or issued.
    pub next_value: Option<i64>,
}

/// What can go wrong in a store. Messages are for operators and logs; the
/// HTTP layer never shows them to clients.
#[derive(Debug)]
pub enum StoreError {
    /// No sequence of that name.
    UnknownSequence(String),
    /// A non-cycling sequence has issued its last number.
    Exhausted(String),
    /// A value outside the sequence's range.
    OutOfRange {
        /// The sequence.
        name: String,
        /// The value asked for.
        value: i64,
        /// Its smallest number.
        min: i64,
        /// Its largest number.
        max: i64,
    },
    /// The store itself failed: I/O, locking, a broken connection.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::UnknownSequence(name) => write!(f, "no sequence named {name:?}"),
            StoreError::Exhausted(name) => {
                write!(f, "sequence {name:?} has issued its last number")
            }
            StoreError::OutOfRange {
                name,
                value,
                min,
                max,
            } => write!(
                f,
                "{value} is outside the range of sequence {name:?} ({min} to {max})"
            ),
            StoreError::Unavailable(cause) => write!(f, "store unavailable: {cause}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The operations PEZ needs from durable storage.
///
/// Every method is one atomic transaction. `lease` must be durable (synced to
/// disk, or committed on the database) before it returns, because the caller
/// may issue the block's numbers the moment it has it.
pub trait Store: Send + Sync + 'static {
    /// Every sequence with its position, ordered by name.
    fn list(&self) -> Result<Vec<SequenceState>, StoreError>;

    /// Leases the next block of at most `size` numbers of `name` and moves
    /// the sequence past it. The block stops at the end of the range, so it
    /// may be shorter than asked.
    fn lease(&self, name: &str, size: u64) -> Result<Block, StoreError>;

    /// Hands back `unused`, the unissued tail of a lease, so the next lease
    /// starts with it. It is taken back only if the sequence still stands
    /// right after `unused` (nobody leased or restarted since); returns
    /// whether it was. Refusing leaves a gap, never a duplicate.
    fn give_back(&self, name: &str, unused: Block) -> Result<bool, StoreError>;

    /// Makes `value` the next number `name` leases, like PostgreSQL's
    /// `ALTER SEQUENCE ... RESTART WITH`.
    fn restart(&self, name: &str, value: i64) -> Result<(), StoreError>;
}
