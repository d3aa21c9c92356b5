//! The OpenAPI 3 document served at `/v1/openapi.json`, built from the same route table the
//! router uses.

use serde_json::{json, Value};

/// `(method, path, summary, request body schema, success status)` for every `/v1` route.
pub const ROUTES: &[(&str, &str, &str, Option<&str>, u16)] = &[
    (
        "post",
        "/v1/execute",
        "Run source once and return its outcome",
        Some("Execute"),
        200,
    ),
    (
        "post",
        "/v1/functions",
        "Deploy (or replace) a named function; its syntax is checked",
        Some("Deploy"),
        201,
    ),
    (
        "get",
        "/v1/functions",
        "List this tenant's functions",
        None,
        200,
    ),
    (
        "get",
        "/v1/functions/{name}",
        "One function, with its source",
        None,
        200,
    ),
    (
        "delete",
        "/v1/functions/{name}",
        "Delete a function",
        None,
        204,
    ),
    (
        "post",
        "/v1/functions/{name}/invoke",
        "Invoke a function with an input",
        Some("Invoke"),
        200,
    ),
    (
        "get",
        "/v1/executions/{id}",
        "A recorded execution and its outcome",
        None,
        200,
    ),
];

fn outcome_schema() -> Value {
    json!({
        "type": "object",
        "required": ["status", "value", "error", "stdout", "stderr", "truncated", "metrics"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "error"]},
            "value": {},
            "error": {"nullable": true, "type": "object", "properties": {
                "kind": {"type": "string", "enum": ["syntax_error", "exception", "timeout", "memory_limit",
                    "stack_overflow", "fuel_exhausted", "result_limit", "not_serializable",
                    "policy_denied", "engine_unavailable", "invalid_request", "internal"]},
                "name": {"type": "string", "nullable": true}, "message": {"type": "string"},
                "stack": {"type": "string", "nullable": true},
                "line": {"type": "integer", "nullable": true}, "column": {"type": "integer", "nullable": true}}},
            "stdout": {"type": "string"}, "stderr": {"type": "string"}, "truncated": {"type": "boolean"},
            "metrics": {"type": "object", "properties": {
                "engine": {"type": "string"}, "wall_us": {"type": "integer"},
                "memory_bytes": {"type": "integer"}, "fuel_used": {"type": "integer", "nullable": true}}}
        }
    })
}

/// The document.
///
/// ```
/// let doc = palisade_server::openapi::document();
/// assert_eq!(doc["openapi"], "3.0.3");
/// assert!(doc["paths"]["/v1/execute"]["post"].is_object());
/// ```
pub fn document() -> Value {
    let common = json!({
        "source": {"type": "string"}, "mode": {"type": "string", "enum": ["script", "module"]},
        "limits": {"type": "object", "description": "memory (bytes), timeout (ms), stack, output, result, fuel; overrides the server defaults field by field"},
        "policy": {"type": "object", "description": "the policy object of the CLI's policy file; overrides the server default field by field"},
        "modules": {"type": "object", "additionalProperties": {"type": "string"}},
        "engine": {"type": "string", "enum": ["quickjs", "wasm", "v8"]}
    });
    let mut execute = common.clone();
    execute["input"] = json!({});
    execute["filename"] = json!({"type": "string"});
    let mut deploy = common;
    deploy["name"] = json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"});
    let error = json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
        "kind": {"type": "string"}, "message": {"type": "string"},
        "line": {"type": "integer"}, "column": {"type": "integer"}}}}});
    let mut paths = serde_json::Map::new();
    for (method, path, summary, body, status) in ROUTES {
        let mut op = json!({
            "summary": summary,
            "security": [{"bearer": []}],
            "responses": {
                status.to_string(): {"description": "success", "content": {"application/json": {"schema":
                    if path.contains("invoke") || path.ends_with("execute") { json!({"$ref": "#/components/schemas/Outcome"}) } else { json!({"type": "object"}) }}}},
                "400": {"description": "malformed or invalid request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "no valid API key"},
                "404": {"description": "not found (or another tenant's)"},
                "413": {"description": "body too large"},
                "429": {"description": "queue full; see Retry-After"}
            }
        });
        if let Some(schema) = body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let params: Vec<Value> = ["name", "id"]
            .iter()
            .filter(|p| path.contains(&format!("{{{p}}}")))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Palisade", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Run untrusted JavaScript in isolated worker processes."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Outcome": outcome_schema(),
                "Error": error,
                "Execute": {"type": "object", "required": ["source"], "additionalProperties": false, "properties": execute},
                "Deploy": {"type": "object", "required": ["name", "source"], "additionalProperties": false, "properties": deploy},
                "Invoke": {"type": "object", "additionalProperties": false, "properties": {"input": {}}}
            }
        }
    })
}
