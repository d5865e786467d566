//! The rmcp `ServerHandler`, written over the shared registry.
//!
//! rmcp's `#[tool]` router fixes a server's tools at compile time and per handler; here tools
//! change at run time and are shared by all sessions, so `tools/list` and `tools/call` read
//! the registry directly.
//!
//! Resources and prompts come from the same registry (`resources/list`, `resources/read`,
//! `resources/templates/list`, `prompts/list`, `prompts/get`), and a legacy session's
//! `resources/subscribe` set lives in its handler instance, where [`super::Peers`] finds it.
//!
//! Every request answers the caller at hand: the auth middleware puts its [`Identity`] into
//! the HTTP request's extensions, and rmcp hands the request's `http::request::Parts` to the
//! handler in [`RequestContext::extensions`]. `tools/list` shows the caller only the tools its
//! scopes allow; a toolset's resources and prompts are shown to a caller who may call all of
//! that toolset's read tools (they read the same backend); calls run under the caller's
//! identity (the audit log's client).
//!
//! A call can talk back to its client while it runs (progress, log messages, questions):
//! each `tools/call` and `prompts/get` gets a [`RequestLink`], and when the call asked
//! something the client answers on a next round (2026-07-28), the handler replies with the
//! link's `InputRequiredResult` instead of the toolset's result.

use std::{sync::Arc, time::Duration};

use axum::http::request::Parts;
use linkmcp_toolsets::{CallContext, Client, LogLevel, output};
use linkmcp_toolsets::{prompt::PromptError, resource::ResourceError};
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
        Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ReadResourceResult, ServerCapabilities, ServerConfig, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    Peers,
    client_link::{Outcome, RequestFacts, RequestLink, RoundState, level_from_mcp},
    peers::{Subscriptions, list_changed},
};
use crate::{
    auth::{self, Auth, Identity, UNAUTHENTICATED},
    observe::telemetry,
    registry::{Registry, Snapshot, ToolsetKey, UnknownTool},
};

/// The key of the confirmation question of a destructive call.
const CONFIRM_KEY: &str = "linkmcp.confirm";

/// At most this much of a call's arguments is shown in its confirmation.
const CONFIRM_ARGS_SHOWN: usize = 500;

/// At most this many tool names are quoted in an unknown-tool error.
const MAX_NAMES_IN_ERROR: usize = 50;

/// How calls talk back to their clients: whether sessions are off, and the key that seals
/// the answers of earlier rounds (2026-07-28).
pub struct TalkBack {
    /// The server runs without sessions.
    pub stateless: bool,
    /// Seals `requestState`.
    pub rounds: RoundState,
    /// Ask the user to confirm destructive calls when the client can be asked.
    pub confirm_destructive: bool,
}

/// The limits every tool call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// How long one call may run before it is stopped.
    pub timeout: Duration,
    /// The most text one result may carry.
    pub max_output_bytes: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            timeout: CallContext::DEFAULT_TIMEOUT,
            max_output_bytes: CallContext::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// The MCP server of one McpServer: a cheap handle over state shared by all sessions.
///
/// rmcp takes a fresh handler from its factory for every session and every stateless request;
/// give it [`McpHandler::instance`], so that each starts watching the registry when its
/// request arrives.
#[derive(Clone)]
pub struct McpHandler {
    shared: Arc<Shared>,
    /// Registry changes since this instance was made. A `subscriptions/listen` request is
    /// acknowledged before [`ServerHandler::listen`] runs; watching from the request's arrival
    /// means a change made right after the acknowledgment is still announced.
    changes: watch::Receiver<u64>,
    /// The registry state `changes` started from, to tell which lists a change changed.
    seen: Arc<Snapshot>,
    /// The resources this instance's session subscribed to (`resources/subscribe`).
    subscriptions: Subscriptions,
    /// The level this instance's session set with `logging/setLevel`; no log messages
    /// before it does.
    log_level: Arc<std::sync::Mutex<Option<LogLevel>>>,
}

struct Shared {
    registry: Arc<Registry>,
    peers: Arc<Peers>,
    info: ServerConfig,
    limits: CallLimits,
    /// Decides which tools a caller sees and may call.
    auth: Arc<Auth>,
    /// Ends open `subscriptions/listen` requests gracefully when the server stops.
    shutdown: CancellationToken,
    /// Whether sessions are off (no server-to-client requests before 2026-07-28).
    stateless: bool,
    /// Seals the answers of earlier rounds (2026-07-28 input requests).
    rounds: RoundState,
    /// Ask the user before a destructive call ([`McpHandler::confirmed`]).
    confirm_destructive: bool,
}

