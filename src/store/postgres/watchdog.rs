//! A deadline for every PostgreSQL call, enforced from outside the call.
//!
//! `statement_timeout` bounds statements, but PostgreSQL turns it off before
//! a COMMIT, and a commit that waits for a synchronous standby that is gone
//! waits for ever, holding its pool connection. So every call registers
//! here with the backend it runs on; a call still running at its deadline
//! is cancelled from a separate connection (`pg_cancel_backend`, which a
//! role may send to its own backends) and marked. A cancelled commit may
//! still be committed locally ("might not have been replicated"), so the
//! call reports an ambiguous outcome and its numbers are never served.

use super::session::Backend;
use crate::config::Secret;
use crate::unpoisoned;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
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
}

struct Watched {
    deadline: Instant,
    backend: Backend,
    /// Set once the call is past its deadline: its outcome is unknown.
    cancelled: Arc<AtomicBool>,
    /// The cancel reached the server (or the backend was gone): not sent
    /// again. A cancel that could not be sent is tried again.
    cancel_sent: bool,
}

/// One call under watch; it leaves the watch list when finished (or
/// dropped).
pub struct Watch {
    id: u64,
    cancelled: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Watch {
    /// Ends the watch and says whether the call overran its deadline (it
    /// was, or is being, cancelled): its outcome is unknown, whatever it
    /// returned, and its session must not be used again. Read and removed
    /// under the watchdog's lock, so a cancel can never be aimed at the
    /// session after this says it was not.
    pub fn finish(self) -> bool {
        let mut state = unpoisoned::lock(&self.shared.state);
        state.calls.remove(&self.id);
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        unpoisoned::lock(&self.shared.state).calls.remove(&self.id);
    }
}

impl Watchdog {
    /// Starts the watchdog's thread; cancels go out on connections made
    /// with `conninfo`.
    pub fn start(conninfo: Secret) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let watching = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("pez-pg-watchdog".into())
            .spawn(move || run(&watching, &conninfo));
        if let Err(e) = spawned {
            // Calls still end at the caller's own limit; only the server
            // side is left waiting.
            warn!("postgres: cannot start the watchdog thread: {e}");
        }
        Self { shared }
    }

    /// Watches a call on `backend` that must end within `limit`.
    pub fn watch(&self, backend: &Backend, limit: Duration) -> Watch {
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut state = unpoisoned::lock(&self.shared.state);
        state.serial += 1;
        let id = state.serial;
        state.calls.insert(
            id,
            Watched {
                deadline: Instant::now() + limit,
                backend: backend.clone(),
                cancelled: Arc::clone(&cancelled),
                cancel_sent: false,
            },
        );
        drop(state);
        self.shared.wake.notify_one();
        Watch {
            id,
            cancelled,
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
const RETRY_CANCEL: Duration = Duration::from_secs(1);

/// The watchdog's thread: sleeps until the next deadline, cancels what
/// overran.
fn run(shared: &Shared, conninfo: &Secret) {
    let mut canceller: Option<PgConnection> = None;
    loop {
        let overdue: Vec<(u64, Backend)> = {
            let mut state = unpoisoned::lock(&shared.state);
            loop {
                if state.stopping {
                    return;
                }
                let now = Instant::now();
                let overdue: Vec<(u64, Backend)> = state
                    .calls
                    .iter()
                    .filter(|(_, call)| call.deadline <= now && !call.cancel_sent)
                    .map(|(id, call)| {
                        // Marked before the cancel is sent: the call may
                        // return the moment it lands.
                        call.cancelled.store(true, Ordering::SeqCst);
                        (*id, call.backend.clone())
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
            }
        };
        for (id, backend) in overdue {
            let sent = cancel(&mut canceller, conninfo, &backend);
            let mut state = unpoisoned::lock(&shared.state);
            if let Some(call) = state.calls.get_mut(&id) {
                if sent {
                    call.cancel_sent = true;
                } else {
                    // The server could not be asked; ask again soon, while
                    // the call still holds its session.
                    call.deadline = Instant::now() + RETRY_CANCEL;
                }
            }
        }
    }
}

#[derive(QueryableByName)]
struct Cancelled {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cancelled: bool,
}

/// Asks the server to cancel what `backend` is doing, if that backend still
/// exists there; says whether the server could be asked. A server that
/// cannot be reached cannot be asked (the caller tries again; meanwhile the
/// call may end with its connection, by TCP timeouts), and the call's own
/// caller has given up on it already.
fn cancel(canceller: &mut Option<PgConnection>, conninfo: &Secret, backend: &Backend) -> bool {
    if canceller.is_none() {
        let connected = PgConnection::establish(conninfo.expose()).and_then(|mut conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SET statement_timeout = 5000")
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        });
        match connected {
            Ok(conn) => *canceller = Some(conn),
            Err(e) => {
                debug!("postgres watchdog: cannot connect to cancel: {e}");
                return false;
            }
        }
    }
    let Some(conn) = canceller.as_mut() else {
        return false;
    };
    let sent = diesel::sql_query(
        "SELECT coalesce(bool_or(pg_cancel_backend(pid)), false) AS cancelled \
         FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2",
    )
    .bind::<Integer, _>(backend.pid)
    .bind::<Text, _>(&backend.started)
    .get_result::<Cancelled>(conn);
    match sent {
        Ok(Cancelled { cancelled }) => {
            warn!(
                "postgres: a call on backend {} overran its deadline; {}",
                backend.pid,
                if cancelled {
                    "cancelled it"
                } else {
                    "it was gone already"
                }
            );
            true
        }
        Err(e) => {
            debug!("postgres watchdog: cancel failed: {e}");
            *canceller = None;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend {
            pid: 1,
            started: "never".into(),
        }
    }

    #[test]
    fn a_call_past_its_deadline_is_reported_as_overrun_and_one_within_it_is_not() {
        // Nothing listens on port 1: the cancel cannot be sent, and is
        // tried again; the call is overrun all the same.
        let dog = Watchdog::start(Secret::new(
            "host=127.0.0.1 port=1 connect_timeout=1".into(),
        ));
        let quick = dog.watch(&backend(), Duration::from_secs(60));
        let slow = dog.watch(&backend(), Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(200));
        assert!(!quick.finish());
        assert!(slow.finish());
    }
}
