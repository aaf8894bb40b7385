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

/// The OPTIONS help of the resources under `/v2/sequences` (`kind` is
/// collection, sequence, next, lease or restart).
pub fn sequences_help(kind: &str, app: &super::App) -> Value {
    let name = json!({
        "in": "path",
        "type": "string",
        "pattern": "^[a-z0-9_-]{1,63}$",
        "description": "The sequence's name.",
    });
    let format = json!({
        "in": "query",
        "type": "string",
        "enum": ["json", "string", "text"],
        "default": "json",
        "description": "json: JSON numbers; string: JSON strings (exact in JavaScript, whose \
                        JSON.parse loses integers above 2^53); text: decimal text, one per line. \
                        Accept: text/plain also selects text.",
    });
    let token = "Needs `Authorization: Bearer <token>` with one of PEZ_TOKENS when that is set.";
    let admin = "Needs `Authorization: Bearer <PEZ_ADMIN_TOKEN>`; 403 when the admin API is off.";
    let settings = json!({
        "direction": { "type": "string", "enum": ["ascending", "descending"], "default": "ascending" },
        "min": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE, "default": MIN_VALUE },
        "max": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE, "default": MAX_VALUE },
        "start": { "type": "integer", "description": "Within min..max; default: min when ascending, max when descending." },
        "cycle": { "type": "boolean", "default": true, "description": "Wrap after the last number; when false an exhausted sequence answers 409." },
        "mode": { "type": "string", "enum": ["leased", "strict"], "default": "leased",
                  "description": "leased: served from blocks each instance leases (fast); strict: every number straight from the store, one global order across instances." },
    });
    match kind {
        "collection" => json!({
            "resource": "/v2/sequences",
            "description": format!("Lists every sequence with its settings and position. {admin}"),
            "methods": { "GET": "List the sequences.", "OPTIONS": "This description." },
            "parameters": {},
        }),
        "sequence" => json!({
            "resource": "/v2/sequences/{name}",
            "description": format!(
                "One sequence. PUT creates it from a JSON body of settings (the same settings \
                 again: 200; other settings: 409); unknown fields, wrong types, min above max and a \
                 start outside min..max are 400. DELETE removes it (forward and reverse cannot be \
                 deleted). {admin}"
            ),
            "methods": { "GET": "Show it.", "PUT": "Create it.", "DELETE": "Delete it.", "OPTIONS": "This description." },
            "parameters": { "name": name, "body (PUT)": settings },
        }),
        "next" => json!({
            "resource": "/v2/sequences/{name}/next",
            "description": format!(
                "The next count numbers of the sequence as a JSON array in sequence order, like \
                 /v2/forward. {token}"
            ),
            "methods": { "GET": "Issue count numbers.", "POST": "The same.", "OPTIONS": "This description." },
            "parameters": {
                "name": name,
                "count": { "in": "query", "type": "integer", "minimum": 1, "maximum": app.max_count, "default": 1 },
                "format": format,
            },
        }),
        "lease" => json!({
            "resource": "/v2/sequences/{name}/lease",
            "description": format!(
                "A range lease for clients that hand out numbers themselves: count numbers, \
                 durably theirs, as {{\"ranges\": [{{\"first\": F, \"last\": L}}]}}, two ranges \
                 where the sequence wraps inside the lease (ranges follow the sequence's \
                 direction). With format=text: one \"FIRST LAST\" line per range. {token}"
            ),
            "methods": { "POST": "Lease count numbers.", "OPTIONS": "This description." },
            "parameters": {
                "name": name,
                "count": { "in": "query", "type": "integer", "minimum": 1, "maximum": app.max_lease, "default": 1 },
                "format": format,
            },
        }),
        _ => json!({
            "resource": "/v2/sequences/{name}/restart",
            "description": format!(
                "Makes value the next number the sequence issues (like ALTER SEQUENCE ... \
                 RESTART). Every instance drops the blocks it holds of it within \
                 PEZ_SYNC_INTERVAL_MS plus one store call. {admin}"
            ),
            "methods": { "POST": "Restart it.", "OPTIONS": "This description." },
            "parameters": {
                "name": name,
                "body": { "value": { "type": "integer", "description": "Within the sequence's min..max." } },
            },
        }),
    }
}
