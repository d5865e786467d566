//! OpenAI-compatible chat completions (`POST {baseUrl}/chat/completions`): OpenAI, vLLM,
//! Ollama and the many servers that copy the API.
//!
//! Tools go in `tools` as `function` entries with JSON Schema `parameters`; the model's calls
//! come back in `message.tool_calls` with their arguments as a JSON string, and results go in
//! as `tool` messages (the API has no error flag, so a failed call's text starts with `ERROR:`).
//! Authentication is `Authorization: Bearer <key>`, left out for local servers without a key.

use reqwest::RequestBuilder;
use serde_json::{Value, json};

use super::{ApiKey, ChatRequest, Message, ModelReply, StopReason, ToolCall, Usage, trim_base};

/// The public API, used when the Agent names no `baseUrl`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The chat completions endpoint under `base_url` (the SDKs' convention: a base ending in
/// `/v1`, e.g. `http://ollama:11434/v1`).
pub fn endpoint(base_url: Option<&str>) -> String {
    format!(
        "{}/chat/completions",
        trim_base(base_url.unwrap_or(DEFAULT_BASE_URL))
    )
}

/// Adds the bearer key, when there is one.
pub(crate) fn authorize(builder: RequestBuilder, key: Option<&ApiKey>) -> RequestBuilder {
    match key {
        Some(key) => builder.bearer_auth(key.expose()),
        None => builder,
    }
}

/// The request body for one round trip.
///
/// OpenAI's own API takes the output limit as `max_completion_tokens` (its reasoning models
/// refuse `max_tokens`); compatible servers such as vLLM and Ollama read `max_tokens`.
pub fn request_body(
    model: &str,
    max_tokens: u32,
    endpoint: &str,
    request: &ChatRequest<'_>,
) -> Value {
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    for message in request.messages {
        match message {
            Message::User(text) => messages.push(json!({"role": "user", "content": text})),
            Message::Assistant { text, tool_calls } => {
                let mut m = json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { json!(text) },
                });
                if !tool_calls.is_empty() {
                    m["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| {
                            let arguments = match &c.arguments {
                                Value::String(raw) => raw.clone(),
                                other => other.to_string(),
                            };
                            json!({
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": arguments},
                            })
                        })
                        .collect();
                }
                messages.push(m);
            }
            Message::ToolResults(results) => {
                for r in results {
                    let content = if r.is_error {
                        format!("ERROR: {}", r.content)
                    } else {
                        r.content.clone()
                    };
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": r.call_id,
                        "content": content,
                    }));
                }
            }
        }
    }
    let limit_field = if endpoint.starts_with("https://api.openai.com/") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let mut body = json!({"model": model, "messages": messages});
    body[limit_field] = json!(max_tokens);
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                })
            })
            .collect();
    }
    body
}

/// Reads a reply body.
pub fn parse_reply(body: Value) -> Result<ModelReply, String> {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or("no `choices`")?;
    let message = choice.get("message").ok_or("the choice has no `message`")?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut tool_calls = Vec::new();
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or("a tool call has no `id`")?;
        let function = call
            .get("function")
            .ok_or("a tool call has no `function`")?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a tool call has no function `name`")?;
        let arguments = match function.get("arguments") {
            // The documented form: a string holding JSON, possibly empty for no arguments.
            Some(Value::String(raw)) if raw.trim().is_empty() => json!({}),
            Some(Value::String(raw)) => {
                serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()))
            }
            // Some compatible servers send the object itself.
            Some(other) => other.clone(),
            None => json!({}),
        };
        tool_calls.push(ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments,
        });
    }
    let stop = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") => StopReason::EndTurn,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::Refusal,
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
        text,
        tool_calls,
        stop,
        usage: Usage {
            input_tokens: count("prompt_tokens"),
            output_tokens: count("completion_tokens"),
        },
    })
}

/// The message of an error body (`{"error": {"message", "type", "code"}}`; some servers send
/// `{"error": "text"}`).
pub fn error_message(body: &Value) -> Option<String> {
    match body.get("error")? {
        Value::String(message) => Some(message.clone()),
        error => {
            let message = error.get("message")?.as_str()?;
            Some(match error.get("type").and_then(Value::as_str) {
                Some(kind) if !kind.is_empty() => format!("{kind}: {message}"),
                _ => message.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ToolResult, ToolSpec};

    #[test]
    fn the_endpoint_follows_the_base_url() {
        assert_eq!(endpoint(None), "https://api.openai.com/v1/chat/completions");
        assert_eq!(
            endpoint(Some("http://ollama:11434/v1/")),
            "http://ollama:11434/v1/chat/completions"
        );
    }

    #[test]
    fn a_conversation_becomes_chat_messages_with_tool_calls() {
        let schema = json!({"type": "object"});
        let tools = [ToolSpec {
            name: "rmq_list_queues".into(),
            description: "List queues.".into(),
            input_schema: schema.as_object().cloned().unwrap_or_default(),
        }];
        let messages = [
            Message::User("go".into()),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "rmq_list_queues".into(),
                    arguments: json!({"vhost": "/"}),
                }],
            },
            Message::ToolResults(vec![ToolResult {
                call_id: "call_1".into(),
                content: "no such vhost".into(),
                is_error: true,
            }]),
        ];
        let request = ChatRequest {
            system: "sys",
            messages: &messages,
            tools: &tools,
        };
        let body = request_body(
            "llama3",
            256,
            "http://vllm:8000/v1/chat/completions",
            &request,
        );
        assert_eq!(
            body,
            json!({
                "model": "llama3",
                "max_tokens": 256,
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "rmq_list_queues", "arguments": "{\"vhost\":\"/\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "ERROR: no such vhost"}
                ],
                "tools": [{"type": "function", "function": {
                    "name": "rmq_list_queues", "description": "List queues.", "parameters": schema
                }}]
            })
        );
        let official = request_body("gpt-5", 256, &endpoint(None), &request);
        assert_eq!(official["max_completion_tokens"], 256);
        assert!(official.get("max_tokens").is_none());
    }

    #[test]
    fn replies_give_text_calls_stop_reason_and_usage() {
        let reply = parse_reply(json!({
            "choices": [{
                "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{\"x\": 1}"}},
                    {"id": "c2", "type": "function", "function": {"name": "b", "arguments": ""}},
                    {"id": "c3", "type": "function", "function": {"name": "c", "arguments": "{oops"}}
                ]},
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(reply.text, "");
        assert_eq!(reply.tool_calls[0].arguments, json!({"x": 1}));
        assert_eq!(reply.tool_calls[1].arguments, json!({}));
        assert_eq!(reply.tool_calls[2].arguments, json!("{oops"));
        assert_eq!(
            reply.usage,
            Usage {
                input_tokens: 50,
                output_tokens: 5
            }
        );
        assert!(parse_reply(json!({"choices": []})).is_err());
    }

    #[test]
    fn error_bodies_give_their_message() {
        let body =
            json!({"error": {"message": "model not found", "type": "invalid_request_error"}});
        assert_eq!(
            error_message(&body).as_deref(),
            Some("invalid_request_error: model not found")
        );
        assert_eq!(
            error_message(&json!({"error": "busy"})).as_deref(),
            Some("busy")
        );
    }
}
