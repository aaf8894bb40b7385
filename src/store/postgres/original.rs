//! Taking over from the original PEZ, in place.
//!
//! The original PEZ (Python, one `nextval()` per number) kept its numbers in
//! two sequences of the database's default schema: `forward_seq` (1, 2, ...
//! 2^63-1, then 1 again) and `backward_seq` (2^63-1 down to 1, then again),
//! each `INCREMENT BY 1` (or -1) and `CYCLE`. Pointed at a database that
//! holds them, PEZ never starts beside them at 1: its `forward` and
//! `reverse` *continue* them. Every number then comes from the one counter
//! PostgreSQL keeps, which is what lets original nodes and PEZ instances
//! serve side by side during a rolling cutover, and the original take over
//! again after a rollback, without a number ever coming out twice.
//!
//! Taking one over ([`take_over`]) is one transaction, under the catalog
//! lock (instances starting at once take turns):
//!
//! 1. `ALTER SEQUENCE ... INCREMENT BY 1000` (-1000 for `backward_seq`):
//!    this takes the sequence's exclusive lock, which holds off every
//!    `nextval()` of anyone's until the commit, and makes one `nextval()`
//!    reserve a block of 1,000, as PEZ's own sequences do. An original node
//!    that still runs gets the first number of a block per call and leaves
//!    the rest unused: numbers 1,000 apart, never one PEZ issues.
//! 2. Where it stands, read under that lock; and where PEZ's own
//!    `pez."forward"` stands if PEZ ran on this database before. The
//!    sequence is set to the further of the two, so nothing either issued
//!    comes out again.
//! 3. `pez.sequences` records that `forward` lives in that sequence, with a
//!    new generation (instances that held blocks of PEZ's own sequence drop
//!    them), and PEZ's own sequence is dropped (nobody leases from it again).
//!
//! Rolling back: stop PEZ, and the original's nodes go on from where the
//! sequence stands: past every block PEZ reserved. [`hand_back`] (`pez
//! handback`) sets the increment back to 1 from that same position, under
//! the same lock, so they count in ones again.

use super::catalog::{self, stands_after};
use super::{CATALOG_LOCK, LEASE_STEP};
use crate::config::PgSettings;
use crate::sequence::{Direction, SequenceSpec};
use crate::store::OpenError;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

/// The PEZ sequence that continues each of the original's, by name.
const ORIGINALS: [(&str, &str); 2] = [("forward", "forward_seq"), ("reverse", "backward_seq")];

/// Where a PEZ sequence that continues one of the original's stands, for
/// the start-up log, `pez migrate` and `pez handback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continued {
    /// `forward` or `reverse`.
    pub name: &'static str,
    /// The original's sequence, `schema.name`.
    pub original: String,
    /// What happened now.
    pub change: Change,
    /// The first number of the next reservation.
    pub next: i64,
}

/// What [`take_over`] or [`hand_back`] did to one of the original's sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Taken over just now; the original alone would have gone on at
    /// `original_next`, PEZ's own sequence at `own_next` (if PEZ issued
    /// numbers here before).
    TakenOver {
        /// The original's own next number.
        original_next: i64,
        /// PEZ's own sequence's next number, if it had one.
        own_next: Option<i64>,
    },
    /// Taken over before; nothing changed.
    AlreadyTakenOver,
    /// Handed back just now: the original's nodes count in ones again.
    HandedBack,
    /// Handed back before; nothing changed.
    AlreadyHandedBack,
}

impl std::fmt::Display for Continued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, original, next) = (self.name, &self.original, self.next);
        match self.change {
            Change::TakenOver {
                original_next,
                own_next,
            } => {
                write!(
                    f,
                    "{name} now continues the original PEZ's {original}, whose next number \
                     was {original_next}"
                )?;
                if let Some(own) = own_next {
                    write!(f, " and PEZ's own {name}'s {own}")?;
                }
                write!(
                    f,
                    "; the next lease starts at {next}, and original nodes that still call \
                     nextval() get numbers 1000 apart from it, never one PEZ issues"
                )
            }
            Change::AlreadyTakenOver => write!(
                f,
                "{name} continues the original PEZ's {original}; the next lease starts at {next}"
            ),
            Change::HandedBack => write!(
                f,
                "{name}: the original PEZ's {original} counts in ones again, from {next} (past \
                 every number PEZ reserved)"
            ),
            Change::AlreadyHandedBack => write!(
                f,
                "{name}: the original PEZ's {original} counts in ones already; its next number \
                 is {next}"
            ),
        }
    }
}

