//! Durable storage of each sequence's position.
//!
//! The store is the single source of truth: a number leaves PEZ only from a
//! block the store has durably reserved. Backends are synchronous (diesel
//! is), so callers run them off the async executor, on blocking threads,
//! and bound each call by [`Store::call_limit`].
//!
//! # The rule every number's uniqueness rests on
//!
//! - **Forward moves never overlap, and need no lock of PEZ's.**
//!   [`Store::reserve`] takes the next numbers of a sequence through the
//!   store's own atomic advance: PostgreSQL's `nextval()` (which keeps
//!   every caller apart: PEZ's instances, and the original PEZ's nodes
//!   during a cutover), or SQLite's single writer.
//! - **A reservation is durable before it is returned.** [`Reserved`] can
//!   only be made by a store, after its commit was flushed to disk and, on
//!   PostgreSQL, acknowledged by every synchronous standby. A call that
//!   fails, times out or is cancelled may still have moved the store
//!   ([`StoreError::Ambiguous`]): its numbers are a gap, never served.
//! - **Backward moves are a compare-and-set under the store's exclusive
//!   lock.** [`Store::give_back`] and [`Store::restart`] take the lock that
//!   holds off every forward move of that sequence, anyone's, until they
//!   commit; so "nobody moved it since" cannot go stale between the check
//!   and the write. "Nobody moved it since" is the generation, the count of
//!   laps and the position all unchanged: on a small cycling sequence a
//!   full lap puts the position back where it stood. A restart moves a
//!   sequence back only when asked to ([`Consent`]).
//! - **Every move is durable before it is reported**, and PostgreSQL's
//!   holds no lock while it waits for a standby (see
//!   [`postgres`](postgres/index.html)).
//!
//! The rules of moves made on purpose (restarts, imports, copies) are in
//! [`rules`]; errors in `error`; waiting for a store at start in `startup`.

mod error;
mod lock;
pub mod postgres;
pub mod rules;
mod sqlite;
mod startup;
pub mod transfer;

pub(crate) use error::TxError;
pub use error::{OpenError, StoreError};
pub use lock::{DataDirLock, LockError, holder as lock_holder};
pub use postgres::PgStore;
pub use rules::Consent;
pub use sqlite::{DATABASE_FILE, MovedTo, SqliteStore};
pub use startup::{StartupRetry, startup_timeout};

use crate::config::{Settings, StoreChoice};
use crate::sequence::{Block, Direction, Mode, SequenceSpec, default_max_lease};
use std::sync::Arc;
use std::time::Duration;

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
    /// How many times a reservation handed out its origin (the first number
    /// after a wrap, or of a fresh sequence): a count of laps begun, which
    /// only goes up. A give-back checks it, since a full lap puts a small
    /// ring back where it stood.
    pub laps: i64,
    /// The original PEZ's sequence this one continues (`public.forward_seq`,
    /// say), on a PostgreSQL database PEZ took over; `None` for PEZ's own.
    pub continues: Option<String>,
}

/// A sequence's settings as a store keeps them. Stores trust what they
/// wrote: a mode that is not "strict" (the schemas allow only the two) is
/// leased. A sequence stored before it had a largest lease of its own
/// (`max_lease` NULL) gets the default ([`default_max_lease`]), read here
/// rather than written into the store.
pub(crate) fn stored_spec(
    name: String,
    ascending: bool,
    (min, max): (i64, i64),
    start: i64,
    cycle: bool,
    mode: &str,
    max_lease: Option<i64>,
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
        max_lease: max_lease
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n >= 1)
            .unwrap_or_else(|| default_max_lease(min, max)),
    }
}

/// What [`Store::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The sequence moved forward.
    Moved {
        /// Where it stood before.
        from: i64,
    },
    /// It stood there or further already, and stays.
    AlreadyThere {
        /// Where it stands (`None`: run out).
        stands: Option<i64>,
    },
}

/// What creating a sequence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It did not exist; now it does.
    New,
    /// It existed already with the very same settings: nothing changed.
    Existing,
}

