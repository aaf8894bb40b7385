//! The reservation: one autocommit statement of `nextval()` calls that is
//! durable before PostgreSQL answers, takes only from the incarnation and
//! generation the caller knows, reads the increment `nextval()` really
//! counted with, counts the laps a ring begins, and answers with one row
//! whatever the number of `nextval()` calls.

use super::call::Call;
use super::catalog::Described;
use crate::sequence::Block;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

/// At most this many nextval() calls per reservation: a million numbers of
/// a strict sequence, a billion of a leased one (in steps of 1,000). A
/// million calls take about a third of a second on PostgreSQL 15, and the
/// statement answers with one row (an array of the values).
pub const MAX_STEPS: u64 = 1_000_000;

#[derive(QueryableByName)]
struct Reservation {
    /// The values nextval() returned, in the order of the calls.
    #[diesel(sql_type = Array<BigInt>)]
    values: Vec<i64>,
    /// The increment the statement's snapshot shows.
    #[diesel(sql_type = BigInt)]
    increment_by: i64,
    /// The increment nextval() counted with.
    #[diesel(sql_type = BigInt)]
    counted_with: i64,
    /// The sequence's count of laps once the statement took its values.
    #[diesel(sql_type = BigInt)]
    laps: i64,
    /// The `synchronous_commit` the statement's commit runs with.
    #[diesel(sql_type = Text)]
    commits_with: String,
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
    /// The commit would run with this `synchronous_commit`, not `on` (or
    /// `remote_apply`): something of a DBA's undid what the function set
    /// (a setting attached to it, a trigger). Values were taken; they are
    /// not durable when PostgreSQL answers, so they are left as a gap.
    Weakened(String),
}

/// Calls nextval() `steps` times on the sequence `seq.oid`, in one
/// autocommit statement whose commit is durable, if the sequence still has
/// `generation` and the increment PEZ described; says what nextval()
/// really counted with, and the runs it took.
///
/// **A function.** The statement is the body of `pez.reserve()` (migration
/// `2026-12-07-000007_reserve_function`), which PEZ calls with one unnamed
/// statement. PEZ prepares no named statement (it works behind a pooler in
/// transaction mode, [`super::session`]), so sent as it is the statement
/// was planned afresh at every call: about 250 us of the half millisecond
/// a strict batch spent in PostgreSQL. A PL/pgSQL function keeps its
/// statements' plans for the life of the server process, whichever client
/// calls it; the call itself is cheap to plan. It is one statement in the
/// function, so one snapshot, as before. Its `search_path` is the catalog
/// (temporary tables last), so no schema a role or a session puts first
/// can stand in for `nextval()` or `pg_sequence`; PEZ checks at start that
/// the function is as its migration made it ([`function_problem`]).
///
/// **Its own settings.** The statement sets what it needs for itself
/// ([`super::call`]): the call's token as `application_name` (the
/// watchdog finds it by that), `lock_timeout`, and `synchronous_commit` at
/// [`DURABLE`](super::call::DURABLE) for its own commit, whatever the session, role, database or
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
/// **Laps.** On a ring (a cycling sequence of fewer than 2^62 numbers),
/// every value equal to the sequence's origin (the first number after a
/// wrap, or of a fresh sequence) begins a lap: the statement adds them to
/// `pez.sequences.laps` and answers with the count after it. The count can
/// miss a lap (a statement that fails after its `nextval()` calls), so no
/// give-back relies on it on PostgreSQL ([`super::catalog::SMALLEST_RING_GIVEN_BACK`]);
/// exports carry it, and the fault suite reads it.
///
/// **One row.** The values come back as one array in the order of the
/// calls (`WITH ORDINALITY` of the series the calls are made over), and
/// PEZ joins a value one step past the one before it into a block
/// ([`blocks`]); anything else (a wrap, another caller's calls in between)
/// starts one. (Grouping by `value - n × increment` in SQL merged two
/// values a full lap of other callers' calls apart, with every number
/// between them, into one block: a test hammers a ten-number ring from four
/// threads. Returning the array also made a strict take about a third
/// cheaper than grouping in SQL.)
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
    // `commits_with` is read once the function has returned: after a `SET`
    // attached to it was put back, and after any trigger its statement
    // fired; the commit runs with it.
    let found = diesel::sql_query(
        "SELECT taken AS values, increment_by, counted_with, laps, \
                pg_catalog.current_setting('synchronous_commit') AS commits_with \
           FROM pez.reserve($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<BigInt, _>(seq.oid)
    .bind::<BigInt, _>(steps as i64)
    .bind::<Text, _>(&seq.spec.name)
    .bind::<BigInt, _>(generation)
    .bind::<Text, _>(&call.token)
    .bind::<Text, _>(call.millis())
    .bind::<BigInt, _>(seq.spec.origin())
    // Counting laps costs a row update in the statement; only a ring needs
    // the count (see `counts_laps`).
    .bind::<Bool, _>(counts_laps(seq))
    .get_result::<Reservation>(conn)
    .optional()?;
    let Some(found) = found.filter(|found| !found.values.is_empty()) else {
        return Ok(Taken::Stale);
    };
    if found.increment_by != seq.increment || found.counted_with != seq.increment {
        return Ok(Taken::Altered);
    }
    if !matches!(found.commits_with.as_str(), "on" | "remote_apply") {
        return Ok(Taken::Weakened(found.commits_with));
    }
    Ok(Taken::Blocks(blocks(seq, &found.values), found.laps))
}

