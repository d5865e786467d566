//! The built-in `core` toolset, present on every server whatever is linked to it.
//!
//! `ping` lets a client or an operator check the whole path (HTTP, MCP session, registry,
//! tool call) without touching a backend; `server_info` tells a model which toolsets are
//! linked before it picks a tool, and the resource `linkmcp://server/info` says the same to a
//! client that reads resources. The prompt `linkmcp_overview` asks a model to survey what the
//! server links to. With `findTools` (off by default), `find_tools` answers a client with a
//! long tool list which tools fit what it describes — ranked as the Dark Factory's selection
//! ranks them, and only among the tools this caller may call. None of them reveals anything
//! secret.

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use linkmcp_api::task::TaskMode;
use linkmcp_factory::{HostTool, find_tools, select::SelectOptions};
use linkmcp_toolsets::{
    CallContext, NoArgs, ToolDef, Toolset, output, parse_args,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptError, PromptMessage},
    resource::{Resource, ResourceContents, ResourceError, text_contents},
};
use rmcp::model::{CallToolResult, JsonObject, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The resource describing the server, as `server_info` does.
pub const SERVER_INFO_URI: &str = "linkmcp://server/info";

/// The prompt asking a model to survey the server's links.
pub const OVERVIEW_PROMPT: &str = "linkmcp_overview";

use super::{Registry, RegistryError, ToolsetKey};

/// The built-in tools: `ping` and `server_info`.
pub struct CoreToolset {
    server_name: String,
    registry: Weak<Registry>,
    defs: Vec<ToolDef>,
    resources: Vec<Resource>,
    prompts: Vec<Prompt>,
}

#[derive(Serialize)]
struct ServerInfo<'a> {
    name: &'a str,
    version: &'static str,
    toolsets: Vec<ToolsetInfo<'a>>,
    tools: usize,
}

/// Parameters of find_tools.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindToolsArgs {
    /// What the tool should do, in a few words, e.g. "p99 latency of a service over time";
    /// naming the system (PostgreSQL, Prometheus, Kafka, ...) helps.
    query: String,
    /// Most tools returned (default 5, at most 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    limit: Option<usize>,
}

#[derive(Serialize)]
struct ToolsetInfo<'a> {
    key: &'a str,
    tools: usize,
}

impl CoreToolset {
    /// The core toolset of the server `server_name`, reporting on `registry`.
    pub fn new(
        server_name: impl Into<String>,
        registry: &Arc<Registry>,
    ) -> Result<Self, RegistryError> {
        let defs = vec![
            ToolDef::read::<NoArgs>(
                "ping",
                "Check that this MCP server is reachable and answering. Takes no arguments and \
                 returns \"pong\".",
            )?
            .open_world(false),
            ToolDef::read::<NoArgs>(
                "server_info",
                "Describe this MCP server: its name, its version, and the toolsets it serves \
                 (`core` for the built-in tools, `link/<name>` for each linked service) with the \
                 number of tools each provides. Use it to see which services are linked before \
                 choosing a tool.",
            )?
            .open_world(false),
        ];
        let resources = vec![
            Resource::new(SERVER_INFO_URI, "server-info")
                .with_title("This MCP server")
                .with_description(
                    "This server's name, version and toolsets (`core`, `link/<name>` for each \
                     linked service) with their tool counts, as the server_info tool returns \
                     them.",
                )
                .with_mime_type("application/json"),
        ];
        let prompts =
            vec![Prompt::new(
            OVERVIEW_PROMPT,
            Some(
                "Survey the services linked to this MCP server and what can be done with each, \
                 before starting a task.",
            ),
            None,
        )
        .with_title("What is linked here?")];
        Ok(Self {
            server_name: server_name.into(),
            registry: Arc::downgrade(registry),
            defs,
            resources,
            prompts,
        })
    }

