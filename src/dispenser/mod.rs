//! Numbers served to requests, sequence by sequence.
//!
//! A **leased** sequence has a [`Reservoir`] behind a `std::sync::Mutex`
//! (never held across an `.await`; the critical sections are a few
//! arithmetic steps) and a background [`leaser`]. Requests take numbers
//! under the mutex; when stock falls below half a block they wake the
//! leaser, which reserves the next block on a blocking thread while
//! requests go on being served from the current one (double buffering). A
//! request waits for the store only when stock ran out, and then for at
//! most `lease_wait`.
//!
//! A **strict** sequence keeps nothing: requests queue, and a few workers
//! ([`strict`]) take exactly the queued numbers from the store in one
//! durable reservation per batch (group commit).
//!
//! Around them: [`registry`] (the sequences, and following the store's
//! changes), [`sync`] (polling the store), [`range`] (range leases),
//! [`exact`] (exact takes from the store, for range leases and strict
//! batches), [`shutdown`] (the graceful stop), [`calls`] (bounded store
//! calls), [`backoff`] (pauses between tries against a failing store).

mod backoff;
mod calls;
mod exact;
#[cfg(test)]
mod fake_store;
mod health;
mod leaser;
mod range;
mod registry;
mod reservoir;
mod shutdown;
mod strict;
mod sync;

pub use calls::StoreLink;
pub use health::HealthReport;
pub use reservoir::{BlockSizing, LeaseDecision, Reservoir, Shortfall};
pub use sync::StoreView;

use crate::sequence::{Block, SequenceSpec};
use crate::store::{Consent, Created, Position, Store, StoreError};
use crate::telemetry::Metrics;
use crate::unpoisoned;
use leaser::Leased;
use registry::{Engine, Sequence};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Why an instance is not ready: it is stopping.
pub const NOT_READY_STOPPING: &str = "this instance is stopping";

/// Why an instance is not ready: its store does not answer (why not is in
/// the log).
pub const NOT_READY_STORE: &str = "store unavailable";

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
    /// A non-cycling sequence has fewer numbers left than were asked for
    /// (`remaining`; none once it issued its last). A take is all or none,
    /// so they are still there for a request that fits them.
    Exhausted {
        /// How many it has left.
        remaining: u64,
    },
    /// More numbers than the sequence's whole range (its size): they could
    /// not all be different.
    CountExceedsRange(u64),
    /// More numbers than one take from the store holds for this sequence
    /// (a strict sequence: one `nextval()` per number); the most it takes.
    CountExceedsTake(u64),
    /// A range lease over the sequence's largest (`limit`: its own
    /// `max_lease`, capped by PEZ_MAX_LEASE).
    CountExceedsLease {
        /// The largest lease allowed.
        limit: u64,
        /// The sequence's own largest lease.
        max_lease: u64,
    },
    /// The store cannot provide and nothing is on hand; try again later.
    Unavailable,
    /// The instance is stopping.
    ShuttingDown,
}

/// What this instance knows of a sequence, for the admin API and the
/// status page.
#[derive(Debug, Clone)]
pub struct SequenceInfo {
    /// Its settings.
    pub spec: SequenceSpec,
    /// Where the store stands: the first number of the next reservation
    /// (`None`: a non-cycling sequence ran out).
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
    /// Numbers the store refused (it moved on) or could not take in time:
    /// a gap.
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
    link: Arc<StoreLink>,
    metrics: Arc<Metrics>,
    settings: DispenserSettings,
    /// Serialises reconciling with the store (admin operations, the sync
    /// task), which spans store calls; a tokio mutex, made to be held
    /// across `.await`.
    reconciling: tokio::sync::Mutex<()>,
    /// The store's sequences as the sync task last read them.
    view: Mutex<Option<StoreView>>,
    closed: AtomicBool,
    stop_sync: Notify,
    sync_task: Mutex<Option<JoinHandle<()>>>,
    /// This instance's name in the store's list of live instances.
    instance: String,
}

