//! The sync task: every `sync_interval`, read the store's sequences, keep
//! that view for the operator endpoints (so a flood of them never reaches
//! the store), and reconcile with it when another instance created,
//! deleted or restarted a sequence.

use super::Dispenser;
use crate::store::SequenceState;
use crate::unpoisoned;
use log::debug;
use std::sync::Arc;
use std::time::Instant;

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
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.settings.sync_interval) => {}
                _ = self.link.sync_requested() => {}
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
