//! The PostgreSQL store: many PEZ instances on one database.
//!
//! Each PEZ sequence is a native PostgreSQL sequence in the schema `pez`
//! whose INCREMENT is its step: 1,000 for a leased sequence (one nextval()
//! reserves the block of 1,000 numbers starting at the value it returns,
//! cut at the end of the range), 1 for a strict one. A reservation of more
//! numbers calls nextval() several times in one statement. PostgreSQL's
//! sequence is the single source of truth: atomic across every caller,
//! durable, and wrapping (CYCLE) exactly where PEZ's arithmetic says.
//!
//! How the store keeps the rule of [`crate::store`]:
//!
//! - **Forward**: a reservation is one autocommit statement of nextval()
//!   calls, on the sequence's oid, with no lock of PEZ's, that also reads
//!   the increment nextval() really counted with ([`catalog::take`]). A
//!   transactional WAL record in the same statement makes its commit
//!   durable (flushed, and on every synchronous standby) before PostgreSQL
//!   answers; see [`catalog::take`] for why both are needed.
//! - **Backward**: give-backs and restarts run in one transaction that
//!   first takes the sequence's exclusive lock ([`catalog::lock_exclusively`]),
//!   which holds off every nextval() caller, then checks where the sequence
//!   stands and moves it.
//! - **Bounded**: every call runs under a deadline ([`watchdog`]); one that
//!   overruns is cancelled on the server and reported as ambiguous.

mod catalog;
pub(crate) mod libpq;
mod original;
mod session;
mod startup;
mod watchdog;

pub use catalog::SCHEMA;
pub use original::{Change, Continued};

use super::{
    Advanced, Created, OpenError, Reserved, Restart, SequenceState, Store, StoreError, TxError,
    check_restart, moves_forward,
};
use crate::config::PgSettings;
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use crate::unpoisoned;
use catalog::{Described, Taken};
use diesel::prelude::*;
use diesel::r2d2::{Pool, PooledConnection};
use diesel::sql_types::{BigInt, Text};
use log::{info, warn};
use session::Sessions;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use watchdog::Watchdog;

/// Transaction advisory lock that serialises creating and deleting
/// sequences ("PEZCATLG"). Numbers never depend on it.
const CATALOG_LOCK: i64 = 0x50455A4341544C47;

/// The numbers one nextval() of a leased sequence reserves: its INCREMENT.
pub const LEASE_STEP: u64 = 1000;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool<Sessions>,
    settings: PgSettings,
    watchdog: Watchdog,
    /// Descriptions by name, so a reservation is one statement. Safe to be
    /// stale: statements address the sequence by oid and check its
    /// increment, so a stale entry fails and is dropped.
    described: Mutex<HashMap<String, Described>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.settings.description)
            .finish()
    }
}

#[derive(QueryableByName)]
struct Generation {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    generation: i64,
}

impl PgStore {
    /// Connects, brings the schema up to date, checks that the user may
    /// serve, and builds the pool: one attempt (the caller retries an
    /// [`OpenError::Unavailable`]). For commands: the original PEZ's
    /// sequences, if the database has them and they are not taken over
    /// yet, are only mentioned (see [`Self::connect_to_serve`]).
    pub fn connect(settings: &PgSettings) -> Result<Self, OpenError> {
        Self::open(settings, false)
    }

    /// [`Self::connect`] for a server: first takes over the original PEZ's
    /// sequences where the database has them ([`original::take_over`]),
    /// and logs where each stands.
    pub fn connect_to_serve(settings: &PgSettings) -> Result<Self, OpenError> {
        Self::open(settings, true)
    }