impl McpHandler {
    /// A handler serving `registry` as the server `server_name`, to callers as `auth` allows.
    pub fn new(
        registry: Arc<Registry>,
        server_name: &str,
        limits: CallLimits,
        auth: Arc<Auth>,
        shutdown: CancellationToken,
        talk_back: TalkBack,
    ) -> Self {
        // Declare only what is served: tools, prompts and resources, whose lists change at run
        // time, resource subscriptions (announced on every registry change, the only change
        // of a resource the server sees), and logging (tools send log messages during a call).
        #[allow(deprecated)] // Logging is part of the revisions up to 2025-11-25.
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_prompts_list_changed()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tool_list_changed()
            .build();
        let info = ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(server_name, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools for the services linked to this server. Call server_info to see which \
                 services are linked; the tool list changes when links are added or removed.",
            );
        let changes = registry.subscribe();
        let seen = registry.snapshot();
        Self {
            shared: Arc::new(Shared {
                registry,
                peers: Arc::new(Peers::default()),
                info,
                limits,
                auth,
                shutdown,
                stateless: talk_back.stateless,
                rounds: talk_back.rounds,
                confirm_destructive: talk_back.confirm_destructive,
            }),
            changes,
            seen,
            subscriptions: Subscriptions::default(),
            log_level: Arc::default(),
        }
    }

    /// A handler over the same state that watches registry changes from now on, with no
    /// resource subscriptions (one instance serves one session or one stateless request).
    pub fn instance(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            changes: self.shared.registry.subscribe(),
            seen: self.shared.registry.snapshot(),
            subscriptions: Subscriptions::default(),
            log_level: Arc::default(),
        }
    }

    /// The sessions to notify when the registry changes.
    pub fn peers(&self) -> &Arc<Peers> {
        &self.shared.peers
    }

    /// The registry this handler serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// The channel back to the client for one request, and the context with it.
    fn talk_back(
        &self,
        context: &RequestContext<RoleServer>,
        facts: RequestFacts<'_>,
        ctx: CallContext,
    ) -> Result<(Arc<RequestLink>, CallContext), ErrorData> {
        let link = Arc::new(RequestLink::new(
            context,
            self.shared.stateless,
            &self.shared.rounds,
            facts,
        )?);
        let ctx = ctx.with_client(Client::new(link.clone()));
        Ok((link, ctx))
    }

    /// With `confirmDestructive`, asks the person at the client before a tool with
    /// `destructiveHint` runs; `Err` is the refusal to answer with instead of running it (or
    /// the question is pending, at 2026-07-28). A client that cannot be asked calls as before:
    /// the setting protects people at interactive clients, it does not gate automation (scopes
    /// and write access do).
    async fn confirmed(
        &self,
        tool: &str,
        args: &rmcp::model::JsonObject,
        ctx: &CallContext,
    ) -> Result<(), rmcp::model::CallToolResult> {
        if !self.shared.confirm_destructive
            || !ctx
                .client
                .can_ask(linkmcp_toolsets::client::Capability::Elicitation)
        {
            return Ok(());
        }
        let destructive = self
            .shared
            .registry
            .get_tool(tool)
            .and_then(|t| t.annotations)
            .and_then(|a| a.destructive_hint)
            .unwrap_or(false);
        if !destructive {
            return Ok(());
        }
        let (shown, _) = output::cap_text(
            &serde_json::to_string(args).unwrap_or_default(),
            CONFIRM_ARGS_SHOWN,
        );
        let message = format!("Allow `{tool}`? It may change or delete data. Arguments: {shown}");
        let schema = rmcp::model::ElicitationSchema::builder()
            .required_bool("confirm")
            .description("Confirm the call")
            .build()
            .map_err(|e| output::error(format!("cannot ask for a confirmation: {e}")))?;
        match ctx.client.elicit(CONFIRM_KEY, message, schema).await {
            Ok(answer)
                if answer.accepted()
                    && answer
                        .content
                        .as_ref()
                        .and_then(|c| c.get("confirm"))
                        .and_then(serde_json::Value::as_bool)
                        == Some(true) =>
            {
                tracing::info!(tool, client = %ctx.identity, "destructive call confirmed by the user");
                Ok(())
            }
            Ok(answer) => {
                tracing::info!(tool, client = %ctx.identity, action = ?answer.action, "destructive call not confirmed");
                Err(output::error(format!(
                    "`{tool}` was not run: the user did not confirm it ({:?})",
                    answer.action
                )))
            }
            Err(err) => Err(output::error(format!(
                "`{tool}` was not run: its confirmation failed: {err}"
            ))),
        }
    }

    fn session_log_level(&self) -> Option<LogLevel> {
        *self
            .log_level
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn call_context(&self, identity: &Identity) -> CallContext {
        CallContext::new(identity.id.clone())
            .with_timeout(self.shared.limits.timeout)
            .with_max_output_bytes(self.shared.limits.max_output_bytes)
    }

    /// Whether `identity` may see the resources and prompts of the toolset under `key`: it
    /// may call every read tool of that toolset.
    fn may_read(&self, identity: &Identity, snapshot: &Snapshot, key: &ToolsetKey) -> bool {
        let auth = &self.shared.auth;
        identity.all_scopes
            || !auth.restricts_tools()
            || snapshot
                .read_tools_of(key)
                .all(|tool| auth.missing_tool_scopes(identity, tool).is_empty())
    }

    /// `text` (a URI or name the client sent) with the known secret values replaced, as the
    /// registry answers what it does not serve.
    fn scrubbed(&self, text: &str) -> String {
        self.shared
            .registry
            .guards()
            .scrubber()
            .scrub(text)
            .into_owned()
    }

    /// The items of `list` whose toolset (`key_of`) `identity` may read, for a list answer.
    fn readable<'s, T: Clone>(
        &self,
        identity: &Identity,
        snapshot: &'s Snapshot,
        list: &'s [T],
        key_of: impl Fn(&'s T) -> Option<&'s ToolsetKey>,
    ) -> Vec<T> {
        list.iter()
            .filter(|item| key_of(item).is_some_and(|key| self.may_read(identity, snapshot, key)))
            .cloned()
            .collect()
    }

    /// Whether `identity` may read the resource `uri` (it is served and readable to it).
    fn may_read_resource(&self, identity: &Identity, uri: &str) -> bool {
        let snapshot = self.shared.registry.snapshot();
        snapshot
            .resource_owner(uri)
            .is_some_and(|(key, _)| self.may_read(identity, &snapshot, key))
    }
}

