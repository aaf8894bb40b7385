//! What every handler answers with, and the two plain answers all of them
//! build on. The bottom of the http modules: it imports none of them.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// A complete answer: status, headers and the whole body. Every handler
/// returns one, so handlers need neither warp nor a socket to be tested.
pub type Answer = Response<Bytes>;

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