impl std::fmt::Debug for Dispenser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispenser")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
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
        let link = StoreLink::new(store, Arc::clone(&metrics));
        let states = link.call("list", |store| store.list()).await?;
        let dispenser = Arc::new(Self {
            sequences: RwLock::new(SequenceMap::default()),
            link,
            metrics,
            settings,
            reconciling: tokio::sync::Mutex::new(()),
            view: Mutex::new(None),
            closed: AtomicBool::new(false),
            stop_sync: Notify::new(),
            sync_task: Mutex::new(None),
            instance: sync::instance_name(),
        });
        dispenser.keep_view(&states);
        // Every first lease before any task starts: a failed start leaves
        // nothing running behind it (what it leased is a gap).
        let mut sequences = Vec::with_capacity(states.len());
        for state in &states {
            let sequence = dispenser.new_sequence(state);
            if let Some(leased) = sequence.leased() {
                leaser::lease_once(
                    &sequence.spec.name,
                    leased,
                    &dispenser.link,
                    &dispenser.metrics,
                )
                .await?;
            }
            sequences.push(sequence);
        }
        for sequence in sequences {
            dispenser.start_tasks(&sequence);
            unpoisoned::write(&dispenser.sequences).insert(sequence.spec.name.clone(), sequence);
        }
        let syncing = Arc::clone(&dispenser);
        *unpoisoned::lock(&dispenser.sync_task) =
            Some(tokio::spawn(async move { syncing.run_sync().await }));
        Ok(dispenser)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The settings of the sequence `name`, if it exists.
    pub fn spec(&self, name: &str) -> Option<SequenceSpec> {
        self.get(name).map(|s| s.spec.clone())
    }

    /// The names of the sequences, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = unpoisoned::read(&self.sequences).keys().cloned().collect();
        names.sort();
        names
    }

    /// The next `count` numbers of `name`, in sequence order, as runs of
    /// consecutive numbers. Waits for the store only when it must, and never
    /// longer than `lease_wait`.
    pub async fn next(&self, name: &str, count: u64) -> Result<Vec<Block>, DispenseError> {
        let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
        if count > sequence.spec.size() {
            return Err(DispenseError::CountExceedsRange(sequence.spec.size()));
        }
        if matches!(sequence.engine, Engine::Strict(_)) {
            let most = self.most_exact(&sequence);
            if count > most {
                return Err(DispenseError::CountExceedsTake(most));
            }
        }
        let runs = match &sequence.engine {
            Engine::Leased(leased) => self.next_leased(leased, count).await,
            Engine::Strict(queue) => queue.next(count, self.settings.lease_wait).await,
        }?;
        sequence.issued.inc_by(count);
        Ok(runs)
    }

    /// The next `count` numbers of `name` if they are on hand: `None` when
    /// the request would have to wait (for a lease, or for a strict
    /// sequence's store), and [`Dispenser::next`] is the way. Nearly every
    /// request is answered here, without a future to allocate and poll.
    pub fn next_on_hand(
        &self,
        name: &str,
        count: u64,
    ) -> Option<Result<Vec<Block>, DispenseError>> {
        let Some(sequence) = self.get(name) else {
            return Some(Err(DispenseError::UnknownSequence));
        };
        let Engine::Leased(leased) = &sequence.engine else {
            return None;
        };
        if count > sequence.spec.size() {
            return Some(Err(DispenseError::CountExceedsRange(sequence.spec.size())));
        }
        let runs = match take_on_hand(leased, count) {
            OnHand::Taken(runs) => runs,
            OnHand::Wait => return None,
            OnHand::Failed(e) => return Some(Err(e)),
        };
        sequence.issued.inc_by(count);
        Some(Ok(runs))
    }

    async fn next_leased(&self, leased: &Leased, count: u64) -> Result<Vec<Block>, DispenseError> {
        // Read the clock only if the request has to wait.
        let mut deadline = None;
        loop {
            // Registered before the reservoir's lock is released, so a
            // lease that lands between our look and our wait still wakes us.
            let lease_done = leased.lease_done.notified();
            match take_on_hand(leased, count) {
                OnHand::Taken(runs) => return Ok(runs),
                OnHand::Failed(e) => return Err(e),
                OnHand::Wait => {}
            }
            let deadline = *deadline
                .get_or_insert_with(|| tokio::time::Instant::now() + self.settings.lease_wait);
            if tokio::time::timeout_at(deadline, lease_done).await.is_err() {
                return Err(DispenseError::Unavailable);
            }
        }
    }

    /// What this instance holds of each sequence, without asking the store:
    /// settings, the next number on hand (if any) and how many are on hand.
    pub fn local(&self) -> Vec<(SequenceSpec, Option<i64>, u64)> {
        let mut local: Vec<_> = self
            .all()
            .iter()
            .map(|sequence| {
                let (next, on_hand) = on_hand(sequence);
                (sequence.spec.clone(), next, on_hand)
            })
            .collect();
        local.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        local
    }

    /// The store's sequences as the sync task last read them (at most
    /// `sync_interval` old while the store answers), without a store call.
    pub fn view(&self) -> Option<StoreView> {
        unpoisoned::lock(&self.view).clone()
    }

    /// Why this instance should not get traffic now, if it should not:
    /// it is stopping, or its store does not answer. An exhausted sequence
    /// is no reason: it answers 409 while every other sequence works.
    /// Each reason is a fixed phrase anyone may read ([`NOT_READY_STOPPING`],
    /// [`NOT_READY_STORE`]); the store's own error text goes to the log
    /// ([`StoreLink::call`]).
    pub fn not_ready(&self) -> Vec<String> {
        if self.is_closed() {
            return vec![NOT_READY_STOPPING.to_owned()];
        }
        // The sync task reads the store every interval: an answer older
        // than two intervals and a call means it stopped answering.
        let fresh = self.settings.sync_interval * 2 + self.link.call_limit();
        match self.link.trouble(fresh) {
            Some(cause) => {
                log::debug!("not ready: {cause}");
                vec![NOT_READY_STORE.to_owned()]
            }
            None => Vec::new(),
        }
    }

    /// What the store's calls said lately (no store call).
    pub fn store_health(&self) -> HealthReport {
        self.link.health()
    }

    /// Asks the store whether it takes writes ([`Store::probe`]); its
    /// outcome counts for readiness and the log like any call's. The
    /// server calls it every few seconds, so a store that goes away while
    /// no request comes is seen (and logged) all the same.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.link.call("probe", |store| store.probe()).await
    }

    /// The metrics this dispenser reports to.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Every sequence, with where the store stands now (a store call) and
    /// what this instance holds.
    pub async fn describe(&self) -> Result<Vec<SequenceInfo>, StoreError> {
        let states = self.link.call("list", |store| store.list()).await?;
        self.keep_view(&states);
        let mut infos = Vec::with_capacity(states.len());
        // One wait for all: many sequences starved at once (a store that
        // answers reads but not writes) must not add up their waits.
        let deadline = tokio::time::Instant::now() + self.settings.lease_wait;
        for state in states {
            let (next, on_hand) = match self.get(&state.spec.name) {
                Some(sequence) => settled_on_hand(&sequence, deadline).await,
                None => (None, 0),
            };
            infos.push(SequenceInfo {
                next: next.or(state.next_value),
                store_next: state.next_value,
                on_hand,
                spec: state.spec,
            });
        }
        Ok(infos)
    }

    /// Creates a sequence (or finds it there with the same settings) and
    /// starts serving it.
    pub async fn create(&self, spec: SequenceSpec) -> Result<Created, StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let created = self
            .link
            .call("create", move |store| {
                store.create(&spec, Position::fresh(&spec))
            })
            .await?;
        self.reconcile_now().await?;
        Ok(created)
    }

    /// Deletes a sequence; this instance stops serving it at once, the
    /// others at their next sync.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let owned = name.to_owned();
        self.link
            .call("delete", move |store| store.delete(&owned))
            .await?;
        self.reconcile_now().await
    }

    /// Makes `value` the next number of `name`. This instance drops the
    /// blocks it holds of it at once, the others at their next sync.
    pub async fn restart(
        &self,
        name: &str,
        value: i64,
        consent: Consent,
    ) -> Result<(), StoreError> {
        let _reconciling = self.reconciling.lock().await;
        let owned = name.to_owned();
        self.link
            .call("restart", move |store| {
                store.restart(&owned, value, consent)
            })
            .await?;
        self.reconcile_now().await
    }

    async fn reconcile_now(&self) -> Result<(), StoreError> {
        let states = self.link.call("list", |store| store.list()).await?;
        self.keep_view(&states);
        self.reconcile(&states).await;
        Ok(())
    }
}

