//! The reservation: one autocommit statement of `nextval()` calls that is
//! durable before PostgreSQL answers, takes only from the incarnation and
//! generation the caller knows, reads the increment `nextval()` really
//! counted with, counts the laps it begins, and answers with runs rather
//! than one row per `nextval()`.

use super::call::{Call, DURABLE};
use super::catalog::Described;
use crate::sequence::Block;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// At most this many nextval() calls per reservation: a million numbers of
/// a strict sequence, a billion of a leased one (in steps of 1,000). A
/// million calls take about a third of a second on PostgreSQL 15, and the
/// statement answers with one row per run of consecutive steps, not per
/// call.
pub const MAX_STEPS: u64 = 1_000_000;

#[derive(QueryableByName)]
struct Run {
    /// The first value nextval() returned in this run.
    #[diesel(sql_type = BigInt)]
    first: i64,
    /// The last one.
    #[diesel(sql_type = BigInt)]
    last: i64,
    /// The increment the statement's snapshot shows.
    #[diesel(sql_type = BigInt)]
    increment_by: i64,
    /// The increment nextval() counted with.
    #[diesel(sql_type = BigInt)]
    counted_with: i64,
    /// The sequence's count of laps once the statement took its values.
    #[diesel(sql_type = BigInt)]
    laps: i64,
}

/// What one reserving statement returned.
#[derive(Debug)]
pub enum Taken {
    /// The blocks taken, in the order nextval() returned them, and the
    /// sequence's count of laps after them.
    Blocks(Vec<Block>, i64),
    /// The oid names no sequence any more (it was dropped, and perhaps made
    /// again under a new oid), or the sequence has another generation than
    /// the caller's (it was restarted). Nothing was taken.
    Stale,
    /// Its INCREMENT is not the one PEZ described, or nextval() counted
    /// with another: someone altered it (or handed it back to the original
    /// PEZ). Values were taken and must be left as a gap.
    Altered,
}

