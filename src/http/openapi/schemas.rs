//! The document's component schemas: numbers, problems, ranges and
//! sequences, as the handlers write and read them.

use crate::http::app::App;
use crate::sequence::{MAX_VALUE, MIN_VALUE};
use serde_json::{Value, json};

pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn schemas(app: &App) -> Value {
    let _ = app;
    json!({
        "Number": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE },
        "NumberString": { "type": "string", "pattern": "^[1-9][0-9]{0,18}$" },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "instance": { "type": "string" },
                "remaining": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "sequence-exhausted: the numbers a non-cycling sequence has left.",
                },
            },
        },
        "Ranges": {
            "type": "object",
            "required": ["ranges"],
            "properties": { "ranges": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["first", "last"],
                    "properties": {
                        "first": { "oneOf": [reference("Number"), reference("NumberString")] },
                        "last": { "oneOf": [reference("Number"), reference("NumberString")] },
                    },
                },
            } },
        },
        "SequenceSettings": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "direction": { "type": "string", "enum": ["ascending", "descending"], "default": "ascending" },
                "min": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE, "default": MIN_VALUE },
                "max": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE, "default": MAX_VALUE },
                "start": { "type": "integer", "minimum": MIN_VALUE, "maximum": MAX_VALUE,
                           "description": "Within min..max; default: min when ascending, max when descending." },
                "cycle": { "type": "boolean", "default": true,
                           "description": "Wrap after the last number; when false an exhausted sequence answers 409." },
                "mode": { "type": "string", "enum": ["leased", "strict"], "default": "leased",
                          "description": "leased: served from blocks each instance leases (fast); strict: every number straight from the store, one global order across instances." },
                "max_lease": { "type": "integer", "minimum": 1, "maximum": MAX_VALUE,
                               "description": "The largest range lease, from 1 to the sequence's size (max - min + 1); default: a thousandth of it (at least 1, at most 1000000000). PEZ_MAX_LEASE caps it." },
            },
        },
        "Sequence": {
            "type": "object",
            "required": ["name", "direction", "min", "max", "start", "cycle", "mode", "max_lease", "lease_limit", "builtin", "next", "store_next", "on_hand"],
            "properties": {
                "name": { "type": "string" },
                "direction": { "type": "string", "enum": ["ascending", "descending"] },
                "min": reference("Number"),
                "max": reference("Number"),
                "start": reference("Number"),
                "cycle": { "type": "boolean" },
                "mode": { "type": "string", "enum": ["leased", "strict"] },
                "max_lease": { "type": "integer", "minimum": 1,
                               "description": "The sequence's largest range lease, set when it was created." },
                "lease_limit": { "type": "integer", "minimum": 1,
                                 "description": "The largest range lease this server grants: max_lease capped by PEZ_MAX_LEASE." },
                "builtin": { "type": "boolean" },
                "next": { "oneOf": [reference("Number"), { "type": "null" }],
                          "description": "The next number this instance issues (null: exhausted)." },
                "store_next": { "oneOf": [reference("Number"), { "type": "null" }],
                                "description": "Where the store stands: the first number of the next lease." },
                "on_hand": { "type": "integer", "minimum": 0, "description": "Numbers this instance holds." },
            },
        },
    })
}
