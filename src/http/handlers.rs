//! What each resource does. Handlers never reject: every outcome, errors
//! included, is a complete response, so routing stays cheap and the error
//! format stays in one place ([`super::problem`]).

use super::problem::ApiError;
use super::query;
use super::resources::{ALLOW, Resource, Shape};
use crate::dispenser::{DispenseError, Dispenser};
use crate::sequence::Block;
use std::fmt::Write as _;
use std::sync::Arc;
use warp::http::{HeaderValue, Method, Response, StatusCode, header};
use warp::hyper::Body;

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    /// Where numbers come from.
    pub dispenser: Arc<Dispenser>,
    /// The largest count a v2 request may ask for.
    pub max_count: u64,
}

/// Any method on one of the original's four resources.
pub async fn number_resource(
    resource: Resource,
    method: Method,
    query: Option<String>,
    app: Arc<App>,
) -> Response<Body> {
    match method {
        Method::GET => issue(resource, query.as_deref(), &app)
            .await
            .unwrap_or_else(|e| e.into_response(Some(resource.path))),
        Method::OPTIONS => {
            let mut response = json(resource.help(app.max_count).to_string());
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            response
        }
        other => ApiError::MethodNotAllowed {
            method: other.to_string(),
            allow: ALLOW,
        }
        .into_response(Some(resource.path)),
    }
}

/// Whatever no route matched.
pub fn not_found(path: &str) -> Response<Body> {
    ApiError::NotFound {
        path: path.to_owned(),
    }
    .into_response(Some(path))
}

async fn issue(
    resource: Resource,
    query: Option<&str>,
    app: &App,
) -> Result<Response<Body>, ApiError> {
    let count = match resource.shape {
        // v1 takes no parameters; like the original it ignores any.
        Shape::Single => 1,
        Shape::List => {
            query::count(query, app.max_count).map_err(|given| ApiError::InvalidCount {
                given,
                max: app.max_count,
            })?
        }
    };
    let runs = app
        .dispenser
        .next(resource.sequence, count)
        .await
        .map_err(|e| dispense_error(resource.sequence, e))?;
    Ok(json(match resource.shape {
        Shape::Single => runs[0].first.to_string(),
        Shape::List => json_array(&runs, count),
    }))
}

fn dispense_error(sequence: &str, error: DispenseError) -> ApiError {
    match error {
        DispenseError::Exhausted => ApiError::Exhausted {
            sequence: sequence.to_owned(),
        },
        DispenseError::Unavailable => ApiError::Unavailable {
            reason: "No numbers are on hand and the store cannot lease more right now.",
        },
        DispenseError::ShuttingDown => ApiError::Unavailable {
            reason: "This instance is stopping.",
        },
        // The four resources name sequences that always exist.
        DispenseError::UnknownSequence => ApiError::Unavailable {
            reason: "The sequence is not loaded.",
        },
    }
}

/// The numbers as a JSON array, formatted like the original's
/// (`[30011, 30012]`: Python's json.dumps puts a space after each comma).
fn json_array(runs: &[Block], count: u64) -> String {
    // 19 digits and ", " per number at most.
    let mut out = String::with_capacity(2 + 21 * count as usize);
    out.push('[');
    for (i, number) in runs.iter().flat_map(Block::iter).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{number}");
    }
    out.push(']');
    out
}

fn json(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::Direction;

    #[test]
    fn arrays_look_like_the_originals() {
        let runs = [
            Block::new(9223372036854775806, Direction::Ascending, 2),
            Block::new(1, Direction::Ascending, 1),
        ];
        assert_eq!(
            json_array(&runs, 3),
            "[9223372036854775806, 9223372036854775807, 1]"
        );
        assert_eq!(json_array(&runs[2..], 0), "[]");
    }
}
