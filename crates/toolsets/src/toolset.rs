//! The seam between the server's tool registry and one backend's tools.
//!
//! A [`Toolset`] declares its tools as [`ToolDef`]s and executes calls to them. The registry
//! owns routing, time limits and panic isolation; a toolset only turns typed arguments into a
//! bounded result, and reports every failure as an `isError` result a model can act on.

use std::{borrow::Cow, time::Duration};

use futures::future::BoxFuture;
use rmcp::{
    handler::server::tool::schema_for_input,
    model::{CallToolResult, JsonObject, Tool, ToolAnnotations},
};
use schemars::JsonSchema;

use crate::{
    client::Client,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptError},
    resource::{Resource, ResourceContents, ResourceError, ResourceTemplateDef},
};

/// Whether a tool only reads from its backend or may change it.
///
/// Write tools are registered only where a link enables writes, and never offered to a
/// monitor-mode agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Observes the backend without changing it (enforced by the backend, e.g. a READ ONLY
    /// transaction, not by inspecting the request).
    Read,
    /// May create, change or delete data in the backend.
    Write,
}

/// A tool definition that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ToolDefError {
    /// The name breaks the MCP tool-name rules (1 to 128 of `A-Z a-z 0-9 _ - .`).
    #[error("tool name `{name}` is invalid: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// The parameter type does not produce an object schema, as MCP requires.
    #[error("tool `{name}` has an invalid input schema: {reason}")]
    InvalidInputSchema { name: String, reason: String },
}

/// One tool: its MCP description (name, description, input schema, annotations) and its access.
///
/// Built with [`ToolDef::read`] or [`ToolDef::write`], which derive the input schema from the
/// parameter type and set the annotations consistently with the access; the builder methods
/// adjust the hints that depend on what the tool does.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    tool: Tool,
    access: Access,
}

impl ToolDef {
    /// A read tool taking parameters `P`: `readOnlyHint: true`, `destructiveHint: false`,
    /// `idempotentHint: true`, `openWorldHint: true` (a link talks to an outside service).
    pub fn read<P: JsonSchema + 'static>(
        name: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Result<Self, ToolDefError> {
        let annotations = ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(true);
        Self::build::<P>(name.into(), description.into(), annotations, Access::Read)
    }

    /// A write tool taking parameters `P`: `readOnlyHint: false`, `destructiveHint: true`,
    /// `idempotentHint: false`, `openWorldHint: true`. Use [`ToolDef::destructive`] and
    /// [`ToolDef::idempotent`] for tools that only add data or can safely be repeated.
    pub fn write<P: JsonSchema + 'static>(
        name: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Result<Self, ToolDefError> {
        let annotations = ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true);
        Self::build::<P>(name.into(), description.into(), annotations, Access::Write)
    }

    fn build<P: JsonSchema + 'static>(
        name: Cow<'static, str>,
        description: Cow<'static, str>,
        annotations: ToolAnnotations,
        access: Access,
    ) -> Result<Self, ToolDefError> {
        validate_name(&name)?;
        let schema =
            schema_for_input::<P>().map_err(|reason| ToolDefError::InvalidInputSchema {
                name: name.to_string(),
                reason,
            })?;
        let tool = Tool::new(name, description, schema).with_annotations(annotations);
        Ok(Self { tool, access })
    }

    /// Sets `destructiveHint`: whether a write may delete or overwrite (true) or only adds.
    pub fn destructive(self, destructive: bool) -> Self {
        self.map_annotations(|a| a.destructive(destructive))
    }

    /// Sets `idempotentHint`: whether repeating a call with the same arguments has no further
    /// effect.
    pub fn idempotent(self, idempotent: bool) -> Self {
        self.map_annotations(|a| a.idempotent(idempotent))
    }

    /// Sets `openWorldHint`: false for tools whose domain is closed (the server's own state).
    pub fn open_world(self, open_world: bool) -> Self {
        self.map_annotations(|a| a.open_world(open_world))
    }

    /// Sets a human-readable title shown by clients instead of the name.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.tool.title = Some(title.into());
        self
    }

    fn map_annotations(mut self, f: impl FnOnce(ToolAnnotations) -> ToolAnnotations) -> Self {
        let annotations = self.tool.annotations.take().unwrap_or_default();
        self.tool.annotations = Some(f(annotations));
        self
    }

    /// The same tool served under another name (a link's tool prefix).
    pub fn renamed(&self, name: impl Into<Cow<'static, str>>) -> Result<Self, ToolDefError> {
        let name = name.into();
        validate_name(&name)?;
        let mut renamed = self.clone();
        renamed.tool.name = name;
        Ok(renamed)
    }

    /// The tool's name, unique across a server.
    pub fn name(&self) -> &str {
        &self.tool.name
    }

    /// The MCP tool description as listed to clients.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }

    /// Whether the tool reads or writes.
    pub fn access(&self) -> Access {
        self.access
    }
}

