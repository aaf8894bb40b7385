//! Telling every connection that the server stops, at no cost per request.
//!
//! hyper-util's `GracefulShutdown` watches a `tokio::sync::watch` channel
//! from every connection, and polling its `changed()` takes a lock shared
//! by all connections at every poll of every connection. Here a
//! connection reads a flag (an atomic load of a line nobody writes until
//! the stop) and hands its task's waker over once, when it starts, so the
//! stop can wake it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    next_id: AtomicU64,
    /// The waker of each connection's task, by connection.
    wakers: Mutex<HashMap<u64, Waker>>,
}

impl Shared {
    fn wakers(&self) -> MutexGuard<'_, HashMap<u64, Waker>> {
        // A panic while holding the lock leaves a usable map.
        crate::unpoisoned::lock(&self.wakers)
    }
}

/// The server's side: says stop.
#[derive(Debug, Default)]
pub struct Stop {
    shared: Arc<Shared>,
}

impl Stop {
    /// A stop signal nobody has given yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One connection's view of the signal.
    pub fn watcher(&self) -> StopWatcher {
        StopWatcher {
            shared: Arc::clone(&self.shared),
            id: None,
        }
    }

    /// Tells every connection, and wakes each so it sees it.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for waker in self.shared.wakers().values() {
            waker.wake_by_ref();
        }
    }
}

/// A connection's side: polled by the connection's task.
#[derive(Debug)]
pub struct StopWatcher {
    shared: Arc<Shared>,
    id: Option<u64>,
}

impl StopWatcher {
    /// Whether the server is stopping. The first call registers the task's
    /// waker (a tokio task's waker stays valid for the task's life).
    pub fn stopping(&mut self, cx: &mut Context<'_>) -> bool {
        if self.id.is_none() {
            let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
            self.shared.wakers().insert(id, cx.waker().clone());
            self.id = Some(id);
        }
        // After the registration: a stop that came before it is seen here,
        // one that comes after it wakes this task.
        self.shared.stopping.load(Ordering::SeqCst)
    }
}

impl Drop for StopWatcher {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shared.wakers().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_stop_wakes_every_connection_watching_and_later_ones_see_it() {
        let stop = Stop::new();
        let woken = Arc::new(Counting::default());
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        let mut watching: Vec<StopWatcher> = (0..3).map(|_| stop.watcher()).collect();
        for watcher in &mut watching {
            assert!(!watcher.stopping(&mut cx));
        }
        drop(watching.pop());
        stop.stop();
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        assert!(watching.iter_mut().all(|w| w.stopping(&mut cx)));
        assert!(stop.watcher().stopping(&mut cx));
    }
}
