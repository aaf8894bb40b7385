//! Requests for numbers, once the service has read and allowed them: the
//! original's four resources and `/v2/sequences/{name}/next`.
//!
//! Their numbers are taken at the future's first poll, not while hyper
//! calls the service: hyper may drop a request's future without polling it
//! (a client that closed its end right after sending), and numbers taken
//! then would be a gap, counted as an answer that was never written. At
//! that first poll they come from what is on hand, with no future to
//! allocate and no timer; only a request that has to wait (for a lease, or
//! for a strict sequence's store) becomes a boxed future, bounded by the
//! request timeout.

use super::format::Format;
use super::resources::{Resource, Shape};
use super::{Answer, Answered, Inner, handlers, whole, within};
use crate::dispenser::DispenseError;
use crate::sequence::Block;
use crate::telemetry::metrics::Route;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Numbers a request asked for, not taken yet.
pub struct Take<W> {
    inner: Arc<Inner<W>>,
    route: Route,
    /// The sequence: a resource's, or the name in the path.
    sequence: Cow<'static, str>,
    /// The request's path, for a problem's `instance`.
    path: Cow<'static, str>,
    shape: Shape,
    count: u64,
    format: Format,
}

impl<W: Send + Sync + 'static> Take<W> {
    /// `count` numbers of one of the four resources.
    pub(super) fn resource(
        inner: &Arc<Inner<W>>,
        route: Route,
        resource: Resource,
        count: u64,
        format: Format,
    ) -> Self {
        Self {
            inner: Arc::clone(inner),
            route,
            sequence: Cow::Borrowed(resource.sequence),
            path: Cow::Borrowed(resource.path),
            shape: resource.shape,
            count,
            format,
        }
    }

    /// `count` numbers of the named sequence `name`, asked for at `path`
    /// (a list, as `next` always answers).
    pub(super) fn named(
        inner: &Arc<Inner<W>>,
        route: Route,
        name: String,
        count: u64,
        format: Format,
        path: &str,
    ) -> Self {
        Self {
            inner: Arc::clone(inner),
            route,
            sequence: Cow::Owned(name),
            path: Cow::Owned(path.to_owned()),
            shape: Shape::List,
            count,
            format,
        }
    }

    /// The answer from what is on hand (numbers, or a failure waiting would
    /// not change), counted; or `self` back when the request has to wait.
    pub(super) fn on_hand(self) -> Result<Answered, Self> {
        let dispenser = &self.inner.app.dispenser;
        match dispenser.next_on_hand(&self.sequence, self.count) {
            Some(taken) => Ok(self.counted(self.answer(taken))),
            None => Err(self),
        }
    }

    /// A future that waits for the numbers, within the request timeout.
    pub(super) fn wait(self) -> Pin<Box<dyn Future<Output = Answered> + Send>> {
        Box::pin(async move {
            let taken = async {
                let taken = self.inner.app.dispenser.next(&self.sequence, self.count);
                self.answer(taken.await)
            };
            let timeout = self.inner.limits.request_timeout;
            let answer = within(timeout, &self.path, taken).await;
            self.counted(answer)
        })
    }

    /// What was taken, written out.
    fn answer(&self, taken: Result<Vec<Block>, DispenseError>) -> Answer {
        handlers::answer(
            &self.sequence,
            &self.path,
            self.shape,
            self.count,
            self.format,
            taken,
        )
    }

    /// `answer`, counted by route and status.
    fn counted(&self, answer: Answer) -> Answered {
        self.inner
            .metrics
            .request(self.route, answer.status().as_u16());
        Ok(answer.map(whole))
    }
}
