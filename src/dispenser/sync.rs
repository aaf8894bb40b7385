//! The sync task: every `sync_interval`, read the store's sequences, keep
//! that view for the operator endpoints (so a flood of them never reaches
//! the store), and reconcile with it when another instance created,
//! deleted or restarted a sequence. Every interval (at most
//! [`MOST_BETWEEN_HEARTBEATS`]) it also tells the store this instance is
//! alive, for ten heartbeats ahead and at least [`LEAST_ALIVE`]: what `pez
//! handback` reads.

use super::Dispenser;
use crate::store::SequenceState;
use crate::unpoisoned;
use log::debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest pause between two heartbeats, whatever the sync interval.
pub const MOST_BETWEEN_HEARTBEATS: Duration = Duration::from_secs(5);

/// An instance counts as alive for at least this long after a heartbeat.
pub const LEAST_ALIVE: Duration = Duration::from_secs(3);

/// This process's name in the store's list of live instances: host, pid
/// and when it started, so no two instances share one.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{host}:{}:{started}", std::process::id())
}

/// The store's sequences as the last successful sync read them.
#[derive(Debug, Clone)]
pub struct StoreView {
    /// Every sequence with where the store stands.
    pub states: Vec<SequenceState>,
    /// When they were read.
    pub read_at: Instant,
}

impl Dispenser {
    /// Polls the store until the dispenser closes.
    pub(super) async fn run_sync(self: Arc<Self>) {
        let every = self.settings.sync_interval.min(MOST_BETWEEN_HEARTBEATS);
        let alive_for = (every * 10).max(LEAST_ALIVE);
        let mut heartbeats = tokio::time::interval(every);
        heartbeats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Both timers persist across turns of the loop: a sleep made anew
        // each turn would never finish while heartbeats come as often.
        let mut syncs = tokio::time::interval_at(
            tokio::time::Instant::now() + self.settings.sync_interval,
            self.settings.sync_interval,
        );
        syncs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = syncs.tick() => {}
                _ = self.link.sync_requested() => {}
                _ = heartbeats.tick() => {
                    if let Err(e) = self.link.heartbeat(&self.instance, alive_for).await {
                        debug!("heartbeat: {e}");
                    }
                    continue;
                }
                _ = self.stop_sync.notified() => return,
            }
            if self.is_closed() {
                return;
            }
            if let Err(e) = self.sync_once().await {
                debug!("sync: {e}");
            }
        }
    }

    /// Reads the store's sequences once, keeps the view, and reconciles if
    /// they differ from what this instance serves.
    pub(super) async fn sync_once(&self) -> Result<(), crate::store::StoreError> {
        let states = self.link.call("list", |store| store.list()).await?;
        self.keep_view(&states);
        if self.differs(&states) {
            // Read again under the lock: an admin operation may have
            // reconciled with newer states while this read was out.
            let _reconciling = self.reconciling.lock().await;
            let states = self.link.call("list", |store| store.list()).await?;
            self.keep_view(&states);
            self.reconcile(&states).await;
        }
        Ok(())
    }

    pub(super) fn keep_view(&self, states: &[SequenceState]) {
        *unpoisoned::lock(&self.view) = Some(StoreView {
            states: states.to_vec(),
            read_at: Instant::now(),
        });
    }
}