/// Calls nextval() `steps` times on the sequence `seq.oid`, in one
/// autocommit statement whose commit is durable, if the sequence still has
/// `generation` and the increment PEZ described; says what nextval()
/// really counted with, and the runs it took.
///
/// **Its own settings.** The statement sets what it needs for itself
/// ([`super::call`]): the call's token as `application_name` (the
/// watchdog finds it by that), `lock_timeout`, and `synchronous_commit` at
/// [`DURABLE`] for its own commit, whatever the session, role, database or
/// server says. A setting made with `set_config(..., true)` lasts until the
/// transaction ends, and PostgreSQL's commit waits for the standby before
/// it resets them.
///
/// **Durability.** nextval() WAL-logs 32 calls ahead, so most calls write no
/// WAL of their own, and PostgreSQL flushes a commit (and waits for the
/// synchronous standbys) only when its transaction wrote WAL. A
/// transactional logical message (`pg_logical_emit_message(true, ...)`,
/// open to every role at `wal_level` replica or higher) makes the statement
/// write a WAL record and take a transaction id, so its commit is flushed
/// and replicated past every WAL record before it, including the one that
/// pre-logged the values it got, before PostgreSQL answers.
///
/// **The increment nextval() counted with** is not what the statement's
/// snapshot shows: its first nextval() may wait for the sequence's lock,
/// held by an `ALTER SEQUENCE` (a hand-back, a restart, a give-back), and
/// once it has the lock it reads the increment through the catalog cache,
/// which taking the lock brought up to date. So the statement also returns
/// the increment `pg_sequence_parameters()` reads through the same cache
/// once the first nextval() has run; by then it holds the lock, which no
/// ALTER takes before the commit.
///
/// **Laps.** Every value equal to the sequence's origin (the first number
/// after a wrap, or of a fresh sequence) begins a lap: the statement adds
/// them to `pez.sequences.laps` and answers with the count after it. A
/// give-back is taken only while that count is unchanged ([`super::PgStore`]).
///
/// **Runs.** Each value is numbered by the call that returned it (`WITH
/// ORDINALITY` of the series the calls are made over), and a value that is
/// one step past the one before it continues a run; anything else (a wrap,
/// another caller's calls in between) starts one. Each run is one row: a
/// strict take of a million numbers answers with one or two rows, not a
/// million. (Grouping by `value - n × increment` instead merged two values
/// of ours a full lap of other callers' apart, with every number between
/// them, into one run: a test hammers a ten-number ring from four threads.)
///
/// The shared advisory lock is for PEZ releases before 0.2 that may still
/// run against the database during a rolling upgrade: their give-backs
/// serialise with reservations only through that lock's exclusive form.
pub fn take(
    conn: &mut PgConnection,
    call: &Call,
    seq: &Described,
    generation: i64,
    steps: u64,
) -> QueryResult<Taken> {
    let runs = diesel::sql_query(format!(
        "WITH settings AS MATERIALIZED ( \
                SELECT set_config('application_name', $5, true) AS token, \
                       set_config('lock_timeout', $6, true) AS lock_timeout, \
                       set_config('synchronous_commit', {DURABLE}, true) AS durable), \
              fence AS MATERIALIZED ( \
                SELECT pg_logical_emit_message(true, 'pez', 'reserve') AS lsn, \
                       pg_advisory_xact_lock_shared((x'50455A00'::bigint << 32) | $1) AS old \
                  FROM settings), \
              shape AS MATERIALIZED ( \
                SELECT s.seqincrement, m.laps FROM pg_sequence s, pez.sequences m \
                 WHERE s.seqrelid = $1::oid AND m.name = $3 AND m.generation = $4), \
              taken AS MATERIALIZED ( \
                SELECT g.n, nextval($1::oid::regclass) AS value, shape.seqincrement AS step \
                  FROM fence, shape, generate_series(1, $2) WITH ORDINALITY AS g(i, n)), \
              marked AS MATERIALIZED ( \
                SELECT n, value, \
                       CASE WHEN value::numeric = lag(value) OVER (ORDER BY n)::numeric + step \
                            THEN 0 ELSE 1 END AS starts_run \
                  FROM taken), \
              runs AS MATERIALIZED ( \
                SELECT n, value, sum(starts_run) OVER (ORDER BY n) AS run FROM marked), \
              counted AS MATERIALIZED ( \
                SELECT p.increment FROM pg_sequence_parameters($1::oid) p \
                 WHERE EXISTS (SELECT 1 FROM taken)), \
              lap AS ( \
                UPDATE pez.sequences \
                   SET laps = laps + (SELECT count(*) FROM taken WHERE value = $7) \
                 WHERE name = $3 AND EXISTS (SELECT 1 FROM taken WHERE value = $7) \
                RETURNING laps) \
         SELECT (array_agg(runs.value ORDER BY runs.n))[1] AS first, \
                (array_agg(runs.value ORDER BY runs.n DESC))[1] AS last, \
                max(shape.seqincrement) AS increment_by, \
                max(counted.increment) AS counted_with, \
                coalesce((SELECT laps FROM lap), max(shape.laps)) AS laps \
           FROM runs, shape, counted \
          GROUP BY runs.run \
          ORDER BY runs.run"
    ))
    .bind::<BigInt, _>(seq.oid)
    .bind::<BigInt, _>(steps as i64)
    .bind::<Text, _>(&seq.spec.name)
    .bind::<BigInt, _>(generation)
    .bind::<Text, _>(&call.token)
    .bind::<Text, _>(call.millis())
    .bind::<BigInt, _>(seq.spec.origin())
    .load::<Run>(conn)?;
    let Some(laps) = runs.iter().map(|run| run.laps).max() else {
        return Ok(Taken::Stale);
    };
    if runs
        .iter()
        .any(|run| run.increment_by != seq.increment || run.counted_with != seq.increment)
    {
        return Ok(Taken::Altered);
    }
    Ok(Taken::Blocks(blocks(seq, &runs), laps))
}

/// Each run's block: from its first value to the end of its last value's
/// step, cut at the end of the range.
fn blocks(seq: &Described, runs: &[Run]) -> Vec<Block> {
    runs.iter()
        .map(|run| {
            let (first, _) = seq.spec.cut(run.first, seq.step());
            let (last, _) = seq.spec.cut(run.last, seq.step());
            Block {
                first: first.first,
                last: last.last,
                direction: first.direction,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::SequenceSpec;

    fn forward() -> Described {
        Described {
            oid: 1,
            spec: SequenceSpec::forward(),
            increment: 1000,
            generation: 1,
            laps: 0,
            relation: "pez.\"forward\"".into(),
            original: None,
        }
    }

    fn run(first: i64, last: i64) -> Run {
        Run {
            first,
            last,
            increment_by: 1000,
            counted_with: 1000,
            laps: 1,
        }
    }

    #[test]
    fn a_run_of_steps_is_one_block_cut_at_the_end_of_the_range() {
        let blocks = blocks(
            &forward(),
            &[run(i64::MAX - 1999, i64::MAX - 999), run(1, 1001)],
        );
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].first, blocks[0].last),
            (i64::MAX - 1999, i64::MAX)
        );
        assert_eq!((blocks[1].first, blocks[1].last), (1, 2000));
    }
}
