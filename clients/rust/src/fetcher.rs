//! The lease thread: asks the servers for the next range lease when one is
//! wanted, sizes it, fails over between servers with backoff.

use crate::http::{Http, LeaseAnswer};
use crate::shared::Shared;
use crate::sizing::Sizer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first wait after a server fails; it doubles with each failure in a
/// row, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One base URL and its backoff.
struct Server {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Server {
    fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| at <= now)
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + backoff(self.failures));
    }

    fn answered(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

/// The wait after `failures` failures in a row: 50 ms, 100 ms, ... 5 s.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

/// Starts the lease thread of a client.
pub(crate) fn spawn(shared: Arc<Shared>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("pez-client-lease".into())
        .spawn(move || Fetcher::new(shared).run())
        .map(drop)
}

struct Fetcher {
    shared: Arc<Shared>,
    http: Http,
    servers: Vec<Server>,
    /// The server that answered last: asked first.
    preferred: usize,
    sizer: Sizer,
    asked_limit: bool,
}

impl Fetcher {
    fn new(shared: Arc<Shared>) -> Self {
        let config = &shared.config;
        Fetcher {
            http: Http::new(config.token.as_deref(), config.attempt_timeout),
            servers: config
                .urls
                .iter()
                .map(|_| Server {
                    failures: 0,
                    retry_at: None,
                })
                .collect(),
            preferred: 0,
            sizer: Sizer::new(config.initial_lease, config.lease_target),
            asked_limit: false,
            shared,
        }
    }

    fn run(mut self) {
        loop {
            {
                let mut st = self.shared.lock();
                while !st.shutdown && !st.fetch_wanted {
                    st = self
                        .shared
                        .changed
                        .wait(st)
                        .unwrap_or_else(|e| e.into_inner());
                }
                if st.shutdown {
                    return;
                }
                let stalled = std::mem::take(&mut st.stalled);
                self.sizer.learn(st.rate.take(), stalled);
            }
            if !self.lease() {
                return;
            }
            if !self.asked_limit {
                // After the first lease, so that callers never wait for it,
                // and of the server that answered.
                self.asked_limit = true;
                self.ask_limit();
            }
        }
    }

    /// Reads `lease_limit` from the server that answered last (an admin
    /// route: without the admin token the limit is learned from a 400's
    /// `maximum` instead).
    fn ask_limit(&mut self) {
        let config = &self.shared.config;
        let url = &config.urls[self.preferred];
        if let Some(limit) = self.http.lease_limit(url, &config.sequence) {
            self.sizer.set_limit(limit);
            self.shared.lock().lease_limit = Some(limit);
        }
    }

    /// Takes one lease (or comes to an answer that ends the wish for one).
    /// False once the client is gone.
    fn lease(&mut self) -> bool {
        let mut count = self.sizer.size();
        loop {
            let now = Instant::now();
            let n = self.servers.len();
            let pick = (0..n)
                .map(|i| (self.preferred + i) % n)
                .find(|&i| self.servers[i].ready(now));
            let Some(i) = pick else {
                // Every server is backing off: wait for the first to be
                // ready (or the client to go).
                let wake = self
                    .servers
                    .iter()
                    .filter_map(|s| s.retry_at)
                    .min()
                    .unwrap_or(now);
                let st = self.shared.lock();
                if st.shutdown {
                    return false;
                }
                let (st, _) = self
                    .shared
                    .changed
                    .wait_timeout(st, wake.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner());
                if st.shutdown {
                    return false;
                }
                continue;
            };
            let config = &self.shared.config;
            let answer = self.http.lease(&config.urls[i], &config.sequence, count);
            let mut st = self.shared.lock();
            if st.shutdown {
                return false; // whatever was granted is a gap
            }
            match answer {
                LeaseAnswer::Granted(ranges) => {
                    self.servers[i].answered();
                    self.preferred = i;
                    st.failures[i] = None;
                    st.leases += 1;
                    st.ranges += ranges.len() as u64;
                    st.numbers_leased += ranges.iter().map(|r| r.len()).sum::<u64>();
                    st.pending.extend(ranges);
                    st.fetch_wanted = false;
                    st.epoch += 1;
                    self.shared.changed.notify_all();
                    return true;
                }
                LeaseAnswer::OverLimit { maximum } => {
                    self.servers[i].answered();
                    st.failures[i] = None;
                    self.sizer.set_limit(maximum);
                    st.lease_limit = Some(maximum);
                    count = self.sizer.size().min(count);
                }
                LeaseAnswer::Exhausted { remaining } if remaining > 0 => {
                    self.servers[i].answered();
                    st.failures[i] = None;
                    count = remaining;
                }
                LeaseAnswer::Exhausted { .. } => {
                    self.servers[i].answered();
                    st.failures[i] = None;
                    st.exhausted = true;
                    st.fetch_wanted = false;
                    st.epoch += 1;
                    self.shared.changed.notify_all();
                    return true;
                }
                LeaseAnswer::Failed(why) => {
                    self.servers[i].failed(Instant::now());
                    st.failures[i] = Some(why);
                }
                LeaseAnswer::Refused(error) => {
                    self.servers[i].answered();
                    st.refused = Some(error);
                    st.fetch_wanted = false;
                    st.epoch += 1;
                    self.shared.changed.notify_all();
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_50_ms_to_5_s() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(400));
        assert_eq!(backoff(8), Duration::from_secs(5));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }
}
