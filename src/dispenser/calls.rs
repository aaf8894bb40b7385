//! Store calls from async code: on a blocking thread, never waited for
//! longer than the store's own limit, and remembered for readiness.
//!
//! diesel is synchronous, so every call runs on a `spawn_blocking` thread.
//! The store bounds its calls itself (timeouts, the PostgreSQL watchdog),
//! but a call can still hang where no timeout reaches (a server that
//! vanished mid-commit). The caller gives up at [`Store::call_limit`] and
//! counts the call as ambiguous: whatever it returns later is dropped with
//! its thread's result, never served.

use super::health::{Change, HealthReport, StoreHealth};
use crate::sequence::SequenceSpec;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;
use crate::unpoisoned;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The store, and what the last calls to it said.
pub struct StoreLink {
    store: Arc<dyn Store>,
    health: Mutex<StoreHealth>,
    metrics: Arc<Metrics>,
    /// Wakes the sync task early: a call found this instance's view of a
    /// sequence out of date.
    sync_wanted: tokio::sync::Notify,
}

impl StoreLink {
    /// Wraps a store; calls are counted in `metrics`.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            store,
            health: Mutex::new(StoreHealth::default()),
            metrics,
            sync_wanted: tokio::sync::Notify::new(),
        })
    }

    /// Asks the sync task to look at the store now.
    pub fn request_sync(&self) {
        self.sync_wanted.notify_one();
    }

    /// Completes when someone asked for a sync.
    pub async fn sync_requested(&self) {
        self.sync_wanted.notified().await;
    }

    /// The longest a call may take before it is given up.
    pub fn call_limit(&self) -> Duration {
        self.store.call_limit()
    }

    /// Whether the store can prove a give-back of `spec` safe at all.
    pub fn gives_back(&self, spec: &SequenceSpec) -> bool {
        self.store.gives_back(spec)
    }

    /// The most numbers one reservation of `spec` takes (no I/O).
    pub fn most_per_reservation(&self, spec: &SequenceSpec) -> u64 {
        self.store.most_per_reservation(spec).max(1)
    }

    /// Tells the store this instance is alive (PostgreSQL: `pez.instances`).
    pub async fn heartbeat(
        self: &Arc<Self>,
        instance: &str,
        for_at_least: Duration,
    ) -> Result<(), StoreError> {
        let instance = instance.to_owned();
        self.call("heartbeat", move |store| {
            store.heartbeat(&instance, for_at_least)
        })
        .await
    }

    /// Tells the store this instance stopped.
    pub async fn farewell(self: &Arc<Self>, instance: &str) -> Result<(), StoreError> {
        let instance = instance.to_owned();
        self.call("farewell", move |store| store.farewell(&instance))
            .await
    }

    /// Runs `call` on the store, on a blocking thread, for at most the
    /// store's call limit; records whether the store answered. `operation`
    /// names it in the metrics.
    pub async fn call<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        call: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let limit = self.store.call_limit();
        let link = Arc::clone(self);
        let running = tokio::task::spawn_blocking(move || call(link.store.as_ref()));
        let outcome = match tokio::time::timeout(limit, running).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(StoreError::Ambiguous(format!("store call failed: {e}"))),
            Err(_) => Err(StoreError::Ambiguous(format!(
                "no answer from the store within {limit:?}"
            ))),
        };
        let failed = outcome.as_ref().is_err_and(StoreError::is_outage);
        self.metrics.store_call(operation, failed);
        let now = Instant::now();
        let mut health = unpoisoned::lock(&self.health);
        let change = match &outcome {
            Err(e) if e.is_outage() => {
                log::debug!("store: {operation} failed: {e}");
                health.failed(operation, e.to_string(), now)
            }
            // A verdict (unknown name, exhausted, ...) is an answer too.
            _ => health.answered(operation, now),
        };
        // Once when an outage begins, once when it ends (StoreHealth
        // decides which answers end it). /readyz says only "store
        // unavailable": the cause, which may name the database's users,
        // hosts and tables, is logged here. Logged before the health lock
        // is let go, so no one reads "ready" before the line that says the
        // store answers again is written.
        match (change, &outcome) {
            (Change::Down, Err(e)) => {
                log::warn!("store: {operation} failed, not ready until it answers: {e}");
            }
            (Change::Up(after), _) => {
                log::info!("store: answers again ({operation}) after {after:.1?} out");
            }
            _ => {}
        }
        drop(health);
        outcome
    }

    /// Why the store does not count as answering, if it does not: it is
    /// out (see [`StoreHealth`]), or no call answered within `fresh`.
    pub fn trouble(&self, fresh: Duration) -> Option<String> {
        unpoisoned::lock(&self.health).trouble(fresh, Instant::now())
    }

    /// The store's health now, for the status page.
    pub fn health(&self) -> HealthReport {
        unpoisoned::lock(&self.health).report(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispenser::fake_store::FakeStore;

    /// A store whose listing hangs far beyond its own stated limit.
    fn hanging() -> FakeStore {
        FakeStore::new(Duration::from_millis(100)).listing(|| {
            std::thread::sleep(Duration::from_secs(3));
            Ok(Vec::new())
        })
    }

    #[tokio::test]
    async fn a_call_that_overruns_the_limit_is_given_up_as_ambiguous_and_counts_as_trouble() {
        let metrics = Arc::new(Metrics::new("test"));
        let link = StoreLink::new(Arc::new(hanging()), Arc::clone(&metrics));
        assert!(
            link.trouble(Duration::from_secs(60)).is_some(),
            "no answer yet"
        );
        link.call("generations", |store| store.generations())
            .await
            .unwrap();
        assert_eq!(link.trouble(Duration::from_secs(60)), None);
        let started = Instant::now();
        let outcome = link.call("list", |store| store.list()).await;
        assert!(
            matches!(outcome, Err(StoreError::Ambiguous(_))),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(link.trouble(Duration::from_secs(60)).is_some());
        // A verdict is an answer.
        let verdict = link.call("reserve", |store| store.reserve("x", 0, 1)).await;
        assert!(matches!(verdict, Err(StoreError::UnknownSequence(_))));
        assert_eq!(link.trouble(Duration::from_secs(60)), None);
        let text = metrics.render();
        assert!(
            text.contains("pez_store_calls_total{operation=\"list\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pez_store_errors_total{operation=\"list\"} 1"),
            "{text}"
        );
        // A verdict is no error: the series is there, at zero.
        assert!(
            text.contains("pez_store_errors_total{operation=\"reserve\"} 0"),
            "{text}"
        );
    }
}
