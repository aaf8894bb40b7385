//! Every PostgreSQL call brings its own settings, and nothing of PEZ's
//! lives in a session.
//!
//! Behind a pooler in transaction mode the next transaction may run on
//! another server connection, and a DBA may change `synchronous_commit`
//! for the server, a database or a role while PEZ runs: a setting made at
//! connect proves nothing later. So each call sets, for itself alone
//! (`set_config(..., true)`, which ends with its transaction):
//!
//! - `application_name` to the call's own token, so the watchdog finds and
//!   cancels exactly this call (and nothing else) wherever it runs;
//! - `statement_timeout` and `lock_timeout`, so a stuck database turns into
//!   a failed call rather than a stuck one;
//! - `synchronous_commit`, so that what PEZ reports as done is durable: a
//!   reservation commits `on` itself (or `remote_apply`, if that is what the
//!   server asks for); a change made under a lock commits `local`, so it
//!   holds no lock while a standby is awaited, and is then confirmed by a
//!   [`fence`] that holds none.
//!
//! Transactions run at READ COMMITTED whatever the role or database
//! defaults to: a give-back reads the sequence again once it holds the
//! sequence's lock, and must see what committed while it waited.

use super::super::TxError;
use diesel::prelude::*;
use diesel::sql_types::Text;
use std::time::Duration;

/// What a call does to the store, which decides how it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads only.
    Read,
    /// Changes sequences (give-backs, restarts, creations, take-overs,
    /// migrations): commits on the primary alone, releasing its locks at
    /// once, then waits for the standby in a [`fence`] that holds none.
    Change,
    /// Bookkeeping that no number depends on (an instance's heartbeat):
    /// commits on the primary alone, no fence.
    Bookkeeping,
    /// One autocommit statement that sets what it needs itself (the
    /// reservation, [`super::reserve`]).
    Statement,
}

impl Kind {
    /// Whether a failure after the call began may have changed the store.
    pub fn may_move(self) -> bool {
        matches!(self, Kind::Change | Kind::Statement)
    }
}

/// One call's identity and bounds.
#[derive(Debug, Clone)]
pub struct Call {
    /// Set as the call's `application_name` for as long as it runs: what
    /// the watchdog looks for.
    pub token: String,
    /// Bound of each statement and lock wait.
    pub timeout: Duration,
}

impl Call {
    /// `timeout` in whole milliseconds, as PostgreSQL's settings take it.
    pub fn millis(&self) -> String {
        self.timeout.as_millis().max(1).to_string()
    }
}

/// The `synchronous_commit` a commit that must be durable runs with: `on`,
/// or `remote_apply` where the server asks for that (it is stronger).
pub const DURABLE: &str = "CASE current_setting('synchronous_commit') \
     WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END";

/// Runs `work` in one READ COMMITTED transaction that carries the call's
/// settings; a [`Kind::Change`] then waits for the standby in a fence.
pub fn transaction<T>(
    conn: &mut PgConnection,
    call: &Call,
    kind: Kind,
    work: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
) -> Result<T, TxError> {
    debug_assert!(kind != Kind::Statement);
    let done = conn.build_transaction().read_committed().run(|conn| {
        settings(conn, call)?;
        work(conn)
    })?;
    if kind == Kind::Change {
        fence(conn, call).map_err(TxError::Unconfirmed)?;
    }
    Ok(done)
}

/// The call's settings for the rest of its transaction; it commits on the
/// primary alone (a change is confirmed by its fence).
fn settings(conn: &mut PgConnection, call: &Call) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT set_config('application_name', $1, true), \
                set_config('statement_timeout', $2, true), \
                set_config('lock_timeout', $2, true), \
                set_config('idle_in_transaction_session_timeout', $3, true), \
                set_config('synchronous_commit', 'local', true)",
    )
    .bind::<Text, _>(&call.token)
    .bind::<Text, _>(call.millis())
    .bind::<Text, _>((call.timeout * 10).as_millis().max(1).to_string())
    .execute(conn)?;
    Ok(())
}

/// Returns once every commit before it is durable: one statement that
/// writes a WAL record of its own and commits with [`DURABLE`], so its
/// commit is flushed and on every synchronous standby past every record
/// before it. It holds no lock while it waits.
pub fn fence(conn: &mut PgConnection, call: &Call) -> QueryResult<()> {
    diesel::sql_query(format!(
        "SELECT set_config('application_name', $1, true), \
                set_config('synchronous_commit', {DURABLE}, true), \
                pg_logical_emit_message(true, 'pez', 'fence')::text"
    ))
    .bind::<Text, _>(&call.token)
    .execute(conn)?;
    Ok(())
}
