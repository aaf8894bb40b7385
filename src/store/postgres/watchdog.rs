//! A deadline for every PostgreSQL call, enforced from outside the call.
//!
//! `statement_timeout` bounds statements, but PostgreSQL turns it off before
//! a COMMIT, and a commit that waits for a synchronous standby that is gone
//! waits for ever, holding its server connection (and, if a client gives
//! up on it, even after the client is gone). So every call registers here
//! with its token, the `application_name` it sets for as long as its
//! transaction runs ([`super::call`]); a call still running at its deadline
//! is cancelled from a separate connection (`pg_cancel_backend`, which a
//! role may send to its own backends), found by that token: exactly that
//! call, on whichever server connection a pooler gave it, and never a
//! stranger that uses the connection after it. What it was waiting for
//! (the synchronous standby, a lock) is kept for the caller's error. A
//! cancelled commit may still be committed locally ("might not have been
//! replicated"), so the call reports an ambiguous outcome and its numbers
//! are never served.

use super::call::{self, Call, Kind};
use crate::config::Secret;
use crate::unpoisoned;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use log::{debug, warn};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Cancels calls that overrun their deadline. One thread per store.
pub struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    serial: u64,
    calls: HashMap<u64, Watched>,
    stopping: bool,
    /// While the thread waits: until when (`None`: until woken). `None`
    /// while it works; it looks at every call before it waits again.
    asleep: Option<Option<Instant>>,
}

/// Whether a new call due at `deadline` must wake the thread: only if it
/// sleeps with no deadline, or past this one. Every call has the same
/// limit, so under load a new call is due after the one the thread sleeps
/// until, and waking it for each call (a context switch per store call,
/// measured in issue 20) bought nothing.
fn must_wake(asleep: Option<Option<Instant>>, deadline: Instant) -> bool {
    match asleep {
        None => false,
        Some(None) => true,
        Some(Some(until)) => deadline < until,
    }
}

struct Watched {
    deadline: Instant,
    token: String,
    /// Set once the call is past its deadline: its outcome is unknown.
    cancelled: Arc<AtomicBool>,
    /// What the server said the call was waiting for when it was cancelled.
    waiting: Arc<Mutex<Option<String>>>,
    /// The cancel reached the call: not sent again. A cancel that could not
    /// be sent, or found no backend with the token yet, is tried again.
    cancel_sent: bool,
}

/// A call that overran its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrun {
    /// What it waited for, in words, if the server said.
    pub waiting: Option<String>,
}

/// One call under watch; it leaves the watch list when finished (or
/// dropped).
pub struct Watch {
    id: u64,
    cancelled: Arc<AtomicBool>,
    waiting: Arc<Mutex<Option<String>>>,
    shared: Arc<Shared>,
}

