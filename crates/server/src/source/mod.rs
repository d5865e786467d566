//! Where the desired state comes from: one interface, two sources.
//!
//! A source turns "what is declared for this McpServer" into a [`DesiredState`] — the server
//! object, its links with their credentials resolved, its agents and tasks — and publishes a
//! new one on a watch channel whenever it changes. In a cluster that is the API server (the
//! server's own CRs and Secret, [`kube`]); standalone it is a folder of YAML ([`manifests`]).
//! Nothing downstream of the channel knows which source is in use.
//!
//! What both sources decide the same way lives here, once: which objects belong to the server
//! ([`Served`], [`served_by`]), the order they are published in, and the backend check every
//! link gets before its credentials are looked up ([`resolve_link`]).

pub mod kube;
pub mod manifests;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use linkmcp_api::common::CredentialsSecretRef;
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
    /// Its Agents, by name (so "the first enabled agent" is the same in either source).
    pub agents: Vec<Agent>,
    /// Its AiTasks, by name.
    pub tasks: Vec<AiTask>,
    /// Its client API keys (key id -> key), when `spec.auth.apiKeys` names a Secret.
    pub api_keys: Credentials,
    /// The provider API key of each Agent that names one (agent name -> key).
    pub agent_api_keys: Credentials,
    /// Values of Secret keys that notification settings name, keyed by
    /// `names::credentials_key::secret_ref(secret, key)`: standalone every key of the folder's
    /// Secrets in the server's namespace, in a cluster the `ref.*` keys the controller copied.
    pub notification_secrets: Credentials,
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

/// An object that names the McpServer serving it (`spec.serverRef`).
pub trait Served {
    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The name of the McpServer it names.
    fn server_ref(&self) -> &str;

    /// The object's name.
    fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// Whether `server` in `namespace` serves it: the namespace is a trust boundary, so a
    /// reference from another namespace never counts.
    fn is_served_by(&self, server: &str, namespace: &str) -> bool {
        self.server_ref() == server && namespace_of(self.metadata()) == namespace
    }
}

impl Served for McpLink {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn server_ref(&self) -> &str {
        &self.spec.server_ref.name
    }
}

impl Served for Agent {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn server_ref(&self) -> &str {
        &self.spec.server_ref.name
    }
}

impl Served for AiTask {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn server_ref(&self) -> &str {
        &self.spec.server_ref.name
    }
}

/// The objects `server` in `namespace` serves, sorted by name, so a state does not depend on
/// the order files were read or a watch cache was iterated.
pub fn served_by<T: Served>(
    objects: impl IntoIterator<Item = T>,
    server: &str,
    namespace: &str,
) -> Vec<T> {
    let mut served: Vec<T> = objects
        .into_iter()
        .filter(|object| object.is_served_by(server, namespace))
        .collect();
    served.sort_by(|a, b| a.name().cmp(b.name()));
    served
}

/// A link's state: a link whose backend blocks are not exactly one gets that as its problem
/// (the CRD refuses such a spec; manifests are not checked by an API server); otherwise, when
/// it names a credentials Secret, `lookup` finds its credentials or says what is missing.
pub fn resolve_link(
    link: McpLink,
    lookup: impl FnOnce(&McpLink, &CredentialsSecretRef) -> Result<Credentials, String>,
) -> LinkState {
    let mut state = LinkState {
        link,
        credentials: Credentials::default(),
        problem: None,
    };
    if let Err(err) = state.link.spec.backend() {
        state.problem = Some(err.to_string());
        return state;
    }
    let Some(reference) = state.link.spec.credentials_secret() else {
        return state;
    };
    match lookup(&state.link, &reference) {
        Ok(credentials) => state.credentials = credentials,
        Err(problem) => state.problem = Some(problem),
    }
    state
}

/// An object's namespace; one without is in `default`, as `kubectl apply` would put it.
pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// A Secret's `data` (decoded) and `stringData`, the latter winning as in the API server.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    data.extend(secret.string_data.clone().unwrap_or_default());
    data
}
