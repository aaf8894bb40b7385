//! The embedded store: one SQLite file in the data directory.
//!
//! SQLite is compiled in (libsqlite3-sys's `bundled` feature), so a fresh
//! machine needs nothing installed. Every call is one `IMMEDIATE`
//! transaction: SQLite's single writer lock serialises them all, which is
//! both the atomic forward move of [`Store::reserve`] and the exclusive lock
//! of give-backs and restarts. Commits run with `synchronous = FULL`, which
//! makes SQLite fsync the write-ahead log before the commit returns: once a
//! reservation is returned, it survives a crash of the process or the
//! machine. Only one process opens a store (the data directory's lock).

use super::{
    Advanced, Created, DataDirLock, OpenError, Reserved, Restart, SequenceState, Store, StoreError,
    TxError, moves_forward, stored_spec,
};
use crate::sequence::{Block, Direction, SequenceSpec};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema, applied at start; each file pair is one step.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "pez.sqlite3";

diesel::table! {
    sequences (name) {
        name -> Text,
        ascending -> Bool,
        min_value -> BigInt,
        max_value -> BigInt,
        cycle -> Bool,
        next_value -> Nullable<BigInt>,
        start_value -> BigInt,
        mode -> Text,
        generation -> BigInt,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sequences, check_for_backend(diesel::sqlite::Sqlite))]
struct SequenceRow {
    name: String,
    ascending: bool,
    min_value: i64,
    max_value: i64,
    cycle: bool,
    next_value: Option<i64>,
    start_value: i64,
    mode: String,
    generation: i64,
}

impl From<SequenceRow> for SequenceState {
    fn from(row: SequenceRow) -> Self {
        SequenceState {
            spec: stored_spec(
                row.name,
                row.ascending,
                (row.min_value, row.max_value),
                row.start_value,
                row.cycle,
                &row.mode,
            ),
            next_value: row.next_value,
            generation: row.generation,
            continues: None,
        }
    }
}

/// Settings applied to every pooled connection.
#[derive(Debug)]
struct ConnectionSettings {
    busy_timeout: Duration,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ConnectionSettings {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // FULL: fsync the WAL at every commit, so a lease outlives a power cut.
        // busy_timeout bounds how long a lease waits for a lock held by
        // someone else (an operator's sqlite3 shell, say) before it fails.
        // busy_timeout first: the pragma after it may need a lock that a
        // migration on another connection holds.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA synchronous = FULL;",
            self.busy_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The SQLite store. Holds the data directory's lock for as long as it lives.
pub struct SqliteStore {
    pool: Pool<ConnectionManager<SqliteConnection>>,
    path: PathBuf,
    busy_timeout: Duration,
    _lock: DataDirLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the store in `dir`, takes the directory's
    /// lock and brings the schema up to date. A store whose sequences were
    /// copied elsewhere (`pez store copy`) refuses: numbers served from it
    /// would come out of both.
    pub fn open(dir: &Path, busy_timeout: Duration) -> Result<Self, OpenError> {
        let store = Self::open_even_if_moved(dir, busy_timeout)?;
        match store.moved_to() {
            Ok(None) => Ok(store),
            Ok(Some(moved)) => Err(OpenError::Moved(format!(
                "the embedded store at {} is retired: its sequences were copied to {} on {} \
                 (pez store copy); start PEZ with that database instead (PEZ_DATABASE_URL or \
                 PEZ_DB_HOST), since serving from here too would issue their numbers twice",
                store.path.display(),
                moved.destination,
                moved.moved_at
            ))),
            Err(e) => Err(OpenError::Setup(format!("{}: {e}", store.path.display()))),
        }
    }

    /// [`Self::open`], but also a store marked as moved: for `pez store
    /// copy`, which may run again (it only moves the target forward).
    pub fn open_even_if_moved(dir: &Path, busy_timeout: Duration) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| OpenError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        let lock = DataDirLock::acquire(dir).map_err(OpenError::Locked)?;
        let path = dir.join(DATABASE_FILE);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            OpenError::Setup(format!("{what} {}: {e}", path.display()))
        };

        let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
        // Two connections: leases of different sequences can be prepared at
        // once; SQLite still serialises their commits.
        let pool = Pool::builder()
            .max_size(2)
            .connection_timeout(busy_timeout + Duration::from_secs(1))
            .connection_customizer(Box::new(ConnectionSettings { busy_timeout }))
            // Failures reach the caller of the store; r2d2 need not log them too.
            .error_handler(Box::new(diesel::r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| setup("cannot open", &e))?;
        let mut conn = pool.get().map_err(|e| setup("cannot open", &e))?;
        // WAL is a property of the file, so setting it once is enough; it
        // lets `sqlite3` read the store while PEZ runs.
        conn.batch_execute("PRAGMA journal_mode = WAL;")
            .map_err(|e| setup("cannot set WAL mode on", &e))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| setup("cannot migrate", &e))?;
        drop(conn);
        Ok(Self {
            pool,
            path,
            busy_timeout,
            _lock: lock,
        })
    }

