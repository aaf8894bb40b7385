//! Reaching the database at start, and checking that the database user may
//! do what PEZ needs (the schema itself is [`super::migrate`]'s).
//!
//! Each function makes one attempt; the caller retries what is worth
//! retrying ([`OpenError::Unavailable`]) for `PEZ_DB_STARTUP_TIMEOUT_MS`.
//! Only a server's own verdict stops PEZ at once: a SQLSTATE saying the
//! credentials, the database or a privilege are wrong ([`refuses_for_good`]),
//! or a missing privilege PEZ checked for itself. Everything else (refused
//! connections, a server starting up or in recovery, statement timeouts,
//! broken TLS sessions, a failover in progress) is retried.

use crate::config::PgSettings;
use crate::libpq;
use crate::store::OpenError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use std::time::Duration;

/// Whether a server that answered a connection with `sqlstate` will keep
/// refusing it: class 28 (invalid authorization: wrong password, unknown
/// role, no pg_hba.conf entry), 3D000 (no such database), 42501 (no
/// CONNECT privilege). Starting up, recovering, too many connections and
/// the like are worth waiting for.
pub fn refuses_for_good(sqlstate: &str) -> bool {
    sqlstate.starts_with("28") || sqlstate == "3D000" || sqlstate == "42501"
}

/// One attempt to reach the database: connect, and run a transaction of
/// more than one statement. Says why not, and whether trying again may help.
///
/// A pooler in statement mode (PgBouncer's `pool_mode = statement`) refuses
/// a `BEGIN` by closing the connection; PEZ cannot work without
/// transactions (give-backs, restarts, creations and migrations are), so a
/// connection that lets single statements through and is closed at `BEGIN`,
/// twice in a row, stops PEZ with one line instead of failing each of them
/// later.
pub fn reachable(settings: &PgSettings) -> Result<(), OpenError> {
    let mut closed_at_begin = 0;
    loop {
        let mut conn = connect(settings)?;
        conn.batch_execute("SELECT 1")
            .map_err(|e| unavailable(settings, "the connection fails", &e))?;
        match conn.transaction(|conn| conn.batch_execute("SELECT 1")) {
            Ok(()) => return Ok(()),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _,
            )) if closed_at_begin == 0 => closed_at_begin += 1,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                _,
            )) => {
                return Err(OpenError::Setup(format!(
                    "PostgreSQL at {}: single statements work, but the connection is closed at \
                     every BEGIN: a connection pooler in statement mode (PgBouncer's pool_mode \
                     = statement)? PEZ needs transactions: use pool_mode = transaction or \
                     session (docs/deploy.md)",
                    settings.description
                )));
            }
            Err(e) => return Err(unavailable(settings, "a transaction fails", &e)),
        }
    }
}

/// One attempt to connect.
fn connect(settings: &PgSettings) -> Result<PgConnection, OpenError> {
    match PgConnection::establish(settings.conninfo.expose()) {
        Ok(conn) => Ok(conn),
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
struct Missing {
    #[diesel(sql_type = Text)]
    missing: String,
}

/// What this user lacks to serve (read the catalog, move every sequence,
/// say it is alive), as the `GRANT` statements to run; empty when nothing.
pub fn missing_privileges(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    let missing = diesel::sql_query(
        "SELECT 'USAGE ON SCHEMA pez' AS missing WHERE NOT has_schema_privilege('pez', 'USAGE') \
         UNION ALL \
         SELECT 'SELECT, UPDATE ON pez.sequences' \
           WHERE has_schema_privilege('pez', 'USAGE') \
             AND NOT has_table_privilege('pez.sequences', 'SELECT, UPDATE') \
         UNION ALL \
         SELECT 'SELECT, INSERT, UPDATE, DELETE ON pez.instances' \
           WHERE has_schema_privilege('pez', 'USAGE') \
             AND NOT has_table_privilege('pez.instances', 'SELECT, INSERT, UPDATE, DELETE') \
         UNION ALL \
         SELECT 'EXECUTE ON FUNCTION ' || f.oid::regprocedure::text \
           FROM (SELECT to_regprocedure($1) AS oid) f \
          WHERE has_schema_privilege('pez', 'USAGE') \
            AND f.oid IS NOT NULL AND NOT has_function_privilege(f.oid, 'EXECUTE') \
         UNION ALL \
         SELECT 'USAGE, SELECT, UPDATE ON SEQUENCE ' || c.oid::regclass::text \
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'pez' AND c.relkind = 'S' \
            AND has_schema_privilege('pez', 'USAGE') \
            AND CASE WHEN c.relkind = 'S' \
                     THEN NOT has_sequence_privilege(c.oid, 'USAGE, SELECT, UPDATE') END",
    )
    .bind::<Text, _>(super::reserve::FUNCTION_QUALIFIED)
    .load::<Missing>(conn)?;
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
        .load::<Missing>(conn)?
    } else {
        missing
    };
    Ok(missing
        .into_iter()
        .map(|m| format!("GRANT {} TO <pez user>;", m.missing))
        .collect())
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
