//! [`Client`] and its [`Builder`].

use crate::Error;
use crate::fetcher;
use crate::local::Local;
use crate::range::{Claim, Range, Segment};
use crate::shared::{Config, Shared};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hands out numbers of one PEZ sequence from range leases it holds.
///
/// Cheap to clone: clones share the ranges (they are one client, and
/// numbers never repeat across them). `Send + Sync`: share it between
/// threads, or clone it. When the last clone is dropped the lease thread
/// ends, and the numbers still held are a gap, never handed out again.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Owned by the clones of one client; its drop stops the lease thread.
struct Inner {
    shared: Arc<Shared>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
    }
}

/// What a client has leased so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Range leases granted.
    pub leases: u64,
    /// Ranges granted (a lease of a cycling sequence that wraps is two).
    pub ranges: u64,
    /// Numbers granted in all (handed out, on hand, or to be a gap).
    pub numbers_leased: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = &self.inner.shared.config;
        f.debug_struct("Client")
            .field("urls", &config.urls)
            .field("sequence", &config.sequence)
            .field("deadline", &config.deadline)
            .finish_non_exhaustive() // not the token
    }
}

impl Client {
    /// A builder; `urls` and `sequence` are required.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The next number.
    ///
    /// Without a lock while the current range has numbers; otherwise it
    /// puts the next granted range in place, waiting for a lease for at
    /// most the deadline. Numbers come in the order their ranges were
    /// granted, and within a range from `first` to `last`: never an
    /// earlier number after a later one (see the crate's docs).
    ///
    /// # Errors
    /// [`Error::Timeout`] or [`Error::Unavailable`] after the deadline,
    /// [`Error::Exhausted`] once a non-cycling sequence has issued its last
    /// number and every number this client held was handed out,
    /// [`Error::Unauthorized`], [`Error::UnknownSequence`] or
    /// [`Error::Protocol`] when a server refuses the lease (the next call
    /// asks again).
    pub fn next(&self) -> Result<i64, Error> {
        self.claim(Segment::claim)
    }

    /// Up to `most` consecutive numbers at once (at least one; fewer at the
    /// end of a range), claimed with one compare-exchange: for a caller that
    /// hands them out itself, as [`Local`] does. Waits and fails as
    /// [`Client::next`]; the range comes in grant order like the numbers
    /// of `next()`.
    ///
    /// # Errors
    /// As [`Client::next`].
    pub fn take_range(&self, most: u64) -> Result<Range, Error> {
        self.claim(|segment| segment.claim_many(most))
    }

    /// Claims from the current segment with `claim`; when it is used up,
    /// puts the next granted range in place (waiting for a lease for at
    /// most the deadline) and claims again.
    #[inline]
    fn claim<T>(&self, claim: impl Fn(&Segment) -> Claim<T>) -> Result<T, Error> {
        let shared = &self.inner.shared;
        let mut started = None;
        loop {
            // A guard, not an Arc clone: no shared reference count to bump.
            let segment = shared.current.load();
            if let Some(value) = claimed(shared, &segment, claim(&segment)) {
                return Ok(value);
            }
            let seen = arc_swap::Guard::into_inner(segment);
            let started = *started.get_or_insert_with(Instant::now);
            shared.refill(&seen, started)?;
        }
    }

    /// A handle for one thread that claims `chunk` numbers of this client
    /// at a time and hands them out with no atomic operation at all; see
    /// [`Local`] for what it promises (and what it does not).
    pub fn local(&self, chunk: u64) -> Local {
        Local::new(self.clone(), chunk)
    }

    /// A number if one is on hand; `None` (never waiting) otherwise.
    pub fn next_on_hand(&self) -> Option<i64> {
        let shared = &self.inner.shared;
        let segment = shared.current.load();
        claimed(shared, &segment, segment.claim())
    }

    /// The sequence's lease limit, once the client knows it (from `GET
    /// /v2/sequences/{name}` with the admin token, or from a 400's
    /// `maximum`).
    pub fn lease_limit(&self) -> Option<u64> {
        self.inner.shared.lock().lease_limit
    }

    /// What this client has leased so far.
    pub fn stats(&self) -> Stats {
        let st = self.inner.shared.lock();
        Stats {
            leases: st.leases,
            ranges: st.ranges,
            numbers_leased: st.numbers_leased,
        }
    }

    /// The sequence this client takes numbers of.
    pub fn sequence(&self) -> &str {
        &self.inner.shared.config.sequence
    }

    /// The next number, for async code: from the range on hand at once, or
    /// else by running [`Client::next`] on tokio's blocking pool
    /// (`spawn_blocking`), so the executor never waits on a lease. No
    /// second HTTP stack: the lease thread does the I/O as for `next()`.
    ///
    /// # Errors
    /// As [`Client::next`].
    #[cfg(feature = "tokio")]
    pub async fn next_async(&self) -> Result<i64, Error> {
        if let Some(number) = self.next_on_hand() {
            return Ok(number);
        }
        let client = self.clone();
        match tokio::task::spawn_blocking(move || client.next()).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Stopped),
        }
    }
}

/// What a claim on `segment` got, if anything; the claim that holds its
/// middle asks for the next lease, with the rate measured over the claims
/// up to it (the middle's index plus one).
#[inline]
fn claimed<T>(shared: &Shared, segment: &Segment, claim: Claim<T>) -> Option<T> {
    match claim {
        Claim::Got { value, prefetch } => {
            if prefetch {
                shared.prefetch(segment, segment.trigger() + 1);
            }
            Some(value)
        }
        Claim::Empty => None,
    }
}

