//! What the status page shows, gathered by the route ([`super::super::ops`])
//! from the server's state: plain data, no formatting.

use crate::dispenser::HealthReport;
use std::time::Duration;

/// One sequence as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStatus {
    /// Its name.
    pub name: String,
    /// `"ascending"` or `"descending"`.
    pub direction: &'static str,
    /// `"leased"` or `"strict"`.
    pub mode: &'static str,
    /// Smallest number it issues.
    pub min: i64,
    /// Largest number it issues.
    pub max: i64,
    /// Whether it starts over after its last number.
    pub cycle: bool,
    /// The next number; `None`: a non-cycling sequence ran out.
    pub next: Option<i64>,
    /// Fraction of its range used before it wraps, 0.0..=1.0.
    pub range_used: f64,
    /// Numbers this instance holds, leased and not issued yet (0 for a
    /// strict sequence, which holds none).
    pub on_hand: u64,
    /// Numbers issued per second over the last minute (this instance).
    pub per_second: f64,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PageInfo {
    /// The version, e.g. "0.1.0 (git 1fb058d)".
    pub version: String,
    /// Whether the instance is ready for traffic (as /readyz says).
    pub ready: bool,
    /// Why not, when not: the fixed phrases /readyz gives anyone.
    pub reasons: Vec<String>,
    /// How long the server has been running.
    pub uptime: Duration,
    /// How many sequences it serves.
    pub sequence_count: usize,
    /// How often the page reloads itself, in seconds (0 is taken as 1, so
    /// the page never reloads in a tight loop).
    pub refresh_seconds: u32,
    /// The sequences and the store; `None`: the reader may not see them.
    pub details: Option<Details>,
}

/// What only the admin token or a metrics token may see once tokens are
/// set.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    /// Which store, e.g. "sqlite at ./pez-data/pez.sqlite3" (no secrets).
    pub store: String,
    /// What the store's calls said lately.
    pub health: HealthReport,
    /// The sequences, in the order they are shown.
    pub sequences: Vec<SequenceStatus>,
}
