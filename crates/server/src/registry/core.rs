//! The built-in `core` toolset, present on every server whatever is linked to it.
//!
//! `ping` lets a client or an operator check the whole path (HTTP, MCP session, registry,
//! tool call) without touching a backend; `server_info` tells a model which toolsets are
//! linked before it picks a tool. Neither reveals anything secret.

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use linkmcp_toolsets::{CallContext, NoArgs, ToolDef, Toolset, output, parse_args};
use rmcp::model::{CallToolResult, JsonObject};
use serde::Serialize;

use super::{Registry, RegistryError, ToolsetKey};

/// The built-in tools: `ping` and `server_info`.
pub struct CoreToolset {
    server_name: String,
    registry: Weak<Registry>,
    defs: Vec<ToolDef>,
}

#[derive(Serialize)]
struct ServerInfo<'a> {
    name: &'a str,
    version: &'static str,
    toolsets: Vec<ToolsetInfo<'a>>,
    tools: usize,
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
        Ok(Self {
            server_name: server_name.into(),
            registry: Arc::downgrade(registry),
            defs,
        })
    }

    fn server_info(&self) -> CallToolResult {
        let Some(registry) = self.registry.upgrade() else {
            return output::error("the server is shutting down");
        };
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
        output::ok_json(&info, text)
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
}

/// Registers the core toolset of `server_name` in `registry` under [`ToolsetKey::core`].
pub fn register(registry: &Arc<Registry>, server_name: &str) -> Result<(), RegistryError> {
    let core = CoreToolset::new(server_name, registry)?;
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
        register(&registry, "demo").unwrap();
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
        register(&registry, "demo").unwrap();
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
}