    /// Also serves `find_tools`.
    pub fn with_find_tools(mut self) -> Result<Self, RegistryError> {
        self.defs.push(
            ToolDef::read::<FindToolsArgs>(
                find_tools::FIND_TOOLS,
                "Find the tools of this server that fit a task: describe what you want to do \
                 (e.g. \"p99 latency of the gateway over the last hours\", \"insert a row into \
                 PostgreSQL\") and get the best matching tools with their descriptions and \
                 input schemas, among those you may call.",
            )?
            .open_world(false),
        );
        Ok(self)
    }

    /// The best matches for the caller's query among the tools it may call.
    fn find_tools(&self, args: FindToolsArgs, ctx: &CallContext) -> CallToolResult {
        let Some(registry) = self.registry.upgrade() else {
            return output::error("the server is shutting down");
        };
        let query = args.query.trim();
        if query.is_empty() {
            return output::error("`query` is empty: describe what the tool should do");
        }
        let limit = args
            .limit
            .unwrap_or(find_tools::DEFAULT_LIMIT)
            .clamp(1, find_tools::MAX_LIMIT);
        let snapshot = registry.snapshot();
        let tools: Vec<HostTool> = snapshot
            .entries()
            .filter(|(key, _)| **key != ToolsetKey::core())
            .filter(|(_, def)| ctx.visible.as_ref().is_none_or(|v| v.allows(def.name())))
            .map(|(_, def)| HostTool::from(def))
            .collect();
        let candidates: Vec<&HostTool> = tools.iter().collect();
        // A client may call write tools: rank among all of them.
        let options = SelectOptions {
            max_tools: limit,
            mode: TaskMode::Act,
        };
        let found = find_tools::find(query, limit, &candidates, &options);
        let items: Vec<serde_json::Value> = found
            .iter()
            .map(|tool| {
                serde_json::json!({
                    "name": tool.name(),
                    "access": match tool.access {
                        linkmcp_toolsets::Access::Read => "read",
                        linkmcp_toolsets::Access::Write => "write",
                    },
                    "description": tool.description(),
                    "inputSchema": tool.tool.input_schema.as_ref(),
                })
            })
            .collect();
        let text = if found.is_empty() {
            format!("no tool of this server matches \"{query}\"")
        } else {
            let names: Vec<&str> = found.iter().map(|t| t.name()).collect();
            format!(
                "{} tool(s) for \"{query}\": {}",
                found.len(),
                names.join(", ")
            )
        };
        output::ok_json(&serde_json::json!({"query": query, "tools": items}), text)
    }

    /// What `server_info` and `linkmcp://server/info` report, with a one-line summary.
    fn info(&self) -> Option<(serde_json::Value, String)> {
        let registry = self.registry.upgrade()?;
        let snapshot = registry.snapshot();
        let toolsets: Vec<ToolsetInfo<'_>> = snapshot
            .toolsets()
            .map(|(key, tools)| ToolsetInfo {
                key: key.as_str(),
                tools,
            })
            .collect();
        let info = ServerInfo {
            name: &self.server_name,
            version: env!("CARGO_PKG_VERSION"),
            tools: snapshot.tools().len(),
            toolsets,
        };
        let listing = info
            .toolsets
            .iter()
            .map(|t| format!("{} ({})", t.key, t.tools))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "{} {}: {} tools in {} toolsets: {listing}",
            info.name,
            info.version,
            info.tools,
            info.toolsets.len()
        );
        Some((serde_json::to_value(&info).unwrap_or_default(), text))
    }

    fn server_info(&self) -> CallToolResult {
        match self.info() {
            Some((info, text)) => output::ok_json(&info, text),
            None => output::error("the server is shutting down"),
        }
    }
}

