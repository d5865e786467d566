//! Resources and prompts as clients see them: a real rmcp client over HTTP against an
//! in-process server whose registry holds a fixture toolset serving fixed resources, a URI
//! template and prompts, some of which misbehave on purpose.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use linkmcp_api::server::{ApiKeysSpec, AuthSpec, ToolScope};
use linkmcp_server::{
    Settings,
    auth::AuthConfig,
    mcp::CallLimits,
    registry::{Registry, ToolsetKey},
};
use linkmcp_toolsets::{
    CallContext, NoArgs, ToolDef, Toolset,
    credentials::Credentials,
    output,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptArgument, PromptError, PromptMessage},
    resource::{
        Resource, ResourceContents, ResourceError, ResourceTemplate, ResourceTemplateDef,
        text_contents,
    },
};
use rmcp::{
    ClientHandler, Peer, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ErrorCode, ErrorData, GetPromptRequestParams,
        JsonObject, ProtocolVersion, ReadResourceRequestParams, ResourceUpdatedNotificationParam,
        Role, ServerNotification, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedReceiver};

mod support;

use support::{TestServer, WAIT, args, connect, connect_with_key};

/// How long a test watches for a notification that must NOT arrive. A bounded negative check:
/// it cannot prove absence, but the server sends every notification of one registry change
/// together, `list_changed` before `resources/updated`, so by the time the expected ones are
/// in, a wrong one would already be on the wire; 300 ms covers delivery on a loaded machine.
const QUIET: Duration = Duration::from_millis(300);

/// The name the test server reports.
const SERVER_NAME: &str = "resources-test";

/// A value the scrubber knows as secret (as a link's password would be).
const SECRET: &str = "rp-Sup3r-s3cret";

const SERVER_INFO_URI: &str = "linkmcp://server/info";
const OVERVIEW_PROMPT: &str = "linkmcp_overview";

const GREETING_URI: &str = "fixture://greeting";
const GREETING: &str = "hello from the fixture";
const ITEMS_TEMPLATE: &str = "fixture://items/{id}";
const SLOW_URI: &str = "fixture://slow";
const PANIC_URI: &str = "fixture://panic";
const SECRET_URI: &str = "fixture://secret";
const BRIEF_PROMPT: &str = "fixture_brief";
const EXPLODE_PROMPT: &str = "fixture_explode";
/// The read tool of the fixture: who may not call it may not see the fixture's resources.
const FIXTURE_TOOL: &str = "fixture_read";

/// The prompt of [`PromptOnly`].
const EXTRA_PROMPT: &str = "extra_checklist";
/// The resource of [`ResourceOnly`].
const EXTRA_URI: &str = "extra://notes";

const API_KEY: &str = "k-ci-0123456789";

// ---- the server ----

/// A server with the [`Fixture`] registered as `link/fixture` and [`SECRET`] known to the
/// scrubber.
async fn start_server() -> TestServer {
    start_server_with(|_| {}).await
}

/// As [`start_server`], with the settings `configure` makes.
async fn start_server_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
    TestServer::builder()
        .settings(|s| s.server_name = SERVER_NAME.to_owned())
        .settings(configure)
        .toolset("link/fixture", Fixture::new())
        .registry(|r| {
            r.guards().scrubber().set_values([SECRET]);
        })
        .start()
        .await
}

// ---- toolsets ----

/// One read tool, the fixed resources [`GREETING_URI`], [`SLOW_URI`] (never answers),
/// [`PANIC_URI`] (panics) and [`SECRET_URI`] (contains [`SECRET`]), the template
/// [`ITEMS_TEMPLATE`], the prompt [`BRIEF_PROMPT`] (argument `topic` required, `focus`
/// optional) and the prompt [`EXPLODE_PROMPT`] (panics).
struct Fixture {
    defs: Vec<ToolDef>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplateDef>,
    prompts: Vec<Prompt>,
}