    fn open(settings: &PgSettings, take_over: bool) -> Result<Self, OpenError> {
        let mut conn = startup::connect(settings)?;
        let applied = startup::run_migrations(&mut conn, settings)?;
        if applied > 0 {
            info!("postgres: applied {applied} migration(s)");
        }
        if take_over {
            for continued in original::take_over(&mut conn, settings)? {
                info!("postgres: {continued}");
            }
        } else {
            for waiting in original::not_taken_over(&mut conn).unwrap_or_default() {
                warn!(
                    "postgres: this database holds the original PEZ's {waiting}, not taken over \
                     yet: a PEZ server (or pez migrate) will continue it; until then, what \
                     this command shows of forward and reverse is PEZ's own sequences"
                );
            }
        }
        startup::check_privileges(&mut conn, settings)?;
        if !startup::owns_sequences(&mut conn).unwrap_or(true) {
            warn!(
                "postgres: this user does not own PEZ's sequences, so give-backs and restarts \
                 (which take ALTER SEQUENCE's lock) fail: a clean stop leaves its unused \
                 numbers as a gap"
            );
        }
        drop(conn);
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            // No background connecting: a connection opened by r2d2's thread while
            // the process exits can crash inside libpq's TLS teardown.
            .min_idle(Some(0))
            .connection_timeout(settings.timeout)
            // Outages are logged once by the leaser, not per pool retry.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .build_unchecked(Sessions {
                conninfo: settings.conninfo.clone(),
                timeout: settings.timeout,
            });
        Ok(Self {
            pool,
            settings: settings.clone(),
            watchdog: Watchdog::start(settings.conninfo.clone()),
            described: Mutex::new(HashMap::new()),
        })
    }

    /// Applies pending migrations and takes over the original PEZ's
    /// sequences where the database has them, as a start would; for `pez
    /// migrate`, which an operator may run as a user with more rights than
    /// the service's. Reports how many migrations it applied, and the
    /// original's sequences PEZ continues. One attempt.
    pub fn migrate(settings: &PgSettings) -> Result<(usize, Vec<Continued>), OpenError> {
        let mut conn = startup::connect(settings)?;
        let applied = startup::run_migrations(&mut conn, settings)?;
        let continued = original::take_over(&mut conn, settings)?;
        Ok((applied, continued))
    }

    /// Gives `forward` and `reverse` back to the original PEZ's nodes, for
    /// `pez handback` (see [`original::hand_back`]). One attempt.
    pub fn hand_back(settings: &PgSettings) -> Result<Vec<Continued>, OpenError> {
        let mut conn = startup::connect(settings)?;
        original::hand_back(&mut conn, settings)
    }

    /// How long one call may run before the watchdog cancels it: its
    /// statements and lock waits are bounded by the timeout each, and a
    /// give-back or restart makes a few of them.
    fn deadline(&self) -> Duration {
        self.settings.timeout * 2
    }

    fn session(&self) -> Result<PooledConnection<Sessions>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(self.settings.scrub(&format!("postgres: {e}"))))
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(self.settings.scrub(&format!("postgres: {e}")))
    }

    fn ambiguous(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Ambiguous(self.settings.scrub(&format!("postgres: {e}")))
    }

    /// Runs `work` on a pooled session under the watchdog. `moves` says
    /// whether the work may move a sequence: then any failure after it
    /// began leaves the outcome unknown ([`StoreError::Ambiguous`]). A call
    /// that overran its deadline is ambiguous whatever it returned, and its
    /// session is retired.
    fn call<T>(
        &self,
        moves: bool,
        work: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut session = self.session()?;
        let watch = self.watchdog.watch(&session.backend, self.deadline());
        let outcome = work(&mut session.conn);
        if watch.finish() {
            session.retired = true;
            return Err(self.ambiguous(format_args!(
                "no answer within {:?}; the call was cancelled",
                self.deadline()
            )));
        }
        outcome.map_err(|e| match e {
            TxError::Store(e) => e,
            TxError::Db(e) if moves => {
                if matches!(
                    e,
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ClosedConnection,
                        _
                    )
                ) {
                    session.retired = true;
                }
                self.ambiguous(e)
            }
            TxError::Db(e) => self.unavailable(e),
        })
    }

    /// `work` in one transaction (see [`Self::call`]).
    fn transaction<T>(
        &self,
        moves: bool,
        work: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.call(moves, |conn| conn.transaction(work))
    }

    /// `name`'s description: cached, or read now.
    fn described(&self, conn: &mut PgConnection, name: &str) -> Result<Described, TxError> {
        if let Some(found) = unpoisoned::lock(&self.described).get(name) {
            return Ok(found.clone());
        }
        let found = catalog::describe(conn, name)?
            .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))?;
        unpoisoned::lock(&self.described).insert(name.to_owned(), found.clone());
        Ok(found)
    }

    fn forget(&self, name: &str) {
        unpoisoned::lock(&self.described).remove(name);
    }

    /// One reserving statement on `seq` under `generation`: the steps to
    /// ask for, then the values.
    fn take(
        &self,
        conn: &mut PgConnection,
        seq: &Described,
        generation: i64,
        size: u64,
    ) -> Result<Taken, TxError> {
        let mut steps = size.div_ceil(seq.step()).clamp(1, catalog::MAX_STEPS);
        if !seq.spec.cycle {
            // nextval() past the end fails the whole statement; ask only
            // for the steps that are left. Another caller may still get
            // there first: then the statement fails and the caller retries.
            let next = catalog::frontier(conn, seq)?
                .ok_or_else(|| TxError::Store(StoreError::Exhausted(seq.spec.name.clone())))?;
            let left = next.abs_diff(seq.spec.terminus()) / seq.step() + 1;
            steps = steps.min(left);
        }
        Ok(catalog::take(conn, seq, generation, steps)?)
    }
}

