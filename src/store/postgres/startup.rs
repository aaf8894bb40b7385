//! Connecting at start, bringing the schema up to date, and checking that
//! the database user may do what PEZ needs.
//!
//! Each function makes one attempt; the caller retries what is worth
//! retrying ([`OpenError::Unavailable`]) for `PEZ_DB_STARTUP_TIMEOUT_MS`.
//! Only a server's own verdict stops PEZ at once: a SQLSTATE saying the
//! credentials, the database or a privilege are wrong ([`refuses_for_good`]),
//! or a missing privilege PEZ checked for itself. Everything else (refused
//! connections, a server starting up or in recovery, statement timeouts,
//! broken TLS sessions, a failover in progress) is retried.

use super::libpq;
use crate::config::PgSettings;
use crate::store::OpenError;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// The schema, applied at start (or by `pez migrate`).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Session advisory lock that serialises migrations of instances starting
/// at the same moment ("PEZMIGRT").
const MIGRATION_LOCK: i64 = 0x50455A4D49475254;

/// Whether a server that answered a connection with `sqlstate` will keep
/// refusing it: class 28 (invalid authorization: wrong password, unknown
/// role, no pg_hba.conf entry), 3D000 (no such database), 42501 (no
/// CONNECT privilege). Starting up, recovering, too many connections and
/// the like are worth waiting for.
pub fn refuses_for_good(sqlstate: &str) -> bool {
    sqlstate.starts_with("28") || sqlstate == "3D000" || sqlstate == "42501"
}

/// One attempt to connect, with PEZ's session settings.
pub fn connect(settings: &PgSettings) -> Result<PgConnection, OpenError> {
    match PgConnection::establish(settings.conninfo.expose()) {
        Ok(mut conn) => {
            super::session::prepare(&mut conn, settings.timeout)
                .map_err(|e| unavailable(settings, "cannot set up the session", &e))?;
            Ok(conn)
        }
        Err(e) => {
            // diesel gives only the text; ask libpq once more, verbosely,
            // for the SQLSTATE the server answered with.
            let limit = settings.timeout.max(Duration::from_secs(2));
            let why = match libpq::probe(settings.conninfo.expose(), limit) {
                Err(refusal) if refusal.sqlstates.iter().any(|s| refuses_for_good(s)) => {
                    return Err(OpenError::Setup(settings.scrub(&format!(
                        "PostgreSQL at {} refuses PEZ: {}",
                        settings.description, refusal.message
                    ))));
                }
                Err(refusal) => refusal.message,
                // It worked this time: worth another try.
                Ok(()) => one_line(&e.to_string()),
            };
            Err(OpenError::Unavailable(settings.scrub(&format!(
                "cannot connect to PostgreSQL at {}: {why}",
                settings.description
            ))))
        }
    }
}

fn unavailable(settings: &PgSettings, what: &str, e: &dyn std::fmt::Display) -> OpenError {
    OpenError::Unavailable(settings.scrub(&format!(
        "PostgreSQL at {}: {what}: {}",
        settings.description,
        one_line(&e.to_string())
    )))
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Applies pending migrations under a session advisory lock, so instances
/// that start at the same moment migrate one after the other (the later
/// ones find nothing to do), and reports how many it applied. When nothing
/// is pending no DDL runs at all: a database user without DDL rights works
/// once an operator has run `pez migrate`. A user who may not create what
/// a pending migration needs is told so, and PEZ stops.
pub fn run_migrations(conn: &mut PgConnection, settings: &PgSettings) -> Result<usize, OpenError> {
    let pending =
        pending(conn).map_err(|e| unavailable(settings, "cannot read the schema version", &e))?;
    if pending == 0 {
        return Ok(0);
    }
    let may_migrate = diesel::sql_query(
        "SELECT CASE WHEN to_regnamespace('pez') IS NULL \
                     THEN has_database_privilege(current_database(), 'CREATE') \
                     ELSE pg_has_role((SELECT nspowner FROM pg_namespace WHERE nspname = 'pez'), \
                                      'USAGE') END AS flag",
    )
    .get_result::<Flag>(conn)
    .map_err(|e| unavailable(settings, "cannot read the database user's rights", &e))?;
    if !may_migrate.flag {
        return Err(OpenError::Setup(format!(
            "PostgreSQL at {}: the schema needs {pending} migration(s) and this user may not \
             apply them; run `pez migrate` with the same settings as a user that owns the \
             schema pez (or may create it)",
            settings.description
        )));
    }
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)
        .map_err(|e| unavailable(settings, "cannot take the migration lock", &e))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|done| done.len());
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn);
    applied.map_err(|e| unavailable(settings, "migrating failed", &e))
}

