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

/// A pooled connection, and whether it may be used again.
pub struct Session {
    /// The connection.
    pub conn: PgConnection,
    /// A call on it timed out, was cancelled or lost its connection: do not
    /// reuse it (its transaction's outcome is unknown, and a late cancel
    /// could still land on the next statement).
    pub retired: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("retired", &self.retired)
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
}

impl Sessions {
    /// One session, outside the pool (start-up, commands).
    pub fn open(&self) -> Result<Session, SessionError> {
        let conn = PgConnection::establish(self.conninfo.expose())
            .map_err(|e| SessionError(e.to_string()))?;
        Ok(Session {
            conn,
            retired: false,
        })
    }
}

impl ManageConnection for Sessions {
    type Connection = Session;
    type Error = SessionError;

    fn connect(&self) -> Result<Session, SessionError> {
        self.open()
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), SessionError> {
        session
            .conn
            .batch_execute("SELECT 1")
            .map_err(|e| SessionError(e.to_string()))
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.retired || std::thread::panicking()
    }
}
