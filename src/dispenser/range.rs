//! Exact takes straight from the store: range leases, and the batches of
//! strict sequences.

use super::backoff::Backoff;
use super::calls::StoreLink;
use super::leaser::describe_runs;
use super::registry::Sequence;
use super::{DispenseError, Dispenser};
use crate::sequence::{Block, Mode};
use crate::store::StoreError;
use log::{debug, warn};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The pause after a failed range lease, doubled while the store keeps
/// failing (within the request's wait).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between tries: short, since the request waits.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(400);

/// Beyond the reservations a take needs (its count over what one
/// reservation holds), this many more: a small cycling sequence that other
/// callers keep wrapping may need a few.
const SPARE_RESERVATIONS: u64 = 64;

/// What an exact take got: the runs, in order, and the sequence's count of
/// laps after the last reservation (what a give-back of its rest names).
#[derive(Debug)]
pub struct Exact {
    /// The numbers, as runs in sequence order.
    pub runs: Vec<Block>,
    /// The count of laps after the last reservation.
    pub laps: i64,
}

/// Takes exactly `count` numbers of `spec` (of `generation`) from the
/// store, in as many reservations as the count and wraps need (each holds
/// up to `most`); fewer only if a non-cycling sequence runs out. A store
/// that rounds up to its step leaves the excess unissued: a gap. No number
/// is taken twice: the numbers of a block that the runs taken so far hold
/// already (a small cycling sequence other callers wrapped meanwhile) are
/// left as a gap too.
pub async fn take_exact(
    link: &Arc<StoreLink>,
    name: &str,
    generation: i64,
    count: u64,
    most: u64,
) -> Result<Exact, StoreError> {
    let mut runs: Vec<Block> = Vec::new();
    let mut laps = 0;
    let mut remaining = count;
    let mut reservations = 0;
    let budget = count.div_ceil(most.max(1)) + SPARE_RESERVATIONS;
    while remaining > 0 {
        reservations += 1;
        if reservations > budget {
            return Err(StoreError::Ambiguous(format!(
                "{name}: no {count} distinct numbers in {budget} reservations"
            )));
        }
        let owned = name.to_owned();
        let reserved = match link
            .call("reserve", move |store| {
                store.reserve(&owned, generation, remaining)
            })
            .await
        {
            Ok(reserved) => {
                laps = reserved.laps();
                reserved
            }
            Err(StoreError::Exhausted(_)) if !runs.is_empty() => break,
            Err(e) => {
                if matches!(e, StoreError::Stale(_)) {
                    link.request_sync();
                }
                return Err(e);
            }
        };
        for reserved_block in reserved.into_blocks() {
            let mut parts = vec![reserved_block];
            for run in &runs {
                if parts.iter().any(|part| part.overlaps(run)) {
                    parts = parts.iter().flat_map(|part| part.minus(run)).collect();
                }
            }
            for block in parts {
                if remaining == 0 {
                    break;
                }
                let (front, _excess) = block.split_front(remaining.min(block.len()));
                remaining -= front.len();
                match runs
                    .last_mut()
                    .and_then(|last| last.join(front).map(|joined| (last, joined)))
                {
                    Some((last, joined)) => *last = joined,
                    None => runs.push(front),
                }
            }
        }
    }
    Ok(Exact { runs, laps })
}

impl Dispenser {
    /// The largest exact take (a strict take, a range lease) of `sequence`
    /// that can be served: a strict sequence takes one number per
    /// `nextval()`, so more than one reservation holds would be many
    /// durable commits in one request's wait.
    pub(super) fn most_exact(&self, sequence: &Sequence) -> u64 {
        match sequence.spec.mode {
            Mode::Strict => self.link.most_per_reservation(&sequence.spec),
            Mode::Leased => u64::MAX,
        }
    }

    /// A range lease: exactly `count` numbers of `name` (fewer only when a
    /// non-cycling sequence runs out), taken straight from the store in
    /// durable reservations, for a client to hand out itself. A take that
    /// fails (an outage, a call in doubt: what it took is a gap; a view of
    /// the sequence out of date) is tried again, with a pause that grows,
    /// as a strict take is, and the whole lease (its tries included) ends
    /// within `lease_wait`: a store that stumbles once is not a 503, and
    /// one that does not answer is one in time.
    ///
    /// `count` must be within the sequence's largest lease, capped by
    /// `server_max` (PEZ_MAX_LEASE): a larger one is refused before
    /// anything is taken, so no client burns a sequence with a few leases.
    pub async fn lease_range(
        &self,
        name: &str,
        count: u64,
        server_max: u64,
    ) -> Result<Vec<Block>, DispenseError> {
        if self.is_closed() {
            return Err(DispenseError::ShuttingDown);
        }
        let deadline = tokio::time::Instant::now() + self.settings.lease_wait;
        let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
        let (sequence, runs) = loop {
            let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
            let limit = sequence.spec.lease_limit(server_max);
            if count > limit {
                return Err(DispenseError::CountExceedsLease {
                    limit,
                    max_lease: sequence.spec.max_lease,
                });
            }
            if count > sequence.spec.size() {
                return Err(DispenseError::CountExceedsRange(sequence.spec.size()));
            }
            let most = self.most_exact(&sequence);
            if count > most {
                return Err(DispenseError::CountExceedsTake(most));
            }
            let generation = sequence.generation.load(Ordering::SeqCst);
            let per_reservation = self.link.most_per_reservation(&sequence.spec);
            let take = take_exact(&self.link, name, generation, count, per_reservation);
            let failure = match tokio::time::timeout_at(deadline, take).await {
                Ok(Ok(exact)) => break (sequence, exact.runs),
                Ok(Err(StoreError::UnknownSequence(_))) => {
                    return Err(DispenseError::UnknownSequence);
                }
                Ok(Err(StoreError::Exhausted(_))) => {
                    return Err(DispenseError::Exhausted { remaining: 0 });
                }
                Ok(Err(e)) => e.to_string(),
                // What the try in flight takes is a gap: its result is
                // dropped with it.
                Err(_) => "no answer within the lease wait".to_owned(),
            };
            let pause = backoff.pause();
            if self.is_closed() || tokio::time::Instant::now() + pause >= deadline {
                warn!("{name}: range lease failed: {failure}");
                return Err(DispenseError::Unavailable);
            }
            debug!("{name}: range lease failed, retrying in {pause:?}: {failure}");
            tokio::time::sleep(pause).await;
        };
        let taken: u64 = runs.iter().map(Block::len).sum();
        sequence.issued.inc_by(taken);
        // Counted in pez_numbers_issued_total; one line each only at debug:
        // a busy client of range leases would fill the log.
        debug!(
            "{name}: range lease of {taken} numbers {}",
            describe_runs(&runs)
        );
        Ok(runs)
    }
}
