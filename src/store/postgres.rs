//! The PostgreSQL store: many PEZ instances on one database.
//!
//! Each PEZ sequence is a native PostgreSQL sequence in the schema `pez`
//! whose INCREMENT is its lease step (1,000 for `forward`, -1,000 for
//! `reverse`). One `nextval()` leases one step: the block of |increment|
//! numbers starting at the value it returns, cut at the end of the range.
//! A lease of more numbers calls nextval several times in one statement.
//! PostgreSQL's sequence stays the single source of truth: it is atomic
//! across every instance, survives restarts, and wraps (CYCLE) exactly
//! where PEZ's arithmetic says it does.
//!
//! Two details carry the "never a duplicate" promise:
//!
//! - **Durable commit.** `nextval()` alone does not assign a transaction id,
//!   and PostgreSQL commits such transactions *asynchronously*: the WAL
//!   record of the sequence advance may not be flushed (or on a synchronous
//!   standby) when the client sees the value, so a crash or failover right
//!   after could hand the same values out again. Every lease therefore runs
//!   in a transaction that first calls `txid_current()`; its COMMIT is then
//!   flushed, and waits for synchronous standbys, before PEZ serves a
//!   number. Sessions also raise `synchronous_commit` to `on` when it was
//!   set lower.
//! - **Give-backs under a lock.** Leases, give-backs and restarts of a
//!   sequence take a transaction-scoped advisory lock on it, so "nobody
//!   leased since" can be checked and acted on atomically.

use super::{Created, OpenError, SequenceState, Store, StoreError, TxError, stored_spec};
use crate::config::PgSettings;
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use log::{info, warn};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The schema, applied at start (or by `pez migrate`).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The schema PEZ's sequences live in.
pub const SCHEMA: &str = "pez";

/// Transaction advisory lock that serialises creating and deleting
/// sequences ("PEZCATLG").
const CATALOG_LOCK: i64 = 0x50455A4341544C47;

/// Session advisory lock that serialises migrations of instances starting
/// at the same moment ("PEZMIGRT").
const MIGRATION_LOCK: i64 = 0x50455A4D49475254;

/// High half of the advisory lock key of a sequence ("PEZ\0"); the low half
/// is the sequence's oid, unique within the database.
const SEQUENCE_LOCK_CLASS: i64 = 0x50455A00;

/// At most this many nextval() calls per lease (a million numbers in
/// steps of 1,000).
const MAX_STEPS_PER_LEASE: u64 = 1000;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
    settings: PgSettings,
    /// Recently read descriptions, so a strict take is one statement.
    described: Mutex<HashMap<String, (Instant, Described)>>,
}

/// How long a cached description is trusted. A sequence deleted and made
/// again with other settings elsewhere is seen within this.
const DESCRIBED_FOR: Duration = Duration::from_secs(1);

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.settings.description)
            .finish()
    }
}

/// Session settings for every pooled connection.
#[derive(Debug)]
struct SessionSettings {
    timeout: Duration,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        let ms = self.timeout.as_millis();
        // Bounds every statement and lock wait, so a stuck database turns
        // into a failed lease (and a retry), not a stuck leaser.
        conn.batch_execute(&format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
             SET idle_in_transaction_session_timeout = {};",
            ms * 10
        ))
        .map_err(diesel::r2d2::Error::QueryError)?;
        let commit = diesel::sql_query("SELECT current_setting('synchronous_commit') AS value")
            .get_result::<Setting>(conn)
            .map_err(diesel::r2d2::Error::QueryError)?;
        // off, local and remote_write could acknowledge a lease that a crash
        // or a failover then loses; on and remote_apply cannot.
        if matches!(commit.value.as_str(), "off" | "local" | "remote_write") {
            conn.batch_execute("SET synchronous_commit = on")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The numbers one nextval() of a leased sequence leases: its INCREMENT.
pub const LEASE_STEP: u64 = 1000;

/// A PEZ sequence as PostgreSQL describes it.
#[derive(Debug, Clone)]
struct Described {
    spec: SequenceSpec,
    /// |increment|: the numbers one nextval() leases.
    step: u64,
    generation: i64,
}

/// The catalog's view of a sequence (pg_sequences) joined with PEZ's own
/// (pez.sequences).
const CATALOG: &str = "SELECT m.name, s.increment_by, s.min_value, s.max_value, s.cycle, \
     m.mode, m.start_value, m.generation \
     FROM pez.sequences m JOIN pg_sequences s ON s.schemaname = 'pez' AND s.sequencename = m.name";

#[derive(QueryableByName)]
struct CatalogRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    increment_by: i64,
    #[diesel(sql_type = BigInt)]
    min_value: i64,
    #[diesel(sql_type = BigInt)]
    max_value: i64,
    #[diesel(sql_type = Bool)]
    cycle: bool,
    #[diesel(sql_type = Text)]
    mode: String,
    #[diesel(sql_type = BigInt)]
    start_value: i64,
    #[diesel(sql_type = BigInt)]
    generation: i64,
}