/// Numbers a store has durably reserved for one caller: the only way
/// numbers enter PEZ's memory. Only a store makes one, and only after the
/// commit that reserved them is durable (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    blocks: Vec<Block>,
    laps: i64,
}

impl Reserved {
    /// The blocks of a commit that is durable, and the sequence's count of
    /// laps once they were taken. For stores only.
    pub(crate) fn durable(blocks: Vec<Block>, laps: i64) -> Self {
        debug_assert!(
            !blocks.is_empty(),
            "a reservation holds at least one number"
        );
        Self { blocks, laps }
    }

    /// The sequence's count of laps once these were taken (at least: a
    /// store may read it from a moment before its own move). What a
    /// give-back of their rest must find unchanged.
    pub fn laps(&self) -> i64 {
        self.laps
    }

    /// The reserved runs, in sequence order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// How many numbers are reserved.
    pub fn len(&self) -> u64 {
        self.blocks.iter().map(Block::len).sum()
    }

    /// Always false: a reservation holds at least one number.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The runs, to serve from.
    pub fn into_blocks(self) -> Vec<Block> {
        self.blocks
    }
}

/// Where a sequence is created: its next number (`None`: run out) and the
/// laps it has begun (an import carries its source's, so that a sequence
/// that went around there is not taken for a fresh one here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The first number of its next reservation.
    pub next: Option<i64>,
    /// Laps begun.
    pub laps: i64,
}

impl Position {
    /// Where a new sequence starts: its start, no lap behind it.
    pub fn fresh(spec: &SequenceSpec) -> Self {
        Self {
            next: Some(spec.start),
            laps: 0,
        }
    }
}

/// What a give-back names: the generation and the count of laps the
/// blocks it gives back were reserved under. The store takes them back only
/// if both are unchanged (nobody restarted or re-created the sequence, and
/// no lap went by) and the sequence stands right after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sequence's generation.
    pub generation: i64,
    /// Its count of laps after the latest reservation of the blocks.
    pub laps: i64,
}

