//! Durable storage of each sequence's position.
//!
//! The store is the single source of truth: a number is issued only from a
//! block the store has durably recorded as leased. Backends are synchronous
//! (diesel is), so callers run them off the async executor, on
//! `spawn_blocking` threads.

mod lock;
mod postgres;
mod sqlite;

pub use lock::{DataDirLock, LockError};
pub use postgres::PgStore;
pub use sqlite::{DATABASE_FILE, SqliteStore};

use crate::config::{Settings, StoreChoice};
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use std::fmt;
use std::sync::Arc;

/// A sequence as the store knows it: its settings and the next number the
/// store will lease out (`None` once a non-cycling sequence has run out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceState {
    /// The sequence's fixed settings.
    pub spec: SequenceSpec,
    /// First number of the next lease; numbers before it are leased or issued.
    pub next_value: Option<i64>,
    /// Bumped by every restart: blocks leased under an older generation
    /// must not be served any more.
    pub generation: i64,
}

/// A sequence's settings as a store keeps them. Stores trust what they
/// wrote: a mode that is not "strict" (the schemas allow only the two) is
/// leased.
pub(crate) fn stored_spec(
    name: String,
    ascending: bool,
    (min, max): (i64, i64),
    start: i64,
    cycle: bool,
    mode: &str,
) -> SequenceSpec {
    SequenceSpec {
        name,
        direction: if ascending {
            Direction::Ascending
        } else {
            Direction::Descending
        },
        min,
        max,
        start,
        cycle,
        mode: mode.parse().unwrap_or(Mode::Leased),
    }
}

/// What creating a sequence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It did not exist; now it does.
    New,
    /// It existed already with the very same settings: nothing changed.
    Existing,
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
    /// A sequence of that name exists with other settings.
    Conflict(Box<SequenceSpec>),
    /// `forward` and `reverse` cannot be deleted.
    Builtin(String),
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
            StoreError::Conflict(existing) => write!(
                f,
                "sequence {:?} exists with other settings ({} {}..{}, start {}, cycle {}, {})",
                existing.name,
                existing.direction,
                existing.min,
                existing.max,
                existing.start,
                existing.cycle,
                existing.mode
            ),
            StoreError::Builtin(name) => {
                write!(f, "sequence {name:?} is built in and cannot be deleted")
            }
            StoreError::Unavailable(cause) => write!(f, "store unavailable: {cause}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why a store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the embedded store's data directory.
    Locked(LockError),
    /// The store could not be reached or set up; the text says why, in one
    /// line, without secrets.
    Setup(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked(e) => e.fmt(f),
            OpenError::Setup(cause) => f.write_str(cause),
        }
    }
}

impl std::error::Error for OpenError {}

/// An error inside a store transaction: a verdict of the store's own, or
/// the database's. Either rolls the transaction back.
#[derive(Debug)]
enum TxError {
    Store(StoreError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// The operations PEZ needs from durable storage.
///
/// Every method is one atomic transaction. `lease` must be durable (synced to
/// disk, or committed on the database) before it returns, because the caller
/// may issue the block's numbers the moment it has it.
pub trait Store: Send + Sync + 'static {
    /// Every sequence with its position, ordered by name.
    fn list(&self) -> Result<Vec<SequenceState>, StoreError>;

    /// Leases about `size` numbers of `name` and moves the sequence past
    /// them. Returns the leased runs in sequence order: usually one block;
    /// two or more where the lease wraps, or where a backend leases in fixed
    /// steps (PostgreSQL). The total may differ from `size`: blocks stop at
    /// the end of the range, and stepped backends round up.
    fn lease(&self, name: &str, size: u64) -> Result<Vec<Block>, StoreError>;

    /// Hands back `unused`, the unissued tail of a lease, so the next lease
    /// starts with it. It is taken back only if the sequence still stands
    /// right after `unused` (nobody leased or restarted since); returns
    /// whether it was. Refusing leaves a gap, never a duplicate.
    fn give_back(&self, name: &str, unused: Block) -> Result<bool, StoreError>;

    /// Takes at most `count` numbers of `name` straight from the store, in
    /// one durable transaction, for strict sequences and range leases:
    /// exactly what is asked (short only at the end of the range), and
    /// without the per-sequence lock leases take, so instances do not
    /// queue behind each other.
    fn take(&self, name: &str, count: u64) -> Result<Vec<Block>, StoreError> {
        self.lease(name, count)
    }

    /// Makes `value` the next number `name` leases, like PostgreSQL's
    /// `ALTER SEQUENCE ... RESTART WITH`, and bumps its generation.
    fn restart(&self, name: &str, value: i64) -> Result<(), StoreError>;

    /// Creates a sequence, or finds it already there with the same settings.
    fn create(&self, spec: &SequenceSpec) -> Result<Created, StoreError>;

    /// Deletes a sequence (not `forward` or `reverse`).
    fn delete(&self, name: &str) -> Result<(), StoreError>;

    /// Every sequence's name and generation: what instances poll to notice
    /// restarts, creations and deletions made elsewhere.
    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError>;
}

/// Opens the store the settings choose: PostgreSQL when configured (its
/// schema brought up to date), the embedded store otherwise. Blocking.
pub fn open(settings: &Settings) -> Result<Arc<dyn Store>, OpenError> {
    Ok(match &settings.store {
        StoreChoice::Embedded => Arc::new(SqliteStore::open(
            &settings.data_dir,
            settings.store_timeout,
        )?),
        StoreChoice::Postgres(pg) => Arc::new(PgStore::connect(pg, true)?),
    })
}

/// Where the store is, for logs: no secrets.
pub fn describe(settings: &Settings) -> String {
    match &settings.store {
        StoreChoice::Embedded => format!(
            "sqlite at {}",
            settings.data_dir.join(DATABASE_FILE).display()
        ),
        StoreChoice::Postgres(pg) => format!("postgres at {}", pg.description),
    }
}
