//! `pez migrate`, `pez store copy` and `pez handback`: the store itself,
//! rather than one sequence.

use super::open_store;
use crate::config::{PgSettings, RawSettings, Settings, StoreChoice};
use crate::store::postgres::Continued;
use crate::store::transfer::{self, Wanted};
use crate::store::{self, OpenError, PgStore, SqliteStore, StartupRetry, Store};

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

/// `pez store copy --to URL`: every sequence of the embedded store into
/// PostgreSQL, only forward, then the embedded store marked as moved.
pub(super) fn copy(raw: &RawSettings, settings: &Settings, to: &str) -> Result<(), String> {
    if !matches!(settings.store, StoreChoice::Embedded) {
        return Err(
            "store copy moves the embedded store (PEZ_DATA_DIR) to PostgreSQL; these settings \
             choose PostgreSQL already (unset PEZ_DATABASE_URL and PEZ_DB_HOST)"
                .to_owned(),
        );
    }
    let target = raw
        .postgres_at(to)
        .map_err(|_| "--to must be a postgres:// URI or a libpq key=value string".to_owned())?;
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
        eprintln!(
            "note: this store was copied to {} on {} already; copying again moves nothing back",
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
    // Retired before anything moves: a copy that fails half way has moved
    // some sequences forward in PostgreSQL already, and the embedded store
    // must not serve beside them. Running the copy again finishes it.
    let destination = format!("postgres at {}", target.description);
    transfer::check(&target_store, &wanted).map_err(|e| e.to_string())?;
    source
        .mark_moved(&destination)
        .map_err(|e| format!("nothing copied: cannot mark the embedded store as moved: {e}"))?;
    let copied = transfer::apply_forward(&target_store, &wanted)
        .map_err(|e| format!("{e}; the embedded store stays retired (moved to {destination})"))?;
    for outcome in copied {
        println!("{outcome}");
    }
    println!(
        "{} is marked as moved: a server started on it refuses; start PEZ with \
         PEZ_DATABASE_URL set to that database",
        source.path().display()
    );
    Ok(())
}