impl Fixture {
    fn new() -> Arc<Self> {
        let resource = |uri: &str, name: &str| {
            Resource::new(uri, name)
                .with_description(format!("The fixture's {name}."))
                .with_mime_type("text/plain")
        };
        Arc::new(Self {
            defs: vec![ToolDef::read::<NoArgs>(FIXTURE_TOOL, "Read the fixture.").unwrap()],
            resources: vec![
                resource(GREETING_URI, "greeting"),
                resource(SLOW_URI, "slow"),
                resource(PANIC_URI, "panic"),
                resource(SECRET_URI, "secret"),
            ],
            templates: vec![
                ResourceTemplateDef::new(
                    ResourceTemplate::new(ITEMS_TEMPLATE, "item")
                        .with_description("One item of the fixture, by id.")
                        .with_mime_type("text/plain"),
                )
                .unwrap(),
            ],
            prompts: vec![
                Prompt::new(
                    BRIEF_PROMPT,
                    Some("Brief the team on a topic."),
                    Some(vec![
                        PromptArgument::new("topic")
                            .with_description("What to brief on.")
                            .with_required(true),
                        PromptArgument::new("focus")
                            .with_description("An aspect to stress.")
                            .with_required(false),
                    ]),
                ),
                Prompt::new(EXPLODE_PROMPT, Some("Fail by panicking."), None),
            ],
        })
    }
}

impl Toolset for Fixture {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async { output::ok_text("read") })
    }

    fn resources(&self) -> &[Resource] {
        &self.resources
    }

    fn resource_templates(&self) -> &[ResourceTemplateDef] {
        &self.templates
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(async move {
            let text = match uri {
                GREETING_URI => GREETING.to_owned(),
                SLOW_URI => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "woke".to_owned()
                }
                PANIC_URI => panic!("resource exploded: internal detail"),
                SECRET_URI => format!("dsn: postgres://app:{SECRET}@db.internal/app"),
                _ => match self.templates[0].matches(uri) {
                    Some(vars) => format!("item {}", vars["id"]),
                    None => return Err(ResourceError::NotFound(uri.to_owned())),
                },
            };
            Ok(vec![text_contents(uri, "text/plain", text)])
        })
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move {
            match name {
                BRIEF_PROMPT => {
                    let focus = args
                        .get("focus")
                        .map(|f| format!(", focusing on {f}"))
                        .unwrap_or_default();
                    let text = format!(
                        "Brief the team on {}{focus}. Call {FIXTURE_TOOL} first.",
                        args["topic"]
                    );
                    Ok(
                        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                            .with_description("A briefing."),
                    )
                }
                EXPLODE_PROMPT => panic!("prompt exploded: internal detail"),
                other => Err(PromptError::NotFound(other.to_owned())),
            }
        })
    }
}

/// A toolset serving one prompt and nothing else.
struct PromptOnly(Vec<Prompt>);

impl PromptOnly {
    fn new() -> Arc<Self> {
        Arc::new(Self(vec![Prompt::new(
            EXTRA_PROMPT,
            Some("A checklist."),
            None,
        )]))
    }
}

impl Toolset for PromptOnly {
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

    fn prompts(&self) -> &[Prompt] {
        &self.0
    }

    fn get_prompt<'a>(
        &'a self,
        _name: &'a str,
        _args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async {
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "Check everything.",
            )]))
        })
    }
}

/// A toolset serving one resource and nothing else.
struct ResourceOnly(Vec<Resource>);

impl ResourceOnly {
    fn new() -> Arc<Self> {
        Arc::new(Self(vec![Resource::new(EXTRA_URI, "notes")]))
    }
}

impl Toolset for ResourceOnly {
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
        &self.0
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(async move { Ok(vec![text_contents(uri, "text/plain", "notes")]) })
    }
}

/// A toolset serving one tool and nothing else: registering it changes the tool list only.
struct ToolOnly(Vec<ToolDef>);

impl ToolOnly {
    fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self(vec![
            ToolDef::read::<NoArgs>(name, "A tool.").unwrap(),
        ]))
    }
}

impl Toolset for ToolOnly {
    fn tools(&self) -> &[ToolDef] {
        &self.0
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async { output::ok_text("ok") })
    }
}

// ---- clients ----

/// A notification a session client received.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Note {
    Tools,
    Prompts,
    Resources,
    Updated(String),
}

