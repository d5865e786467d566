//! Model providers: one conversation shape, two wire formats.
//!
//! The agent loop speaks [`ChatRequest`] / [`ModelReply`]; [`ModelClient`] turns them into an
//! Anthropic Messages API call or an OpenAI-compatible chat completions call (OpenAI, vLLM,
//! Ollama, ...), sends it with bounded retries ([`retry`]) and reads the reply back. Errors are
//! typed and say what to do; the API key is only ever put in the request header: it is not in
//! `Debug` output, logs or error messages (a provider's own error text is scrubbed of it too).

pub mod anthropic;
pub mod openai;
pub mod retry;

use std::{fmt, time::Duration};

use futures::future::BoxFuture;
use linkmcp_api::agent::{AgentSpec, Provider};
use rmcp::model::JsonObject;
use serde_json::Value;

pub use retry::RetryPolicy;

/// A tool as offered to the model: the name it is called by on the wire, and its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Name on the wire (provider rules: `[A-Za-z0-9_-]{1,64}`).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of its arguments (an object schema).
    pub input_schema: JsonObject,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The provider's id of the call, echoed in its result.
    pub id: String,
    /// The tool's wire name.
    pub name: String,
    /// The arguments as the model wrote them: an object when well formed; anything else (e.g.
    /// unparsable text from an OpenAI-compatible server) is refused with a tool error.
    pub arguments: Value,
}

/// The result of one tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub call_id: String,
    /// The result's text (already capped).
    pub content: String,
    /// Whether the call failed or was refused.
    pub is_error: bool,
}

/// One message of the conversation after the system prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Text from the operator side (the task's kick-off).
    User(String),
    /// A model turn: its text and the tool calls it made.
    Assistant {
        /// Text the model wrote beside its calls (may be empty).
        text: String,
        /// The tool calls.
        tool_calls: Vec<ToolCall>,
    },
    /// Results of the previous turn's tool calls, in the same order.
    ToolResults(Vec<ToolResult>),
}

/// One round trip's input.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The conversation so far.
    pub messages: &'a [Message],
    /// The tools offered.
    pub tools: &'a [ToolSpec],
}

/// Why the model stopped its turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tool results before going on.
    ToolUse,
    /// It hit the output token limit.
    MaxTokens,
    /// It declined to answer (refusal or content filter).
    Refusal,
    /// A reason this client does not know, as the provider spelled it.
    Other(String),
}

/// Tokens of one round trip, or summed over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens, cache reads and writes included.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Adds another round trip's usage.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// One round trip's output.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// The text the model wrote.
    pub text: String,
    /// The tools it wants called.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Tokens used.
    pub usage: Usage,
}

/// A failed model call, after retries.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// 401/403: the key is wrong, revoked or lacks access.
    #[error(
        "the {provider} API refused the API key (HTTP {status}): {message}; check the Secret key named by the Agent's apiKeySecretRef"
    )]
    Unauthorized {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// 429 on every attempt.
    #[error(
        "the {provider} API kept rate limiting the agent (HTTP 429) through {attempts} attempts: {message}; run the task less often or raise the account's rate limit"
    )]
    RateLimited {
        provider: &'static str,
        attempts: u32,
        message: String,
    },
    /// 5xx (or 408) on every attempt.
    #[error(
        "the {provider} API failed with HTTP {status} through {attempts} attempts: {message}; the provider may be down, the task's retries will try again later"
    )]
    Unavailable {
        provider: &'static str,
        status: u16,
        attempts: u32,
        message: String,
    },
    /// No answer within the request timeout on every attempt.
    #[error(
        "the {provider} API did not answer within {timeout:?} through {attempts} attempts; check the network path to {endpoint}"
    )]
    Timeout {
        provider: &'static str,
        timeout: Duration,
        attempts: u32,
        endpoint: String,
    },
    /// The connection could not be made on any attempt.
    #[error(
        "could not reach the {provider} API at {endpoint} through {attempts} attempts: {detail}; check the Agent's baseUrl and the network"
    )]
    Unreachable {
        provider: &'static str,
        endpoint: String,
        attempts: u32,
        detail: String,
    },
    /// Another 4xx: the request itself is wrong (unknown model, bad parameter, ...).
    #[error(
        "the {provider} API rejected the request (HTTP {status}): {message}; check the Agent's model and baseUrl"
    )]
    Rejected {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// A 2xx whose body is not what the API documents.
    #[error("the {provider} API answered with an unexpected body: {detail}")]
    InvalidResponse {
        provider: &'static str,
        detail: String,
    },
}

