//! The API's description: one document, built here from the same table the
//! OPTIONS answers come from, served at /openapi.json (OpenAPI 3.1). Tests
//! walk it against the live server (and schemathesis in CI checks every
//! response against it), so it cannot drift from what the routes do.

use super::app::App;
use crate::sequence::{MAX_VALUE, MIN_VALUE};
use serde_json::{Map, Value, json};

/// The whole OpenAPI 3.1 document, with this instance's limits.
pub fn document(app: &App) -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints(app) {
        let mut item = Map::new();
        item.insert("summary".into(), json!(endpoint.summary));
        item.insert("description".into(), json!(endpoint.description));
        if !endpoint.path_parameters.is_empty() {
            item.insert("parameters".into(), json!(endpoint.path_parameters));
        }
        for operation in endpoint.operations {
            item.insert(operation.method.to_owned(), operation.value);
        }
        item.insert("options".into(), options_operation());
        paths.insert(endpoint.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "PEZ",
            "version": crate::VERSION,
            "summary": "Unique 64-bit numbers over HTTP.",
            "description": "Numbers from sequences that never issue a number twice until they wrap. \
                            The v1 and v2 resources are the original PEZ API; /v2/sequences adds \
                            named sequences, range leases and an admin API.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(app),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PEZ_ADMIN_TOKEN for the admin API (and everything else); one of \
                                    PEZ_TOKENS (when set) to take numbers; one of PEZ_LEASE_TOKENS \
                                    (when set) to take range leases, or numbers; PEZ_ADMIN_TOKEN or \
                                    one of PEZ_METRICS_TOKENS for /metrics and the status page's \
                                    details (when any token is set).",
                },
            },
        },
    })
}

/// The OPTIONS answer of `path`: its description, methods and parameters
/// with their limits, taken from the document.
pub fn help(path: &str, app: &App) -> Value {
    let Some(endpoint) = endpoints(app).into_iter().find(|e| e.path == path) else {
        return json!({ "resource": path });
    };
    let mut methods = Map::new();
    let mut parameters = Map::new();
    let mut bodies = Map::new();
    for parameter in &endpoint.path_parameters {
        add_parameter(&mut parameters, parameter);
    }
    for operation in &endpoint.operations {
        let method = operation.method.to_uppercase();
        methods.insert(method.clone(), operation.value["summary"].clone());
        for parameter in operation.value["parameters"]
            .as_array()
            .into_iter()
            .flatten()
        {
            add_parameter(&mut parameters, parameter);
        }
        let body = &operation.value["requestBody"]["content"]["application/json"]["schema"];
        if !body.is_null() {
            bodies.insert(method, resolve(body, app));
        }
    }
    methods.insert("OPTIONS".into(), json!("This description."));
    let mut help = json!({
        "resource": path,
        "description": endpoint.description,
        "methods": methods,
        "parameters": parameters,
    });
    if !bodies.is_empty() {
        help["body"] = Value::Object(bodies);
    }
    help
}

/// A parameter flattened for humans: where it goes, its description, and
/// its schema's limits side by side.
fn add_parameter(into: &mut Map<String, Value>, parameter: &Value) {
    let mut entry = Map::new();
    entry.insert("in".into(), parameter["in"].clone());
    entry.insert("description".into(), parameter["description"].clone());
    if let Some(schema) = parameter["schema"].as_object() {
        entry.extend(schema.clone());
    }
    if let Some(name) = parameter["name"].as_str() {
        into.insert(name.to_owned(), Value::Object(entry));
    }
}

/// Replaces a `$ref` to a component schema by the schema itself.
fn resolve(schema: &Value, app: &App) -> Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => schemas(app)[name].clone(),
        None => schema.clone(),
    }
}

/// One path and what it does.
struct Endpoint {
    path: &'static str,
    summary: &'static str,
    description: String,
    path_parameters: Vec<Value>,
    operations: Vec<Operation>,
}

/// One method of an endpoint: its OpenAPI operation object.
struct Operation {
    method: &'static str,
    value: Value,
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": reference("Problem") } },
    })
}

