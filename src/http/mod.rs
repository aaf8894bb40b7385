//! The HTTP API: one hyper service ([`Api`]) that bounds and counts every
//! request and routes it.
//!
//! The four number resources, which are what PEZ is for and nearly all of
//! its traffic, are found by a `match` on the path and answered straight
//! from the request's parts: no filter chain, no copy of the query or the
//! headers. Everything else (the named sequences and the admin API, the
//! operator endpoints, 404) goes through warp filters, each a resource that
//! takes every method so that the handler answers GET, OPTIONS or 405.

pub mod answer;
pub mod app;
pub mod auth;
pub mod format;
#[cfg(test)]
mod fuzz;
pub mod handlers;
pub mod hyper_errors;
mod numbers;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod query;
pub mod resources;
pub mod sequences;
pub mod serve;
mod shutdown;
pub mod status_page;
mod timer;
pub mod write_deadline;

pub use answer::Answer;
pub use app::{App, RequestHeaders};
pub use handlers::Prepared;
use numbers::Take;

use crate::config::Limits;
use crate::telemetry::metrics::Route;
use crate::telemetry::{Metrics, Untrusted};
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper::service::Service;
use hyper::{Method, Request, Response};
use log::warn;
use problem::ApiError;
use resources::{Resource, V1_FORWARD, V1_REVERSE, V2_FORWARD, V2_REVERSE};
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use warp::Filter;

/// The body of a warp response (warp does not name its body type).
pub type WarpBody = <warp::reply::Response as HasBody>::Body;

/// Names the body type of a response.
pub trait HasBody {
    /// The body.
    type Body;
}

impl<B> HasBody for Response<B> {
    type Body = B;
}

/// What PEZ answers with: a whole body of its own, or warp's.
pub type ResponseBody = Either<Full<Bytes>, WarpBody>;

/// The hyper service of the whole API: bounds and counts each request and
/// routes it.
pub struct Api<W> {
    inner: Arc<Inner<W>>,
}

struct Inner<W> {
    app: Arc<App>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// warp's filters for everything but the number resources.
    others: W,
}

impl<W: Clone> Clone for Api<W> {
    /// The service for one more connection, with a reference count of its
    /// own: each request holds a reference, and counting them then touches
    /// that connection's memory only, not a line every core writes.
    fn clone(&self) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                app: Arc::clone(&inner.app),
                metrics: Arc::clone(&inner.metrics),
                limits: inner.limits.clone(),
                others: inner.others.clone(),
            }),
        }
    }
}

/// The API's service.
pub fn api(
    app: Arc<App>,
    metrics: Arc<Metrics>,
    limits: Limits,
) -> Api<
    impl Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static,
> {
    let others =
        hyper_util::service::TowerToHyperService::new(warp::service(others(Arc::clone(&app))));
    Api {
        inner: Arc::new(Inner {
            app,
            metrics,
            limits,
            others,
        }),
    }
}

/// The resource of a path, if it is one of the original API's four
/// (`/v1/forward/` is `/v1/forward`, as warp's paths have it).
fn resource_of(path: &str) -> Option<Resource> {
    let path = path.strip_suffix('/').unwrap_or(path);
    match path {
        "/v1/forward" => Some(V1_FORWARD),
        "/v1/reverse" => Some(V1_REVERSE),
        "/v2/forward" => Some(V2_FORWARD),
        "/v2/reverse" => Some(V2_REVERSE),
        _ => None,
    }
}

type Answered = Result<Response<ResponseBody>, Infallible>;

/// A request's answer: at once, at the first poll, or later. Errors,
/// OPTIONS and 413 are answered while called; numbers at the first poll
/// from what is on hand ([`numbers`]); neither allocates a future. The
/// rest is one allocation.
pub enum ApiFuture<W> {
    /// Answered while called.
    Ready(Option<Response<ResponseBody>>),
    /// Numbers to take at the first poll.
    Take(Option<Take<W>>),
    /// Being answered.
    Pending(Pin<Box<dyn Future<Output = Answered> + Send>>),
}

