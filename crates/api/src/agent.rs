//! Agent: an AI model configuration the Dark Factory runs AiTasks with.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{HTTP_URL_MESSAGE, HTTP_URL_RULE, SecretKeyRef, ServerRef};

/// The model an Agent uses when its spec names none.
pub const DEFAULT_MODEL: &str = "claude-haiku-4-5-20251001";

/// An AI model configuration: provider, model, API key and loop bounds.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "linkmcp.io",
    version = "v1alpha1",
    kind = "Agent",
    namespaced,
    derive = "PartialEq",
    status = "AgentStatus",
    shortname = "agt",
    category = "linkmcp",
    doc = "An AI model configuration that runs AiTasks with its server's governed tools.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Enabled", type_ = "boolean", json_path = ".spec.enabled"),
    printcolumn(name = "Tasks", type_ = "integer", json_path = ".status.tasks"),
    printcolumn(name = "Cost", type_ = "string", json_path = ".status.cost"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// The McpServer (same namespace) whose tools and scheduler the agent uses.
    pub server_ref: ServerRef,
    /// API flavour: `anthropic` (Messages API) or `openai-compatible` (chat completions:
    /// OpenAI, vLLM, Ollama, ...).
    #[serde(default)]
    pub provider: Provider,
    /// Model name as the provider knows it.
    #[serde(default = "default_model")]
    #[schemars(length(min = 1, max = 253))]
    pub model: String,
    /// API base URL. Defaults to the provider's public API (`https://api.anthropic.com` or
    /// `https://api.openai.com/v1`); set it for vLLM, Ollama or a proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub base_url: Option<String>,
    /// Secret key holding the provider API key. May be absent for a local model server that
    /// needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Most model round trips in one run before it stops as failed.
    #[serde(default = "default_max_iterations")]
    #[schemars(range(min = 1, max = 100))]
    pub max_iterations: i32,
    /// Most tokens the model may generate per round trip.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 64, max = 200000))]
    pub max_tokens: i32,
    /// Most tools offered to the model per run (the selection keeps the most relevant).
    #[serde(default = "default_max_tools")]
    #[schemars(range(min = 1, max = 128))]
    pub max_tools: i32,
    /// Run this agent's tasks. `false` stops them (running ones finish).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Price override in USD per million tokens, for models missing from the built-in table
    /// or negotiated prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

fn default_model() -> String {
    DEFAULT_MODEL.into()
}
fn default_max_iterations() -> i32 {
    10
}
fn default_max_tokens() -> i32 {
    4096
}
fn default_max_tools() -> i32 {
    24
}
fn default_true() -> bool {
    true
}

/// Model API flavour.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    #[default]
    Anthropic,
    OpenaiCompatible,
}

/// USD per million tokens.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// USD per million input tokens.
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub input_per_million: f64,
    /// USD per million output tokens.
    #[schemars(range(min = 0.0, max = 10000.0))]
    pub output_per_million: f64,
}

/// Observed state of an Agent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and ReferencesResolved (controller); run conditions (server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// AiTasks using this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<i32>,
    /// Runs since the agent was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<i64>,
    /// Input tokens used by all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    /// Output tokens used by all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    /// Total cost of all runs in USD, e.g. `$0.0421`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
}
