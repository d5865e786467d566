//! The OpenAPI 3.1 description of the REST API, built in code next to the handlers it
//! describes.
//!
//! It is served on `GET /api/v1/openapi.json`, and a test compares it with the checked-in
//! `docs/openapi.json` (`UPDATE_OPENAPI=1` rewrites that file), so a change to the API shows
//! up in review. Tool arguments and results are described generically: the tools, and so
//! their input schemas, change at run time; `GET /api/v1/tools` gives each tool's schema.

use serde_json::{Value, json};

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Error")) })
}

/// The responses every protected route may give besides its own.
fn guarded_responses() -> [(&'static str, Value); 2] {
    [
        (
            "401",
            json!({
                "description": "Authentication is required or failed; the WWW-Authenticate \
                                header says why.",
            }),
        ),
        (
            "403",
            error_response(
                "The Host header names a host this server does not answer to, or the caller \
                 lacks a required scope.",
            ),
        ),
    ]
}

fn with_guarded(mut responses: Value) -> Value {
    if let Some(map) = responses.as_object_mut() {
        for (status, response) in guarded_responses() {
            map.insert(status.to_owned(), response);
        }
    }
    responses
}

/// The OpenAPI document of the REST API and `/debug/info`.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "linkmcp server REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "The tools of one McpServer over plain HTTP.",
            "description": "The same tools the server offers over MCP (`/mcp`), for clients \
                that do not speak MCP. A call goes through the same registry as an MCP \
                `tools/call`: the same time limit, output cap, per-tool rate limit, secret \
                scrubbing, error masking and audit log apply. A tool failure is a `200` answer \
                whose result has `isError: true`, with a message a model or a person can act \
                on; HTTP errors are reserved for requests that could not be made at all.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "security": [ { "bearer": [] }, {} ],
        "paths": {
            "/api/v1/tools": {
                "get": {
                    "operationId": "listTools",
                    "summary": "List the tools",
                    "description": "The tools the caller may call (its scopes permitting), \
                        as MCP `tools/list` returns them: name, description, input schema and \
                        annotations.",
                    "responses": with_guarded(json!({
                        "200": {
                            "description": "The tools, sorted by name.",
                            "content": json_content(schema_ref("ToolList")),
                        },
                    })),
                },
            },
            "/api/v1/tools/{name}/call": {
                "post": {
                    "operationId": "callTool",
                    "summary": "Call a tool",
                    "description": "Calls the tool with the request body as its arguments. \
                        The request must carry `Content-Type: application/json`; an empty body \
                        means no arguments.",
                    "parameters": [ {
                        "name": "name",
                        "in": "path",
                        "required": true,
                        "description": "The tool's name, as listed.",
                        "schema": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$" },
                    } ],
                    "requestBody": {
                        "required": false,
                        "description": "The arguments object, valid against the tool's \
                            `inputSchema`.",
                        "content": json_content(json!({
                            "type": "object",
                            "additionalProperties": true,
                        })),
                    },
                    "responses": with_guarded(json!({
                        "200": {
                            "description": "The call's result, including failures of the tool \
                                (`isError: true`): bad arguments, backend errors, a timeout, \
                                the rate limit.",
                            "content": json_content(schema_ref("CallToolResult")),
                        },
                        "400": error_response(
                            "The body is not JSON, or not a JSON object."
                        ),
                        "404": {
                            "description": "No tool has this name.",
                            "content": json_content(schema_ref("UnknownTool")),
                        },
                        "413": error_response("The body exceeds the request size limit."),
                        "415": error_response("The Content-Type is not application/json."),
                    })),
                },
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": with_guarded(json!({
                        "200": {
                            "description": "The OpenAPI 3.1 document of this API.",
                            "content": json_content(json!({ "type": "object" })),
                        },
                    })),
                },
            },
            "/debug/info": {
                "get": {
                    "operationId": "getDebugInfo",
                    "summary": "What this server is serving",
                    "description": "Version, uptime, where the declared state comes from, the \
                        links and tools served, and how clients authenticate. Never a secret.",
                    "responses": with_guarded(json!({
                        "200": {
                            "description": "The server's state.",
                            "content": json_content(schema_ref("DebugInfo")),
                        },
                    })),
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key of the McpServer, or an OIDC access token \
                        (JWT) of its issuer. Not needed when the server allows unauthenticated \
                        access.",
                },
            },
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": { "type": "string", "description": "What went wrong." },
            },
        },
        "UnknownTool": {
            "type": "object",
            "required": ["error", "tool", "available"],
            "properties": {
                "error": { "type": "string" },
                "tool": { "type": "string", "description": "The name asked for." },
                "available": {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "The tools registered, sorted by name.",
                },
            },
        },
        "ToolList": {
            "type": "object",
            "required": ["tools"],
            "properties": {
                "tools": { "type": "array", "items": schema_ref("Tool") },
            },
        },
        "Tool": {
            "type": "object",
            "description": "An MCP tool definition.",
            "required": ["name", "inputSchema"],
            "properties": {
                "name": { "type": "string" },
                "title": { "type": "string" },
                "description": { "type": "string" },
                "inputSchema": {
                    "type": "object",
                    "description": "The JSON Schema of the arguments object.",
                },
                "outputSchema": { "type": "object" },
                "annotations": schema_ref("ToolAnnotations"),
            },
            "additionalProperties": true,
        },
        "ToolAnnotations": {
            "type": "object",
            "properties": {
                "title": { "type": "string" },
                "readOnlyHint": { "type": "boolean" },
                "destructiveHint": { "type": "boolean" },
                "idempotentHint": { "type": "boolean" },
                "openWorldHint": { "type": "boolean" },
            },
        },
        "CallToolResult": {
            "type": "object",
            "description": "An MCP tool result.",
            "required": ["content"],
            "properties": {
                "content": { "type": "array", "items": schema_ref("ContentBlock") },
                "structuredContent": {
                    "description": "The result as data, when the tool returns some.",
                },
                "isError": {
                    "type": "boolean",
                    "description": "Whether the tool failed; `content` then says why.",
                },
                "_meta": {
                    "type": "object",
                    "properties": {
                        "linkmcp.io/truncated": {
                            "type": "boolean",
                            "description": "The text was cut at the output limit; the last \
                                line of the text says so too.",
                        },
                    },
                    "additionalProperties": true,
                },
            },
        },
        "ContentBlock": {
            "type": "object",
            "description": "One piece of content; `text` for type `text`.",
            "required": ["type"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": ["text", "image", "audio", "resource", "resource_link"],
                },
                "text": { "type": "string" },
            },
            "additionalProperties": true,
        },
        "DebugInfo": {
            "type": "object",
            "required": ["name", "version", "uptimeSeconds", "source", "auth", "links", "tools"],
            "properties": {
                "name": { "type": "string", "description": "The server name reported to clients." },
                "version": { "type": "string" },
                "uptimeSeconds": { "type": "integer", "minimum": 0 },
                "source": {
                    "type": "string",
                    "enum": ["manifests", "kubernetes", "none"],
                    "description": "Where the declared state comes from.",
                },
                "auth": {
                    "type": "string",
                    "description": "How clients authenticate: `api-keys`, `oidc`, \
                        `api-keys+oidc`, `unauthenticated`, or `none` (no way in configured).",
                },
                "stateless": { "type": "boolean" },
                "limits": {
                    "type": "object",
                    "properties": {
                        "toolTimeoutSeconds": { "type": "number" },
                        "maxOutputBytes": { "type": "integer" },
                        "callsPerMinutePerTool": { "type": ["integer", "null"] },
                        "maskErrorDetails": { "type": "boolean" },
                    },
                },
                "links": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "toolset", "tools"],
                        "properties": {
                            "name": { "type": "string" },
                            "type": { "type": ["string", "null"] },
                            "write": { "type": "boolean" },
                            "toolset": { "type": "string" },
                            "tools": { "type": "integer", "minimum": 0 },
                            "problem": {
                                "type": ["string", "null"],
                                "description": "Why the link serves no tools.",
                            },
                        },
                    },
                },
                "toolsets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": { "type": "string" },
                            "tools": { "type": "integer", "minimum": 0 },
                        },
                    },
                },
                "tools": { "type": "array", "items": { "type": "string" } },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        fn refs(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
