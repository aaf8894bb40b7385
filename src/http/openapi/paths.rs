//! Every path of the API with its operations, parameters and responses:
//! the table the document and the OPTIONS answers are made from.

use super::parts::{
    Endpoint, admin_errors, admin_security, count_parameter, dispensing_errors,
    dispensing_security, format_parameter, json_body, name_parameter, numbers_content, operation,
    problem,
};
use super::schemas::reference;
use crate::http::app::App;
use crate::sequence::{MAX_VALUE, MIN_VALUE};
use serde_json::{Value, json};

pub(super) fn endpoints(app: &App) -> Vec<Endpoint> {
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
