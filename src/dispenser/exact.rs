//! Exact takes straight from the store: exactly the numbers asked for, in
//! as many reservations as they need, for range leases and the batches of
//! strict sequences.

use super::calls::StoreLink;
use crate::sequence::Block;
use crate::store::StoreError;
use std::sync::Arc;

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
