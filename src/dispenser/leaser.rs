//! The leaser: one task per leased sequence that keeps its reservoir
//! stocked from the store, in the background, while requests are served
//! from what is on hand.

use super::backoff::Backoff;
use super::calls::StoreLink;
use super::reservoir::{LeaseDecision, Reservoir};
use crate::sequence::Block;
use crate::store::StoreError;
use crate::telemetry::Metrics;
use crate::unpoisoned;
use log::{debug, error, info, warn};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The stock of a leased sequence and the signals around it.
#[derive(Debug)]
pub struct Leased {
    reservoir: Mutex<Reservoir>,
    /// Wakes the leaser: stock is low.
    pub lease_needed: Notify,
    /// Wakes waiting requests: a lease finished, well or badly.
    pub lease_done: Notify,
    /// Wakes the leaser out of a retry pause: the sequence is closing.
    pub closing: Notify,
}

impl Leased {
    /// A leased sequence's stock, starting from `reservoir`, with no one
    /// waiting yet.
    pub fn new(reservoir: Reservoir) -> Self {
        Self {
            reservoir: Mutex::new(reservoir),
            lease_needed: Notify::new(),
            lease_done: Notify::new(),
            closing: Notify::new(),
        }
    }

    /// The reservoir, locked (never across an `.await`).
    pub fn reservoir(&self) -> MutexGuard<'_, Reservoir> {
        unpoisoned::lock(&self.reservoir)
    }
}

/// Reserves one block for the sequence if its reservoir wants one; reports
/// the outcome to the reservoir and wakes the requests waiting for it.
pub async fn lease_once(
    name: &str,
    leased: &Leased,
    link: &Arc<StoreLink>,
    metrics: &Metrics,
) -> Result<LeaseDecision, StoreError> {
    let (decision, generation) = {
        let mut reservoir = leased.reservoir();
        (
            reservoir.start_lease(Instant::now()),
            reservoir.generation(),
        )
    };
    let LeaseDecision::Lease(size) = decision else {
        return Ok(decision);
    };
    let owned = name.to_owned();
    let started = Instant::now();
    let outcome = link
        .call("reserve", move |store| {
            store.reserve(&owned, generation, size)
        })
        .await;
    if matches!(outcome, Err(StoreError::Stale(_))) {
        // Another instance restarted or re-created it: look now rather
        // than at the next sync.
        link.request_sync();
    }
    let label = match &outcome {
        Ok(_) => "ok",
        Err(StoreError::Exhausted(_)) => "exhausted",
        Err(_) => "error",
    };
    metrics.lease(name, label, started.elapsed());
    let result = {
        let mut reservoir = leased.reservoir();
        match outcome {
            Ok(reserved) => {
                let laps = reserved.laps();
                let blocks = reserved.into_blocks();
                let described = describe_runs(&blocks);
                let count: u64 = blocks.iter().map(Block::len).sum();
                // At debug (PEZ_LOG=info,pez::dispenser::leaser=debug):
                // a busy instance leases many times a second, and
                // pez_leases_total counts them.
                if reservoir.lease_succeeded(blocks, laps) {
                    debug!(
                        "{name}: leased {count} numbers {described} in {:?}",
                        started.elapsed()
                    );
                } else {
                    debug!("{name}: dropped a lease of {described} made before a restart");
                }
                Ok(decision)
            }
            Err(StoreError::Exhausted(_)) => {
                reservoir.lease_failed(true);
                warn!("{name}: exhausted; it does not cycle, so it issues no more numbers");
                Ok(decision)
            }
            Err(e) => {
                reservoir.lease_failed(false);
                Err(e)
            }
        }
    };
    leased.lease_done.notify_waiters();
    result
}

/// The leaser of one sequence, until it is closed. Retries a failing store
/// with exponential backoff up to `retry_max` (requests do not cut the
/// pause short; a close does), logging the outage once when it starts and
/// once when it ends.
pub async fn run(
    name: &str,
    leased: &Leased,
    link: Arc<StoreLink>,
    metrics: &Metrics,
    retry_max: Duration,
) {
    let mut outage: Option<(Instant, u32)> = None;
    let mut backoff = Backoff::new(Duration::from_millis(100), retry_max);
    loop {
        match lease_once(name, leased, &link, metrics).await {
            Ok(LeaseDecision::Closed) => return,
            Ok(LeaseDecision::Idle) => leased.lease_needed.notified().await,
            Ok(LeaseDecision::Lease(_)) => {
                backoff.reset();
                if let Some((since, attempts)) = outage.take() {
                    info!(
                        "{name}: store recovered after {:.1?} and {attempts} failed leases",
                        since.elapsed()
                    );
                }
            }
            Err(e) => {
                let (since, attempts) = outage.get_or_insert((Instant::now(), 0));
                *attempts += 1;
                if *attempts == 1 {
                    error!("{name}: lease failed, serving what is on hand and retrying: {e}");
                } else {
                    debug!("{name}: lease failed again ({attempts} since {since:?}): {e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff.pause()) => {}
                    _ = leased.closing.notified() => {}
                }
            }
        }
    }
}

/// `first..=last` for each run, for logs.
pub fn describe_runs(runs: &[Block]) -> String {
    runs.iter()
        .map(|b| format!("{}..={}", b.first, b.last))
        .collect::<Vec<_>>()
        .join(", ")
}