/// MCP tool names (SEP-986): 1 to 128 characters from `A-Z a-z 0-9 _ - .`.
fn validate_name(name: &str) -> Result<(), ToolDefError> {
    let invalid = |reason| ToolDefError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("a tool name has 1 to 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            "a tool name uses only A-Z, a-z, 0-9, `_`, `-` and `.`",
        ));
    }
    Ok(())
}

/// What a tool call may use beyond its arguments: who calls, and the limits it must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The authenticated client identity, as written to the audit log.
    pub identity: String,
    /// How long the call may take; the registry abandons it after this.
    pub timeout: Duration,
    /// The most text a result may carry; longer output is cut with [`crate::output::cap_text`].
    pub max_output_bytes: usize,
    /// Which tools the caller may call, when a tool lists other tools (`find_tools`) and must
    /// not show more than `tools/list` does to this caller. `None`: no such check was given.
    pub visible: Option<ToolVisibility>,
    /// The channel back to the client while the call runs: progress, logs, questions.
    pub client: Client,
}

/// Whether the caller of a call may call a tool (by name): the server's scope check, handed
/// to the few tools that describe other tools.
#[derive(Clone)]
pub struct ToolVisibility(std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl ToolVisibility {
    /// The check `may_call` answers.
    pub fn new(may_call: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(may_call))
    }

    /// Whether the caller may call `tool`.
    pub fn allows(&self, tool: &str) -> bool {
        (self.0)(tool)
    }
}

impl std::fmt::Debug for ToolVisibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToolVisibility")
    }
}

/// Two checks are equal when they are the same check.
impl PartialEq for ToolVisibility {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ToolVisibility {}

impl CallContext {
    /// The per-call time limit when none is configured.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The output cap when none is configured (64 KiB, roughly 16k tokens).
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;

    /// A context for `identity` with the default limits.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            visible: None,
            client: Client::none(),
        }
    }

    /// Gives the call a channel back to its client (see [`CallContext::client`]).
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }

    /// Gives the call the caller's tool visibility (see [`CallContext::visible`]).
    pub fn with_visibility(mut self, visible: ToolVisibility) -> Self {
        self.visible = Some(visible);
        self
    }

    /// Replaces the per-call time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the output cap.
    pub fn with_max_output_bytes(mut self, max_output_bytes: usize) -> Self {
        self.max_output_bytes = max_output_bytes;
        self
    }
}

/// Bounds a toolset sets for its own calls, overriding the server's: a link's `spec.limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolsetLimits {
    /// How long one call may run, instead of the server's tool timeout.
    pub timeout: Option<Duration>,
    /// The most text one result may carry, instead of the server's output cap.
    pub max_output_bytes: Option<usize>,
}

impl ToolsetLimits {
    /// `ctx` with these bounds in place of the server's.
    pub fn apply(&self, ctx: &CallContext) -> CallContext {
        let mut ctx = ctx.clone();
        if let Some(timeout) = self.timeout {
            ctx.timeout = timeout;
        }
        if let Some(max) = self.max_output_bytes {
            ctx.max_output_bytes = max;
        }
        ctx
    }
}

