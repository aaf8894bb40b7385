//! A store for the dispenser's unit tests: it lists nothing and answers
//! every change as done, and a test gives it the listing and the
//! reservations it is about (a listing that hangs, reservations that take
//! a while).

use crate::sequence::{Block, SequenceSpec};
use crate::store::{
    Advanced, Consent, Created, Position, Reserved, SequenceState, Stamp, Store, StoreError,
};
use std::time::Duration;

type Listing = Box<dyn Fn() -> Result<Vec<SequenceState>, StoreError> + Send + Sync>;
type Reserving = Box<dyn Fn(&str, u64) -> Result<Reserved, StoreError> + Send + Sync>;

pub(super) struct FakeStore {
    listing: Listing,
    reserving: Reserving,
    call_limit: Duration,
}

impl FakeStore {
    /// Lists no sequence, knows none to reserve from; calls are bounded by
    /// `call_limit`.
    pub(super) fn new(call_limit: Duration) -> Self {
        Self {
            listing: Box::new(|| Ok(Vec::new())),
            reserving: Box::new(|name, _| Err(StoreError::UnknownSequence(name.to_owned()))),
            call_limit,
        }
    }

    pub(super) fn listing(
        mut self,
        list: impl Fn() -> Result<Vec<SequenceState>, StoreError> + Send + Sync + 'static,
    ) -> Self {
        self.listing = Box::new(list);
        self
    }

    /// Reservations by `reserve(name, size)`.
    pub(super) fn reserving(
        mut self,
        reserve: impl Fn(&str, u64) -> Result<Reserved, StoreError> + Send + Sync + 'static,
    ) -> Self {
        self.reserving = Box::new(reserve);
        self
    }
}

impl Store for FakeStore {
    fn list(&self) -> Result<Vec<SequenceState>, StoreError> {
        (self.listing)()
    }
    fn generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(Vec::new())
    }
    fn reserve(&self, name: &str, _: i64, size: u64) -> Result<Reserved, StoreError> {
        (self.reserving)(name, size)
    }
    fn give_back(&self, _: &str, _: Stamp, _: Block) -> Result<bool, StoreError> {
        Ok(false)
    }
    fn restart(&self, _: &str, _: i64, _: Consent) -> Result<(), StoreError> {
        Ok(())
    }
    fn advance(&self, _: &str, _: Position, _: Consent) -> Result<Advanced, StoreError> {
        Ok(Advanced::AlreadyThere { stands: None })
    }
    fn create(&self, _: &SequenceSpec, _: Position) -> Result<Created, StoreError> {
        Ok(Created::Existing)
    }
    fn delete(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn call_limit(&self) -> Duration {
        self.call_limit
    }
    fn most_per_reservation(&self, spec: &SequenceSpec) -> u64 {
        spec.size()
    }
}