/// Why PEZ cannot take over or hand back: the database refuses for good
/// (a missing right, a sequence not shaped as the original's), or a call
/// failed and may work if tried again.
#[derive(Debug)]
enum Refusal {
    Final(String),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Refusal::Db(e)
    }
}

impl Refusal {
    fn into_open_error(self, settings: &PgSettings, what: &str) -> OpenError {
        match self {
            Refusal::Final(why) => OpenError::Setup(
                settings.scrub(&format!("PostgreSQL at {}: {why}", settings.description)),
            ),
            Refusal::Db(e) => OpenError::Unavailable(settings.scrub(&format!(
                "PostgreSQL at {}: {what}: {}",
                settings.description,
                e.to_string().lines().next().unwrap_or_default()
            ))),
        }
    }
}

/// A native sequence and what PEZ needs to know of it.
#[derive(Debug, Clone, QueryableByName)]
struct Native {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    increment_by: i64,
    #[diesel(sql_type = BigInt)]
    min_value: i64,
    #[diesel(sql_type = BigInt)]
    max_value: i64,
    #[diesel(sql_type = Bool)]
    cycle: bool,
    /// Whether this user owns it (or is a member of the owning role).
    #[diesel(sql_type = Bool)]
    owned: bool,
    #[diesel(sql_type = Text)]
    owner: String,
    /// Whether this user may read where it stands.
    #[diesel(sql_type = Bool)]
    readable: bool,
    /// Whether this user may use its schema (reach it at all).
    #[diesel(sql_type = Bool)]
    schema_usable: bool,
}

impl Native {
    /// `schema.name`, for people.
    fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Quoted, for SQL.
    fn relation(&self) -> String {
        catalog::relation(&self.schema, &self.name)
    }

    /// Sets its increment (and a cache of 1) for the rest of the
    /// transaction, which takes its exclusive lock and rewrites its storage
    /// (a `setval()` after it rolls back with the transaction). While the
    /// ALTER waits for the lock, every nextval() of the original's nodes
    /// waits behind it: so it waits briefly (an original's transaction left
    /// open holds the lock; the caller tries again later).
    fn set_increment(&self, conn: &mut PgConnection, increment: i64) -> QueryResult<()> {
        diesel::sql_query("SET LOCAL lock_timeout = '200ms'").execute(conn)?;
        diesel::sql_query(format!(
            "ALTER SEQUENCE {} INCREMENT BY {increment} CACHE 1",
            self.relation()
        ))
        .execute(conn)?;
        Ok(())
    }

    /// Where it stands: the first number of the next nextval()'s block.
    /// Read under its exclusive lock, it stays true until the commit.
    fn stands(&self, conn: &mut PgConnection, spec: &SequenceSpec) -> QueryResult<Option<i64>> {
        let (last_value, is_called) = catalog::position(conn, &self.relation())?;
        Ok(stands_after(
            spec,
            self.increment_by.unsigned_abs().max(1),
            last_value,
            is_called,
        ))
    }
}

/// Every sequence called `relname`, in any schema.
fn natives(conn: &mut PgConnection, relname: &str) -> QueryResult<Vec<Native>> {
    diesel::sql_query(
        "SELECT c.oid::bigint AS oid, n.nspname::text AS schema, c.relname::text AS name, \
                s.seqincrement AS increment_by, s.seqmin AS min_value, s.seqmax AS max_value, \
                s.seqcycle AS cycle, pg_has_role(c.relowner, 'USAGE') AS owned, \
                pg_get_userbyid(c.relowner)::text AS owner, \
                has_sequence_privilege(c.oid, 'SELECT') AS readable, \
                has_schema_privilege(n.oid, 'USAGE') AS schema_usable \
           FROM pg_class c \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
           JOIN pg_sequence s ON s.seqrelid = c.oid \
          WHERE c.relname = $1 AND c.relkind = 'S'",
    )
    .bind::<Text, _>(relname)
    .load(conn)
}

#[derive(QueryableByName)]
struct SearchPath {
    #[diesel(sql_type = Text)]
    search_path: String,
    #[diesel(sql_type = Text)]
    user: String,
}