/// Builds a [`Client`]. Defaults: deadline 5 s, each HTTP attempt at most
/// 2 s (and never more than the deadline), leases sized for 2 s of
/// numbers, the first lease 1,000 numbers (less if the sequence's limit is
/// lower), no token.
#[derive(Debug, Clone)]
pub struct Builder {
    urls: Vec<String>,
    sequence: Option<String>,
    token: Option<String>,
    deadline: Duration,
    attempt_timeout: Option<Duration>,
    lease_target: Duration,
    initial_lease: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            urls: Vec::new(),
            sequence: None,
            token: None,
            deadline: Duration::from_secs(5),
            attempt_timeout: None,
            lease_target: Duration::from_secs(2),
            initial_lease: 1000,
        }
    }
}

impl Builder {
    /// PEZ base URLs (`http://host:port`), tried in this order; a server
    /// that fails is skipped with backoff. Every server must serve the same
    /// store (instances on one PostgreSQL database).
    pub fn urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// The sequence's name (`forward`, `reverse`, or one made with the
    /// admin API).
    pub fn sequence(mut self, name: impl Into<String>) -> Self {
        self.sequence = Some(name.into());
        self
    }

    /// The bearer token: one of `PEZ_LEASE_TOKENS` (or of `PEZ_TOKENS`
    /// while `PEZ_LEASE_TOKENS` is unset).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The longest [`Client::next`] waits for a lease before it fails.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The longest one HTTP request may take (connecting at most 1 s of
    /// it); with several URLs, set it well under the deadline so that a
    /// server that hangs leaves time for the next.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// How long one lease should last at the rate numbers are taken.
    pub fn lease_target(mut self, target: Duration) -> Self {
        self.lease_target = target;
        self
    }

    /// The size of the first lease.
    pub fn initial_lease(mut self, count: u64) -> Self {
        self.initial_lease = count;
        self
    }

    /// Checks the settings and starts the lease thread, which asks for
    /// the first lease at once.
    ///
    /// # Errors
    /// [`Error::Config`] for no URL or one not `http://` (`https://` with
    /// the `tls` feature), a sequence name PEZ cannot have, a token that
    /// cannot be a header, a zero deadline or lease; or when the thread
    /// cannot be started.
    pub fn build(self) -> Result<Client, Error> {
        if self.urls.is_empty() {
            return Err(Error::Config("no URL given".into()));
        }
        let mut urls = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            urls.push(check_url(url)?);
        }
        let sequence = self
            .sequence
            .ok_or_else(|| Error::Config("no sequence given".into()))?;
        check_name(&sequence)?;
        if let Some(token) = &self.token
            && (token.is_empty() || token.chars().any(|c| c.is_control() || c == ' '))
        {
            return Err(Error::Config(
                "the token is empty or holds spaces or control characters".into(),
            ));
        }
        if self.deadline.is_zero() {
            return Err(Error::Config("the deadline must be above 0".into()));
        }
        if self.initial_lease == 0 || self.lease_target.is_zero() {
            return Err(Error::Config(
                "the initial lease and the lease target must be above 0".into(),
            ));
        }
        let attempt_timeout = self
            .attempt_timeout
            .unwrap_or(Duration::from_secs(2))
            .min(self.deadline)
            .max(Duration::from_millis(1));
        let shared = Arc::new(Shared::new(Config {
            urls,
            sequence,
            token: self.token,
            deadline: self.deadline,
            attempt_timeout,
            lease_target: self.lease_target,
            initial_lease: self.initial_lease,
        }));
        fetcher::spawn(Arc::clone(&shared))
            .map_err(|e| Error::Config(format!("cannot start the lease thread: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner { shared }),
        })
    }
}

/// A base URL without its trailing slashes, if its scheme is usable.
fn check_url(url: &str) -> Result<String, Error> {
    let schemes: &[&str] = if cfg!(feature = "tls") {
        &["http://", "https://"]
    } else {
        &["http://"]
    };
    let trimmed = url.trim().trim_end_matches('/');
    let host = schemes.iter().find_map(|s| trimmed.strip_prefix(s));
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(Error::Config(format!(
            "{url:?} is not a base URL ({} followed by host[:port])",
            schemes.join(" or ")
        ))),
    }
}

/// PEZ's rule for sequence names: 1-63 of `a-z`, `0-9`, `_`, `-`.
fn check_name(name: &str) -> Result<(), Error> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name:?} is not a sequence name (1-63 of a-z, 0-9, _ and -)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<Client>();
    }

    #[test]
    fn bad_settings_are_refused_in_one_line() {
        let refused = |b: Builder| match b.build() {
            Err(Error::Config(why)) => why,
            other => panic!("built: {other:?}"),
        };
        let good = || {
            Client::builder()
                .urls(["http://127.0.0.1:1"])
                .sequence("forward")
        };
        refused(Client::builder().sequence("forward"));
        refused(good().urls(["ftp://x"]));
        refused(good().sequence("Forward"));
        refused(good().token("a b"));
        refused(good().deadline(Duration::ZERO));
        assert!(check_url("http://h:1/").is_ok_and(|u| u == "http://h:1"));
    }
}