impl Toolset for CoreToolset {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            if name == find_tools::FIND_TOOLS {
                return match parse_args::<FindToolsArgs>(args) {
                    Ok(args) => self.find_tools(args, _ctx),
                    Err(bad) => bad,
                };
            }
            if let Err(bad) = parse_args::<NoArgs>(args) {
                return bad;
            }
            match name {
                "ping" => output::ok_json(&serde_json::json!({ "pong": true }), "pong"),
                "server_info" => self.server_info(),
                other => output::error(format!("the core toolset has no tool `{other}`")),
            }
        })
    }

    fn resources(&self) -> &[Resource] {
        &self.resources
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(async move {
            if uri != SERVER_INFO_URI {
                return Err(ResourceError::NotFound(uri.to_owned()));
            }
            let (info, _) = self
                .info()
                .ok_or_else(|| ResourceError::Failed("the server is shutting down".to_owned()))?;
            let text = serde_json::to_string_pretty(&info).unwrap_or_default();
            Ok(vec![text_contents(uri, "application/json", text)])
        })
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        _args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move {
            if name != OVERVIEW_PROMPT {
                return Err(PromptError::NotFound(name.to_owned()));
            }
            let text = format!(
                "You are connected to the MCP server `{}`. Before starting a task, find out \
                 what it links to: call the server_info tool (or read the resource \
                 {SERVER_INFO_URI}) to list its toolsets, then read linkmcp://links/<name> for \
                 each `link/<name>` toolset to see its type, its tools and whether it may \
                 write. Summarise, per linked service, what it is and which tools answer which \
                 kind of question. Use read tools only; change nothing.",
                self.server_name
            );
            Ok(
                GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                    .with_description("Survey the services linked to this server."),
            )
        })
    }
}