impl Watch {
    /// Ends the watch; `Some` if the call overran its deadline (it was, or
    /// is being, cancelled): its outcome is unknown, whatever it returned,
    /// and its session must not be used again. Read and removed under the
    /// watchdog's lock, so a cancel can never be aimed at the call after
    /// this says it was not.
    pub fn finish(self) -> Option<Overrun> {
        let mut state = unpoisoned::lock(&self.shared.state);
        state.calls.remove(&self.id);
        drop(state);
        self.cancelled.load(Ordering::SeqCst).then(|| Overrun {
            waiting: unpoisoned::lock(&self.waiting).clone(),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        unpoisoned::lock(&self.shared.state).calls.remove(&self.id);
    }
}

/// What a `wait_event` means, for an operator reading an error.
fn in_words(waits: &str) -> String {
    if waits.contains("SyncRep") {
        "the synchronous standby".to_owned()
    } else if waits.starts_with("Lock:") {
        format!("a lock ({waits})")
    } else {
        waits.to_owned()
    }
}

impl Watchdog {
    /// Starts the watchdog's thread; cancels go out on connections made
    /// with `conninfo`. `scrub` takes secrets out of what it logs.
    pub fn start(
        conninfo: Secret,
        token_prefix: String,
        scrub: impl Fn(&str) -> String + Send + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let watching = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("pez-pg-watchdog".into())
            .spawn(move || run(&watching, &conninfo, &token_prefix, &scrub));
        if let Err(e) = spawned {
            // Calls still end at the caller's own limit; only the server
            // side is left waiting.
            warn!("postgres: cannot start the watchdog thread: {e}");
        }
        Self { shared }
    }

    /// Watches the call of `token`, which must end within `limit`.
    pub fn watch(&self, token: &str, limit: Duration) -> Watch {
        let cancelled = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(Mutex::new(None));
        let deadline = Instant::now() + limit;
        let mut state = unpoisoned::lock(&self.shared.state);
        state.serial += 1;
        let id = state.serial;
        state.calls.insert(
            id,
            Watched {
                deadline,
                token: token.to_owned(),
                cancelled: Arc::clone(&cancelled),
                waiting: Arc::clone(&waiting),
                cancel_sent: false,
            },
        );
        // Decided under the lock the thread holds whenever it is not
        // waiting: a thread about to wait sees this call first.
        let wake = must_wake(state.asleep, deadline);
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Watch {
            id,
            cancelled,
            waiting,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        unpoisoned::lock(&self.shared.state).stopping = true;
        self.shared.wake.notify_one();
    }
}

/// How long to wait before trying again a cancel that could not be sent.
const RETRY_CANCEL: Duration = Duration::from_millis(500);

/// The watchdog's thread: sleeps until the next deadline, cancels what
/// overran.
fn run(shared: &Shared, conninfo: &Secret, prefix: &str, scrub: &dyn Fn(&str) -> String) {
    let mut canceller: Option<PgConnection> = None;
    let call = Call {
        token: format!("{prefix}:watchdog"),
        timeout: Duration::from_secs(5),
    };
    loop {
        let overdue: Vec<(u64, String)> = {
            let mut state = unpoisoned::lock(&shared.state);
            loop {
                if state.stopping {
                    return;
                }
                let now = Instant::now();
                let overdue: Vec<(u64, String)> = state
                    .calls
                    .iter()
                    .filter(|(_, call)| call.deadline <= now && !call.cancel_sent)
                    .map(|(id, call)| {
                        // Marked before the cancel is sent: the call may
                        // return the moment it lands.
                        call.cancelled.store(true, Ordering::SeqCst);
                        (*id, call.token.clone())
                    })
                    .collect();
                if !overdue.is_empty() {
                    break overdue;
                }
                let next = state
                    .calls
                    .values()
                    .filter(|call| !call.cancel_sent)
                    .map(|call| call.deadline)
                    .min();
                state.asleep = Some(next);
                state = match next {
                    Some(deadline) => {
                        shared
                            .wake
                            .wait_timeout(state, deadline.saturating_duration_since(now))
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                    None => shared.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
                };
                state.asleep = None;
            }
        };
        for (id, token) in overdue {
            let waiting = unpoisoned::lock(&shared.state)
                .calls
                .get(&id)
                .map(|watched| Arc::clone(&watched.waiting));
            let outcome = cancel(&mut canceller, conninfo, &call, &token, scrub, |waits| {
                // Before the cancel is sent: the call may return, and read
                // it, the moment the cancel lands.
                if let Some(waiting) = &waiting {
                    *unpoisoned::lock(waiting) = Some(in_words(waits));
                }
            });
            let mut state = unpoisoned::lock(&shared.state);
            if let Some(watched) = state.calls.get_mut(&id) {
                match outcome {
                    Some(()) => watched.cancel_sent = true,
                    // Not sent, or no backend carries the token yet (the
                    // call is still being planned): again soon, while the
                    // call is watched.
                    None => watched.deadline = Instant::now() + RETRY_CANCEL,
                }
            }
        }
    }
}

#[derive(QueryableByName)]
struct Cancelled {
    #[diesel(sql_type = Bool)]
    cancelled: bool,
}

#[derive(QueryableByName)]
struct Waits {
    #[diesel(sql_type = Nullable<Text>)]
    waiting: Option<String>,
}

/// Cancels what the backend carrying `token` is doing, after telling
/// `waits` what it is waiting for; `Some` once a backend with the token was
/// found and signalled, `None` when the server could not be asked or no
/// backend carries the token (yet).
fn cancel(
    canceller: &mut Option<PgConnection>,
    conninfo: &Secret,
    call: &Call,
    token: &str,
    scrub: &dyn Fn(&str) -> String,
    waits: impl FnOnce(&str),
) -> Option<()> {
    if canceller.is_none() {
        match PgConnection::establish(conninfo.expose()) {
            Ok(conn) => *canceller = Some(conn),
            Err(e) => {
                // Scrubbed whether or not debug lines are on: the text may
                // echo the connection string.
                let why = scrub(&e.to_string());
                debug!("postgres watchdog: cannot connect to cancel: {why}");
                return None;
            }
        }
    }
    let conn = canceller.as_mut()?;
    let sent = call::transaction(conn, call, Kind::Read, |conn| {
        let found = diesel::sql_query(
            "SELECT string_agg(coalesce(wait_event_type || ':' || wait_event, state), ', ') \
                      AS waiting \
               FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind::<Text, _>(token)
        .get_result::<Waits>(conn)?;
        let Some(waiting) = found.waiting else {
            return Ok(None);
        };
        waits(&waiting);
        // pg_stat_activity is read once per transaction and kept: read it
        // afresh, so the cancel goes only to a backend that carries the
        // token now.
        diesel::sql_query("SELECT pg_stat_clear_snapshot()").execute(conn)?;
        let sent = diesel::sql_query(
            "SELECT coalesce(bool_or(pg_cancel_backend(pid)), false) AS cancelled \
               FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind::<Text, _>(token)
        .get_result::<Cancelled>(conn)?;
        Ok(sent.cancelled.then_some(waiting))
    });
    match sent {
        Ok(Some(waiting)) => {
            warn!(
                "postgres: a call overran its deadline waiting for {}; cancelled it",
                in_words(&waiting)
            );
            Some(())
        }
        Ok(None) => None,
        Err(e) => {
            let why = scrub(&format!("{e:?}"));
            debug!("postgres watchdog: cancel failed: {why}");
            *canceller = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watchdog whose cancels cannot be sent (nothing listens on port
    /// 1): they are tried again, and the calls are overrun all the same.
    fn cannot_cancel() -> Watchdog {
        Watchdog::start(
            Secret::new("host=127.0.0.1 port=1 connect_timeout=1".into()),
            "pez:test".into(),
            str::to_owned,
        )
    }

    #[test]
    fn only_a_call_due_before_the_thread_wakes_anyway_wakes_it() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        // Working: it looks at every call before it waits again.
        assert!(!must_wake(None, now));
        // Waiting for a call: any call wakes it.
        assert!(must_wake(Some(None), later));
        // Sleeping until a deadline: only an earlier one wakes it.
        assert!(!must_wake(Some(Some(now)), later));
        assert!(!must_wake(Some(Some(now)), now));
        assert!(must_wake(Some(Some(later)), now));
    }

    #[test]
    fn a_call_registered_after_a_later_one_is_still_cancelled_at_its_own_deadline() {
        // The thread sleeps until the first call's deadline, a minute away;
        // the second is due in 20 ms and must wake it.
        let dog = cannot_cancel();
        let first = dog.watch("pez:test:1", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
        let second = dog.watch("pez:test:2", Duration::from_millis(20));
        let third = dog.watch("pez:test:3", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            second.finish().is_some(),
            "the earlier call was not cancelled"
        );
        assert_eq!(first.finish(), None);
        assert_eq!(third.finish(), None);
    }

    #[test]
    fn a_call_past_its_deadline_is_reported_as_overrun_and_one_within_it_is_not() {
        let dog = cannot_cancel();
        let quick = dog.watch("pez:test:1", Duration::from_secs(60));
        let slow = dog.watch("pez:test:2", Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(quick.finish(), None);
        assert!(slow.finish().is_some());
    }

    #[test]
    fn what_the_watchdog_logs_of_a_failed_cancel_goes_through_the_scrubber() {
        // The canceller cannot connect: its error text is logged at debug,
        // and must pass through the scrubber first (it may echo the URL).
        let scrubbed = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&scrubbed);
        let dog = Watchdog::start(
            Secret::new("host=127.0.0.1 port=1 connect_timeout=1 password=hunter22".into()),
            "pez:test".into(),
            move |text| {
                unpoisoned::lock(&seen).push(text.to_owned());
                text.replace("hunter22", "***")
            },
        );
        let slow = dog.watch("pez:test:3", Duration::from_millis(10));
        let started = Instant::now();
        while unpoisoned::lock(&scrubbed).is_empty() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(slow.finish().is_some());
        assert!(
            unpoisoned::lock(&scrubbed)
                .iter()
                .any(|text| text.contains("cannot connect") || text.contains("connection")),
            "{:?}",
            unpoisoned::lock(&scrubbed)
        );
    }

    #[test]
    fn what_a_call_waited_for_is_said_in_words() {
        assert_eq!(in_words("IPC:SyncRep"), "the synchronous standby");
        assert_eq!(in_words("Lock:relation"), "a lock (Lock:relation)");
    }
}