/// `name`'s description, with its sequence's exclusive lock taken for the
/// rest of the transaction (see [`catalog::lock_exclusively`]): read, lock,
/// and read again, since only what is read under the lock is sure to stay
/// true until the commit.
fn locked(conn: &mut PgConnection, name: &str) -> Result<Described, TxError> {
    let unknown = || TxError::Store(StoreError::UnknownSequence(name.to_owned()));
    let before = catalog::describe(conn, name)?.ok_or_else(unknown)?;
    catalog::lock_exclusively(conn, &before.relation)?;
    let seq = catalog::describe(conn, name)?.ok_or_else(unknown)?;
    if seq.oid != before.oid {
        // Dropped and made again, or moved to the original's sequence,
        // between the two reads: the lock is on another relation.
        return Err(TxError::Store(StoreError::Stale(name.to_owned())));
    }
    Ok(seq)
}

impl Store for PgStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        self.call(false, |conn| {
            let described = catalog::describe_all(conn)?;
            let next = catalog::frontiers(conn, &described)?;
            Ok(described
                .into_iter()
                .zip(next)
                .map(|(seq, next_value)| SequenceState {
                    spec: seq.spec,
                    next_value,
                    generation: seq.generation,
                    continues: seq.original,
                })
                .collect())
        })
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.call(false, |conn| {
            Ok(
                diesel::sql_query("SELECT name, generation FROM pez.sequences")
                    .load::<Generation>(conn)?
                    .into_iter()
                    .map(|row| (row.name, row.generation))
                    .collect(),
            )
        })
    }

    fn reserve(&self, name: &str, generation: i64, size: u64) -> Result<Reserved, StoreError> {
        let outcome = self.call(true, |conn| {
            let seq = self.described(conn, name)?;
            match self.take(conn, &seq, generation, size)? {
                // The cached oid may be an incarnation dropped since; if the
                // one there now is the caller's generation (generations never
                // repeat), the caller knows it: take from it.
                Taken::Stale => {
                    self.forget(name);
                    let fresh = self.described(conn, name)?;
                    if fresh.generation != generation || fresh.oid == seq.oid {
                        return Ok((Taken::Stale, fresh));
                    }
                    Ok((self.take(conn, &fresh, generation, size)?, fresh))
                }
                taken => Ok((taken, seq)),
            }
        });
        match outcome {
            Ok((Taken::Values(values), seq)) => {
                Ok(Reserved::durable(catalog::blocks(&seq, values)))
            }
            // Restarted, or dropped and perhaps made again, since the caller
            // looked: never followed by name (the caller's idea of the
            // sequence is out of date).
            Ok((Taken::Stale, _)) => {
                self.forget(name);
                Err(StoreError::Stale(name.to_owned()))
            }
            Ok((Taken::Altered, seq)) => {
                self.forget(name);
                Err(StoreError::Ambiguous(format!(
                    "postgres: the INCREMENT of {} is not the one PEZ read; numbers \
                     taken from it are left unused",
                    seq.relation
                )))
            }
            Err(e) => {
                // A failed statement may come from a stale description.
                self.forget(name);
                Err(e)
            }
        }
    }

    fn give_back(&self, name: &str, generation: i64, unused: Block) -> Result<bool, StoreError> {
        self.transaction(true, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            crate::failpoint::hit(crate::failpoint::points::GIVE_BACK_CHECKED, name);
            // A block of another generation, or of an incarnation deleted
            // since, may fit where this one stands by coincidence (a fresh
            // sequence's blocks fall on the same grid): never taken.
            if seq.generation != generation || stands != seq.spec.successor(unused.last) {
                return Ok(false);
            }
            catalog::set_next(conn, &seq.relation, unused.first)?;
            Ok(true)
        })
    }

    fn restart(&self, name: &str, value: i64, rule: Restart) -> Result<(), StoreError> {
        self.transaction(true, |conn| {
            let seq = locked(conn, name)?;
            check_restart(&seq.spec, catalog::frontier(conn, &seq)?, value, rule)?;
            // Rolls back with the transaction: lock_exclusively rewrote the
            // sequence's storage in it.
            catalog::set_next(conn, &seq.relation, value)?;
            catalog::new_generation(conn, name)?;
            Ok(())
        })
    }

    fn advance(&self, name: &str, next: Option<i64>) -> Result<Advanced, StoreError> {
        self.transaction(true, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            let Some(from) = moves_forward(&seq.spec, stands, next)? else {
                return Ok(Advanced::AlreadyThere { stands });
            };
            // Both roll back with the transaction (see restart).
            match next {
                Some(value) => catalog::set_next(conn, &seq.relation, value)?,
                None => catalog::set_exhausted(conn, &seq)?,
            }
            catalog::new_generation(conn, name)?;
            Ok(Advanced::Moved { from })
        })
    }

    fn create(&self, spec: &SequenceSpec) -> Result<Created, StoreError> {
        self.transaction(false, |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(CATALOG_LOCK)
                .execute(conn)?;
            if let Some(existing) = catalog::describe(conn, &spec.name)? {
                return if existing.spec.same_settings(spec) {
                    Ok(Created::Existing)
                } else {
                    Err(TxError::Store(StoreError::Conflict(Box::new(
                        existing.spec,
                    ))))
                };
            }
            let step = match spec.mode {
                Mode::Leased => LEASE_STEP as i64,
                Mode::Strict => 1,
            };
            let increment = match spec.direction {
                Direction::Ascending => step,
                Direction::Descending => -step,
            };
            // Names are checked (a-z, 0-9, _ and -) and the numbers are
            // integers, so this DDL (which cannot take bind parameters) is safe.
            diesel::sql_query(format!(
                "CREATE SEQUENCE {} AS bigint INCREMENT BY {increment} MINVALUE {} MAXVALUE {} \
                 START WITH {} CACHE 1 {}",
                catalog::qualified(&spec.name),
                spec.min,
                spec.max,
                spec.start,
                if spec.cycle { "CYCLE" } else { "NO CYCLE" }
            ))
            .execute(conn)?;
            // The generation defaults to the next value of pez.generations.
            diesel::sql_query(
                "INSERT INTO pez.sequences (name, mode, start_value) VALUES ($1, $2, $3)",
            )
            .bind::<Text, _>(&spec.name)
            .bind::<Text, _>(spec.mode.as_str())
            .bind::<BigInt, _>(spec.start)
            .execute(conn)?;
            Ok(Created::New)
        })
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let deleted = self.transaction(false, |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(CATALOG_LOCK)
                .execute(conn)?;
            let spec = catalog::describe(conn, name)?
                .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))?
                .spec;
            // Only sequences PEZ made are deleted: forward and reverse
            // (which may be the original PEZ's) never.
            if spec.is_builtin() {
                return Err(TxError::Store(StoreError::Builtin(name.to_owned())));
            }
            diesel::sql_query("DELETE FROM pez.sequences WHERE name = $1")
                .bind::<Text, _>(name)
                .execute(conn)?;
            diesel::sql_query(format!("DROP SEQUENCE {}", catalog::qualified(name)))
                .execute(conn)?;
            Ok(())
        });
        self.forget(name);
        deleted
    }

    fn call_limit(&self) -> Duration {
        // Waiting for a pooled session, then the call's own deadline, then
        // a moment for the cancel to land.
        self.settings.timeout + self.deadline() + Duration::from_millis(500)
    }
}