    /// Reads every sequence without taking the directory's lock, for
    /// `pez sequence list` while a server runs. WAL mode lets this read go
    /// on beside the server's writes. Changes nothing, creates nothing.
    pub fn read_unlocked(dir: &Path) -> Result<Vec<SequenceState>, StoreError> {
        let path = dir.join(DATABASE_FILE);
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "no store at {}",
                path.display()
            )));
        }
        let mut conn = SqliteConnection::establish(&format!("file:{}?mode=ro", path.display()))
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        conn.batch_execute("PRAGMA busy_timeout = 1000;")
            .map_err(unavailable)?;
        list(&mut conn)
    }

    /// Where the sequences went, if `pez store copy` moved them.
    pub fn moved_to(&self) -> Result<Option<MovedTo>, StoreError> {
        diesel::sql_query("SELECT destination, moved_at FROM moved_to WHERE id = 1")
            .get_result::<MovedTo>(&mut *self.conn()?)
            .optional()
            .map_err(unavailable)
    }

    /// Marks the store as moved to `destination` (a description without
    /// secrets): from now on a server refuses to start on it.
    pub fn mark_moved(&self, destination: &str) -> Result<(), StoreError> {
        diesel::sql_query(
            "INSERT INTO moved_to (id, destination, moved_at) \
             VALUES (1, ?, strftime('%Y-%m-%d %H:%M:%S UTC', 'now')) \
             ON CONFLICT (id) DO UPDATE SET destination = excluded.destination, \
                                           moved_at = excluded.moved_at",
        )
        .bind::<diesel::sql_types::Text, _>(destination)
        .execute(&mut *self.conn()?)
        .map_err(unavailable)?;
        Ok(())
    }

    /// Where the store's file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.path.display())))
    }
}

fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e,
            TxError::Db(e) => unavailable(e),
        }
    }
}

fn load(conn: &mut SqliteConnection, name: &str) -> Result<SequenceState, TxError> {
    sequences::table
        .find(name)
        .select(SequenceRow::as_select())
        .first(conn)
        .optional()?
        .map(SequenceState::from)
        .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))
}

fn list(conn: &mut SqliteConnection) -> Result<Vec<SequenceState>, StoreError> {
    let rows = sequences::table
        .select(SequenceRow::as_select())
        .order(sequences::name)
        .load(conn)
        .map_err(unavailable)?;
    Ok(rows.into_iter().map(SequenceState::from).collect())
}

/// Where `pez store copy` moved a store's sequences, and when.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MovedTo {
    /// The destination, described without secrets.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub destination: String,
    /// When, in UTC.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub moved_at: String,
}

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last: i64,
}

/// The next value of the store's one generation counter.
fn next_generation(conn: &mut SqliteConnection) -> Result<i64, TxError> {
    Ok(diesel::sql_query(
        "UPDATE generation_counter SET last = last + 1 WHERE id = 1 RETURNING last",
    )
    .get_result::<Counter>(conn)?
    .last)
}

/// Gives `name` a new generation: instances drop what they hold of it.
fn new_generation(conn: &mut SqliteConnection, name: &str) -> Result<(), TxError> {
    let generation = next_generation(conn)?;
    diesel::update(sequences::table.find(name))
        .set(sequences::generation.eq(generation))
        .execute(conn)?;
    Ok(())
}

