//! A scripted model server speaking the Anthropic Messages API (`POST /v1/messages`), for the
//! AiTask test: the server process calls it as an Agent's `baseUrl`.
//!
//! Its script is a function of the conversation, not a queue, so every run of a task on a
//! schedule gets the same two turns: a request without a tool result is answered with one
//! `tool_use` block (the scripted call); a request carrying a tool result is answered with the
//! final text. Every request is recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A request the model server received.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The `x-api-key` header, if any.
    pub api_key: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// A `tool_result` block a request carried back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResultBlock {
    /// The `tool_use_id` it answers.
    pub tool_use_id: String,
    /// Its content as text (text blocks joined by newlines).
    pub content: String,
    /// Whether the caller marked it as an error.
    pub is_error: bool,
}

struct Script {
    tool: String,
    input: Value,
    answer: String,
    requests: Mutex<Vec<ModelRequest>>,
}

/// The scripted model server; it serves until the test's runtime ends.
pub struct ScriptedModel {
    /// The address it listens on (all interfaces).
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl ScriptedModel {
    /// Listens on `0.0.0.0` with a free port; asks for `tool` with `input`, then answers
    /// `answer`.
    pub async fn start(tool: &str, input: Value, answer: &str) -> anyhow::Result<Self> {
        let script = Arc::new(Script {
            tool: tool.to_owned(),
            input,
            answer: answer.to_owned(),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/messages", post(reply))
            .with_state(Arc::clone(&script));
        let listener = TcpListener::bind("0.0.0.0:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, script })
    }

    /// The Agent's `baseUrl` for a process on this machine (the client appends `/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ModelRequest> {
        lock(&self.script.requests).clone()
    }

    /// Every `tool_result` block received so far, in order.
    pub fn tool_results(&self) -> Vec<ToolResultBlock> {
        self.requests()
            .iter()
            .flat_map(|r| tool_results(&r.body))
            .collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `tool_result` blocks of the last message of an Anthropic request.
fn tool_results(body: &Value) -> Vec<ToolResultBlock> {
    let Some(last) = body["messages"].as_array().and_then(|m| m.last()) else {
        return Vec::new();
    };
    last["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["type"] == "tool_result")
        .map(|block| ToolResultBlock {
            tool_use_id: block["tool_use_id"].as_str().unwrap_or_default().to_owned(),
            content: match &block["content"] {
                Value::String(text) => text.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            },
            is_error: block["is_error"].as_bool().unwrap_or(false),
        })
        .collect()
}

async fn reply(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "the body is not JSON"}}),
            ),
        )
            .into_response();
    };
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answered = !tool_results(&body).is_empty();
    let model = body["model"].as_str().unwrap_or("scripted").to_owned();
    lock(&script.requests).push(ModelRequest { api_key, body });
    let usage = json!({"input_tokens": 120, "output_tokens": 30});
    let message = if answered {
        json!({
            "id": "msg_scripted_answer", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": script.answer}],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": usage
        })
    } else {
        json!({
            "id": "msg_scripted_call", "type": "message", "role": "assistant", "model": model,
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_scripted_1", "name": script.tool,
                 "input": script.input}
            ],
            "stop_reason": "tool_use", "stop_sequence": null, "usage": usage
        })
    };
    Json(message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_are_read_from_the_last_message() {
        let body = json!({"messages": [
            {"role": "user", "content": "do it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "1 row.\none\n1", "is_error": false},
                {"type": "tool_result", "tool_use_id": "t2",
                 "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "is_error": true}
            ]}
        ]});
        let results = tool_results(&body);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].content, "1 row.\none\n1");
        assert!(!results[0].is_error);
        assert_eq!(results[1].content, "a\nb");
        assert!(results[1].is_error);
        assert!(tool_results(&json!({"messages": [{"role": "user", "content": "x"}]})).is_empty());
    }
}