/// Registers the core toolset of `server_name` in `registry` under [`ToolsetKey::core`], with
/// `find_tools` when `with_find_tools`.
pub fn register(
    registry: &Arc<Registry>,
    server_name: &str,
    with_find_tools: bool,
) -> Result<(), RegistryError> {
    let mut core = CoreToolset::new(server_name, registry)?;
    if with_find_tools {
        core = core.with_find_tools()?;
    }
    registry.insert(ToolsetKey::core(), Arc::new(core))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn ping_and_server_info() {
        let registry = Arc::new(Registry::new());
        register(&registry, "demo", false).unwrap();
        let ctx = CallContext::new("test");

        let pong = registry
            .call("ping", JsonObject::new(), &ctx)
            .await
            .unwrap();
        assert_eq!(pong.structured_content, Some(json!({"pong": true})));
        assert_eq!(pong.content[0].as_text().unwrap().text, "pong");

        let info = registry
            .call("server_info", JsonObject::new(), &ctx)
            .await
            .unwrap();
        assert_eq!(
            info.structured_content,
            Some(json!({
                "name": "demo",
                "version": env!("CARGO_PKG_VERSION"),
                "toolsets": [{"key": "core", "tools": 2}],
                "tools": 2,
            }))
        );
    }

    #[tokio::test]
    async fn core_tools_refuse_arguments_by_name() {
        let registry = Arc::new(Registry::new());
        register(&registry, "demo", false).unwrap();
        let args = json!({"verbose": true}).as_object().cloned().unwrap();
        let result = registry
            .call("ping", args, &CallContext::new("test"))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(
            result.content[0]
                .as_text()
                .unwrap()
                .text
                .contains("`verbose`")
        );
    }

    #[test]
    fn core_tools_are_closed_world_reads() {
        let registry = Arc::new(Registry::new());
        let core = CoreToolset::new("demo", &registry).unwrap();
        for def in core.tools() {
            let a = def.tool().annotations.clone().unwrap();
            assert_eq!(a.read_only_hint, Some(true), "{}", def.name());
            assert_eq!(a.idempotent_hint, Some(true), "{}", def.name());
            assert_eq!(a.open_world_hint, Some(false), "{}", def.name());
        }
    }

    #[tokio::test]
    async fn the_server_info_resource_and_the_overview_prompt() {
        let registry = Arc::new(Registry::new());
        register(&registry, "demo", false).unwrap();
        let ctx = CallContext::new("test");
        let contents = registry.read_resource(SERVER_INFO_URI, &ctx).await.unwrap();
        let ResourceContents::TextResourceContents { text, .. } = &contents[0] else {
            panic!("not text");
        };
        let info: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(info["name"], "demo");
        assert_eq!(info["toolsets"], json!([{"key": "core", "tools": 2}]));

        let prompt = registry
            .get_prompt(OVERVIEW_PROMPT, None, &ctx)
            .await
            .unwrap();
        let text = &prompt.messages[0].content.as_text().unwrap().text;
        assert!(
            text.contains("`demo`") && text.contains("server_info"),
            "{text}"
        );
        let err = registry
            .get_prompt(
                OVERVIEW_PROMPT,
                json!({"x": "y"}).as_object().cloned(),
                &ctx,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("takes no arguments"), "{err}");
    }

    /// A link's tools, for find_tools to search.
    struct Linked(Vec<ToolDef>);

    impl Toolset for Linked {
        fn tools(&self) -> &[ToolDef] {
            &self.0
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

    fn searchable() -> Arc<Registry> {
        let registry = Arc::new(Registry::new());
        register(&registry, "demo", true).unwrap();
        let linked = Linked(vec![
            ToolDef::read::<NoArgs>(
                "prom_query_range",
                "Evaluate a PromQL expression over a time range on Prometheus.",
            )
            .unwrap(),
            ToolDef::read::<NoArgs>("pg_query", "Run a read-only SQL query on PostgreSQL.")
                .unwrap(),
            ToolDef::write::<NoArgs>(
                "pg_execute",
                "Execute a SQL statement that changes PostgreSQL data.",
            )
            .unwrap(),
        ]);
        registry
            .insert(ToolsetKey::link("stack"), Arc::new(linked))
            .unwrap();
        registry
    }

    fn found(result: &CallToolResult) -> Vec<String> {
        result.structured_content.as_ref().unwrap()["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn find_tools_ranks_the_callers_tools_and_hides_the_others() {
        let registry = searchable();
        let query = |q: &str| json!({"query": q}).as_object().cloned().unwrap();
        let all = CallContext::new("test");
        let result = registry
            .call("find_tools", query("PostgreSQL insert a row"), &all)
            .await
            .unwrap();
        let names = found(&result);
        assert!(names.contains(&"pg_execute".to_owned()), "{names:?}");
        assert!(
            !names.iter().any(|n| n == "ping" || n == "find_tools"),
            "{names:?}"
        );
        let schema = &result.structured_content.as_ref().unwrap()["tools"][0]["inputSchema"];
        assert_eq!(schema["type"], "object");

        // A caller that may not call pg_execute does not learn of it.
        let limited = CallContext::new("test").with_visibility(
            linkmcp_toolsets::ToolVisibility::new(|tool| tool != "pg_execute"),
        );
        let names = found(
            &registry
                .call("find_tools", query("PostgreSQL insert a row"), &limited)
                .await
                .unwrap(),
        );
        assert!(!names.contains(&"pg_execute".to_owned()), "{names:?}");
        assert!(names.contains(&"pg_query".to_owned()), "{names:?}");

        let bad = registry
            .call(
                "find_tools",
                json!({"q": "x"}).as_object().cloned().unwrap(),
                &all,
            )
            .await
            .unwrap();
        assert_eq!(bad.is_error, Some(true));
    }

    #[test]
    fn find_tools_is_served_only_when_asked() {
        let registry = Arc::new(Registry::new());
        let plain = CoreToolset::new("demo", &registry).unwrap();
        assert!(!plain.tools().iter().any(|d| d.name() == "find_tools"));
        let with = CoreToolset::new("demo", &registry)
            .unwrap()
            .with_find_tools()
            .unwrap();
        assert!(with.tools().iter().any(|d| d.name() == "find_tools"));
    }
}