/// SEP-2164: an unknown resource is `-32602` with the URI in `data`.
fn resource_error(err: ResourceError) -> ErrorData {
    match err {
        ResourceError::NotFound(uri) => ErrorData::invalid_params(
            format!("resource `{uri}` not found; see resources/list and resources/templates/list"),
            Some(serde_json::json!({ "uri": uri })),
        ),
        ResourceError::Failed(message) => ErrorData::internal_error(message, None),
    }
}

/// An unknown prompt or bad arguments are `-32602`; a failure to produce it `-32603`.
fn prompt_error(err: PromptError) -> ErrorData {
    match err {
        PromptError::NotFound(name) => ErrorData::invalid_params(
            format!("unknown prompt `{name}`; see prompts/list"),
            Some(serde_json::json!({ "prompt": name })),
        ),
        PromptError::InvalidArguments(message) => ErrorData::invalid_params(message, None),
        PromptError::Failed(message) => ErrorData::internal_error(message, None),
    }
}

/// The caller of a request, as the auth middleware identified it. A request that did not pass
/// it (no HTTP transport) counts as unauthenticated: no scopes.
fn caller(context: &RequestContext<RoleServer>) -> &Identity {
    context
        .extensions
        .get::<Parts>()
        .and_then(|parts| parts.extensions.get::<Identity>())
        .unwrap_or(&UNAUTHENTICATED)
}

/// The HTTP headers of the request (its trace context), when it came over HTTP.
fn headers(context: &RequestContext<RoleServer>) -> Option<&axum::http::HeaderMap> {
    context
        .extensions
        .get::<Parts>()
        .map(|parts| &parts.headers)
}

/// A call to a tool the caller lacks scopes for.
///
/// Over HTTP such a call is normally refused before it gets here, with 403
/// `insufficient_scope` (see [`crate::auth::challenge_tool_calls`]), as the MCP authorization
/// spec asks. What still arrives (the configuration changed in between, another transport) is
/// refused with a JSON-RPC error rather than an `isError` result: an `isError` result reports
/// that a tool ran and failed, and this one must not run. The code is `-32602`, as for an
/// unknown tool — to this caller the tool is not listed — and the message names the scopes.
fn forbidden_tool_error(tool: &str, missing: &[String]) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "tool `{tool}` needs scope(s) {}, which the caller lacks",
            missing.join(" ")
        ),
        Some(serde_json::json!({ "tool": tool, "missingScopes": missing })),
    )
}

