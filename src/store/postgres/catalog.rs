//! What PostgreSQL knows of PEZ's sequences, and the statements that move
//! them.
//!
//! A PEZ sequence is a native sequence (its direction, bounds, cycle and
//! lease step) plus a row of `pez.sequences` (mode, start, generation, the
//! largest range lease, and where the native sequence is). The native sequence is PEZ's own,
//! `pez."<name>"`, except for `forward` and `reverse` on a database the
//! original PEZ ran on: those continue its `forward_seq` and `backward_seq`
//! (see [`super::original`]). Statements that must hit exactly one incarnation of
//! a sequence address it by oid: a sequence dropped and created again under
//! the same name gets a new oid, so a statement aimed at the old one fails
//! instead of taking numbers from the new one.

use crate::sequence::SequenceSpec;
use crate::store::stored_spec;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

/// The schema PEZ's sequences live in.
pub const SCHEMA: &str = "pez";

/// Transaction advisory lock that serialises creating and deleting
/// sequences, take-overs and hand-backs ("PEZCATLG"). Numbers never depend
/// on it.
pub const CATALOG_LOCK: i64 = 0x50455A4341544C47;

/// The numbers one nextval() of a leased sequence reserves: its INCREMENT.
pub const LEASE_STEP: u64 = 1000;

/// The smallest cycling sequence a give-back is taken for: 2^62 numbers.
/// The count of laps that proves nobody went a full lap since a lease
/// cannot be kept exactly here: `nextval()` is not undone when its
/// statement fails, but the count's update is, so a reservation that
/// handed out the origin and then failed (a lock timeout on the count's
/// row, a cancel, a crash) leaves a lap uncounted. A full lap of a sequence
/// this large between a lease and its give-back is out of reach (at a
/// billion numbers a second, 146 years); of a smaller ring it is not, and
/// its unused numbers at a stop are a gap.
pub const SMALLEST_RING_GIVEN_BACK: u64 = 1 << 62;

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
    /// Its count of laps begun (see [`super::reserve`]).
    pub laps: i64,
    /// The native sequence, quoted and schema-qualified, ready for SQL:
    /// `pez."forward"`, or `"public"."forward_seq"` when it continues the
    /// original PEZ's.
    pub relation: String,
    /// The original PEZ's sequence this one continues, as `schema.name`
    /// (`None`: the sequence is PEZ's own).
    pub original: Option<String>,
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
     m.mode, m.start_value, m.generation, m.laps, m.max_lease, \
     n.nspname::text AS relation_schema, c.relname::text AS relation_name, \
     m.relation_name IS NOT NULL AS continues_original \
     FROM pez.sequences m \
     JOIN pg_namespace n ON n.nspname = COALESCE(m.relation_schema, 'pez') \
     JOIN pg_class c ON c.relnamespace = n.oid \
                    AND c.relname = COALESCE(m.relation_name, m.name) AND c.relkind = 'S' \
                    AND CASE WHEN m.relation_mark IS NOT NULL \
                             THEN obj_description(c.oid, 'pg_class') = m.relation_mark \
                             ELSE m.relation_oid IS NULL OR c.oid::bigint = m.relation_oid END \
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
    #[diesel(sql_type = BigInt)]
    laps: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    max_lease: Option<i64>,
    #[diesel(sql_type = Text)]
    relation_schema: String,
    #[diesel(sql_type = Text)]
    relation_name: String,
    #[diesel(sql_type = Bool)]
    continues_original: bool,
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
                row.max_lease,
            ),
            increment: row.increment_by,
            generation: row.generation,
            laps: row.laps,
            relation: relation(&row.relation_schema, &row.relation_name),
            original: row
                .continues_original
                .then(|| format!("{}.{}", row.relation_schema, row.relation_name)),
        }
    }
}

/// `pez."name"`, safe to splice into SQL: names are validated, and quotes
/// are doubled anyway.
pub fn qualified(name: &str) -> String {
    format!("{SCHEMA}.{}", quote(name))
}

/// `"schema"."name"`, safe to splice into SQL whatever the two hold.
pub fn relation(schema: &str, name: &str) -> String {
    format!("{}.{}", quote(schema), quote(name))
}

/// An identifier in double quotes, its own quotes doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
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

/// Where the native sequence `relation` stands: `last_value` and
/// `is_called`, as PostgreSQL keeps them.
pub fn position(conn: &mut PgConnection, relation: &str) -> QueryResult<(i64, bool)> {
    let position = read_position(conn, relation)?;
    Ok((position.last_value, position.is_called))
}

