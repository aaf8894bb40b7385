//! The resolved settings: what validation makes of the raw ones, in the
//! types the rest of PEZ reads.

use super::database::StoreChoice;
use super::secret::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to serve HTTP.
    pub listen: SocketAddr,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// Largest count per v2 request.
    pub max_count: u64,
    /// env_logger filter.
    pub log: String,
    /// Smallest lease, at least twice `max_count`.
    pub block_min: u64,
    /// Largest lease.
    pub block_max: u64,
    /// Longest a request waits for a lease.
    pub lease_wait: Duration,
    /// Longest an embedded store call waits for a lock.
    pub store_timeout: Duration,
    /// Longest a graceful stop waits for requests in flight, and again for
    /// give-backs.
    pub shutdown_timeout: Duration,
    /// The store.
    pub store: StoreChoice,
    /// How often to look for changes other instances made.
    pub sync_interval: Duration,
    /// Largest range lease.
    pub max_lease: u64,
    /// Who may do what.
    pub access: Access,
    /// How log lines look.
    pub log_format: crate::telemetry::LogFormat,
    /// Protections against hostile or broken clients.
    pub limits: Limits,
}

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send request headers.
    pub header_timeout: Duration,
    /// Time a connection may stay idle.
    pub idle_timeout: Duration,
    /// Time to answer a request.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: u64,
}

/// The tokens of the admin API, of dispensing and of observing.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// PEZ_ADMIN_TOKEN; `None`: the admin API is off.
    pub admin: Option<Secret>,
    /// PEZ_TOKENS; empty: dispensing is open.
    pub dispensing: Vec<Secret>,
    /// PEZ_LEASE_TOKENS: the tokens that may take range leases (and
    /// numbers); empty: whoever may take numbers may take range leases.
    pub leasing: Vec<Secret>,
    /// PEZ_METRICS_TOKENS: besides the admin token, these may read
    /// /metrics and the status page's details.
    pub metrics: Vec<Secret>,
}

impl Access {
    /// Whether no token of any kind is set: a development box, where the
    /// status page and /metrics show everything to anyone. Once any token
    /// is set, what they show is worth protecting too.
    pub fn is_open(&self) -> bool {
        self.admin.is_none()
            && self.dispensing.is_empty()
            && self.leasing.is_empty()
            && self.metrics.is_empty()
    }
}