/// The operations PEZ needs from durable storage. See the module docs for
/// which of them serialise and when their results are durable.
pub trait Store: Send + Sync + 'static {
    /// Every sequence with its position, ordered by name.
    fn list(&self) -> Result<Vec<SequenceState>, StoreError>;

    /// Every sequence's name and generation: what instances poll to notice
    /// restarts, creations and deletions made elsewhere. Generations come
    /// from one counter of the store and never repeat, not even for a name
    /// deleted and created again.
    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Moves `name` forward past about `size` numbers (at least one) and
    /// returns them once the move is durable. Forward moves of any number of
    /// callers never overlap and take no lock of PEZ's. The runs are in
    /// sequence order: one, or more where the sequence wraps. The total may
    /// be short (a block stops at the end of the range) or long (a store
    /// that moves in fixed steps rounds up); callers that need an exact
    /// count take the front and leave the rest as a gap. `generation` is
    /// the one the caller knows: if the sequence has another (restarted, or
    /// deleted and created again), nothing is taken ([`StoreError::Stale`]).
    fn reserve(&self, name: &str, generation: i64, size: u64) -> Result<Reserved, StoreError>;

    /// Hands back `unused`, the unissued tail of a reservation made under
    /// `stamp`, so the next one starts with it: under the store's exclusive
    /// lock on the sequence, and only if the sequence still has that
    /// generation and count of laps and stands right after `unused` (nobody
    /// moved, restarted or re-created it since, nor took a full lap of it).
    /// Returns whether it was taken back; refusing leaves a gap, never a
    /// duplicate.
    fn give_back(&self, name: &str, stamp: Stamp, unused: Block) -> Result<bool, StoreError>;

    /// Makes `value` the next number of `name` (PostgreSQL's `ALTER
    /// SEQUENCE ... RESTART WITH`) and gives it a new generation, under the
    /// store's exclusive lock on the sequence; checked by
    /// [`rules::check_restart`] under `consent` (a move back needs consent;
    /// so does one that makes a cycling sequence wrap early). A move back
    /// begins a lap. One transaction: a failed restart moves nothing.
    fn restart(&self, name: &str, value: i64, consent: Consent) -> Result<(), StoreError>;

    /// Moves `name` forward to `next` (`None`: run out, for a sequence that
    /// does not cycle), never back: a sequence that stands there or further
    /// in this lap stays where it is ([`rules::moves_forward`]; an early
    /// wrap needs `consent`). Under the store's exclusive lock on the
    /// sequence, with a new generation when it moves (instances drop what
    /// they hold of it). For copies and restored backups, which must never
    /// make PEZ issue a number twice.
    ///
    /// `to.laps` are the laps the sequence began where the list comes from:
    /// its count here is raised to them whether or not it moves, so that a
    /// sequence that went around there is not taken for a fresh one here.
    fn advance(&self, name: &str, to: Position, consent: Consent) -> Result<Advanced, StoreError>;

    /// Creates a sequence standing `at` ([`Position::fresh`] for a new one;
    /// an import's listed position and laps), in one transaction, so nobody
    /// sees it anywhere else first; or finds it there with the same
    /// settings, and leaves it where it stands.
    fn create(&self, spec: &SequenceSpec, at: Position) -> Result<Created, StoreError>;

    /// Deletes a sequence (not `forward` or `reverse`).
    fn delete(&self, name: &str) -> Result<(), StoreError>;

    /// The longest any call may take before its caller gives up on it and
    /// counts it as [`StoreError::Ambiguous`].
    fn call_limit(&self) -> Duration;

    /// Whether this store can prove a give-back of `spec` safe at all
    /// (see [`Self::give_back`]); a stop does not try when it cannot.
    fn gives_back(&self, _spec: &SequenceSpec) -> bool {
        true
    }

    /// The most numbers one [`Self::reserve`] of `spec` takes: exact takes
    /// (strict batches, range leases) larger than a few of these cannot be
    /// served.
    fn most_per_reservation(&self, spec: &SequenceSpec) -> u64;

    /// Says that the instance `instance` is alive and serving from this
    /// store, and counts as alive for `for_at_least` more: what `pez
    /// handback` reads, since nothing a pooler passes on (application
    /// names, sessions) can tell. Not needed where only one process may
    /// open the store.
    fn heartbeat(&self, _instance: &str, _for_at_least: Duration) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the store takes writes now, without changing anything: the
    /// background probe's question. By default a read; stores whose reads
    /// can answer while writes cannot (SQLite) say more.
    fn probe(&self) -> Result<(), StoreError> {
        self.list().map(drop)
    }

    /// Says that the instance `instance` stopped.
    fn farewell(&self, _instance: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Opens the store the settings choose, for a command (`pez sequence ...`,
/// `pez store copy`): PostgreSQL when configured (its schema brought up to
/// date), the embedded store otherwise. Blocking; one attempt.
pub fn open(settings: &Settings) -> Result<Arc<dyn Store>, OpenError> {
    Ok(match &settings.store {
        StoreChoice::Embedded => Arc::new(SqliteStore::open(
            &settings.data_dir,
            settings.store_timeout,
        )?),
        StoreChoice::Postgres(pg) => Arc::new(PgStore::connect(pg)?),
    })
}

/// The PostgreSQL store the settings choose, for a command that only
/// reads: no migration, no take-over, nothing created
/// ([`PgStore::connect_to_read`]). The embedded store is read without its
/// lock instead ([`SqliteStore::read_unlocked`]).
pub fn open_to_read(pg: &crate::config::PgSettings) -> Result<Arc<dyn Store>, OpenError> {
    Ok(Arc::new(PgStore::connect_to_read(pg)?))
}

/// [`open`], for a server: on PostgreSQL it first takes over the original
/// PEZ's sequences where the database has them (only a server and `pez
/// migrate` do: a command that merely looks, after `pez handback`, say, must
/// not take them over again).
pub fn open_to_serve(settings: &Settings) -> Result<Arc<dyn Store>, OpenError> {
    match &settings.store {
        StoreChoice::Postgres(pg) => Ok(Arc::new(PgStore::connect_to_serve(pg)?)),
        StoreChoice::Embedded => open(settings),
    }
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
