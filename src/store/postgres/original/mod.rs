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
//!    them), and a mark that PEZ also writes into the sequence's comment:
//!    how it knows the sequence again, in a database restored from a dump
//!    too, while one dropped and created again (at 1, say) is refused. PEZ's
//!    own sequence is dropped (nobody leases from it again).
//!
//! The transaction commits on the primary alone, so the lock that holds off
//! the original's nodes is never held while a standby is awaited; a fence
//! then confirms it ([`super::call`]).
//!
//! Rolling back: stop PEZ, and the original's nodes go on from where the
//! sequence stands: past every block PEZ reserved. [`hand_back`] (`pez
//! handback`) sets the increment back to 1 from that same position, under
//! the same lock, so they count in ones again.

mod native;

use super::catalog;
use super::catalog::{CATALOG_LOCK, LEASE_STEP};
use super::instances;
use crate::sequence::{Direction, SequenceSpec};
use crate::store::{StoreError, TxError};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use native::{Remedy, check_owned, check_shape, find_original, natives, recorded};

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

/// A refusal for good: a missing right, a sequence not shaped as the
/// original's; the text says what to do.
fn refused(why: String) -> TxError {
    TxError::Store(StoreError::Refused(why))
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

fn builtin(name: &str) -> SequenceSpec {
    if name == "forward" {
        SequenceSpec::forward()
    } else {
        SequenceSpec::reverse()
    }
}

/// Takes the catalog lock, so that starts, `pez migrate` and `pez
/// handback` take turns.
fn catalog_lock(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(CATALOG_LOCK)
        .execute(conn)?;
    Ok(())
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

/// A sequence of the original's that a server will take over, and where
/// `forward` or `reverse` will then start: past both it and PEZ's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `forward` or `reverse`.
    pub name: &'static str,
    /// The original's sequence, `schema.name`.
    pub original: String,
    /// Where the next reservation will start once it is taken over.
    pub next: i64,
}

/// Where `forward` and `reverse` will start once a server takes the
/// original's sequences over, for those not taken over yet: what a command
/// that only looks (`pez sequence list`, `export`) must report, so that a
/// backup made before the take-over never lets the original's numbers out
/// again. Read without any lock: the original's nodes may move on, never
/// back. An original this role may not read is refused: PEZ's own
/// position could be far behind it, and an export that said so would let
/// the original's numbers out again once imported.
pub fn pending(conn: &mut PgConnection) -> Result<Vec<Pending>, TxError> {
    let mut pending = Vec::new();
    for (name, relname) in ORIGINALS {
        if recorded(conn, name)?.is_some() {
            continue;
        }
        let Ok(Some(native)) = find_original(conn, relname) else {
            continue;
        };
        if !native.readable {
            return Err(StoreError::Refused(format!(
                "the original PEZ's sequence {} is in this database and not yet taken over, \
                 and this role may not read it: where {name} will start cannot be known, so \
                 nothing is shown or exported (grant SELECT on it, or run as the service's role)",
                native.shown()
            ))
            .into());
        }
        let spec = builtin(name);
        let original_next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
        let own_next = match catalog::describe(conn, name)? {
            Some(own) => catalog::frontier(conn, &own)?,
            None => None,
        };
        pending.push(Pending {
            name,
            original: native.shown(),
            next: further(&spec, original_next, own_next),
        });
    }
    Ok(pending)
}

/// The further of the original's position and PEZ's own (the range is
/// 2^63-1 numbers: neither has wrapped).
fn further(spec: &SequenceSpec, original: i64, own: Option<i64>) -> i64 {
    match (spec.direction, own) {
        (Direction::Ascending, Some(own)) => original.max(own),
        (Direction::Descending, Some(own)) => original.min(own),
        (_, None) => original,
    }
}

/// Points `forward` and `reverse` at the original PEZ's sequences where this
/// database has them (see the module docs), and says where each stands.
/// Idempotent: sequences taken over before are only reported. Refuses
/// with one line when a sequence of the original's is here but cannot be
/// continued safely. Runs in the caller's transaction.
pub fn take_over(conn: &mut PgConnection) -> Result<Vec<Continued>, TxError> {
    catalog_lock(conn)?;
    let mut continued = Vec::new();
    for (name, original) in ORIGINALS {
        if let Some(done) = take_over_one(conn, name, original)? {
            continued.push(done);
        }
    }
    Ok(continued)
}

/// The mark a take-over writes into the sequence's comment and records:
/// unique to this take-over.
fn new_mark(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!(
        "PEZ continues this sequence as {name}; do not drop it (mark {:016x})",
        hasher.finish()
    )
}

fn take_over_one(
    conn: &mut PgConnection,
    name: &'static str,
    relname: &str,
) -> Result<Option<Continued>, TxError> {
    let spec = builtin(name);
    let step = increment(&spec, LEASE_STEP);
    let recorded = recorded(conn, name)?;
    let native = match &recorded {
        Some(record) => record.find(conn, name)?.ok_or_else(|| {
            refused(format!(
                "{name} continued the original PEZ's {}, which is gone; PEZ will not start \
                 {name} over (it would issue its numbers again): create it again past every \
                 number issued (CREATE SEQUENCE ... START WITH ...), accept it (UPDATE \
                 pez.sequences SET relation_oid = NULL, relation_mark = NULL, generation = \
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
    let taken_over_before = recorded.as_ref().is_some_and(|record| {
        record.is(&native) && (record.oid.is_some() || record.mark.is_some())
    }) && native.increment_by == step;
    if taken_over_before {
        if !native.readable {
            // Nothing to do; the check of the user's rights that follows
            // says what to grant.
            return Ok(None);
        }
        if recorded
            .as_ref()
            .is_some_and(|record| record.mark.is_none())
            && native.owned
        {
            // Taken over before marks: marked now, while its oid still
            // proves it is the one.
            mark(conn, name, &native)?;
        }
        let next = native.stands(conn, &spec)?.unwrap_or(spec.origin());
        match recorded.as_ref().and_then(|record| record.floor) {
            // Behind where it stood when PEZ took it over: brought back (a
            // restored or schema-only dump, a setval by hand). Numbers PEZ
            // issued from it would come out again.
            Some(floor) if !spec.is_at_or_ahead(next, floor) => {
                return Err(refused(format!(
                    "{} stands at {next}, behind {floor}, where it stood when {name} took it \
                     over: it was moved back (a database restored from an older or a \
                     schema-only dump?), and numbers PEZ issued from it would come out again. \
                     With every PEZ stopped, move it past every number issued (SELECT \
                     setval(...), or `pez sequence import` of a later export) and start PEZ \
                     again",
                    native.shown()
                )));
            }
            Some(_) => {}
            // Taken over by an older release, or moved by PEZ since (a
            // restart, a hand-back and a take-over again): where it stands
            // now is the floor from here on.
            None if native.owned => set_floor(conn, name, next)?,
            None => {}
        }
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
    let next = further(&spec, original_next, own_next);
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
    mark(conn, name, &native)?;
    set_floor(conn, name, next)?;
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

/// Records where `name`'s original stands now, with its generation: a later
/// start that finds it behind, with no restart or hand-back since, refuses.
fn set_floor(conn: &mut PgConnection, name: &str, next: i64) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE pez.sequences SET relation_floor = $2, relation_floor_generation = generation \
          WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .bind::<BigInt, _>(next)
    .execute(conn)?;
    Ok(())
}

/// Writes a new mark into `native`'s comment and records it for `name`.
fn mark(conn: &mut PgConnection, name: &str, native: &native::Native) -> QueryResult<()> {
    let mark = new_mark(name);
    native.set_mark(conn, &mark)?;
    diesel::sql_query("UPDATE pez.sequences SET relation_mark = $2 WHERE name = $1")
        .bind::<Text, _>(name)
        .bind::<Text, _>(&mark)
        .execute(conn)?;
    Ok(())
}

/// Gives `forward` and `reverse` back to the original PEZ's nodes: each of
/// the original's sequences PEZ continues counts in ones again, from the
/// first number past every block reserved, under its exclusive lock.
/// Refused while a PEZ instance is alive on the database (its heartbeat in
/// `pez.instances` is recent): one still running would go on at one number
/// per `nextval()`, and take the sequences over again at its next start.
/// Runs in the caller's transaction.
pub fn hand_back(conn: &mut PgConnection) -> Result<Vec<Continued>, TxError> {
    catalog_lock(conn)?;
    let alive = instances::alive(conn)?;
    if alive.count > 0 {
        return Err(refused(format!(
            "{} PEZ instance(s) say they are alive ({}): stop every PEZ instance first (one \
             still running would take the sequences over again when it restarts); an instance \
             killed without a clean stop counts as alive for another {} s",
            alive.count,
            alive.names.unwrap_or_default(),
            alive.seconds.unwrap_or_default().max(0)
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
}