/// How many embedded migrations the database has not applied, read
/// without DDL.
fn pending(conn: &mut PgConnection) -> Result<usize, diesel::result::Error> {
    let exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS flag")
            .get_result::<Flag>(conn)?;
    let applied: Vec<String> = if exists.flag {
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

#[derive(QueryableByName)]
struct Missing {
    #[diesel(sql_type = Text)]
    missing: String,
}

/// Checks that the user may serve: read the catalog and move every
/// sequence. Says what to grant if not.
pub fn check_privileges(conn: &mut PgConnection, settings: &PgSettings) -> Result<(), OpenError> {
    let missing = diesel::sql_query(
        "SELECT 'USAGE ON SCHEMA pez' AS missing WHERE NOT has_schema_privilege('pez', 'USAGE') \
         UNION ALL \
         SELECT 'SELECT, UPDATE ON pez.sequences' \
           WHERE has_schema_privilege('pez', 'USAGE') \
             AND NOT has_table_privilege('pez.sequences', 'SELECT, UPDATE') \
         UNION ALL \
         SELECT 'USAGE, SELECT, UPDATE ON SEQUENCE ' || c.oid::regclass::text \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'pez' AND c.relkind = 'S' \
            AND has_schema_privilege('pez', 'USAGE') \
            AND CASE WHEN c.relkind = 'S' \
                     THEN NOT has_sequence_privilege(c.oid, 'USAGE, SELECT, UPDATE') END",
    )
    .load::<Missing>(conn)
    .map_err(|e| unavailable(settings, "cannot read the database user's rights", &e))?;
    // The original PEZ's sequences that forward and reverse continue, read
    // only once pez.sequences may be read at all.
    let missing = if missing.is_empty() {
        diesel::sql_query(
            "SELECT 'USAGE ON SCHEMA ' || quote_ident(m.relation_schema) AS missing \
               FROM pez.sequences m \
              WHERE m.relation_schema IS NOT NULL \
                AND NOT has_schema_privilege(m.relation_schema, 'USAGE') \
             UNION ALL \
             SELECT 'USAGE, SELECT, UPDATE ON SEQUENCE ' || c.oid::regclass::text \
               FROM pez.sequences m \
               JOIN pg_namespace n ON n.nspname = m.relation_schema \
               JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.relation_name \
              WHERE NOT has_sequence_privilege(c.oid, 'USAGE, SELECT, UPDATE')",
        )
        .load::<Missing>(conn)
        .map_err(|e| unavailable(settings, "cannot read the database user's rights", &e))?
    } else {
        missing
    };
    if missing.is_empty() {
        return Ok(());
    }
    let grants: Vec<String> = missing
        .iter()
        .map(|m| format!("GRANT {} TO <pez user>;", m.missing))
        .collect();
    Err(OpenError::Setup(format!(
        "PostgreSQL at {}: this user may not serve PEZ's sequences; as their owner, run: {}",
        settings.description,
        grants.join(" ")
    )))
}

/// Whether the user owns PEZ's sequences (and the original PEZ's that
/// forward and reverse continue), which a give-back and a restart need
/// (they take ALTER SEQUENCE's lock).
pub fn owns_sequences(conn: &mut PgConnection) -> QueryResult<bool> {
    Ok(diesel::sql_query(
        "SELECT coalesce(bool_and(pg_has_role(c.relowner, 'USAGE')), true) AS flag \
           FROM pez.sequences m \
           JOIN pg_namespace n ON n.nspname = COALESCE(m.relation_schema, 'pez') \
           JOIN pg_class c ON c.relnamespace = n.oid \
                          AND c.relname = COALESCE(m.relation_name, m.name) AND c.relkind = 'S'",
    )
    .get_result::<Flag>(conn)?
    .flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_folded_to_one_line() {
        assert_eq!(one_line("a\n  b\n\n"), "a; b");
    }

    #[test]
    fn only_a_servers_verdict_on_credentials_database_or_rights_is_final() {
        for final_state in ["28P01", "28000", "3D000", "42501"] {
            assert!(refuses_for_good(final_state), "{final_state}");
        }
        // starting up, too many connections, admin shutdown, statement
        // timeout, read-only transaction (a standby), connection failure.
        for passing in ["57P03", "53300", "57P01", "57014", "25006", "08006"] {
            assert!(!refuses_for_good(passing), "{passing}");
        }
    }
}
