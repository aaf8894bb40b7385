//! Exact takes straight from the store: range leases, and the batches of
//! strict sequences.

use super::calls::StoreLink;
use super::leaser::describe_runs;
use super::{DispenseError, Dispenser};
use crate::sequence::Block;
use crate::store::StoreError;
use log::info;
use std::sync::Arc;

/// Takes exactly `count` numbers of `name` from the store, in as many
/// reservations as wraps (and the per-call cap) need; fewer only if a
/// non-cycling sequence runs out. A store that rounds up to its step
/// leaves the excess unissued: a gap.
pub async fn take_exact(
    link: &Arc<StoreLink>,
    name: &str,
    count: u64,
) -> Result<Vec<Block>, StoreError> {
    let mut runs: Vec<Block> = Vec::new();
    let mut remaining = count;
    while remaining > 0 {
        let owned = name.to_owned();
        let reserved = match link
            .call("reserve", move |store| store.reserve(&owned, remaining))
            .await
        {
            Ok(reserved) => reserved,
            Err(StoreError::Exhausted(_)) if !runs.is_empty() => break,
            Err(e) => return Err(e),
        };
        for block in reserved.into_blocks() {
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
    Ok(runs)
}

impl Dispenser {
    /// A range lease: exactly `count` numbers of `name` (fewer only when a
    /// non-cycling sequence runs out), taken straight from the store in
    /// durable reservations, for a client to hand out itself.
    pub async fn lease_range(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        if self.is_closed() {
            return Err(DispenseError::ShuttingDown);
        }
        let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
        if count > sequence.spec.size() {
            return Err(DispenseError::CountExceedsRange(sequence.spec.size()));
        }
        let runs = take_exact(&self.link, name, count)
            .await
            .map_err(|e| match e {
                StoreError::UnknownSequence(_) => DispenseError::UnknownSequence,
                StoreError::Exhausted(_) => DispenseError::Exhausted,
                _ => DispenseError::Unavailable,
            })?;
        let taken: u64 = runs.iter().map(Block::len).sum();
        sequence.issued.inc_by(taken);
        info!(
            "{name}: range lease of {taken} numbers {}",
            describe_runs(&runs)
        );
        Ok(runs)
    }
}