impl From<CatalogRow> for Described {
    fn from(row: CatalogRow) -> Self {
        Described {
            spec: stored_spec(
                row.name,
                row.increment_by > 0,
                (row.min_value, row.max_value),
                row.start_value,
                row.cycle,
                &row.mode,
            ),
            step: row.increment_by.unsigned_abs().max(1),
            generation: row.generation,
        }
    }
}

#[derive(QueryableByName)]
struct Generation {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    generation: i64,
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    last_value: i64,
    #[diesel(sql_type = Bool)]
    is_called: bool,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct XidValue {
    #[allow(dead_code)]
    #[diesel(sql_type = BigInt)]
    xid: i64,
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// `pez."name"`, safe to splice into SQL: names are validated, and quotes
/// are doubled anyway.
fn qualified(name: &str) -> String {
    format!("{SCHEMA}.\"{}\"", name.replace('"', "\"\""))
}

impl PgStore {
    /// Connects (retrying a database that is not up yet for the startup
    /// timeout, failing at once on a wrong password or an unknown
    /// database), brings the schema up to date unless `migrate` is false,
    /// and builds the pool.
    pub fn connect(settings: &PgSettings, migrate: bool) -> Result<Self, OpenError> {
        let mut conn = establish_at_start(settings)?;
        if migrate {
            let applied = run_migrations(&mut conn, settings)?;
            if applied > 0 {
                info!("postgres: applied {applied} migration(s)");
            }
        }
        drop(conn);
        let manager = ConnectionManager::<PgConnection>::new(settings.conninfo.expose());
        let pool = Pool::builder()
            .max_size(settings.pool_size)
            // No background connecting: a connection opened by r2d2's thread while
            // the process exits can crash inside libpq's TLS teardown.
            .min_idle(Some(0))
            .connection_timeout(settings.timeout)
            // Outages are logged once by the leaser, not per pool retry.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .connection_customizer(Box::new(SessionSettings {
                timeout: settings.timeout,
            }))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            settings: settings.clone(),
            described: Mutex::new(HashMap::new()),
        })
    }

    /// `name`'s description, from the cache when fresh.
    fn described(&self, conn: &mut PgConnection, name: &str) -> Result<Described, StoreError> {
        let mut cache = self.described.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, described)) = cache.get(name)
            && at.elapsed() < DESCRIBED_FOR
        {
            return Ok(described.clone());
        }
        let described = describe(conn, name)
            .map_err(|e| self.unavailable(e))?
            .ok_or_else(|| StoreError::UnknownSequence(name.to_owned()))?;
        cache.insert(name.to_owned(), (Instant::now(), described.clone()));
        Ok(described)
    }

    /// Applies pending migrations and reports how many; for `pez migrate`.
    pub fn migrate(settings: &PgSettings) -> Result<usize, OpenError> {
        let mut conn = establish_at_start(settings)?;
        run_migrations(&mut conn, settings)
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager<PgConnection>>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(self.settings.scrub(&format!("postgres: {e}"))))
    }

    fn unavailable(&self, e: diesel::result::Error) -> StoreError {
        StoreError::Unavailable(self.settings.scrub(&format!("postgres: {e}")))
    }

    /// Runs `work` in a transaction whose commit is durable (see the
    /// module docs), holding `name`'s advisory lock when `lock` is true.
    fn transaction<T>(
        &self,
        name: &str,
        lock: bool,
        work: impl FnOnce(&mut PgConnection, &Described) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let described = describe(conn, name)?
                .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))?;
            if lock {
                diesel::sql_query(
                    "SELECT txid_current(), \
                     pg_advisory_xact_lock(($1::bigint << 32) | $2::regclass::oid::bigint)",
                )
                .bind::<BigInt, _>(SEQUENCE_LOCK_CLASS)
                .bind::<Text, _>(qualified(name))
                .execute(conn)?;
            } else {
                diesel::sql_query("SELECT txid_current()").execute(conn)?;
            }
            work(conn, &described)
        })
        .map_err(|e| self.tx_error(e, name))
    }

    fn tx_error(&self, e: TxError, name: &str) -> StoreError {
        match e {
            TxError::Store(e) => e,
            // A non-cycling sequence at its end: nextval() says so.
            TxError::Db(e) if e.to_string().contains("reached m") => {
                StoreError::Exhausted(name.to_owned())
            }
            TxError::Db(e) => self.unavailable(e),
        }
    }

    /// Runs `work` in a transaction holding the catalog lock: creating and
    /// deleting sequences, one at a time across all instances.
    fn catalog<T>(
        &self,
        name: &str,
        work: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(CATALOG_LOCK)
                .execute(conn)?;
            work(conn)
        })
        .map_err(|e| self.tx_error(e, name))
    }
}

