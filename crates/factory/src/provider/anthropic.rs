//! The Anthropic Messages API (`POST /v1/messages`).
//!
//! Tools go in `tools` with an `input_schema`; the model's calls come back as `tool_use` content
//! blocks and their results go in as `tool_result` blocks of the next user message, with
//! `is_error` for failed or refused calls. Authentication is the `x-api-key` header with
//! `anthropic-version: 2023-06-01`.

use reqwest::RequestBuilder;
use serde_json::{Value, json};

use super::{ApiKey, ChatRequest, Message, ModelReply, StopReason, ToolCall, Usage, trim_base};

/// The public API, used when the Agent names no `baseUrl`.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The messages endpoint under `base_url` (the SDKs' convention: a base without `/v1`).
pub fn endpoint(base_url: Option<&str>) -> String {
    format!(
        "{}/v1/messages",
        trim_base(base_url.unwrap_or(DEFAULT_BASE_URL))
    )
}

/// Adds the authentication and version headers.
pub(crate) fn authorize(builder: RequestBuilder, key: Option<&ApiKey>) -> RequestBuilder {
    let builder = builder.header("anthropic-version", API_VERSION);
    match key {
        Some(key) => builder.header("x-api-key", key.expose()),
        None => builder,
    }
}

/// The request body for one round trip.
pub fn request_body(model: &str, max_tokens: u32, request: &ChatRequest<'_>) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|message| match message {
            Message::User(text) => json!({"role": "user", "content": text}),
            Message::Assistant { text, tool_calls } => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    let input = match &call.arguments {
                        Value::Object(_) => call.arguments.clone(),
                        _ => json!({}),
                    };
                    content.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": input,
                    }));
                }
                json!({"role": "assistant", "content": content})
            }
            Message::ToolResults(results) => {
                let content: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        json!({
                            "type": "tool_result",
                            "tool_use_id": r.call_id,
                            "content": r.content,
                            "is_error": r.is_error,
                        })
                    })
                    .collect();
                json!({"role": "user", "content": content})
            }
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "system": request.system,
        "messages": messages,
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.input_schema,
                })
            })
            .collect();
    }
    body
}

/// Reads a reply body.
pub fn parse_reply(body: Value) -> Result<ModelReply, String> {
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no `content` array")?;
    let mut text = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    text.push(t.to_owned());
                }
            }
            Some("tool_use") => {
                let id = block
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or("a tool_use block has no `id`")?;
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("a tool_use block has no `name`")?;
                tool_calls.push(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: block.get("input").cloned().unwrap_or(json!({})),
                });
            }
            // Thinking and other block kinds carry nothing the loop acts on.
            _ => {}
        }
    }
    let stop = match body.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("refusal") => StopReason::Refusal,
        Some(other) => StopReason::Other(other.to_owned()),
        None => StopReason::Other("none".to_owned()),
    };
    let usage = body.get("usage");
    let count = |field: &str| {
        usage
            .and_then(|u| u.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(ModelReply {
        text: text.join("\n"),
        tool_calls,
        stop,
        usage: Usage {
            input_tokens: count("input_tokens")
                + count("cache_creation_input_tokens")
                + count("cache_read_input_tokens"),
            output_tokens: count("output_tokens"),
        },
    })
}

/// The message of an error body (`{"type": "error", "error": {"type", "message"}}`).
pub fn error_message(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    let message = error.get("message")?.as_str()?;
    Some(match error.get("type").and_then(Value::as_str) {
        Some(kind) => format!("{kind}: {message}"),
        None => message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ToolResult, ToolSpec};

    #[test]
    fn the_endpoint_follows_the_base_url() {
        assert_eq!(endpoint(None), "https://api.anthropic.com/v1/messages");
        assert_eq!(
            endpoint(Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9/v1/messages"
        );
    }

    #[test]
    fn a_conversation_becomes_messages_with_tool_blocks() {
        let schema = json!({"type": "object", "properties": {"sql": {"type": "string"}}});
        let tools = [ToolSpec {
            name: "pg_query".into(),
            description: "Run a query.".into(),
            input_schema: schema.as_object().cloned().unwrap_or_default(),
        }];
        let messages = [
            Message::User("go".into()),
            Message::Assistant {
                text: "Looking.".into(),
                tool_calls: vec![ToolCall {
                    id: "tu_1".into(),
                    name: "pg_query".into(),
                    arguments: json!({"sql": "select 1"}),
                }],
            },
            Message::ToolResults(vec![ToolResult {
                call_id: "tu_1".into(),
                content: "1 row".into(),
                is_error: false,
            }]),
        ];
        let body = request_body(
            "claude-haiku-4-5",
            512,
            &ChatRequest {
                system: "sys",
                messages: &messages,
                tools: &tools,
            },
        );
        assert_eq!(
            body,
            json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 512,
                "system": "sys",
                "messages": [
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "Looking."},
                        {"type": "tool_use", "id": "tu_1", "name": "pg_query", "input": {"sql": "select 1"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "tu_1", "content": "1 row", "is_error": false}
                    ]}
                ],
                "tools": [{"name": "pg_query", "description": "Run a query.", "input_schema": schema}]
            })
        );
    }

    #[test]
    fn replies_give_text_calls_stop_reason_and_usage() {
        let reply = parse_reply(json!({
            "type": "message",
            "content": [
                {"type": "thinking", "thinking": "..."},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "tu_9", "name": "prom_query", "input": {"query": "up"}}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 100, "cache_read_input_tokens": 20, "output_tokens": 7}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.text, "Let me check.");
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.tool_calls[0].name, "prom_query");
        assert_eq!(reply.tool_calls[0].arguments, json!({"query": "up"}));
        assert_eq!(
            reply.usage,
            Usage {
                input_tokens: 120,
                output_tokens: 7
            }
        );
        assert!(parse_reply(json!({"type": "message"})).is_err());
        let refused = parse_reply(json!({"content": [], "stop_reason": "refusal"}));
        assert_eq!(refused.map(|r| r.stop).ok(), Some(StopReason::Refusal));
    }

    #[test]
    fn error_bodies_give_their_message() {
        let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(
            error_message(&body).as_deref(),
            Some("overloaded_error: Overloaded")
        );
        assert_eq!(error_message(&json!({"detail": "x"})), None);
    }
}