/// The schemas of a `search_path` setting, in order, as PostgreSQL reads
/// them: comma-separated, double-quoted or not (folded to lower case when
/// not), `$user` standing for the session's user.
fn search_path_schemas(setting: &str, user: &str) -> Vec<String> {
    let mut schemas = Vec::new();
    let mut chars = setting.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let Some(&first) = chars.peek() else {
            return schemas;
        };
        let mut item = String::new();
        let quoted = first == '"';
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                // A doubled quote is one quote; a single one ends the name.
                if c == '"' && chars.next_if_eq(&'"').is_none() {
                    break;
                }
                item.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                item.push(c);
            }
            item = item.trim_end().to_lowercase();
        }
        schemas.push(if item == "$user" {
            user.to_owned()
        } else {
            item
        });
    }
}

/// The original's sequence called `relname`, if this database has one: the
/// first in PEZ's user's search path (the one the original's unqualified
/// `nextval('...')` found, when PEZ uses the original's user). Found
/// whether or not this user may use it, so a user without the rights is
/// stopped, never started beside it. A PEZ sequence of that name (in the
/// schema `pez`, made through the admin API) is not the original's. One
/// that exists only outside the search path stops PEZ too: PEZ cannot tell
/// whether the original used it.
fn find_original(conn: &mut PgConnection, relname: &str) -> Result<Option<Native>, Refusal> {
    let path = diesel::sql_query(
        "SELECT current_setting('search_path') AS search_path, current_user::text AS user",
    )
    .get_result::<SearchPath>(conn)?;
    let named_by_pez = diesel::sql_query(
        "SELECT count(*) AS count FROM pez.sequences WHERE name = $1 AND relation_name IS NULL",
    )
    .bind::<Text, _>(relname)
    .get_result::<Count>(conn)?
    .count
        > 0;
    let found: Vec<Native> = natives(conn, relname)?
        .into_iter()
        .filter(|n| !(named_by_pez && n.schema == catalog::SCHEMA))
        .collect();
    let path = search_path_schemas(&path.search_path, &path.user);
    if let Some(on_path) = path
        .iter()
        .find_map(|schema| found.iter().find(|n| &n.schema == schema))
    {
        return Ok(Some(on_path.clone()));
    }
    match found.first() {
        None => Ok(None),
        Some(elsewhere) => Err(Refusal::Final(format!(
            "this database holds {}, which is not on this user's search_path ({}): PEZ cannot \
             tell whether the original PEZ took its numbers from it. If it did, put its schema \
             on the user's search_path (ALTER ROLE ... SET search_path = ...) and start PEZ \
             again; if not, rename or drop it",
            elsewhere.shown(),
            path.join(", ")
        ))),
    }
}

#[derive(QueryableByName)]
struct Mapping {
    #[diesel(sql_type = Nullable<Text>)]
    relation_schema: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    relation_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    relation_oid: Option<i64>,
}

/// The original's sequence `pez.sequences` says a PEZ sequence continues.
struct Recorded {
    schema: String,
    name: String,
    /// The oid it had when PEZ took it over (`None`: an operator cleared it
    /// to accept the one there now).
    oid: Option<i64>,
}

impl Recorded {
    fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The sequence there now, if any; refused if it is not the one PEZ
    /// took over (dropped and made again since, or the database restored
    /// from a dump: its numbers may repeat ones issued).
    fn find(&self, conn: &mut PgConnection, name: &str) -> Result<Option<Native>, Refusal> {
        let there = natives(conn, &self.name)?
            .into_iter()
            .find(|n| n.schema == self.schema);
        match (&there, self.oid) {
            (Some(native), Some(oid)) if native.oid != oid => Err(Refusal::Final(format!(
                "{} is not the sequence {name} took over: it was dropped and created again \
                 since (or the database restored from a dump), and may issue numbers issued \
                 before. With every PEZ stopped, make sure it stands past every number issued (SELECT \
                 setval(...)), then accept it: UPDATE pez.sequences SET relation_oid = NULL, \
                 generation = nextval('pez.generations') WHERE name = '{name}'",
                self.shown()
            ))),
            _ => Ok(there),
        }
    }
}

