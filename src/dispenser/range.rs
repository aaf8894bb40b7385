//! Range leases: exact takes straight from the store ([`super::exact`]),
//! retried within the request's wait, for a client to hand out itself.

use super::backoff::Backoff;
use super::exact::take_exact;
use super::leaser::describe_runs;
use super::registry::Sequence;
use super::{DispenseError, Dispenser};
use crate::sequence::{Block, Mode};
use crate::store::StoreError;
use log::{debug, warn};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The pause after a failed range lease, doubled while the store keeps
/// failing (within the request's wait).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between tries: short, since the request waits.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(400);

impl Dispenser {
    /// The largest exact take (a strict take, a range lease) of `sequence`
    /// that can be served: a strict sequence takes one number per
    /// `nextval()`, so more than one reservation holds would be many
    /// durable commits in one request's wait.
    pub(super) fn most_exact(&self, sequence: &Sequence) -> u64 {
        match sequence.spec.mode {
            Mode::Strict => self.link.most_per_reservation(&sequence.spec),
            Mode::Leased => u64::MAX,
        }
    }

    /// A range lease: exactly `count` numbers of `name` (fewer only when a
    /// non-cycling sequence runs out), taken straight from the store in
    /// durable reservations, for a client to hand out itself. A take that
    /// fails (an outage, a call in doubt: what it took is a gap; a view of
    /// the sequence out of date) is tried again, with a pause that grows,
    /// as a strict take is, and the whole lease (its tries included) ends
    /// within `lease_wait`: a store that stumbles once is not a 503, and
    /// one that does not answer is one in time.
    ///
    /// `count` must be within the sequence's largest lease, capped by
    /// `server_max` (PEZ_MAX_LEASE): a larger one is refused before
    /// anything is taken, so no client burns a sequence with a few leases.
    pub async fn lease_range(
        &self,
        name: &str,
        count: u64,
        server_max: u64,
    ) -> Result<Vec<Block>, DispenseError> {
        if self.is_closed() {
            return Err(DispenseError::ShuttingDown);
        }
        let deadline = tokio::time::Instant::now() + self.settings.lease_wait;
        let mut backoff = Backoff::new(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
        let (sequence, runs) = loop {
            let sequence = self.get(name).ok_or(DispenseError::UnknownSequence)?;
            let limit = sequence.spec.lease_limit(server_max);
            if count > limit {
                return Err(DispenseError::CountExceedsLease {
                    limit,
                    max_lease: sequence.spec.max_lease,
                });
            }
            if count > sequence.spec.size() {
                return Err(DispenseError::CountExceedsRange(sequence.spec.size()));
            }
            let most = self.most_exact(&sequence);
            if count > most {
                return Err(DispenseError::CountExceedsTake(most));
            }
            let generation = sequence.generation.load(Ordering::SeqCst);
            let per_reservation = self.link.most_per_reservation(&sequence.spec);
            let take = take_exact(&self.link, name, generation, count, per_reservation);
            let failure = match tokio::time::timeout_at(deadline, take).await {
                Ok(Ok(exact)) => break (sequence, exact.runs),
                Ok(Err(StoreError::UnknownSequence(_))) => {
                    return Err(DispenseError::UnknownSequence);
                }
                Ok(Err(StoreError::Exhausted(_))) => {
                    return Err(DispenseError::Exhausted { remaining: 0 });
                }
                Ok(Err(e)) => e.to_string(),
                // What the try in flight takes is a gap: its result is
                // dropped with it.
                Err(_) => "no answer within the lease wait".to_owned(),
            };
            let pause = backoff.pause();
            if self.is_closed() || tokio::time::Instant::now() + pause >= deadline {
                warn!("{name}: range lease failed: {failure}");
                return Err(DispenseError::Unavailable);
            }
            debug!("{name}: range lease failed, retrying in {pause:?}: {failure}");
            tokio::time::sleep(pause).await;
        };
        let taken: u64 = runs.iter().map(Block::len).sum();
        sequence.issued.inc_by(taken);
        // Counted in pez_numbers_issued_total; one line each only at debug:
        // a busy client of range leases would fill the log.
        debug!(
            "{name}: range lease of {taken} numbers {}",
            describe_runs(&runs)
        );
        Ok(runs)
    }
}
