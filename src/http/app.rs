//! What the handlers share ([`App`]) and the request headers they read.
//! Imports no other http module, so every handler and the API document
//! can use it without a circle.

use crate::config::Access;
use crate::dispenser::Dispenser;
use hyper::HeaderMap;
use hyper::header;
use std::sync::Arc;

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
    /// When the server started, for the status page's uptime.
    pub started: std::time::Instant,
}

/// The request headers handlers look at, read from the request only when
/// a handler asks (a value that is not visible ASCII counts as absent).
#[derive(Debug, Clone, Copy)]
pub struct RequestHeaders<'a>(&'a HeaderMap);

impl<'a> RequestHeaders<'a> {
    /// The headers of interest among `headers`.
    pub fn of(headers: &'a HeaderMap) -> Self {
        Self(headers)
    }

    fn text(self, name: header::HeaderName) -> Option<&'a str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Accept`.
    pub fn accept(self) -> Option<&'a str> {
        self.text(header::ACCEPT)
    }

    /// `Authorization`.
    pub fn authorization(self) -> Option<&'a str> {
        self.text(header::AUTHORIZATION)
    }
}
