//! The sequences this instance serves, and how they follow the store:
//! sequences created elsewhere are added, deleted ones dropped, restarted
//! ones (a new generation) lose the blocks on hand.

use super::Dispenser;
use super::leaser::{self, Leased};
use super::reservoir::{BlockSizing, Reservoir};
use super::strict::StrictQueue;
use crate::sequence::{Block, Mode, SequenceSpec};
use crate::store::SequenceState;
use crate::unpoisoned;
use log::info;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// How a sequence's numbers are produced in this instance.
#[derive(Debug)]
pub enum Engine {
    /// From blocks leased ahead (boxed: a reservoir is much larger than a
    /// strict queue).
    Leased(Box<Leased>),
    /// Straight from the store, request by request (batched).
    Strict(StrictQueue),
}

/// One sequence in this instance.
#[derive(Debug)]
pub struct Sequence {
    /// Its settings.
    pub spec: SequenceSpec,
    /// Numbers handed out, for the metrics (kept to bump without a lookup).
    pub issued: prometheus::IntCounter,
    /// The store's generation this instance last saw.
    pub generation: AtomicI64,
    /// Where its numbers come from.
    pub engine: Engine,
    /// Its leaser or strict workers.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Sequence {
    /// The leased engine, if this is a leased sequence.
    pub fn leased(&self) -> Option<&Leased> {
        match &self.engine {
            Engine::Leased(leased) => Some(leased),
            Engine::Strict(_) => None,
        }
    }

    /// Stops taking and the tasks; returns the blocks it held.
    pub fn close(&self) -> Vec<Block> {
        match &self.engine {
            Engine::Leased(leased) => {
                let blocks = leased.reservoir().close();
                leased.lease_needed.notify_one();
                leased.closing.notify_one();
                leased.lease_done.notify_waiters();
                blocks
            }
            Engine::Strict(queue) => {
                queue.close();
                Vec::new()
            }
        }
    }

    /// Waits for its tasks to end (after [`Self::close`]).
    pub async fn join_tasks(&self) {
        let tasks = std::mem::take(&mut *unpoisoned::lock(&self.tasks));
        for task in tasks {
            if let Err(e) = task.await {
                log::error!("{}: a task failed: {e}", self.spec.name);
            }
        }
    }
}

impl Dispenser {
    pub(super) fn get(&self, name: &str) -> Option<Arc<Sequence>> {
        unpoisoned::read(&self.sequences).get(name).cloned()
    }

    pub(super) fn all(&self) -> Vec<Arc<Sequence>> {
        unpoisoned::read(&self.sequences)
            .values()
            .cloned()
            .collect()
    }

    /// A new sequence of this instance, not yet serving.
    pub(super) fn new_sequence(&self, state: &SequenceState) -> Arc<Sequence> {
        let engine = match state.spec.mode {
            Mode::Leased => Engine::Leased(Box::new(Leased::new(Reservoir::new(
                BlockSizing::new(self.settings.block_min, self.settings.block_max)
                    .within_lap(state.spec.size()),
                state.generation,
            )))),
            Mode::Strict => Engine::Strict(StrictQueue::new()),
        };
        Arc::new(Sequence {
            issued: self.metrics.register_sequence(&state.spec.name),
            spec: state.spec.clone(),
            generation: AtomicI64::new(state.generation),
            engine,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts a sequence's leaser or strict workers.
    pub(super) fn start_tasks(&self, sequence: &Arc<Sequence>) {
        let mut tasks = unpoisoned::lock(&sequence.tasks);
        let workers = match &sequence.engine {
            Engine::Leased(_) => 1,
            Engine::Strict(_) => self.settings.strict_workers.max(1),
        };
        for _ in 0..workers {
            let (sequence, link) = (Arc::clone(sequence), Arc::clone(&self.link));
            let metrics = Arc::clone(&self.metrics);
            let retry_max = self.settings.retry_max;
            tasks.push(tokio::spawn(async move {
                let name = &sequence.spec.name;
                match &sequence.engine {
                    Engine::Leased(leased) => {
                        leaser::run(name, leased, link, &metrics, retry_max).await;
                    }
                    Engine::Strict(queue) => {
                        let most = link.most_per_reservation(&sequence.spec);
                        queue
                            .run_worker(
                                name,
                                sequence.spec.size(),
                                most,
                                &sequence.generation,
                                link,
                            )
                            .await;
                    }
                }
            }));
        }
    }

    /// Brings this instance in line with the store's sequences: adds new
    /// ones, drops deleted ones, and drops the blocks of restarted ones
    /// (not given back: they may hold numbers the restart hands out again).
    /// Call with `reconciling` held.
    pub(super) async fn reconcile(&self, states: &[SequenceState]) {
        if self.is_closed() {
            return;
        }
        let mut retired = Vec::new();
        for state in states {
            let name = &state.spec.name;
            match self.get(name) {
                Some(local) if local.spec == state.spec => {
                    let known = local.generation.swap(state.generation, Ordering::SeqCst);
                    if let Some(leased) = local.leased() {
                        // Compared and reset under the reservoir's lock, so
                        // a stop never gives back old blocks as new ones.
                        let mut reservoir = leased.reservoir();
                        if reservoir.generation() != state.generation {
                            let dropped = reservoir.reset(state.generation);
                            drop(reservoir);
                            leased.lease_needed.notify_one();
                            info!(
                                "{name}: new generation {} in the store (was {known}); \
                                 dropped {dropped} numbers on hand",
                                state.generation
                            );
                        }
                    }
                }
                other => {
                    // New here, or deleted and created again with other settings.
                    if let Some(old) = other {
                        retired.push(old);
                    }
                    let sequence = self.new_sequence(state);
                    self.start_tasks(&sequence);
                    unpoisoned::write(&self.sequences).insert(name.clone(), sequence);
                    info!(
                        "{name}: now served ({} {}, generation {})",
                        state.spec.direction, state.spec.mode, state.generation
                    );
                }
            }
        }
        let present: HashSet<&str> = states.iter().map(|s| s.spec.name.as_str()).collect();
        let gone: Vec<String> = unpoisoned::read(&self.sequences)
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .cloned()
            .collect();
        for name in &gone {
            if let Some(old) = unpoisoned::write(&self.sequences).remove(name) {
                info!("{name}: deleted in the store; no longer served");
                retired.push(old);
            }
        }
        for sequence in retired {
            sequence.close();
            sequence.join_tasks().await;
        }
        // After the tasks ended, so no lease of theirs makes a series again.
        // A sequence created again with other settings keeps its series:
        // its name lives on, and its new counter is the registered one.
        for name in &gone {
            self.metrics.forget(name);
        }
    }

    /// Whether the store's sequences (names, settings, generations) differ
    /// from what this instance serves.
    pub(super) fn differs(&self, states: &[SequenceState]) -> bool {
        let known: HashMap<String, (SequenceSpec, i64)> = unpoisoned::read(&self.sequences)
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    (s.spec.clone(), s.generation.load(Ordering::Relaxed)),
                )
            })
            .collect();
        known.len() != states.len()
            || states.iter().any(|state| {
                known.get(&state.spec.name) != Some(&(state.spec.clone(), state.generation))
            })
    }
}