fn read_position(conn: &mut PgConnection, relation: &str) -> QueryResult<Position> {
    diesel::sql_query(format!(
        "SELECT ''::text AS name, last_value, is_called FROM {relation}"
    ))
    .get_result::<Position>(conn)
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
    stands_after(&seq.spec, seq.step(), last_value, is_called)
}

/// Where a native sequence of `spec`'s range that moves `step` numbers per
/// nextval() stands, given `last_value` and `is_called`: the first number
/// no nextval() has returned a block of (`None`: a non-cycling sequence ran
/// out). A called `last_value` started a block of `step` numbers, cut at
/// the end of the range, whoever called it.
pub fn stands_after(
    spec: &SequenceSpec,
    step: u64,
    last_value: i64,
    is_called: bool,
) -> Option<i64> {
    if is_called {
        let (block, _) = spec.cut(last_value, step);
        spec.successor(block.last)
    } else {
        Some(last_value)
    }
}

/// Where one sequence stands.
pub fn frontier(conn: &mut PgConnection, seq: &Described) -> QueryResult<Option<i64>> {
    let position = read_position(conn, &seq.relation)?;
    Ok(next_from(seq, position.last_value, position.is_called))
}

/// Where each of `sequences` stands, in one statement, and whether any
/// `nextval()` was called on it since it was last set.
pub fn frontiers(
    conn: &mut PgConnection,
    sequences: &[Described],
) -> QueryResult<Vec<(Option<i64>, bool)>> {
    if sequences.is_empty() {
        return Ok(Vec::new());
    }
    let union = sequences
        .iter()
        .map(|seq| {
            format!(
                "SELECT '{}'::text AS name, last_value, is_called FROM {}",
                seq.spec.name.replace('\'', "''"),
                seq.relation
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
                .map_or((None, false), |row| {
                    (next_from(seq, row.last_value, row.is_called), row.is_called)
                })
        })
        .collect())
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
pub fn lock_exclusively(conn: &mut PgConnection, relation: &str) -> QueryResult<()> {
    let cache = diesel::sql_query(
        "SELECT seqcache AS cache FROM pg_sequence WHERE seqrelid = $1::regclass",
    )
    .bind::<Text, _>(relation)
    .get_result::<Cache>(conn)?;
    diesel::sql_query(format!(
        "ALTER SEQUENCE {relation} CACHE {}",
        cache.cache.max(1)
    ))
    .execute(conn)?;
    Ok(())
}

/// Makes `value` the value the next nextval() on `relation` returns.
pub fn set_next(conn: &mut PgConnection, relation: &str, value: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT setval($1::regclass, $2, false)")
        .bind::<Text, _>(relation)
        .bind::<BigInt, _>(value)
        .execute(conn)?;
    Ok(())
}

/// Gives `name` a new generation: instances that see it change drop the
/// blocks they hold and look at the sequence afresh.
pub fn new_generation(conn: &mut PgConnection, name: &str) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE pez.sequences SET generation = nextval('pez.generations') WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .execute(conn)?;
    Ok(())
}

/// Counts a lap begun: a restart moved `name` back, to numbers it will hand
/// out again.
pub fn begin_lap(conn: &mut PgConnection, name: &str) -> QueryResult<()> {
    diesel::sql_query("UPDATE pez.sequences SET laps = laps + 1 WHERE name = $1")
        .bind::<Text, _>(name)
        .execute(conn)?;
    Ok(())
}

/// Raises `name`'s count of laps to `laps` (an import's, from its source).
pub fn raise_laps(conn: &mut PgConnection, name: &str, laps: i64) -> QueryResult<()> {
    diesel::sql_query("UPDATE pez.sequences SET laps = greatest(laps, $2) WHERE name = $1")
        .bind::<Text, _>(name)
        .bind::<BigInt, _>(laps)
        .execute(conn)?;
    Ok(())
}

/// Marks `seq` as run out: nextval() would pass its terminus, so the next
/// reservation finds nothing left ([`frontier`] is `None`). Only for a
/// sequence that does not cycle.
pub fn set_exhausted(conn: &mut PgConnection, seq: &Described) -> QueryResult<()> {
    debug_assert!(!seq.spec.cycle, "a cycling sequence never runs out");
    diesel::sql_query("SELECT setval($1::regclass, $2, true)")
        .bind::<Text, _>(&seq.relation)
        .bind::<BigInt, _>(seq.spec.terminus())
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(qualified("forward"), "pez.\"forward\"");
        assert_eq!(qualified("a\"b"), "pez.\"a\"\"b\"");
        assert_eq!(
            relation("public", "forward_seq"),
            "\"public\".\"forward_seq\""
        );
    }
}
