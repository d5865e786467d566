//! Keeps the registry's link toolsets in step with the desired state.
//!
//! On every new [`DesiredState`] each link is compared with what is registered for it: a new or
//! changed link (spec, credentials or tool prefix) gets its toolset built — off the request
//! path, once per change, never per call — and swapped in atomically; a link that is gone or
//! cannot be served is dropped. Calls already running keep the toolset they started with.
//! What happened to each link is kept in [`LinkStatuses`] for `server_info`, `/debug/info` and
//! the status the server reports.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use linkmcp_api::server::OnDuplicateTools;
use linkmcp_toolsets::link::{self, BuildError, LinkContext, LinkNaming};
use linkmcp_toolsets::{Access, Toolset};

use crate::registry::{Registry, RegistryError, ToolsetKey};
use crate::source::{DesiredState, LinkState, StateReceiver};

/// Builds the toolset of one link; [`link::build`] in the product, a fake in tests.
pub type Builder =
    Arc<dyn Fn(&LinkContext<'_>, &str) -> Result<Arc<dyn Toolset>, BuildError> + Send + Sync>;

/// The product's builder: the toolsets crate's dispatch on link type.
pub fn default_builder() -> Builder {
    Arc::new(|ctx: &LinkContext<'_>, prefix: &str| link::build(ctx, prefix))
}

/// What the server made of one link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    /// The link type (`postgres`, ...), when the spec names exactly one.
    pub r#type: Option<String>,
    /// The tools it contributes, as served.
    pub tools: Vec<String>,
    /// Whether write tools are among them.
    pub write: bool,
    /// Whether its tools are registered.
    pub ready: bool,
    /// Why not, in words a person can act on.
    pub message: Option<String>,
}

/// The status of every link of the server, by name.
#[derive(Debug, Default)]
pub struct LinkStatuses(RwLock<BTreeMap<String, LinkStatus>>);

impl LinkStatuses {
    /// A copy of the current statuses.
    pub fn get(&self) -> BTreeMap<String, LinkStatus> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, statuses: BTreeMap<String, LinkStatus>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = statuses;
    }
}

/// The registered toolset of a link and the fingerprint of what it was built from.
struct Registered {
    fingerprint: u64,
    status: LinkStatus,
}

/// Applies desired states to a registry, remembering what it registered.
pub struct LinkSync {
    registry: Arc<Registry>,
    builder: Builder,
    statuses: Arc<LinkStatuses>,
    registered: HashMap<String, Registered>,
}

impl LinkSync {
    /// A sync of `registry` building toolsets with `builder`.
    pub fn new(registry: Arc<Registry>, builder: Builder, statuses: Arc<LinkStatuses>) -> Self {
        Self {
            registry,
            builder,
            statuses,
            registered: HashMap::new(),
        }
    }

