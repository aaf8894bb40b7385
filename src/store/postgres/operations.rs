//! The `Store` trait on PostgreSQL: reservations, give-backs, restarts,
//! forward moves, creations and deletions, each one call of
//! [`PgStore::call`] (see the module docs of [`super`] for the rule each
//! keeps).

use super::call::Kind;
use super::catalog::{self, CATALOG_LOCK, Described, LEASE_STEP, SMALLEST_RING_GIVEN_BACK};
use super::reserve::{self, Taken};
use super::{Generation, PgStore, Purpose, instances, original};
use crate::sequence::{Block, Direction, Mode, SequenceSpec};
use crate::store::rules::{self, Consent, Restarted};
use crate::store::{
    Advanced, Created, Position, Reserved, SequenceState, Stamp, Store, StoreError, TxError,
};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use std::time::Duration;

/// `name`'s description, with its sequence's exclusive lock taken for the
/// rest of the transaction (see [`catalog::lock_exclusively`]): read, lock,
/// and read again, since only what is read under the lock is sure to stay
/// true until the commit.
fn locked(conn: &mut PgConnection, name: &str) -> Result<Described, TxError> {
    let unknown = || TxError::Store(StoreError::UnknownSequence(name.to_owned()));
    let before = catalog::describe(conn, name)?.ok_or_else(unknown)?;
    catalog::lock_exclusively(conn, &before.relation)?;
    let seq = catalog::describe(conn, name)?.ok_or_else(unknown)?;
    if seq.oid != before.oid {
        // Dropped and made again, or moved to the original's sequence,
        // between the two reads: the lock is on another relation.
        return Err(TxError::Store(StoreError::Stale(name.to_owned())));
    }
    Ok(seq)
}

/// The count of laps a move's rules judge by: at least one once any
/// `nextval()` was called since the sequence was last set, since a lap that
/// a failed reservation left uncounted must not make a used sequence look
/// untouched (see [`SMALLEST_RING_GIVEN_BACK`]).
fn laps_begun(conn: &mut PgConnection, seq: &Described) -> Result<i64, TxError> {
    let (_, called) = catalog::position(conn, &seq.relation)?;
    Ok(if called { seq.laps.max(1) } else { seq.laps })
}

/// Takes the catalog lock for the rest of the transaction.
fn catalog_lock(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(CATALOG_LOCK)
        .execute(conn)?;
    Ok(())
}