/// MCP answers an unknown tool name with JSON-RPC `-32602` (invalid params).
fn unknown_tool_error(err: &UnknownTool) -> ErrorData {
    let mut names = err
        .available
        .iter()
        .take(MAX_NAMES_IN_ERROR)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if err.available.len() > MAX_NAMES_IN_ERROR {
        names.push_str(&format!(
            " and {} more (see tools/list)",
            err.available.len() - MAX_NAMES_IN_ERROR
        ));
    }
    ErrorData::invalid_params(
        format!("unknown tool `{}`; available tools: {names}", err.name),
        Some(serde_json::json!({ "tool": err.name })),
    )
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        self.shared.info.clone()
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(info) = context.peer.peer_info() {
            tracing::info!(
                client = %info.client_info.name,
                client_version = %info.client_info.version,
                protocol = %info.protocol_version,
                "session started"
            );
        }
        self.shared
            .peers
            .add(context.peer, self.subscriptions.clone());
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .shared
            .auth
            .visible_tools(caller(&context), self.shared.registry.list());
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.registry.get_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let identity = caller(&context);
        let missing = self
            .shared
            .auth
            .missing_tool_scopes(identity, &request.name);
        if !missing.is_empty() {
            return Err(forbidden_tool_error(&request.name, &missing));
        }
        let mut ctx = self.call_context(identity);
        if let Some(visible) = auth::visibility_for(&self.shared.auth, identity, &request.name) {
            ctx = ctx.with_visibility(visible);
        }
        let facts = RequestFacts {
            identity: &identity.id,
            target: &request.name,
            arguments: request.arguments.as_ref(),
            input_responses: request.input_responses,
            request_state: request.request_state,
            session_log_level: self.session_log_level(),
        };
        let (link, ctx) = self.talk_back(&context, facts, ctx)?;
        let args = request.arguments.unwrap_or_default();
        if let Err(refusal) = self.confirmed(&request.name, &args, &ctx).await {
            return match link.outcome(&self.shared.rounds) {
                Outcome::InputRequired(input) => Ok(input.into()),
                _ => Ok(refusal.into()),
            };
        }
        let call = self.shared.registry.call(&request.name, args, &ctx);
        let call = async {
            tokio::select! {
                result = call => result,
                () = context.ct.cancelled() => Ok(output::error("the call was cancelled by the client")),
            }
        };
        let result = if telemetry::enabled() {
            call.instrument(telemetry::tool_span(&request.name, headers(&context)))
                .await
        } else {
            call.await
        };
        let result = result.map_err(|unknown| unknown_tool_error(&unknown))?;
        match link.outcome(&self.shared.rounds) {
            Outcome::Complete => Ok(result.into()),
            Outcome::InputRequired(input) => Ok(input.into()),
            Outcome::MissingCapability(error) => Err(error),
        }
    }

    #[allow(deprecated)] // logging/setLevel is part of the revisions up to 2025-11-25.
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *self
            .log_level
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(level_from_mcp(request.level));
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let identity = caller(&context);
        let snapshot = self.shared.registry.snapshot();
        let resources = self.readable(identity, &snapshot, snapshot.resources(), |r| {
            snapshot.resource_key(&r.uri)
        });
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let identity = caller(&context);
        let snapshot = self.shared.registry.snapshot();
        let templates = self.readable(identity, &snapshot, snapshot.resource_templates(), |t| {
            snapshot.template_key(&t.uri_template)
        });
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let identity = caller(&context);
        // What the caller may not read is, to it, not there.
        if !self.may_read_resource(identity, &request.uri) {
            return Err(resource_error(ResourceError::NotFound(
                self.scrubbed(&request.uri),
            )));
        }
        let ctx = self.call_context(identity);
        let read = async {
            let read = tokio::select! {
                read = self.shared.registry.read_resource(&request.uri, &ctx) => read,
                () = context.ct.cancelled() => Err(ResourceError::Failed("the read was cancelled by the client".to_owned())),
            };
            telemetry::record_served(read.is_ok());
            read
        };
        let read = if telemetry::enabled() {
            read.instrument(telemetry::resource_span(&request.uri, headers(&context)))
                .await
        } else {
            read.await
        };
        read.map(|contents| ReadResourceResult::new(contents).into())
            .map_err(resource_error)
    }

    #[allow(deprecated)] // Legacy sessions (up to 2025-11-25) subscribe this way.
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if !self.may_read_resource(caller(&context), &request.uri) {
            return Err(resource_error(ResourceError::NotFound(
                self.scrubbed(&request.uri),
            )));
        }
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let identity = caller(&context);
        let snapshot = self.shared.registry.snapshot();
        let prompts = self.readable(identity, &snapshot, snapshot.prompts(), |p| {
            snapshot.prompt_key(&p.name)
        });
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let identity = caller(&context);
        let snapshot = self.shared.registry.snapshot();
        let visible = snapshot
            .prompt_key(&request.name)
            .is_some_and(|key| self.may_read(identity, &snapshot, key));
        if !visible {
            return Err(prompt_error(PromptError::NotFound(
                self.scrubbed(&request.name),
            )));
        }
        let facts = RequestFacts {
            identity: &identity.id,
            target: &request.name,
            arguments: request.arguments.as_ref(),
            input_responses: request.input_responses,
            request_state: request.request_state,
            session_log_level: self.session_log_level(),
        };
        let (link, ctx) = self.talk_back(&context, facts, self.call_context(identity))?;
        let prompt = async {
            let prompt = tokio::select! {
                prompt = self.shared.registry.get_prompt(&request.name, request.arguments, &ctx) => prompt,
                () = context.ct.cancelled() => Err(PromptError::Failed("the request was cancelled by the client".to_owned())),
            };
            telemetry::record_served(prompt.is_ok());
            prompt
        };
        let prompt = if telemetry::enabled() {
            prompt
                .instrument(telemetry::prompt_span(&request.name, headers(&context)))
                .await
        } else {
            prompt.await
        };
        // A prompt that asked a question fails without the answer; the question wins.
        match link.outcome(&self.shared.rounds) {
            Outcome::Complete => prompt.map(Into::into).map_err(prompt_error),
            Outcome::InputRequired(input) => Ok(input.into()),
            Outcome::MissingCapability(error) => Err(error),
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp intersects this with what was requested and what get_info advertises.
        let mut accepted = SubscriptionFilter::builder()
            .tools_list_changed()
            .prompts_list_changed()
            .resources_list_changed()
            .build();
        accepted.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let accepted = context.accepted().clone();
        let identity = caller(context.request_context()).clone();
        let wants = |flag: Option<bool>| flag == Some(true);
        let resources = accepted.resource_subscriptions.clone().unwrap_or_default();
        let mut changes = self.changes.clone();
        let mut seen = self.seen.clone();
        let sink = context.sink().clone();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                () = self.shared.shutdown.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    changes.borrow_and_update();
                    let next = self.shared.registry.snapshot();
                    let mut changed = next.changed_since(&seen);
                    seen = next;
                    changed.tools &= wants(accepted.tools_list_changed);
                    changed.prompts &= wants(accepted.prompts_list_changed);
                    changed.resources &= wants(accepted.resources_list_changed);
                    let mut sends = list_changed(changed);
                    // Only what the listener may read, and what is still served (a resource
                    // that went is announced by resources/list_changed).
                    let readable = resources
                        .iter()
                        .filter(|uri| self.may_read_resource(&identity, uri));
                    sends.extend(readable.map(|uri| {
                        rmcp::model::ResourceUpdatedNotification::new(
                            rmcp::model::ResourceUpdatedNotificationParam::new(uri.clone()),
                        )
                        .into()
                    }));
                    for notification in sends {
                        match sink.send(notification).await {
                            Ok(()) => {}
                            Err(SubscriptionSendError::SubscriptionClosed) => return Ok(()),
                            Err(err) => {
                                tracing::debug!(error = %err, "listen stream closed");
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tool_is_invalid_params_listing_the_tools() {
        let err = unknown_tool_error(&UnknownTool {
            name: "nope".into(),
            available: vec!["ping".into(), "server_info".into()],
        });
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert_eq!(
            err.message,
            "unknown tool `nope`; available tools: ping, server_info"
        );
    }

    #[test]
    fn forbidden_tools_are_invalid_params_naming_the_scopes() {
        let err = forbidden_tool_error("pg_execute", &["db:write".into(), "mcp".into()]);
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert_eq!(
            err.message,
            "tool `pg_execute` needs scope(s) db:write mcp, which the caller lacks"
        );
        assert_eq!(
            err.data,
            Some(serde_json::json!({"tool": "pg_execute", "missingScopes": ["db:write", "mcp"]}))
        );
    }

    #[test]
    fn long_tool_lists_are_cut_in_errors() {
        let available: Vec<String> = (0..60).map(|i| format!("t{i:02}")).collect();
        let err = unknown_tool_error(&UnknownTool {
            name: "nope".into(),
            available,
        });
        assert!(
            err.message.ends_with("t49 and 10 more (see tools/list)"),
            "{}",
            err.message
        );
    }
}
