//! The live set of tools, resources and prompts this server offers, shared by every session
//! and every agent run.
//!
//! Toolsets come and go at run time (a link is applied or deleted), so the registry keeps an
//! immutable [`Snapshot`] behind an `Arc` and replaces it whole on every change: a reader takes
//! the current snapshot under a short lock and works on it without further locking, and a call
//! already in flight keeps the toolset it started with. Every replacement is announced on a
//! watch channel, which the MCP layer turns into the `list_changed` notifications.
//!
//! Calls go through [`Registry::call`], resource reads through [`Registry::read_resource`]
//! and prompt requests through [`Registry::get_prompt`]: each bounds the toolset in time and
//! turns a panic into an error the client can read ([`bounded`]), so no toolset can take a
//! session or the server down, and applies the [`Guards`] (rate limit, scrubbing, masking,
//! output cap, audit, metrics).

mod bounded;
pub mod core;
mod snapshot;

pub use snapshot::{Changed, ItemKind, Snapshot};

use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use linkmcp_api::server::OnDuplicateTools;
use linkmcp_toolsets::{
    CallContext, ToolDefError, Toolset, output,
    prompt::{GetPromptResult, Prompt, PromptError, check_prompt_args},
    resource::{Resource, ResourceContents, ResourceError, ResourceTemplate, UriTemplateError},
};
use rmcp::model::{CallToolResult, JsonObject, Tool};
use tokio::sync::watch;

use crate::observe::{Guards, Outcome, PROMPTS_GET, RESOURCES_READ};
use bounded::{Stopped, bounded};

/// The name under which a toolset is registered: `core` for the built-in tools,
/// `link/<name>` for the toolset of one McpLink.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ToolsetKey(String);

impl ToolsetKey {
    /// The key of the built-in tools (`ping`, `server_info`).
    pub fn core() -> Self {
        Self("core".to_owned())
    }

