//! Every error a client can get, and its one mapping to an HTTP response
//! with an RFC 9457 `application/problem+json` body. Bodies say what the
//! client can act on; internal causes go to the log, never to the client.

use serde::Serialize;
use warp::http::{HeaderValue, Response, StatusCode, header};
use warp::hyper::Body;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// What went wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No resource at this path.
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The resource exists but not with this method.
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods it has, for the Allow header.
        allow: &'static str,
    },
    /// `count` is not a decimal integer in 1..=max.
    InvalidCount {
        /// What was given, as decoded from the query.
        given: String,
        /// The largest count allowed.
        max: u64,
    },
    /// A non-cycling sequence has no numbers left.
    Exhausted {
        /// The sequence.
        sequence: String,
    },
    /// Numbers cannot be had right now: the store is failing and nothing
    /// is on hand, or the instance is stopping.
    Unavailable {
        /// Why, in words safe to show.
        reason: &'static str,
    },
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(flatten)]
    extra: serde_json::Value,
}

impl ApiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidCount { .. } => StatusCode::BAD_REQUEST,
            ApiError::Exhausted { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem type URI: a stable identifier clients can match on.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "urn:pez:problem:not-found",
            ApiError::MethodNotAllowed { .. } => "urn:pez:problem:method-not-allowed",
            ApiError::InvalidCount { .. } => "urn:pez:problem:invalid-count",
            ApiError::Exhausted { .. } => "urn:pez:problem:sequence-exhausted",
            ApiError::Unavailable { .. } => "urn:pez:problem:unavailable",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "No such resource",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::InvalidCount { .. } => "Invalid count",
            ApiError::Exhausted { .. } => "Sequence exhausted",
            ApiError::Unavailable { .. } => "Numbers temporarily unavailable",
        }
    }

    fn detail_and_extra(&self) -> (String, serde_json::Value) {
        use serde_json::json;
        match self {
            ApiError::NotFound { path } => (
                format!(
                    "There is nothing at {path}. Resources: /v1/forward, /v1/reverse, /v2/forward, /v2/reverse."
                ),
                json!({}),
            ),
            ApiError::MethodNotAllowed { method, allow } => (
                format!("{method} is not allowed here; use one of: {allow}."),
                json!({ "allow": allow }),
            ),
            ApiError::InvalidCount { given, max } => (
                format!("count must be a decimal integer from 1 to {max}; got {given:?}."),
                json!({ "parameter": "count", "minimum": 1, "maximum": max }),
            ),
            ApiError::Exhausted { sequence } => (
                format!("Sequence {sequence} has issued its last number and does not cycle."),
                json!({ "sequence": sequence }),
            ),
            ApiError::Unavailable { reason } => (
                format!("{reason} Retry after {RETRY_AFTER_SECONDS} second(s)."),
                json!({ "retry_after": RETRY_AFTER_SECONDS }),
            ),
        }
    }

    /// The complete response, problem body and headers included.
    pub fn into_response(self, instance: Option<&str>) -> Response<Body> {
        let (detail, extra) = self.detail_and_extra();
        let status = self.status();
        let problem = Problem {
            kind: self.kind(),
            title: self.title(),
            status: status.as_u16(),
            detail,
            instance,
            extra,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unavailable { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response
    }
}
