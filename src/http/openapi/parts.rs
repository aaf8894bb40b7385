//! What the paths of the document are built from: an endpoint and its
//! operations, and the parameters, responses and security they share.

use super::schemas::reference;
use serde_json::{Value, json};

/// One path and what it does.
pub(super) struct Endpoint {
    pub(super) path: &'static str,
    pub(super) summary: &'static str,
    pub(super) description: String,
    pub(super) path_parameters: Vec<Value>,
    pub(super) operations: Vec<Operation>,
}

/// One method of an endpoint: its OpenAPI operation object.
pub(super) struct Operation {
    pub(super) method: &'static str,
    pub(super) value: Value,
}

pub(super) fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": reference("Problem") } },
    })
}

pub(super) fn json_body(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

pub(super) fn operation(
    method: &'static str,
    summary: &str,
    extra: Value,
    responses: Value,
) -> Operation {
    let mut value = json!({ "summary": summary, "responses": responses });
    if let (Some(value), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        value.extend(extra.clone());
    }
    Operation { method, value }
}

pub(super) fn options_operation() -> Value {
    json!({
        "summary": "Describe this resource: its methods and parameters with their limits.",
        "responses": {
            "200": json_body("The description; the Allow header lists the methods.", json!({ "type": "object" })),
        },
    })
}

/// Security of dispensing: open, or one of PEZ_TOKENS.
pub(super) fn dispensing_security() -> Value {
    json!([{}, { "bearer": [] }])
}

pub(super) fn admin_security() -> Value {
    json!([{ "bearer": [] }])
}

pub(super) fn count_parameter(max: u64, what: &str) -> Value {
    json!({
        "name": "count",
        "in": "query",
        "required": false,
        "description": format!("How many numbers {what}; other query parameters are ignored."),
        "schema": { "type": "integer", "minimum": 1, "maximum": max, "default": 1 },
    })
}

pub(super) fn format_parameter() -> Value {
    json!({
        "name": "format",
        "in": "query",
        "required": false,
        "description": "json: JSON numbers (the default); string: JSON strings, exact in JavaScript \
                        (whose JSON.parse loses integers above 2^53); text: decimal text, one per \
                        line. `Accept: text/plain` also selects text.",
        "schema": { "type": "string", "enum": ["json", "string", "text"], "default": "json" },
    })
}

pub(super) fn name_parameter() -> Value {
    json!({
        "name": "name",
        "in": "path",
        "required": true,
        "description": "The sequence's name.",
        "schema": { "type": "string", "pattern": "^[a-z0-9_-]{1,63}$" },
    })
}

/// The common failures of taking numbers.
pub(super) fn dispensing_errors(responses: &mut Value) {
    responses["400"] = problem("count or format is not valid; the problem says the allowed range.");
    responses["401"] = problem("PEZ_TOKENS is set and the request has none of them.");
    responses["503"] = problem(
        "No numbers on hand and the store cannot provide more right now (Retry-After says when \
         to try again), or the instance is stopping. Nothing is issued twice.",
    );
}

pub(super) fn admin_errors(responses: &mut Value) {
    responses["401"] = problem("No admin token, or a wrong one.");
    responses["403"] = problem("The admin API is off: PEZ_ADMIN_TOKEN is not set.");
    responses["503"] = problem("The store cannot be reached right now.");
}

pub(super) fn numbers_content(single: bool) -> Value {
    let (json_schema, text) = if single {
        (
            json!({ "oneOf": [reference("Number"), reference("NumberString")] }),
            "The number and a newline.",
        )
    } else {
        (
            json!({
                "oneOf": [
                    { "type": "array", "items": reference("Number"), "minItems": 1 },
                    { "type": "array", "items": reference("NumberString"), "minItems": 1 },
                ],
            }),
            "One number per line.",
        )
    };
    json!({
        "application/json": { "schema": json_schema },
        "text/plain": { "schema": { "type": "string", "description": text } },
    })
}