    /// The key of the toolset serving the McpLink `name`.
    pub fn link(name: &str) -> Self {
        Self(format!("link/{name}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolsetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ToolsetKey {
    fn from(key: &str) -> Self {
        Self(key.to_owned())
    }
}

impl From<String> for ToolsetKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

/// A change the registry refused; the previous state stays in place.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two toolsets (or one toolset twice) declare the same tool name, prompt name or
    /// resource URI.
    #[error("{kind} `{name}` of toolset `{key}` is already provided by toolset `{owner}`")]
    Duplicate {
        kind: ItemKind,
        name: String,
        key: ToolsetKey,
        owner: ToolsetKey,
    },
    /// A toolset could not be built from its definitions.
    #[error(transparent)]
    InvalidToolset(#[from] ToolDefError),
    /// A toolset's resource template is not a level-1 URI template.
    #[error(transparent)]
    InvalidTemplate(#[from] UriTemplateError),
}

/// The requested tool is not registered (a JSON-RPC `-32602` for MCP clients).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{name}`")]
pub struct UnknownTool {
    /// The name the client asked for.
    pub name: String,
    /// The tools registered when the call arrived, sorted by name.
    pub available: Vec<String>,
}

/// The tools of all registered toolsets, swapped atomically on every change.
pub struct Registry {
    current: RwLock<Arc<Snapshot>>,
    /// What happens to a tool name two toolsets declare (the McpServer's onDuplicateTools).
    policy: RwLock<OnDuplicateTools>,
    /// The registration counter behind [`Snapshot::order`].
    next_order: AtomicU64,
    /// Serializes writers so that each builds on the snapshot the previous one installed.
    writer: Mutex<()>,
    changed: watch::Sender<u64>,
    /// Rate limit, scrubbing, masking, output cap, audit and metrics of every call.
    guards: Guards,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            current: RwLock::new(Arc::new(Snapshot::empty())),
            policy: RwLock::new(OnDuplicateTools::default()),
            next_order: AtomicU64::new(0),
            writer: Mutex::new(()),
            changed,
            guards: Guards::default(),
        }
    }

    /// What every call passes through: the policy can be changed, the scrubber and metrics
    /// are shared with the rest of the server.
    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// The current state. Holding it keeps its toolsets alive, whatever changes meanwhile.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Registers `toolset` under `key`, replacing the toolset registered there before.
    ///
    /// Refused, leaving the registry unchanged, when one of its tool names is taken by
    /// another key.
    pub fn insert(
        &self,
        key: impl Into<ToolsetKey>,
        toolset: Arc<dyn Toolset>,
    ) -> Result<(), RegistryError> {
        let key = key.into();
        self.update(|toolsets| {
            toolsets.insert(key.clone(), toolset);
            true
        })?;
        tracing::info!(toolset = %key, "toolset registered");
        Ok(())
    }

    /// Sets what a later toolset's clashing tool name does from the next change on.
    pub fn set_duplicate_policy(&self, policy: OnDuplicateTools) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = policy;
    }

    /// Unregisters the toolset under `key`; returns whether there was one.
    pub fn remove(&self, key: &ToolsetKey) -> bool {
        let removed = self
            .update(|toolsets| toolsets.remove(key).is_some())
            .unwrap_or(false);
        if removed {
            tracing::info!(toolset = %key, "toolset unregistered");
        }
        removed
    }

    /// Applies `change` to a copy of the toolsets and installs the result if `change` says
    /// something changed.
    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<ToolsetKey, Arc<dyn Toolset>>) -> bool,
    ) -> Result<bool, RegistryError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.snapshot();
        let mut toolsets = old.toolsets.clone();
        if !change(&mut toolsets) {
            return Ok(false);
        }
        let mut order = old.order.clone();
        order.retain(|key, _| toolsets.contains_key(key));
        for key in toolsets.keys() {
            order
                .entry(key.clone())
                .or_insert_with(|| self.next_order.fetch_add(1, Ordering::Relaxed));
        }
        let policy = *self.policy.read().unwrap_or_else(PoisonError::into_inner);
        let next = Arc::new(Snapshot::build(
            old.generation + 1,
            toolsets,
            order,
            policy,
        )?);
        let generation = next.generation;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        self.changed.send_replace(generation);
        Ok(true)
    }

    /// A receiver whose value is the generation of the latest snapshot; it is marked changed
    /// on every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The tools as listed to clients, sorted by name.
    pub fn list(&self) -> Vec<Tool> {
        self.snapshot().tools().to_vec()
    }

    /// The listed description of tool `name`, if registered.
    pub fn get_tool(&self, name: &str) -> Option<Tool> {
        self.snapshot().tool(name).map(|d| d.tool().clone())
    }

    /// Calls tool `name`, bounded by `ctx.timeout`.
    ///
    /// Every failure of the tool itself (bad arguments, backend errors, a timeout, a panic) is
    /// an `isError` result; only a name that is not registered is an error here. This is the
    /// one path to a tool, so the [`Guards`] apply here: the rate limit before the call; secret
    /// scrubbing, error masking and the output cap on the result; one audit line and the call
    /// metrics for every call, however it ends.
    pub async fn call(
        &self,
        name: &str,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, UnknownTool> {
        let mut record = self.guards.record(name, &args, ctx);
        // Held for the whole call: the toolset stays alive whatever the registry does meanwhile.
        let snapshot = self.snapshot();
        let Some(entry) = snapshot.tools.get(name) else {
            record.finish(Outcome::UnknownTool, false, None);
            return Err(UnknownTool {
                name: self.guards.scrubber().scrub(name).into_owned(),
                available: snapshot.tools.keys().cloned().collect(),
            });
        };
        record.set_toolset(entry.key.as_str());
        // A link's own limits (spec.limits) replace the server's for its tools.
        let ctx = &entry.toolset.limits().apply(ctx);
        if let Some(refused) = self.guards.admit(name) {
            record.finish(Outcome::RateLimited, false, None);
            return Ok(refused);
        }
        let toolset = entry.toolset.as_ref();
        let (result, outcome) =
            match bounded(name, ctx.timeout, || toolset.call(name, args, ctx)).await {
                Ok(result) if result.is_error == Some(true) => (result, Outcome::Error),
                Ok(result) => (result, Outcome::Ok),
                Err(Stopped::TimedOut(limit)) => (
                    output::error(format!(
                        "tool `{name}` did not finish within the {limit:?} time limit and was \
                         stopped; narrow the request (fewer rows, a shorter time range) and try \
                         again"
                    )),
                    Outcome::Timeout,
                ),
                Err(Stopped::Panicked) => (
                    output::error(format!(
                        "tool `{name}` failed with an internal error; the details were logged \
                         for the operator"
                    )),
                    Outcome::Panic,
                ),
            };
        if let Some(cached) = linkmcp_toolsets::link::cache::cache_outcome(&result) {
            self.guards.metrics().tool_cache(entry.key.as_str(), cached);
        }
        crate::observe::telemetry::record_call(entry.key.as_str(), outcome.as_str());
        let released = self.guards.release(name, result, outcome, ctx);
        record.finish(outcome, released.truncated, released.reference.as_deref());
        Ok(released.result)
    }

    /// The resources with a fixed URI, sorted by URI.
    pub fn list_resources(&self) -> Vec<Resource> {
        self.snapshot().resources().to_vec()
    }

    /// The resource templates, sorted by template.
    pub fn list_resource_templates(&self) -> Vec<ResourceTemplate> {
        self.snapshot().resource_templates().to_vec()
    }

    /// The prompts, sorted by name.
    pub fn list_prompts(&self) -> Vec<Prompt> {
        self.snapshot().prompts().to_vec()
    }

    /// Reads the resource `uri` from the toolset that lists it (or whose template matches
    /// it), bounded like a tool call, audited as `resources/read`; the contents are scrubbed
    /// and capped at `ctx.max_output_bytes`, a failure's message scrubbed (or masked).
    pub async fn read_resource(
        &self,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        let snapshot = self.snapshot();
        let Some((key, toolset, name)) = snapshot.resource_entry(uri) else {
            return Err(ResourceError::NotFound(
                self.guards.scrubber().scrub(uri).into_owned(),
            ));
        };
        let mut args = JsonObject::new();
        args.insert("uri".to_owned(), uri.into());
        let mut record = self.guards.record_method(RESOURCES_READ, name, &args, ctx);
        record.set_toolset(key.as_str());
        let ctx = &toolset.limits().apply(ctx);
        let what = format!("resource `{name}`");
        match bounded(&what, ctx.timeout, || toolset.read_resource(uri, ctx)).await {
            Ok(Ok(mut contents)) => {
                let truncated = self.guards.release_contents(&mut contents, ctx);
                record.finish(Outcome::Ok, truncated, None);
                Ok(contents)
            }
            Ok(Err(ResourceError::NotFound(_))) => {
                record.finish(Outcome::Error, false, None);
                Err(ResourceError::NotFound(
                    self.guards.scrubber().scrub(uri).into_owned(),
                ))
            }
            Ok(Err(ResourceError::Failed(message))) => {
                let (message, reference) = self.guards.release_failure(&what, &message);
                record.finish(Outcome::Error, false, reference.as_deref());
                Err(ResourceError::Failed(message))
            }
            Err(stopped) => {
                let outcome = stopped_outcome(&stopped);
                record.finish(outcome, false, None);
                Err(ResourceError::Failed(stopped_message(&what, &stopped)))
            }
        }
    }

    /// The messages of prompt `name` for `args`, which are checked against the prompt's
    /// declared arguments first; bounded like a tool call, audited as `prompts/get`, the
    /// messages scrubbed.
    pub async fn get_prompt(
        &self,
        name: &str,
        args: Option<JsonObject>,
        ctx: &CallContext,
    ) -> Result<GetPromptResult, PromptError> {
        let snapshot = self.snapshot();
        let Some(entry) = snapshot.prompts.get(name) else {
            return Err(PromptError::NotFound(
                self.guards.scrubber().scrub(name).into_owned(),
            ));
        };
        let audited = args.clone().unwrap_or_default();
        let mut record = self.guards.record_method(PROMPTS_GET, name, &audited, ctx);
        record.set_toolset(entry.key.as_str());
        let args = match check_prompt_args(&entry.item, args) {
            Ok(args) => args,
            Err(err) => {
                record.finish(Outcome::Error, false, None);
                // The message quotes the client's argument names.
                let message = self.guards.scrubber().scrub(&err.to_string()).into_owned();
                return Err(PromptError::InvalidArguments(message));
            }
        };
        let toolset = entry.toolset.as_ref();
        let ctx = &toolset.limits().apply(ctx);
        let what = format!("prompt `{name}`");
        match bounded(&what, ctx.timeout, || toolset.get_prompt(name, args, ctx)).await {
            Ok(Ok(result)) => {
                record.finish(Outcome::Ok, false, None);
                Ok(self.guards.release_prompt(result))
            }
            Ok(Err(PromptError::Failed(message))) => {
                let (message, reference) = self.guards.release_failure(&what, &message);
                record.finish(Outcome::Error, false, reference.as_deref());
                Err(PromptError::Failed(message))
            }
            Ok(Err(err)) => {
                record.finish(Outcome::Error, false, None);
                Err(err)
            }
            Err(stopped) => {
                record.finish(stopped_outcome(&stopped), false, None);
                Err(PromptError::Failed(stopped_message(&what, &stopped)))
            }
        }
    }
}

