//! Numbers served from memory out of blocks leased from the store.
//!
//! Each sequence has a [`Reservoir`] behind a `std::sync::Mutex` (never held
//! across an `.await`; the critical sections are a few arithmetic steps) and
//! a background *leaser* task. Requests take numbers under the mutex; when
//! stock falls below half a block they wake the leaser, which leases the next
//! block on a blocking thread while requests go on being served from the
//! current one (double buffering). A request waits for the store only when
//! stock ran out, and then for at most `lease_wait`.

mod reservoir;

pub use reservoir::{BlockSizing, LeaseDecision, Reservoir, Shortfall};

use crate::sequence::{Block, SequenceSpec};
use crate::store::{Store, StoreError};
use log::{debug, error, info, warn};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the dispenser leases and waits.
#[derive(Debug, Clone)]
pub struct DispenserSettings {
    /// Smallest (and first) lease size.
    pub block_min: u64,
    /// Largest lease size.
    pub block_max: u64,
    /// Longest a request waits for a lease before it is answered 503.
    pub lease_wait: Duration,
    /// Longest pause between retries while the store is failing.
    pub retry_max: Duration,
}

/// Why a request got no numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispenseError {
    /// No sequence of that name.
    UnknownSequence,
    /// A non-cycling sequence has issued its last number.
    Exhausted,
    /// The store cannot lease and nothing is on hand; try again later.
    Unavailable,
    /// The instance is stopping.
    ShuttingDown,
}

/// One sequence in this instance: its stock and the signals around it.
#[derive(Debug)]
struct Sequence {
    spec: SequenceSpec,
    reservoir: Mutex<Reservoir>,
    /// Wakes the leaser: stock is low, or the instance is stopping.
    lease_needed: Notify,
    /// Wakes waiting requests: a lease finished, well or badly.
    lease_done: Notify,
}

impl Sequence {
    fn reservoir(&self) -> MutexGuard<'_, Reservoir> {
        // A panic while holding the lock cannot leave the reservoir half
        // updated (every method leaves it consistent), so poisoning is moot.
        self.reservoir
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every sequence of this instance, with their leasers.
pub struct Dispenser {
    sequences: HashMap<String, Arc<Sequence>>,
    store: Arc<dyn Store>,
    settings: DispenserSettings,
    leasers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dispenser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispenser")
            .field("sequences", &self.sequences.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

/// What a graceful stop did with the numbers on hand.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReturnReport {
    /// Numbers the store took back: the next start issues them.
    pub returned: u64,
    /// Numbers the store refused (it moved on) or could not take: a gap.
    pub abandoned: u64,
}

impl Dispenser {
    /// Loads the sequences, leases a first block of each (so the first
    /// request is served from memory and a broken store fails the start,
    /// not the first request), and starts their leasers.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: DispenserSettings,
    ) -> Result<Arc<Self>, StoreError> {
        let listing = Arc::clone(&store);
        let states = blocking(move || listing.list()).await?;
        let mut sequences = HashMap::new();
        for state in states {
            let sequence = Arc::new(Sequence {
                reservoir: Mutex::new(Reservoir::new(BlockSizing::new(
                    settings.block_min,
                    settings.block_max,
                ))),
                spec: state.spec,
                lease_needed: Notify::new(),
                lease_done: Notify::new(),
            });
            lease_once(&sequence, &store).await?;
            sequences.insert(sequence.spec.name.clone(), sequence);
        }
        let dispenser = Arc::new(Self {
            sequences,
            store,
            settings,
            leasers: Mutex::new(Vec::new()),
        });
        let handles = dispenser
            .sequences
            .values()
            .map(|sequence| {
                tokio::spawn(run_leaser(
                    Arc::clone(sequence),
                    Arc::clone(&dispenser.store),
                    dispenser.settings.retry_max,
                ))
            })
            .collect();
        *dispenser.leasers.lock().unwrap_or_else(|p| p.into_inner()) = handles;
        Ok(dispenser)
    }

    /// The settings of the sequence `name`, if it exists.
    pub fn spec(&self, name: &str) -> Option<&SequenceSpec> {
        self.sequences.get(name).map(|s| &s.spec)
    }

    /// The next `count` numbers of `name`, in sequence order, as runs of
    /// consecutive numbers. Waits for the store only when nothing is on
    /// hand, and never longer than `lease_wait`.
    pub async fn next(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        let sequence = self
            .sequences
            .get(name)
            .ok_or(DispenseError::UnknownSequence)?;
        let deadline = tokio::time::Instant::now() + self.settings.lease_wait;
        loop {
            // Registered before the lock is released, so a lease that lands
            // between our check and our wait still wakes us.
            let lease_done = sequence.lease_done.notified();
            {
                let mut reservoir = sequence.reservoir();
                let taken = reservoir.take(count);
                if reservoir.wants_lease() {
                    sequence.lease_needed.notify_one();
                }
                match taken {
                    Ok(runs) => return Ok(runs),
                    Err(Shortfall::Waiting) => {}
                    Err(Shortfall::StoreFailing) => return Err(DispenseError::Unavailable),
                    Err(Shortfall::Exhausted) => return Err(DispenseError::Exhausted),
                    Err(Shortfall::Closed) => return Err(DispenseError::ShuttingDown),
                }
            }
            if tokio::time::timeout_at(deadline, lease_done).await.is_err() {
                return Err(DispenseError::Unavailable);
            }
        }
    }

