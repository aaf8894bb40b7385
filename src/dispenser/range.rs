//! Exact takes straight from the store: range leases, and the batches of
//! strict sequences.

use super::backoff::Backoff;
use super::calls::StoreLink;
use super::leaser::describe_runs;
use super::{DispenseError, Dispenser};
use crate::sequence::Block;
use crate::store::StoreError;
use log::{debug, info, warn};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The pause after a failed range lease, doubled while the store keeps
/// failing (within the request's wait).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between tries: short, since the request waits.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(400);

/// At most this many reservations make one exact take: a small cycling
/// sequence that other callers keep wrapping may take a few more than one.
const MOST_RESERVATIONS: usize = 64;

/// Takes exactly `count` numbers of `name` (of `generation`) from the
/// store, in as many reservations as wraps (and the per-call cap) need;
/// fewer only if a non-cycling sequence runs out. A store that rounds up to
/// its step leaves the excess unissued: a gap. No number is taken twice: the
/// numbers of a block that the runs taken so far hold already (a small
/// cycling sequence other callers wrapped meanwhile) are left as a gap too.
pub async fn take_exact(
    link: &Arc<StoreLink>,
    name: &str,
    generation: i64,
    count: u64,
) -> Result<Vec<Block>, StoreError> {
    let mut runs: Vec<Block> = Vec::new();
    let mut remaining = count;
    let mut reservations = 0;
    while remaining > 0 {
        reservations += 1;
        if reservations > MOST_RESERVATIONS {
            return Err(StoreError::Ambiguous(format!(
                "{name}: no {count} distinct numbers in {MOST_RESERVATIONS} reservations"
            )));
        }
        let owned = name.to_owned();
        let reserved = match link
            .call("reserve", move |store| {
                store.reserve(&owned, generation, remaining)
            })
            .await
        {
            Ok(reserved) => reserved,
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
    Ok(runs)
}

impl Dispenser {
    /// A range lease: exactly `count` numbers of `name` (fewer only when a
    /// non-cycling sequence runs out), taken straight from the store in
    /// durable reservations, for a client to hand out itself. A take that
    /// fails (an outage, a call in doubt: what it took is a gap; a view of
    /// the sequence out of date) is tried again, with a pause that grows,
    /// for as long as `lease_wait` allows, as a strict take is: a store
    /// that stumbles once is not a 503.
    pub async fn lease_range(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        if self.is_closed() {
            return Err(DispenseError::ShuttingDown);
        }
        let deadline = tokio::time::Instant::now() + self.settings.lease_wait;
        let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
        let (sequence, runs) = loop {
            let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
            if count > sequence.spec.size() {
                return Err(DispenseError::CountExceedsRange(sequence.spec.size()));
            }
            let generation = sequence.generation.load(Ordering::SeqCst);
            match take_exact(&self.link, name, generation, count).await {
                Ok(runs) => break (sequence, runs),
                Err(StoreError::UnknownSequence(_)) => return Err(DispenseError::UnknownSequence),
                Err(StoreError::Exhausted(_)) => return Err(DispenseError::Exhausted),
                Err(e) => {
                    let pause = backoff.pause();
                    if self.is_closed() || tokio::time::Instant::now() + pause >= deadline {
                        warn!("{name}: range lease failed: {e}");
                        return Err(DispenseError::Unavailable);
                    }
                    debug!("{name}: range lease failed, retrying in {pause:?}: {e}");
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let taken: u64 = runs.iter().map(Block::len).sum();
        sequence.issued.inc_by(taken);
        info!(
            "{name}: range lease of {taken} numbers {}",
            describe_runs(&runs)
        );
        Ok(runs)
    }
}
