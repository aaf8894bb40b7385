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
//!   calls, on the sequence's oid, with no lock of PEZ's, that is durable
//!   before PostgreSQL answers ([`reserve::take`]).
//! - **Backward**: give-backs and restarts run in one transaction that
//!   first takes the sequence's exclusive lock ([`catalog::lock_exclusively`]),
//!   which holds off every nextval() caller, then checks where the sequence
//!   stands, its generation and its count of laps, and moves it.
//! - **Nothing in the session**: every call sets what it needs for itself
//!   ([`call`]), so PEZ works behind a pooler in transaction mode and
//!   whatever a DBA sets for the server, a database or a role.
//! - **No lock held while waiting for a standby**: changes commit on the
//!   primary alone and are then confirmed by a fence that holds none.
//! - **Bounded**: every call runs under a deadline ([`watchdog`]); one that
//!   overruns is cancelled on the server and reported as ambiguous, with
//!   what it was waiting for.
//!
//! The `Store` trait's operations are in [`operations`]; around them:
//! [`session`] (the pool's connections), [`catalog`] (what
//! PostgreSQL knows of PEZ's sequences, and the statements that move them),
//! [`startup`] (reaching the database and checking rights), [`migrate`]
//! (the schema), [`original`] (taking over the original PEZ's sequences),
//! [`instances`] (which instances are alive).

mod call;
mod catalog;
mod instances;
mod migrate;
mod operations;
mod original;
mod reserve;
mod session;
mod startup;
mod watchdog;

pub use catalog::{LEASE_STEP, SCHEMA, SMALLEST_RING_GIVEN_BACK};
pub use original::{Change, Continued};

use super::{OpenError, StoreError, TxError};
use crate::config::PgSettings;
use crate::unpoisoned;
use call::{Call, Kind};
use catalog::Described;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use log::{info, warn};
use reserve::Taken;
use session::Sessions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watchdog::Watchdog;

/// What a store is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A server: takes over the original PEZ's sequences, logs where they
    /// stand.
    Serve,
    /// `pez migrate`: takes over too, and reports.
    Migrate,
    /// Another command: looks, and only mentions the original's sequences.
    Command,
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: diesel::r2d2::Pool<Sessions>,
    settings: PgSettings,
    watchdog: Watchdog,
    purpose: Purpose,
    /// `pez:<this process's nonce>`: the prefix of every call's token.
    token_prefix: String,
    serial: AtomicU64,
    /// Descriptions by name, so a reservation is one statement. Safe to be
    /// stale: statements address the sequence by oid and check its
    /// increment, so a stale entry fails and is dropped.
    described: Mutex<HashMap<String, Described>>,
    /// Calls that failed, on any session ([`Sessions::failures`]).
    failures: Arc<AtomicU64>,
    /// What is wrong with `pez.reserve()`, as the sync task last read it
    /// ([`reserve::function_problem`]): while set, nothing is reserved.
    function_problem: Mutex<Option<String>>,
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

/// A token prefix no other process shares: tokens find calls in
/// `pg_stat_activity` of a server many hosts use.
fn token_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("pez:{:016x}", hasher.finish())
}

impl PgStore {
    /// Connects, brings the schema up to date, checks that the user may
    /// serve, and builds the pool: one attempt (the caller retries an
    /// [`OpenError::Unavailable`]). For commands: the original PEZ's
    /// sequences, if the database has them and they are not taken over
    /// yet, are only mentioned (see [`Self::connect_to_serve`]).
    pub fn connect(settings: &PgSettings) -> Result<Self, OpenError> {
        Ok(Self::open(settings, Purpose::Command)?.0)
    }

