//! The original PEZ's four resources. Handlers never reject: every outcome,
//! errors included, is a complete response, so routing stays cheap and the
//! error format stays in one place ([`super::problem`]).

use super::auth::{Need, authorize};
use super::format::{self, Format};
use super::problem::ApiError;
use super::query;
use super::resources::{ALLOW, Resource, Shape};
use crate::config::Access;
use crate::dispenser::{DispenseError, Dispenser};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::sync::Arc;

/// A complete answer: status, headers and the whole body. Every handler
/// returns one, so handlers need neither warp nor a socket to be tested.
pub type Answer = Response<Bytes>;

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    /// Where numbers come from.
    pub dispenser: Arc<Dispenser>,
    /// The largest count a v2 request may ask for.
    pub max_count: u64,
    /// The largest range lease.
    pub max_lease: u64,
    /// Tokens.
    pub access: Access,
    /// Largest request body read.
    pub max_body_bytes: u64,
    /// Where the store is, for the status page (no secrets).
    pub store_description: String,
}

/// The request headers handlers look at, borrowed from the request (a
/// value that is not visible ASCII counts as absent).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestHeaders<'a> {
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
}

impl<'a> RequestHeaders<'a> {
    /// The headers of interest among `headers`.
    pub fn of(headers: &'a HeaderMap) -> Self {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            accept: text(header::ACCEPT),
            authorization: text(header::AUTHORIZATION),
        }
    }
}

/// Any method on one of the original's four resources.
pub async fn number_resource(
    resource: Resource,
    method: &Method,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Answer {
    match *method {
        Method::GET => issue(resource, query, headers, app)
            .await
            .unwrap_or_else(|e| e.into_response(Some(resource.path))),
        Method::OPTIONS => help(super::openapi::help(resource.path, app), ALLOW),
        ref other => ApiError::MethodNotAllowed {
            method: other.to_string(),
            allow: ALLOW,
        }
        .into_response(Some(resource.path)),
    }
}

/// An OPTIONS answer: the JSON help and the Allow header.
pub fn help(help: serde_json::Value, allow: &'static str) -> Answer {
    let mut response = json(StatusCode::OK, help.to_string());
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON response.
pub fn json(status: StatusCode, body: String) -> Answer {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whatever no route matched.
pub fn not_found(path: &str) -> Answer {
    ApiError::NotFound {
        path: path.to_owned(),
    }
    .into_response(Some(path))
}

async fn issue(
    resource: Resource,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Result<Answer, ApiError> {
    authorize(&app.access, Need::Dispense, headers.authorization)?;
    let format = Format::negotiate(query, headers.accept)?;
    let count = match resource.shape {
        // v1 takes no count; like the original it ignores the query.
        Shape::Single => 1,
        Shape::List => count(query, app.max_count)?,
    };
    let runs = app
        .dispenser
        .next(resource.sequence, count)
        .await
        .map_err(|e| dispense_error(resource.sequence, e))?;

    Ok(match resource.shape {
        Shape::Single => format::single(runs[0].first, format),
        Shape::List => format::list(&runs, count, format),
    })
}

/// The `count` parameter, within `1..=max`, or the problem saying why not.
pub fn count(query: Option<&str>, max: u64) -> Result<u64, ApiError> {
    query::count(query, max).map_err(|given| ApiError::InvalidCount { given, max })
}

/// What a dispensing failure means to the client.
pub fn dispense_error(sequence: &str, error: DispenseError) -> ApiError {
    match error {
        DispenseError::Exhausted => ApiError::Exhausted {
            sequence: sequence.to_owned(),
        },
        DispenseError::Unavailable => ApiError::Unavailable {
            reason: "No numbers are on hand and the store cannot provide more right now.",
        },
        DispenseError::ShuttingDown => ApiError::Unavailable {
            reason: "This instance is stopping.",
        },
        DispenseError::UnknownSequence => ApiError::UnknownSequence {
            name: sequence.to_owned(),
        },
    }
}
