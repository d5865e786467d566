//! The seams the server plugs into the factory: its tools, its knowledge base and its Secrets.
//!
//! The factory never depends on the server crate. The server implements [`ToolHost`] over its
//! registry, so an agent's tool calls take the same path as an MCP client's (routing, rate
//! limits, time limits, secret scrubbing, output cap, audit), under the identity
//! `agent:<name>`. [`KnowledgeSource`] is where the knowledge base feeds the system prompt, and
//! [`SecretSource`] hands over the API keys and notification credentials it has resolved.

use futures::future::BoxFuture;
use linkmcp_api::{Agent, LinkType, common::SecretKeyRef};
use linkmcp_toolsets::{Access, ToolDef};
use rmcp::model::{CallToolResult, JsonObject, Tool};

/// One tool the host serves, as the factory needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTool {
    /// The MCP description: name, description, input schema, annotations.
    pub tool: Tool,
    /// Whether it reads or writes; write tools never reach a monitor-mode run.
    pub access: Access,
    /// The link type the tool comes from, when it comes from a link. Tool names carry a prefix
    /// that a link may replace (`spec.toolPrefix`), so selection also matches on this.
    pub link_type: Option<LinkType>,
}

impl HostTool {
    /// A tool with no link behind it (a built-in tool).
    pub fn new(tool: Tool, access: Access) -> Self {
        Self {
            tool,
            access,
            link_type: None,
        }
    }

    /// Marks the tool as served for a link of type `link_type`.
    pub fn with_link_type(mut self, link_type: LinkType) -> Self {
        self.link_type = Some(link_type);
        self
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// The tool's description, empty when it has none.
    pub fn description(&self) -> &str {
        self.tool.description.as_deref().unwrap_or("")
    }
}

impl From<&ToolDef> for HostTool {
    fn from(def: &ToolDef) -> Self {
        Self::new(def.tool().clone(), def.access())
    }
}

/// The server's tools, as the agent loop sees them.
///
/// `call` must take the same path as an MCP client's call: the registry's routing, limits,
/// scrubbing and audit, with `identity` (`agent:<name>`) as the client identity. Every failure,
/// including a name that is not registered, is an `isError` result with a message a model can
/// act on.
pub trait ToolHost: Send + Sync {
    /// The tools registered now.
    fn tools(&self) -> Vec<HostTool>;

    /// Calls tool `name` with `args` on behalf of `identity`.
    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        identity: &'a str,
    ) -> BoxFuture<'a, CallToolResult>;
}

/// A piece of knowledge put in front of the model before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeSnippet {
    /// A short title, e.g. the entry's name or the Markdown file's heading.
    pub title: String,
    /// The text given to the model.
    pub text: String,
}

/// Where the server's knowledge base plugs in.
///
/// Before a run, the factory calls [`KnowledgeSource::matching`] with the terms of the task's
/// description (lowercased words, stop words removed, the same terms tool selection uses)
/// and injects the returned snippets, most relevant first, into the system prompt, within a
/// fixed size budget. The knowledge base (McpServer `spec.knowledge`: `knowledge_base.json` and
/// Markdown from git or a ConfigMap) implements this trait; until it does, [`NoKnowledge`]
/// injects nothing.
pub trait KnowledgeSource: Send + Sync {
    /// Snippets relevant to `terms`, most relevant first.
    fn matching(&self, terms: &[String]) -> Vec<KnowledgeSnippet>;
}

/// A knowledge source with no knowledge: runs get no knowledge section.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKnowledge;

impl KnowledgeSource for NoKnowledge {
    fn matching(&self, _terms: &[String]) -> Vec<KnowledgeSnippet> {
        Vec::new()
    }
}

/// The Secret values the factory needs, resolved by the server (from its credentials Secret in
/// a cluster, from the folder's Secrets standalone). Values never leave the factory except
/// towards the service they are for.
pub trait SecretSource: Send + Sync {
    /// The provider API key of `agent`, or `None` when none is configured or it cannot be
    /// found (a run then fails saying which Secret key is missing).
    fn agent_api_key(&self, agent: &Agent) -> Option<String>;

    /// The value of a Secret key named by a notification setting (webhook authorization, email
    /// API key, SMTP username and password).
    fn secret_value(&self, secret_ref: &SecretKeyRef) -> Option<String>;
}

/// A secret source that knows no secrets: for agents and notifications that need none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn agent_api_key(&self, _agent: &Agent) -> Option<String> {
        None
    }

    fn secret_value(&self, _secret_ref: &SecretKeyRef) -> Option<String> {
        None
    }
}
