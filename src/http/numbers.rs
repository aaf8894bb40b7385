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
use super::resources::Resource;
use super::{Answered, Inner, handlers, sequences, whole, within};
use crate::telemetry::metrics::Route;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Numbers a request asked for, not taken yet.
pub struct Take<W> {
    inner: Arc<Inner<W>>,
    route: Route,
    what: Numbers,
}

/// Which numbers, and how to write them.
enum Numbers {
    /// One of the original's four resources.
    Resource {
        resource: Resource,
        count: u64,
        format: Format,
    },
    /// A named sequence's `next`; `path` is the request's, for a problem's
    /// `instance`.
    Named {
        name: String,
        count: u64,
        format: Format,
        path: String,
    },
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
            what: Numbers::Resource {
                resource,
                count,
                format,
            },
        }
    }

    /// `count` numbers of the named sequence `name`, asked for at `path`.
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
            what: Numbers::Named {
                name,
                count,
                format,
                path: path.to_owned(),
            },
        }
    }

    /// The answer from what is on hand (numbers, or a failure waiting would
    /// not change), counted; or `self` back when the request has to wait.
    pub(super) fn on_hand(self) -> Result<Answered, Self> {
        let app = &self.inner.app;
        let answer = match &self.what {
            Numbers::Resource {
                resource,
                count,
                format,
            } => handlers::take_on_hand(*resource, *count, *format, app),
            Numbers::Named {
                name,
                count,
                format,
                path,
            } => app.dispenser.next_on_hand(name, *count).map(|taken| {
                sequences::next_answer(name, *count, *format, taken)
                    .unwrap_or_else(|e| e.into_response(Some(path)))
            }),
        };
        match answer {
            Some(answer) => {
                self.inner
                    .metrics
                    .request(self.route, answer.status().as_u16());
                Ok(Ok(answer.map(whole)))
            }
            None => Err(self),
        }
    }

    /// A future that waits for the numbers, within the request timeout.
    pub(super) fn wait(self) -> Pin<Box<dyn Future<Output = Answered> + Send>> {
        let Take { inner, route, what } = self;
        Box::pin(async move {
            let timeout = inner.limits.request_timeout;
            let answer = match what {
                Numbers::Resource {
                    resource,
                    count,
                    format,
                } => {
                    let taken = handlers::take(resource, count, format, &inner.app);
                    within(timeout, resource.path, taken).await
                }
                Numbers::Named {
                    name,
                    count,
                    format,
                    path,
                } => {
                    let taken = async {
                        let taken = inner.app.dispenser.next(&name, count).await;
                        sequences::next_answer(&name, count, format, taken)
                            .unwrap_or_else(|e| e.into_response(Some(&path)))
                    };
                    within(timeout, &path, taken).await
                }
            };
            inner.metrics.request(route, answer.status().as_u16());
            Ok(answer.map(whole))
        })
    }
}
