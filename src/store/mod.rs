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
//!   and the write. A restart moves a sequence back only when asked to
//!   ([`Restart::AllowBackward`]).

mod lock;
pub mod postgres;
mod sqlite;
pub mod transfer;

pub use lock::{DataDirLock, LockError};
pub use postgres::PgStore;
pub use sqlite::{DATABASE_FILE, MovedTo, SqliteStore};

use crate::config::{Settings, StoreChoice};
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use std::fmt;
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
    /// The original PEZ's sequence this one continues (`public.forward_seq`,
    /// say), on a PostgreSQL database PEZ took over; `None` for PEZ's own.
    pub continues: Option<String>,
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

/// Checks a restart of `spec`, which stands at `next` (`None`: ran out), to
/// `value` under `rule`: inside the range, and not behind where it stands
/// unless moving back is allowed.
pub(crate) fn check_restart(
    spec: &SequenceSpec,
    next: Option<i64>,
    value: i64,
    rule: Restart,
) -> Result<(), TxError> {
    if !spec.contains(value) {
        return Err(TxError::Store(StoreError::OutOfRange {
            name: spec.name.clone(),
            value,
            min: spec.min,
            max: spec.max,
        }));
    }
    let forward = next.is_some_and(|next| spec.is_at_or_ahead(value, next));
    if rule == Restart::ForwardOnly && !forward {
        return Err(TxError::Store(StoreError::Backward {
            name: spec.name.clone(),
            value,
            next,
        }));
    }
    Ok(())
}

/// Where a sequence that stands at `stands` moves from, if moving it to
/// `next` (`None`: run out) moves it forward in this lap: only such a move
/// can never make it issue a number again. `None` when it stays: it stands
/// there or further already, or ran out. `next` must be a number of the
/// sequence.
pub(crate) fn moves_forward(
    spec: &SequenceSpec,
    stands: Option<i64>,
    next: Option<i64>,
) -> Result<Option<i64>, TxError> {
    if let Some(value) = next
        && !spec.contains(value)
    {
        return Err(TxError::Store(StoreError::OutOfRange {
            name: spec.name.clone(),
            value,
            min: spec.min,
            max: spec.max,
        }));
    }
    let forward = match (stands, next) {
        (None, _) => false,
        (Some(_), None) => !spec.cycle,
        (Some(stands), Some(value)) => value != stands && spec.is_at_or_ahead(value, stands),
    };
    Ok(stands.filter(|_| forward))
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
    /// A restart to a value the sequence has already handed out in this
    /// lap, without [`Restart::AllowBackward`].
    Backward {
        /// The sequence.
        name: String,
        /// The value asked for.
        value: i64,
        /// Where the store stands (`None`: it ran out).
        next: Option<i64>,
    },
    /// The sequence is no longer the one the caller knows: it was restarted
    /// (a new generation) or deleted and created again since the caller
    /// read it. Nothing the call took may be served (it took nothing, or
    /// left what it took as a gap); the caller should look again.
    Stale(String),
    /// The store failed before it changed anything: a refused connection,
    /// a statement the database rejected.
    Unavailable(String),
    /// The call failed in a way that leaves its outcome unknown: a commit
    /// that timed out, was cancelled, or whose connection broke. The store
    /// may have moved; whatever the call would have returned is a gap.
    Ambiguous(String),
}

