//! What can go wrong in a store: a verdict about a request, an outage, a
//! call whose outcome is unknown; and why a store could not be opened.

use super::LockError;
use crate::sequence::SequenceSpec;
use std::fmt;

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
    /// A forward move of a cycling sequence that has issued numbers: it
    /// would wrap sooner than a full lap, bringing back numbers of this lap
    /// early, and the caller did not consent (`allow_early_wrap`).
    EarlyWrap {
        /// The sequence.
        name: String,
        /// Where the move would put it.
        value: i64,
        /// Where it stands.
        stands: i64,
    },
    /// The sequence is no longer the one the caller knows: it was restarted
    /// (a new generation) or deleted and created again since the caller
    /// read it. Nothing the call took may be served (it took nothing, or
    /// left what it took as a gap); the caller should look again.
    Stale(String),
    /// The store refuses PEZ, and trying again will not change that (a
    /// missing right, a sequence not shaped as PEZ needs, a pooler mode PEZ
    /// cannot work with); the text says what to do.
    Refused(String),
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
            StoreError::EarlyWrap {
                name,
                value,
                stands,
            } => write!(
                f,
                "sequence {name:?} cycles and has issued numbers: moving it from {stands} ahead \
                 to {value} skips numbers, so it wraps sooner than a full lap and the numbers \
                 it issued in this lap come back early; allow_early_wrap moves it anyway"
            ),
            StoreError::Stale(name) => write!(
                f,
                "sequence {name:?} changed in the store (restarted, or deleted and created \
                 again) since this instance read it"
            ),
            StoreError::Refused(why) => f.write_str(why),
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

impl From<StoreError> for OpenError {
    /// A store call made while opening: a refusal stops PEZ, an outage or
    /// a call in doubt is worth another try.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Ambiguous(_) => {
                OpenError::Unavailable(e.to_string())
            }
            other => OpenError::Setup(other.to_string()),
        }
    }
}

/// An error inside a store transaction: a verdict of the store's own, or
/// the database's. Either rolls the transaction back.
#[derive(Debug)]
pub(crate) enum TxError {
    Store(StoreError),
    Db(diesel::result::Error),
    /// The change committed on the primary, but its fence failed: whether
    /// it is durable (on every synchronous standby) is unknown.
    Unconfirmed(diesel::result::Error),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}