impl<W: Send + Sync + 'static> Future for ApiFuture<W> {
    type Output = Answered;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answered> {
        let this = self.get_mut();
        if let ApiFuture::Take(take) = this {
            let Some(take) = take.take() else {
                return Poll::Pending;
            };
            match take.on_hand() {
                Ok(answer) => return Poll::Ready(answer),
                Err(take) => *this = ApiFuture::Pending(take.wait()),
            }
        }
        match this {
            ApiFuture::Ready(answer) => match answer.take() {
                Some(answer) => Poll::Ready(Ok(answer)),
                None => Poll::Pending,
            },
            ApiFuture::Pending(answer) => answer.as_mut().poll(cx),
            ApiFuture::Take(_) => Poll::Pending,
        }
    }
}

impl<W> Service<Request<Incoming>> for Api<W>
where
    W: Service<Request<Incoming>, Response = warp::reply::Response, Error = Infallible>
        + Send
        + Sync
        + 'static,
    W::Future: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ApiFuture<W>;

    fn call(&self, request: Request<Incoming>) -> ApiFuture<W> {
        let route = serve::route_of(request.uri().path());
        let inner = &self.inner;
        let limit = inner.limits.max_body_bytes;
        // hyper has read Content-Length already: its size hint is that.
        if request.body().size_hint().lower() > limit {
            let answer = ApiError::BodyTooLarge { limit }.into_response(Some(request.uri().path()));
            return answered(&inner.metrics, route, answer);
        }
        if let Some(resource) = resource_of(request.uri().path()) {
            let prepared = handlers::number_resource(
                resource,
                request.method(),
                request.uri().query(),
                RequestHeaders::of(request.headers()),
                &inner.app,
            );
            drop(request);
            let (resource, count, format) = match prepared {
                Prepared::Answered(answer) => {
                    return answered(&inner.metrics, route, answer);
                }
                Prepared::Take {
                    resource,
                    count,
                    format,
                } => (resource, count, format),
            };
            return ApiFuture::Take(Some(Take::resource(inner, route, resource, count, format)));
        }
        if matches!(*request.method(), Method::GET | Method::POST)
            && let Some(name) = sequences::next_of(request.uri().path())
        {
            return next_of_named(inner, route, name, &request);
        }
        let path = request.uri().path().to_owned();
        let answer = inner.others.call(request);
        let inner = Arc::clone(inner);
        ApiFuture::Pending(Box::pin(async move {
            let answer = async {
                match answer.await {
                    Ok(answer) => answer,
                    Err(never) => match never {},
                }
            };
            let answer = within(inner.limits.request_timeout, &path, answer).await;
            inner.metrics.request(route, answer.status().as_u16());
            Ok(answer.map(Either::Right))
        }))
    }
}

/// A GET or POST of `/v2/sequences/{name}/next`, answered as warp's route
/// would (see [`sequences::prepare_next`]): at once when it is refused,
/// otherwise its numbers are taken at the first poll.
fn next_of_named<W: Send + Sync + 'static>(
    inner: &Arc<Inner<W>>,
    route: Route,
    name: String,
    request: &Request<Incoming>,
) -> ApiFuture<W> {
    let path = request.uri().path();
    let prepared = sequences::prepare_next(
        &name,
        request.uri().query(),
        RequestHeaders::of(request.headers()),
        &inner.app,
    );
    match prepared {
        Ok((count, format)) => {
            ApiFuture::Take(Some(Take::named(inner, route, name, count, format, path)))
        }
        Err(e) => answered(&inner.metrics, route, e.into_response(Some(path))),
    }
}

/// An answer ready while the service is called, counted.
fn answered<W>(metrics: &Metrics, route: Route, answer: Answer) -> ApiFuture<W> {
    metrics.request(route, answer.status().as_u16());
    ApiFuture::Ready(Some(answer.map(whole)))
}

fn whole(body: Bytes) -> ResponseBody {
    Either::Left(Full::new(body))
}

/// `answer`, or 503 when it takes longer than `timeout`. Most answers are
/// ready at the first poll (numbers from memory): they need no timer.
async fn within<B: From<Bytes>>(
    timeout: Duration,
    path: &str,
    answer: impl Future<Output = Response<B>>,
) -> Response<B> {
    let mut answer = pin!(answer);
    let first = std::future::poll_fn(|cx| Poll::Ready(answer.as_mut().poll(cx))).await;
    if let Poll::Ready(answer) = first {
        return answer;
    }
    // The timer lives apart, on the heap: nearly no request needs it, and
    // every request's future is allocated whole.
    match Box::pin(tokio::time::timeout(timeout, answer)).await {
        Ok(answer) => answer,
        Err(_) => {
            // The path is the client's: escaped and capped.
            warn!("{}: no answer within {timeout:?}", Untrusted(path));
            ApiError::Unavailable {
                reason: "The request took too long.",
            }
            .into_response(Some(path))
            .map(B::from)
        }
    }
}