fn describe(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Described>, diesel::result::Error> {
    Ok(diesel::sql_query(format!("{CATALOG} WHERE m.name = $1"))
        .bind::<Text, _>(name)
        .get_result::<CatalogRow>(conn)
        .optional()?
        .map(Described::from))
}

/// The first number of the next lease: where the sequence stands.
fn frontier(
    conn: &mut PgConnection,
    seq: &Described,
) -> Result<Option<i64>, diesel::result::Error> {
    let position = diesel::sql_query(format!(
        "SELECT last_value, is_called FROM {}",
        qualified(&seq.spec.name)
    ))
    .get_result::<Position>(conn)?;
    Ok(if position.is_called {
        let (block, _) = seq.spec.cut(position.last_value, seq.step);
        seq.spec.successor(block.last)
    } else {
        Some(position.last_value)
    })
}

/// Joins runs that follow each other without a wrap into one block.
fn join_runs(blocks: impl IntoIterator<Item = Block>) -> Vec<Block> {
    let mut runs: Vec<Block> = Vec::new();
    for block in blocks {
        match runs
            .last_mut()
            .and_then(|last| last.join(block).map(|joined| (last, joined)))
        {
            Some((last, joined)) => *last = joined,
            None => runs.push(block),
        }
    }
    runs
}

impl Store for PgStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        let mut conn = self.conn()?;
        let rows = diesel::sql_query(format!("{CATALOG} ORDER BY m.name"))
            .load::<CatalogRow>(&mut *conn)
            .map_err(|e| self.unavailable(e))?;
        rows.into_iter()
            .map(|row| {
                let described = Described::from(row);
                let next_value =
                    frontier(&mut conn, &described).map_err(|e| self.unavailable(e))?;
                Ok(SequenceState {
                    spec: described.spec,
                    next_value,
                    generation: described.generation,
                })
            })
            .collect()
    }

    fn lease(&self, name: &str, size: u64) -> Result<Vec<Block>, StoreError> {
        self.transaction(name, true, |conn, seq| next_values(conn, seq, size))
    }

    fn take(&self, name: &str, count: u64) -> Result<Vec<Block>, StoreError> {
        let mut conn = self.conn()?;
        let seq = self.described(&mut conn, name)?;
        if !seq.spec.cycle {
            // Needs to know how much is left first: the general path.
            drop(conn);
            return self.transaction(name, false, |conn, seq| next_values(conn, seq, count));
        }
        // One statement, no lock (nextval() is atomic and strict sequences
        // never give back). txid_current() gives it a transaction id, so its
        // commit is flushed (and on synchronous standbys) before it returns.
        let steps = count.div_ceil(seq.step).clamp(1, MAX_STEPS_PER_LEASE);
        let values = diesel::sql_query(
            "SELECT txid_current() AS xid, nextval($1::regclass) AS value \
             FROM generate_series(1, $2)",
        )
        .bind::<Text, _>(qualified(name))
        .bind::<BigInt, _>(steps as i64)
        .load::<XidValue>(&mut *conn)
        .map_err(|e| {
            self.described
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
            match e.to_string() {
                text if text.contains("does not exist") => {
                    StoreError::UnknownSequence(name.to_owned())
                }
                _ => self.unavailable(e),
            }
        })?;
        Ok(join_runs(
            values
                .into_iter()
                .map(|v| seq.spec.cut(v.value, seq.step).0),
        ))
    }

    fn give_back(&self, name: &str, unused: Block) -> Result<bool, StoreError> {
        self.transaction(name, true, |conn, seq| {
            let stands = frontier(conn, seq)?;
            if stands != seq.spec.successor(unused.last) {
                return Ok(false);
            }
            set_next(conn, name, unused.first)?;
            Ok(true)
        })
    }

    fn restart(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.transaction(name, true, |conn, seq| {
            if !seq.spec.contains(value) {
                return Err(TxError::Store(StoreError::OutOfRange {
                    name: name.to_owned(),
                    value,
                    min: seq.spec.min,
                    max: seq.spec.max,
                }));
            }
            set_next(conn, name, value)?;
            diesel::sql_query(
                "UPDATE pez.sequences SET generation = generation + 1 WHERE name = $1",
            )
            .bind::<Text, _>(name)
            .execute(conn)?;
            Ok(())
        })
    }

    fn create(&self, spec: &SequenceSpec) -> Result<Created, StoreError> {
        self.catalog(&spec.name, |conn| {
            if let Some(existing) = describe(conn, &spec.name)? {
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
                qualified(&spec.name),
                spec.min,
                spec.max,
                spec.start,
                if spec.cycle { "CYCLE" } else { "NO CYCLE" }
            ))
            .execute(conn)?;
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
        self.catalog(name, |conn| {
            let spec = describe(conn, name)?
                .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))?
                .spec;
            if spec.is_builtin() {
                return Err(TxError::Store(StoreError::Builtin(name.to_owned())));
            }
            diesel::sql_query("DELETE FROM pez.sequences WHERE name = $1")
                .bind::<Text, _>(name)
                .execute(conn)?;
            diesel::sql_query(format!("DROP SEQUENCE {}", qualified(name))).execute(conn)?;
            Ok(())
        })
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = diesel::sql_query("SELECT name, generation FROM pez.sequences")
            .load::<Generation>(&mut *self.conn()?)
            .map_err(|e| self.unavailable(e))?;
        Ok(rows
            .into_iter()
            .map(|row| (row.name, row.generation))
            .collect())
    }
}

