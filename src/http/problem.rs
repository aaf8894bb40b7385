//! Every error a client can get, and its one mapping to an HTTP response
//! with an RFC 9457 `application/problem+json` body. Bodies say what the
//! client can act on; internal causes go to the log, never to the client.

use super::answer::Answer;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

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
    /// No sequence of this name.
    UnknownSequence {
        /// The name asked for.
        name: String,
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
    /// More numbers than the sequence holds: they could not all differ.
    CountOverRange {
        /// The count asked for.
        count: u64,
        /// The numbers in the sequence's range.
        size: u64,
    },
    /// More numbers than one take from the store holds for a strict
    /// sequence.
    CountOverTake {
        /// The count asked for.
        count: u64,
        /// The most one take holds.
        most: u64,
    },
    /// A range lease larger than the sequence allows: refused before any
    /// number is taken.
    CountOverLease {
        /// The count asked for.
        count: u64,
        /// The largest lease allowed: the sequence's, capped by PEZ_MAX_LEASE.
        limit: u64,
        /// The sequence's own largest lease.
        max_lease: u64,
    },
    /// A restart to numbers the sequence has handed out already.
    Backward {
        /// Why, from the store.
        detail: String,
    },
    /// A forward move of a cycling sequence that has issued numbers: it
    /// would wrap sooner than a full lap.
    EarlyWrap {
        /// Why, from the store.
        detail: String,
    },
    /// `format` is not json, string or text.
    InvalidFormat {
        /// What was given.
        given: String,
    },
    /// Not a valid sequence name.
    InvalidName {
        /// Why.
        detail: String,
    },
    /// A request body that is not what the resource takes.
    InvalidBody {
        /// Why, in terms of the body.
        detail: String,
    },
    /// A request body over the limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// No token, or a wrong one.
    Unauthorized {
        /// Whether the admin token was needed (else a dispensing token).
        admin: bool,
    },
    /// No token, or one that may not see the sequences and the store
    /// (/metrics while tokens are set).
    UnauthorizedToObserve,
    /// A range lease without one of PEZ_LEASE_TOKENS (when set): no token,
    /// or one PEZ does not know.
    LeaseUnauthorized,
    /// A range lease with a token that may only take numbers (one of
    /// PEZ_TOKENS, when PEZ_LEASE_TOKENS is set).
    LeaseScopeNeeded,
    /// The admin API is off: PEZ_ADMIN_TOKEN is not set.
    AdminOff,
    /// A sequence of that name exists with other settings.
    Conflict {
        /// The existing settings.
        existing: Value,
    },
    /// `forward` and `reverse` cannot be deleted.
    Builtin {
        /// The sequence.
        name: String,
    },
    /// A non-cycling sequence has fewer numbers left than asked for.
    Exhausted {
        /// The sequence.
        sequence: String,
        /// How many it has left (0: it issued its last).
        remaining: u64,
    },
    /// The request line and headers together are larger than hyper reads
    /// (answered by hyper itself, given a body by [`super::hyper_errors`]).
    HeadTooLarge {
        /// The most the request line and headers may take, in bytes.
        limit: usize,
    },
    /// The request target is longer than hyper takes (likewise).
    UriTooLong,
    /// The request is not HTTP/1.1 hyper can parse: a bad request line,
    /// method, target or header (likewise).
    Malformed,
    /// Not ready to serve (readiness check).
    NotReady {
        /// What is missing.
        reasons: Vec<String>,
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
    extra: Value,
}

impl ApiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownSequence { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidCount { .. }
            | ApiError::CountOverRange { .. }
            | ApiError::CountOverTake { .. }
            | ApiError::CountOverLease { .. }
            | ApiError::InvalidFormat { .. }
            | ApiError::InvalidName { .. }
            | ApiError::InvalidBody { .. }
            | ApiError::Malformed => StatusCode::BAD_REQUEST,
            ApiError::HeadTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized { .. }
            | ApiError::UnauthorizedToObserve
            | ApiError::LeaseUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminOff | ApiError::LeaseScopeNeeded => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. }
            | ApiError::Builtin { .. }
            | ApiError::Exhausted { .. }
            | ApiError::Backward { .. }
            | ApiError::EarlyWrap { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } | ApiError::NotReady { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The problem type URI (a stable identifier clients can match on) and title.
    fn kind_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::NotFound { .. } => ("urn:pez:problem:not-found", "No such resource"),
            ApiError::UnknownSequence { .. } => {
                ("urn:pez:problem:unknown-sequence", "No such sequence")
            }
            ApiError::MethodNotAllowed { .. } => {
                ("urn:pez:problem:method-not-allowed", "Method not allowed")
            }
            ApiError::InvalidCount { .. }
            | ApiError::CountOverRange { .. }
            | ApiError::CountOverTake { .. }
            | ApiError::CountOverLease { .. } => ("urn:pez:problem:invalid-count", "Invalid count"),
            ApiError::Backward { .. } => (
                "urn:pez:problem:restart-backward",
                "Restart would issue numbers again",
            ),
            ApiError::EarlyWrap { .. } => (
                "urn:pez:problem:restart-early-wrap",
                "Restart would make the sequence wrap early",
            ),
            ApiError::InvalidFormat { .. } => ("urn:pez:problem:invalid-format", "Invalid format"),
            ApiError::InvalidName { .. } => {
                ("urn:pez:problem:invalid-name", "Invalid sequence name")
            }
            ApiError::InvalidBody { .. } => {
                ("urn:pez:problem:invalid-body", "Invalid request body")
            }
            ApiError::BodyTooLarge { .. } => {
                ("urn:pez:problem:body-too-large", "Request body too large")
            }
            ApiError::Unauthorized { .. }
            | ApiError::UnauthorizedToObserve
            | ApiError::LeaseUnauthorized => {
                ("urn:pez:problem:unauthorized", "Missing or wrong token")
            }
            ApiError::LeaseScopeNeeded => (
                "urn:pez:problem:insufficient-scope",
                "Token may not take range leases",
            ),
            ApiError::AdminOff => ("urn:pez:problem:admin-off", "Admin API is off"),
            ApiError::Conflict { .. } => (
                "urn:pez:problem:sequence-conflict",
                "Sequence exists with other settings",
            ),
            ApiError::Builtin { .. } => ("urn:pez:problem:builtin-sequence", "Built-in sequence"),
            ApiError::Exhausted { .. } => {
                ("urn:pez:problem:sequence-exhausted", "Sequence exhausted")
            }
            ApiError::Unavailable { .. } => (
                "urn:pez:problem:unavailable",
                "Numbers temporarily unavailable",
            ),
            ApiError::NotReady { .. } => ("urn:pez:problem:not-ready", "Not ready"),
            ApiError::HeadTooLarge { .. } => (
                "urn:pez:problem:header-too-large",
                "Request header fields too large",
            ),
            ApiError::UriTooLong => ("urn:pez:problem:uri-too-long", "URI too long"),
            ApiError::Malformed => ("urn:pez:problem:malformed-request", "Malformed request"),
        }
    }

    fn detail_and_extra(&self) -> (String, Value) {
        match self {
            ApiError::NotFound { path } => (
                format!(
                    "There is nothing at {path}. Resources: /v1/forward, /v1/reverse, /v2/forward, \
                     /v2/reverse, /v2/sequences."
                ),
                json!({}),
            ),
            ApiError::UnknownSequence { name } => (
                format!("There is no sequence named {name:?}."),
                json!({ "sequence": name }),
            ),
            ApiError::MethodNotAllowed { method, allow } => (
                format!("{method} is not allowed here; use one of: {allow}."),
                json!({ "allow": allow }),
            ),
            ApiError::InvalidCount { given, max } => (
                format!("count must be a decimal integer from 1 to {max}; got {given:?}."),
                json!({ "parameter": "count", "minimum": 1, "maximum": max }),
            ),
            ApiError::CountOverRange { count, size } => (
                format!(
                    "count {count} is more than the sequence's whole range of {size} numbers: \
                     they could not all be different."
                ),
                json!({ "parameter": "count", "minimum": 1, "maximum": size }),
            ),
            ApiError::CountOverTake { count, most } => (
                format!(
                    "count {count} is more than one take from the store holds for this strict \
                     sequence (one number per nextval()): at most {most}."
                ),
                json!({ "parameter": "count", "minimum": 1, "maximum": most }),
            ),
            ApiError::CountOverLease {
                count,
                limit,
                max_lease,
            } => (
                format!(
                    "count {count} is more than this sequence's largest range lease, {limit} \
                     (its max_lease is {max_lease}; PEZ_MAX_LEASE caps it): nothing was taken."
                ),
                json!({
                    "parameter": "count",
                    "minimum": 1,
                    "maximum": limit,
                    "max_lease": max_lease,
                }),
            ),
            ApiError::EarlyWrap { detail } => (
                format!(
                    "{detail}. Send \"allow_early_wrap\": true to move it anyway, if numbers \
                     of this lap coming back sooner is acceptable."
                ),
                json!({}),
            ),
            ApiError::Backward { detail } => (
                format!(
                    "{detail}. Send \"allow_backward\": true to restart there anyway, if \
                     issuing those numbers again is what you want."
                ),
                json!({}),
            ),
            ApiError::InvalidFormat { given } => (
                format!("format must be json, string or text; got {given:?}."),
                json!({ "parameter": "format", "allowed": ["json", "string", "text"] }),
            ),
            ApiError::InvalidName { detail } | ApiError::InvalidBody { detail } => {
                (format!("{detail}."), json!({}))
            }
            ApiError::BodyTooLarge { limit } => (
                format!("The request body is over {limit} bytes."),
                json!({ "limit": limit }),
            ),
            ApiError::Unauthorized { admin: true } => (
                "This needs the admin token: send `Authorization: Bearer <PEZ_ADMIN_TOKEN>`."
                    .into(),
                json!({}),
            ),
            ApiError::Unauthorized { admin: false } => (
                "Taking numbers needs a token: send `Authorization: Bearer <one of PEZ_TOKENS>`."
                    .into(),
                json!({}),
            ),
            ApiError::UnauthorizedToObserve => (
                "The metrics need a token while tokens are set: send `Authorization: Bearer \
                 <PEZ_ADMIN_TOKEN or one of PEZ_METRICS_TOKENS>`."
                    .into(),
                json!({}),
            ),
            ApiError::LeaseUnauthorized => (
                "A range lease needs a lease token: send `Authorization: Bearer <one of \
                 PEZ_LEASE_TOKENS>`."
                    .into(),
                json!({ "scope": "lease" }),
            ),
            ApiError::LeaseScopeNeeded => (
                "This token may take numbers but not range leases: a range lease needs one of \
                 PEZ_LEASE_TOKENS (or the admin token)."
                    .into(),
                json!({ "scope": "lease" }),
            ),
            ApiError::AdminOff => (
                "The admin API is off on this instance; an operator turns it on by setting \
                 PEZ_ADMIN_TOKEN."
                    .into(),
                json!({}),
            ),
            ApiError::Conflict { existing } => (
                "A sequence of this name exists with other settings; delete it first, or use \
                 its settings."
                    .into(),
                json!({ "existing": existing }),
            ),
            ApiError::Builtin { name } => (
                format!(
                    "Sequence {name} is built in (the original PEZ API uses it) and cannot be deleted."
                ),
                json!({ "sequence": name }),
            ),
            ApiError::Exhausted {
                sequence,
                remaining: 0,
            } => (
                format!("Sequence {sequence} has issued its last number and does not cycle."),
                json!({ "sequence": sequence, "remaining": 0 }),
            ),
            ApiError::Exhausted {
                sequence,
                remaining,
            } => (
                format!(
                    "Sequence {sequence} does not cycle and has {remaining} number(s) left: \
                     fewer than asked for. A request is served whole or not at all; ask for at \
                     most {remaining}."
                ),
                json!({ "sequence": sequence, "remaining": remaining }),
            ),
            ApiError::Unavailable { reason } => (
                format!("{reason} Retry after {RETRY_AFTER_SECONDS} second(s)."),
                json!({ "retry_after": RETRY_AFTER_SECONDS }),
            ),
            ApiError::NotReady { reasons } => (
                format!("Not ready: {}.", reasons.join("; ")),
                json!({ "reasons": reasons }),
            ),
            ApiError::HeadTooLarge { limit } => (
                format!("The request line and headers together may take at most {limit} bytes."),
                json!({ "maximum": limit }),
            ),
            ApiError::UriTooLong => ("The request target is too long.".to_owned(), json!({})),
            ApiError::Malformed => (
                "The request is not valid HTTP/1.1 (request line, method, target or a header); \
                 the connection is closed."
                    .to_owned(),
                json!({}),
            ),
        }
    }

    /// The complete response, problem body and headers included.
    pub fn into_response(self, instance: Option<&str>) -> Answer {
        let (detail, extra) = self.detail_and_extra();
        let (kind, title) = self.kind_and_title();
        let status = self.status();
        let problem = Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            instance,
            extra,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(Bytes::from(body));
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
            ApiError::Unavailable { .. } | ApiError::NotReady { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            // The rest of the body is not read: the connection cannot carry
            // another request, and the client must know not to try.
            ApiError::BodyTooLarge { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::Unauthorized { .. }
            | ApiError::UnauthorizedToObserve
            | ApiError::LeaseUnauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pez\""),
                );
            }
            // RFC 6750: the token is fine, its scope is not.
            ApiError::LeaseScopeNeeded => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"pez\", error=\"insufficient_scope\", scope=\"lease\"",
                    ),
                );
            }
            _ => {}
        }
        response
    }
}