/// The migration that defines `pez.reserve()`, the reservation's statement.
const RESERVE_FUNCTION: &str =
    include_str!("../../../migrations/postgres/2026-12-07-000007_reserve_function/up.sql");

/// `pez.reserve()` as `to_regprocedure` names it.
pub const FUNCTION: &str = "pez.reserve(bigint, bigint, text, bigint, text, text, bigint, boolean)";

/// The same, every type named with its schema, for `to_regprocedure`: a
/// type of the session's search path cannot stand in.
pub const FUNCTION_QUALIFIED: &str = "pez.reserve(bigint, bigint, pg_catalog.text, bigint, \
     pg_catalog.text, pg_catalog.text, bigint, boolean)";

/// The settings the migration attaches to `pez.reserve()`, as `pg_proc`
/// holds them.
const FUNCTION_SETTINGS: [&str; 2] = [
    "plan_cache_mode=force_generic_plan",
    "search_path=pg_catalog, pg_temp",
];

/// The version diesel records for that migration.
const FUNCTION_MIGRATION: &str = "20261207000007";

/// The function's body as the migration writes it (between its
/// `$reserve$` quotes), which PostgreSQL keeps as it was given.
fn function_body() -> &'static str {
    RESERVE_FUNCTION
        .split("$reserve$")
        .nth(1)
        .expect("the migration quotes the body with $reserve$")
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    settings: Option<Vec<String>>,
    /// Volatile, security invoker, parallel unsafe, PL/pgSQL, and the only
    /// `pez.reserve` there is.
    #[diesel(sql_type = Bool)]
    as_made: bool,
    /// Triggers, rules or row security on `pez.sequences`, which the
    /// function updates when it counts laps: a trigger can lower the
    /// commit's `synchronous_commit` as a setting attached to it can.
    #[diesel(sql_type = Bool)]
    table_hooks: bool,
}

/// Why `pez.reserve()` in the database is not the one PEZ's migration made,
/// if it is not: missing, another body, other settings or attributes, an
/// overload beside it, or hooks on the table it updates. Every number
/// PEZ takes from PostgreSQL goes through it, and a setting attached to it
/// (`ALTER FUNCTION ... SET synchronous_commit = local`, or
/// `application_name`, `lock_timeout`) would undo what its statement sets
/// for its own commit: an owner's change of it must stop PEZ, not weaken
/// every reservation unseen. (Each reservation also reads the setting its
/// commit will run with, [`Taken::Weakened`]: this check says why early.)
pub fn function_problem(conn: &mut PgConnection) -> QueryResult<Option<String>> {
    let stored = diesel::sql_query(
        "SELECT p.prosrc AS body, p.proconfig AS settings, \
                p.provolatile = 'v' AND NOT p.prosecdef AND p.proparallel = 'u' \
                  AND l.lanname = 'plpgsql' \
                  AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc o \
                        WHERE o.pronamespace = p.pronamespace AND o.proname = p.proname) = 1 \
                  AS as_made, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t \
                         WHERE t.tgrelid = 'pez.sequences'::pg_catalog.regclass \
                           AND NOT t.tgisinternal) \
                  OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r \
                              WHERE r.ev_class = 'pez.sequences'::pg_catalog.regclass) \
                  OR (SELECT c.relrowsecurity FROM pg_catalog.pg_class c \
                       WHERE c.oid = 'pez.sequences'::pg_catalog.regclass) \
                  AS table_hooks \
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
          WHERE p.oid = pg_catalog.to_regprocedure($1)",
    )
    .bind::<Text, _>(FUNCTION_QUALIFIED)
    .get_result::<Stored>(conn)
    .optional()?;
    let remedy = format!(
        "as the owner of the schema pez, drop it if it is there, delete version \
         {FUNCTION_MIGRATION} from __diesel_schema_migrations, and run `pez migrate`"
    );
    Ok(match stored {
        None => Some(format!("{FUNCTION} is missing; {remedy}")),
        // A checkout that turned the migration's line ends into CRLF wrote
        // a body that differs only in them.
        Some(stored)
            if stored.body.replace("\r\n", "\n") != function_body().replace("\r\n", "\n") =>
        {
            Some(format!(
                "the body of {FUNCTION} is not the one PEZ's migration wrote; {remedy}"
            ))
        }
        Some(stored) if stored.settings.as_deref().unwrap_or_default() != FUNCTION_SETTINGS => {
            Some(format!(
                "{FUNCTION} has the settings {:?}, not {FUNCTION_SETTINGS:?} (a setting \
                 attached to it can undo the durability of its commit); {remedy}",
                stored.settings.unwrap_or_default()
            ))
        }
        Some(stored) if !stored.as_made => Some(format!(
            "{FUNCTION} is not volatile, security invoker, parallel unsafe and PL/pgSQL as \
             made, or another pez.reserve stands beside it; {remedy}"
        )),
        Some(stored) if stored.table_hooks => Some(
            "pez.sequences has a trigger, a rule or row security, which PEZ does not make: \
             one can lower the durability of a reservation's commit; as its owner, drop it"
                .to_owned(),
        ),
        Some(_) => None,
    })
}

