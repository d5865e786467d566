//! The server as clients see it: a real MCP client and raw HTTP against an in-process server on
//! an ephemeral port.

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use linkmcp_toolsets::{CallContext, ToolDef, Toolset, output, parse_args};
use rmcp::{
    ClientHandler, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ErrorCode, JsonObject, ProtocolVersion,
        ServerNotification, SubscriptionFilter, Tool,
    },
    service::{ClientLifecycleMode, ClientServiceExt, NotificationContext},
    transport::StreamableHttpClientTransport,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod support;

use support::{TestServer, WAIT, args, connect, http, text};

/// A small toolset registered by the tests: `echo` (typed arguments), `slow`, `explode`.
struct TestToolset {
    defs: Vec<ToolDef>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

impl TestToolset {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            defs: vec![
                ToolDef::read::<EchoArgs>("echo", "Return the text given.").unwrap(),
                ToolDef::read::<linkmcp_toolsets::NoArgs>("slow", "Answer after 300 ms.").unwrap(),
                ToolDef::write::<linkmcp_toolsets::NoArgs>("explode", "Fail by panicking.")
                    .unwrap(),
            ],
        })
    }
}

impl Toolset for TestToolset {
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
            match name {
                "echo" => match parse_args::<EchoArgs>(args) {
                    Ok(a) => output::ok_text(a.text),
                    Err(bad) => bad,
                },
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    output::ok_text("done")
                }
                _ => panic!("test tool exploded"),
            }
        })
    }
}

/// A client that reports every `notifications/tools/list_changed` it receives.
#[derive(Clone)]
struct Notified(mpsc::UnboundedSender<()>);

impl ClientHandler for Notified {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("tool {name} is listed"))
}

fn names(tools: &[Tool]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_ref()).collect()
}

#[tokio::test]
async fn client_lists_and_calls_the_core_tools() {
    let server = TestServer::start().await;
    let client = connect(&server).await;

    let info = client.peer_info().expect("server info after initialize");
    assert_eq!(info.server_info.as_ref().unwrap().name, "linkmcp");
    let tools_capability = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools_capability.list_changed, Some(true));
    let prompts = info
        .capabilities
        .prompts
        .as_ref()
        .expect("prompts capability");
    assert_eq!(prompts.list_changed, Some(true));
    let resources = info
        .capabilities
        .resources
        .as_ref()
        .expect("resources capability");
    assert_eq!(resources.list_changed, Some(true));
    assert_eq!(resources.subscribe, Some(true));
    // Tools send log messages during a call (after logging/setLevel).
    assert!(info.capabilities.logging.is_some(), "logging is served");

    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["ping", "server_info"]);
    for name in ["ping", "server_info"] {
        let a = tool(&tools, name).annotations.clone().expect("annotations");
        assert_eq!(a.read_only_hint, Some(true), "{name}");
        assert_eq!(a.destructive_hint, Some(false), "{name}");
        assert_eq!(a.idempotent_hint, Some(true), "{name}");
        assert_eq!(a.open_world_hint, Some(false), "{name}");
    }
    assert_eq!(tool(&tools, "ping").input_schema["type"], "object");

    let pong = client
        .call_tool(CallToolRequestParams::new("ping"))
        .await
        .unwrap();
    assert_eq!(pong.is_error, Some(false));
    assert_eq!(text(&pong), "pong");
    assert_eq!(pong.structured_content, Some(json!({"pong": true})));

    let info = client
        .call_tool(CallToolRequestParams::new("server_info"))
        .await
        .unwrap();
    let info = info.structured_content.expect("structured server info");
    assert_eq!(info["name"], "linkmcp");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["toolsets"], json!([{"key": "core", "tools": 2}]));

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn unknown_tool_is_an_invalid_params_error_naming_the_tools() {
    let server = TestServer::start().await;
    let client = connect(&server).await;

    let err = client
        .call_tool(CallToolRequestParams::new("drop_database"))
        .await
        .expect_err("unknown tool fails");
    let ServiceError::McpError(err) = err else {
        panic!("expected a JSON-RPC error, got {err:?}");
    };
    assert_eq!(err.code, ErrorCode::INVALID_PARAMS);
    assert!(err.message.contains("`drop_database`"), "{}", err.message);
    assert!(err.message.contains("ping, server_info"), "{}", err.message);

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn tool_failures_are_error_results_and_the_session_keeps_serving() {
    let server = TestServer::start().await;
    server.registry.insert("test", TestToolset::new()).unwrap();
    let client = connect(&server).await;

    let bad = client
        .call_tool(CallToolRequestParams::new("echo").with_arguments(args(json!({"text": 5}))))
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
    assert!(
        text(&bad).starts_with("invalid argument `text`: invalid type: integer `5`"),
        "{}",
        text(&bad)
    );

    let exploded = client
        .call_tool(CallToolRequestParams::new("explode"))
        .await
        .unwrap();
    assert_eq!(exploded.is_error, Some(true));
    assert!(
        text(&exploded).contains("internal error"),
        "{}",
        text(&exploded)
    );

    let echoed = client
        .call_tool(CallToolRequestParams::new("echo").with_arguments(args(json!({"text": "hi"}))))
        .await
        .unwrap();
    assert_eq!(text(&echoed), "hi");

    client.cancel().await.unwrap();
    server.stop().await;
}

/// Waits for one notification, failing after [`WAIT`].
async fn next_notification(rx: &mut mpsc::UnboundedReceiver<()>, what: &str) {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no tools/list_changed {what}"))
        .expect("client alive");
}

#[tokio::test]
async fn session_clients_are_notified_when_toolsets_come_and_go() {
    let server = TestServer::start().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = Notified(tx)
        .serve(transport)
        .await
        .expect("client initializes");

    // The client opens its notification stream (GET /mcp) after the handshake; what the server
    // sends before that is not delivered. Change the registry until a notification arrives.
    let probe = linkmcp_server::registry::ToolsetKey::from("probe");
    let mut delivered = false;
    for round in 0..50 {
        // Each round adds or removes the probe's tool: a change of the tool list.
        if round % 2 == 0 {
            server
                .registry
                .insert(probe.clone(), Arc::new(Probe::new()))
                .unwrap();
        } else {
            server.registry.remove(&probe);
        }
        if tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "the notification stream never opened");
    server.registry.remove(&probe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}

    server
        .registry
        .insert("link/test", TestToolset::new())
        .unwrap();
    next_notification(&mut rx, "after a toolset was added").await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        names(&tools),
        ["echo", "explode", "ping", "server_info", "slow"]
    );
    let explode = tool(&tools, "explode").annotations.clone().unwrap();
    assert_eq!(explode.read_only_hint, Some(false));
    assert_eq!(explode.destructive_hint, Some(true));

    assert!(server.registry.remove(&"link/test".into()));
    next_notification(&mut rx, "after a toolset was removed").await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["ping", "server_info"]);

    client.cancel().await.unwrap();
    server.stop().await;
}

