//! The link's governance applied to a backend's toolset: names, filters and write access.
//!
//! Write tools of a link without `writeAccess` are not merely hidden: they are absent from the
//! wrapper, so no client, agent or REST call can reach them by name.
//!
//! Prompts get the link's prefix as tools do, and the tool names a prompt's text mentions are
//! rewritten to the names this link serves them under. Resources keep their URIs (a backend
//! puts the link's name in them). With [`Governed::describing`] the wrapper also serves one
//! resource of its own, `linkmcp://links/<name>`: what the link is and which tools it serves.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use globset::{Glob, GlobSet, GlobSetBuilder};
use linkmcp_api::link::{LinkLimits, ResultCache, ToolFilter};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde::Serialize;

use super::BuildError;
use super::naming::served_name;
use crate::{
    Access, CallContext, ToolDef, Toolset, ToolsetLimits, output,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptError},
    resource::{Resource, ResourceContents, ResourceError, ResourceTemplateDef, text_contents},
};

/// The share of a call's timeout it may spend waiting for a slot of its link.
const SLOT_WAIT_SHARE: f64 = 0.9;

/// The URI scheme and path of the resource describing a link.
pub const LINK_RESOURCE_PREFIX: &str = "linkmcp://links/";

/// A backend toolset as one link serves it.
pub struct Governed {
    inner: Arc<dyn Toolset>,
    defs: Vec<ToolDef>,
    /// Served name -> the name the backend declared.
    declared: HashMap<String, String>,
    /// The link's own bounds (`spec.limits`).
    limits: ToolsetLimits,
    /// Slots for calls running at once (`spec.limits.maxConcurrentCalls`); a call holds one
    /// while the backend works on it.
    slots: Arc<tokio::sync::Semaphore>,
    max_concurrent_calls: usize,
    /// Fresh results of read tools (`spec.cache`), when the link caches.
    cache: Option<super::cache::Cache>,
    /// The backend's prompts under their served names.
    prompts: Vec<Prompt>,
    /// Served prompt name -> the name the backend declared.
    declared_prompts: HashMap<String, String>,
    /// Declared tool name -> served name, for the tool names in prompt texts.
    served_tools: HashMap<String, String>,
    /// The backend's resources, and the link's own description once [`Governed::describing`]
    /// set it.
    resources: Vec<Resource>,
    /// The link described by its own resource.
    link: Option<LinkDescription>,
}

/// What `linkmcp://links/<name>` says of a link: nothing secret.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LinkDescription {
    #[serde(skip)]
    uri: String,
    name: String,
    #[serde(rename = "type")]
    link_type: String,
    write_access: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<usize>,
}

#[derive(Serialize)]
struct ServedTool<'a> {
    name: &'a str,
    access: &'static str,
    description: &'a str,
}

