//! Numbers served to requests, sequence by sequence.
//!
//! A **leased** sequence has a [`Reservoir`] behind a `std::sync::Mutex`
//! (never held across an `.await`; the critical sections are a few
//! arithmetic steps) and a background *leaser* task. Requests take numbers
//! under the mutex; when stock falls below half a block they wake the
//! leaser, which leases the next block on a blocking thread while requests
//! go on being served from the current one (double buffering). A request
//! waits for the store only when stock ran out, and then for at most
//! `lease_wait`.
//!
//! A **strict** sequence keeps nothing: requests queue, and a few worker
//! tasks take exactly the queued numbers from the store in one durable
//! transaction per batch (group commit), so every number comes straight
//! from the store and all instances issue in one global order.
//!
//! Sequences come and go: admin operations change the store and then
//! reconcile this instance with it at once; a sync task polls the store's
//! generations every `sync_interval` to pick up what other instances did
//! (a restart elsewhere makes this instance drop the blocks it holds).

mod reservoir;
mod strict;

pub use reservoir::{BlockSizing, LeaseDecision, Reservoir, Shortfall};

use crate::sequence::{Block, Mode, SequenceSpec};
use crate::store::{Created, SequenceState, Store, StoreError};
use crate::telemetry::Metrics;
use log::{debug, error, info, warn};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use strict::StrictQueue;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the dispenser leases and waits.
#[derive(Debug, Clone)]
pub struct DispenserSettings {
    /// Smallest (and first) lease size.
    pub block_min: u64,
    /// Largest lease size.
    pub block_max: u64,
    /// Longest a request waits for the store before it is answered 503.
    pub lease_wait: Duration,
    /// Longest pause between retries while the store is failing.
    pub retry_max: Duration,
    /// How often to look for changes other instances made.
    pub sync_interval: Duration,
    /// Concurrent store transactions per strict sequence.
    pub strict_workers: usize,
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

/// How a sequence's numbers are produced in this instance.
#[derive(Debug)]
enum Engine {
    Leased(Leased),
    Strict(StrictQueue),
}

/// The stock of a leased sequence and the signals around it.
#[derive(Debug)]
struct Leased {
    reservoir: Mutex<Reservoir>,
    /// Wakes the leaser: stock is low, or the sequence is closing.
    lease_needed: Notify,
    /// Wakes waiting requests: a lease finished, well or badly.
    lease_done: Notify,
}

impl Leased {
    fn reservoir(&self) -> MutexGuard<'_, Reservoir> {
        // A panic while holding the lock cannot leave the reservoir half
        // updated (every method leaves it consistent), so poisoning is moot.
        self.reservoir
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One sequence in this instance.
#[derive(Debug)]
struct Sequence {
    spec: SequenceSpec,
    /// Numbers handed out, for the metrics (kept to bump without a lookup).
    issued: prometheus::IntCounter,
    /// The store's generation this instance last saw.
    generation: AtomicI64,
    engine: Engine,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Sequence {
    fn leased(&self) -> Option<&Leased> {
        match &self.engine {
            Engine::Leased(leased) => Some(leased),
            Engine::Strict(_) => None,
        }
    }
}

/// What this instance knows of a sequence, for the admin API and the
/// status page.
#[derive(Debug, Clone)]
pub struct SequenceInfo {
    /// Its settings.
    pub spec: SequenceSpec,
    /// Where the store stands: the first number of the next lease (`None`:
    /// a non-cycling sequence ran out).
    pub store_next: Option<i64>,
    /// The next number this instance will issue from what it holds.
    pub next: Option<i64>,
    /// Numbers this instance holds, unissued.
    pub on_hand: u64,
}

/// What a graceful stop did with the numbers on hand.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReturnReport {
    /// Numbers the store took back: the next start issues them.
    pub returned: u64,
    /// Numbers the store refused (it moved on) or could not take: a gap.
    pub abandoned: u64,
}

/// The sequences by name. Looked up at every request, so hashed with FNV-1a
/// rather than SipHash (a third of the lookup's cost): names come from the
/// admin API only, so no client can choose colliding keys to fill it.
type SequenceMap = HashMap<String, Arc<Sequence>, BuildHasherDefault<NameHasher>>;

/// FNV-1a, for short names.
#[derive(Debug, Clone, Copy)]
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Every sequence of this instance, with their tasks.
pub struct Dispenser {
    sequences: RwLock<SequenceMap>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: DispenserSettings,
    /// Serialises reconciling with the store (admin operations, the sync
    /// task), which spans store calls; a tokio mutex, made to be held
    /// across `.await`.
    reconciling: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    stop_sync: Notify,
    sync_task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dispenser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispenser")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Dispenser {
    /// Loads the sequences, leases a first block of each leased one (so the
    /// first request is served from memory and a broken store fails the
    /// start, not the first request), and starts their tasks and the sync.
    pub async fn start(
        store: Arc<dyn Store>,
        settings: DispenserSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        let listing = Arc::clone(&store);
        let states = blocking(move || listing.list()).await?;
        let dispenser = Arc::new(Self {
            sequences: RwLock::new(SequenceMap::default()),
            store,
            metrics,
            settings,
            reconciling: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            stop_sync: Notify::new(),
            sync_task: Mutex::new(None),
        });
        for state in states {
            let sequence = dispenser.new_sequence(&state);
            if let Some(leased) = sequence.leased() {
                lease_once(
                    &sequence.spec.name,
                    leased,
                    &dispenser.store,
                    &dispenser.metrics,
                )
                .await?;
            }
            dispenser.start_tasks(&sequence);
            dispenser
                .write_map()
                .insert(state.spec.name.clone(), sequence);
        }
        let syncing = Arc::clone(&dispenser);
        *locked(&dispenser.sync_task) = Some(tokio::spawn(async move { syncing.run_sync().await }));
        Ok(dispenser)
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, SequenceMap> {
        self.sequences.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, SequenceMap> {
        self.sequences.write().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &str) -> Option<Arc<Sequence>> {
        self.read_map().get(name).cloned()
    }

    fn new_sequence(&self, state: &SequenceState) -> Arc<Sequence> {
        let engine = match state.spec.mode {
            Mode::Leased => Engine::Leased(Leased {
                reservoir: Mutex::new(Reservoir::new(BlockSizing::new(
                    self.settings.block_min,
                    self.settings.block_max,
                ))),
                lease_needed: Notify::new(),
                lease_done: Notify::new(),
            }),
            Mode::Strict => Engine::Strict(StrictQueue::new()),
        };
        Arc::new(Sequence {
            issued: self.metrics.issued_counter(&state.spec.name),
            spec: state.spec.clone(),
            generation: AtomicI64::new(state.generation),
            engine,
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn start_tasks(&self, sequence: &Arc<Sequence>) {
        let mut tasks = locked(&sequence.tasks);
        match &sequence.engine {
            Engine::Leased(_) => {
                let (sequence, store) = (Arc::clone(sequence), Arc::clone(&self.store));
                let metrics = Arc::clone(&self.metrics);
                let retry_max = self.settings.retry_max;
                tasks.push(tokio::spawn(async move {
                    let Some(leased) = sequence.leased() else {
                        return;
                    };
                    run_leaser(&sequence.spec.name, leased, store, &metrics, retry_max).await;
                }));
            }
            Engine::Strict(_) => {
                for _ in 0..self.settings.strict_workers.max(1) {
                    let (sequence, store) = (Arc::clone(sequence), Arc::clone(&self.store));
                    let metrics = Arc::clone(&self.metrics);
                    tasks.push(tokio::spawn(async move {
                        if let Engine::Strict(queue) = &sequence.engine {
                            queue.run_worker(&sequence.spec.name, store, &metrics).await;
                        }
                    }));
                }
            }
        }
    }

    /// The settings of the sequence `name`, if it exists.
    pub fn spec(&self, name: &str) -> Option<SequenceSpec> {
        self.get(name).map(|s| s.spec.clone())
    }

    /// The names of the sequences, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read_map().keys().cloned().collect();
        names.sort();
        names
    }

    /// The next `count` numbers of `name`, in sequence order, as runs of
    /// consecutive numbers. Waits for the store only when it must, and never
    /// longer than `lease_wait`.
    pub async fn next(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
        let runs = match &sequence.engine {
            Engine::Leased(leased) => self.next_leased(leased, count).await,
            Engine::Strict(queue) => queue.next(count, self.settings.lease_wait).await,
        }?;
        sequence.issued.inc_by(count);
        Ok(runs)
    }

    async fn next_leased(&self, leased: &Leased, count: u64) -> Result<Vec<Block>, DispenseError> {
        // Read the clock only if the request has to wait.
        let mut deadline = None;
        loop {
            // Registered before the lock is released, so a lease that lands
            // between our check and our wait still wakes us.
            let lease_done = leased.lease_done.notified();
            {
                let mut reservoir = leased.reservoir();
                let taken = reservoir.take(count);
                if reservoir.wants_lease() {
                    leased.lease_needed.notify_one();
                }
                match taken {
                    Ok(runs) => return Ok(runs),
                    Err(Shortfall::Waiting) => {}
                    Err(Shortfall::StoreFailing) => return Err(DispenseError::Unavailable),
                    Err(Shortfall::Exhausted) => return Err(DispenseError::Exhausted),
                    Err(Shortfall::Closed) => return Err(DispenseError::ShuttingDown),
                }
            }
            let deadline = *deadline
                .get_or_insert_with(|| tokio::time::Instant::now() + self.settings.lease_wait);
            if tokio::time::timeout_at(deadline, lease_done).await.is_err() {
                return Err(DispenseError::Unavailable);
            }
        }
    }

    /// A range lease: exactly `count` numbers of `name` (fewer only when a
    /// non-cycling sequence runs out), taken straight from the store in
    /// durable transactions, for a client to hand out itself.
    pub async fn lease_range(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(DispenseError::ShuttingDown);
        }
        let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
        let runs = take_exact(&self.store, name, count)
            .await
            .map_err(|e| match e {
                StoreError::UnknownSequence(_) => DispenseError::UnknownSequence,
                StoreError::Exhausted(_) => DispenseError::Exhausted,
                _ => DispenseError::Unavailable,
            })?;
        sequence.issued.inc_by(runs.iter().map(Block::len).sum());
        info!(
            "{name}: range lease of {} numbers {}",
            runs.iter().map(Block::len).sum::<u64>(),
            describe_runs(&runs)
        );
        Ok(runs)
    }

    /// What this instance holds of each sequence, without asking the store:
    /// settings, the next number on hand (if any) and how many are on hand.
    pub fn local(&self) -> Vec<(SequenceSpec, Option<i64>, u64)> {
        let mut local: Vec<_> = self
            .read_map()
            .values()
            .map(|sequence| {
                let (next, on_hand) = sequence
                    .leased()
                    .map(|leased| {
                        let reservoir = leased.reservoir();
                        (reservoir.peek(), reservoir.available())
                    })
                    .unwrap_or((None, 0));
                (sequence.spec.clone(), next, on_hand)
            })
            .collect();
        local.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        local
    }

    /// Whether the store answers (a cheap call, bounded by the store's own
    /// timeouts).
    pub async fn store_answers(&self) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        blocking(move || store.generations()).await.map(|_| ())
    }

    /// The metrics this dispenser reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Every sequence, with where the store stands and what this instance
    /// holds.
    pub async fn describe(&self) -> Result<Vec<SequenceInfo>, StoreError> {
        let store = Arc::clone(&self.store);
        let states = blocking(move || store.list()).await?;
        Ok(states
            .into_iter()
            .map(|state| {
                let local = self.get(&state.spec.name);
                let (next, on_hand) = local
                    .as_deref()
                    .and_then(Sequence::leased)
                    .map(|leased| {
                        let reservoir = leased.reservoir();
                        (reservoir.peek(), reservoir.available())
                    })
                    .unwrap_or((None, 0));
                SequenceInfo {
                    next: next.or(state.next_value),
                    store_next: state.next_value,
                    on_hand,
                    spec: state.spec,
                }
            })
            .collect())
    }

    /// Creates a sequence (or finds it there with the same settings) and
    /// starts serving it.
    pub async fn create(&self, spec: SequenceSpec) -> Result<Created, StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let store = Arc::clone(&self.store);
        let created = blocking(move || store.create(&spec)).await?;
        self.reconcile_now().await?;
        Ok(created)
    }

    /// Deletes a sequence; this instance stops serving it at once, the
    /// others at their next sync.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let (store, owned) = (Arc::clone(&self.store), name.to_owned());
        blocking(move || store.delete(&owned)).await?;
        self.reconcile_now().await
    }

