//! Strict sequences: every number straight from the store.
//!
//! Requests queue here; worker tasks take everything queued (up to a cap)
//! as one batch, take exactly that many numbers from the store in one
//! durable transaction, and hand them out in queue order. Under load the
//! batches grow by themselves, so one fsync covers many requests (group
//! commit) and the store sees a few transactions per millisecond instead of
//! one per request. Global order holds: a request that finished before
//! another began was in an earlier batch, whose numbers the store issued
//! earlier.

use super::DispenseError;
use super::calls::StoreLink;
use super::range::take_exact;
use super::reservoir::{BlockSizing, Reservoir};
use crate::sequence::Block;
use crate::store::StoreError;
use crate::unpoisoned;
use log::warn;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// The most numbers one batch takes from the store.
const MAX_BATCH: u64 = 10_000;

type Reply = oneshot::Sender<Result<Vec<Block>, DispenseError>>;

/// The queue of one strict sequence.
#[derive(Debug)]
pub struct StrictQueue {
    pending: Mutex<VecDeque<(u64, Reply)>>,
    work: Notify,
    closed: AtomicBool,
}

impl StrictQueue {
    pub(super) fn new() -> Self {
        Self {
            pending: Mutex::new(VecDeque::new()),
            work: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    fn pending(&self) -> MutexGuard<'_, VecDeque<(u64, Reply)>> {
        unpoisoned::lock(&self.pending)
    }

    /// Queues a request for `count` numbers and waits for them, at most
    /// `wait`. A request that gives up loses nothing that was issued to
    /// anyone: its numbers, if taken later, are a gap.
    pub(super) async fn next(
        &self,
        count: u64,
        wait: Duration,
    ) -> Result<Vec<Block>, DispenseError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(DispenseError::ShuttingDown);
        }
        let (reply, answer) = oneshot::channel();
        self.pending().push_back((count, reply));
        self.work.notify_one();
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(DispenseError::ShuttingDown),
            Err(_) => Err(DispenseError::Unavailable),
        }
    }

    /// Stops the workers and fails whatever is queued.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for (_, reply) in self.pending().drain(..) {
            let _ = reply.send(Err(DispenseError::ShuttingDown));
        }
        self.work.notify_waiters();
    }

    /// Takes the next batch: queued requests in order, up to [`MAX_BATCH`]
    /// numbers and never more than one lap of the sequence (always at least
    /// one request).
    fn batch(&self, lap: u64) -> Vec<(u64, Reply)> {
        let mut pending = self.pending();
        let mut batch = Vec::new();
        let mut total = 0;
        let most = MAX_BATCH.min(lap);
        while let Some((count, _)) = pending.front() {
            if !batch.is_empty() && total + count > most {
                break;
            }
            total += count;
            batch.extend(pending.pop_front());
        }
        batch
    }

    /// One worker: batch, take, hand out; until closed. `lap` is the
    /// sequence's size; `generation` the store's generation of it this
    /// instance knows.
    pub(super) async fn run_worker(
        &self,
        name: &str,
        lap: u64,
        generation: &AtomicI64,
        link: Arc<StoreLink>,
    ) {
        loop {
            let work = self.work.notified();
            let batch = self.batch(lap);
            if batch.is_empty() {
                if self.closed.load(Ordering::Relaxed) {
                    return;
                }
                work.await;
                continue;
            }
            // Others may be queued behind this batch: let another worker
            // start on them while this one waits for the store.
            if !self.pending().is_empty() {
                self.work.notify_one();
            }
            let total = batch.iter().map(|(count, _)| count).sum();
            let known = generation.load(Ordering::SeqCst);
            match take_exact(&link, name, known, total).await {
                Ok(runs) => {
                    // Hand out in queue order; a non-cycling sequence that ran
                    // out serves the first requests whole and fails the rest.
                    let mut taken = Reservoir::new(BlockSizing::new(1, 1), 0);
                    taken.lease_succeeded(runs);
                    for (count, reply) in batch {
                        let _ = reply.send(taken.take(count).map_err(|_| DispenseError::Exhausted));
                    }
                }
                Err(e) => {
                    let error = match e {
                        StoreError::Exhausted(_) => DispenseError::Exhausted,
                        StoreError::UnknownSequence(_) => DispenseError::UnknownSequence,
                        other => {
                            warn!("{name}: strict take failed: {other}");
                            DispenseError::Unavailable
                        }
                    };
                    for (_, reply) in batch {
                        let _ = reply.send(Err(error.clone()));
                    }
                    // Do not spin on a failing store.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