/// A client that reports every list_changed and resources/updated notification it receives.
#[derive(Clone)]
struct Recorder(mpsc::UnboundedSender<Note>);

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(Note::Tools);
    }

    async fn on_prompt_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(Note::Prompts);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(Note::Resources);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(Note::Updated(params.uri));
    }
}

/// Waits until the client's notification stream is open: a legacy client opens it (GET /mcp)
/// after the handshake, and what the server sends before is lost. Toggles a probe tool until a
/// notification arrives, then leaves the probe removed and the channel empty.
async fn await_notification_stream(registry: &Registry, rx: &mut UnboundedReceiver<Note>) {
    let probe = ToolsetKey::from("probe");
    for round in 0..50 {
        let inserted = round % 2 == 0;
        if inserted {
            registry
                .insert(probe.clone(), ToolOnly::new("probe_tool"))
                .unwrap();
        } else {
            registry.remove(&probe);
        }
        if tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {
            if inserted {
                registry.remove(&probe);
                expect_notes(rx, &[Note::Tools], "after the probe was removed").await;
            }
            // Let whatever the earlier probes caused arrive, then forget it.
            tokio::time::sleep(QUIET).await;
            while rx.try_recv().is_ok() {}
            return;
        }
    }
    panic!("the notification stream never opened");
}

/// Waits for every note of `expected` (in any order), failing on a note not expected.
async fn expect_notes(rx: &mut UnboundedReceiver<Note>, expected: &[Note], what: &str) {
    let mut missing = expected.to_vec();
    while !missing.is_empty() {
        let note = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: still waiting for {missing:?}"))
            .expect("client alive");
        let Some(at) = missing.iter().position(|n| *n == note) else {
            panic!("{what}: unexpected {note:?} while waiting for {missing:?}");
        };
        missing.remove(at);
    }
}

/// The notes that arrive within [`QUIET`] (the documented bounded negative wait).
async fn notes_within_quiet(rx: &mut UnboundedReceiver<Note>) -> Vec<Note> {
    tokio::time::sleep(QUIET).await;
    let mut notes = Vec::new();
    while let Ok(note) = rx.try_recv() {
        notes.push(note);
    }
    notes
}

// ---- helpers ----

/// The JSON-RPC error of a failed request.
fn jsonrpc_error(err: ServiceError) -> ErrorData {
    match err {
        ServiceError::McpError(err) => err,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

async fn read(client: &RunningService<RoleClient, ()>, uri: &str) -> Vec<ResourceContents> {
    client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|err| panic!("reading {uri}: {err:?}"))
        .contents
}

async fn read_error(client: &RunningService<RoleClient, ()>, uri: &str) -> ErrorData {
    jsonrpc_error(
        client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .expect_err("the read fails"),
    )
}

/// The text of the only contents of a read.
fn only_text(contents: &[ResourceContents]) -> (&str, &str) {
    assert_eq!(contents.len(), 1, "{contents:?}");
    match &contents[0] {
        ResourceContents::TextResourceContents { uri, text, .. } => (uri, text),
        other => panic!("expected text contents, got {other:?}"),
    }
}

async fn prompt_error(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    arguments: Option<Value>,
) -> ErrorData {
    let mut request = GetPromptRequestParams::new(name);
    if let Some(arguments) = arguments {
        request = request.with_arguments(args(arguments));
    }
    jsonrpc_error(
        client
            .get_prompt(request)
            .await
            .expect_err("the request fails"),
    )
}

fn message_text(result: &GetPromptResult, index: usize) -> &str {
    &result.messages[index]
        .content
        .as_text()
        .expect("a text message")
        .text
}

async fn assert_ping(client: &RunningService<RoleClient, ()>) {
    let pong = client
        .call_tool(CallToolRequestParams::new("ping"))
        .await
        .expect("the session still serves");
    assert_eq!(pong.structured_content, Some(json!({"pong": true})));
}

async fn resource_uris(client: &Peer<RoleClient>) -> Vec<String> {
    client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri.clone())
        .collect()
}

async fn prompt_names(client: &Peer<RoleClient>) -> Vec<String> {
    client
        .list_all_prompts()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name.clone())
        .collect()
}

// ---- 1. capabilities, lists and reads ----