impl Store for PgStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        let looking = self.purpose == Purpose::Command;
        // A server's sync task's call, every sync interval: it also looks
        // again at the reservation's function, which a DBA may change while
        // PEZ runs (see `reserve::function_problem`).
        let serving = self.purpose == Purpose::Serve;
        let (states, problem) = self.call(Kind::Read, |conn| {
            let described = catalog::describe_all(conn)?;
            let next = catalog::frontiers(conn, &described)?;
            let mut states: Vec<SequenceState> = described
                .into_iter()
                .zip(next)
                .map(|(seq, (next_value, called))| SequenceState {
                    // A lap a failed reservation left uncounted must not
                    // make a used sequence look fresh (see laps_begun).
                    laps: if called { seq.laps.max(1) } else { seq.laps },
                    spec: seq.spec,
                    next_value,
                    generation: seq.generation,
                    continues: seq.original,
                })
                .collect();
            if looking {
                // Where a server will start forward and reverse once it
                // takes the original's over: past both.
                for pending in original::pending(conn)? {
                    if let Some(state) = states.iter_mut().find(|s| s.spec.name == pending.name) {
                        state.next_value = Some(pending.next);
                        state.continues = Some(format!("{} (not yet)", pending.original));
                    }
                }
            }
            let problem = if serving {
                reserve::function_problem(conn)?
            } else {
                None
            };
            Ok((states, problem))
        })?;
        if serving {
            self.function_seen(problem);
        }
        Ok(states)
    }

    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.call(Kind::Read, |conn| {
            Ok(
                diesel::sql_query("SELECT name, generation FROM pez.sequences")
                    .load::<Generation>(conn)?
                    .into_iter()
                    .map(|row| (row.name, row.generation))
                    .collect(),
            )
        })
    }

    fn reserve(&self, name: &str, generation: i64, size: u64) -> Result<Reserved, StoreError> {
        // Not through a function that is not as its migration made it: its
        // commit may not be durable.
        if let Some(problem) = self.function_problem() {
            return Err(StoreError::Unavailable(format!("postgres: {problem}")));
        }
        let outcome = self.call_with(Kind::Statement, |conn, call| {
            let seq = self.described(conn, name)?;
            match self.take(conn, call, &seq, generation, size)? {
                // The cached oid may be an incarnation dropped since; if the
                // one there now is the caller's generation (generations never
                // repeat), the caller knows it: take from it.
                Taken::Stale => {
                    self.forget(name);
                    let fresh = self.described(conn, name)?;
                    if fresh.generation != generation || fresh.oid == seq.oid {
                        return Ok((Taken::Stale, fresh));
                    }
                    Ok((self.take(conn, call, &fresh, generation, size)?, fresh))
                }
                taken => Ok((taken, seq)),
            }
        });
        match outcome {
            Ok((Taken::Blocks(blocks, laps), _)) => Ok(Reserved::durable(blocks, laps)),
            // Restarted, or dropped and perhaps made again, since the caller
            // looked: never followed by name (the caller's idea of the
            // sequence is out of date).
            Ok((Taken::Stale, _)) => {
                self.forget(name);
                Err(StoreError::Stale(name.to_owned()))
            }
            Ok((Taken::Weakened(setting), _)) => Err(StoreError::Ambiguous(format!(
                "postgres: a reservation's commit ran with synchronous_commit = {setting}, \
                 not on: a setting attached to pez.reserve() or a trigger lowered it; numbers \
                 taken by it are left unused"
            ))),
            Ok((Taken::Altered, seq)) => {
                self.forget(name);
                Err(StoreError::Ambiguous(format!(
                    "postgres: the INCREMENT of {} is not the one PEZ read; numbers \
                     taken from it are left unused",
                    seq.relation
                )))
            }
            Err(e) => {
                // A failed statement may come from a stale description.
                self.forget(name);
                Err(e)
            }
        }
    }

    fn give_back(&self, name: &str, stamp: Stamp, unused: Block) -> Result<bool, StoreError> {
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            if !self.gives_back(&seq.spec) {
                return Ok(false);
            }
            let stands = catalog::frontier(conn, &seq)?;
            crate::failpoint::hit(crate::failpoint::points::GIVE_BACK_CHECKED, name);
            // A block of another generation, or of an incarnation deleted
            // since, may fit where this one stands by coincidence (a fresh
            // sequence's blocks fall on the same grid); a full lap since
            // puts a small ring back where it stood: never taken.
            if seq.generation != stamp.generation
                || seq.laps != stamp.laps
                || stands != seq.spec.successor(unused.last)
            {
                return Ok(false);
            }
            catalog::set_next(conn, &seq.relation, unused.first)?;
            Ok(true)
        })
    }

    fn restart(&self, name: &str, value: i64, consent: Consent) -> Result<(), StoreError> {
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            let laps = laps_begun(conn, &seq)?;
            let restarted = rules::check_restart(&seq.spec, stands, laps, value, consent)?;
            // Rolls back with the transaction: lock_exclusively rewrote the
            // sequence's storage in it.
            catalog::set_next(conn, &seq.relation, value)?;
            if restarted == Restarted::Backward {
                catalog::begin_lap(conn, name)?;
            }
            catalog::new_generation(conn, name)?;
            Ok(())
        })
    }

    fn advance(&self, name: &str, to: Position, consent: Consent) -> Result<Advanced, StoreError> {
        let next = to.next;
        self.call(Kind::Change, |conn| {
            let seq = locked(conn, name)?;
            let stands = catalog::frontier(conn, &seq)?;
            let state = SequenceState {
                spec: seq.spec.clone(),
                next_value: stands,
                generation: seq.generation,
                laps: laps_begun(conn, &seq)?,
                continues: None,
            };
            // Judged by this store's own laps: moving to the list's
            // position skips nothing of the list's history. The list's
            // laps count from here on.
            if to.laps > seq.laps {
                catalog::raise_laps(conn, name, to.laps)?;
            }
            let Some(from) = rules::moves_forward(&state, next, consent)? else {
                return Ok(Advanced::AlreadyThere { stands });
            };
            // Both roll back with the transaction (see restart).
            match next {
                Some(value) => catalog::set_next(conn, &seq.relation, value)?,
                None => catalog::set_exhausted(conn, &seq)?,
            }
            catalog::new_generation(conn, name)?;
            Ok(Advanced::Moved { from })
        })
    }

    fn create(&self, spec: &SequenceSpec, at: Position) -> Result<Created, StoreError> {
        self.call(Kind::Change, |conn| {
            catalog_lock(conn)?;
            if let Some(existing) = catalog::describe(conn, &spec.name)? {
                return if existing.spec.same_settings(spec) {
                    Ok(Created::Existing)
                } else {
                    Err(TxError::Store(StoreError::Conflict(Box::new(
                        existing.spec,
                    ))))
                };
            }
            let step = match spec.mode {
                Mode::Leased => LEASE_STEP as i64,
                Mode::Strict => 1,
            };
            let increment = match spec.direction {
                Direction::Ascending => step,
                Direction::Descending => -step,
            };
            // Names are checked (a-z, 0-9, _ and -) and the numbers are
            // integers, so this DDL (which cannot take bind parameters) is safe.
            diesel::sql_query(format!(
                "CREATE SEQUENCE {} AS bigint INCREMENT BY {increment} MINVALUE {} MAXVALUE {} \
                 START WITH {} CACHE 1 {}",
                catalog::qualified(&spec.name),
                spec.min,
                spec.max,
                spec.start,
                if spec.cycle { "CYCLE" } else { "NO CYCLE" }
            ))
            .execute(conn)?;
            // The generation defaults to the next value of pez.generations.
            diesel::sql_query(
                "INSERT INTO pez.sequences (name, mode, start_value, laps, max_lease) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind::<Text, _>(&spec.name)
            .bind::<Text, _>(spec.mode.as_str())
            .bind::<BigInt, _>(spec.start)
            .bind::<BigInt, _>(at.laps)
            .bind::<Nullable<BigInt>, _>(i64::try_from(spec.max_lease).ok())
            .execute(conn)?;
            let next = at.next;
            // Where an import lists it: in this same transaction, so nobody
            // sees it standing at its start first.
            if next != Some(spec.start) {
                let created = catalog::describe(conn, &spec.name)?.ok_or_else(|| {
                    TxError::Store(StoreError::UnknownSequence(spec.name.clone()))
                })?;
                match next {
                    Some(value) => catalog::set_next(conn, &created.relation, value)?,
                    None => catalog::set_exhausted(conn, &created)?,
                }
            }
            Ok(Created::New)
        })
    }

    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let deleted = self.call(Kind::Change, |conn| {
            catalog_lock(conn)?;
            let spec = catalog::describe(conn, name)?
                .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))?
                .spec;
            // Only sequences PEZ made are deleted: forward and reverse
            // (which may be the original PEZ's) never.
            if spec.is_builtin() {
                return Err(TxError::Store(StoreError::Builtin(name.to_owned())));
            }
            diesel::sql_query("DELETE FROM pez.sequences WHERE name = $1")
                .bind::<Text, _>(name)
                .execute(conn)?;
            diesel::sql_query(format!("DROP SEQUENCE {}", catalog::qualified(name)))
                .execute(conn)?;
            Ok(())
        });
        self.forget(name);
        deleted
    }

    fn call_limit(&self) -> Duration {
        // Waiting for a pooled session, then the call's own deadline, then
        // a moment for the cancel to land.
        self.settings.timeout + self.deadline() + Duration::from_millis(500)
    }

    fn gives_back(&self, spec: &SequenceSpec) -> bool {
        !spec.cycle || spec.size() >= SMALLEST_RING_GIVEN_BACK
    }

    fn most_per_reservation(&self, spec: &SequenceSpec) -> u64 {
        let step = match spec.mode {
            Mode::Leased => LEASE_STEP,
            Mode::Strict => 1,
        };
        (reserve::MAX_STEPS * step).min(spec.size())
    }

    fn heartbeat(&self, instance: &str, for_at_least: Duration) -> Result<(), StoreError> {
        self.call(Kind::Bookkeeping, |conn| {
            Ok(instances::heartbeat(conn, instance, for_at_least)?)
        })
    }

    /// Whether the database takes writes now, without writing anything.
    /// A standby (an address that still leads to the old primary after a
    /// failover) or `default_transaction_read_only` answers every read and
    /// refuses every reservation: a read (the default probe) would call
    /// it well and end the outage a failed reservation found.
    fn probe(&self) -> Result<(), StoreError> {
        let read_only = self.call(Kind::Read, |conn| {
            Ok(diesel::sql_query(
                "SELECT current_setting('transaction_read_only') = 'on' AS read_only",
            )
            .get_result::<ReadOnly>(conn)?
            .read_only)
        })?;
        if read_only {
            return Err(StoreError::Unavailable(
                "postgres: the database takes no writes (transaction_read_only is on: a \
                 standby, or default_transaction_read_only)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn farewell(&self, instance: &str) -> Result<(), StoreError> {
        self.call(Kind::Bookkeeping, |conn| {
            Ok(instances::farewell(conn, instance)?)
        })
    }
}

/// The probe's one row.
#[derive(QueryableByName)]
struct ReadOnly {
    #[diesel(sql_type = Bool)]
    read_only: bool,
}
