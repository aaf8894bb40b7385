//! The original PEZ's four resources. Handlers never reject: every outcome,
//! errors included, is a complete response, so routing stays cheap and the
//! error format stays in one place ([`super::problem`]).

use super::answer::{Answer, help};
use super::app::{App, RequestHeaders};
use super::auth::{Need, authorize_with};
use super::format::{self, Format};
use super::problem::ApiError;
use super::query;
use super::resources::{ALLOW, Resource, Shape};
use crate::dispenser::DispenseError;
use crate::sequence::Block;
use hyper::Method;

/// What a request to one of the original's four resources comes to, once
/// everything that needs the request has been read: an answer, or numbers
/// to take. The request is not needed while the numbers are taken, so the
/// future that waits for them holds only this.
#[derive(Debug)]
pub enum Prepared {
    /// The answer (OPTIONS, 405, a bad request).
    Answered(Answer),
    /// `count` numbers of `resource`, to be written as `format`.
    Take {
        /// The resource.
        resource: Resource,
        /// How many numbers.
        count: u64,
        /// How to write them.
        format: Format,
    },
}

/// Any method on one of the original's four resources, up to taking
/// numbers ([`take`]).
pub fn number_resource(
    resource: Resource,
    method: &Method,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Prepared {
    let answer = match *method {
        Method::GET => match prepare(resource, query, headers, app) {
            Ok((count, format)) => {
                return Prepared::Take {
                    resource,
                    count,
                    format,
                };
            }
            Err(e) => e.into_response(Some(resource.path)),
        },
        Method::OPTIONS => help(super::openapi::options::help(resource.path, app), ALLOW),
        ref other => ApiError::MethodNotAllowed {
            method: other.to_string(),
            allow: ALLOW,
        }
        .into_response(Some(resource.path)),
    };
    Prepared::Answered(answer)
}

/// The numbers a request took of `sequence`, written out as `shape`, or
/// why none (a problem whose `instance` is `path`): what the four
/// resources and a named sequence's `next` answer, whether the numbers
/// were on hand or waited for.
pub fn answer(
    sequence: &str,
    path: &str,
    shape: Shape,
    count: u64,
    format: Format,
    taken: Result<Vec<Block>, DispenseError>,
) -> Answer {
    match taken {
        Ok(runs) => match shape {
            Shape::Single => format::single(runs[0].first, format),
            Shape::List => format::list(&runs, count, format),
        },
        Err(e) => dispense_error(sequence, count, e).into_response(Some(path)),
    }
}

/// Whatever no route matched.
pub fn not_found(path: &str) -> Answer {
    ApiError::NotFound {
        path: path.to_owned(),
    }
    .into_response(Some(path))
}

/// A GET's count and format, after its token.
fn prepare(
    resource: Resource,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Result<(u64, Format), ApiError> {
    authorize_with(&app.access, Need::Dispense, || headers.authorization())?;
    let format = Format::negotiate(query, headers.accept())?;
    let count = match resource.shape {
        // v1 takes no count; like the original it ignores the query.
        Shape::Single => 1,
        Shape::List => count(query, app.max_count)?,
    };
    Ok((count, format))
}

/// The `count` parameter, within `1..=max`, or the problem saying why not.
pub fn count(query: Option<&str>, max: u64) -> Result<u64, ApiError> {
    query::count(query, max).map_err(|given| ApiError::InvalidCount { given, max })
}

/// What a dispensing failure of `count` numbers means to the client.
pub fn dispense_error(sequence: &str, count: u64, error: DispenseError) -> ApiError {
    match error {
        DispenseError::CountExceedsRange(size) => ApiError::CountOverRange { count, size },
        DispenseError::CountExceedsTake(most) => ApiError::CountOverTake { count, most },
        DispenseError::CountExceedsLease { limit, max_lease } => ApiError::CountOverLease {
            count,
            limit,
            max_lease,
        },
        DispenseError::Exhausted { remaining } => ApiError::Exhausted {
            sequence: sequence.to_owned(),
            remaining,
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
