//! What a sequence is: its range, its direction, and how blocks are cut from it.
//!
//! This is the arithmetic every other layer relies on for the one promise PEZ
//! makes, so it is pure (no I/O, no clock) and covered by unit and property
//! tests. A *block* is a run of numbers that follow each other in the
//! sequence's direction; blocks never straddle a wrap, so a block is always a
//! plain interval and its length always fits in a `u64`.

//!
//! `spec`: a sequence's settings and the arithmetic of cutting blocks from
//! it; `block`: a run of numbers.

mod block;
mod spec;

pub use block::Block;
pub use spec::{
    BUILTIN, DEFAULT_MAX_LEASE_CEILING, MAX_NAME_LEN, SequenceSpec, SpecError, check_name,
    check_new_name, default_max_lease,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest number PEZ issues: 2^63-1, the top of PostgreSQL's `bigint`.
pub const MAX_VALUE: i64 = i64::MAX;
/// The smallest number PEZ issues; zero and negatives are never handed out.
pub const MIN_VALUE: i64 = 1;

/// Which way a sequence counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// 1, 2, 3, ... like the original's `forward`.
    Ascending,
    /// 2^63-1, 2^63-2, ... like the original's `reverse`.
    Descending,
}

impl Direction {
    /// The name used in the store, in `pez sequence list` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ascending => "ascending",
            Direction::Descending => "descending",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Direction {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "ascending" => Ok(Direction::Ascending),
            "descending" => Ok(Direction::Descending),
            _ => Err(()),
        }
    }
}

/// How a sequence's numbers reach clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// From blocks each instance leases ahead: fast; in order per instance.
    Leased,
    /// Every number straight from the store, so all instances together issue
    /// numbers in one global order (the original PEZ's behaviour); slower.
    Strict,
}

impl Mode {
    /// The name used in the store and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Leased => "leased",
            Mode::Strict => "strict",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "leased" => Ok(Mode::Leased),
            "strict" => Ok(Mode::Strict),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
