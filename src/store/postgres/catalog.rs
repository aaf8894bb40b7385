//! What PostgreSQL knows of PEZ's sequences, and the statements that move
//! them.
//!
//! A PEZ sequence is a native sequence in the schema `pez` (its direction,
//! bounds, cycle and lease step) plus a row of `pez.sequences` (mode,
//! start, generation). Statements that must hit exactly one incarnation of
//! a sequence address it by oid: a sequence dropped and created again under
//! the same name gets a new oid, so a statement aimed at the old one fails
//! instead of taking numbers from the new one.

use crate::sequence::{Block, SequenceSpec};
use crate::store::stored_spec;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

/// The schema PEZ's sequences live in.
pub const SCHEMA: &str = "pez";

/// At most this many nextval() calls per reservation (a million numbers in
/// steps of 1,000).
pub const MAX_STEPS: u64 = 1000;

/// A PEZ sequence as PostgreSQL describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The sequence relation's oid: one incarnation of the name.
    pub oid: i64,
    /// Its settings.
    pub spec: SequenceSpec,
    /// The signed INCREMENT: |increment| numbers per nextval().
    pub increment: i64,
    /// The generation of `pez.sequences`.
    pub generation: i64,
}

impl Described {
    /// The numbers one nextval() reserves.
    pub fn step(&self) -> u64 {
        self.increment.unsigned_abs().max(1)
    }
}

/// The catalog's view of each sequence joined with PEZ's own row.
const CATALOG: &str = "SELECT m.name, c.oid::bigint AS oid, s.seqincrement AS increment_by, \
     s.seqmin AS min_value, s.seqmax AS max_value, s.seqcycle AS cycle, \
     m.mode, m.start_value, m.generation \
     FROM pez.sequences m \
     JOIN pg_namespace n ON n.nspname = 'pez' \
     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.name AND c.relkind = 'S' \
     JOIN pg_sequence s ON s.seqrelid = c.oid";

#[derive(QueryableByName)]
struct CatalogRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    oid: i64,
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
            oid: row.oid,
            spec: stored_spec(
                row.name,
                row.increment_by > 0,
                (row.min_value, row.max_value),
                row.start_value,
                row.cycle,
                &row.mode,
            ),
            increment: row.increment_by,
            generation: row.generation,
        }
    }
}

/// `pez."name"`, safe to splice into SQL: names are validated, and quotes
/// are doubled anyway.
pub fn qualified(name: &str) -> String {
    format!("{SCHEMA}.\"{}\"", name.replace('"', "\"\""))
}

/// Every sequence, ordered by name.
pub fn describe_all(conn: &mut PgConnection) -> QueryResult<Vec<Described>> {
    Ok(diesel::sql_query(format!("{CATALOG} ORDER BY m.name"))
        .load::<CatalogRow>(conn)?
        .into_iter()
        .map(Described::from)
        .collect())
}

/// One sequence, if it exists.
pub fn describe(conn: &mut PgConnection, name: &str) -> QueryResult<Option<Described>> {
    Ok(diesel::sql_query(format!("{CATALOG} WHERE m.name = $1"))
        .bind::<Text, _>(name)
        .get_result::<CatalogRow>(conn)
        .optional()?
        .map(Described::from))
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    last_value: i64,
    #[diesel(sql_type = Bool)]
    is_called: bool,
}

/// Where the sequence stands given its raw position: the first number of
/// the next reservation (`None`: a non-cycling sequence ran out).
fn next_from(seq: &Described, last_value: i64, is_called: bool) -> Option<i64> {
    if is_called {
        let (block, _) = seq.spec.cut(last_value, seq.step());
        seq.spec.successor(block.last)
    } else {
        Some(last_value)
    }
}

/// Where one sequence stands.
pub fn frontier(conn: &mut PgConnection, seq: &Described) -> QueryResult<Option<i64>> {
    let position = diesel::sql_query(format!(
        "SELECT $1 AS name, last_value, is_called FROM {}",
        qualified(&seq.spec.name)
    ))
    .bind::<Text, _>(&seq.spec.name)
    .get_result::<Position>(conn)?;
    Ok(next_from(seq, position.last_value, position.is_called))
}

