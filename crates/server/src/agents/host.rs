//! The registry as the agent loop's tool host: agents list and call tools exactly as MCP
//! clients do, through `Registry::call` with its limits, scrubbing and audit.

use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::LinkType;
use linkmcp_factory::{HostTool, ToolHost};
use linkmcp_toolsets::{CallContext, output};
use rmcp::model::{CallToolResult, JsonObject};

use crate::links::LinkStatuses;
use crate::mcp::CallLimits;
use crate::registry::Registry;

/// The server's registry seen by the factory.
pub struct RegistryHost {
    registry: Arc<Registry>,
    statuses: Arc<LinkStatuses>,
    limits: CallLimits,
}

impl RegistryHost {
    /// A host calling `registry` under `limits`; link types come from `statuses`.
    pub fn new(registry: Arc<Registry>, statuses: Arc<LinkStatuses>, limits: CallLimits) -> Self {
        Self {
            registry,
            statuses,
            limits,
        }
    }
}

impl ToolHost for RegistryHost {
    fn tools(&self) -> Vec<HostTool> {
        let statuses = self.statuses.get();
        let snapshot = self.registry.snapshot();
        snapshot
            .entries()
            .map(|(key, def)| {
                let tool = HostTool::from(def);
                let link_type = key
                    .as_str()
                    .strip_prefix("link/")
                    .and_then(|link| statuses.get(link))
                    .and_then(|status| status.r#type.as_deref())
                    .and_then(|t| LinkType::ALL.into_iter().find(|lt| lt.as_str() == t));
                match link_type {
                    Some(link_type) => tool.with_link_type(link_type),
                    None => tool,
                }
            })
            .collect()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        identity: &'a str,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            let ctx = CallContext::new(identity)
                .with_timeout(self.limits.timeout)
                .with_max_output_bytes(self.limits.max_output_bytes);
            match self.registry.call(name, args, &ctx).await {
                Ok(result) => result,
                Err(unknown) => output::error(format!(
                    "tool `{}` is not served by this server; available: {}",
                    unknown.name,
                    unknown.available.join(", ")
                )),
            }
        })
    }
}
