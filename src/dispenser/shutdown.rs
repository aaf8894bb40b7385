//! The graceful stop: close every sequence, wait for leases in flight, and
//! give the unissued blocks back, all within a deadline.

use super::registry::Sequence;
use super::{Dispenser, ReturnReport};
use crate::sequence::Block;
use crate::store::Stamp;
use log::{error, info, warn};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl Dispenser {
    /// Stops taking and leasing, waits for leases in flight, and gives the
    /// unissued numbers back to the store, so a clean restart continues
    /// with the very next number. Everything happens before `deadline`:
    /// what is not given back by then stays a gap (and says so). Call after
    /// the HTTP server has drained.
    pub async fn shutdown(&self, deadline: Instant) -> ReturnReport {
        self.closed.store(true, Ordering::SeqCst);
        self.stop_sync.notify_one();
        let sync_task = crate::unpoisoned::lock(&self.sync_task).take();
        if let Some(mut task) = sync_task {
            // It may be in the middle of a store call or a reconcile: no
            // longer than the deadline.
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                warn!("the sync task was still busy at the stop deadline; stopped it");
            }
        }
        // Closing first, everywhere: from here no request takes a number,
        // so nothing given back below can also be issued.
        let unissued: Vec<(Arc<Sequence>, Vec<Block>)> = self
            .all()
            .into_iter()
            .map(|sequence| {
                let blocks = sequence.close();
                (sequence, blocks)
            })
            .collect();
        // Gone from the store's list of live instances (a crash leaves it
        // there until its heartbeat is old).
        if let Ok(Err(e)) =
            tokio::time::timeout_at(deadline, self.link.farewell(&self.instance)).await
        {
            warn!("could not tell the store this instance stopped: {e}");
        }
        let mut report = ReturnReport::default();
        for (sequence, mut blocks) in unissued {
            let name = &sequence.spec.name;
            if tokio::time::timeout_at(deadline, sequence.join_tasks())
                .await
                .is_err()
            {
                warn!("{name}: a lease still in flight at the stop deadline is not waited for");
            }
            let Some(leased) = sequence.leased() else {
                continue;
            };
            // Leases that were in flight at the close landed since; they
            // come after the blocks collected then. The sync task is
            // stopped, so the reservoir's stamp (generation and laps), read
            // with them under its lock, is the one every block on hand
            // belongs to.
            let stamp = {
                let mut reservoir = leased.reservoir();
                blocks.extend(reservoir.close());
                reservoir.stamp()
            };
            let stamp = stamp.filter(|_| self.link.gives_back(&sequence.spec));
            let Some(stamp) = stamp else {
                let left: u64 = blocks.iter().map(Block::len).sum();
                if left > 0 {
                    report.abandoned += left;
                    warn!(
                        "{name}: a give-back cannot be proven safe (a small ring on \
                         PostgreSQL, or a full lap under this instance); {left} unused numbers \
                         stay a gap"
                    );
                }
                continue;
            };
            self.give_back(name, stamp, blocks, deadline, &mut report)
                .await;
        }
        report
    }

    /// Gives back `blocks` (in sequence order) last first: each give-back
    /// only succeeds when the store stands right after the block, and the
    /// last block is the one it stands after.
    async fn give_back(
        &self,
        name: &str,
        stamp: Stamp,
        blocks: Vec<Block>,
        deadline: Instant,
        report: &mut ReturnReport,
    ) {
        let mut blocks = blocks.into_iter().rev();
        while let Some(block) = blocks.next() {
            let owned = name.to_owned();
            let call = self.link.call("give_back", move |store| {
                store.give_back(&owned, stamp, block)
            });
            let range = format!("{}..={}", block.first, block.last);
            match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok(true)) => {
                    report.returned += block.len();
                    info!("{name}: gave back {} unused numbers {range}", block.len());
                }
                Ok(Ok(false)) => {
                    // Refused: the store moved on since the latest lease. An
                    // older block can only be further from where it stands,
                    // and is never tried (its numbers may be another lap's
                    // now).
                    let left: u64 = block.len() + blocks.by_ref().map(|b| b.len()).sum::<u64>();
                    report.abandoned += left;
                    warn!(
                        "{name}: the store moved on; {left} unused numbers from {range} on stay a gap"
                    );
                    return;
                }
                Ok(Err(e)) => {
                    report.abandoned += block.len();
                    error!("{name}: could not give back {range}: {e}; they stay a gap");
                }
                Err(_) => {
                    let left: u64 = block.len() + blocks.by_ref().map(|b| b.len()).sum::<u64>();
                    report.abandoned += left;
                    error!(
                        "{name}: the stop deadline passed while giving back {range}; {left} \
                         unused numbers stay a gap"
                    );
                    return;
                }
            }
        }
    }
}