impl Governed {
    /// Serves `inner` (whose tools are declared under `default_prefix`) with `prefix`, keeping
    /// the tools `filter` admits and, without `write_access`, only read tools.
    pub fn new(
        inner: Arc<dyn Toolset>,
        default_prefix: &str,
        prefix: &str,
        filter: &ToolFilter,
        write_access: bool,
    ) -> Result<Self, BuildError> {
        let include = glob_set("tools.include", &filter.include)?;
        let exclude = glob_set("tools.exclude", &filter.exclude)?;
        let mut defs = Vec::new();
        let mut declared = HashMap::new();
        for def in inner.tools() {
            if def.access() == Access::Write && !write_access {
                continue;
            }
            let name = served_name(def.name(), default_prefix, prefix);
            if !filter.include.is_empty() && !include.is_match(&name) {
                continue;
            }
            if exclude.is_match(&name) {
                continue;
            }
            let served = def
                .renamed(name.clone())
                .map_err(|e| BuildError::Invalid(format!("toolPrefix {prefix:?}: {e}")))?;
            declared.insert(name, def.name().to_owned());
            defs.push(served);
        }
        let served_tools = inner
            .tools()
            .iter()
            .map(|d| {
                let name = d.name().to_owned();
                let served = served_name(&name, default_prefix, prefix);
                (name, served)
            })
            .collect();
        let mut prompts = Vec::new();
        let mut declared_prompts = HashMap::new();
        for prompt in inner.prompts() {
            let name = served_name(&prompt.name, default_prefix, prefix);
            let mut served = prompt.clone();
            served.name.clone_from(&name);
            declared_prompts.insert(name, prompt.name.clone());
            prompts.push(served);
        }
        let resources = inner.resources().to_vec();
        Ok(Self {
            inner,
            defs,
            declared,
            limits: ToolsetLimits::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                LinkLimits::DEFAULT_MAX_CONCURRENT_CALLS,
            )),
            max_concurrent_calls: LinkLimits::DEFAULT_MAX_CONCURRENT_CALLS,
            cache: None,
            prompts,
            declared_prompts,
            served_tools,
            resources,
            link: None,
        })
    }

    /// Serves `linkmcp://links/<name>` describing the link `name` of type `link_type`: its
    /// write access, limits and served tools.
    pub fn describing(mut self, name: &str, link_type: &str, write_access: bool) -> Self {
        let link = LinkDescription {
            uri: format!("{LINK_RESOURCE_PREFIX}{name}"),
            name: name.to_owned(),
            link_type: link_type.to_owned(),
            write_access,
            timeout_seconds: self.limits.timeout.map(|t| t.as_secs()),
            max_bytes: self.limits.max_output_bytes,
        };
        self.resources.retain(|r| r.uri != link.uri);
        self.resources.push(
            Resource::new(&link.uri, format!("link-{name}"))
                .with_title(format!("McpLink {name} ({link_type})"))
                .with_description(format!(
                    "What the {link_type} link `{name}` serves: its tools (read or write), \
                     whether it may write, and its limits. Read it to pick a tool."
                ))
                .with_mime_type("application/json"),
        );
        self.link = Some(link);
        self
    }

    /// The link's description as JSON text.
    fn describe(&self, link: &LinkDescription) -> String {
        let tools: Vec<ServedTool<'_>> = self
            .defs
            .iter()
            .map(|d| ServedTool {
                name: d.name(),
                access: match d.access() {
                    Access::Read => "read",
                    Access::Write => "write",
                },
                description: d.tool().description.as_deref().unwrap_or_default(),
            })
            .collect();
        let mut value = serde_json::to_value(link).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "tools".to_owned(),
                serde_json::to_value(tools).unwrap_or_default(),
            );
        }
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// `text` with every declared tool name replaced by the name this link serves it under.
    fn rename_tools_in(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut word = String::new();
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for c in text.chars().chain(std::iter::once('\0')) {
            if is_word(c) {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                out.push_str(self.served_tools.get(&word).unwrap_or(&word));
                word.clear();
            }
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }

    /// Applies the link's `spec.limits` (timeout, max bytes) to every call instead of the
    /// server's. `maxRows` is the backend's to apply.
    pub fn with_limits(mut self, limits: &LinkLimits) -> Self {
        let positive = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        self.limits = ToolsetLimits {
            timeout: positive(limits.timeout_seconds).map(std::time::Duration::from_secs),
            max_output_bytes: positive(limits.max_bytes).and_then(|v| usize::try_from(v).ok()),
        };
        self.max_concurrent_calls = positive(limits.max_concurrent_calls)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(LinkLimits::DEFAULT_MAX_CONCURRENT_CALLS);
        self.slots = Arc::new(tokio::sync::Semaphore::new(self.max_concurrent_calls));
        if let Some(link) = &mut self.link {
            link.timeout_seconds = self.limits.timeout.map(|t| t.as_secs());
            link.max_bytes = self.limits.max_output_bytes;
        }
        self
    }
}