/// Whether reservations of `seq` count the laps they begin: a cycling
/// sequence of fewer than 2^62 numbers (a ring). Of a larger one a full lap
/// is out of reach; a non-cycling one has none.
fn counts_laps(seq: &Described) -> bool {
    seq.spec.cycle && seq.spec.size() < super::catalog::SMALLEST_RING_GIVEN_BACK
}

/// The values nextval() returned, in the order of the calls, as blocks: a
/// value one step past the one before it continues a block (its step is
/// ours too), anything else (a wrap, another caller's calls in between)
/// starts one; each block runs from its first value to the end of its last
/// value's step, cut at the end of the range.
fn blocks(seq: &Described, values: &[i64]) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut previous: Option<i64> = None;
    for &value in values {
        let (step, _) = seq.spec.cut(value, seq.step());
        let continues = previous.and_then(|p| p.checked_add(seq.increment)) == Some(value);
        match blocks.last_mut() {
            Some(last) if continues => last.last = step.last,
            _ => blocks.push(step),
        }
        previous = Some(value);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::{Direction, Mode, SequenceSpec};

    fn described(spec: SequenceSpec, increment: i64) -> Described {
        Described {
            oid: 1,
            spec,
            increment,
            generation: 1,
            laps: 0,
            relation: "pez.\"s\"".into(),
            original: None,
        }
    }

    /// Both of the function's statements commit at the `synchronous_commit`
    /// every other durable commit of PEZ uses, spelled in SQL there.
    #[test]
    fn both_statements_of_the_function_commit_as_durable_as_the_rest() {
        let words = |sql: &str| sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let function = words(RESERVE_FUNCTION);
        assert_eq!(
            function
                .matches(&words(super::super::call::DURABLE))
                .count(),
            2,
            "{function}"
        );
        assert_eq!(function.matches("RETURN QUERY").count(), 2);
        assert_eq!(
            function
                .matches("pg_logical_emit_message(true, 'pez', 'reserve')")
                .count(),
            2
        );
    }

    #[test]
    fn consecutive_steps_are_one_block_and_a_wrap_starts_another() {
        let forward = described(SequenceSpec::forward(), 1000);
        let blocks = blocks(&forward, &[i64::MAX - 1999, i64::MAX - 999, 1, 1001]);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].first, blocks[0].last),
            (i64::MAX - 1999, i64::MAX)
        );
        assert_eq!((blocks[1].first, blocks[1].last), (1, 2000));
    }

    #[test]
    fn values_a_lap_of_other_callers_apart_are_never_joined_over_what_lies_between() {
        // A ring of ten, one number a call: this statement got 1 first and
        // 10 last, other callers the rest in between.
        let ring = SequenceSpec::new("r", Direction::Ascending, 1, 10, None, true, Mode::Strict)
            .expect("spec");
        let blocks = blocks(&described(ring, 1), &[1, 10]);
        let numbers: Vec<i64> = blocks.iter().flat_map(Block::iter).collect();
        assert_eq!(numbers, vec![1, 10]);
    }

    #[test]
    fn descending_steps_join_down_to_the_bottom_of_bigint() {
        let reverse = described(SequenceSpec::reverse(), -1000);
        let blocks = blocks(&reverse, &[2000, 1000, i64::MAX]);
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].first, blocks[0].last), (2000, 1));
        assert_eq!(blocks[1].first, i64::MAX);
    }
}
