//! The OpenAPI 3 document served at `/v1/openapi.json`, generated from the code: the paths,
//! methods and responses come from the same route table ([`crate::api::routes`]) the router is
//! built from, and every body schema is derived (with `schemars`) from the Rust type that
//! serializes or deserializes it. A route cannot exist without its entry in the document, and a
//! field cannot change without its schema changing.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// A JSON body's schema, generated into the document's components.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, for a route table entry.
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a response carries.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// JSON of a schema.
    Json(SchemaFn),
    /// Plain text.
    Text,
    /// Prometheus text exposition.
    Prometheus,
    /// Nothing.
    Empty,
}

/// One documented response.
#[derive(Debug, Clone, Copy)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// When it is given.
    pub description: &'static str,
    /// What it carries.
    pub body: Body,
}

/// The document of one route (see [`crate::api::routes`]).
#[derive(Debug, Clone)]
pub struct Operation {
    /// `get`, `post` or `delete`.
    pub method: &'static str,
    /// The path, with `{param}` segments (the router's syntax is the same).
    pub path: &'static str,
    /// A one-line summary.
    pub summary: &'static str,
    /// Whether it needs a bearer API key.
    pub auth: bool,
    /// The JSON request body, if any, and whether it may be empty.
    pub request: Option<(SchemaFn, bool)>,
    /// Every response it can give.
    pub responses: Vec<Response>,
}

/// The error body every failure has: `{"error": {"kind", "message", ...}}`.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// A stable kind: an execution error kind (e.g. `syntax_error` at deploy time), or one of
    /// `invalid_request`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `payload_too_large`, `overloaded`, `internal`.
    pub kind: String,
    /// A human-readable message.
    pub message: String,
    /// 1-based line of a malformed body or a syntax error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column of a malformed body or a syntax error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

/// The document for `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    let mut paths = Map::new();
    for op in operations {
        let mut responses = Map::new();
        for r in &op.responses {
            let mut entry = json!({ "description": r.description });
            let content = match r.body {
                Body::Json(f) => Some(("application/json", f(&mut generator).to_value())),
                Body::Text => Some(("text/plain", json!({"type": "string"}))),
                Body::Prometheus => Some(("text/plain; version=0.0.4", json!({"type": "string"}))),
                Body::Empty => None,
            };
            if let Some((mime, schema)) = content {
                entry["content"] = json!({ mime: { "schema": schema } });
            }
            if r.status == 429 {
                entry["headers"] = json!({"Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"}}});
            }
            responses.insert(r.status.to_string(), entry);
        }
        let mut operation = json!({
            "summary": op.summary,
            "operationId": operation_id(op),
            "responses": responses,
        });
        operation["security"] = if op.auth {
            json!([{"bearer": []}])
        } else {
            json!([])
        };
        if let Some((schema, optional)) = op.request {
            operation["requestBody"] = json!({
                "required": !optional,
                "content": {"application/json": {"schema": schema(&mut generator).to_value()}},
            });
        }
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Palisade",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run untrusted JavaScript in isolated worker processes: deploy functions, \
                invoke them, read back executions.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    })
}

fn operation_id(op: &Operation) -> String {
    let mut id = op.method.to_owned();
    for seg in op.path.split('/').filter(|s| !s.is_empty() && *s != "v1") {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.push_str(&seg.replace('.', "_"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_derived_schemas() {
        let ops = crate::api::routes_doc();
        let doc = document(&ops);
        assert_eq!(doc["openapi"], "3.0.3");
        for op in &ops {
            let o = &doc["paths"][op.path][op.method];
            assert!(o.is_object(), "{} {}", op.method, op.path);
            assert!(o["responses"].as_object().is_some_and(|r| !r.is_empty()));
        }
        let schemas = &doc["components"]["schemas"];
        // Derived from the Rust types, so the contract's fields and kinds are all there.
        assert!(
            schemas["OutcomeRecord"]["properties"]["metrics"].is_object(),
            "{schemas}"
        );
        let kinds = schemas["ErrorKind"]["oneOf"].to_string();
        for kind in palisade::ErrorKind::ALL {
            assert!(kinds.contains(&format!("\"{}\"", kind.as_str())), "{kinds}");
        }
        assert_eq!(schemas["ExecuteBody"]["additionalProperties"], false);
        let text = doc.to_string();
        assert!(
            !text.contains("#/$defs"),
            "refs point into components: {text}"
        );
    }
}
