//! The HTTP API: warp filters that route to [`handlers`].
//!
//! Each resource is one filter that takes every method and lets the handler
//! answer GET, OPTIONS or 405, so a request never walks a chain of method
//! rejections; a final catch-all answers 404. The hot path (`GET
//! /v1/forward`) is the first route tried.

pub mod auth;
pub mod format;
pub mod handlers;
pub mod openapi;
pub mod ops;
pub mod problem;
pub mod query;
pub mod resources;
pub mod sequences;
pub mod serve;
pub mod status_page;

pub use handlers::{App, RequestHeaders};

use futures_util::StreamExt;
use problem::ApiError;

use resources::{V1_FORWARD, V1_REVERSE, V2_FORWARD, V2_REVERSE};
use std::convert::Infallible;
use std::sync::Arc;
use warp::Filter;
use warp::http::Response;
use warp::hyper::Body;

/// Every route of the service.
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (Response<Body>,), Error = Infallible> + Clone + Send + Sync + 'static {
    let resource = warp::path!("v1" / "forward")
        .map(|| V1_FORWARD)
        .or(warp::path!("v1" / "reverse").map(|| V1_REVERSE))
        .unify()
        .or(warp::path!("v2" / "forward").map(|| V2_FORWARD))
        .unify()
        .or(warp::path!("v2" / "reverse").map(|| V2_REVERSE))
        .unify();
    let numbers = resource
        .and(warp::method())
        .and(raw_query())
        .and(request_headers())
        .and(with_app(Arc::clone(&app)))
        .then(handlers::number_resource);
    let sequences = warp::path!("v2" / "sequences" / ..)
        .and(warp::path::tail())
        .map(|tail: warp::path::Tail| tail.as_str().to_owned())
        .and(warp::method())
        .and(raw_query())
        .and(request_headers())
        .and(limited_body(app.max_body_bytes))
        .and(with_app(Arc::clone(&app)))
        .then(sequences::handle);
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
        .and(with_app(app))
        .then(ops::handle);
    let not_found =
        warp::path::full().map(|path: warp::path::FullPath| handlers::not_found(path.as_str()));
    numbers
        .or(sequences)
        .unify()
        .or(operations)
        .unify()
        .or(not_found)
        .unify()
}

/// The headers handlers look at (allocated only when present).
fn request_headers() -> impl Filter<Extract = (RequestHeaders,), Error = Infallible> + Clone {
    warp::header::optional::<String>("accept")
        .or(warp::any().map(|| None))
        .unify()
        .and(
            warp::header::optional::<String>("authorization")
                .or(warp::any().map(|| None))
                .unify(),
        )
        .map(|accept, authorization| RequestHeaders {
            accept,
            authorization,
        })
}

/// The request body, read up to `limit` bytes: larger bodies are 413,
/// whether they declare their length or arrive in chunks.
fn limited_body(
    limit: u64,
) -> impl Filter<Extract = (Result<Vec<u8>, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .or(warp::any().map(|| None))
        .unify()
        .and(warp::body::stream())
        .then(move |declared, stream| read_limited(declared, stream, limit))
}

async fn read_limited<S, B>(
    declared: Option<u64>,
    stream: S,
    limit: u64,
) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::hyper::body::Buf,
{
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let mut stream = Box::pin(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
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