#[tokio::test]
async fn capabilities_lists_and_reads() {
    let server = start_server().await;
    let client = connect(&server).await;

    let capabilities = &client.peer_info().expect("server info").capabilities;
    let prompts = capabilities.prompts.as_ref().expect("prompts capability");
    assert_eq!(prompts.list_changed, Some(true));
    let resources = capabilities
        .resources
        .as_ref()
        .expect("resources capability");
    assert_eq!(resources.list_changed, Some(true));
    assert_eq!(resources.subscribe, Some(true));
    let tools = capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));

    assert_eq!(
        resource_uris(&client).await,
        [
            GREETING_URI,
            PANIC_URI,
            SECRET_URI,
            SLOW_URI,
            SERVER_INFO_URI
        ],
        "all fixed resources, sorted by URI"
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates.len(), 1, "{templates:?}");
    assert_eq!(templates[0].uri_template, ITEMS_TEMPLATE);
    assert_eq!(templates[0].name, "item");
    assert_eq!(
        prompt_names(&client).await,
        [BRIEF_PROMPT, EXPLODE_PROMPT, OVERVIEW_PROMPT]
    );
    let brief = client
        .list_all_prompts()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == BRIEF_PROMPT)
        .unwrap();
    let arguments = brief.arguments.expect("declared arguments");
    assert_eq!(arguments[0].name, "topic");
    assert_eq!(arguments[0].required, Some(true));

    let contents = read(&client, GREETING_URI).await;
    assert_eq!(only_text(&contents), (GREETING_URI, GREETING));

    let contents = read(&client, "fixture://items/42").await;
    assert_eq!(only_text(&contents), ("fixture://items/42", "item 42"));

    let contents = read(&client, SERVER_INFO_URI).await;
    let ResourceContents::TextResourceContents { mime_type, .. } = &contents[0] else {
        panic!("text contents");
    };
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    let info: Value = serde_json::from_str(only_text(&contents).1).expect("server info is JSON");
    assert_eq!(info["name"], SERVER_NAME);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info["toolsets"],
        json!([{"key": "core", "tools": 2}, {"key": "link/fixture", "tools": 1}])
    );

    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 2. errors of unknown names and bad arguments ----

