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
//! Around them: [`session`] (the pool's connections), [`catalog`] (what
//! PostgreSQL knows of PEZ's sequences, and the statements that move them),
//! [`startup`] (reaching the database and checking rights), [`migrate`]
//! (the schema), [`original`] (taking over the original PEZ's sequences),
//! [`instances`] (which instances are alive).

mod call;
mod catalog;
mod instances;
mod migrate;
mod original;
mod reserve;
mod session;
mod startup;
mod watchdog;

pub use catalog::SCHEMA;
pub use original::{Change, Continued};

use super::rules::{self, Consent, Restarted};
use super::{
    Advanced, Created, OpenError, Position, Reserved, SequenceState, Stamp, Store, StoreError,
    TxError,
};
use crate::config::PgSettings;
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use crate::unpoisoned;
use call::{Call, Kind};
use catalog::Described;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use log::{info, warn};
use reserve::Taken;
use session::Sessions;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use watchdog::Watchdog;

/// Transaction advisory lock that serialises creating and deleting
/// sequences, take-overs and hand-backs ("PEZCATLG"). Numbers never depend
/// on it.
const CATALOG_LOCK: i64 = 0x50455A4341544C47;

/// The numbers one nextval() of a leased sequence reserves: its INCREMENT.
pub const LEASE_STEP: u64 = 1000;