/// Where each of `sequences` stands, in one statement.
pub fn frontiers(
    conn: &mut PgConnection,
    sequences: &[Described],
) -> QueryResult<Vec<Option<i64>>> {
    if sequences.is_empty() {
        return Ok(Vec::new());
    }
    let union = sequences
        .iter()
        .map(|seq| {
            format!(
                "SELECT '{}'::text AS name, last_value, is_called FROM {}",
                seq.spec.name.replace('\'', "''"),
                qualified(&seq.spec.name)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = diesel::sql_query(union).load::<Position>(conn)?;
    Ok(sequences
        .iter()
        .map(|seq| {
            rows.iter()
                .find(|row| row.name == seq.spec.name)
                .and_then(|row| next_from(seq, row.last_value, row.is_called))
        })
        .collect())
}

#[derive(QueryableByName)]
struct Reservation {
    #[diesel(sql_type = BigInt)]
    value: i64,
    #[diesel(sql_type = BigInt)]
    increment_by: i64,
}

/// What one reserving statement returned.
#[derive(Debug)]
pub enum Taken {
    /// The values nextval() returned, in order.
    Values(Vec<i64>),
    /// The oid names no sequence any more (it was dropped, and perhaps made
    /// again under a new oid), or the sequence has another generation than
    /// the caller's (it was restarted). Nothing was taken.
    Stale,
    /// Its INCREMENT is not the one PEZ described: someone altered it.
    /// Values were taken and must be left as a gap.
    Altered,
}

/// Calls nextval() `steps` times on the sequence `seq.oid`, in one
/// autocommit statement whose commit is durable, if the sequence still has
/// `generation`.
///
/// Durability: nextval() WAL-logs 32 calls ahead, so most calls write no
/// WAL of their own, and PostgreSQL flushes a commit (and waits for the
/// synchronous standbys) only when its transaction wrote WAL. A
/// transactional logical message (`pg_logical_emit_message(true, ...)`,
/// open to every role at `wal_level` replica or higher) makes the statement
/// write a WAL record and take a transaction id, so its commit is flushed
/// and replicated past every WAL record before it, including the one that
/// pre-logged the values it got, before PostgreSQL answers.
///
/// The shared advisory lock is for PEZ releases before 0.2 that may still
/// run against the database during a rolling upgrade: their give-backs
/// serialise with reservations only through that lock's exclusive form.
pub fn take(
    conn: &mut PgConnection,
    seq: &Described,
    generation: i64,
    steps: u64,
) -> QueryResult<Taken> {
    let rows = diesel::sql_query(
        "WITH fence AS MATERIALIZED ( \
                SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn, \
                       pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | $1) AS old), \
              shape AS MATERIALIZED ( \
                SELECT s.seqincrement FROM pg_sequence s \
                 WHERE s.seqrelid = $1::oid \
                   AND EXISTS (SELECT 1 FROM pez.sequences m \
                                WHERE m.name = $3 AND m.generation = $4)) \
         SELECT nextval($1::oid::regclass) AS value, shape.seqincrement AS increment_by \
         FROM fence, shape, generate_series(1, $2)",
    )
    .bind::<BigInt, _>(seq.oid)
    .bind::<BigInt, _>(steps as i64)
    .bind::<Text, _>(&seq.spec.name)
    .bind::<BigInt, _>(generation)
    .load::<Reservation>(conn)?;
    Ok(match rows.first() {
        None => Taken::Stale,
        Some(row) if row.increment_by != seq.increment => Taken::Altered,
        Some(_) => Taken::Values(rows.into_iter().map(|row| row.value).collect()),
    })
}

/// The blocks of the values nextval() returned: each the step starting at
/// it, cut at the end of the range; consecutive ones joined.
pub fn blocks(seq: &Described, values: impl IntoIterator<Item = i64>) -> Vec<Block> {
    join_runs(values.into_iter().map(|v| seq.spec.cut(v, seq.step()).0))
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

#[derive(QueryableByName)]
struct Cache {
    #[diesel(sql_type = BigInt)]
    cache: i64,
}

/// Takes the sequence's exclusive lock for the rest of the transaction.
///
/// `LOCK TABLE` refuses sequences, but `ALTER SEQUENCE` takes a
/// SHARE ROW EXCLUSIVE lock on one, which conflicts with the ROW EXCLUSIVE
/// lock every `nextval()` takes (PostgreSQL 10 and later): from here to the
/// commit no caller anywhere moves the sequence, and callers in flight have
/// finished. The ALTER sets the cache size it already has, so it changes
/// nothing; it rewrites the sequence's storage, which also makes a
/// `setval()` later in the transaction roll back with it. Needs ownership
/// of the sequence; waits at most `lock_timeout`.
pub fn lock_exclusively(conn: &mut PgConnection, name: &str) -> QueryResult<()> {
    let relation = qualified(name);
    let cache = diesel::sql_query(
        "SELECT seqcache AS cache FROM pg_sequence WHERE seqrelid = $1::regclass",
    )
    .bind::<Text, _>(&relation)
    .get_result::<Cache>(conn)?;
    diesel::sql_query(format!(
        "ALTER SEQUENCE {relation} CACHE {}",
        cache.cache.max(1)
    ))
    .execute(conn)?;
    Ok(())
}

/// Makes `value` the value the next nextval() returns.
pub fn set_next(conn: &mut PgConnection, name: &str, value: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT setval($1::regclass, $2, false)")
        .bind::<Text, _>(qualified(name))
        .bind::<BigInt, _>(value)
        .execute(conn)?;
    Ok(())
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
}
