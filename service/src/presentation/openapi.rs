//! The OpenAPI 3.1 document served at `/openapi.json`. It is written by hand
//! and held to the router by a test: every entry of `routes::ROUTES` is
//! documented and every documented operation is routed.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn id_parameter() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

/// The document.
pub fn document() -> Value {
    let mut document = operations();
    add_layer_responses(&mut document);
    document
}

/// Responses every operation can get from the middleware, whatever its
/// handler does: added to each operation that does not name them itself.
fn add_layer_responses(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        // The probes are exempt from the rate limit.
        let limited = !matches!(path.as_str(), "/healthz" | "/readyz");
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation["responses"].as_object_mut() else {
                continue;
            };
            let mut add = |code: &str, description: &str| {
                responses
                    .entry(code.to_owned())
                    .or_insert_with(|| error_response(description));
            };
            if secured {
                add("401", "not authenticated");
                add(
                    "503",
                    "the signing keys could not be fetched, or the deadline passed",
                );
            }
            add("413", "body too large");
            add("431", "request headers too large");
            add("500", "internal error (details are logged, never sent)");
            add("503", "the request deadline passed");
            if limited {
                add("429", "rate limited; see `Retry-After`");
            }
            if has_body {
                add("415", "not JSON");
                add("422", "unknown or mistyped fields");
            }
        }
    }
}

/// The operations, each with the responses its handler gives.
fn operations() -> Value {
    let message_body = json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/MessageInput" } } }
    });
    let message = json!({
        "description": "the message",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Message" } } }
    });
    let secured = json!([{ "bearer": [] }, { "cookie": [] }]);

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis reference service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A user's messages behind layered defences. Every error is `Error` JSON with a stable code and the request id."
        },
        "paths": {
            "/healthz": { "get": { "operationId": "healthz", "security": [], "responses": { "200": { "description": "alive" } } } },
            "/readyz": { "get": { "operationId": "readyz", "security": [], "responses": {
                "200": { "description": "ready" }, "503": error_response("storage or keys unavailable") } } },
            "/openapi.json": { "get": { "operationId": "openapi", "security": [], "responses": { "200": { "description": "this document" } } } },
            "/api/v1/csrf": { "get": { "operationId": "issueCsrf", "security": [], "responses": {
                "200": { "description": "a CSRF token, also set as the `csrf_token` cookie; send it back in `X-CSRF-Token`" } } } },
            "/api/v1/session": {
                "post": { "operationId": "createSession", "security": [{ "bearer": [] }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SessionInput" } } } },
                    "responses": { "204": { "description": "`access_token` (and `refresh_token`) cookies set" },
                        "400": error_response("token not sent as a bearer header"), "401": error_response("token refused") } },
                "delete": { "operationId": "deleteSession", "security": secured, "responses": {
                    "204": { "description": "session cookies cleared" }, "401": error_response("not authenticated") } }
            },
            "/api/v1/messages": {
                "get": { "operationId": "listMessages", "security": secured,
                    "parameters": [
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } },
                        { "name": "after", "in": "query", "schema": { "type": "string", "format": "uuid" } }
                    ],
                    "responses": { "200": { "description": "a page", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Page" } } } },
                        "400": error_response("invalid query"), "401": error_response("not authenticated"), "429": error_response("rate limited") } },
                "post": { "operationId": "createMessage", "security": secured, "requestBody": message_body,
                    "responses": { "201": message, "400": error_response("malformed JSON or invalid body"), "401": error_response("not authenticated"),
                        "403": error_response("CSRF check failed"), "413": error_response("body too large"), "415": error_response("not JSON"),
                        "422": error_response("unknown or mistyped fields"), "429": error_response("rate limited") } }
            },
            "/api/v1/messages/{id}": {
                "get": { "operationId": "readMessage", "security": secured, "parameters": [id_parameter()],
                    "responses": { "200": message, "400": error_response("invalid id"), "401": error_response("not authenticated"),
                        "404": error_response("no such message of the caller") } },
                "put": { "operationId": "updateMessage", "security": secured, "parameters": [id_parameter()], "requestBody": message_body,
                    "responses": { "200": message, "400": error_response("invalid id or body"), "401": error_response("not authenticated"),
                        "403": error_response("CSRF check failed"), "404": error_response("no such message of the caller") } },
                "delete": { "operationId": "deleteMessage", "security": secured, "parameters": [id_parameter()],
                    "responses": { "204": { "description": "deleted" }, "401": error_response("not authenticated"),
                        "403": error_response("CSRF check failed"), "404": error_response("no such message of the caller") } }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256)" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": "access_token" }
            },
            "schemas": {
                "MessageInput": { "type": "object", "additionalProperties": false, "required": ["body"],
                    "properties": { "body": { "type": "string", "minLength": 1, "maxLength": 4000 } } },
                "SessionInput": { "type": "object", "additionalProperties": false,
                    "properties": { "refresh_token": { "type": "string", "maxLength": 4096 } } },
                "Message": { "type": "object", "required": ["id", "body", "created_at", "updated_at"], "properties": {
                    "id": { "type": "string", "format": "uuid" }, "body": { "type": "string" },
                    "created_at": { "type": "string", "format": "date-time" }, "updated_at": { "type": "string", "format": "date-time" } } },
                "Page": { "type": "object", "required": ["items", "next"], "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/Message" } },
                    "next": { "type": ["string", "null"], "format": "uuid" } } },
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object",
                    "required": ["code", "message", "request_id"], "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" }, "request_id": { "type": "string" } } } } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presentation::routes::ROUTES;

    #[test]
    fn every_operation_lists_what_the_middleware_can_answer() {
        let document = document();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let responses = &operation["responses"];
                for code in ["413", "431", "500", "503"] {
                    assert!(
                        responses.get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
                let limited = !matches!(path.as_str(), "/healthz" | "/readyz");
                assert_eq!(responses.get("429").is_some(), limited, "{method} {path}");
            }
        }
        let update = &document["paths"]["/api/v1/messages/{id}"]["put"]["responses"];
        for code in ["401", "403", "404", "413", "415", "422", "429"] {
            assert!(update.get(code).is_some(), "PUT lacks {code}");
        }
    }

    #[test]
    fn documents_exactly_the_routes() {
        let document = document();
        let mut documented = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routed: Vec<_> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
    }
}
