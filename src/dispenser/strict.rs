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
use super::backoff::Backoff;
use super::calls::StoreLink;
use super::exact::take_exact;
use super::reservoir::{BlockSizing, Reservoir};
use crate::sequence::Block;
use crate::store::{Stamp, StoreError};
use crate::unpoisoned;
use log::{debug, warn};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// The most numbers one batch takes from the store.
const MAX_BATCH: u64 = 10_000;

/// The pause after a failed take, doubled while the store keeps failing.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between tries against a failing store.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

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

    /// Puts a batch whose take failed back at the head of the queue, in
    /// its order; requests that gave up waiting are dropped, and after a
    /// close every request is told the sequence is shutting down.
    fn requeue(&self, batch: Vec<(u64, Reply)>) {
        let mut pending = self.pending();
        for (count, reply) in batch.into_iter().rev() {
            if reply.is_closed() {
                continue;
            }
            if self.closed.load(Ordering::Relaxed) {
                let _ = reply.send(Err(DispenseError::ShuttingDown));
            } else {
                pending.push_front((count, reply));
            }
        }
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
        most: u64,
        generation: &AtomicI64,
        link: Arc<StoreLink>,
    ) {
        let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
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
            match take_exact(&link, name, known, total, most).await {
                Ok(exact) => {
                    // Hand out in queue order, each request all or none. A
                    // non-cycling sequence that ran out may leave too few
                    // for some: they are answered with what remains, and
                    // those numbers go back to the store (never issued, so
                    // never lost), for a request that fits them.
                    let mut taken = Reservoir::new(BlockSizing::new(1, 1), 0);
                    taken.lease_succeeded(exact.runs, 0);
                    let answers: Vec<_> = batch
                        .into_iter()
                        .map(|(count, reply)| (taken.take(count), reply))
                        .collect();
                    let rest = taken.close();
                    let remaining = if rest.is_empty() {
                        0
                    } else {
                        let stamp = Stamp {
                            generation: known,
                            laps: exact.laps,
                        };
                        give_back_rest(&link, name, stamp, rest).await
                    };
                    for (taken, reply) in answers {
                        let _ =
                            reply.send(taken.map_err(|_| DispenseError::Exhausted { remaining }));
                    }
                }
                Err(StoreError::Exhausted(_)) => {
                    fail(batch, DispenseError::Exhausted { remaining: 0 });
                }
                Err(StoreError::UnknownSequence(_)) => fail(batch, DispenseError::UnknownSequence),
                Err(e) => {
                    // An outage, a call in doubt or a view out of date:
                    // nothing of this batch was handed out (an ambiguous
                    // take's numbers are a gap), so its requests go back to
                    // the head of the queue and wait out their own
                    // deadline (PEZ_LEASE_WAIT_MS) instead of failing at
                    // the first stumble of a store that may answer a moment
                    // later. The next try comes after a pause that grows
                    // while the store keeps failing.
                    // The first failure of a streak is worth a warning; the
                    // retries of an outage are not.
                    let fresh = backoff.is_fresh();
                    let pause = backoff.pause();
                    if fresh {
                        warn!("{name}: strict take failed, retrying: {e}");
                    } else {
                        debug!("{name}: strict take failed again, retrying in {pause:?}: {e}");
                    }
                    self.requeue(batch);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
            backoff.reset();
        }
    }
}

/// Gives back the numbers a batch took and could not hand out (the end of
/// a non-cycling sequence), last first, so a request that fits them gets
/// them; says how many the store took back (the rest are a gap).
async fn give_back_rest(link: &Arc<StoreLink>, name: &str, stamp: Stamp, rest: Vec<Block>) -> u64 {
    let mut returned = 0;
    for block in rest.into_iter().rev() {
        let owned = name.to_owned();
        match link
            .call("give_back", move |store| {
                store.give_back(&owned, stamp, block)
            })
            .await
        {
            Ok(true) => returned += block.len(),
            Ok(false) => break,
            Err(e) => {
                warn!(
                    "{name}: could not give back the last {} numbers: {e}; they stay a gap",
                    block.len()
                );
                break;
            }
        }
    }
    returned
}

/// Answers every request of a batch with `error`.
fn fail(batch: Vec<(u64, Reply)>, error: DispenseError) {
    for (_, reply) in batch {
        let _ = reply.send(Err(error.clone()));
    }
}
