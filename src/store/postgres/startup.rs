//! Connecting at start, and bringing the schema up to date.

use super::OpenError;
use crate::config::PgSettings;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use log::warn;
use std::time::{Duration, Instant};

/// The schema, applied at start (or by `pez migrate`).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Session advisory lock that serialises migrations of instances starting
/// at the same moment ("PEZMIGRT").
const MIGRATION_LOCK: i64 = 0x50455A4D49475254;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Connects for the first time. A database that refuses us for good (bad
/// password, unknown database or role, TLS the server cannot do) fails at
/// once; anything else (not up yet, starting up, unreachable) is retried
/// until the startup timeout.
pub fn establish_at_start(settings: &PgSettings) -> Result<PgConnection, OpenError> {
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
pub fn run_migrations(conn: &mut PgConnection, settings: &PgSettings) -> Result<usize, OpenError> {
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
    fn error_text_is_folded_to_one_line() {
        assert_eq!(one_line("a\n  b\n\n"), "a; b");
    }
}
