//! The live set of tools this server offers, shared by every session and every agent run.
//!
//! Toolsets come and go at run time (a link is applied or deleted), so the registry keeps an
//! immutable [`Snapshot`] behind an `Arc` and replaces it whole on every change: a reader takes
//! the current snapshot under a short lock and works on it without further locking, and a call
//! already in flight keeps the toolset it started with. Every replacement is announced on a
//! watch channel, which the MCP layer turns into `notifications/tools/list_changed`.
//!
//! Calls go through [`Registry::call`], which bounds them in time and turns a panicking tool
//! into an `isError` result, so no toolset can take a session or the server down, and applies
//! the [`Guards`] (rate limit, scrubbing, masking, output cap, audit, metrics).

pub mod core;

use std::{
    collections::BTreeMap,
    fmt,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::FutureExt;
use linkmcp_api::server::OnDuplicateTools;
use linkmcp_toolsets::{CallContext, ToolDef, ToolDefError, Toolset, output};
use rmcp::model::{CallToolResult, JsonObject, Tool};
use tokio::sync::watch;

use crate::observe::{Guards, Outcome};

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
    /// Two toolsets (or one toolset twice) declare the same tool name.
    #[error("tool `{tool}` of toolset `{key}` is already provided by toolset `{owner}`")]
    DuplicateTool {
        tool: String,
        key: ToolsetKey,
        owner: ToolsetKey,
    },
    /// A toolset could not be built from its definitions.
    #[error(transparent)]
    InvalidToolset(#[from] ToolDefError),
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

#[derive(Clone)]
struct ToolEntry {
    key: ToolsetKey,
    toolset: Arc<dyn Toolset>,
    def: ToolDef,
}

/// One immutable state of the registry.
pub struct Snapshot {
    generation: u64,
    toolsets: BTreeMap<ToolsetKey, Arc<dyn Toolset>>,
    /// When each key was first registered: replacing a key's toolset keeps its place.
    order: BTreeMap<ToolsetKey, u64>,
    tools: BTreeMap<String, ToolEntry>,
    listed: Vec<Tool>,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            generation: 0,
            toolsets: BTreeMap::new(),
            order: BTreeMap::new(),
            tools: BTreeMap::new(),
            listed: Vec::new(),
        }
    }

    /// Indexes the tools of `toolsets`, taking them in registration order (`order`) so that
    /// "the later toolset" of a name clash is well defined for the `policy`.
    fn build(
        generation: u64,
        toolsets: BTreeMap<ToolsetKey, Arc<dyn Toolset>>,
        order: BTreeMap<ToolsetKey, u64>,
        policy: OnDuplicateTools,
    ) -> Result<Self, RegistryError> {
        let mut keys: Vec<&ToolsetKey> = toolsets.keys().collect();
        keys.sort_by_key(|k| (order.get(*k).copied().unwrap_or(u64::MAX), (*k).clone()));
        let mut tools: BTreeMap<String, ToolEntry> = BTreeMap::new();
        for key in keys {
            let toolset = &toolsets[key];
            for def in toolset.tools() {
                if let Some(existing) = tools.get(def.name()) {
                    match policy {
                        OnDuplicateTools::Error => {
                            return Err(RegistryError::DuplicateTool {
                                tool: def.name().to_owned(),
                                key: key.clone(),
                                owner: existing.key.clone(),
                            });
                        }
                        OnDuplicateTools::Warn => {
                            tracing::warn!(
                                tool = def.name(),
                                toolset = %key,
                                kept = %existing.key,
                                "duplicate tool name: the first toolset keeps it"
                            );
                            continue;
                        }
                        OnDuplicateTools::Replace => {
                            tracing::warn!(
                                tool = def.name(),
                                toolset = %key,
                                replaced = %existing.key,
                                "duplicate tool name: the later toolset takes it"
                            );
                        }
                    }
                }
                tools.insert(
                    def.name().to_owned(),
                    ToolEntry {
                        key: key.clone(),
                        toolset: toolset.clone(),
                        def: def.clone(),
                    },
                );
            }
        }
        let listed = tools.values().map(|e| e.def.tool().clone()).collect();
        Ok(Self {
            generation,
            toolsets,
            order,
            tools,
            listed,
        })
    }

    /// Increases by one with every change; 0 is the empty registry it started as.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The tools as listed to clients, sorted by name.
    pub fn tools(&self) -> &[Tool] {
        &self.listed
    }

    /// The definition of the tool `name`, if registered.
    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools.get(name).map(|e| &e.def)
    }

    /// Every served tool with the key of the toolset serving it, sorted by tool name.
    pub fn entries(&self) -> impl Iterator<Item = (&ToolsetKey, &ToolDef)> {
        self.tools.values().map(|e| (&e.key, &e.def))
    }

    /// The toolset keys with the number of tools each provides, sorted by key.
    pub fn toolsets(&self) -> impl Iterator<Item = (&ToolsetKey, usize)> {
        self.toolsets.iter().map(|(k, t)| (k, t.tools().len()))
    }
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
        let entry = {
            let snapshot = self.snapshot();
            match snapshot.tools.get(name) {
                Some(entry) => entry.clone(),
                None => {
                    record.finish(Outcome::UnknownTool, false, None);
                    return Err(UnknownTool {
                        name: self.guards.scrubber().scrub(name).into_owned(),
                        available: snapshot.tools.keys().cloned().collect(),
                    });
                }
            }
        };
        record.set_toolset(entry.key.as_str());
        // A link's own limits (spec.limits) replace the server's for its tools.
        let ctx = &entry.toolset.limits().apply(ctx);
        if let Some(refused) = self.guards.admit(name) {
            record.finish(Outcome::RateLimited, false, None);
            return Ok(refused);
        }
        let (result, outcome) = run_bounded(entry.toolset.as_ref(), name, args, ctx).await;
        let released = self.guards.release(name, result, outcome, ctx);
        record.finish(outcome, released.truncated, released.reference.as_deref());
        Ok(released.result)
    }
}

/// Runs one call with the time limit and panic isolation; returns the result and its outcome
/// for the audit line.
async fn run_bounded(
    toolset: &dyn Toolset,
    name: &str,
    args: JsonObject,
    ctx: &CallContext,
) -> (CallToolResult, Outcome) {
    // Building the future may panic as well as polling it.
    let call = match std::panic::catch_unwind(AssertUnwindSafe(|| toolset.call(name, args, ctx))) {
        Ok(call) => call,
        Err(panic) => return (panicked(name, panic.as_ref()), Outcome::Panic),
    };
    match tokio::time::timeout(ctx.timeout, AssertUnwindSafe(call).catch_unwind()).await {
        Ok(Ok(result)) => {
            let outcome = if result.is_error == Some(true) {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            (result, outcome)
        }
        Ok(Err(panic)) => (panicked(name, panic.as_ref()), Outcome::Panic),
        Err(_elapsed) => (
            output::error(format!(
                "tool `{name}` did not finish within the {:?} time limit and was stopped; \
                 narrow the request (fewer rows, a shorter time range) and try again",
                ctx.timeout
            )),
            Outcome::Timeout,
        ),
    }
}

fn panicked(name: &str, panic: &(dyn std::any::Any + Send)) -> CallToolResult {
    let detail = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload");
    tracing::error!(tool = name, panic = detail, "tool panicked");
    output::error(format!(
        "tool `{name}` failed with an internal error; the details were logged for the operator"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use futures::future::BoxFuture;
    use linkmcp_toolsets::NoArgs;

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
            matches!(&err, RegistryError::DuplicateTool { tool, owner, .. }
                if tool == "shared" && owner.as_str() == "a"),
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
}
