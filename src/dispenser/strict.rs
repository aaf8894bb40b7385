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
//!
//! One batch is in flight at a time, unless a batch was full ([`MAX_BATCH`]
//! numbers): only then does another worker start on what is queued behind
//! it. Requests that arrive while a batch is in flight wait for it and go
//! together in the next. Waking an idle worker for every arrival instead
//! (as PEZ did before issue 20) split the load into as many small batches
//! as there are workers, each a statement and a WAL flush of its own: on
//! this 2-core machine with 64 connections, strict mode served 0.50x the
//! `nextval()` rate of pgbench beside it that way, 0.90x one batch at a
//! time (docs/benchmarks.md).

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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
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
    /// Workers with a batch in flight: an arrival wakes a worker only when
    /// none has (the one in flight takes it in its next batch).
    in_flight: AtomicUsize,
}

impl StrictQueue {
    pub(super) fn new() -> Self {
        Self {
            pending: Mutex::new(VecDeque::new()),
            work: Notify::new(),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
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
        let (reply, answer) = oneshot::channel();
        {
            // Looked at under the queue's lock, which `close` takes to fail
            // what is queued after it has set `closed`: a request is either
            // queued before that (and failed by it) or sees `closed`, never
            // left in a queue no worker reads until its deadline.
            let mut pending = self.pending();
            if self.closed.load(Ordering::Relaxed) {
                return Err(DispenseError::ShuttingDown);
            }
            pending.push_back((count, reply));
        }
        // Read after the push: a worker lowers `in_flight` before it looks
        // at the queue again, so either it sees this request or this sees
        // it idle and wakes it (or another).
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            self.work.notify_one();
        }
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
    /// close every request is told the sequence is shutting down. Says
    /// whether requests arrived while the take was in flight (queued
    /// behind the batch): they woke no worker.
    fn requeue(&self, batch: Vec<(u64, Reply)>) -> bool {
        let mut pending = self.pending();
        let arrived = !pending.is_empty();
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
        arrived
    }

    /// Takes the next batch: queued requests in order, up to [`MAX_BATCH`]
    /// numbers and never more than one lap of the sequence (always at least
    /// one request), and counts it in flight until the guard is dropped.
    /// While another batch is in flight, only a full batch is taken (what
    /// is less waits for the batch in flight to end): decided under the
    /// queue's lock, so workers woken together do not split the queue.
    fn batch(&self, lap: u64) -> Option<(Vec<(u64, Reply)>, InFlight<'_>)> {
        let mut pending = self.pending();
        let most = MAX_BATCH.min(lap);
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            let mut queued = 0u64;
            for (count, _) in pending.iter() {
                queued = queued.saturating_add(*count);
                if queued >= most {
                    break;
                }
            }
            if queued < most {
                return None;
            }
        }
        let mut batch = Vec::new();
        let mut total = 0;
        while let Some((count, _)) = pending.front() {
            if !batch.is_empty() && total + count > most {
                break;
            }
            total += count;
            batch.extend(pending.pop_front());
        }
        if batch.is_empty() {
            return None;
        }
        Some((batch, InFlight::enter(&self.in_flight)))
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
            let Some((batch, in_flight)) = self.batch(lap) else {
                if self.closed.load(Ordering::Relaxed) {
                    return;
                }
                work.await;
                continue;
            };
            // A batch takes everything queued up to its cap: anything still
            // queued means the cap was reached, so let another worker start
            // on it (it takes it if it is a full batch) while this one
            // waits for the store.
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
                    let arrived = self.requeue(batch);
                    // Out of flight while it pauses: an arrival wakes an
                    // idle worker, which tries at once (a store that came
                    // back mid-pause serves it without waiting out this
                    // worker's backoff, up to a second). Requests that
                    // arrived while this take was in flight woke nobody:
                    // they get the same try now.
                    drop(in_flight);
                    if arrived {
                        self.work.notify_one();
                    }
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
            backoff.reset();
        }
    }
}

