//! The HTTP API: warp filters that route to [`handlers`].
//!
//! Each resource is one filter that takes every method and lets the handler
//! answer GET, OPTIONS or 405, so a request never walks a chain of method
//! rejections; a final catch-all answers 404. The hot path (`GET
//! /v1/forward`) is the first route tried.

pub mod handlers;
pub mod problem;
pub mod query;
pub mod resources;

pub use handlers::App;

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
        .and(with_app(app))
        .then(handlers::number_resource);
    let not_found =
        warp::path::full().map(|path: warp::path::FullPath| handlers::not_found(path.as_str()));
    numbers.or(not_found).unify()
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