/// Like [`on_hand`], once a lease in flight while nothing is on hand has
/// landed (waiting until `deadline` at most). The store counts such a lease's numbers
/// as gone the moment it commits, before this instance holds them: read in
/// between, "next" would name the number after the block this instance is
/// about to issue from (1001 for a fresh sequence whose first block is 1 to
/// 1000).
async fn settled_on_hand(
    sequence: &Sequence,
    deadline: tokio::time::Instant,
) -> (Option<i64>, u64) {
    if let Some(leased) = sequence.leased() {
        // Registered before the check, so a lease that lands between the
        // check and the wait still wakes us.
        let lease_done = leased.lease_done.notified();
        let in_flight = {
            let reservoir = leased.reservoir();
            reservoir.available() == 0 && reservoir.lease_in_flight()
        };
        if in_flight {
            // A lease that does not land in time leaves "next" at the
            // store's: no worse than before, and the caller is not held.
            let _ = tokio::time::timeout_at(deadline, lease_done).await;
        }
    }
    on_hand(sequence)
}

/// The next number `sequence` holds and how many it holds (none for a
/// strict sequence).
fn on_hand(sequence: &Sequence) -> (Option<i64>, u64) {
    sequence
        .leased()
        .map(|leased| {
            let reservoir = leased.reservoir();
            (reservoir.peek(), reservoir.available())
        })
        .unwrap_or((None, 0))
}

/// What a look at a leased sequence's numbers on hand came to.
enum OnHand {
    /// The numbers, taken.
    Taken(Vec<Block>),
    /// Too few on hand for now: a lease is coming (and was asked for).
    Wait,
    /// An answer that waiting would not change.
    Failed(DispenseError),
}

/// Takes `count` numbers of what `leased` holds, all or none, and asks for
/// the next lease when the reservoir wants one.
fn take_on_hand(leased: &Leased, count: u64) -> OnHand {
    let mut reservoir = leased.reservoir();
    let taken = reservoir.take(count);
    if reservoir.wants_lease() {
        leased.lease_needed.notify_one();
    }
    match taken {
        Ok(runs) => OnHand::Taken(runs),
        Err(Shortfall::Waiting) => OnHand::Wait,
        Err(Shortfall::StoreFailing) => OnHand::Failed(DispenseError::Unavailable),
        Err(Shortfall::Exhausted) => OnHand::Failed(DispenseError::Exhausted {
            remaining: reservoir.available(),
        }),
        Err(Shortfall::Closed) => OnHand::Failed(DispenseError::ShuttingDown),
    }
}