/// A conversation model: the agent loop's view of a provider.
pub trait ChatModel: Send + Sync {
    /// The model's name, as the provider knows it (used for pricing).
    fn model(&self) -> &str;

    /// One round trip.
    fn complete<'a>(
        &'a self,
        request: ChatRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>>;
}

/// An API key, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A provider client for one Agent.
#[derive(Debug, Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    provider: Provider,
    endpoint: String,
    model: String,
    api_key: Option<ApiKey>,
    max_tokens: u32,
    retry: RetryPolicy,
}

impl ModelClient {
    /// A client for `agent`, sending through `http` (shared, so connections are reused).
    pub fn for_agent(
        http: reqwest::Client,
        agent: &AgentSpec,
        api_key: Option<ApiKey>,
        retry: RetryPolicy,
    ) -> Self {
        let endpoint = match agent.provider {
            Provider::Anthropic => anthropic::endpoint(agent.base_url.as_deref()),
            Provider::OpenaiCompatible => openai::endpoint(agent.base_url.as_deref()),
        };
        Self {
            http,
            provider: agent.provider,
            endpoint,
            model: agent.model.clone(),
            api_key,
            max_tokens: u32::try_from(agent.max_tokens.max(1)).unwrap_or(4096),
            retry,
        }
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn provider_name(&self) -> &'static str {
        match self.provider {
            Provider::Anthropic => "Anthropic",
            Provider::OpenaiCompatible => "OpenAI-compatible",
        }
    }

    async fn complete_inner(&self, request: ChatRequest<'_>) -> Result<ModelReply, ProviderError> {
        let body = match self.provider {
            Provider::Anthropic => anthropic::request_body(&self.model, self.max_tokens, &request),
            Provider::OpenaiCompatible => {
                openai::request_body(&self.model, self.max_tokens, &self.endpoint, &request)
            }
        };
        let build = || {
            let builder = self.http.post(&self.endpoint).json(&body);
            match self.provider {
                Provider::Anthropic => anthropic::authorize(builder, self.api_key.as_ref()),
                Provider::OpenaiCompatible => openai::authorize(builder, self.api_key.as_ref()),
            }
        };
        let scrub = |text: &str| match &self.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "<redacted>"),
            _ => text.to_owned(),
        };
        let target = retry::Target {
            provider: self.provider_name(),
            endpoint: &self.endpoint,
            error_message: match self.provider {
                Provider::Anthropic => anthropic::error_message,
                Provider::OpenaiCompatible => openai::error_message,
            },
            scrub: &scrub,
        };
        let value = retry::send(&self.retry, &target, build).await?;
        let parsed = match self.provider {
            Provider::Anthropic => anthropic::parse_reply(value),
            Provider::OpenaiCompatible => openai::parse_reply(value),
        };
        parsed.map_err(|detail| ProviderError::InvalidResponse {
            provider: self.provider_name(),
            detail: scrub(&detail),
        })
    }
}

impl ChatModel for ModelClient {
    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: ChatRequest<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(self.complete_inner(request))
    }
}

/// `base` without trailing slashes.
fn trim_base(base: &str) -> &str {
    base.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_do_not_show_in_debug_output() {
        let key = ApiKey::new("sk-secret-123");
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        let spec: AgentSpec = serde_json::from_value(serde_json::json!({
            "serverRef": {"name": "s"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let client = ModelClient::for_agent(
            reqwest::Client::new(),
            &spec,
            Some(key),
            RetryPolicy::default(),
        );
        let shown = format!("{client:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert_eq!(client.endpoint(), "https://api.anthropic.com/v1/messages");
    }

    #[test]
    fn usage_adds_up() {
        let mut total = Usage::default();
        total.add(Usage {
            input_tokens: 10,
            output_tokens: 2,
        });
        total.add(Usage {
            input_tokens: 5,
            output_tokens: 1,
        });
        assert_eq!(total.total(), 18);
    }
}