impl Governed {
    /// Keeps the results of the link's read tools as `spec` says (`spec.cache`).
    pub fn with_cache(mut self, spec: Option<&ResultCache>) -> Result<Self, BuildError> {
        self.cache = spec
            .map(|spec| super::cache::Cache::new(spec, &self.defs))
            .transpose()?;
        Ok(self)
    }
}

fn glob_set(field: &str, patterns: &[String]) -> Result<GlobSet, BuildError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|e| {
            BuildError::Invalid(format!("{field}: invalid pattern {pattern:?}: {e}"))
        })?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| BuildError::Invalid(format!("{field}: {e}")))
}

impl Toolset for Governed {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn limits(&self) -> ToolsetLimits {
        self.limits
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        let Some(declared) = self.declared.get(name) else {
            return Box::pin(async move {
                output::error(format!("tool `{name}` is not served by this link"))
            });
        };
        Box::pin(async move {
            let cache = self.cache.as_ref().filter(|c| c.caches(name));
            if let Some(hit) = cache.and_then(|c| c.get(name, &ctx.identity, &args)) {
                return hit;
            }
            let kept = cache.map(|_| args.clone());
            // Wait for a slot for most of the call's time, so the refusal below (not the
            // registry's timeout) tells the caller why it did not run.
            let wait = ctx.timeout.mul_f64(SLOT_WAIT_SHARE);
            let permit = match tokio::time::timeout(wait, self.slots.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    return output::error(format!(
                        "`{name}` did not run: this link already has {} calls running (its \
                         limits.maxConcurrentCalls) and none finished within {:.1}s; retry \
                         later, or raise the limit if the backend can take more",
                        self.max_concurrent_calls,
                        wait.as_secs_f64()
                    ));
                }
            };
            let result = self.inner.call(declared, args, ctx).await;
            drop(permit);
            match (cache, kept) {
                (Some(cache), Some(args)) => cache.put(name, &ctx.identity, &args, result),
                _ => result,
            }
        })
    }

    fn resources(&self) -> &[Resource] {
        &self.resources
    }

    fn resource_templates(&self) -> &[ResourceTemplateDef] {
        self.inner.resource_templates()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        match &self.link {
            Some(link) if link.uri == uri => {
                let text = self.describe(link);
                Box::pin(async move { Ok(vec![text_contents(uri, "application/json", text)]) })
            }
            _ => self.inner.read_resource(uri, ctx),
        }
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        args: PromptArgs,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        let Some(declared) = self.declared_prompts.get(name) else {
            return Box::pin(async move { Err(PromptError::NotFound(name.to_owned())) });
        };
        Box::pin(async move {
            let mut result = self.inner.get_prompt(declared, args, ctx).await?;
            for message in &mut result.messages {
                if let ContentBlock::Text(text) = &mut message.content {
                    text.text = self.rename_tools_in(&text.text);
                }
            }
            Ok(result)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::NoArgs;

    /// A backend echoing which declared tool was called, with one prompt naming its tools.
    struct Echo(Vec<ToolDef>, Vec<Prompt>);

    impl Toolset for Echo {
        fn tools(&self) -> &[ToolDef] {
            &self.0
        }
        fn prompts(&self) -> &[Prompt] {
            &self.1
        }
        fn get_prompt<'a>(
            &'a self,
            name: &'a str,
            _args: PromptArgs,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
            Box::pin(async move {
                Ok(GetPromptResult::new(vec![
                    crate::prompt::PromptMessage::new_text(
                        rmcp::model::Role::User,
                        format!("{name}: call pg_list_tables, then pg_query (not my_pg_query)."),
                    ),
                ]))
            })
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async move { output::ok_text(name.to_owned()) })
        }
    }

    fn echo() -> Arc<dyn Toolset> {
        Arc::new(Echo(
            vec![
                ToolDef::read::<NoArgs>("pg_query", "q").unwrap(),
                ToolDef::read::<NoArgs>("pg_list_tables", "l").unwrap(),
                ToolDef::write::<NoArgs>("pg_execute", "e").unwrap(),
            ],
            vec![Prompt::new("pg_explore", Some("explore"), None)],
        ))
    }

    fn names(g: &Governed) -> Vec<&str> {
        g.tools().iter().map(ToolDef::name).collect()
    }

    #[test]
    fn write_tools_exist_only_with_write_access() {
        let read_only = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), false).unwrap();
        assert_eq!(names(&read_only), ["pg_query", "pg_list_tables"]);
        let writable = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), true).unwrap();
        assert_eq!(
            names(&writable),
            ["pg_query", "pg_list_tables", "pg_execute"]
        );
    }

    #[tokio::test]
    async fn a_hidden_write_tool_cannot_be_called_by_name() {
        let g = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), false).unwrap();
        let result = g
            .call("pg_execute", JsonObject::new(), &CallContext::new("t"))
            .await;
        assert_eq!(result.is_error, Some(true));
    }

    #[tokio::test]
    async fn prefixed_names_route_to_the_declared_tool() {
        let g = Governed::new(echo(), "pg", "orders", &ToolFilter::default(), false).unwrap();
        assert_eq!(names(&g), ["orders_query", "orders_list_tables"]);
        let result = g
            .call("orders_query", JsonObject::new(), &CallContext::new("t"))
            .await;
        let text = result.content[0].as_text().unwrap().text.clone();
        assert_eq!(text, "pg_query");
    }

    #[test]
    fn include_and_exclude_filter_served_names() {
        let filter = ToolFilter {
            include: vec!["orders_*".into()],
            exclude: vec!["*_list_*".into()],
        };
        let g = Governed::new(echo(), "pg", "orders", &filter, true).unwrap();
        assert_eq!(names(&g), ["orders_query", "orders_execute"]);
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let filter = ToolFilter {
            include: vec!["pg_[".into()],
            exclude: vec![],
        };
        let err = Governed::new(echo(), "pg", "pg", &filter, false)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("tools.include: invalid pattern \"pg_[\""),
            "{err}"
        );
    }

    #[tokio::test]
    async fn prompts_take_the_prefix_and_name_the_served_tools() {
        let g = Governed::new(echo(), "pg", "orders", &ToolFilter::default(), false).unwrap();
        assert_eq!(g.prompts()[0].name, "orders_explore");
        let result = g
            .get_prompt("orders_explore", PromptArgs::new(), &CallContext::new("t"))
            .await
            .unwrap();
        let text = &result.messages[0].content.as_text().unwrap().text;
        assert_eq!(
            text,
            "pg_explore: call orders_list_tables, then orders_query (not my_pg_query)."
        );
        let err = g
            .get_prompt("pg_explore", PromptArgs::new(), &CallContext::new("t"))
            .await
            .unwrap_err();
        assert_eq!(err, PromptError::NotFound("pg_explore".into()));
    }

    #[tokio::test]
    async fn the_link_describes_itself_without_secrets() {
        let limits = LinkLimits {
            timeout_seconds: Some(5),
            ..LinkLimits::default()
        };
        let g = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), false)
            .unwrap()
            .describing("orders", "postgres", false)
            .with_limits(&limits);
        assert_eq!(g.resources()[0].uri, "linkmcp://links/orders");
        let contents = g
            .read_resource("linkmcp://links/orders", &CallContext::new("t"))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &contents[0] else {
            panic!("not text");
        };
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["name"], "orders");
        assert_eq!(value["type"], "postgres");
        assert_eq!(value["writeAccess"], false);
        assert_eq!(value["timeoutSeconds"], 5);
        let tools: Vec<&str> = value["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tools, ["pg_query", "pg_list_tables"]);
        let err = g
            .read_resource("linkmcp://links/other", &CallContext::new("t"))
            .await
            .unwrap_err();
        assert_eq!(err, ResourceError::NotFound("linkmcp://links/other".into()));
    }

    /// A backend whose calls take `hold` and that records the most calls it ran at once.
    struct Slow {
        defs: Vec<ToolDef>,
        hold: std::time::Duration,
        running: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl Toolset for Slow {
        fn tools(&self) -> &[ToolDef] {
            &self.defs
        }
        fn call<'a>(
            &'a self,
            _name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            use std::sync::atomic::Ordering::SeqCst;
            Box::pin(async move {
                let now = self.running.fetch_add(1, SeqCst) + 1;
                self.most.fetch_max(now, SeqCst);
                tokio::time::sleep(self.hold).await;
                self.running.fetch_sub(1, SeqCst);
                output::ok_text("done")
            })
        }
    }

    fn slow_link(hold_ms: u64, max: i32) -> (Arc<Slow>, Governed) {
        let slow = Arc::new(Slow {
            defs: vec![ToolDef::read::<NoArgs>("pg_query", "q").unwrap()],
            hold: std::time::Duration::from_millis(hold_ms),
            running: 0.into(),
            most: 0.into(),
        });
        let limits = LinkLimits {
            max_concurrent_calls: Some(max),
            ..LinkLimits::default()
        };
        let governed = Governed::new(slow.clone(), "pg", "pg", &ToolFilter::default(), false)
            .unwrap()
            .with_limits(&limits);
        (slow, governed)
    }

    #[tokio::test]
    async fn calls_beyond_the_links_concurrency_bound_queue_for_a_slot() {
        let (slow, g) = slow_link(100, 2);
        let ctx = CallContext::new("t").with_timeout(std::time::Duration::from_secs(5));
        let calls = (0..6).map(|_| g.call("pg_query", JsonObject::new(), &ctx));
        let results = futures::future::join_all(calls).await;
        assert!(results.iter().all(|r| r.is_error != Some(true)));
        assert_eq!(slow.most.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_call_that_finds_no_slot_in_time_says_why() {
        let (_slow, g) = slow_link(2_000, 1);
        let ctx = CallContext::new("t").with_timeout(std::time::Duration::from_millis(300));
        let long = CallContext::new("t").with_timeout(std::time::Duration::from_secs(5));
        let (first, second) = tokio::join!(g.call("pg_query", JsonObject::new(), &long), async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            g.call("pg_query", JsonObject::new(), &ctx).await
        });
        assert_ne!(first.is_error, Some(true));
        assert_eq!(second.is_error, Some(true));
        let text = &second.content[0].as_text().unwrap().text;
        assert!(
            text.contains("1 calls running") && text.contains("maxConcurrentCalls"),
            "{text}"
        );
    }

    /// A backend counting its calls; `pg_fail` always fails.
    #[derive(Default)]
    struct Counting {
        defs: Vec<ToolDef>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl Toolset for Counting {
        fn tools(&self) -> &[ToolDef] {
            &self.defs
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            Box::pin(async move {
                if name == "pg_fail" {
                    output::error("backend down")
                } else {
                    output::ok_text(format!("{name} answer {n}"))
                }
            })
        }
    }

    fn cached_link(spec: serde_json::Value) -> (Arc<Counting>, Governed) {
        let backend = Arc::new(Counting {
            defs: vec![
                ToolDef::read::<NoArgs>("pg_query", "q").unwrap(),
                ToolDef::read::<NoArgs>("pg_list_tables", "l").unwrap(),
                ToolDef::read::<NoArgs>("pg_fail", "f").unwrap(),
                ToolDef::write::<NoArgs>("pg_execute", "e").unwrap(),
            ],
            calls: 0.into(),
        });
        let spec: ResultCache = serde_json::from_value(spec).unwrap();
        let governed = Governed::new(backend.clone(), "pg", "pg", &ToolFilter::default(), true)
            .unwrap()
            .with_cache(Some(&spec))
            .unwrap();
        (backend, governed)
    }

    fn args(value: serde_json::Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    fn text(result: &CallToolResult) -> String {
        result.content[0].as_text().unwrap().text.clone()
    }

    #[tokio::test]
    async fn read_results_are_reused_per_tool_arguments_and_caller_while_fresh() {
        use super::super::cache::cache_outcome;
        let (backend, g) = cached_link(serde_json::json!({"ttlSeconds": 1}));
        let alice = CallContext::new("alice");
        let bob = CallContext::new("bob");
        let q = |sql: &str| args(serde_json::json!({"sql": sql, "limit": 5}));

        let first = g.call("pg_query", q("select 1"), &alice).await;
        assert_eq!(cache_outcome(&first), Some("miss"));
        let again = g.call("pg_query", q("select 1"), &alice).await;
        assert_eq!(cache_outcome(&again), Some("hit"));
        assert_eq!(text(&again), text(&first));
        // The same arguments written in another key order are the same call.
        let reordered = args(serde_json::json!({"limit": 5, "sql": "select 1"}));
        assert_eq!(
            cache_outcome(&g.call("pg_query", reordered, &alice).await),
            Some("hit")
        );
        assert_eq!(backend.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        // Another caller, other arguments: the backend answers.
        assert_eq!(
            cache_outcome(&g.call("pg_query", q("select 1"), &bob).await),
            Some("miss")
        );
        assert_eq!(
            cache_outcome(&g.call("pg_query", q("select 2"), &alice).await),
            Some("miss")
        );
        assert_eq!(backend.calls.load(std::sync::atomic::Ordering::SeqCst), 3);

        // Once stale, the backend answers again.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let stale = g.call("pg_query", q("select 1"), &alice).await;
        assert_eq!(cache_outcome(&stale), Some("miss"));
        assert_ne!(text(&stale), text(&first));
    }

    #[tokio::test]
    async fn writes_failures_and_excluded_tools_are_never_cached() {
        use super::super::cache::cache_outcome;
        let (backend, g) = cached_link(serde_json::json!({
            "ttlSeconds": 60,
            "tools": [{"name": "pg_list_*", "ttlSeconds": 0}]
        }));
        let ctx = CallContext::new("alice");
        for tool in ["pg_execute", "pg_list_tables"] {
            let one = g.call(tool, JsonObject::new(), &ctx).await;
            let two = g.call(tool, JsonObject::new(), &ctx).await;
            assert_eq!(cache_outcome(&two), None, "{tool}");
            assert_ne!(text(&one), text(&two), "{tool}");
        }
        let failed = g.call("pg_fail", JsonObject::new(), &ctx).await;
        assert_eq!(failed.is_error, Some(true));
        let retried = g.call("pg_fail", JsonObject::new(), &ctx).await;
        assert_eq!(
            cache_outcome(&retried),
            Some("miss"),
            "a failure is not kept"
        );
        assert_eq!(backend.calls.load(std::sync::atomic::Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_max_entries() {
        let (_backend, g) = cached_link(serde_json::json!({"ttlSeconds": 60, "maxEntries": 3}));
        let ctx = CallContext::new("alice");
        for i in 0..10 {
            g.call("pg_query", args(serde_json::json!({"sql": i})), &ctx)
                .await;
        }
        assert_eq!(g.cache.as_ref().unwrap().len(), 3);
        // The newest are the ones kept.
        let newest = g
            .call("pg_query", args(serde_json::json!({"sql": 9})), &ctx)
            .await;
        assert_eq!(super::super::cache::cache_outcome(&newest), Some("hit"));
    }

    #[test]
    fn a_bad_cache_pattern_is_a_clear_error() {
        let backend = Arc::new(Counting::default());
        let spec: ResultCache = serde_json::from_value(
            serde_json::json!({"ttlSeconds": 5, "tools": [{"name": "pg_[", "ttlSeconds": 1}]}),
        )
        .unwrap();
        let err = Governed::new(backend, "pg", "pg", &ToolFilter::default(), true)
            .unwrap()
            .with_cache(Some(&spec))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("cache.tools: invalid pattern"),
            "{err}"
        );
    }
}
