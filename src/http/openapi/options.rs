//! The OPTIONS answer of each resource: its entry of the document,
//! flattened for people.

use super::paths::endpoints;
use super::schemas::schemas;
use crate::http::app::App;
use serde_json::{Map, Value, json};

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