impl StoreError {
    /// Whether the store itself is failing (as opposed to a verdict about
    /// the request): worth a retry, and a 503 for the client.
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Ambiguous(_))
    }
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
            StoreError::Backward { name, value, next } => match next {
                Some(next) => write!(
                    f,
                    "{value} is behind where sequence {name:?} stands ({next}): its numbers were \
                     handed out already; restarting there would issue them again"
                ),
                None => write!(
                    f,
                    "sequence {name:?} has issued its last number; restarting at {value} would \
                     issue numbers again"
                ),
            },
            StoreError::Stale(name) => write!(
                f,
                "sequence {name:?} changed in the store (restarted, or deleted and created \
                 again) since this instance read it"
            ),
            StoreError::Unavailable(cause) => write!(f, "store unavailable: {cause}"),
            StoreError::Ambiguous(cause) => {
                write!(f, "store call with an unknown outcome: {cause}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Why a store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the embedded store's data directory.
    Locked(LockError),
    /// The store refuses PEZ, or cannot be set up, and trying again will not
    /// change that (wrong credentials, no such database, missing rights);
    /// the text says why, in one line, without secrets.
    Setup(String),
    /// The embedded store's sequences were copied to PostgreSQL (`pez store
    /// copy`): it is retired, and the text says where they went.
    Moved(String),
    /// The store could not be reached or did not answer: worth trying
    /// again for a while (it may be starting, recovering, failing over).
    Unavailable(String),
}

impl OpenError {
    /// Whether trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, OpenError::Unavailable(_))
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked(e) => e.fmt(f),
            OpenError::Setup(cause) | OpenError::Moved(cause) | OpenError::Unavailable(cause) => {
                f.write_str(cause)
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// An error inside a store transaction: a verdict of the store's own, or
/// the database's. Either rolls the transaction back.
#[derive(Debug)]
pub(crate) enum TxError {
    Store(StoreError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// Numbers a store has durably reserved for one caller: the only way
/// numbers enter PEZ's memory. Only a store makes one, and only after the
/// commit that reserved them is durable (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    blocks: Vec<Block>,
}

impl Reserved {
    /// The blocks of a commit that is durable. For stores only.
    pub(crate) fn durable(blocks: Vec<Block>) -> Self {
        debug_assert!(
            !blocks.is_empty(),
            "a reservation holds at least one number"
        );
        Self { blocks }
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

/// May a restart move a sequence back?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Only to where the store stands or beyond, in this lap: numbers are
    /// skipped, never repeated. The default.
    ForwardOnly,
    /// Anywhere in the range, even to numbers already handed out (they
    /// will be handed out again): the operator asked for it.
    AllowBackward,
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
    /// `generation`, so the next one starts with it: under the store's
    /// exclusive lock on the sequence, and only if the sequence still has
    /// that generation and stands right after `unused` (nobody moved,
    /// restarted or re-created it since). Returns whether it was taken back;
    /// refusing leaves a gap, never a duplicate.
    fn give_back(&self, name: &str, generation: i64, unused: Block) -> Result<bool, StoreError>;

    /// Makes `value` the next number of `name` (PostgreSQL's `ALTER
    /// SEQUENCE ... RESTART WITH`) and gives it a new generation, under the
    /// store's exclusive lock on the sequence; refused as
    /// [`StoreError::Backward`] if `value` was handed out already in this
    /// lap, unless `rule` allows it. One transaction: a failed restart
    /// moves nothing.
    fn restart(&self, name: &str, value: i64, rule: Restart) -> Result<(), StoreError>;

    /// Moves `name` forward to `next` (`None`: run out, for a sequence that
    /// does not cycle), never back: a sequence that stands there or further
    /// in this lap stays where it is. Under the store's exclusive lock on
    /// the sequence, with a new generation when it moves (instances drop
    /// what they hold of it). For copies and restored backups, which must
    /// never make PEZ issue a number twice.
    fn advance(&self, name: &str, next: Option<i64>) -> Result<Advanced, StoreError>;

    /// Creates a sequence, or finds it already there with the same settings.
    fn create(&self, spec: &SequenceSpec) -> Result<Created, StoreError>;

    /// Deletes a sequence (not `forward` or `reverse`).
    fn delete(&self, name: &str) -> Result<(), StoreError>;

    /// The longest any call may take before its caller gives up on it and
    /// counts it as [`StoreError::Ambiguous`].
    fn call_limit(&self) -> Duration;
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

/// How long to keep trying while the store is not reachable yet: the
/// startup timeout on PostgreSQL; the embedded store is there or not.
pub fn startup_timeout(settings: &Settings) -> Duration {
    match &settings.store {
        StoreChoice::Embedded => Duration::ZERO,
        StoreChoice::Postgres(pg) => pg.startup_timeout,
    }
}

/// When to try again while the store is not reachable yet at start-up (it
/// may be starting, recovering or failing over): until `timeout` has
/// passed, backing off from 100 ms to 2 s. Logs the first failure.
#[derive(Debug)]
pub struct StartupRetry {
    started: std::time::Instant,
    timeout: Duration,
    pause: Duration,
    warned: bool,
}

impl StartupRetry {
    /// Starts counting now.
    pub fn new(timeout: Duration) -> Self {
        Self {
            started: std::time::Instant::now(),
            timeout,
            pause: Duration::from_millis(100),
            warned: false,
        }
    }

    /// After a failed attempt (`transient` when trying again may help):
    /// how long to wait before the next one, or `None` to give up.
    pub fn after_failure(&mut self, transient: bool, error: &dyn fmt::Display) -> Option<Duration> {
        let left = self.timeout.saturating_sub(self.started.elapsed());
        if !transient || left.is_zero() {
            return None;
        }
        if !self.warned {
            log::warn!(
                "the store is not reachable yet, retrying for up to {:?}: {error}",
                self.timeout
            );
            self.warned = true;
        }
        let pause = self.pause.min(left);
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        Some(pause)
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
