//! Where the desired state comes from: one interface, two sources.
//!
//! A source turns "what is declared for this McpServer" into a [`DesiredState`] — the server
//! object, its links with their credentials resolved, its agents and tasks — and publishes a
//! new one on a watch channel whenever it changes. In a cluster that is the API server (the
//! server's own CRs and Secret); standalone it is a folder of YAML ([`manifests`]). Nothing
//! downstream of the channel knows which source is in use.

pub mod manifests;

use std::sync::Arc;

use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use linkmcp_toolsets::credentials::Credentials;
use tokio::sync::watch;

/// Everything one McpServer serves, as declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// The McpServer object: the server's settings.
    pub server: Option<McpServer>,
    /// Its McpLinks, by name.
    pub links: Vec<LinkState>,
    /// Its Agents.
    pub agents: Vec<Agent>,
    /// Its AiTasks.
    pub tasks: Vec<AiTask>,
    /// Its API keys (key id -> key), when `spec.auth.apiKeys` names a Secret.
    pub api_keys: Credentials,
}

/// One McpLink with what the source resolved for it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkState {
    /// The link as declared.
    pub link: McpLink,
    /// Its credentials; empty when it names none.
    pub credentials: Credentials,
    /// Why the link cannot be served, in words a person can act on (a missing Secret or key,
    /// an invalid spec). Such a link contributes no tools.
    pub problem: Option<String>,
}

impl LinkState {
    /// The link's name.
    pub fn name(&self) -> &str {
        self.link.metadata.name.as_deref().unwrap_or_default()
    }
}

/// The receiving end of a source: the latest state, and a signal on every change.
pub type StateReceiver = watch::Receiver<Arc<DesiredState>>;