/// The tools of one link (or one built-in feature), registered in the server under one key,
/// with the resources and prompts that come with them.
///
/// Implementations are shared by all sessions and called concurrently. `call` receives only
/// names listed by `tools` (the registry routes by name) and reports every failure, including
/// bad arguments, as an `isError` result with a message a model can act on. Resources and
/// prompts are optional: a toolset that serves none keeps the defaults.
pub trait Toolset: Send + Sync {
    /// The tools this toolset serves. The registry reads them when the toolset is registered.
    fn tools(&self) -> &[ToolDef];

    /// Bounds of this toolset's calls that replace the server's; none by default.
    fn limits(&self) -> ToolsetLimits {
        ToolsetLimits::default()
    }

    /// Executes the tool `name` with the client's `args`.
    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult>;

    /// The resources with a fixed URI this toolset serves.
    fn resources(&self) -> &[Resource] {
        &[]
    }

    /// The URI templates this toolset serves resources under.
    fn resource_templates(&self) -> &[ResourceTemplateDef] {
        &[]
    }

    /// Reads the resource `uri`: one listed by [`Toolset::resources`] or matching one of
    /// [`Toolset::resource_templates`] (the registry routes no other URI here).
    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(async move { Err(ResourceError::NotFound(uri.to_owned())) })
    }

    /// The prompts this toolset serves.
    fn prompts(&self) -> &[Prompt] {
        &[]
    }

    /// The messages of prompt `name` (one listed by [`Toolset::prompts`]) for `args`, which
    /// the registry has checked against the prompt's declared arguments.
    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        _args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move { Err(PromptError::NotFound(name.to_owned())) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::NoArgs;

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Query {
        /// The SQL to run.
        sql: String,
        limit: Option<u32>,
    }

    #[test]
    fn read_tool_is_read_only_and_idempotent() {
        let def = ToolDef::read::<Query>("pg_query", "Run a read-only query.").unwrap();
        let a = def.tool().annotations.clone().unwrap();
        assert_eq!(def.access(), Access::Read);
        assert_eq!(a.read_only_hint, Some(true));
        assert_eq!(a.destructive_hint, Some(false));
        assert_eq!(a.idempotent_hint, Some(true));
        assert_eq!(a.open_world_hint, Some(true));
        let schema = &def.tool().input_schema;
        assert_eq!(schema.get("type").unwrap(), "object");
        assert!(schema["properties"].get("sql").is_some());
        assert_eq!(schema["required"], serde_json::json!(["sql"]));
    }

    #[test]
    fn write_tool_is_destructive_unless_adjusted() {
        let def = ToolDef::write::<NoArgs>("kafka_produce", "Produce one message.").unwrap();
        let a = def.tool().annotations.clone().unwrap();
        assert_eq!(def.access(), Access::Write);
        assert_eq!(a.read_only_hint, Some(false));
        assert_eq!(a.destructive_hint, Some(true));
        assert_eq!(a.idempotent_hint, Some(false));

        let def = def.destructive(false).idempotent(true).open_world(false);
        let a = def.tool().annotations.clone().unwrap();
        assert_eq!(a.destructive_hint, Some(false));
        assert_eq!(a.idempotent_hint, Some(true));
        assert_eq!(a.open_world_hint, Some(false));
    }

    #[test]
    fn non_object_parameters_are_refused() {
        let err = ToolDef::read::<String>("bad", "x").unwrap_err();
        assert!(
            matches!(err, ToolDefError::InvalidInputSchema { ref name, .. } if name == "bad"),
            "{err}"
        );
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["", "has space", "slash/name", &"x".repeat(129)] {
            let err = ToolDef::read::<NoArgs>(name.to_owned(), "x").unwrap_err();
            assert!(
                matches!(err, ToolDefError::InvalidName { .. }),
                "{name}: {err}"
            );
        }
        assert!(ToolDef::read::<NoArgs>("a.b-c_d9", "x").is_ok());
    }
}
