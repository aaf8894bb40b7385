//! A client for PEZ that hands out unique 64-bit numbers
//! in-process, from range leases it takes from PEZ servers
//! (`POST /v2/sequences/{name}/lease?count=N`).
//!
//! ```no_run
//! use std::time::Duration;
//! let ids = pez_client::Client::builder()
//!     .urls(["http://pez-a:8000", "http://pez-b:8000"])
//!     .sequence("orders")
//!     .token("a-lease-token")
//!     .deadline(Duration::from_secs(2))
//!     .build()?;
//! let id: i64 = ids.next()?;
//! # Ok::<(), pez_client::Error>(())
//! ```
//!
//! # What it promises
//! - **Never a number twice.** A range lease is durably the client's:
//!   PEZ never grants it again. Each range belongs to one [`Client`] (and
//!   its clones), and each of its numbers is claimed by one atomic add, so
//!   one caller gets it. Numbers still held when the client is dropped, or
//!   when the process dies, are a gap: nothing is given back.
//! - **In order within one client.** Ranges are handed out in the order
//!   they were granted, each from its `first` to its `last`; a range
//!   granted earlier is never used after one granted later. For an
//!   ascending sequence that is increasing numbers (descending: decreasing)
//!   except where a cycling sequence wraps: a wrap starts a new lap, and
//!   the order is the order of grants. Across threads, a `next()` that
//!   returned before another began returned the earlier number.
//! - **The fast path takes no lock.** The current range is an `Arc` read
//!   through `arc-swap` and claimed with one `fetch_add`; a lock is taken
//!   only to put the next range in place, and once per range to ask for
//!   the one after.
//! - **Prefetch.** When half of the current range is taken, a background
//!   thread (one per client) asks for the next lease, sized for about
//!   [`Builder::lease_target`] (2 s) of numbers at the rate measured over
//!   that half: doubled or halved from the last size, doubled when a caller
//!   had to wait, within 1 and the sequence's `lease_limit`.
//! - **Bounded waits.** With several base URLs, a server that fails
//!   (connection error, timeout, 5xx) is skipped and retried after a
//!   backoff (50 ms doubling to 5 s). `next()` waits at most the
//!   [`Builder::deadline`], then fails with [`Error::Unavailable`] (every
//!   server failed; it names each failure) or [`Error::Timeout`].
//! - **Exhaustion.** On a non-cycling sequence the client takes the last
//!   numbers too (a 409's `remaining`), hands out all it holds, then
//!   answers [`Error::Exhausted`].
//!
//! # One thread, many numbers
//! [`Client::local`] gives a thread a [`Local`] that claims a chunk of
//! numbers at a time and counts through it without an atomic operation:
//! threads no longer share a counter's cache line, at the price of the
//! order across threads (never of uniqueness).
//!
//! # Blocking and async
//! The core is blocking (ureq, one thread per client for leases). With
//! the `tokio` feature, [`Client::next_async`] answers from the range on
//! hand at once and otherwise runs `next()` on tokio's blocking pool: the
//! same core, no second HTTP stack.
//!
//! The protocol, for clients in other languages: `docs/clients.md` in the
//! PEZ repository.

mod client;
mod error;
mod fetcher;
mod http;
mod local;
mod range;
mod shared;
mod sizing;

pub use client::{Builder, Client, Stats};
pub use error::Error;
pub use local::Local;
pub use range::Range;