/// The smallest cycling sequence a give-back is taken for: 2^62 numbers.
/// The count of laps that proves nobody went a full lap since a lease
/// cannot be kept exactly here: `nextval()` is not undone when its
/// statement fails, but the count's update is, so a reservation that
/// handed out the origin and then failed (a lock timeout on the count's
/// row, a cancel, a crash) leaves a lap uncounted. A full lap of a sequence
/// this large between a lease and its give-back is out of reach (at a
/// billion numbers a second, 146 years); of a smaller ring it is not, and
/// its unused numbers at a stop are a gap.
pub const SMALLEST_RING_GIVEN_BACK: u64 = 1 << 62;

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
        })
    }

    fn open(settings: &PgSettings, purpose: Purpose) -> Result<(Self, Vec<Continued>), OpenError> {
        let store = Self::bare(settings, purpose)?;
        let applied = store.migrate_schema()?;
        if applied > 0 {
            info!("postgres: applied {applied} migration(s)");
        }
        let continued = if purpose == Purpose::Command {
            let waiting = store
                .call(Kind::Read, |conn| Ok(original::not_taken_over(conn)?))
                .unwrap_or_default();
            for name in waiting {
                warn!(
                    "postgres: this database holds the original PEZ's {name}, not taken over \
                     yet: a PEZ server (or pez migrate) will continue it, and what this command \
                     shows (and exports) of forward and reverse is where that server will start"
                );
            }
            Vec::new()
        } else {
            store
                .call(Kind::Change, original::take_over)
                .map_err(|e| store.failed("taking over the original PEZ's sequences", e))?
        };
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
            return Err(self.ambiguous(format_args!(
                "no answer within {:?}{}; the call was cancelled",
                self.deadline(),
                overrun
                    .waiting
                    .map(|what| format!(" (it was waiting for {what})"))
                    .unwrap_or_default()
            )));
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

/// The count of laps a move's rules judge by: at least one once any
/// `nextval()` was called since the sequence was last set, since a lap that
/// a failed reservation left uncounted must not make a used sequence look
/// untouched (see [`SMALLEST_RING_GIVEN_BACK`]).
fn laps_begun(conn: &mut PgConnection, seq: &Described) -> Result<i64, TxError> {
    let (_, called) = catalog::position(conn, &seq.relation)?;
    Ok(if called { seq.laps.max(1) } else { seq.laps })
}

/// Takes the catalog lock for the rest of the transaction.
fn catalog_lock(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(CATALOG_LOCK)
        .execute(conn)?;
    Ok(())
}

impl Store for PgStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        let looking = self.purpose == Purpose::Command;
        self.call(Kind::Read, |conn| {
            let described = catalog::describe_all(conn)?;
            let next = catalog::frontiers(conn, &described)?;
            let mut states: Vec<SequenceState> = described
                .into_iter()
                .zip(next)
                .map(|(seq, (next_value, called))| SequenceState {
                    // A lap a failed reservation left uncounted must not
                    // make a used sequence look fresh (see laps_begun).
                    laps: if called { seq.laps.max(1) } else { seq.laps },
                    spec: seq.spec,
                    next_value,
                    generation: seq.generation,
                    continues: seq.original,
                })
                .collect();
            if looking {
                // Where a server will start forward and reverse once it
                // takes the original's over: past both.
                for pending in original::pending(conn)? {
                    if let Some(state) = states.iter_mut().find(|s| s.spec.name == pending.name) {
                        state.next_value = Some(pending.next);
                        state.continues = Some(format!("{} (not yet)", pending.original));
                    }
                }
            }
            Ok(states)
        })
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.call(Kind::Read, |conn| {
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
        let outcome = self.call_with(Kind::Statement, |conn, call| {
            let seq = self.described(conn, name)?;
            match self.take(conn, call, &seq, generation, size)? {
                // The cached oid may be an incarnation dropped since; if the
                // one there now is the caller's generation (generations never
                // repeat), the caller knows it: take from it.
                Taken::Stale => {
                    self.forget(name);
                    let fresh = self.described(conn, name)?;
                    if fresh.generation != generation || fresh.oid == seq.oid {
                        return Ok((Taken::Stale, fresh));
                    }
                    Ok((self.take(conn, call, &fresh, generation, size)?, fresh))
                }
                taken => Ok((taken, seq)),
            }
        });
        match outcome {
            Ok((Taken::Blocks(blocks, laps), _)) => Ok(Reserved::durable(blocks, laps)),
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

    fn give_back(&self, name: &str, stamp: Stamp, unused: Block) -> Result<bool, StoreError> {
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            if !self.gives_back(&seq.spec) {
                return Ok(false);
            }
            let stands = catalog::frontier(conn, &seq)?;
            crate::failpoint::hit(crate::failpoint::points::GIVE_BACK_CHECKED, name);
            // A block of another generation, or of an incarnation deleted
            // since, may fit where this one stands by coincidence (a fresh
            // sequence's blocks fall on the same grid); a full lap since
            // puts a small ring back where it stood: never taken.
            if seq.generation != stamp.generation
                || seq.laps != stamp.laps
                || stands != seq.spec.successor(unused.last)
            {
                return Ok(false);
            }
            catalog::set_next(conn, &seq.relation, unused.first)?;
            Ok(true)
        })
    }

    fn restart(&self, name: &str, value: i64, consent: Consent) -> Result<(), StoreError> {
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            let laps = laps_begun(conn, &seq)?;
            let restarted = rules::check_restart(&seq.spec, stands, laps, value, consent)?;
            // Rolls back with the transaction: lock_exclusively rewrote the
            // sequence's storage in it.
            catalog::set_next(conn, &seq.relation, value)?;
            if restarted == Restarted::Backward {
                catalog::begin_lap(conn, name)?;
            }
            catalog::new_generation(conn, name)?;
            Ok(())
        })
    }

    fn advance(&self, name: &str, to: Position, consent: Consent) -> Result<Advanced, StoreError> {
        let next = to.next;
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            let state = SequenceState {
                spec: seq.spec.clone(),
                next_value: stands,
                generation: seq.generation,
                laps: laps_begun(conn, &seq)?,
                continues: None,
            };
            // Judged by this store's own laps: moving to the list's
            // position skips nothing of the list's history. The list's
            // laps count from here on.
            if to.laps > seq.laps {
                catalog::raise_laps(conn, name, to.laps)?;
            }
            let Some(from) = rules::moves_forward(&state, next, consent)? else {
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

    fn create(&self, spec: &SequenceSpec, at: Position) -> Result<Created, StoreError> {
        self.call(Kind::Change, |conn| {
            catalog_lock(conn)?;
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
                "INSERT INTO pez.sequences (name, mode, start_value, laps) VALUES ($1, $2, $3, $4)",
            )
            .bind::<Text, _>(&spec.name)
            .bind::<Text, _>(spec.mode.as_str())
            .bind::<BigInt, _>(spec.start)
            .bind::<BigInt, _>(at.laps)
            .execute(conn)?;
            let next = at.next;
            // Where an import lists it: in this same transaction, so nobody
            // sees it standing at its start first.
            if next != Some(spec.start) {
                let created = catalog::describe(conn, &spec.name)?.ok_or_else(|| {
                    TxError::Store(StoreError::UnknownSequence(spec.name.clone()))
                })?;
                match next {
                    Some(value) => catalog::set_next(conn, &created.relation, value)?,
                    None => catalog::set_exhausted(conn, &created)?,
                }
            }
            Ok(Created::New)
        })
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let deleted = self.call(Kind::Change, |conn| {
            catalog_lock(conn)?;
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

    fn gives_back(&self, spec: &SequenceSpec) -> bool {
        !spec.cycle || spec.size() >= SMALLEST_RING_GIVEN_BACK
    }

    fn most_per_reservation(&self, spec: &SequenceSpec) -> u64 {
        let step = match spec.mode {
            Mode::Leased => LEASE_STEP,
            Mode::Strict => 1,
        };
        (reserve::MAX_STEPS * step).min(spec.size())
    }

    fn heartbeat(&self, instance: &str, for_at_least: Duration) -> Result<(), StoreError> {
        self.call(Kind::Bookkeeping, |conn| {
            Ok(instances::heartbeat(conn, instance, for_at_least)?)
        })
    }

    fn farewell(&self, instance: &str) -> Result<(), StoreError> {
        self.call(Kind::Bookkeeping, |conn| {
            Ok(instances::farewell(conn, instance)?)
        })
    }
}