/// A toolset of one tool, used to provoke changes of the tool list.
struct Probe(Vec<ToolDef>);

impl Probe {
    fn new() -> Self {
        Self(vec![
            ToolDef::read::<linkmcp_toolsets::NoArgs>("probe", "Provokes a change.").unwrap(),
        ])
    }
}

impl Toolset for Probe {
    fn tools(&self) -> &[ToolDef] {
        &self.0
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async { output::error("no tools") })
    }
}

async fn next_listen_notification(subscription: &mut rmcp::service::Subscription, what: &str) {
    let notification = tokio::time::timeout(WAIT, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no tools/list_changed on the listen stream {what}"))
        .expect("listen stream healthy")
        .expect("listen stream open");
    assert!(
        matches!(
            notification,
            ServerNotification::ToolListChangedNotification(_)
        ),
        "{notification:?}"
    );
}

async fn listen_is_notified(stateless: bool) {
    let server = TestServer::start_with(|s| s.stateless = stateless).await;
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = ()
        .serve_with_lifecycle(
            transport,
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
        .listen(SubscriptionFilter::builder().tools_list_changed().build())
        .await
        .expect("listen is acknowledged");
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));

    server
        .registry
        .insert("link/test", TestToolset::new())
        .unwrap();
    next_listen_notification(&mut subscription, "after a toolset was added").await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(names(&tools).contains(&"echo"), "{:?}", names(&tools));

    server.registry.remove(&"link/test".into());
    next_listen_notification(&mut subscription, "after a toolset was removed").await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(names(&tools), ["ping", "server_info"]);

    drop(subscription);
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn listen_clients_of_2026_07_28_are_notified() {
    listen_is_notified(false).await;
}

#[tokio::test]
async fn listen_clients_of_2026_07_28_are_notified_in_stateless_mode() {
    listen_is_notified(true).await;
}

#[tokio::test]
async fn shutdown_lets_a_running_call_finish() {
    let server = TestServer::start().await;
    server.registry.insert("test", TestToolset::new()).unwrap();
    let client = connect(&server).await;

    let call = tokio::spawn(async move {
        let result = client.call_tool(CallToolRequestParams::new("slow")).await;
        (client, result)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = server.shutdown.clone();
    shutdown.cancel();

    let (_client, result) = tokio::time::timeout(WAIT, call).await.unwrap().unwrap();
    let result = result.expect("the running call is answered");
    assert_eq!(text(&result), "done");
    server.stop().await;
}

// ---- raw HTTP ----

fn initialize_body(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}
        }
    })
}