    /// [`Self::connect`] for a command that only reads (`pez sequence
    /// list`, `show`, `export`): runs no migration, takes nothing over and
    /// creates nothing. A database without PEZ's schema, or with one that
    /// needs migrations, is refused in one line that says what makes it.
    pub fn connect_to_read(settings: &PgSettings) -> Result<Self, OpenError> {
        let store = Self::bare(settings, Purpose::Command)?;
        let (pending, total) = store
            .call(Kind::Read, |conn| {
                Ok((migrate::pending(conn)?, migrate::count()?))
            })
            .map_err(|e| store.failed("reading the schema's version", e))?;
        if pending == total {
            return Err(OpenError::Setup(format!(
                "no PEZ store in the PostgreSQL database at {}: nothing to read (a PEZ server \
                 or `pez migrate` creates it; are PEZ_DATABASE_URL or PEZ_DB_* right?)",
                settings.description
            )));
        }
        if pending > 0 {
            return Err(OpenError::Setup(format!(
                "PostgreSQL at {}: PEZ's schema needs {pending} migration(s) before this pez \
                 can read it; run `pez migrate` (or start a server) with the same settings",
                settings.description
            )));
        }
        store.mention_originals();
        Ok(store)
    }

    /// Logs the original PEZ's sequences that a server would take over:
    /// a command that only looks mentions them.
    fn mention_originals(&self) {
        let waiting = self
            .call(Kind::Read, |conn| Ok(original::not_taken_over(conn)?))
            .unwrap_or_default();
        for name in waiting {
            warn!(
                "postgres: this database holds the original PEZ's {name}, not taken over \
                 yet: a PEZ server (or pez migrate) will continue it, and what this command \
                 shows (and exports) of forward and reverse is where that server will start"
            );
        }
    }

    /// [`Self::connect`] for a server: first takes over the original PEZ's
    /// sequences where the database has them ([`original::take_over`]),
    /// and logs where each stands.
    pub fn connect_to_serve(settings: &PgSettings) -> Result<Self, OpenError> {
        let (store, continued) = Self::open(settings, Purpose::Serve)?;
        for line in continued {
            info!("postgres: {line}");
        }
        Ok(store)
    }

    /// Applies pending migrations and takes over the original PEZ's
    /// sequences where the database has them, as a start would; for `pez
    /// migrate`, which an operator may run as a user with more rights than
    /// the service's. Reports how many migrations it applied, and the
    /// original's sequences PEZ continues. One attempt.
    pub fn migrate(settings: &PgSettings) -> Result<(usize, Vec<Continued>), OpenError> {
        let store = Self::bare(settings, Purpose::Migrate)?;
        let applied = store.migrate_schema()?;
        let continued = store
            .call(Kind::Change, original::take_over)
            .map_err(|e| store.failed("taking over the original PEZ's sequences", e))?;
        Ok((applied, continued))
    }

    /// Gives `forward` and `reverse` back to the original PEZ's nodes, for
    /// `pez handback` (see [`original::hand_back`]). One attempt.
    pub fn hand_back(settings: &PgSettings) -> Result<Vec<Continued>, OpenError> {
        let store = Self::bare(settings, Purpose::Command)?;
        store
            .call(Kind::Change, original::hand_back)
            .map_err(|e| store.failed("handing back the original PEZ's sequences", e))
    }

    /// `e`, met while `what`, as an [`OpenError`] that says where and what.
    fn failed(&self, what: &str, e: StoreError) -> OpenError {
        let transient = e.is_outage();
        let text = format!("PostgreSQL at {}: {what}: {e}", self.settings.description);
        if transient {
            OpenError::Unavailable(text)
        } else {
            OpenError::Setup(text)
        }
    }