    /// Makes `value` the next number of `name`. This instance drops the
    /// blocks it holds of it at once, the others at their next sync.
    pub async fn restart(&self, name: &str, value: i64) -> Result<(), StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let (store, owned) = (Arc::clone(&self.store), name.to_owned());
        blocking(move || store.restart(&owned, value)).await?;
        self.reconcile_now().await
    }

    async fn reconcile_now(&self) -> Result<(), StoreError> {
        let store = Arc::clone(&self.store);
        let states = blocking(move || store.list()).await?;
        self.reconcile(states).await;
        Ok(())
    }

    /// Brings this instance in line with the store's sequences: adds new
    /// ones, drops deleted ones, and drops the blocks of restarted ones.
    async fn reconcile(&self, states: Vec<SequenceState>) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut retired = Vec::new();
        for state in &states {
            let name = &state.spec.name;
            match self.get(name) {
                Some(local) if local.spec == state.spec => {
                    if local.generation.swap(state.generation, Ordering::Relaxed)
                        != state.generation
                        && let Some(leased) = local.leased()
                    {
                        let dropped = leased.reservoir().reset();
                        leased.lease_needed.notify_one();
                        info!("{name}: restarted in the store; dropped {dropped} numbers on hand");
                    }
                }
                other => {
                    // New here, or deleted and created again with other settings.
                    if let Some(old) = other {
                        retired.push(old);
                    }
                    let sequence = self.new_sequence(state);
                    self.start_tasks(&sequence);
                    self.write_map().insert(name.clone(), sequence);
                    info!(
                        "{name}: now served ({} {}, generation {})",
                        state.spec.direction, state.spec.mode, state.generation
                    );
                }
            }
        }
        let present: std::collections::HashSet<&str> =
            states.iter().map(|s| s.spec.name.as_str()).collect();
        let gone: Vec<String> = self
            .read_map()
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = self.write_map().remove(&name) {
                info!("{name}: deleted in the store; no longer served");
                retired.push(old);
            }
        }
        for sequence in retired {
            close(&sequence);
            let tasks = std::mem::take(&mut *locked(&sequence.tasks));
            for task in tasks {
                let _ = task.await;
            }
        }
    }

    /// Polls the store's generations; reconciles when they differ from
    /// what this instance knows.
    async fn run_sync(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.sync_interval) => {}
                _ = self.stop_sync.notified() => return,
            }
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            let store = Arc::clone(&self.store);
            let generations = match blocking(move || store.generations()).await {
                Ok(generations) => generations,
                Err(e) => {
                    debug!("sync: {e}");
                    continue;
                }
            };
            let known: HashMap<String, i64> = self
                .read_map()
                .iter()
                .map(|(name, s)| (name.clone(), s.generation.load(Ordering::Relaxed)))
                .collect();
            let stored: HashMap<String, i64> = generations.into_iter().collect();
            if stored == known {
                continue;
            }
            let _reconciling = self.reconciling.lock().await;
            if let Err(e) = self.reconcile_now().await {
                debug!("sync: {e}");
            }
        }
    }

    /// Stops taking and leasing, waits for leases in flight, and gives the
    /// unissued numbers back to the store, so a clean restart continues
    /// with the very next number. Call after the HTTP server has drained.
    pub async fn shutdown(&self) -> ReturnReport {
        self.closed.store(true, Ordering::Relaxed);
        self.stop_sync.notify_one();
        let sync_task = locked(&self.sync_task).take();
        if let Some(task) = sync_task {
            let _ = task.await;
        }
        let sequences: Vec<Arc<Sequence>> = self.read_map().values().cloned().collect();
        let mut unissued: Vec<(Arc<Sequence>, Vec<Block>)> = Vec::new();
        for sequence in sequences {
            let blocks = close(&sequence);
            unissued.push((sequence, blocks));
        }
        let mut report = ReturnReport::default();
        for (sequence, mut blocks) in unissued {
            let tasks = std::mem::take(&mut *locked(&sequence.tasks));
            for task in tasks {
                if let Err(e) = task.await {
                    error!("{}: a task failed: {e}", sequence.spec.name);
                }
            }
            if let Some(leased) = sequence.leased() {
                // Leases that were in flight at the first close landed since;
                // they come after the blocks collected then.
                blocks.extend(leased.reservoir().close());
                give_back(&sequence.spec.name, blocks, &self.store, &mut report).await;
            }
        }
        report
    }
}

