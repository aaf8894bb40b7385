//! `pez migrate`, `pez store copy` and `pez handback`: the store itself,
//! rather than one sequence.
//!
//! Each waits for a store that is not reachable yet, or did not confirm a
//! change (its synchronous standby gone, say), for the startup timeout, as
//! a server's start does: every attempt is bounded by the store's
//! deadlines, a line every few seconds says what it waits for, and the
//! last error says why it gave up.

use super::open_store;
use crate::config::conninfo::Connection;
use crate::config::{PgSettings, RawSettings, Settings, StoreChoice};
use crate::store::postgres::Continued;
use crate::store::transfer::{self, ApplyError, Outcome, Wanted};
use crate::store::{self, Consent, OpenError, PgStore, SqliteStore, StartupRetry, Store};
use crate::trusted;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Tries `attempt` until it works, or for the startup timeout while the
/// database is not reachable yet (as a start would).
fn retried<T>(
    pg: &PgSettings,
    mut attempt: impl FnMut() -> Result<T, OpenError>,
) -> Result<T, String> {
    let mut retry = StartupRetry::new(pg.startup_timeout);
    loop {
        match attempt() {
            Err(e) => match retry.after_failure(e.is_transient(), &e) {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(e.to_string()),
            },
            Ok(done) => return Ok(done),
        }
    }
}

/// The store the settings choose, for a command that changes it: on
/// PostgreSQL waited for as a start waits; the embedded store is there or
/// not (and refused while a server holds it).
pub(super) fn retried_open(settings: &Settings) -> Result<Arc<dyn Store>, String> {
    match &settings.store {
        StoreChoice::Postgres(pg) => {
            Ok(Arc::new(retried(pg, || PgStore::connect(pg))?) as Arc<dyn Store>)
        }
        StoreChoice::Embedded => open_store(settings),
    }
}

/// [`transfer::apply_forward`], tried again while the store fails or did
/// not confirm a change: applying the same list again only moves forward.
pub(super) fn retried_apply(
    timeout: Duration,
    store: &dyn Store,
    wanted: &[Wanted],
    consent: Consent,
) -> Result<Vec<Outcome>, ApplyError> {
    let mut retry = StartupRetry::new(timeout);
    loop {
        match transfer::apply_forward(store, wanted, consent) {
            Err(ApplyError::Store(e)) if e.is_outage() => match retry.after_failure(true, &e) {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(ApplyError::Store(e)),
            },
            done => return done,
        }
    }
}

fn print_continued(pg: &PgSettings, continued: &[Continued]) {
    for line in continued {
        println!("{}: {line}", pg.description);
    }
}

/// `pez migrate`.
pub(super) fn migrate(settings: &Settings) -> Result<(), String> {
    match &settings.store {
        StoreChoice::Postgres(pg) => {
            let (applied, continued) = retried(pg, || PgStore::migrate(pg))?;
            println!(
                "{}: {applied} migration(s) applied; the schema is up to date",
                pg.description
            );
            print_continued(pg, &continued);
        }
        // The embedded store migrates whenever it is opened.
        StoreChoice::Embedded => {
            open_store(settings)?;
            println!("{}: the schema is up to date", store::describe(settings));
        }
    }
    Ok(())
}

/// `pez handback`.
pub(super) fn hand_back(settings: &Settings) -> Result<(), String> {
    let StoreChoice::Postgres(pg) = &settings.store else {
        return Err(
            "handback gives sequences back to the original PEZ on PostgreSQL; these settings \
             choose the embedded store (set PEZ_DATABASE_URL or PEZ_DB_HOST)"
                .to_owned(),
        );
    };
    let handed = retried(pg, || PgStore::hand_back(pg))?;
    if handed.is_empty() {
        println!(
            "{}: forward and reverse are PEZ's own here; nothing to hand back",
            pg.description
        );
    }
    print_continued(pg, &handed);
    Ok(())
}