fn json_body(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn operation(method: &'static str, summary: &str, extra: Value, responses: Value) -> Operation {
    let mut value = json!({ "summary": summary, "responses": responses });
    if let (Some(value), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        value.extend(extra.clone());
    }
    Operation { method, value }
}

fn options_operation() -> Value {
    json!({
        "summary": "Describe this resource: its methods and parameters with their limits.",
        "responses": {
            "200": json_body("The description; the Allow header lists the methods.", json!({ "type": "object" })),
        },
    })
}

/// Security of dispensing: open, or one of PEZ_TOKENS.
fn dispensing_security() -> Value {
    json!([{}, { "bearer": [] }])
}

fn admin_security() -> Value {
    json!([{ "bearer": [] }])
}

fn count_parameter(max: u64, what: &str) -> Value {
    json!({
        "name": "count",
        "in": "query",
        "required": false,
        "description": format!("How many numbers {what}; other query parameters are ignored."),
        "schema": { "type": "integer", "minimum": 1, "maximum": max, "default": 1 },
    })
}

fn format_parameter() -> Value {
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

fn name_parameter() -> Value {
    json!({
        "name": "name",
        "in": "path",
        "required": true,
        "description": "The sequence's name.",
        "schema": { "type": "string", "pattern": "^[a-z0-9_-]{1,63}$" },
    })
}

/// The common failures of taking numbers.
fn dispensing_errors(responses: &mut Value) {
    responses["400"] = problem("count or format is not valid; the problem says the allowed range.");
    responses["401"] = problem("PEZ_TOKENS is set and the request has none of them.");
    responses["503"] = problem(
        "No numbers on hand and the store cannot provide more right now (Retry-After says when \
         to try again), or the instance is stopping. Nothing is issued twice.",
    );
}

fn admin_errors(responses: &mut Value) {
    responses["401"] = problem("No admin token, or a wrong one.");
    responses["403"] = problem("The admin API is off: PEZ_ADMIN_TOKEN is not set.");
    responses["503"] = problem("The store cannot be reached right now.");
}

fn numbers_content(single: bool) -> Value {
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

fn endpoints(app: &App) -> Vec<Endpoint> {
    let original = |path: &'static str, sequence: &str, list: bool| {
        let order = if sequence == "forward" {
            format!(
                "ascending from {MIN_VALUE}; after {MAX_VALUE} (2^63-1) it wraps to {MIN_VALUE}"
            )
        } else {
            format!(
                "descending from {MAX_VALUE} (2^63-1); after {MIN_VALUE} it wraps to {MAX_VALUE}"
            )
        };
        let (summary, description, parameters) = if list {
            (
                "The next count numbers, as a JSON array (also for one number).",
                format!(
                    "Returns the next count numbers of the {sequence} sequence, {order}, as a JSON \
                     array in sequence order (an array also for one number). No number is issued \
                     twice until the sequence wraps. The original PEZ's v2 API."
                ),
                json!([
                    count_parameter(app.max_count, "to issue"),
                    format_parameter()
                ]),
            )
        } else {
            (
                "The next number, as a bare JSON integer.",
                format!(
                    "Returns the next number of the {sequence} sequence, {order}, as a bare JSON \
                     integer. No number is issued twice until the sequence wraps. The original \
                     PEZ's v1 API; it takes no count."
                ),
                json!([format_parameter()]),
            )
        };
        let mut responses = json!({
            "200": { "description": "The numbers, in sequence order.", "content": numbers_content(!list) },
        });
        dispensing_errors(&mut responses);
        Endpoint {
            path,
            summary,
            description,
            path_parameters: Vec::new(),
            operations: vec![operation(
                "get",
                summary,
                json!({ "parameters": parameters, "security": dispensing_security() }),
                responses,
            )],
        }
    };
    let mut next_responses = json!({
        "200": { "description": "The numbers, in sequence order.", "content": numbers_content(false) },
        "404": problem("No sequence of that name."),
        "409": problem("The sequence does not cycle and has fewer numbers left than count \
                        (`remaining` says how many; 0 once it issued its last). A request is \
                        served whole or not at all, so those are still there."),
    });
    dispensing_errors(&mut next_responses);
    next_responses["400"] = problem(
        "Not a valid name, count or format; or a count over the \
                                     sequence's range, or (a strict sequence) over what one take \
                                     from the store holds (`maximum`).",
    );
    let next_parameters = json!([
        count_parameter(app.max_count, "to issue"),
        format_parameter()
    ]);
    let mut lease_responses = json!({
        "200": {
            "description": "The leased ranges, in sequence order: one, or two where the sequence \
                            wraps inside the lease. Each range follows the sequence's direction. \
                            With format=text: one \"FIRST LAST\" line per range.",
            "content": {
                "application/json": { "schema": reference("Ranges") },
                "text/plain": { "schema": { "type": "string" } },
            },
        },
        "404": problem("No sequence of that name."),
        "409": problem("The sequence does not cycle and has no numbers left (a lease that \
                        finds fewer than count answers those)."),
    });
    dispensing_errors(&mut lease_responses);
    lease_responses["400"] = problem(
        "Not a valid name, count or format; or a count over the sequence's largest range lease \
         (its max_lease, capped by PEZ_MAX_LEASE: `maximum`), over its range, or (a strict \
         sequence) over what one take from the store holds. Nothing is taken.",
    );
    lease_responses["401"] = problem(
        "PEZ_LEASE_TOKENS is set and the request has none of them (nor the admin token); or \
         PEZ_LEASE_TOKENS is not set, PEZ_TOKENS is, and the request has none of those.",
    );
    lease_responses["403"] = problem(
        "The token may take numbers (one of PEZ_TOKENS) but not range leases: PEZ_LEASE_TOKENS \
         is set.",
    );

    let mut list_responses = json!({
        "200": json_body("Every sequence.", json!({
            "type": "object",
            "required": ["sequences"],
            "properties": { "sequences": { "type": "array", "items": reference("Sequence") } },
        })),
    });
    admin_errors(&mut list_responses);
    let mut show_responses = json!({
        "200": json_body("The sequence.", reference("Sequence")),
        "400": problem("Not a valid name."),
        "404": problem("No sequence of that name."),
    });
    admin_errors(&mut show_responses);
    let mut create_responses = json!({
        "200": json_body("It existed already with these very settings; nothing changed.", reference("Sequence")),
        "201": json_body("Created.", reference("Sequence")),
        "400": problem("Not a valid name, or settings that are not valid (the problem says which)."),
        "409": problem("A sequence of that name exists with other settings (in `existing`)."),
        "413": problem("The body is over the limit."),
    });
    admin_errors(&mut create_responses);
    let mut delete_responses = json!({
        "204": { "description": "Deleted; every instance stops serving it within PEZ_SYNC_INTERVAL_MS." },
        "400": problem("Not a valid name."),
        "404": problem("No sequence of that name."),
        "409": problem("forward and reverse are built in and cannot be deleted."),
    });
    admin_errors(&mut delete_responses);
    let mut restart_responses = json!({
        "200": json_body("Restarted.", json!({
            "type": "object",
            "required": ["name", "next"],
            "properties": { "name": { "type": "string" }, "next": reference("Number") },
        })),
        "400": problem("Not a valid name or body, or a value outside the sequence's range."),
        "404": problem("No sequence of that name."),
        "409": problem("The value is behind where the sequence stands: its numbers were handed \
                        out already (send allow_backward to restart there anyway); or the \
                        sequence cycles, has issued numbers, and the value is ahead: it would \
                        wrap sooner than a full lap (send allow_early_wrap)."),
        "413": problem("The body is over the limit."),
    });
    admin_errors(&mut restart_responses);

    vec![
        original("/v1/forward", "forward", false),
        original("/v1/reverse", "reverse", false),
        original("/v2/forward", "forward", true),
        original("/v2/reverse", "reverse", true),
        Endpoint {
            path: "/v2/sequences",
            summary: "Every sequence.",
            description: "Lists every sequence with its settings and position. Admin API: needs \
                          `Authorization: Bearer <PEZ_ADMIN_TOKEN>`; 403 when the admin API is off."
                .into(),
            path_parameters: Vec::new(),
            operations: vec![operation(
                "get",
                "List the sequences.",
                json!({ "security": admin_security() }),
                list_responses,
            )],
        },
        Endpoint {
            path: "/v2/sequences/{name}",
            summary: "One sequence.",
            description: "One sequence. PUT creates it from a JSON body of settings (the same \
                          settings again: 200; other settings: 409); unknown fields, wrong types, \
                          min not below max (a sequence holds at least two numbers, on every \
                          store) and a start outside min..max are 400. DELETE removes it \
                          (forward and reverse cannot be deleted). Admin API: needs the admin token."
                .into(),
            path_parameters: vec![name_parameter()],
            operations: vec![
                operation("get", "Show it.", json!({ "security": admin_security() }), show_responses),
                operation(
                    "put",
                    "Create it.",
                    json!({
                        "security": admin_security(),
                        "requestBody": {
                            "required": false,
                            "content": { "application/json": { "schema": reference("SequenceSettings") } },
                        },
                    }),
                    create_responses,
                ),
                operation("delete", "Delete it.", json!({ "security": admin_security() }), delete_responses),
            ],
        },
        Endpoint {
            path: "/v2/sequences/{name}/next",
            summary: "The next numbers of a sequence.",
            description: "The next count numbers of the sequence as a JSON array in sequence order, \
                          like /v2/forward. POST does the same as GET. Needs one of PEZ_TOKENS when \
                          that is set."
                .into(),
            path_parameters: vec![name_parameter()],
            operations: vec![
                operation(
                    "get",
                    "Issue count numbers.",
                    json!({ "parameters": next_parameters, "security": dispensing_security() }),
                    next_responses.clone(),
                ),
                operation(
                    "post",
                    "Issue count numbers (as GET).",
                    json!({ "parameters": next_parameters, "security": dispensing_security() }),
                    next_responses,
                ),
            ],
        },
        Endpoint {
            path: "/v2/sequences/{name}/lease",
            summary: "A range lease.",
            description: "A range lease for clients that hand out numbers themselves: count \
                          numbers, durably theirs, as ranges. count is at most the sequence's \
                          largest lease (its max_lease, capped by PEZ_MAX_LEASE). Needs one of \
                          PEZ_LEASE_TOKENS (or the admin token) when that is set; otherwise one of \
                          PEZ_TOKENS when that is set."
                .into(),
            path_parameters: vec![name_parameter()],
            operations: vec![operation(
                "post",
                "Lease count numbers.",
                json!({
                    "parameters": [count_parameter(app.max_lease, "to lease"), format_parameter()],
                    "security": dispensing_security(),
                }),
                lease_responses,
            )],
        },
        Endpoint {
            path: "/v2/sequences/{name}/restart",
            summary: "Restart a sequence.",
            description: "Makes value the next number the sequence issues (like ALTER SEQUENCE ... \
                          RESTART), forward only: a value behind where the sequence stands is \
                          409 unless allow_backward is true. A cycling sequence that has issued \
                          numbers moves ahead only with allow_early_wrap: it then wraps sooner \
                          than a full lap, and the numbers of this lap come back early. Every \
                          instance drops the blocks it holds of it within PEZ_SYNC_INTERVAL_MS \
                          plus one store call. Admin API: needs the admin token."
                .into(),
            path_parameters: vec![name_parameter()],
            operations: vec![operation(
                "post",
                "Restart it.",
                json!({
                    "security": admin_security(),
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": {
                            "type": "object",
                            "required": ["value"],
                            "additionalProperties": false,
                            "properties": {
                                "value": {
                                    "type": "integer",
                                    "minimum": MIN_VALUE,
                                    "maximum": MAX_VALUE,
                                    "description": "Within the sequence's min..max.",
                                },
                                "allow_backward": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "Restart even to numbers handed out already \
                                                    (they will be handed out again).",
                                },
                                "allow_early_wrap": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "Move a cycling sequence that has issued \
                                                    numbers ahead: it wraps sooner than a full \
                                                    lap, and numbers of this lap come back early.",
                                },
                            },
                        } } },
                    },
                }),
                restart_responses,
            )],
        },
        operator("/healthz", "Liveness: the process answers.", json_body("Alive.", json!({
            "type": "object", "required": ["status"], "properties": { "status": { "const": "ok" } },
        })), None),
        operator(
            "/readyz",
            "Readiness: the store answers and every leased sequence has numbers on hand.",
            json_body("Ready.", json!({ "type": "object", "required": ["status"] })),
            Some(problem("Not ready; the problem's reasons say why.")),
        ),
        {
            let mut metrics = operator(
                "/metrics",
                "Prometheus metrics: requests by route and status, numbers issued, leases and \
                 their latency, store errors, numbers on hand, and the fraction of each \
                 sequence's range used. Open while no token is set; once any is, needs the \
                 admin token or one of PEZ_METRICS_TOKENS.",
                json!({ "description": "The Prometheus text format.", "content": { "text/plain": { "schema": { "type": "string" } } } }),
                None,
            );
            for operation in &mut metrics.operations {
                operation.value["responses"]["401"] =
                    problem("Tokens are set, and this is neither the admin token nor a metrics token.");
                operation.value["security"] = dispensing_security();
            }
            metrics
        },
        operator("/version", "The running version.", json_body("The version.", json!({
            "type": "object",
            "required": ["version", "full"],
            "properties": {
                "name": { "type": "string" }, "version": { "type": "string" },
                "git": { "type": "string" }, "full": { "type": "string" },
            },
        })), None),
        operator("/openapi.json", "This document.", json_body("OpenAPI 3.1.", json!({ "type": "object" })), None),
        operator(
            "/",
            "A status page for people: whether the instance is ready, its version, uptime and \
             how many sequences it serves; and each sequence with its next number, direction, \
             mode, range used and rate over the last minute, and where the store is, while no \
             token is set or for the admin token or one of PEZ_METRICS_TOKENS. It reloads itself.",
            json!({ "description": "HTML.", "content": { "text/html": { "schema": { "type": "string" } } } }),
            None,
        ),
    ]
}

fn operator(
    path: &'static str,
    description: &str,
    ok: Value,
    unavailable: Option<Value>,
) -> Endpoint {
    let mut responses = json!({ "200": ok });
    if let Some(unavailable) = unavailable {
        responses["503"] = unavailable;
    }
    Endpoint {
        path,
        summary: "Operations.",
        description: description.to_owned(),
        path_parameters: Vec::new(),
        operations: vec![operation("get", description, json!({}), responses)],
    }
}

fn schemas(app: &App) -> Value {
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
