//! The original PEZ's four resources and the self-description each gives
//! on OPTIONS, kept in one table so routing, help and errors agree.

use crate::sequence::{MAX_VALUE, MIN_VALUE};
use serde_json::{Value, json};

/// The methods every number resource answers.
pub const ALLOW: &str = "GET, OPTIONS";

/// How a resource answers: v1 a bare integer, v2 always a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One number as a bare JSON integer.
    Single,
    /// `count` numbers as a JSON array.
    List,
}

/// One of the original API's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Its path.
    pub path: &'static str,
    /// The sequence it issues from.
    pub sequence: &'static str,
    /// How it answers.
    pub shape: Shape,
}

/// GET /v1/forward
pub const V1_FORWARD: Resource = Resource {
    path: "/v1/forward",
    sequence: "forward",
    shape: Shape::Single,
};
/// GET /v1/reverse
pub const V1_REVERSE: Resource = Resource {
    path: "/v1/reverse",
    sequence: "reverse",
    shape: Shape::Single,
};
/// GET /v2/forward?count=N
pub const V2_FORWARD: Resource = Resource {
    path: "/v2/forward",
    sequence: "forward",
    shape: Shape::List,
};
/// GET /v2/reverse?count=N
pub const V2_REVERSE: Resource = Resource {
    path: "/v2/reverse",
    sequence: "reverse",
    shape: Shape::List,
};

impl Resource {
    /// The JSON help object answered on OPTIONS.
    pub fn help(&self, max_count: u64) -> Value {
        let order = match self.sequence {
            "forward" => format!(
                "ascending from {MIN_VALUE}; after {MAX_VALUE} (2^63-1) it wraps to {MIN_VALUE}"
            ),
            _ => format!(
                "descending from {MAX_VALUE} (2^63-1); after {MIN_VALUE} it wraps to {MAX_VALUE}"
            ),
        };
        let number = json!({ "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE });
        let errors = json!({
            "503": "No numbers on hand and the store cannot lease more right now; \
                    the response has Retry-After. Nothing is issued twice.",
            "405": "Any method but GET and OPTIONS.",
        });
        match self.shape {
            Shape::Single => json!({
                "resource": self.path,
                "description": format!(
                    "Returns the next number of the {} sequence, {order}, as a bare JSON integer. \
                     No number is issued twice until the sequence wraps.",
                    self.sequence
                ),
                "methods": { "GET": "Issue one number.", "OPTIONS": "This description." },
                "parameters": {},
                "returns": number,
                "errors": errors,
            }),
            Shape::List => json!({
                "resource": self.path,
                "description": format!(
                    "Returns the next count numbers of the {} sequence, {order}, as a JSON array \
                     in sequence order (an array also for one number). No number is issued \
                     twice until the sequence wraps.",
                    self.sequence
                ),
                "methods": { "GET": "Issue count numbers.", "OPTIONS": "This description." },
                "parameters": {
                    "count": {
                        "in": "query",
                        "description": "How many numbers to issue; other query parameters are ignored.",
                        "type": "integer",
                        "minimum": 1,
                        "maximum": max_count,
                        "default": 1,
                    }
                },
                "returns": { "type": "array", "items": number, "minItems": 1, "maxItems": max_count },
                "errors": {
                    "400": format!("count is not a decimal integer from 1 to {max_count}."),
                    "405": errors["405"],
                    "503": errors["503"],
                },
            }),
        }
    }
}
