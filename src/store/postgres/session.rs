//! Pooled PostgreSQL sessions.
//!
//! A session is a client connection and nothing more: behind a connection
//! pooler in transaction mode (PgBouncer, RDS Proxy) each transaction may
//! run on another server connection, so PEZ keeps no state in the session
//! (no `SET`, no session advisory lock, no named prepared statement, no
//! server process identity). Every call brings its own settings instead
//! ([`super::call`]).

use crate::config::Secret;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a call's answer vouches for its session: within it, and while
/// no call on any session failed since, the session is handed out without
/// a `SELECT 1` first. That check is a round trip of its own, as long as
/// everything else a strict batch asks of PostgreSQL but its statement
/// (about 150 us under load); a session in steady use never needs it.
pub const VOUCHED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection, and whether it may be used again.
pub struct Session {
    /// The connection.
    pub conn: PgConnection,
    /// A call on it timed out, was cancelled or lost its connection: do not
    /// reuse it (its transaction's outcome is unknown, and a late cancel
    /// could still land on the next statement).
    pub retired: bool,
    /// When a call on it last got an answer, and the pool's count of
    /// failed calls then ([`Sessions::failures`]).
    pub answered: Option<(Instant, u64)>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("retired", &self.retired)
            .field("answered", &self.answered)
            .finish()
    }
}

/// Why a session could not be opened or checked; the text has no secrets
/// (the caller scrubs it).
#[derive(Debug)]
pub struct SessionError(pub String);

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SessionError {}

/// Opens sessions for the pool.
#[derive(Debug)]
pub struct Sessions {
    /// The libpq connection string.
    pub conninfo: Secret,
    /// Calls that failed on any session of the pool: a failure (a server
    /// restarted, a failover) makes every session prove itself again
    /// before its next call, however recently it answered.
    pub failures: Arc<AtomicU64>,
}

impl Sessions {
    /// One session, outside the pool (start-up, commands).
    pub fn open(&self) -> Result<Session, SessionError> {
        let conn = PgConnection::establish(self.conninfo.expose())
            .map_err(|e| SessionError(e.to_string()))?;
        Ok(Session {
            conn,
            retired: false,
            answered: None,
        })
    }

    /// Whether `session` may skip the check before its next call: a call
    /// on it answered within [`VOUCHED_FOR`] of `now`, and none failed
    /// since on any session.
    fn vouched(&self, session: &Session, now: Instant) -> bool {
        session.answered.is_some_and(|(at, failures)| {
            now.saturating_duration_since(at) < VOUCHED_FOR
                && failures == self.failures.load(Ordering::SeqCst)
        })
    }
}

impl Session {
    /// Records that a call on it got its answer, `failures` ([`Sessions::failures`])
    /// being what they are.
    pub fn answered(&mut self, failures: &AtomicU64) {
        self.answered = Some((Instant::now(), failures.load(Ordering::SeqCst)));
    }
}

impl ManageConnection for Sessions {
    type Connection = Session;
    type Error = SessionError;

    fn connect(&self) -> Result<Session, SessionError> {
        self.open()
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), SessionError> {
        if self.vouched(session, Instant::now()) {
            return Ok(());
        }
        session
            .conn
            .batch_execute("SELECT 1")
            .map_err(|e| SessionError(e.to_string()))
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        // diesel's own verdict too: a transaction it could not roll back
        // leaves the connection unusable, whatever the call returned (a
        // store's verdict among it, which vouches for the session).
        session.retired
            || std::thread::panicking()
            || diesel::r2d2::R2D2Connection::is_broken(&mut session.conn)
    }
}
