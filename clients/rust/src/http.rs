//! The two HTTP calls the client makes, and what each answer means to it.
//! No state here: [`crate::fetcher`] decides what to do with an answer.

use crate::Error;
use crate::range::Range;
use serde::Deserialize;
use std::time::Duration;

/// Bodies larger than this are not read: a lease answer is a few dozen
/// bytes, a problem a few hundred.
const BODY_LIMIT: u64 = 64 * 1024;

/// What one `POST /v2/sequences/{name}/lease?count=N` came to.
#[derive(Debug)]
pub(crate) enum LeaseAnswer {
    /// 200: the ranges, in the order the server granted them.
    Granted(Vec<Range>),
    /// 400 with `maximum`: the count is over the sequence's lease limit;
    /// nothing was taken.
    OverLimit { maximum: u64 },
    /// 409: a non-cycling sequence has fewer than `count` numbers left.
    Exhausted { remaining: u64 },
    /// The server is not usable now (connection error, timeout, 5xx, 429):
    /// try another, and this one again after a backoff.
    Failed(String),
    /// The server said no in a way another server would too (401, 403,
    /// 404, another 4xx, a body that is not a lease).
    Refused(Error),
}

#[derive(Deserialize)]
struct Lease {
    ranges: Vec<RangeBody>,
}

#[derive(Deserialize)]
struct RangeBody {
    first: i64,
    last: i64,
}

/// The fields of an RFC 9457 problem the client reads.
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    maximum: Option<u64>,
    #[serde(default)]
    remaining: Option<u64>,
}

#[derive(Deserialize)]
struct Sequence {
    lease_limit: u64,
}