    /// Stops leasing and taking, waits for leases in flight, and gives the
    /// unissued numbers back to the store, so a clean restart continues
    /// with the very next number. Call after the HTTP server has drained.
    pub async fn shutdown(&self) -> ReturnReport {
        let mut unissued: HashMap<&str, Vec<Block>> = HashMap::new();
        for (name, sequence) in &self.sequences {
            unissued.insert(name, sequence.reservoir().close());
            sequence.lease_needed.notify_one();
        }
        let leasers = std::mem::take(&mut *self.leasers.lock().unwrap_or_else(|p| p.into_inner()));
        for leaser in leasers {
            if let Err(e) = leaser.await {
                error!("a leaser task failed: {e}");
            }
        }
        let mut report = ReturnReport::default();
        for (name, sequence) in &self.sequences {
            // Leases that were in flight at the first close landed since;
            // they come after the blocks collected then.
            let mut blocks = unissued.remove(name.as_str()).unwrap_or_default();
            blocks.extend(sequence.reservoir().close());
            give_back(name, blocks, &self.store, &mut report).await;
        }
        report
    }
}

/// Gives back `blocks` (in sequence order) last first: each give-back only
/// succeeds when the store stands right after the block, and the last block
/// is the one it stands after.
async fn give_back(
    name: &str,
    blocks: Vec<Block>,
    store: &Arc<dyn Store>,
    report: &mut ReturnReport,
) {
    for block in blocks.into_iter().rev() {
        let (store, owned_name) = (Arc::clone(store), name.to_owned());
        match blocking(move || store.give_back(&owned_name, block)).await {
            Ok(true) => {
                report.returned += block.len();
                info!(
                    "{name}: gave back {} unused numbers {}..={}",
                    block.len(),
                    block.first,
                    block.last
                );
            }
            Ok(false) => {
                report.abandoned += block.len();
                warn!(
                    "{name}: the store moved on; {} unused numbers {}..={} stay a gap",
                    block.len(),
                    block.first,
                    block.last
                );
            }
            Err(e) => {
                report.abandoned += block.len();
                error!(
                    "{name}: could not give back {}..={}: {e}; they stay a gap",
                    block.first, block.last
                );
            }
        }
    }
}

/// Runs a store call on a blocking thread: diesel is synchronous and must
/// not stall the async executor.
async fn blocking<T, F>(call: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("store call failed: {e}"))))
}

/// Leases one block for `sequence` if it wants one; reports the outcome to
/// its reservoir and wakes the requests waiting for it.
async fn lease_once(
    sequence: &Arc<Sequence>,
    store: &Arc<dyn Store>,
) -> Result<LeaseDecision, StoreError> {
    let decision = sequence.reservoir().start_lease(Instant::now());
    let LeaseDecision::Lease(size) = decision else {
        return Ok(decision);
    };
    let (store, name) = (Arc::clone(store), sequence.spec.name.clone());
    let started = Instant::now();
    let outcome = blocking(move || store.lease(&name, size)).await;
    let result = {
        let mut reservoir = sequence.reservoir();
        match outcome {
            Ok(blocks) => {
                for block in &blocks {
                    info!(
                        "{}: leased {} numbers {}..={} in {:?}",
                        sequence.spec.name,
                        block.len(),
                        block.first,
                        block.last,
                        started.elapsed()
                    );
                }
                reservoir.lease_succeeded(blocks);
                Ok(decision)
            }
            Err(StoreError::Exhausted(name)) => {
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
    sequence.lease_done.notify_waiters();
    result
}

/// The background task that keeps one sequence stocked. Retries a failing
/// store with exponential backoff up to `retry_max`, logging the outage
/// once when it starts and once when it ends.
async fn run_leaser(sequence: Arc<Sequence>, store: Arc<dyn Store>, retry_max: Duration) {
    let name = sequence.spec.name.clone();
    let mut outage: Option<(Instant, u32)> = None;
    loop {
        match lease_once(&sequence, &store).await {
            Ok(LeaseDecision::Closed) => return,
            Ok(LeaseDecision::Idle) => sequence.lease_needed.notified().await,
            Ok(LeaseDecision::Lease(_)) => {
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
                let pause = Duration::from_millis(50)
                    .saturating_mul(1 << (*attempts).min(10))
                    .min(retry_max);
                // A stop during the pause must not wait it out.
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = sequence.lease_needed.notified() => {}
                }
            }
        }
    }
}
