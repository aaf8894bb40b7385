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

mod rows;

use super::rules::{self, Consent, Restarted};
use super::{
    Advanced, Created, DataDirLock, LockError, OpenError, Position, Reserved, SequenceState, Stamp,
    Store, StoreError, TxError,
};
use crate::durable;
use crate::sequence::{Block, SequenceSpec};
use crate::trusted;
use crate::unpoisoned;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use rows::unavailable;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The schema, applied at start; each file pair is one step.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The database file's name inside the data directory.
pub const DATABASE_FILE: &str = "pez.sqlite3";

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
    /// Set by a call that failed with a disk I/O error: nothing is read or
    /// written until [`write_out`] has made the disk hold the store again.
    disk_failed: AtomicBool,
    /// One write-out at a time.
    writing_out: Mutex<()>,
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
                "the embedded store at {} is retired: {}; serving from here too would issue \
                 their numbers twice",
                store.path.display(),
                moved.what_to_do(),
            ))),
            Err(e) => Err(OpenError::Setup(format!("{}: {e}", store.path.display()))),
        }
    }

    /// [`Self::open`], but also a store marked as moved: for `pez store
    /// copy`, which may run again (it only moves the target forward).
    pub fn open_even_if_moved(dir: &Path, busy_timeout: Duration) -> Result<Self, OpenError> {
        let untrusted = |e: trusted::Untrusted| OpenError::Setup(e.to_string());
        trusted::private_dir("the data directory", dir).map_err(untrusted)?;
        let lock = DataDirLock::acquire(dir).map_err(|e| match e {
            // Not another PEZ: a file no PEZ made.
            LockError::Untrusted(why) => untrusted(why),
            held => OpenError::Locked(held),
        })?;
        let path = dir.join(DATABASE_FILE);
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            OpenError::Setup(format!("{what} {}: {e}", path.display()))
        };
        // SQLite follows a link at the database's name (diesel cannot pass
        // it SQLITE_OPEN_NOFOLLOW, and no URI parameter sets that), and
        // makes the database with the umask's mode. Made here first, 0600
        // and never through a link, it is SQLite's to open; SQLite gives
        // the WAL, the shared memory and the journal the database's mode,
        // and opens them with O_NOFOLLOW itself: the checks of those say
        // in one line what SQLite would only call "unable to open".
        drop(trusted::private_file("the database file", &path).map_err(untrusted)?);
        // The database file's name (and the lock file's) durable before
        // anything is served from it: SQLite fsyncs the directory for the
        // WAL it makes, not for the database file PEZ made just now.
        durable::sync_dir(dir).map_err(|e| setup("cannot fsync the directory of", &e))?;
        // And the directory's own name, and those above it, which whoever
        // made them (systemd's StateDirectory=, the package's install -d,
        // an operator's mkdir -p, a PEZ that crashed before its fsync) may
        // never have made durable.
        durable::sync_ancestors(dir)
            .map_err(|e| setup("cannot fsync the directories above", &e))?;
        // Whether the last process left anything to write out (see
        // `write_out`): a log that is not empty (it crashed: a clean close
        // checkpoints and deletes the log), or the mark of a disk error.
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let crashed = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
        let marked = dir.join(DISK_ERROR_MARK).exists();
        for companion in ["-wal", "-shm", "-journal"] {
            let mut name = path.clone().into_os_string();
            name.push(companion);
            trusted::not_a_link("the database file", Path::new(&name)).map_err(untrusted)?;
        }

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
        // A process that crashed after a disk error may have left a log
        // that reads well from the page cache but is not on the disk. If
        // the write-out cannot finish now (a reader holds the log, the disk
        // fails), the store opens all the same and serves nothing until it
        // has: a `pez sequence list` must never keep a server from starting.
        let written_out = if crashed || marked {
            write_out(&mut conn, &path).and_then(|()| unmark_disk_error(dir))
        } else {
            Ok(())
        };
        if let Err(why) = &written_out {
            log::warn!(
                "{}: not written out at start ({why}); nothing is served from it until it is",
                path.display()
            );
        }
        drop(conn);
        Ok(Self {
            pool,
            path,
            busy_timeout,
            disk_failed: AtomicBool::new(written_out.is_err()),
            writing_out: Mutex::new(()),
            _lock: lock,
        })
    }

    /// Reads every sequence without taking the directory's lock, for
    /// `pez sequence list` while a server runs. WAL mode lets this read go
    /// on beside the server's writes. Changes nothing, creates nothing.
    pub fn read_unlocked(dir: &Path) -> Result<Vec<SequenceState>, StoreError> {
        rows::list(&mut Self::read_only(dir)?)
    }

    /// [`Self::moved_to`], read without the directory's lock.
    pub fn moved_to_unlocked(dir: &Path) -> Result<Option<MovedTo>, StoreError> {
        moved_to(&mut Self::read_only(dir)?)
    }

    /// A read-only connection to the store's file, if there is one.
    fn read_only(dir: &Path) -> Result<SqliteConnection, StoreError> {
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
        Ok(conn)
    }

    /// Where the sequences went, if `pez store copy` moved them.
    pub fn moved_to(&self) -> Result<Option<MovedTo>, StoreError> {
        self.reading(moved_to)
    }

    /// Marks the store as moving to `destination` (a description without
    /// secrets), before anything moves: from now on a server refuses to
    /// start on it. Until [`Self::mark_copied`], the refusal says the copy
    /// did not finish.
    pub fn mark_moved(&self, destination: &str) -> Result<(), StoreError> {
        self.writing(|conn| {
            diesel::sql_query(
                "INSERT INTO moved_to (id, destination, moved_at, finished_at) \
             VALUES (1, ?, strftime('%Y-%m-%d %H:%M:%S UTC', 'now'), NULL) \
             ON CONFLICT (id) DO UPDATE SET destination = excluded.destination, \
                                           moved_at = excluded.moved_at, \
                                           finished_at = NULL",
            )
            .bind::<diesel::sql_types::Text, _>(destination)
            .execute(conn)
            .map_err(unavailable)
        })?;
        Ok(())
    }

    /// Records that every sequence reached the destination of
    /// [`Self::mark_moved`]: PEZ may now be started there.
    pub fn mark_copied(&self) -> Result<(), StoreError> {
        self.writing(|conn| {
            diesel::sql_query(
                "UPDATE moved_to SET finished_at = strftime('%Y-%m-%d %H:%M:%S UTC', 'now') \
                 WHERE id = 1",
            )
            .execute(conn)
            .map_err(unavailable)
        })?;
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

    /// Runs `call`, which only reads, on a pooled connection. A read
    /// serves no number, so it needs no write-out first (a server reads
    /// its sequences at start, before the write-out can finish when a
    /// reader holds the log); a disk I/O error still stops the writes
    /// after it.
    fn reading<T>(
        &self,
        call: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.watched(self.conn())?;
        self.watched(call(&mut conn))
    }

    /// Runs `call`, which may write, on a pooled connection, once the
    /// store is written out (see [`write_out`]) if a disk I/O error, or a
    /// crash before this start, left that to do. One write call at a time
    /// (SQLite has one writer anyway): a call that passed the check cannot
    /// commit beside the one whose disk error sets it.
    fn writing<T>(
        &self,
        call: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _one_writer = unpoisoned::lock(&self.writing_out);
        let mut conn = self.watched(self.conn())?;
        if self.disk_failed.load(Ordering::Acquire) {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            write_out(&mut conn, &self.path)
                .and_then(|()| unmark_disk_error(dir))
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "{}: not written out again yet after a disk error or a crash: {e}",
                        self.path.display()
                    ))
                })?;
            self.disk_failed.store(false, Ordering::Release);
            log::warn!(
                "{}: written out again; serving from it",
                self.path.display()
            );
        }
        self.watched(call(&mut conn))
    }

    /// Notes a disk I/O error in `result`: no write until a write-out, in
    /// this process (the flag) and the next (a mark in the data directory,
    /// for a graceful stop whose last checkpoint deletes the log).
    fn watched<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(why)) = &result
            && why.contains(DISK_IO_ERROR)
            && !self.disk_failed.swap(true, Ordering::AcqRel)
        {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            if let Err(e) = mark_disk_error(dir) {
                // The disk that failed may refuse the mark too: this
                // process still writes out before its next write, and a
                // crash leaves a log that the next start writes out.
                log::warn!("{}: cannot record the disk error: {e}", self.path.display());
            }
        }
        result
    }
}