/// Calls nextval() as often as it takes to cover `size` numbers (at least
/// once, at most [`MAX_STEPS_PER_LEASE`] times) and returns the blocks.
fn next_values(conn: &mut PgConnection, seq: &Described, size: u64) -> Result<Vec<Block>, TxError> {
    let mut steps = size.div_ceil(seq.step).clamp(1, MAX_STEPS_PER_LEASE);
    if !seq.spec.cycle {
        // nextval() past the end fails the whole statement; ask only for
        // the steps that are left.
        let next = frontier(conn, seq)?
            .ok_or_else(|| TxError::Store(StoreError::Exhausted(seq.spec.name.clone())))?;
        let left = next.abs_diff(seq.spec.terminus()) / seq.step + 1;
        steps = steps.min(left);
    }
    let values =
        diesel::sql_query("SELECT nextval($1::regclass) AS value FROM generate_series(1, $2)")
            .bind::<Text, _>(qualified(&seq.spec.name))
            .bind::<BigInt, _>(steps as i64)
            .load::<Value>(conn)?;
    Ok(join_runs(
        values
            .into_iter()
            .map(|v| seq.spec.cut(v.value, seq.step).0),
    ))
}

/// Makes `value` the value the next nextval() returns.
fn set_next(conn: &mut PgConnection, name: &str, value: i64) -> Result<(), TxError> {
    diesel::sql_query("SELECT setval($1::regclass, $2, false)")
        .bind::<Text, _>(qualified(name))
        .bind::<BigInt, _>(value)
        .execute(conn)?;
    Ok(())
}