/// Every route but the number resources, as warp filters.
fn others(
    app: Arc<App>,
) -> impl Filter<Extract = (Answer,), Error = Infallible> + Clone + Send + Sync + 'static {
    let sequences = warp::path!("v2" / "sequences" / ..)
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| tail.as_str().to_owned())
        .and(warp::method())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(limited_body(app.max_body_bytes))
        .and(with_app(Arc::clone(&app)))
        .then(
            |tail, method, query, headers, body: LazyBody<_>, app| async move {
                sequences::handle(tail, method, query, headers, body.read(), app).await
            },
        );
    let operations = warp::path!("healthz")
        .map(|| ops::Op::Healthz)
        .or(warp::path!("readyz").map(|| ops::Op::Readyz))
        .unify()
        .or(warp::path!("metrics").map(|| ops::Op::Metrics))
        .unify()
        .or(warp::path!("version").map(|| ops::Op::Version))
        .unify()
        .or(warp::path!("openapi.json").map(|| ops::Op::OpenApi))
        .unify()
        .or(warp::path::end().map(|| ops::Op::StatusPage))
        .unify()
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(with_app(app))
        .then(ops::handle);
    let not_found =
        warp::path::full().map(|path: warp::path::FullPath| handlers::not_found(path.as_str()));
    sequences.or(operations).unify().or(not_found).unify()
}

/// The request body, not read yet: the handler reads it (up to `limit`
/// bytes; larger bodies are 413, whether they declare their length or
/// arrive in chunks) only once the request is allowed, so a client without
/// the token is refused at once, not after its body (or the request
/// timeout, for a body declared and never sent).
fn limited_body(
    limit: u64,
) -> impl Filter<
    Extract = (LazyBody<impl warp::Stream<Item = Result<impl bytes::Buf, warp::Error>> + Send>,),
    Error = warp::Rejection,
> + Clone {
    warp::header::optional::<u64>("content-length")
        .or(warp::any().map(|| None))
        .unify()
        .and(warp::body::stream())
        .map(move |declared, stream| LazyBody {
            declared,
            stream,
            limit,
        })
}

/// A request body still in the connection, and how much of it may be read.
struct LazyBody<S> {
    declared: Option<u64>,
    stream: S,
    limit: u64,
}

impl<S, B> LazyBody<S>
where
    S: warp::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    /// Reads the body when awaited, not before.
    async fn read(self) -> Result<Vec<u8>, ApiError> {
        read_limited(self.declared, self.stream, self.limit).await
    }
}

async fn read_limited<S, B>(
    declared: Option<u64>,
    stream: S,
    limit: u64,
) -> Result<Vec<u8>, ApiError>
where
    S: warp::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let mut stream = pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(|_| ApiError::InvalidBody {
            detail: "the request body could not be read".into(),
        })?;
        body.extend_from_slice(chunk.chunk());
        if body.len() as u64 > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
    }
    Ok(body)
}

/// The raw query string, if the request has one.
fn raw_query() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

fn with_app(app: Arc<App>) -> impl Filter<Extract = (Arc<App>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&app))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_resources_are_found_by_their_path_with_or_without_a_trailing_slash() {
        assert_eq!(resource_of("/v1/forward"), Some(V1_FORWARD));
        assert_eq!(resource_of("/v1/forward/"), Some(V1_FORWARD));
        assert_eq!(resource_of("/v1/reverse"), Some(V1_REVERSE));
        assert_eq!(resource_of("/v2/forward"), Some(V2_FORWARD));
        assert_eq!(resource_of("/v2/reverse/"), Some(V2_REVERSE));
        for other in [
            "/",
            "/v1",
            "/v1//forward",
            "/v1/forward//",
            "/v1/forward/x",
            "/V1/forward",
        ] {
            assert_eq!(resource_of(other), None, "{other}");
        }
    }
}