fn post(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
}

/// The JSON-RPC message in a response body, whether sent as JSON or as SSE `data:` lines.
fn jsonrpc_message(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return value;
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {body:?}"))
}

#[tokio::test]
async fn initialize_negotiates_each_session_protocol_version() {
    let server = TestServer::start().await;
    let http = http();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let response = post(&http, &server.url("/mcp"))
            .json(&initialize_body(version))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{version}");
        let session = response
            .headers()
            .get("mcp-session-id")
            .unwrap_or_else(|| panic!("{version}: a session id"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!session.is_empty());
        let message = jsonrpc_message(&response.text().await.unwrap());
        assert_eq!(message["result"]["protocolVersion"], version);
        assert_eq!(message["result"]["serverInfo"]["name"], "linkmcp");
        assert_eq!(
            message["result"]["capabilities"]["tools"]["listChanged"],
            true
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_jsonrpc_parse_error() {
    let server = TestServer::start().await;
    let response = post(&http(), &server.url("/mcp"))
        .body(r#"{"jsonrpc": "2.0", "id": 1, "method": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], Value::Null);
    assert_eq!(body["error"]["code"], -32700);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Parse error: the request body is not valid JSON"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn json_that_is_not_jsonrpc_is_an_invalid_request() {
    let server = TestServer::start().await;
    let response = post(&http(), &server.url("/mcp"))
        .json(&json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start_with(|s| s.max_request_body_bytes = 1024).await;
    let mut body = initialize_body("2025-11-25");
    body["params"]["clientInfo"]["name"] = json!("x".repeat(2048));
    let response = post(&http(), &server.url("/mcp"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    server.stop().await;
}

#[tokio::test]
async fn only_allowed_hosts_reach_mcp() {
    let server = TestServer::start_with(|s| s.allowed_hosts = vec!["mcp.example.com".into()]).await;
    let http = http();
    let send = |host: &'static str| {
        post(&http, &server.url("/mcp"))
            .header("host", host)
            .json(&initialize_body("2025-11-25"))
            .send()
    };
    assert_eq!(send("evil.example").await.unwrap().status(), 403);
    assert_eq!(send("mcp.example.com:8080").await.unwrap().status(), 200);
    assert_eq!(send("localhost:8080").await.unwrap().status(), 200);

    // Probes are not subject to Host validation: kubelet addresses the pod IP.
    let probe = http
        .get(server.url("/readyz"))
        .header("host", "10.1.2.3:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn probes_answer_ok() {
    let server = TestServer::start().await;
    let http = http();
    for path in ["/healthz", "/health", "/readyz", "/startupz"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "ok", "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn stateless_mode_answers_without_a_session() {
    let server = TestServer::start_with(|s| s.stateless = true).await;
    let http = http();

    let response = post(&http, &server.url("/mcp"))
        .json(&initialize_body("2025-11-25"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("mcp-session-id").is_none());
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["result"]["protocolVersion"], "2025-11-25");

    let response = post(&http, &server.url("/mcp"))
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    let listed: Vec<&str> = message["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["ping", "server_info"]);

    let response = post(&http, &server.url("/mcp"))
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "ping", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    let message: Value = response.json().await.unwrap();
    assert_eq!(
        message["result"]["structuredContent"],
        json!({"pong": true})
    );

    // No standalone notification stream without sessions.
    let response = http
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn sessions_beyond_the_limit_are_refused_until_one_ends() {
    let server = TestServer::start_with(|s| s.max_sessions = 2).await;
    let http = http();
    let open = || async {
        post(&http, &server.url("/mcp"))
            .json(&initialize_body("2025-11-25"))
            .send()
            .await
            .unwrap()
    };
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let response = open().await;
        assert_eq!(response.status(), 200);
        sessions.push(
            response.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = open().await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("maximum of 2 MCP sessions"), "{message}");

    // Requests in the open sessions still go through.
    let listed = post(&http, &server.url("/mcp"))
        .header("mcp-session-id", &sessions[0])
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert!(listed.status().is_success(), "{}", listed.status());

    // One ends: a new one may open.
    let ended = http
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &sessions[1])
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = open().await;
        if response.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            response.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A client that sends part of its request headers and then nothing is disconnected once the
/// header read timeout passes, instead of holding the connection open for ever.
#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = TestServer::start_with(|s| {
        s.connection.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the connection open for 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    // hyper answers 408 before closing, or just closes; either way nothing else.
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    server.stop().await;
}

/// A request head beyond the bound is refused with 431; the server keeps serving.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let server = TestServer::start().await;
    let response = http()
        .post(server.url("/mcp"))
        .header("x-padding", "a".repeat(100 * 1024))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let health = http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}