/// One HTTP agent (keep-alive connections) for every server of a client.
pub(crate) struct Http {
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl Http {
    /// An agent whose every request ends within `attempt` (connecting
    /// within at most one second of it).
    pub(crate) fn new(token: Option<&str>, attempt: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(attempt))
            .timeout_connect(Some(attempt.min(Duration::from_secs(1))))
            .user_agent(concat!("pez-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http {
            agent,
            authorization: token.map(|t| format!("Bearer {t}")),
        }
    }

    /// Asks `base` for a range lease of `count` numbers of `sequence`.
    pub(crate) fn lease(&self, base: &str, sequence: &str, count: u64) -> LeaseAnswer {
        let url = format!("{base}/v2/sequences/{sequence}/lease?count={count}");
        let mut request = self.agent.post(&url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = match request.send_empty() {
            Ok(response) => response,
            Err(e) => return LeaseAnswer::Failed(e.to_string()),
        };
        let status = response.status().as_u16();
        let body = match response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
        {
            Ok(body) => body,
            // A body cut off is the connection failing, not an answer.
            Err(e) => return LeaseAnswer::Failed(format!("{status}, body unread: {e}")),
        };
        answer(status, &body, sequence, count)
    }

    /// The sequence's `lease_limit` from `GET /v2/sequences/{name}` (an
    /// admin route: `None` for any answer but 200, and the limit is then
    /// learned from a 400's `maximum`).
    pub(crate) fn lease_limit(&self, base: &str, sequence: &str) -> Option<u64> {
        let mut request = self.agent.get(format!("{base}/v2/sequences/{sequence}"));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = request.call().ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .ok()?;
        serde_json::from_str::<Sequence>(&body)
            .ok()
            .map(|s| s.lease_limit)
            .filter(|&limit| limit >= 1)
    }
}

/// What a lease answer with this status and body means (pure: unit tested).
pub(crate) fn answer(status: u16, body: &str, sequence: &str, count: u64) -> LeaseAnswer {
    let problem = || serde_json::from_str::<Problem>(body).unwrap_or_default();
    let detail = || {
        problem()
            .detail
            .unwrap_or_else(|| format!("status {status}"))
    };
    match status {
        200 => granted(body, count),
        400 => match problem().maximum {
            Some(maximum) if maximum >= 1 && maximum < count => LeaseAnswer::OverLimit { maximum },
            _ => LeaseAnswer::Refused(Error::Protocol(format!(
                "lease of {count} refused (400): {}",
                detail()
            ))),
        },
        401 | 403 => LeaseAnswer::Refused(Error::Unauthorized {
            status,
            detail: detail(),
        }),
        404 => LeaseAnswer::Refused(Error::UnknownSequence {
            sequence: sequence.to_owned(),
        }),
        409 => match problem().remaining {
            Some(remaining) if remaining < count => LeaseAnswer::Exhausted { remaining },
            _ => LeaseAnswer::Refused(Error::Protocol(format!("409: {}", detail()))),
        },
        429 | 500..=599 => LeaseAnswer::Failed(format!("{status}: {}", detail())),
        _ => LeaseAnswer::Refused(Error::Protocol(format!("{status}: {}", detail()))),
    }
}

/// The ranges of a 200 answer, checked: each within 1..=i64::MAX, and
/// from 1 to `count` numbers in all (fewer than asked at the end of a
/// non-cycling sequence: the server grants what is left; more is not a
/// lease of this client's).
fn granted(body: &str, count: u64) -> LeaseAnswer {
    let lease: Lease = match serde_json::from_str(body) {
        Ok(lease) => lease,
        Err(e) => return LeaseAnswer::Refused(Error::Protocol(format!("lease body: {e}"))),
    };
    let mut ranges = Vec::with_capacity(lease.ranges.len());
    for r in lease.ranges {
        match Range::new(r.first, r.last) {
            Some(range) => ranges.push(range),
            None => {
                return LeaseAnswer::Refused(Error::Protocol(format!(
                    "a range from {} to {} is not a range of PEZ numbers",
                    r.first, r.last
                )));
            }
        }
    }
    let total: u64 = ranges.iter().map(Range::len).sum();
    if ranges.is_empty() || total > count {
        return LeaseAnswer::Refused(Error::Protocol(format!(
            "a lease of {count} numbers came with {total}"
        )));
    }
    LeaseAnswer::Granted(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_that_wraps_is_two_ranges_in_grant_order() {
        let LeaseAnswer::Granted(ranges) = answer(
            200,
            r#"{"ranges": [{"first": 9, "last": 10}, {"first": 1, "last": 3}]}"#,
            "ring",
            5,
        ) else {
            panic!("not granted")
        };
        assert_eq!(
            ranges,
            vec![Range::new(9, 10).unwrap(), Range::new(1, 3).unwrap()]
        );
    }

    #[test]
    fn a_lease_larger_than_asked_is_refused_a_smaller_one_taken() {
        assert!(matches!(
            answer(200, r#"{"ranges": [{"first": 1, "last": 5}]}"#, "s", 4),
            LeaseAnswer::Refused(Error::Protocol(_))
        ));
        assert!(matches!(
            answer(200, r#"{"ranges": [{"first": 1, "last": 3}]}"#, "s", 4),
            LeaseAnswer::Granted(_)
        ));
    }

    #[test]
    fn problems_map_to_what_the_client_does() {
        let over = r#"{"status":400,"detail":"too many","maximum":5}"#;
        assert!(matches!(
            answer(400, over, "s", 8),
            LeaseAnswer::OverLimit { maximum: 5 }
        ));
        let gone = r#"{"status":409,"detail":"last","remaining":0}"#;
        assert!(matches!(
            answer(409, gone, "s", 8),
            LeaseAnswer::Exhausted { remaining: 0 }
        ));
        assert!(matches!(answer(503, "{}", "s", 8), LeaseAnswer::Failed(_)));
        assert!(matches!(
            answer(401, r#"{"detail":"no token"}"#, "s", 8),
            LeaseAnswer::Refused(Error::Unauthorized { status: 401, .. })
        ));
        assert!(matches!(
            answer(404, "{}", "s", 8),
            LeaseAnswer::Refused(Error::UnknownSequence { .. })
        ));
    }
}