fn stopped_outcome(stopped: &Stopped) -> Outcome {
    match stopped {
        Stopped::TimedOut(_) => Outcome::Timeout,
        Stopped::Panicked => Outcome::Panic,
    }
}

/// What a client is told about a resource read or prompt request that was stopped.
fn stopped_message(what: &str, stopped: &Stopped) -> String {
    match stopped {
        Stopped::TimedOut(limit) => {
            format!("{what} did not finish within the {limit:?} time limit and was stopped")
        }
        Stopped::Panicked => {
            format!(
                "{what} failed with an internal error; the details were logged for the operator"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use futures::future::BoxFuture;
    use linkmcp_toolsets::{NoArgs, ToolDef};

    use super::*;

    /// A toolset whose tools behave as their names say.
    struct Fixture {
        defs: Vec<ToolDef>,
    }

    impl Fixture {
        fn new(names: &[&'static str]) -> Arc<Self> {
            let defs = names
                .iter()
                .map(|n| ToolDef::read::<NoArgs>(*n, "fixture").unwrap())
                .collect();
            Arc::new(Self { defs })
        }
    }

    impl Toolset for Fixture {
        fn tools(&self) -> &[ToolDef] {
            &self.defs
        }

        fn call<'a>(
            &'a self,
            name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async move {
                match name {
                    "panics" => panic!("boom"),
                    "sleeps" => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        output::ok_text("woke")
                    }
                    other => output::ok_text(format!("called {other}")),
                }
            })
        }
    }

    fn ctx() -> CallContext {
        CallContext::new("test").with_timeout(Duration::from_millis(50))
    }

    fn text(result: &CallToolResult) -> &str {
        &result.content[0].as_text().unwrap().text
    }

    #[tokio::test]
    async fn insert_list_and_call() {
        let registry = Registry::new();
        registry
            .insert("a", Fixture::new(&["b_tool", "a_tool"]))
            .unwrap();
        let names: Vec<_> = registry.list().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["a_tool", "b_tool"]);
        let result = registry
            .call("a_tool", JsonObject::new(), &ctx())
            .await
            .unwrap();
        assert_eq!(text(&result), "called a_tool");
    }

    #[tokio::test]
    async fn unknown_tool_lists_the_available_ones() {
        let registry = Registry::new();
        registry.insert("a", Fixture::new(&["one", "two"])).unwrap();
        let err = registry
            .call("three", JsonObject::new(), &ctx())
            .await
            .unwrap_err();
        assert_eq!(err.name, "three");
        assert_eq!(err.available, ["one", "two"]);
    }

    #[tokio::test]
    async fn a_panicking_tool_becomes_an_error_result() {
        let registry = Registry::new();
        registry.insert("a", Fixture::new(&["panics"])).unwrap();
        let result = registry
            .call("panics", JsonObject::new(), &ctx())
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(
            text(&result).contains("internal error"),
            "{}",
            text(&result)
        );
        assert!(
            !text(&result).contains("boom"),
            "panic details stay in the log"
        );
    }

    #[tokio::test]
    async fn a_slow_tool_is_stopped_at_the_timeout() {
        let registry = Registry::new();
        registry.insert("a", Fixture::new(&["sleeps"])).unwrap();
        let result = registry
            .call("sleeps", JsonObject::new(), &ctx())
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(text(&result).contains("time limit"), "{}", text(&result));
    }

    /// A fixture whose own limits replace the caller's, as a link's `spec.limits` do.
    struct Limited(Arc<Fixture>, Duration);

    impl Toolset for Limited {
        fn tools(&self) -> &[ToolDef] {
            self.0.tools()
        }
        fn limits(&self) -> linkmcp_toolsets::ToolsetLimits {
            linkmcp_toolsets::ToolsetLimits {
                timeout: Some(self.1),
                max_output_bytes: None,
            }
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            args: JsonObject,
            ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            self.0.call(name, args, ctx)
        }
    }

    #[tokio::test]
    async fn a_toolsets_own_timeout_replaces_the_servers() {
        let registry = Registry::new();
        registry
            .insert(
                "a",
                Arc::new(Limited(
                    Fixture::new(&["sleeps"]),
                    Duration::from_millis(20),
                )),
            )
            .unwrap();
        let generous = CallContext::new("test").with_timeout(Duration::from_secs(3600));
        let started = std::time::Instant::now();
        let result = registry
            .call("sleeps", JsonObject::new(), &generous)
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(text(&result).contains("20ms"), "{}", text(&result));
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn warn_keeps_the_first_and_replace_takes_the_later() {
        let registry = Registry::new();
        registry.set_duplicate_policy(OnDuplicateTools::Warn);
        registry
            .insert("a", Fixture::new(&["shared", "a_only"]))
            .unwrap();
        registry
            .insert("b", Fixture::new(&["shared", "b_only"]))
            .unwrap();
        let owner = |r: &Registry| {
            r.snapshot()
                .entries()
                .find(|(_, d)| d.name() == "shared")
                .map(|(k, _)| k.as_str().to_owned())
        };
        assert_eq!(owner(&registry).as_deref(), Some("a"));
        assert!(registry.snapshot().tool("b_only").is_some());

        let registry = Registry::new();
        registry.set_duplicate_policy(OnDuplicateTools::Replace);
        registry.insert("a", Fixture::new(&["shared"])).unwrap();
        registry.insert("b", Fixture::new(&["shared"])).unwrap();
        assert_eq!(owner(&registry).as_deref(), Some("b"));
    }

    #[test]
    fn duplicate_tool_names_are_refused_and_leave_the_state_unchanged() {
        let registry = Registry::new();
        registry.insert("a", Fixture::new(&["shared"])).unwrap();
        let before = registry.snapshot().generation();
        let err = registry.insert("b", Fixture::new(&["shared"])).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Duplicate { kind: ItemKind::Tool, name, owner, .. }
                if name == "shared" && owner.as_str() == "a"),
            "{err}"
        );
        assert_eq!(registry.snapshot().generation(), before);
        assert!(registry.snapshot().tool("shared").is_some());
    }

    #[test]
    fn replacing_and_removing_swap_the_snapshot_and_signal() {
        let registry = Registry::new();
        let mut changes = registry.subscribe();
        registry.insert("a", Fixture::new(&["one"])).unwrap();
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 1);

        let held = registry.snapshot();
        registry.insert("a", Fixture::new(&["two"])).unwrap();
        assert!(held.tool("one").is_some(), "a held snapshot is immutable");
        assert!(registry.snapshot().tool("one").is_none());
        assert!(registry.snapshot().tool("two").is_some());
        assert_eq!(*changes.borrow_and_update(), 2);

        assert!(registry.remove(&"a".into()));
        assert!(
            !registry.remove(&"a".into()),
            "removing twice changes nothing"
        );
        assert_eq!(*changes.borrow_and_update(), 3);
        assert!(registry.list().is_empty());
    }

    /// A toolset serving one resource, one template and one prompt, whose behaviour follows
    /// the URI or argument: `slow` sleeps, `boom` panics, `secret` leaks a known value.
    struct Catalog {
        resources: Vec<Resource>,
        templates: Vec<linkmcp_toolsets::resource::ResourceTemplateDef>,
        prompts: Vec<Prompt>,
    }

    impl Catalog {
        fn new(tag: &str) -> Arc<Self> {
            use linkmcp_toolsets::{prompt::PromptArgument, resource::ResourceTemplateDef};
            Arc::new(Self {
                resources: vec![Resource::new(format!("test://{tag}/fixed"), "fixed")],
                templates: vec![
                    ResourceTemplateDef::new(ResourceTemplate::new(
                        format!("test://{tag}/items/{{id}}"),
                        "item",
                    ))
                    .unwrap(),
                ],
                prompts: vec![Prompt::new(
                    format!("{tag}_prompt"),
                    Some("p"),
                    Some(vec![PromptArgument::new("topic").with_required(true)]),
                )],
            })
        }
    }

    impl Toolset for Catalog {
        fn tools(&self) -> &[ToolDef] {
            &[]
        }
        fn call<'a>(
            &'a self,
            _name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async { output::error("no tools") })
        }
        fn resources(&self) -> &[Resource] {
            &self.resources
        }
        fn resource_templates(&self) -> &[linkmcp_toolsets::resource::ResourceTemplateDef] {
            &self.templates
        }
        fn read_resource<'a>(
            &'a self,
            uri: &'a str,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
            Box::pin(async move {
                if uri.ends_with("/slow") {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if uri.ends_with("/boom") {
                    panic!("boom");
                }
                if uri.ends_with("/gone") {
                    return Err(ResourceError::NotFound(uri.to_owned()));
                }
                if uri.ends_with("/broken") {
                    return Err(ResourceError::Failed("backend said s3cr3t".to_owned()));
                }
                let text = if uri.ends_with("/secret") {
                    "value s3cr3t"
                } else {
                    uri
                };
                Ok(vec![linkmcp_toolsets::resource::text_contents(
                    uri,
                    "text/plain",
                    text,
                )])
            })
        }
        fn prompts(&self) -> &[Prompt] {
            &self.prompts
        }
        fn get_prompt<'a>(
            &'a self,
            name: &'a str,
            args: linkmcp_toolsets::prompt::PromptArgs,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
            Box::pin(async move {
                let topic = args.get("topic").cloned().unwrap_or_default();
                Ok(GetPromptResult::new(vec![
                    linkmcp_toolsets::prompt::PromptMessage::new_text(
                        rmcp::model::Role::User,
                        format!("{name} about {topic}"),
                    ),
                ]))
            })
        }
    }

    fn contents_text(contents: &[ResourceContents]) -> &str {
        match &contents[0] {
            ResourceContents::TextResourceContents { text, .. } => text,
            other => panic!("not text: {other:?}"),
        }
    }

    #[tokio::test]
    async fn resources_route_by_uri_then_by_template() {
        let registry = Registry::new();
        registry.insert("a", Catalog::new("a")).unwrap();
        registry.insert("b", Catalog::new("b")).unwrap();
        assert_eq!(
            registry
                .list_resources()
                .iter()
                .map(|r| r.uri.as_str())
                .collect::<Vec<_>>(),
            ["test://a/fixed", "test://b/fixed"]
        );
        assert_eq!(registry.list_resource_templates().len(), 2);
        let read = registry
            .read_resource("test://b/items/7", &ctx())
            .await
            .unwrap();
        assert_eq!(contents_text(&read), "test://b/items/7");
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot.resource_owner("test://a/items/x"),
            Some((&ToolsetKey::from("a"), "item"))
        );
        assert_eq!(snapshot.resource_owner("test://a/items/x/y"), None);
        let err = registry
            .read_resource("test://c/fixed", &ctx())
            .await
            .unwrap_err();
        assert_eq!(err, ResourceError::NotFound("test://c/fixed".into()));
        // A toolset may still say a matching URI does not exist.
        let err = registry
            .read_resource("test://a/items/gone", &ctx())
            .await
            .unwrap_err();
        assert_eq!(err, ResourceError::NotFound("test://a/items/gone".into()));
    }

    #[tokio::test]
    async fn resource_reads_are_bounded_scrubbed_and_capped() {
        let registry = Registry::new();
        registry.guards().scrubber().set_values(["s3cr3t"]);
        registry.insert("a", Catalog::new("a")).unwrap();
        let short = CallContext::new("t").with_timeout(Duration::from_millis(20));
        let err = registry
            .read_resource("test://a/items/slow", &short)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ResourceError::Failed(m) if m.contains("time limit")),
            "{err}"
        );
        let err = registry
            .read_resource("test://a/items/boom", &ctx())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ResourceError::Failed(m) if m.contains("internal error") && !m.contains("boom")),
            "{err}"
        );
        let read = registry
            .read_resource("test://a/items/secret", &ctx())
            .await
            .unwrap();
        assert!(
            !contents_text(&read).contains("s3cr3t"),
            "{}",
            contents_text(&read)
        );
        let err = registry
            .read_resource("test://a/items/broken", &ctx())
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let tiny = CallContext::new("t").with_max_output_bytes(8);
        let read = registry
            .read_resource("test://a/fixed", &tiny)
            .await
            .unwrap();
        assert!(
            contents_text(&read).starts_with("test://a"),
            "{}",
            contents_text(&read)
        );
        assert!(
            contents_text(&read).contains("[truncated: "),
            "{}",
            contents_text(&read)
        );
    }

    #[tokio::test]
    async fn prompts_check_their_arguments_before_the_toolset_runs() {
        let registry = Registry::new();
        registry.insert("a", Catalog::new("a")).unwrap();
        assert_eq!(registry.list_prompts()[0].name, "a_prompt");
        let args = serde_json::json!({"topic": "orders"}).as_object().cloned();
        let result = registry.get_prompt("a_prompt", args, &ctx()).await.unwrap();
        assert_eq!(
            result.messages[0].content.as_text().unwrap().text,
            "a_prompt about orders"
        );
        let err = registry
            .get_prompt("a_prompt", None, &ctx())
            .await
            .unwrap_err();
        assert!(matches!(err, PromptError::InvalidArguments(_)), "{err}");
        let err = registry.get_prompt("nope", None, &ctx()).await.unwrap_err();
        assert_eq!(err, PromptError::NotFound("nope".into()));
    }

    #[test]
    fn prompt_and_resource_clashes_follow_the_duplicate_policy() {
        // The same catalog under another key clashes on every name.
        let registry = Registry::new();
        registry.insert("a", Catalog::new("x")).unwrap();
        let err = registry.insert("b", Catalog::new("x")).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Duplicate { kind: ItemKind::Resource, name, .. }
                if name == "test://x/fixed"),
            "{err}"
        );
        registry.set_duplicate_policy(OnDuplicateTools::Replace);
        registry.insert("b", Catalog::new("x")).unwrap();
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot.prompt_key("x_prompt"),
            Some(&ToolsetKey::from("b"))
        );
        assert_eq!(
            snapshot.resource_key("test://x/fixed"),
            Some(&ToolsetKey::from("b"))
        );
    }

    #[test]
    fn a_change_says_which_lists_changed() {
        let registry = Registry::new();
        registry.insert("tools", Fixture::new(&["one"])).unwrap();
        let before = registry.snapshot();
        registry.insert("catalog", Catalog::new("a")).unwrap();
        let changed = registry.snapshot().changed_since(&before);
        assert_eq!(
            changed,
            Changed {
                tools: false,
                prompts: true,
                resources: true
            }
        );
        let before = registry.snapshot();
        registry.insert("tools", Fixture::new(&["two"])).unwrap();
        let changed = registry.snapshot().changed_since(&before);
        assert_eq!(
            changed,
            Changed {
                tools: true,
                prompts: false,
                resources: false
            }
        );
    }
}