/// The file whose presence says a disk error happened and the store was not
/// written out since.
const DISK_ERROR_MARK: &str = "pez.disk-error";

fn mark_disk_error(dir: &Path) -> Result<(), String> {
    let file = trusted::private_file("the disk error mark", &dir.join(DISK_ERROR_MARK))
        .map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    durable::sync_dir(dir).map_err(|e| e.to_string())
}

fn unmark_disk_error(dir: &Path) -> Result<(), String> {
    match std::fs::remove_file(dir.join(DISK_ERROR_MARK)) {
        Ok(()) => durable::sync_dir(dir).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// SQLite's message for every SQLITE_IOERR (a failed read, write, fsync,
/// truncate...): diesel passes on the message, not the code.
const DISK_IO_ERROR: &str = "disk I/O error";

/// Makes what is on the disk the store as SQLite reads it, before anything
/// is served from it again after a disk error, and at every open.
///
/// Linux reports a failed write-back once (fsync fails with EIO) and then
/// marks the pages clean: the data stays readable from the page cache but
/// is never written again, so a later fsync succeeds without it
/// ("fsyncgate"; PostgreSQL panics on a failed fsync for this reason).
/// SQLite reads its files back through that cache, so the commits after a
/// failed one can rest on pages that are not on the disk; their own fsyncs
/// succeed, PEZ serves their blocks, and a power cut takes them all. On
/// cutfs (`fsync-eio`) a store came back at 201 after serving up to 1600
/// (tests/api/power_cut.rs), and `make power-cut` found one 24,000
/// numbers behind. A restart alone does not help: the next start reads
/// the same cache. So: rewrite every page (`VACUUM`, which also covers a
/// checkpoint's copies into the database file that the failed fsync
/// dropped, and that no later checkpoint copies again), copy the log into
/// the database file and fsync it (`wal_checkpoint(TRUNCATE)`, which must
/// complete), and make the emptied log durable too. Afterwards the disk
/// holds exactly what SQLite reads. The store is a few pages: this takes
/// milliseconds.
fn write_out(conn: &mut SqliteConnection, path: &Path) -> Result<(), String> {
    #[derive(QueryableByName)]
    struct Checkpoint {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        busy: i32,
    }
    conn.batch_execute("VACUUM")
        .map_err(|e| format!("VACUUM: {e}"))?;
    let checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
        .get_result::<Checkpoint>(conn)
        .map_err(|e| format!("checkpoint: {e}"))?;
    if checkpoint.busy != 0 {
        return Err("checkpoint: a reader holds the log (a sqlite3 shell?)".to_owned());
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::File::open(&wal) {
        Ok(file) => file
            .sync_all()
            .map_err(|e| format!("fsync of the log: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("the log: {e}")),
    }
    Ok(())
}

fn moved_to(conn: &mut SqliteConnection) -> Result<Option<MovedTo>, StoreError> {
    diesel::sql_query("SELECT destination, moved_at, finished_at FROM moved_to WHERE id = 1")
        .get_result::<MovedTo>(conn)
        .optional()
        .map_err(unavailable)
}

/// Where `pez store copy` moved a store's sequences, and when.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MovedTo {
    /// The destination, described without secrets.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub destination: String,
    /// When the copy began, in UTC.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub moved_at: String,
    /// When it finished, in UTC; `None` while it has not (it was cut
    /// short, or a release before this one made it).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub finished_at: Option<String>,
}

impl MovedTo {
    /// Where the sequences are and what the operator does next, for the
    /// lines that refuse or note a retired store.
    pub fn what_to_do(&self) -> String {
        match &self.finished_at {
            Some(finished) => format!(
                "its sequences were copied to {} on {finished} (pez store copy); start PEZ \
                 with that database instead (PEZ_DATABASE_URL or PEZ_DB_HOST)",
                self.destination
            ),
            None => format!(
                "a copy of its sequences to {} began on {} and is not known to have finished \
                 (pez store copy was stopped, crashed or failed); run pez store copy to it \
                 again before PEZ starts there, since until then it may hold only some of \
                 them",
                self.destination, self.moved_at
            ),
        }
    }
}

impl Store for SqliteStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        self.reading(rows::list)
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.reading(rows::generations)
    }

    fn reserve(&self, name: &str, generation: i64, size: u64) -> Result<Reserved, StoreError> {
        self.writing(|conn| {
            // IMMEDIATE takes the write lock up front, so the read below cannot
            // go stale before the update.
            let (block, laps) = conn.immediate_transaction(|conn| {
                let state = rows::load(conn, name)?;
                if state.generation != generation {
                    return Err(TxError::Store(StoreError::Stale(name.to_owned())));
                }
                let next = state
                    .next_value
                    .ok_or_else(|| TxError::Store(StoreError::Exhausted(name.to_owned())))?;
                let (block, after) = state.spec.cut(next, size);
                rows::set_next(conn, name, after)?;
                let laps = if block.first == state.spec.origin() {
                    rows::begin_lap(conn, name)?
                } else {
                    state.laps
                };
                Ok::<_, TxError>((block, laps))
            })?;
            Ok(Reserved::durable(vec![block], laps))
        })
    }

    fn give_back(&self, name: &str, stamp: Stamp, unused: Block) -> Result<bool, StoreError> {
        self.writing(|conn| {
            let taken = conn.immediate_transaction(|conn| {
                let state = rows::load(conn, name)?;
                if state.generation != stamp.generation
                    || state.laps != stamp.laps
                    || state.next_value != state.spec.successor(unused.last)
                {
                    return Ok::<_, TxError>(false);
                }
                rows::set_next(conn, name, Some(unused.first))?;
                Ok(true)
            })?;
            Ok(taken)
        })
    }

    fn restart(&self, name: &str, value: i64, consent: Consent) -> Result<(), StoreError> {
        self.writing(|conn| {
            conn.immediate_transaction(|conn| {
                let state = rows::load(conn, name)?;
                let restarted = rules::check_restart(
                    &state.spec,
                    state.next_value,
                    state.laps,
                    value,
                    consent,
                )?;
                rows::set_next(conn, name, Some(value))?;
                if restarted == Restarted::Backward {
                    rows::begin_lap(conn, name)?;
                }
                rows::new_generation(conn, name)?;
                Ok::<_, TxError>(())
            })?;
            Ok(())
        })
    }

    fn advance(&self, name: &str, to: Position, consent: Consent) -> Result<Advanced, StoreError> {
        let next = to.next;
        self.writing(|conn| {
            let advanced = conn.immediate_transaction(|conn| {
                let state = rows::load(conn, name)?;
                // Judged by this store's own laps: moving to the list's
                // position skips nothing of the list's history. The list's
                // laps count from here on.
                rows::raise_laps(conn, name, to.laps)?;
                let Some(from) = rules::moves_forward(&state, next, consent)? else {
                    return Ok::<_, TxError>(Advanced::AlreadyThere {
                        stands: state.next_value,
                    });
                };
                rows::set_next(conn, name, next)?;
                rows::new_generation(conn, name)?;
                Ok(Advanced::Moved { from })
            })?;
            Ok(advanced)
        })
    }

    fn create(&self, spec: &SequenceSpec, at: Position) -> Result<Created, StoreError> {
        self.writing(|conn| {
            let created =
                conn.immediate_transaction(|conn| match rows::load(conn, &spec.name) {
                    Ok(existing) if existing.spec.same_settings(spec) => Ok(Created::Existing),
                    Ok(existing) => Err(TxError::Store(StoreError::Conflict(Box::new(
                        existing.spec,
                    )))),
                    Err(TxError::Store(StoreError::UnknownSequence(_))) => {
                        rows::insert(conn, spec, at)?;
                        Ok(Created::New)
                    }
                    Err(e) => Err(e),
                })?;
            Ok(created)
        })
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.writing(|conn| {
            conn.immediate_transaction(|conn| {
                let spec = rows::load(conn, name)?.spec;
                if spec.is_builtin() {
                    return Err(TxError::Store(StoreError::Builtin(name.to_owned())));
                }
                rows::delete(conn, name)
            })?;
            Ok(())
        })
    }

    /// Takes the write lock and lets it go: reads answer while another
    /// process holds that lock, and leases do not.
    fn probe(&self) -> Result<(), StoreError> {
        self.writing(|conn| {
            conn.immediate_transaction(|_| Ok::<_, diesel::result::Error>(()))
                .map_err(rows::unavailable)
        })
    }

    fn call_limit(&self) -> Duration {
        // Waiting for the pool (busy timeout + 1 s), then for the write lock
        // (busy timeout), then the fsync.
        self.busy_timeout * 2 + Duration::from_secs(2)
    }

    fn most_per_reservation(&self, spec: &SequenceSpec) -> u64 {
        // One cut, to the end of the range.
        spec.size()
    }
}

#[cfg(test)]
mod tests;