    /// A store whose database answers, with its pool and watchdog, before
    /// anything is read or changed.
    fn bare(settings: &PgSettings, purpose: Purpose) -> Result<Self, OpenError> {
        startup::reachable(settings)?;
        let token_prefix = token_prefix();
        let scrubbing = settings.clone();
        let failures = Arc::new(AtomicU64::new(0));
        let pool = diesel::r2d2::Pool::builder()
            .max_size(settings.pool_size)
            // No background connecting: a connection opened by r2d2's thread while
            // the process exits can crash inside libpq's TLS teardown.
            .min_idle(Some(0))
            .connection_timeout(settings.timeout)
            // Outages are logged once by the leaser, not per pool retry.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .build_unchecked(Sessions {
                conninfo: settings.conninfo.clone(),
                failures: Arc::clone(&failures),
            });
        Ok(Self {
            pool,
            settings: settings.clone(),
            watchdog: Watchdog::start(
                settings.conninfo.clone(),
                token_prefix.clone(),
                move |text| scrubbing.scrub(text),
            ),
            purpose,
            token_prefix,
            serial: AtomicU64::new(0),
            described: Mutex::new(HashMap::new()),
            failures,
            function_problem: Mutex::new(None),
        })
    }

    fn open(settings: &PgSettings, purpose: Purpose) -> Result<(Self, Vec<Continued>), OpenError> {
        let store = Self::bare(settings, purpose)?;
        let applied = store.migrate_schema()?;
        if applied > 0 {
            info!("postgres: applied {applied} migration(s)");
        }
        let continued = if purpose == Purpose::Command {
            store.mention_originals();
            Vec::new()
        } else {
            store
                .call(Kind::Change, original::take_over)
                .map_err(|e| store.failed("taking over the original PEZ's sequences", e))?
        };
        if let Some(problem) = store
            .call(Kind::Read, |conn| Ok(reserve::function_problem(conn)?))
            .map_err(|e| store.failed("reading the reservation's function", e))?
        {
            return Err(OpenError::Setup(format!(
                "PostgreSQL at {}: {problem}",
                settings.description
            )));
        }
        let missing = store
            .call(Kind::Read, |conn| Ok(startup::missing_privileges(conn)?))
            .map_err(|e| store.failed("reading the user's rights", e))?;
        if !missing.is_empty() {
            return Err(OpenError::Setup(format!(
                "PostgreSQL at {}: this user may not serve PEZ's sequences; as their owner, run: {}",
                settings.description,
                missing.join(" ")
            )));
        }
        if !store
            .call(Kind::Read, |conn| Ok(startup::owns_sequences(conn)?))
            .unwrap_or(true)
        {
            warn!(
                "postgres: this user does not own PEZ's sequences, so give-backs and restarts \
                 (which take ALTER SEQUENCE's lock) fail: a clean stop leaves its unused \
                 numbers as a gap"
            );
        }
        Ok((store, continued))
    }

    /// Applies the migrations that are pending, if any (only then is DDL
    /// run: a user without DDL rights works once `pez migrate` ran).
    fn migrate_schema(&self) -> Result<usize, OpenError> {
        let pending = self
            .call(Kind::Read, |conn| Ok(migrate::pending(conn)?))
            .map_err(|e| self.failed("reading the schema's version", e))?;
        if pending == 0 {
            return Ok(0);
        }
        let may = self
            .call(Kind::Read, |conn| Ok(migrate::may_migrate(conn)?))
            .map_err(|e| self.failed("reading the user's rights", e))?;
        if !may {
            return Err(OpenError::Setup(format!(
                "PostgreSQL at {}: the schema needs {pending} migration(s) and this user may not \
                 apply them; run `pez migrate` with the same settings as a user that owns the \
                 schema pez (or may create it)",
                self.settings.description
            )));
        }
        self.call(Kind::Change, |conn| Ok(migrate::run(conn)?))
            .map_err(|e| self.failed("applying migrations", e))
    }

    /// How long one call may run before the watchdog cancels it: its
    /// statements and lock waits are bounded by the timeout each, and a
    /// give-back or restart makes a few of them.
    fn deadline(&self) -> Duration {
        self.settings.timeout * 2
    }

    fn session(&self) -> Result<diesel::r2d2::PooledConnection<Sessions>, StoreError> {
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

    /// What is wrong with `pez.reserve()`, as last read while running.
    fn function_problem(&self) -> Option<String> {
        unpoisoned::lock(&self.function_problem).clone()
    }

    /// Records what the sync task read of `pez.reserve()`; says so in the
    /// log when that changes (reservations stop, or go on again).
    fn function_seen(&self, problem: Option<String>) {
        let mut known = unpoisoned::lock(&self.function_problem);
        match (&*known, &problem) {
            (None, Some(now)) => log::error!(
                "postgres at {}: {now}; nothing is reserved until it is as made",
                self.settings.description
            ),
            (Some(_), None) => info!(
                "postgres at {}: pez.reserve() is as its migration made it again; reserving",
                self.settings.description
            ),
            _ => {}
        }
        *known = problem;
    }

    /// A new call's identity.
    fn new_call(&self) -> Call {
        Call {
            token: format!(
                "{}:{}",
                self.token_prefix,
                self.serial.fetch_add(1, Ordering::Relaxed)
            ),
            timeout: self.settings.timeout,
        }
    }

    /// Runs `work` on a pooled session under the watchdog, as `kind` says
    /// ([`call`]). A call that may move a sequence and fails after it began
    /// leaves the outcome unknown ([`StoreError::Ambiguous`]); so does a
    /// change committed on the primary that no standby confirmed, and a
    /// call that overran its deadline, whatever it returned: its session is
    /// retired.
    fn call<T>(
        &self,
        kind: Kind,
        work: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        self.call_with(kind, |conn, _| work(conn))
    }

    /// [`Self::call`], for work that needs the call's identity (the
    /// reservation's statement sets its token itself).
    fn call_with<T>(
        &self,
        kind: Kind,
        work: impl FnOnce(&mut PgConnection, &Call) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut session = self.session()?;
        let call = self.new_call();
        let watch = self.watchdog.watch(&call.token, self.deadline());
        let outcome = match kind {
            Kind::Statement => work(&mut session.conn, &call),
            _ => call::transaction(&mut session.conn, &call, kind, |conn| work(conn, &call)),
        };
        if let Some(overrun) = watch.finish() {
            session.retired = true;
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(self.ambiguous(format_args!(
                "no answer within {:?}{}; the call was cancelled",
                self.deadline(),
                overrun
                    .waiting
                    .map(|what| format!(" (it was waiting for {what})"))
                    .unwrap_or_default()
            )));
        }
        // An answer, a store's verdict among them, vouches for the session
        // for a moment; anything else has every session prove itself again.
        match &outcome {
            Ok(_) | Err(TxError::Store(_)) => session.answered(&self.failures),
            Err(_) => {
                self.failures.fetch_add(1, Ordering::SeqCst);
            }
        }
        outcome.map_err(|e| match e {
            TxError::Store(e) => e,
            TxError::Unconfirmed(e) => {
                session.retired = true;
                self.ambiguous(format_args!(
                    "the change committed on the primary, but the synchronous standby did not \
                     confirm it: {e}"
                ))
            }
            TxError::Db(e) => {
                let closed = matches!(
                    e,
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ClosedConnection,
                        _
                    )
                );
                if closed {
                    session.retired = true;
                }
                if kind.may_move() {
                    self.ambiguous(e)
                } else {
                    self.unavailable(e)
                }
            }
        })
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
        call: &Call,
        seq: &Described,
        generation: i64,
        size: u64,
    ) -> Result<Taken, TxError> {
        let mut steps = size.div_ceil(seq.step()).clamp(1, reserve::MAX_STEPS);
        if !seq.spec.cycle {
            // nextval() past the end fails the whole statement; ask only
            // for the steps that are left. Another caller may still get
            // there first: then the statement fails and the caller retries.
            let next = catalog::frontier(conn, seq)?
                .ok_or_else(|| TxError::Store(StoreError::Exhausted(seq.spec.name.clone())))?;
            let left = next.abs_diff(seq.spec.terminus()) / seq.step() + 1;
            steps = steps.min(left);
        }
        Ok(reserve::take(conn, call, seq, generation, steps)?)
    }
}