    /// Brings the registry in step with `state`.
    pub fn apply(&mut self, state: &DesiredState) {
        let policy = state
            .server
            .as_ref()
            .map(|s| s.spec.on_duplicate_tools)
            .unwrap_or_default();
        self.registry.set_duplicate_policy(policy);

        let naming: Vec<LinkNaming<'_>> = state
            .links
            .iter()
            .filter_map(|l| {
                Some(LinkNaming {
                    name: l.name(),
                    link_type: l.link.spec.backend().ok()?.link_type(),
                    tool_prefix: l.link.spec.tool_prefix.as_deref(),
                    created: l.link.metadata.creation_timestamp.as_ref(),
                })
            })
            .collect();
        let prefixes = link::prefixes(&naming);

        // Links that are gone go first, so the names they free are there for the others.
        let gone: Vec<String> = self
            .registered
            .keys()
            .filter(|name| !state.links.iter().any(|l| l.name() == name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.registered.remove(&name);
            self.registry.remove(&ToolsetKey::link(&name));
        }
        let mut statuses = BTreeMap::new();
        for link_state in &state.links {
            let name = link_state.name().to_owned();
            let prefix = prefixes.get(&name).map(String::as_str).unwrap_or_default();
            let status = self.apply_link(link_state, prefix, policy);
            statuses.insert(name, status);
        }
        self.statuses.set(statuses);
    }

    fn apply_link(
        &mut self,
        state: &LinkState,
        prefix: &str,
        policy: OnDuplicateTools,
    ) -> LinkStatus {
        let name = state.name();
        let key = ToolsetKey::link(name);
        let link_type = state
            .link
            .spec
            .backend()
            .ok()
            .map(|b| b.link_type().to_string());
        let fingerprint = fingerprint(state, prefix, policy);
        // A link that failed is tried again on every change: a clash or a missing toolset
        // may be gone now that another link changed.
        if let Some(done) = self.registered.get(name)
            && done.fingerprint == fingerprint
            && done.status.ready
        {
            return done.status.clone();
        }

        let failed = |message: String| LinkStatus {
            r#type: link_type.clone(),
            tools: Vec::new(),
            write: false,
            ready: false,
            message: Some(message),
        };
        let status = if let Some(problem) = &state.problem {
            self.registry.remove(&key);
            failed(problem.clone())
        } else {
            let namespace = state
                .link
                .metadata
                .namespace
                .as_deref()
                .unwrap_or("default");
            let ctx = LinkContext {
                name,
                namespace,
                spec: &state.link.spec,
                credentials: &state.credentials,
            };
            match (self.builder)(&ctx, prefix) {
                Err(err) => {
                    self.registry.remove(&key);
                    failed(err.to_string())
                }
                Ok(toolset) => {
                    let tools: Vec<String> = toolset
                        .tools()
                        .iter()
                        .map(|d| d.name().to_owned())
                        .collect();
                    let write = toolset.tools().iter().any(|d| d.access() == Access::Write);
                    match self.registry.insert(key.clone(), toolset) {
                        Ok(()) => LinkStatus {
                            r#type: link_type.clone(),
                            tools,
                            write,
                            ready: true,
                            message: None,
                        },
                        Err(RegistryError::Duplicate {
                            kind, name, owner, ..
                        }) => {
                            self.registry.remove(&key);
                            failed(format!(
                                "{kind} {name} is already served by {owner}; set spec.toolPrefix \
                                 on one of the two links (the server's onDuplicateTools is error)"
                            ))
                        }
                        Err(err) => {
                            self.registry.remove(&key);
                            failed(err.to_string())
                        }
                    }
                }
            }
        };
        if let Some(message) = &status.message {
            tracing::warn!(link = name, problem = %message, "link not served");
        }
        self.registered.insert(
            name.to_owned(),
            Registered {
                fingerprint,
                status: status.clone(),
            },
        );
        status
    }
}

/// What a link's toolset is built from; any change rebuilds it.
fn fingerprint(state: &LinkState, prefix: &str, policy: OnDuplicateTools) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&state.link.spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    for name in state.credentials.names() {
        name.hash(&mut hasher);
        state.credentials.get(name).hash(&mut hasher);
    }
    state.problem.hash(&mut hasher);
    prefix.hash(&mut hasher);
    (policy as u8).hash(&mut hasher);
    hasher.finish()
}

