//! What the callers and the lease thread share: the segment numbers come
//! from (read without a lock), and behind one mutex everything else.

use crate::Error;
use crate::range::{Range, Segment};
use arc_swap::ArcSwap;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The client's settings, fixed at build.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) urls: Vec<String>,
    pub(crate) sequence: String,
    pub(crate) token: Option<String>,
    pub(crate) deadline: Duration,
    pub(crate) attempt_timeout: Duration,
    pub(crate) lease_target: Duration,
    pub(crate) initial_lease: u64,
}

/// Everything but the current segment; behind [`Shared::state`].
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Ranges granted and not yet in use, in the order they were granted.
    pub(crate) pending: VecDeque<Range>,
    /// A lease is wanted (the lease thread is asking for one, or will).
    pub(crate) fetch_wanted: bool,
    /// The sequence does not cycle and a lease found nothing left.
    pub(crate) exhausted: bool,
    /// The last lease ended in an error no other server would change.
    pub(crate) refused: Option<Error>,
    /// Counts leases that ended (granted, refused, exhausted): a caller
    /// waiting sees whether the lease it waited for has come to an end.
    pub(crate) epoch: u64,
    /// A caller had to wait for a lease since the last one was asked for.
    pub(crate) stalled: bool,
    /// Numbers per second taken from the last segment's first half.
    pub(crate) rate: Option<f64>,
    /// Each server's last failure since it last answered, by URL index.
    pub(crate) failures: Vec<Option<String>>,
    /// The client is dropped: the lease thread ends.
    pub(crate) shutdown: bool,
    /// The sequence's lease limit, once known.
    pub(crate) lease_limit: Option<u64>,
    /// Leases granted.
    pub(crate) leases: u64,
    /// Ranges granted (a lease that wraps is two).
    pub(crate) ranges: u64,
    /// Numbers granted.
    pub(crate) numbers_leased: u64,
}

/// Shared by every clone of a client and its lease thread.
pub(crate) struct Shared {
    /// The segment numbers are claimed from: loaded without a lock,
    /// replaced only under `state`'s lock.
    pub(crate) current: ArcSwap<Segment>,
    /// A `std` mutex: it is never held across I/O or a wait other than
    /// the condvar's.
    pub(crate) state: Mutex<State>,
    /// Signals every change of `state` to the callers waiting and to the
    /// lease thread.
    pub(crate) changed: Condvar,
    pub(crate) config: Config,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        let state = State {
            failures: vec![None; config.urls.len()],
            // The first lease is asked for at once, so that the first
            // `next()` seldom waits.
            fetch_wanted: true,
            ..State::default()
        };
        Shared {
            current: ArcSwap::from_pointee(Segment::empty()),
            state: Mutex::new(state),
            changed: Condvar::new(),
            config,
        }
    }

    /// The state, even if a thread panicked holding it: every change to it
    /// is a single assignment that leaves it consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the one caller that claimed the middle of `segment`:
    /// records the rate and asks for the next lease unless one is on hand.
    pub(crate) fn prefetch(&self, segment: &Segment, claimed: u64) {
        let elapsed = segment.installed.elapsed().as_secs_f64();
        let mut st = self.lock();
        st.rate = Some(if elapsed > 0.0 {
            claimed as f64 / elapsed
        } else {
            f64::MAX
        });
        if st.pending.is_empty() && !st.fetch_wanted && !st.exhausted {
            st.fetch_wanted = true;
            self.changed.notify_all();
        }
    }

    /// The slow path, when `seen` is used up: puts the next granted range
    /// in its place, waiting for a lease until `deadline` if none is on
    /// hand. Returns once the current segment is another one.
    pub(crate) fn refill(&self, seen: &Arc<Segment>, started: Instant) -> Result<(), Error> {
        let deadline = started + self.config.deadline;
        let mut st = self.lock();
        let epoch = st.epoch;
        loop {
            if !Arc::ptr_eq(&self.current.load(), seen) {
                return Ok(()); // another caller put the next one in place
            }
            if let Some(range) = st.pending.pop_front() {
                self.current.store(Arc::new(Segment::new(range)));
                return Ok(());
            }
            if st.exhausted {
                return Err(Error::Exhausted {
                    sequence: self.config.sequence.clone(),
                });
            }
            if st.epoch != epoch
                && let Some(error) = &st.refused
            {
                return Err(error.clone());
            }
            if !st.fetch_wanted {
                st.fetch_wanted = true;
                st.refused = None;
                self.changed.notify_all();
            }
            st.stalled = true;
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_error(&st));
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// `Unavailable` naming each server's failure when every server has
    /// failed since it last answered, else `Timeout` (a lease is on its
    /// way, slowly).
    fn deadline_error(&self, st: &State) -> Error {
        let failed: Vec<String> = self
            .config
            .urls
            .iter()
            .zip(&st.failures)
            .filter_map(|(url, failure)| failure.as_ref().map(|f| format!("{url}: {f}")))
            .collect();
        if failed.len() < self.config.urls.len() {
            Error::Timeout {
                waited: self.config.deadline,
                sequence: self.config.sequence.clone(),
            }
        } else {
            Error::Unavailable {
                waited: self.config.deadline,
                sequence: self.config.sequence.clone(),
                detail: failed.join("; "),
            }
        }
    }
}