/// What `pez.sequences` records for `name`, if it continues the original's.
fn recorded(conn: &mut PgConnection, name: &str) -> QueryResult<Option<Recorded>> {
    let row = diesel::sql_query(
        "SELECT relation_schema, relation_name, relation_oid FROM pez.sequences WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .get_result::<Mapping>(conn)
    .optional()?;
    Ok(row.and_then(|m| {
        let (schema, name) = m.relation_schema.zip(m.relation_name)?;
        Some(Recorded {
            schema,
            name,
            oid: m.relation_oid,
        })
    }))
}

/// What a sequence of the original must look like for PEZ to continue it:
/// the range and cycle of `spec`, counting in its direction by one (as the
/// original made it) or by PEZ's step (taken over already).
fn check_shape(native: &Native, spec: &SequenceSpec) -> Result<(), Refusal> {
    let sign = increment(spec, 1);
    let step_ok = [sign, increment(spec, LEASE_STEP)].contains(&native.increment_by);
    if step_ok && native.min_value == spec.min && native.max_value == spec.max && native.cycle {
        return Ok(());
    }
    Err(Refusal::Final(format!(
        "{} (the original PEZ's sequence, which {} continues) is INCREMENT BY {} MINVALUE {} \
         MAXVALUE {} {}, not the original's INCREMENT BY {sign} MINVALUE {} MAXVALUE {} CYCLE; \
         PEZ will not start beside it (that could issue its numbers again): make it so again \
         with ALTER SEQUENCE, or ask the PEZ team",
        native.shown(),
        spec.name,
        native.increment_by,
        native.min_value,
        native.max_value,
        if native.cycle { "CYCLE" } else { "NO CYCLE" },
        spec.min,
        spec.max,
    )))
}

/// What a user that may not touch the original's sequence is told to run.
#[derive(Debug, Clone, Copy)]
enum Remedy {
    /// Take it over: make the user its owner, or let the owner do it.
    TakeOver,
    /// Hand it back: only its owner may.
    HandBack,
}

/// Refuses unless this user owns `native` and may use its schema, which
/// altering it (and, later, giving blocks back to it) needs.
fn check_owned(native: &Native, remedy: Remedy) -> Result<(), Refusal> {
    let relation = native.relation();
    let owner = &native.owner;
    if !native.schema_usable {
        return Err(Refusal::Final(format!(
            "PEZ needs {} (the original PEZ's), and this user may not use its schema: run \
             `GRANT USAGE ON SCHEMA {} TO <pez user>;`",
            native.shown(),
            catalog::quote(&native.schema),
        )));
    }
    if native.owned {
        return Ok(());
    }
    Err(Refusal::Final(match remedy {
        Remedy::TakeOver => format!(
            "PEZ must take over {}, which belongs to {owner}, and this user may not (it must \
             own it): as {owner} run `ALTER SEQUENCE {relation} OWNER TO <pez user>;`, or run \
             `pez migrate` with these settings as {owner}",
            native.shown()
        ),
        Remedy::HandBack => format!(
            "only the owner of {} ({owner}) may hand it back: run `pez handback` with these \
             settings as {owner}",
            native.shown()
        ),
    }))
}

/// The original PEZ's sequences this database holds that PEZ has not taken
/// over yet (`schema.name` each): what a command that does not take them
/// over mentions. Errors count as none: it is only a hint.
pub fn not_taken_over(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    let mut waiting = Vec::new();
    for (name, relname) in ORIGINALS {
        if recorded(conn, name)?.is_some() {
            continue;
        }
        if let Ok(Some(native)) = find_original(conn, relname) {
            waiting.push(native.shown());
        }
    }
    Ok(waiting)
}

/// Points `forward` and `reverse` at the original PEZ's sequences where this
/// database has them (see the module docs), and says where each stands.
/// Idempotent: sequences taken over before are only reported. Stops PEZ
/// with one line when a sequence of the original's is here but cannot be
/// continued safely. One attempt; a failed call is worth another.
pub fn take_over(
    conn: &mut PgConnection,
    settings: &PgSettings,
) -> Result<Vec<Continued>, OpenError> {
    under_catalog_lock(
        conn,
        settings,
        "cannot take over the original PEZ's sequences",
        |conn| {
            let mut continued = Vec::new();
            for (name, original) in ORIGINALS {
                if let Some(done) = take_over_one(conn, name, original)? {
                    continued.push(done);
                }
            }
            Ok(continued)
        },
    )
}

/// The INCREMENT that moves `spec` by `numbers` per nextval(), in its
/// direction.
fn increment(spec: &SequenceSpec, numbers: u64) -> i64 {
    let numbers = numbers as i64;
    match spec.direction {
        Direction::Ascending => numbers,
        Direction::Descending => -numbers,
    }
}

/// Runs `work` in one transaction holding the catalog lock, so that starts,
/// `pez migrate` and `pez handback` take turns; a refusal or an error is
/// reported as `what` failing.
fn under_catalog_lock<T>(
    conn: &mut PgConnection,
    settings: &PgSettings,
    what: &str,
    work: impl FnOnce(&mut PgConnection) -> Result<T, Refusal>,
) -> Result<T, OpenError> {
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(CATALOG_LOCK)
            .execute(conn)?;
        work(conn)
    })
    .map_err(|e: Refusal| e.into_open_error(settings, what))
}