fn set_next(conn: &mut SqliteConnection, name: &str, next: Option<i64>) -> Result<(), TxError> {
    diesel::update(sequences::table.find(name))
        .set(sequences::next_value.eq(next))
        .execute(conn)?;
    Ok(())
}

impl Store for SqliteStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        list(&mut *self.conn()?)
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sequences::table
            .select((sequences::name, sequences::generation))
            .load(&mut *self.conn()?)
            .map_err(unavailable)
    }

    fn reserve(&self, name: &str, generation: i64, size: u64) -> Result<Reserved, StoreError> {
        let mut conn = self.conn()?;
        // IMMEDIATE takes the write lock up front, so the read below cannot
        // go stale before the update.
        let block = conn.immediate_transaction(|conn| {
            let state = load(conn, name)?;
            if state.generation != generation {
                return Err(TxError::Store(StoreError::Stale(name.to_owned())));
            }
            let next = state
                .next_value
                .ok_or_else(|| TxError::Store(StoreError::Exhausted(name.to_owned())))?;
            let (block, after) = state.spec.cut(next, size);
            set_next(conn, name, after)?;
            Ok::<_, TxError>(block)
        })?;
        Ok(Reserved::durable(vec![block]))
    }

    fn give_back(&self, name: &str, generation: i64, unused: Block) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let taken = conn.immediate_transaction(|conn| {
            let state = load(conn, name)?;
            if state.generation != generation
                || state.next_value != state.spec.successor(unused.last)
            {
                return Ok::<_, TxError>(false);
            }
            set_next(conn, name, Some(unused.first))?;
            Ok(true)
        })?;
        Ok(taken)
    }

    fn restart(&self, name: &str, value: i64, rule: Restart) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.immediate_transaction(|conn| {
            let state = load(conn, name)?;
            super::check_restart(&state.spec, state.next_value, value, rule)?;
            set_next(conn, name, Some(value))?;
            new_generation(conn, name)?;
            Ok::<_, TxError>(())
        })?;
        Ok(())
    }

    fn advance(&self, name: &str, next: Option<i64>) -> Result<Advanced, StoreError> {
        let mut conn = self.conn()?;
        let advanced = conn.immediate_transaction(|conn| {
            let state = load(conn, name)?;
            let Some(from) = moves_forward(&state.spec, state.next_value, next)? else {
                return Ok::<_, TxError>(Advanced::AlreadyThere {
                    stands: state.next_value,
                });
            };
            set_next(conn, name, next)?;
            new_generation(conn, name)?;
            Ok(Advanced::Moved { from })
        })?;
        Ok(advanced)
    }

    fn create(&self, spec: &SequenceSpec) -> Result<Created, StoreError> {
        let mut conn = self.conn()?;
        let created = conn.immediate_transaction(|conn| match load(conn, &spec.name) {
            Ok(existing) if existing.spec.same_settings(spec) => Ok(Created::Existing),
            Ok(existing) => Err(TxError::Store(StoreError::Conflict(Box::new(
                existing.spec,
            )))),
            Err(TxError::Store(StoreError::UnknownSequence(_))) => {
                let generation = next_generation(conn)?;
                diesel::insert_into(sequences::table)
                    .values(SequenceRow {
                        name: spec.name.clone(),
                        ascending: spec.direction == Direction::Ascending,
                        min_value: spec.min,
                        max_value: spec.max,
                        cycle: spec.cycle,
                        next_value: Some(spec.start),
                        start_value: spec.start,
                        mode: spec.mode.as_str().to_owned(),
                        generation,
                    })
                    .execute(conn)?;
                Ok(Created::New)
            }
            Err(e) => Err(e),
        })?;
        Ok(created)
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.immediate_transaction(|conn| {
            let spec = load(conn, name)?.spec;
            if spec.is_builtin() {
                return Err(TxError::Store(StoreError::Builtin(name.to_owned())));
            }
            diesel::delete(sequences::table.find(name)).execute(conn)?;
            Ok(())
        })?;
        Ok(())
    }

    fn call_limit(&self) -> Duration {
        // Waiting for the pool (busy timeout + 1 s), then for the write lock
        // (busy timeout), then the fsync.
        self.busy_timeout * 2 + Duration::from_secs(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::Mode;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "pez-sqlite-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn generation(store: &SqliteStore, name: &str) -> i64 {
        store
            .generations()
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, generation)| generation)
            .unwrap_or_else(|| panic!("no sequence {name}"))
    }

    fn open(dir: &TempDir) -> SqliteStore {
        SqliteStore::open(&dir.0, Duration::from_millis(200)).unwrap()
    }

    #[test]
    fn a_fresh_store_has_forward_and_reverse_at_their_origins() {
        let dir = TempDir::new("fresh");
        let states = open(&dir).list().unwrap();
        let positions: Vec<_> = states
            .iter()
            .map(|s| (s.spec.clone(), s.next_value))
            .collect();
        assert_eq!(
            positions,
            vec![
                (SequenceSpec::forward(), Some(1)),
                (SequenceSpec::reverse(), Some(i64::MAX)),
            ]
        );
    }

    #[test]
    fn leases_follow_each_other_and_survive_reopening() {
        let dir = TempDir::new("leases");
        let store = open(&dir);
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 10)
                .unwrap()
                .blocks()[0]
                .first,
            1
        );
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 10)
                .unwrap()
                .blocks()[0]
                .first,
            11
        );
        let down = store
            .reserve("reverse", generation(&store, "reverse"), 5)
            .unwrap()
            .blocks()[0];
        assert_eq!((down.first, down.last), (i64::MAX, i64::MAX - 4));
        drop(store);
        let store = open(&dir);
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            21
        );
        assert_eq!(
            store
                .reserve("reverse", generation(&store, "reverse"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            i64::MAX - 5
        );
    }

    #[test]
    fn a_give_back_is_refused_once_the_sequence_moved_on() {
        let dir = TempDir::new("give-back");
        let store = open(&dir);
        let first = store
            .reserve("forward", generation(&store, "forward"), 10)
            .unwrap()
            .blocks()[0];
        let (_, rest) = first.split_front(4);
        let rest = rest.unwrap();
        store
            .reserve("forward", generation(&store, "forward"), 10)
            .unwrap();
        assert!(
            !store
                .give_back("forward", generation(&store, "forward"), rest)
                .unwrap()
        );
        let next = store
            .reserve("forward", generation(&store, "forward"), 1)
            .unwrap()
            .blocks()[0];
        assert_eq!(next.first, 21, "a refused give-back must leave a gap");

        let latest = store
            .reserve("forward", generation(&store, "forward"), 10)
            .unwrap()
            .blocks()[0];
        let (_, rest) = latest.split_front(3);
        assert!(
            store
                .give_back("forward", generation(&store, "forward"), rest.unwrap())
                .unwrap()
        );
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            25
        );
    }

    #[test]
    fn a_restart_outside_the_range_or_of_an_unknown_sequence_is_refused() {
        let dir = TempDir::new("restart");
        let store = open(&dir);
        assert!(matches!(
            store.restart("forward", 0, Restart::ForwardOnly),
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(matches!(
            store.restart("nope", 5, Restart::ForwardOnly),
            Err(StoreError::UnknownSequence(_))
        ));
        store
            .restart("forward", i64::MAX, Restart::ForwardOnly)
            .unwrap();
        let block = store
            .reserve("forward", generation(&store, "forward"), 100)
            .unwrap()
            .blocks()[0];
        assert_eq!((block.first, block.len()), (i64::MAX, 1));
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            1
        );
    }

    /// The durability promise rests on these two settings: WAL with
    /// synchronous=FULL fsyncs the log at every commit.
    #[test]
    fn every_connection_commits_with_fsync() {
        #[derive(QueryableByName)]
        struct Pragma {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let dir = TempDir::new("durable");
        let store = open(&dir);
        for _ in 0..3 {
            let mut conn = store.conn().unwrap();
            let read = |conn: &mut SqliteConnection, pragma: &str| {
                diesel::sql_query(format!("SELECT CAST({pragma} AS TEXT) AS value"))
                    .get_result::<Pragma>(conn)
                    .unwrap()
                    .value
            };
            // synchronous: 2 is FULL.
            assert_eq!(
                read(&mut conn, "(SELECT synchronous FROM pragma_synchronous)"),
                "2"
            );
            assert_eq!(
                read(&mut conn, "(SELECT journal_mode FROM pragma_journal_mode)"),
                "wal"
            );
        }
    }

    #[test]
    fn sequences_are_created_once_and_deleted_unless_built_in() {
        let dir = TempDir::new("create");
        let store = open(&dir);
        let spec = SequenceSpec::new(
            "orders",
            Direction::Descending,
            10,
            20,
            Some(15),
            false,
            Mode::Strict,
        )
        .unwrap();
        assert_eq!(store.create(&spec).unwrap(), Created::New);
        assert_eq!(store.create(&spec).unwrap(), Created::Existing);
        let other = SequenceSpec {
            cycle: true,
            ..spec.clone()
        };
        assert!(matches!(store.create(&other), Err(StoreError::Conflict(_))));
        let block = store
            .reserve("orders", generation(&store, "orders"), 100)
            .unwrap()
            .blocks()[0];
        assert_eq!(
            block.iter().collect::<Vec<_>>(),
            (10..=15).rev().collect::<Vec<_>>()
        );
        assert!(matches!(
            store.reserve("orders", generation(&store, "orders"), 1),
            Err(StoreError::Exhausted(_))
        ));
        let listed = store.list().unwrap();
        let orders = listed.iter().find(|s| s.spec.name == "orders").unwrap();
        assert_eq!((orders.spec.clone(), orders.next_value), (spec, None));

        assert!(matches!(
            store.delete("forward"),
            Err(StoreError::Builtin(_))
        ));
        store.delete("orders").unwrap();
        assert!(matches!(
            store.delete("orders"),
            Err(StoreError::UnknownSequence(_))
        ));
    }

    #[test]
    fn generations_never_repeat_not_even_for_a_name_created_again() {
        let dir = TempDir::new("generation");
        let store = open(&dir);
        let before = generation(&store, "forward");
        store.restart("forward", 7, Restart::ForwardOnly).unwrap();
        let after = generation(&store, "forward");
        assert!(after > before);
        let spec = SequenceSpec::new(
            "orders",
            Direction::Ascending,
            1,
            100,
            None,
            true,
            Mode::Leased,
        )
        .unwrap();
        let mut seen = vec![before, after];
        for _ in 0..3 {
            store.create(&spec).unwrap();
            let (_, generation) = store
                .generations()
                .unwrap()
                .into_iter()
                .find(|(n, _)| n == "orders")
                .unwrap();
            assert!(
                !seen.contains(&generation),
                "generation {generation} came back"
            );
            seen.push(generation);
            store.delete("orders").unwrap();
        }
    }

    #[test]
    fn what_was_reserved_under_an_old_generation_is_neither_reserved_nor_given_back() {
        let dir = TempDir::new("stale");
        let store = open(&dir);
        let old = generation(&store, "forward");
        let block = store.reserve("forward", old, 10).unwrap().blocks()[0];
        store.restart("forward", 11, Restart::ForwardOnly).unwrap();
        assert!(matches!(
            store.reserve("forward", old, 10),
            Err(StoreError::Stale(_))
        ));
        let (_, rest) = block.split_front(5);
        assert!(
            !store.give_back("forward", old, rest.unwrap()).unwrap(),
            "a block of the old generation is refused even where it would fit"
        );
        let now = generation(&store, "forward");
        assert_eq!(
            store.reserve("forward", now, 1).unwrap().blocks()[0].first,
            11
        );
    }

    #[test]
    fn a_restart_moves_forward_only_unless_asked_to_move_back() {
        let dir = TempDir::new("backward");
        let store = open(&dir);
        store
            .reserve("forward", generation(&store, "forward"), 100)
            .unwrap();
        assert!(matches!(
            store.restart("forward", 50, Restart::ForwardOnly),
            Err(StoreError::Backward {
                next: Some(101),
                ..
            })
        ));
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            101
        );
        store.restart("forward", 102, Restart::ForwardOnly).unwrap();
        store
            .restart("forward", 50, Restart::AllowBackward)
            .unwrap();
        assert_eq!(
            store
                .reserve("forward", generation(&store, "forward"), 1)
                .unwrap()
                .blocks()[0]
                .first,
            50
        );
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused() {
        let dir = TempDir::new("second");
        let _store = open(&dir);
        let err = SqliteStore::open(&dir.0, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, OpenError::Locked(_)), "{err}");
    }
}
