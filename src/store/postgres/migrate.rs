//! The schema, brought up to date in one transaction.
//!
//! diesel_migrations' harness keeps its bookkeeping with cached (named)
//! prepared statements and runs each migration in a transaction of its own;
//! behind a pooler in transaction mode a named statement prepared on one
//! server connection is missing on the next (or, worse, another client's
//! statement of that name is there), and a session advisory lock taken to
//! serialise instances starting at once is held by a server connection that
//! then serves someone else. So PEZ runs the embedded migrations itself:
//! every pending one, and the record of each, in the one transaction of a
//! [`super::call::Kind::Change`] call, under a transaction advisory lock
//! (instances starting at the same moment take turns; the later ones find
//! nothing to do), with unnamed statements only. The record is diesel's own
//! table, `__diesel_schema_migrations`, so the diesel CLI still reads it.

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

/// The schema, applied at start (or by `pez migrate`).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Transaction advisory lock that serialises migrations of instances
/// starting at the same moment ("PEZMIGRT").
const MIGRATION_LOCK: i64 = 0x50455A4D49475254;

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

fn embedded() -> QueryResult<Vec<Box<dyn Migration<Pg>>>> {
    let mut migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(diesel::result::Error::QueryBuilderError)?;
    migrations.sort_by_key(|m| m.name().version().to_string());
    Ok(migrations)
}

fn applied(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    let exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS flag")
            .get_result::<Flag>(conn)?;
    if !exists.flag {
        return Ok(Vec::new());
    }
    Ok(
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect(),
    )
}

/// How many embedded migrations the database has not applied, read
/// without DDL.
pub fn pending(conn: &mut PgConnection) -> QueryResult<usize> {
    let applied = applied(conn)?;
    Ok(embedded()?
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count())
}

/// How many migrations this build embeds: all of them pending means the
/// database holds no PEZ schema at all.
pub fn count() -> QueryResult<usize> {
    Ok(embedded()?.len())
}

/// Whether this user may apply them: create the schema `pez`, or own it.
pub fn may_migrate(conn: &mut PgConnection) -> QueryResult<bool> {
    Ok(diesel::sql_query(
        "SELECT CASE WHEN to_regnamespace('pez') IS NULL \
                     THEN has_database_privilege(current_database(), 'CREATE') \
                     ELSE pg_has_role((SELECT nspowner FROM pg_namespace WHERE nspname = 'pez'), \
                                      'USAGE') END AS flag",
    )
    .get_result::<Flag>(conn)?
    .flag)
}

/// Applies every pending migration, inside the caller's transaction, and
/// says how many.
pub fn run(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations ( \
             version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .execute(conn)?;
    // Read again under the lock: an instance that started at the same
    // moment may have applied them while this one waited.
    let applied = applied(conn)?;
    let mut count = 0;
    for migration in embedded()? {
        let version = migration.name().version().to_string();
        if applied.contains(&version) {
            continue;
        }
        // The migration's SQL, run by diesel as one simple-protocol batch.
        migration.run(conn).map_err(|e| {
            diesel::result::Error::QueryBuilderError(
                format!("migration {}: {e}", migration.name()).into(),
            )
        })?;
        diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ($1)")
            .bind::<Text, _>(&version)
            .execute(conn)?;
        count += 1;
    }
    Ok(count)
}