fn builtin(name: &str) -> SequenceSpec {
    if name == "forward" {
        SequenceSpec::forward()
    } else {
        SequenceSpec::reverse()
    }
}

fn take_over_one(
    conn: &mut PgConnection,
    name: &'static str,
    relname: &str,
) -> Result<Option<Continued>, Refusal> {
    let spec = builtin(name);
    let step = increment(&spec, LEASE_STEP);
    let recorded = recorded(conn, name)?;
    let native = match &recorded {
        Some(record) => record.find(conn, name)?.ok_or_else(|| {
            Refusal::Final(format!(
                "{name} continued the original PEZ's {}, which is gone; PEZ will not start \
                 {name} over (it would issue its numbers again): create it again past every \
                 number issued (CREATE SEQUENCE ... START WITH ...), accept it (UPDATE \
                 pez.sequences SET relation_oid = NULL, generation = \
                 nextval('pez.generations') WHERE name = '{name}') and start PEZ",
                record.shown()
            ))
        })?,
        None => match find_original(conn, relname)? {
            Some(native) => native,
            None => return Ok(None),
        },
    };
    check_shape(&native, &spec)?;
    let taken_over_before = recorded
        .as_ref()
        .is_some_and(|record| record.oid == Some(native.oid))
        && native.increment_by == step;
    if taken_over_before {
        if !native.readable {
            // Nothing to do; the check of the user's rights that follows
            // says what to grant.
            return Ok(None);
        }
        let next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
        return Ok(Some(Continued {
            name,
            original: native.shown(),
            change: Change::AlreadyTakenOver,
            next,
        }));
    }
    check_owned(&native, Remedy::TakeOver)?;
    // PEZ's own sequence, if PEZ ran here before: it is dropped, so this
    // user must own it too.
    let own = natives(conn, name)?
        .into_iter()
        .find(|n| n.schema == catalog::SCHEMA);
    if let Some(own) = &own {
        check_owned(own, Remedy::TakeOver)?;
    }
    // The exclusive lock first, and what is read after it stays true until
    // the commit. Reading the position does not need the new increment:
    // ALTER leaves last_value and is_called as they were.
    native.set_increment(conn, step)?;
    let original_next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
    let own_next = match &own {
        Some(own) => {
            catalog::lock_exclusively(conn, &own.relation())?;
            own.stands(conn, &spec)?
        }
        None => None,
    };
    // A fresh own sequence (PEZ issued nothing here) is not worth a word.
    let own_next = own_next.filter(|own| *own != spec.origin());
    // The further of the two (the range is 2^63-1 numbers: neither has
    // wrapped).
    let next = match (spec.direction, own_next) {
        (Direction::Ascending, Some(own)) => original_next.max(own),
        (Direction::Descending, Some(own)) => original_next.min(own),
        (_, None) => original_next,
    };
    // Rolls back with the transaction: the ALTER rewrote the sequence's
    // storage in it.
    catalog::set_next(conn, &native.relation(), next)?;
    diesel::sql_query(
        "UPDATE pez.sequences SET relation_schema = $2, relation_name = $3, relation_oid = $4, \
                generation = nextval('pez.generations') WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(&native.schema)
    .bind::<Text, _>(&native.name)
    .bind::<BigInt, _>(native.oid)
    .execute(conn)?;
    if let Some(own) = &own {
        diesel::sql_query(format!("DROP SEQUENCE {}", own.relation())).execute(conn)?;
    }
    Ok(Some(Continued {
        name,
        original: native.shown(),
        change: Change::TakenOver {
            original_next,
            own_next,
        },
        next,
    }))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Gives `forward` and `reverse` back to the original PEZ's nodes: each of
/// the original's sequences PEZ continues counts in ones again, from the
/// first number past every block reserved, under its exclusive lock.
/// Refused while other PEZ sessions are connected to the database: a PEZ
/// instance still running would go on at one number per `nextval()`, and
/// take the sequences over again at its next start.
pub fn hand_back(
    conn: &mut PgConnection,
    settings: &PgSettings,
) -> Result<Vec<Continued>, OpenError> {
    under_catalog_lock(
        conn,
        settings,
        "cannot hand back the original PEZ's sequences",
        |conn| {
            let others = diesel::sql_query(
                "SELECT count(*) AS count FROM pg_stat_activity \
              WHERE application_name = 'pez' AND datname = current_database() \
                AND pid <> pg_backend_pid()",
            )
            .get_result::<Count>(conn)?
            .count;
            if others > 0 {
                return Err(Refusal::Final(format!(
                    "{others} session(s) of PEZ (application_name pez) are connected to this \
                 database: stop every PEZ instance first (one still running would take the \
                 sequences over again when it restarts)"
                )));
            }
            let mut handed = Vec::new();
            for (name, _) in ORIGINALS {
                let Some(record) = recorded(conn, name)? else {
                    continue;
                };
                let Some(native) = record.find(conn, name)? else {
                    continue;
                };
                let spec = builtin(name);
                let sign = increment(&spec, 1);
                check_owned(&native, Remedy::HandBack)?;
                if native.increment_by == sign {
                    let next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
                    handed.push(Continued {
                        name,
                        original: native.shown(),
                        change: Change::AlreadyHandedBack,
                        next,
                    });
                    continue;
                }
                native.set_increment(conn, sign)?;
                // Where it stands with the step it had: past every block.
                let next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
                catalog::set_next(conn, &native.relation(), next)?;
                catalog::new_generation(conn, name)?;
                handed.push(Continued {
                    name,
                    original: native.shown(),
                    change: Change::HandedBack,
                    next,
                });
            }
            Ok(handed)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_paths_are_read_as_postgresql_reads_them() {
        assert_eq!(
            search_path_schemas("\"$user\", public", "pez"),
            vec!["pez", "public"]
        );
        assert_eq!(
            search_path_schemas("  Legacy ,\"Odd \"\"one\"\"\",public", "u"),
            vec!["legacy", "Odd \"one\"", "public"]
        );
        assert_eq!(search_path_schemas("$user", "u"), vec!["u"]);
        assert!(search_path_schemas("", "u").is_empty());
    }

    fn native(increment_by: i64, min: i64, max: i64, cycle: bool) -> Native {
        Native {
            oid: 1,
            schema: "public".into(),
            name: "forward_seq".into(),
            increment_by,
            min_value: min,
            max_value: max,
            cycle,
            owned: true,
            owner: "pez".into(),
            readable: true,
            schema_usable: true,
        }
    }

    #[test]
    fn only_sequences_shaped_as_the_originals_are_continued() {
        let forward = SequenceSpec::forward();
        let reverse = SequenceSpec::reverse();
        assert!(check_shape(&native(1, 1, i64::MAX, true), &forward).is_ok());
        assert!(check_shape(&native(1000, 1, i64::MAX, true), &forward).is_ok());
        assert!(check_shape(&native(-1, 1, i64::MAX, true), &reverse).is_ok());
        assert!(check_shape(&native(-1000, 1, i64::MAX, true), &reverse).is_ok());
        for wrong in [
            native(-1, 1, i64::MAX, true),
            native(5, 1, i64::MAX, true),
            native(1, 0, i64::MAX, true),
            native(1, 1, i32::MAX.into(), true),
            native(1, 1, i64::MAX, false),
        ] {
            let Err(Refusal::Final(why)) = check_shape(&wrong, &forward) else {
                panic!("{wrong:?} accepted");
            };
            assert!(why.contains("public.forward_seq"), "{why}");
        }
    }
}
