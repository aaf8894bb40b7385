//! The API's description: one document, built here from the same table the
//! OPTIONS answers come from, served at /openapi.json (OpenAPI 3.1). Tests
//! walk it against the live server (and schemathesis in CI checks every
//! response against it), so it cannot drift from what the routes do.
//!
//! [`paths`] is the table of endpoints, built from the [`parts`] they share;
//! [`schemas`] the component schemas; [`options`] the OPTIONS answers.
//! The route that serves the document is `http::ops`.

pub mod options;
mod parts;
mod paths;
mod schemas;

use super::app::App;
use paths::endpoints;
use schemas::schemas;
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
        item.insert("options".into(), parts::options_operation());
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