/// Counts a worker as having a batch in flight until dropped (whichever
/// way the batch ends, a retry pause included).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispenser::fake_store::FakeStore;
    use crate::sequence::Direction;
    use crate::store::{Reserved, Store};
    use crate::telemetry::metrics::Metrics;
    use std::sync::atomic::AtomicU64;

    /// What a slow store saw: how many reservations, how many at once at
    /// most, and where its numbers stand.
    #[derive(Default)]
    struct Seen {
        next: Mutex<i64>,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
        calls: AtomicU64,
        /// While set, every reservation fails as an outage.
        down: AtomicBool,
        /// A failing reservation with this call number holds (`holding`)
        /// until `released`, then fails: a take in flight, on demand.
        hold_call: AtomicU64,
        holding: AtomicBool,
        released: AtomicBool,
    }

    impl Seen {
        /// A reservation that takes 20 ms: numbers from 1 up, as asked.
        fn reserve(&self, size: u64) -> Result<Reserved, StoreError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            self.calls.fetch_add(1, Ordering::SeqCst);
            let call = self.calls.load(Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                if call == self.hold_call.load(Ordering::SeqCst) {
                    self.holding.store(true, Ordering::SeqCst);
                    while !self.released.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                self.running.fetch_sub(1, Ordering::SeqCst);
                return Err(StoreError::Unavailable("the store is down".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
            let first = {
                let mut next = unpoisoned::lock(&self.next);
                let first = *next + 1;
                *next += size as i64;
                first
            };
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(Reserved::durable(
                vec![Block::new(first, Direction::Ascending, size)],
                0,
            ))
        }
    }

    /// Four workers (the default pool) on one queue of a slow store.
    fn start() -> (Arc<StrictQueue>, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let store = {
            let seen = Arc::clone(&seen);
            FakeStore::new(Duration::from_secs(10)).reserving(move |_, size| seen.reserve(size))
        };
        let queue = Arc::new(StrictQueue::new());
        let link = StoreLink::new(
            Arc::new(store) as Arc<dyn Store>,
            Arc::new(Metrics::new("test")),
        );
        let generation = Arc::new(AtomicI64::new(0));
        for _ in 0..4 {
            let (queue, link, generation) = (
                Arc::clone(&queue),
                Arc::clone(&link),
                Arc::clone(&generation),
            );
            tokio::spawn(async move {
                queue
                    .run_worker("s", u64::MAX, 1_000_000, &generation, link)
                    .await;
            });
        }
        (queue, seen)
    }

    fn assert_distinct(mut numbers: Vec<i64>) {
        let handed_out = numbers.len();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), handed_out, "a number went out twice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_arrive_while_a_batch_is_in_flight_wait_for_it_and_go_together() {
        let (queue, store) = start();
        let mut clients = Vec::new();
        for _ in 0..64 {
            let queue = Arc::clone(&queue);
            clients.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    let blocks = queue
                        .next(1, Duration::from_secs(30))
                        .await
                        .expect("numbers");
                    got.extend(blocks.iter().flat_map(Block::iter));
                }
                got
            }));
        }
        let mut numbers = Vec::new();
        for client in clients {
            numbers.extend(client.await.expect("client"));
        }
        queue.close();
        assert_distinct(numbers);
        assert_eq!(
            store.most_at_once.load(Ordering::SeqCst),
            1,
            "batches under the cap ran side by side"
        );
        // 640 requests of 64 clients: about ten batches of 64, a few more
        // while the first arrivals trickle in.
        let calls = store.calls.load(Ordering::SeqCst);
        assert!(calls <= 40, "{calls} reservations for 640 requests");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_than_a_full_batch_queued_starts_another_worker() {
        let (queue, store) = start();
        let first = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.next(1, Duration::from_secs(30)).await })
        };
        // Queued while that one is in flight: three full batches, which
        // wake nobody; the worker that takes the first must start another.
        while store.running.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut takes: Vec<_> = (0..3)
            .map(|_| {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move { queue.next(MAX_BATCH, Duration::from_secs(30)).await })
            })
            .collect();
        takes.push(first);
        let mut numbers = Vec::new();
        for take in takes {
            let blocks = take.await.expect("task").expect("numbers");
            numbers.extend(blocks.iter().flat_map(Block::iter));
        }
        queue.close();
        assert_distinct(numbers);
        assert!(
            store.most_at_once.load(Ordering::SeqCst) >= 2,
            "full batches waited for one another"
        );
    }

    /// A request that races the sequence's close is told it is shutting
    /// down at once; it must not sit in the queue until its deadline and
    /// be answered "unavailable".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_racing_the_close_is_told_shutting_down_at_once() {
        for _ in 0..200 {
            let queue = Arc::new(StrictQueue::new());
            let asking = {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move { queue.next(1, Duration::from_secs(5)).await })
            };
            let closing = {
                let queue = Arc::clone(&queue);
                tokio::task::spawn_blocking(move || queue.close())
            };
            closing.await.expect("close");
            let answer = tokio::time::timeout(Duration::from_secs(1), asking)
                .await
                .expect("a request racing the close waited for its deadline")
                .expect("task");
            // No worker runs: a request that was queued in time is failed
            // by the close, one that came after sees it.
            assert!(
                matches!(answer, Err(DispenseError::ShuttingDown)),
                "{answer:?}"
            );
        }
    }

    /// A request that arrives while a take is failing wakes nobody (a
    /// batch is in flight); when that take fails, it must get a try at
    /// once, not wait out the failed worker's pause. `.ci/run` caught this
    /// window once in the test below (822 ms).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_arrives_during_a_failing_take_is_tried_at_once_after_it() {
        let (queue, store) = start();
        store.hold_call.store(5, Ordering::SeqCst);
        store.down.store(true, Ordering::SeqCst);
        let stranded = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.next(1, Duration::from_secs(30)).await })
        };
        // The fifth take (after pauses of 50, 100, 200 and 400 ms; the
        // next would be 800) is in flight and held.
        while !store.holding.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let fresh = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.next(1, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.down.store(false, Ordering::SeqCst);
        let failed = tokio::time::Instant::now();
        store.released.store(true, Ordering::SeqCst);
        let fresh = fresh.await.expect("task").expect("numbers");
        let waited = failed.elapsed();
        let stranded = stranded.await.expect("task").expect("numbers");
        queue.close();
        assert_both_served_and_soon(&fresh, &stranded, waited);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_after_an_outage_is_served_at_once_not_after_a_workers_backoff() {
        let (queue, store) = start();
        store.down.store(true, Ordering::SeqCst);
        let stranded = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move { queue.next(1, Duration::from_secs(30)).await })
        };
        // Five failed takes: the worker retrying the stranded request now
        // pauses 800 ms (50, 100, 200, 400, 800).
        while store.calls.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        store.down.store(false, Ordering::SeqCst);
        let asked = tokio::time::Instant::now();
        let fresh = queue
            .next(1, Duration::from_secs(30))
            .await
            .expect("numbers after the store came back");
        let waited = asked.elapsed();
        let stranded = stranded.await.expect("task").expect("numbers");
        queue.close();
        assert_both_served_and_soon(&fresh, &stranded, waited);
    }

    /// The request that came once the store answered again (`fresh`) and
    /// the one stranded by the outage share no number, and the fresh one
    /// `waited` for one 20 ms take or so, not for a worker's retry pause
    /// (800 ms in both tests).
    fn assert_both_served_and_soon(fresh: &[Block], stranded: &[Block], waited: Duration) {
        assert_distinct(
            fresh
                .iter()
                .chain(stranded.iter())
                .flat_map(Block::iter)
                .collect(),
        );
        assert!(
            waited < Duration::from_millis(400),
            "the fresh request waited {waited:?} once the store answered"
        );
    }
}
