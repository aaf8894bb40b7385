//! The one error type of the client.

use std::fmt;
use std::time::Duration;

/// Why [`crate::Client::next`] (or building a client) gave no number.
///
/// Every variant's `Display` is one line meant for a person: it names the
/// sequence, the servers or the limit involved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given something unusable (no URL, a URL that is
    /// not `http://`, an empty sequence name, a zero deadline, ...).
    Config(String),
    /// The deadline passed while a lease was on its way and at least one
    /// server had not failed: slow, not down.
    Timeout {
        /// The deadline that passed.
        waited: Duration,
        /// The sequence asked for.
        sequence: String,
    },
    /// The deadline passed and every server had failed since it last
    /// answered (connection error, timeout, 5xx): `detail` names each with
    /// its last failure.
    Unavailable {
        /// The deadline that passed.
        waited: Duration,
        /// The sequence asked for.
        sequence: String,
        /// Each server's last failure, `URL: what happened`, joined by `; `.
        detail: String,
    },
    /// A non-cycling sequence has issued its last number, and every number
    /// this client held has been handed out.
    Exhausted {
        /// The sequence.
        sequence: String,
    },
    /// A server refused the token (401: none or unknown; 403: a token that
    /// may take numbers but not range leases, when `PEZ_LEASE_TOKENS` is
    /// set).
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's `detail`.
        detail: String,
    },
    /// No sequence of that name on the server (404).
    UnknownSequence {
        /// The sequence.
        sequence: String,
    },
    /// The server answered something this client does not understand (a
    /// 4xx other than the above, or a body that is not a lease).
    Protocol(String),
    /// The async runtime is shutting down (`next_async` only).
    Stopped,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "pez client: bad configuration: {why}"),
            Error::Timeout { waited, sequence } => write!(
                f,
                "pez client: no numbers of {sequence} within the deadline of {} ms: a lease \
                 was asked for and no server answered in time",
                waited.as_millis()
            ),
            Error::Unavailable {
                waited,
                sequence,
                detail,
            } => write!(
                f,
                "pez client: no numbers of {sequence} within the deadline of {} ms: every \
                 server failed ({detail})",
                waited.as_millis()
            ),
            Error::Exhausted { sequence } => write!(
                f,
                "pez client: sequence {sequence} does not cycle and has issued its last number \
                 (every number this client held was handed out)"
            ),
            Error::Unauthorized { status, detail } => write!(
                f,
                "pez client: the server refused the token ({status}): {detail}"
            ),
            Error::UnknownSequence { sequence } => {
                write!(
                    f,
                    "pez client: no sequence named {sequence} on the server (404)"
                )
            }
            Error::Protocol(what) => write!(f, "pez client: unexpected answer: {what}"),
            Error::Stopped => write!(f, "pez client: the async runtime is shutting down"),
        }
    }
}

impl std::error::Error for Error {}
