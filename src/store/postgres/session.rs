//! Pooled PostgreSQL sessions that know which server backend they are.
//!
//! diesel's own r2d2 manager hands out bare connections. PEZ's pool hands
//! out [`Session`]s instead: the connection, the identity of the server
//! process behind it (so the watchdog can cancel exactly that backend when
//! a call overruns its deadline, and nothing else), and a flag that retires
//! the session once a call on it ended in doubt.

use crate::config::Secret;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use diesel::sql_types::{Integer, Text};
use std::fmt;
use std::time::Duration;

/// The server process behind a session: its pid, and when it started
/// (pids are reused; the pair is not, on one server). After a failover the
/// new primary has no backend with that start time, so a cancel aimed at
/// the old one cannot hit a stranger.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Backend {
    /// `pg_backend_pid()`.
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    /// `backend_start` of `pg_stat_activity`, as text.
    #[diesel(sql_type = Text)]
    pub started: String,
}

/// A pooled connection and what PEZ knows of it.
pub struct Session {
    /// The connection.
    pub conn: PgConnection,
    /// The backend serving it.
    pub backend: Backend,
    /// A call on it timed out or was cancelled: do not reuse it (a late
    /// cancel could still land on the next statement).
    pub retired: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("backend", &self.backend)
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

/// Opens sessions for the pool, each with PEZ's session settings.
#[derive(Debug)]
pub struct Sessions {
    /// The libpq connection string.
    pub conninfo: Secret,
    /// Bound of each statement and lock wait, server-side.
    pub timeout: Duration,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

/// Applies PEZ's session settings and reads the backend's identity.
pub fn prepare(conn: &mut PgConnection, timeout: Duration) -> QueryResult<Backend> {
    let ms = timeout.as_millis();
    // Bounds every statement and lock wait, so a stuck database turns into
    // a failed call (and a retry), not a stuck one. A COMMIT that waits for
    // a synchronous standby is not bounded by these (PostgreSQL turns
    // statement_timeout off before committing): the watchdog is.
    // READ COMMITTED whatever the role or the database defaults to: a
    // give-back's or a restart's read after taking the sequence's lock must
    // see what committed while it waited for it (under REPEATABLE READ or
    // SERIALIZABLE it would read the snapshot of the transaction's first
    // statement).
    conn.batch_execute(&format!(
        "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
         SET idle_in_transaction_session_timeout = {}; \
         SET default_transaction_isolation = 'read committed';",
        ms.saturating_mul(10)
    ))?;
    let commit = diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
        .get_result::<Setting>(conn)?;
    // off, local and remote_write could acknowledge a reservation that a
    // crash or a failover then loses; on and remote_apply cannot.
    if matches!(commit.value.as_str(), "off" | "local" | "remote_write") {
        conn.batch_execute("SET synchronous_commit = on")?;
    }
    diesel::sql_query(
        "SELECT pid, backend_start::text AS started FROM pg_stat_activity \
         WHERE pid = pg_backend_pid()",
    )
    .get_result::<Backend>(conn)
}

impl ManageConnection for Sessions {
    type Connection = Session;
    type Error = SessionError;

    fn connect(&self) -> Result<Session, SessionError> {
        let mut conn = PgConnection::establish(self.conninfo.expose())
            .map_err(|e| SessionError(e.to_string()))?;
        let backend = prepare(&mut conn, self.timeout).map_err(|e| SessionError(e.to_string()))?;
        Ok(Session {
            conn,
            backend,
            retired: false,
        })
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