/// Applies every state `source` publishes until it closes.
pub async fn follow(mut sync: LinkSync, mut source: StateReceiver) {
    loop {
        let state = source.borrow_and_update().clone();
        sync.apply(&state);
        if source.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::future::BoxFuture;
    use linkmcp_api::McpLink;
    use linkmcp_toolsets::credentials::Credentials;
    use linkmcp_toolsets::link::Governed;
    use linkmcp_toolsets::{CallContext, NoArgs, ToolDef, output};
    use rmcp::model::{CallToolResult, JsonObject};

    use super::*;

    /// A backend with one read and one write tool under the link type's default prefix.
    struct Fake(Vec<ToolDef>);

    impl Toolset for Fake {
        fn tools(&self) -> &[ToolDef] {
            &self.0
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _: JsonObject,
            _: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async move { output::ok_text(name.to_owned()) })
        }
    }

    fn fake_builder() -> Builder {
        Arc::new(|ctx: &LinkContext<'_>, prefix: &str| {
            let backend = ctx.spec.backend()?;
            let base = link::default_prefix(backend.link_type());
            let fake = Arc::new(Fake(vec![
                ToolDef::read::<NoArgs>(format!("{base}_query"), "Query the backend.").unwrap(),
                ToolDef::write::<NoArgs>(format!("{base}_execute"), "Change the backend.").unwrap(),
            ]));
            Ok(Arc::new(Governed::new(
                fake,
                base,
                prefix,
                &ctx.spec.tools,
                ctx.spec.write_access,
            )?) as Arc<dyn Toolset>)
        })
    }

    fn link(name: &str, yaml_spec: &str) -> LinkState {
        let link: McpLink = serde_yaml::from_str(&format!(
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: {name}}}\nspec:\n  serverRef: {{name: s}}\n{yaml_spec}"
        ))
        .unwrap();
        LinkState {
            link,
            credentials: Credentials::default(),
            problem: None,
        }
    }

    fn state(links: Vec<LinkState>) -> DesiredState {
        DesiredState {
            links,
            ..DesiredState::default()
        }
    }

    fn sync() -> (LinkSync, Arc<Registry>, Arc<LinkStatuses>) {
        let registry = Arc::new(Registry::new());
        let statuses = Arc::new(LinkStatuses::default());
        (
            LinkSync::new(registry.clone(), fake_builder(), statuses.clone()),
            registry,
            statuses,
        )
    }

    fn tool_names(registry: &Registry) -> Vec<String> {
        registry.list().iter().map(|t| t.name.to_string()).collect()
    }

    #[test]
    fn links_come_and_go() {
        let (mut sync, registry, statuses) = sync();
        sync.apply(&state(vec![link(
            "a",
            "  postgres: {host: h, database: d}\n",
        )]));
        assert_eq!(tool_names(&registry), ["pg_query"]);
        assert_eq!(statuses.get()["a"].tools, ["pg_query"]);
        assert!(statuses.get()["a"].ready);
        sync.apply(&state(vec![]));
        assert!(tool_names(&registry).is_empty());
        assert!(statuses.get().is_empty());
    }

    #[test]
    fn write_tools_follow_write_access() {
        let (mut sync, registry, statuses) = sync();
        sync.apply(&state(vec![link(
            "a",
            "  postgres: {host: h, database: d}\n  writeAccess: true\n",
        )]));
        assert_eq!(tool_names(&registry), ["pg_execute", "pg_query"]);
        assert!(statuses.get()["a"].write);
        sync.apply(&state(vec![link(
            "a",
            "  postgres: {host: h, database: d}\n",
        )]));
        assert_eq!(tool_names(&registry), ["pg_query"]);
    }

    #[test]
    fn an_unchanged_state_changes_nothing() {
        let (mut sync, registry, _) = sync();
        let desired = state(vec![link("a", "  postgres: {host: h, database: d}\n")]);
        sync.apply(&desired);
        let generation = registry.snapshot().generation();
        sync.apply(&desired);
        assert_eq!(registry.snapshot().generation(), generation);
    }

    #[test]
    fn two_links_of_one_type_get_distinct_names() {
        let (mut sync, registry, _) = sync();
        sync.apply(&state(vec![
            link("a", "  postgres: {host: h, database: d}\n"),
            link("b", "  postgres: {host: h, database: d}\n"),
            link(
                "c",
                "  postgres: {host: h, database: d}\n  toolPrefix: orders\n",
            ),
        ]));
        assert_eq!(
            tool_names(&registry),
            ["orders_query", "pg_b_query", "pg_query"]
        );
    }

    #[test]
    fn a_clash_under_the_error_policy_is_reported_and_retried() {
        let (mut sync, registry, statuses) = sync();
        let a = link("a", "  postgres: {host: h, database: d}\n  toolPrefix: x\n");
        let b = link("b", "  valkey: {host: h}\n  toolPrefix: x\n");
        sync.apply(&state(vec![a.clone(), b.clone()]));
        assert_eq!(tool_names(&registry), ["x_query"]);
        let b_status = &statuses.get()["b"];
        assert!(!b_status.ready);
        let message = b_status.message.clone().unwrap();
        assert!(
            message.contains("tool x_query is already served by link/a"),
            "{message}"
        );
        // Once the other link is gone, the waiting one is served.
        sync.apply(&state(vec![b]));
        assert!(statuses.get()["b"].ready);
        assert_eq!(tool_names(&registry), ["x_query"]);
    }

    #[test]
    fn problems_keep_a_link_out() {
        let (mut sync, registry, statuses) = sync();
        let mut bad = link("a", "  postgres: {host: h, database: d}\n");
        bad.problem = Some("Secret pg is not in the folder".into());
        sync.apply(&state(vec![bad]));
        assert!(tool_names(&registry).is_empty());
        assert_eq!(
            statuses.get()["a"].message.as_deref(),
            Some("Secret pg is not in the folder")
        );
    }

    #[test]
    fn the_product_builder_says_when_a_type_has_no_toolset() {
        let registry = Arc::new(Registry::new());
        let statuses = Arc::new(LinkStatuses::default());
        let mut sync = LinkSync::new(registry.clone(), default_builder(), statuses.clone());
        sync.apply(&state(vec![link(
            "a",
            "  git: {url: 'https://git.example.com/deploy.git'}\n",
        )]));
        let message = statuses.get()["a"].message.clone().unwrap();
        assert_eq!(
            message,
            "link type git has no toolset in this server version"
        );
    }
}