#[tokio::test]
async fn unknown_uris_prompts_and_bad_arguments_are_invalid_params() {
    let server = start_server().await;
    let client = connect(&server).await;

    for uri in [
        "fixture://nothing-here",
        // Near the template, but a variable never spans a path segment.
        "fixture://items/1/2",
    ] {
        let err = read_error(&client, uri).await;
        assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{uri}: {err:?}");
        assert_eq!(err.data, Some(json!({"uri": uri})), "{uri}");
        assert!(err.message.contains(uri), "{}", err.message);
    }

    let err = prompt_error(&client, "no_such_prompt", None).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert_eq!(err.data, Some(json!({"prompt": "no_such_prompt"})));

    let err = prompt_error(&client, BRIEF_PROMPT, None).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert_eq!(
        err.message,
        "prompt `fixture_brief` needs the argument `topic`"
    );
    let err = prompt_error(&client, BRIEF_PROMPT, Some(json!({"focus": "cost"}))).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert!(err.message.contains("`topic`"), "{}", err.message);

    let err = prompt_error(&client, BRIEF_PROMPT, Some(json!({"topic": 7}))).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert_eq!(
        err.message,
        "argument `topic` of prompt `fixture_brief` must be a string"
    );

    let err = prompt_error(
        &client,
        BRIEF_PROMPT,
        Some(json!({"topic": "orders", "tone": "dry"})),
    )
    .await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert!(err.message.contains("`tone`"), "{}", err.message);

    assert_ping(&client).await;
    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 3. prompts ----

#[tokio::test]
async fn prompts_return_their_substituted_messages() {
    let server = start_server().await;
    let client = connect(&server).await;

    let brief = client
        .get_prompt(
            GetPromptRequestParams::new(BRIEF_PROMPT)
                .with_arguments(args(json!({"topic": "orders"}))),
        )
        .await
        .unwrap();
    assert_eq!(brief.description.as_deref(), Some("A briefing."));
    assert_eq!(brief.messages.len(), 1);
    assert_eq!(brief.messages[0].role, Role::User);
    assert_eq!(
        message_text(&brief, 0),
        "Brief the team on orders. Call fixture_read first."
    );

    let focused = client
        .get_prompt(
            GetPromptRequestParams::new(BRIEF_PROMPT)
                .with_arguments(args(json!({"topic": "orders", "focus": "refunds"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        message_text(&focused, 0),
        "Brief the team on orders, focusing on refunds. Call fixture_read first."
    );

    let overview = client
        .get_prompt(GetPromptRequestParams::new(OVERVIEW_PROMPT))
        .await
        .unwrap();
    assert!(!overview.messages.is_empty());
    assert_eq!(overview.messages[0].role, Role::User);
    let text = message_text(&overview, 0);
    assert!(text.contains(SERVER_NAME), "{text}");
    assert!(text.contains(SERVER_INFO_URI), "{text}");

    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 4. misbehaving resources and prompts ----

#[tokio::test]
async fn slow_or_panicking_reads_are_errors_and_the_session_keeps_serving() {
    let server = start_server_with(|s| {
        s.limits = CallLimits {
            timeout: Duration::from_millis(300),
            ..CallLimits::default()
        };
    })
    .await;
    let client = connect(&server).await;

    let err = read_error(&client, SLOW_URI).await;
    assert_eq!(err.code, ErrorCode::INTERNAL_ERROR, "{err:?}");
    assert!(err.message.contains("time limit"), "{}", err.message);
    assert!(err.message.contains("300ms"), "{}", err.message);
    assert_ping(&client).await;

    let err = read_error(&client, PANIC_URI).await;
    assert_eq!(err.code, ErrorCode::INTERNAL_ERROR, "{err:?}");
    assert!(err.message.contains("internal error"), "{}", err.message);
    assert!(
        !err.message.contains("internal detail"),
        "panic details stay in the log: {}",
        err.message
    );
    assert_ping(&client).await;

    let err = prompt_error(&client, EXPLODE_PROMPT, None).await;
    assert_eq!(err.code, ErrorCode::INTERNAL_ERROR, "{err:?}");
    assert!(err.message.contains("internal error"), "{}", err.message);
    assert!(!err.message.contains("internal detail"), "{}", err.message);
    assert_ping(&client).await;

    // Other resources of the same toolset still read.
    let contents = read(&client, GREETING_URI).await;
    assert_eq!(only_text(&contents).1, GREETING);

    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 5. secret scrubbing ----

#[tokio::test]
async fn known_secrets_are_scrubbed_from_resources_and_prompts() {
    let server = start_server().await;
    let client = connect(&server).await;

    let contents = read(&client, SECRET_URI).await;
    let (_, text) = only_text(&contents);
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(text, "dsn: postgres://app:[REDACTED]@db.internal/app");

    // What a client sends and a resource or prompt echoes is scrubbed as well.
    let uri = format!("fixture://items/{SECRET}");
    let contents = read(&client, &uri).await;
    assert_eq!(only_text(&contents).1, "item [REDACTED]");

    let brief = client
        .get_prompt(
            GetPromptRequestParams::new(BRIEF_PROMPT)
                .with_arguments(args(json!({"topic": SECRET}))),
        )
        .await
        .unwrap();
    let text = message_text(&brief, 0);
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");

    // So is what an error quotes of the request: the URI, the prompt name, an argument name.
    let err = read_error(&client, &format!("fixture://nothing/{SECRET}")).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert_eq!(
        err.data,
        Some(json!({"uri": "fixture://nothing/[REDACTED]"}))
    );
    assert!(!err.message.contains(SECRET), "{}", err.message);
    let err = prompt_error(&client, &format!("p_{SECRET}"), None).await;
    assert_eq!(err.data, Some(json!({"prompt": "p_[REDACTED]"})));
    assert!(!err.message.contains(SECRET), "{}", err.message);
    let err = prompt_error(
        &client,
        BRIEF_PROMPT,
        Some(json!({"topic": "t", SECRET: "x"})),
    )
    .await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert!(err.message.contains("[REDACTED]"), "{}", err.message);
    assert!(!err.message.contains(SECRET), "{}", err.message);

    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 6. notifications of legacy sessions ----

#[tokio::test]
#[allow(deprecated)] // resources/subscribe is how sessions up to 2025-11-25 subscribe.
async fn sessions_hear_only_of_the_lists_that_changed_and_of_subscribed_resources() {
    let server = start_server().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = Recorder(tx)
        .serve(StreamableHttpClientTransport::from_uri(server.url("/mcp")))
        .await
        .expect("client initializes");
    await_notification_stream(&server.registry, &mut rx).await;

    client
        .subscribe(SubscribeRequestParams::new(SERVER_INFO_URI))
        .await
        .expect("subscribed");
    let err = jsonrpc_error(
        client
            .subscribe(SubscribeRequestParams::new("fixture://nothing-here"))
            .await
            .expect_err("an unknown resource cannot be subscribed to"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(err.data, Some(json!({"uri": "fixture://nothing-here"})));

    // Only the prompt list changes.
    server
        .registry
        .insert("link/extra", PromptOnly::new())
        .unwrap();
    expect_notes(
        &mut rx,
        &[Note::Prompts, Note::Updated(SERVER_INFO_URI.to_owned())],
        "after a prompt toolset was added",
    )
    .await;
    let late = notes_within_quiet(&mut rx).await;
    assert!(
        late.is_empty(),
        "no tools or resources list_changed when only prompts changed: {late:?}"
    );
    assert!(
        prompt_names(&client)
            .await
            .contains(&EXTRA_PROMPT.to_owned())
    );

    // Only the resource list changes.
    server
        .registry
        .insert("link/notes", ResourceOnly::new())
        .unwrap();
    expect_notes(
        &mut rx,
        &[Note::Resources, Note::Updated(SERVER_INFO_URI.to_owned())],
        "after a resource toolset was added",
    )
    .await;
    let late = notes_within_quiet(&mut rx).await;
    assert!(late.is_empty(), "only resources changed: {late:?}");
    assert!(resource_uris(&client).await.contains(&EXTRA_URI.to_owned()));

    // Unsubscribed: the next change is announced without resources/updated.
    client
        .unsubscribe(UnsubscribeRequestParams::new(SERVER_INFO_URI))
        .await
        .expect("unsubscribed");
    assert!(server.registry.remove(&"link/extra".into()));
    expect_notes(
        &mut rx,
        &[Note::Prompts],
        "after the prompt toolset was removed",
    )
    .await;
    let late = notes_within_quiet(&mut rx).await;
    assert!(
        late.is_empty(),
        "no resources/updated after unsubscribing: {late:?}"
    );
    assert!(
        !prompt_names(&client)
            .await
            .contains(&EXTRA_PROMPT.to_owned())
    );

    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- 7. subscriptions/listen (2026-07-28) ----

async fn next_listen_notification(
    subscription: &mut rmcp::service::Subscription,
    what: &str,
) -> ServerNotification {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no notification on the listen stream {what}"))
        .expect("listen stream healthy")
        .expect("listen stream open")
}

async fn listeners_hear_of_prompts(stateless: bool) {
    let server = start_server_with(|s| s.stateless = stateless).await;
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url("/mcp")),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("client discovers");
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );

    let mut subscription = client
        .peer()
        .listen(
            SubscriptionFilter::builder()
                .prompts_list_changed()
                .resource_subscription(SERVER_INFO_URI)
                .build(),
        )
        .await
        .expect("listen is acknowledged");
    let accepted = subscription.acknowledged().clone();
    assert_eq!(accepted.prompts_list_changed, Some(true));
    assert_eq!(accepted.tools_list_changed, None);
    assert_eq!(
        accepted.resource_subscriptions,
        Some(vec![SERVER_INFO_URI.to_owned()])
    );

    server
        .registry
        .insert("link/extra", PromptOnly::new())
        .unwrap();
    let first = next_listen_notification(&mut subscription, "after a prompt toolset").await;
    assert!(
        matches!(first, ServerNotification::PromptListChangedNotification(_)),
        "{first:?}"
    );
    let second = next_listen_notification(&mut subscription, "after a prompt toolset").await;
    let ServerNotification::ResourceUpdatedNotification(updated) = second else {
        panic!("expected resources/updated, got {second:?}");
    };
    assert_eq!(updated.params.uri, SERVER_INFO_URI);
    assert!(
        prompt_names(&client)
            .await
            .contains(&EXTRA_PROMPT.to_owned())
    );

    // The tool list changes, which this listener did not ask to hear of: the change reaches it
    // only as the update of its subscribed resource (list_changed would come first).
    server
        .registry
        .insert("link/tool", ToolOnly::new("extra_tool"))
        .unwrap();
    let next = next_listen_notification(&mut subscription, "after a tool toolset").await;
    let ServerNotification::ResourceUpdatedNotification(updated) = next else {
        panic!("expected only resources/updated, got {next:?}");
    };
    assert_eq!(updated.params.uri, SERVER_INFO_URI);

    drop(subscription);
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn listen_clients_of_2026_07_28_hear_of_prompt_changes() {
    listeners_hear_of_prompts(false).await;
}

#[tokio::test]
async fn listen_clients_of_2026_07_28_hear_of_prompt_changes_in_stateless_mode() {
    listeners_hear_of_prompts(true).await;
}

// ---- 8. visibility by tool scopes ----

/// Anonymous callers (no scopes) and one API key (every scope); the fixture's tool needs the
/// scope `fixture:read`.
fn scoped_auth() -> AuthConfig {
    AuthConfig {
        spec: AuthSpec {
            allow_unauthenticated: true,
            api_keys: Some(ApiKeysSpec {
                secret_name: "mcp-keys".into(),
            }),
            tool_scopes: vec![ToolScope {
                tools: "fixture_*".into(),
                scopes: vec!["fixture:read".into()],
            }],
            ..AuthSpec::default()
        },
        api_keys: Credentials::new(BTreeMap::from([("ci".to_owned(), API_KEY.to_owned())])),
    }
}

#[tokio::test]
#[allow(deprecated)] // resources/subscribe
async fn callers_without_a_toolsets_scopes_see_none_of_its_resources_or_prompts() {
    let server = start_server_with(|s| s.auth = scoped_auth()).await;

    let anonymous = connect(&server).await;
    let tools: Vec<String> = anonymous
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(tools, ["ping", "server_info"], "the tool scope applies");
    assert_eq!(resource_uris(&anonymous).await, [SERVER_INFO_URI]);
    assert!(
        anonymous
            .list_all_resource_templates()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(prompt_names(&anonymous).await, [OVERVIEW_PROMPT]);

    for uri in [GREETING_URI, "fixture://items/42"] {
        let err = read_error(&anonymous, uri).await;
        assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{uri}: {err:?}");
        assert_eq!(err.data, Some(json!({"uri": uri})), "{uri}");
    }
    let err = prompt_error(&anonymous, BRIEF_PROMPT, Some(json!({"topic": "orders"}))).await;
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS, "{err:?}");
    assert_eq!(err.data, Some(json!({"prompt": BRIEF_PROMPT})));
    let err = jsonrpc_error(
        anonymous
            .subscribe(SubscribeRequestParams::new(GREETING_URI))
            .await
            .expect_err("a hidden resource cannot be subscribed to"),
    );
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    // The core toolset has no scoped tools: its resource stays readable.
    let contents = read(&anonymous, SERVER_INFO_URI).await;
    assert!(only_text(&contents).1.contains(SERVER_NAME));

    let keyed = connect_with_key(&server, API_KEY).await;
    assert_eq!(
        resource_uris(&keyed).await,
        [
            GREETING_URI,
            PANIC_URI,
            SECRET_URI,
            SLOW_URI,
            SERVER_INFO_URI
        ]
    );
    assert_eq!(keyed.list_all_resource_templates().await.unwrap().len(), 1);
    assert_eq!(
        prompt_names(&keyed).await,
        [BRIEF_PROMPT, EXPLODE_PROMPT, OVERVIEW_PROMPT]
    );
    let contents = read(&keyed, GREETING_URI).await;
    assert_eq!(only_text(&contents).1, GREETING);

    anonymous.cancel().await.unwrap();
    keyed.cancel().await.unwrap();
    server.stop().await;
}