/// Connects for the first time. A database that refuses us for good (bad
/// password, unknown database or role, TLS the server cannot do) fails at
/// once; anything else (not up yet, starting up, unreachable) is retried
/// until the startup timeout.
fn establish_at_start(settings: &PgSettings) -> Result<PgConnection, OpenError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match PgConnection::establish(settings.conninfo.expose()) {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                let message = one_line(&settings.scrub(&e.to_string()));
                let refused_for_good = PERMANENT_FAILURES.iter().any(|p| message.contains(p));
                let waited = started.elapsed();
                if refused_for_good || waited >= settings.startup_timeout {
                    return Err(OpenError::Setup(format!(
                        "cannot connect to PostgreSQL at {}: {message}",
                        settings.description
                    )));
                }
                if !warned {
                    warn!(
                        "PostgreSQL at {} is not reachable yet, retrying for up to {:?}: {message}",
                        settings.description, settings.startup_timeout
                    );
                    warned = true;
                }
                std::thread::sleep(pause.min(settings.startup_timeout - waited));
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// libpq messages that retrying will not fix.
const PERMANENT_FAILURES: &[&str] = &[
    "password authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "does not exist",
    "SSL",
    "certificate",
    "invalid connection option",
    "invalid sslmode",
    "invalid URI",
    "invalid integer value",
];

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Applies pending migrations under a session advisory lock, so instances
/// that start at the same moment migrate one after the other (the later
/// ones find nothing to do). When nothing is pending, no DDL runs at all:
/// services whose database user may not change the schema start fine once
/// an operator has run `pez migrate`.
fn run_migrations(conn: &mut PgConnection, settings: &PgSettings) -> Result<usize, OpenError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        OpenError::Setup(settings.scrub(&format!("postgres {}: {what}: {e}", settings.description)))
    };
    if pending(conn).map_err(|e| fail("cannot read the schema version", &e))? == 0 {
        return Ok(0);
    }
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)
        .map_err(|e| fail("cannot take the migration lock", &e))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|done| done.len());
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn);
    applied.map_err(|e| {
        fail(
            "the schema is not up to date and migrating failed (run `pez migrate` as a user that may create schemas and sequences)",
            &e,
        )
    })
}

/// How many embedded migrations the database has not applied, read
/// without DDL.
fn pending(conn: &mut PgConnection) -> Result<usize, diesel::result::Error> {
    let exists = diesel::sql_query(
        "SELECT (to_regclass('__diesel_schema_migrations') IS NOT NULL)::text AS value",
    )
    .get_result::<Setting>(conn)?;
    let applied: Vec<String> = if exists.value == "true" {
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect()
    } else {
        Vec::new()
    };
    let embedded = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(diesel::result::Error::QueryBuilderError)?;
    Ok(embedded
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_steps_join_and_a_wrap_splits() {
        let forward = SequenceSpec::forward();
        let runs = join_runs(
            [i64::MAX - 1999, i64::MAX - 999, 1, 1001]
                .into_iter()
                .map(|v| forward.cut(v, 1000).0),
        );
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].first, runs[0].last), (i64::MAX - 1999, i64::MAX));
        assert_eq!((runs[1].first, runs[1].last), (1, 2000));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(qualified("forward"), "pez.\"forward\"");
        assert_eq!(qualified("a\"b"), "pez.\"a\"\"b\"");
    }

    #[test]
    fn error_text_is_folded_to_one_line() {
        assert_eq!(one_line("a\n  b\n\n"), "a; b");
    }
}