/// Stops a sequence's taking and its tasks; returns the blocks it held.
fn close(sequence: &Sequence) -> Vec<Block> {
    match &sequence.engine {
        Engine::Leased(leased) => {
            let blocks = leased.reservoir().close();
            leased.lease_needed.notify_one();
            leased.lease_done.notify_waiters();
            blocks
        }
        Engine::Strict(queue) => {
            queue.close();
            Vec::new()
        }
    }
}

/// `first..=last` for each run, for logs.
fn describe_runs(runs: &[Block]) -> String {
    runs.iter()
        .map(|b| format!("{}..={}", b.first, b.last))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes exactly `count` numbers of `name` from the store, in as many
/// transactions as wraps (and the per-call cap) need; fewer only if a
/// non-cycling sequence runs out. A store that rounds up to its lease step
/// leaves the excess unissued: a gap.
async fn take_exact(
    store: &Arc<dyn Store>,
    name: &str,
    count: u64,
) -> Result<Vec<Block>, StoreError> {
    let mut runs: Vec<Block> = Vec::new();
    let mut remaining = count;
    while remaining > 0 {
        let (call, owned) = (Arc::clone(store), name.to_owned());
        let blocks = match blocking(move || call.take(&owned, remaining)).await {
            Ok(blocks) => blocks,
            Err(StoreError::Exhausted(_)) if !runs.is_empty() => break,
            Err(e) => return Err(e),
        };
        for block in blocks {
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

/// Leases one block for the sequence if it wants one; reports the outcome
/// to its reservoir and wakes the requests waiting for it.
async fn lease_once(
    name: &str,
    leased: &Leased,
    store: &Arc<dyn Store>,
    metrics: &Metrics,
) -> Result<LeaseDecision, StoreError> {
    let decision = leased.reservoir().start_lease(Instant::now());
    let LeaseDecision::Lease(size) = decision else {
        return Ok(decision);
    };
    let (store, owned) = (Arc::clone(store), name.to_owned());
    let started = Instant::now();
    let outcome = blocking(move || store.lease(&owned, size)).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(StoreError::Exhausted(_)) => "exhausted",
        Err(_) => {
            metrics.store_error("lease");
            "error"
        }
    };
    metrics.lease(name, label, started.elapsed());
    let result = {
        let mut reservoir = leased.reservoir();
        match outcome {
            Ok(blocks) => {
                let described = describe_runs(&blocks);
                let count: u64 = blocks.iter().map(Block::len).sum();
                if reservoir.lease_succeeded(blocks) {
                    info!(
                        "{name}: leased {count} numbers {described} in {:?}",
                        started.elapsed()
                    );
                } else {
                    info!("{name}: dropped a lease of {described} made before a restart");
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

/// The background task that keeps one leased sequence stocked. Retries a
/// failing store with exponential backoff up to `retry_max`, logging the
/// outage once when it starts and once when it ends.
async fn run_leaser(
    name: &str,
    leased: &Leased,
    store: Arc<dyn Store>,
    metrics: &Metrics,
    retry_max: Duration,
) {
    let mut outage: Option<(Instant, u32)> = None;
    loop {
        match lease_once(name, leased, &store, metrics).await {
            Ok(LeaseDecision::Closed) => return,
            Ok(LeaseDecision::Idle) => leased.lease_needed.notified().await,
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
                    _ = leased.lease_needed.notified() => {}
                }
            }
        }
    }
}