/// Where `pez store copy` copies to: `--to URL` without a password (every
/// local user reads a command line in `ps`), or `--to-file FILE`.
#[derive(Debug)]
pub(super) enum Destination<'a> {
    /// `--to URL`.
    Url(&'a str),
    /// `--to-file FILE`.
    File(&'a Path),
    /// Neither (clap requires one; kept for a clear line anyway).
    Missing,
}

impl<'a> Destination<'a> {
    /// From the two flags (clap lets only one through).
    pub(super) fn from_args(to: Option<&'a str>, to_file: Option<&'a Path>) -> Self {
        match (to, to_file) {
            (Some(url), _) => Destination::Url(url),
            (None, Some(file)) => Destination::File(file),
            (None, None) => Destination::Missing,
        }
    }

    /// The connection string, checked: a password on the command line is
    /// refused without repeating it.
    fn read(&self) -> Result<String, String> {
        match self {
            Destination::Url(url) => {
                let password = Connection::parse(url)
                    .map(|c| c.password().is_some())
                    .unwrap_or(false);
                if password {
                    return Err(
                        "--to carries a password, which every local user sees in ps: \
                         put the URL in a file readable only by you and pass --to-file FILE, \
                         or leave the password out and set PGPASSWORD (or use ~/.pgpass)"
                            .to_owned(),
                    );
                }
                Ok((*url).to_owned())
            }
            // It holds a password; and whoever could change it could send
            // the sequences to a database of theirs.
            Destination::File(file) => trusted::read_to_string("the URL file", file)
                .map_err(|e| e.to_string())?
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty() && !line.starts_with('#'))
                .map(str::to_owned)
                .ok_or_else(|| format!("{} holds no URL", file.display())),
            Destination::Missing => Err("store copy needs --to URL or --to-file FILE".to_owned()),
        }
    }
}

/// `pez store copy --to URL`: every sequence of the embedded store into
/// PostgreSQL, only forward, then the embedded store marked as moved.
pub(super) fn copy(
    raw: &RawSettings,
    settings: &Settings,
    destination: Destination<'_>,
    allow_early_wrap: bool,
) -> Result<(), String> {
    if !matches!(settings.store, StoreChoice::Embedded) {
        return Err(
            "store copy moves the embedded store (PEZ_DATA_DIR) to PostgreSQL; these settings \
             choose PostgreSQL already (unset PEZ_DATABASE_URL and PEZ_DB_HOST)"
                .to_owned(),
        );
    }
    let to = destination.read()?;
    let target = raw.postgres_at(&to).map_err(|_| {
        "--to (or --to-file) must be a postgres:// URI or a libpq key=value string".to_owned()
    })?;
    // Held to the end: no server starts on the source meanwhile.
    let source = SqliteStore::open_even_if_moved(&settings.data_dir, settings.store_timeout)
        .map_err(|e| match e {
            OpenError::Locked(holder) => format!(
                "{holder}; stop it first, so that nothing is issued from the embedded store \
                 during or after the copy"
            ),
            other => other.to_string(),
        })?;
    if let Ok(Some(moved)) = source.moved_to() {
        let done = if moved.finished_at.is_some() {
            "was copied"
        } else {
            "began a copy that is not known to have finished"
        };
        eprintln!(
            "note: this store {done} to {} on {}; copying again moves nothing back",
            moved.destination, moved.moved_at
        );
    }
    let wanted: Vec<Wanted> = source
        .list()
        .map_err(|e| e.to_string())?
        .iter()
        .map(Wanted::from)
        .collect();
    let target_store = retried(&target, || PgStore::connect(&target))?;
    let consent = Consent {
        backward: false,
        early_wrap: allow_early_wrap,
    };
    // Everything checked first (settings, sequences PostgreSQL cannot hold,
    // early wraps), then retired before anything moves: a copy that fails
    // half way has moved some sequences forward in PostgreSQL already, and
    // the embedded store must not serve beside them. Running the copy again
    // finishes it.
    let destination = format!("postgres at {}", target.description);
    transfer::check(&target_store, &wanted, consent).map_err(|e| {
        let hint = if e.to_string().contains("allow_early_wrap") {
            " (--allow-early-wrap)"
        } else {
            ""
        };
        format!("{e}{hint}; the embedded store is unchanged")
    })?;
    source
        .mark_moved(&destination)
        .map_err(|e| format!("nothing copied: cannot mark the embedded store as moved: {e}"))?;
    let copied = retried_apply(target.startup_timeout, &target_store, &wanted, consent)
        .map_err(|e| format!("{e}; the embedded store stays retired (moved to {destination})"))?;
    for outcome in copied {
        println!("{outcome}");
    }
    source.mark_copied().map_err(|e| {
        format!(
            "every sequence is in {destination}, but the embedded store could not record \
             that the copy finished ({e}); run pez store copy again"
        )
    })?;
    println!(
        "{} is marked as moved: a server started on it refuses; start PEZ with \
         PEZ_DATABASE_URL set to that database",
        source.path().display()
    );
    Ok(())
}
