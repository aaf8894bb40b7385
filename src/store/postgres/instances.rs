//! Which PEZ instances are alive on this database: each says so in
//! `pez.instances` every sync interval (at most every 5 s), with until when
//! it counts as alive, and says goodbye when it stops. `pez
//! handback` reads it; nothing a pooler passes on (application names,
//! sessions) can tell, and a connection string can name a session anything.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use std::time::Duration;

/// `instance` is alive now, and counts as alive for `for_at_least` more
/// (several heartbeats, so a busy database does not make it look gone).
pub fn heartbeat(
    conn: &mut PgConnection,
    instance: &str,
    for_at_least: Duration,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO pez.instances (id, alive_until) \
              VALUES ($1, now() + $2 * interval '1 millisecond') \
         ON CONFLICT (id) DO UPDATE SET seen_at = now(), alive_until = excluded.alive_until",
    )
    .bind::<Text, _>(instance)
    .bind::<BigInt, _>(for_at_least.as_millis() as i64)
    .execute(conn)?;
    Ok(())
}

/// `instance` stopped.
pub fn farewell(conn: &mut PgConnection, instance: &str) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM pez.instances WHERE id = $1")
        .bind::<Text, _>(instance)
        .execute(conn)?;
    Ok(())
}

/// The instances alive, and the most recent sign of life.
#[derive(Debug, QueryableByName)]
pub struct Alive {
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    /// Their names, comma-separated.
    #[diesel(sql_type = Nullable<Text>)]
    pub names: Option<String>,
    /// How long until the last of them stops counting, if not stopped.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub seconds: Option<i64>,
}

/// The instances whose last heartbeat still counts, and the latest time
/// one counts until, in seconds from now.
pub fn alive(conn: &mut PgConnection) -> QueryResult<Alive> {
    diesel::sql_query(
        "SELECT count(*) AS count, string_agg(id, ', ' ORDER BY id) AS names, \
                ceil(extract(epoch FROM max(alive_until) - now()))::bigint AS seconds \
           FROM pez.instances WHERE alive_until > now()",
    )
    .get_result(conn)
}
