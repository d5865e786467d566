//! The guards, the audit line, the metrics and the REST API, through real HTTP against an
//! in-process server: what an operator and a client actually see.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex},
};

use futures::future::BoxFuture;
use linkmcp_server::{
    Settings, SourceKind,
    source::{DesiredState, LinkState},
};
use linkmcp_toolsets::{
    CallContext, NoArgs, ToolDef, Toolset, credentials::Credentials, output, parse_args,
};
use rmcp::{
    RoleClient,
    model::{CallToolRequestParams, CallToolResult, JsonObject},
    service::RunningService,
};
use serde::Deserialize;
use serde_json::{Value, json};

mod support;

use support::{TestServer, connect, http, text};

/// The password of the link the test state declares.
const SECRET: &str = "pg-Sup3r-s3cret";

/// A server with the [`Fixture`] registered as `link/fixture`, logging to [`LOG`].
async fn start_server(configure: impl FnOnce(&mut Settings)) -> TestServer {
    capture_logs();
    TestServer::builder()
        .settings(configure)
        .toolset("link/fixture", Fixture::new())
        .start()
        .await
}

/// As [`start_server`], following a desired state whose link has the password [`SECRET`].
async fn start_server_with_secret(configure: impl FnOnce(&mut Settings)) -> TestServer {
    capture_logs();
    let server = TestServer::builder()
        .settings(|s| s.source = SourceKind::Manifests)
        .settings(configure)
        .toolset("link/fixture", Fixture::new())
        .follow_state(state_with_secret())
        .start()
        .await;
    assert!(
        !server.registry.guards().scrubber().is_empty(),
        "the state's secrets are loaded before the server answers"
    );
    server
}

fn state_with_secret() -> DesiredState {
    let link: linkmcp_api::McpLink = serde_yaml::from_str(
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: fixture}\n\
         spec: {serverRef: {name: s}, postgres: {host: db.internal, database: app}}\n",
    )
    .unwrap();
    DesiredState {
        links: vec![LinkState {
            link,
            credentials: Credentials::new(BTreeMap::from([
                ("username".to_owned(), "app".to_owned()),
                ("password".to_owned(), SECRET.to_owned()),
            ])),
            problem: None,
        }],
        ..DesiredState::default()
    }
}

/// Tools that misbehave on purpose: `leak` returns [`SECRET`], `big` returns as many bytes as
/// asked without capping them, `fail` fails with internal details, `echo` echoes.
struct Fixture {
    defs: Vec<ToolDef>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct BigArgs {
    /// How many bytes of text to return.
    bytes: usize,
}

impl Fixture {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            defs: vec![
                ToolDef::read::<EchoArgs>("echo", "Return the text given.").unwrap(),
                ToolDef::read::<NoArgs>("leak", "Return the link's password.").unwrap(),
                ToolDef::read::<BigArgs>("big", "Return a long text.").unwrap(),
                ToolDef::read::<NoArgs>("fail", "Fail with internal details.").unwrap(),
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
                "leak" => output::ok_json(
                    &json!({"dsn": format!("postgres://app:{SECRET}@db.internal/app"),
                            "rows": [{"secret": SECRET}]}),
                    format!("connected with password {SECRET}"),
                ),
                "big" => match parse_args::<BigArgs>(args) {
                    Ok(a) => output::ok_text("z".repeat(a.bytes)),
                    Err(bad) => bad,
                },
                _ => output::error(
                    "could not connect to db-7.internal:5432: password authentication failed",
                ),
            }
        })
    }
}

async fn mcp_call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    args: Value,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(name);
    if let Value::Object(args) = args {
        params = params.with_arguments(args);
    }
    client.call_tool(params).await.unwrap()
}

/// POSTs `body` as JSON to the REST call endpoint of `tool`; returns status and body.
async fn rest_call(server: &TestServer, tool: &str, body: Value) -> (u16, Value) {
    let response = http()
        .post(server.url(&format!("/api/v1/tools/{tool}/call")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn metrics(server: &TestServer) -> String {
    let response = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    response.text().await.unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn metrics_count_calls_sessions_and_the_registry() {
    let server = start_server(|_| {}).await;
    let client = connect(&server).await;
    assert_eq!(text(&mcp_call(&client, "ping", Value::Null).await), "pong");
    mcp_call(&client, "fail", Value::Null).await;
    let (status, _) = rest_call(&server, "echo", json!({"text": "hi"})).await;
    assert_eq!(status, 200);

    let text = metrics(&server).await;
    for line in [
        r#"linkmcp_tool_calls_total{tool="ping",toolset="core",outcome="ok"} 1"#,
        r#"linkmcp_tool_calls_total{tool="fail",toolset="link/fixture",outcome="error"} 1"#,
        r#"linkmcp_tool_calls_total{tool="echo",toolset="link/fixture",outcome="ok"} 1"#,
        r#"linkmcp_tool_call_duration_seconds_count{tool="ping",toolset="core"} 1"#,
        "linkmcp_registry_toolsets 2",
        "linkmcp_registry_tools 6",
        "linkmcp_sync_ready 1",
        "linkmcp_active_sessions 1",
    ] {
        assert!(has_line(&text, line), "missing {line:?} in\n{text}");
    }

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn known_secrets_are_scrubbed_over_mcp_and_rest() {
    let server = start_server_with_secret(|_| {}).await;
    let client = connect(&server).await;

    let result = mcp_call(&client, "leak", Value::Null).await;
    assert_eq!(text(&result), "connected with password [REDACTED]");
    assert_eq!(
        result.structured_content,
        Some(json!({"dsn": "postgres://app:[REDACTED]@db.internal/app",
                    "rows": [{"secret": "[REDACTED]"}]}))
    );

    let (status, body) = rest_call(&server, "leak", json!({})).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert_eq!(
        body["content"][0]["text"],
        "connected with password [REDACTED]"
    );
    assert_eq!(body["structuredContent"]["rows"][0]["secret"], "[REDACTED]");

    // A tool echoing what the client sent is scrubbed too, and so is /debug/info.
    let echoed = mcp_call(&client, "echo", json!({"text": format!("x{SECRET}x")})).await;
    assert_eq!(text(&echoed), "x[REDACTED]x");
    let info: Value = http()
        .get(server.url("/debug/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!info.to_string().contains(SECRET), "{info}");
    assert_eq!(info["source"], "manifests");
    assert_eq!(info["links"][0]["name"], "fixture");
    assert_eq!(info["links"][0]["type"], "postgres");
    assert_eq!(info["links"][0]["tools"], 4);

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn over_long_results_are_truncated_and_marked() {
    let server = start_server(|s| s.limits.max_output_bytes = 2048).await;
    let client = connect(&server).await;

    let result = mcp_call(&client, "big", json!({"bytes": 10_000})).await;
    assert_eq!(result.is_error, Some(false));
    assert!(text(&result).starts_with(&"z".repeat(2048)));
    assert!(
        text(&result).ends_with("[truncated: 2048 of 10000 bytes shown; narrow the request]"),
        "{}",
        &text(&result)[2040..]
    );
    let meta = result.meta.expect("the result is marked");
    assert_eq!(meta.0.get("linkmcp.io/truncated"), Some(&json!(true)));

    let short = mcp_call(&client, "big", json!({"bytes": 100})).await;
    assert_eq!(text(&short).len(), 100);
    assert!(short.meta.is_none());

    let (_, body) = rest_call(&server, "big", json!({"bytes": 10_000})).await;
    assert_eq!(body["_meta"]["linkmcp.io/truncated"], true);
    assert!(body["content"][0]["text"].as_str().unwrap().len() < 2200);

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn mask_error_details_hides_tool_errors() {
    let server = start_server(|s| s.mask_error_details = true).await;
    let client = connect(&server).await;

    let failed = mcp_call(&client, "fail", Value::Null).await;
    assert_eq!(failed.is_error, Some(true));
    let message = text(&failed);
    let reference = message
        .strip_prefix("the tool failed; reference ")
        .unwrap_or_else(|| panic!("generic message expected: {message}"));
    assert_eq!(reference.len(), 16);
    assert!(
        reference.chars().all(|c| c.is_ascii_hexdigit()),
        "{reference}"
    );

    let (_, body) = rest_call(&server, "fail", json!({})).await;
    assert!(!body.to_string().contains("db-7"), "{body}");
    assert_eq!(body["isError"], true);

    // Successful calls are untouched.
    assert_eq!(
        text(&mcp_call(&client, "echo", json!({"text": "fine"})).await),
        "fine"
    );

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_rate_limit_refuses_the_call_over_the_limit() {
    let server = start_server(|s| s.calls_per_minute_per_tool = Some(3)).await;
    let client = connect(&server).await;

    for call in 1..=3 {
        let result = mcp_call(&client, "echo", json!({"text": "hi"})).await;
        assert_eq!(result.is_error, Some(false), "call {call}");
    }
    let refused = mcp_call(&client, "echo", json!({"text": "hi"})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).starts_with(
            "rate limit reached: tool `echo` may be called at most 3 times per minute on this \
             server; try again in "
        ),
        "{}",
        text(&refused)
    );
    // REST shares the bucket; other tools have their own.
    let (_, body) = rest_call(&server, "echo", json!({"text": "hi"})).await;
    assert_eq!(body["isError"], true);
    assert_eq!(text(&mcp_call(&client, "ping", Value::Null).await), "pong");

    let text = metrics(&server).await;
    assert!(
        has_line(
            &text,
            r#"linkmcp_tool_calls_total{tool="echo",toolset="link/fixture",outcome="rate_limited"} 2"#
        ),
        "{text}"
    );

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn rest_lists_and_calls_tools() {
    let server = start_server(|_| {}).await;
    let http = http();

    let listed: Value = http
        .get(server.url("/api/v1/tools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["big", "echo", "fail", "leak", "ping", "server_info"]
    );
    let echo = &listed["tools"][1];
    assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
    assert_eq!(echo["annotations"]["readOnlyHint"], true);

    let (status, body) = rest_call(&server, "echo", json!({"text": "hello"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"content": [{"type": "text", "text": "hello"}], "isError": false})
    );

    // A tool failure is a result, not an HTTP error.
    let (status, body) = rest_call(&server, "echo", json!({"text": 5})).await;
    assert_eq!(status, 200);
    assert_eq!(body["isError"], true);

    let (status, body) = rest_call(&server, "drop_everything", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown tool `drop_everything`");
    assert_eq!(body["tool"], "drop_everything");
    assert_eq!(
        body["available"],
        json!(["big", "echo", "fail", "leak", "ping", "server_info"])
    );

    let (status, body) = rest_call(&server, "echo", json!(["hello"])).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not an array"),
        "{body}"
    );

    let call = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = http.post(server.url("/api/v1/tools/ping/call")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let response = call(Some("application/json"), "{not json").await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not valid JSON"),
        "{body}"
    );
    // Without a JSON content type: a browser could send it cross-site without a preflight.
    let response = call(Some("text/plain"), "{}").await.unwrap();
    assert_eq!(response.status(), 415);
    let response = call(None, "").await.unwrap();
    assert_eq!(response.status(), 415);
    // An empty JSON request is a call without arguments.
    let response = call(Some("application/json"), "").await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["structuredContent"], json!({"pong": true}));

    // The REST API refuses foreign Host names, as /mcp does.
    let response = http
        .get(server.url("/api/v1/tools"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    server.stop().await;
}

#[tokio::test]
async fn rest_applies_the_tool_scopes() {
    use linkmcp_api::server::{ApiKeysSpec, AuthSpec, ToolScope};
    use linkmcp_server::auth::AuthConfig;

    let server = start_server(|s| {
        s.auth = AuthConfig {
            spec: AuthSpec {
                api_keys: Some(ApiKeysSpec {
                    secret_name: "keys".into(),
                }),
                tool_scopes: vec![ToolScope {
                    tools: "leak".into(),
                    scopes: vec!["secrets:read".into()],
                }],
                allow_unauthenticated: true,
                ..AuthSpec::default()
            },
            api_keys: Credentials::new(BTreeMap::from([(
                "ci".to_owned(),
                "ci-key-0123456789".to_owned(),
            )])),
        };
    })
    .await;
    let http = http();
    let names = |body: Value| -> Vec<String> {
        body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // Anonymous: the protected tool is neither listed nor callable.
    let listed: Value = http
        .get(server.url("/api/v1/tools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !names(listed.clone()).contains(&"leak".to_owned()),
        "{listed}"
    );
    assert!(names(listed).contains(&"echo".to_owned()));
    let (status, _) = rest_call(&server, "leak", json!({})).await;
    assert_eq!(status, 401, "an anonymous caller is asked to authenticate");

    // An API key holds every scope.
    let listed: Value = http
        .get(server.url("/api/v1/tools"))
        .bearer_auth("ci-key-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(names(listed).contains(&"leak".to_owned()));
    let response = http
        .post(server.url("/api/v1/tools/leak/call"))
        .bearer_auth("ci-key-0123456789")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let text = metrics(&server).await;
    assert!(
        has_line(
            &text,
            r#"linkmcp_auth_failures_total{reason="insufficient_scope"} 1"#
        ),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn rest_bodies_over_the_limit_are_refused() {
    let server = start_server(|s| s.max_request_body_bytes = 1024).await;
    let (status, body) = rest_call(&server, "echo", json!({"text": "x".repeat(4096)})).await;
    assert_eq!(status, 413);
    assert!(body["error"].is_string(), "{body}");
    server.stop().await;
}

fn openapi_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn openapi_is_served_and_matches_the_checked_in_copy() {
    let server = start_server(|_| {}).await;
    let served: Value = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.stop().await;
    let generated = linkmcp_server::http::openapi::document();
    assert_eq!(served, generated);
    assert_eq!(served["openapi"], "3.1.0");
    for path in [
        "/api/v1/tools",
        "/api/v1/tools/{name}/call",
        "/api/v1/openapi.json",
    ] {
        assert!(served["paths"].get(path).is_some(), "{path} is described");
    }

    let path = openapi_file();
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pretty).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run `UPDATE_OPENAPI=1 cargo test --workspace --all-targets -- openapi`",
            path.display()
        )
    });
    let checked_in: Value = serde_json::from_str(&checked_in).unwrap();
    assert!(
        checked_in == generated,
        "docs/openapi.json differs from what crates/server/src/http/openapi.rs generates; run \
         `UPDATE_OPENAPI=1 cargo test --workspace --all-targets -- openapi` and commit the result"
    );
}

#[tokio::test]
async fn debug_info_reports_version_source_and_tools() {
    let server = start_server(|s| {
        s.source = SourceKind::Kubernetes;
        s.calls_per_minute_per_tool = Some(60);
    })
    .await;
    let info: Value = http()
        .get(server.url("/debug/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["source"], "kubernetes");
    assert!(info["uptimeSeconds"].is_u64());
    assert_eq!(info["limits"]["callsPerMinutePerTool"], 60);
    assert_eq!(
        info["tools"],
        json!(["big", "echo", "fail", "leak", "ping", "server_info"])
    );
    // Without a desired state, links are the registry's link toolsets.
    assert_eq!(info["links"][0]["name"], "fixture");
    assert_eq!(info["links"][0]["tools"], 4);
    server.stop().await;
}

/// Collects what the test binary's `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary, as JSON lines. Installed as the global subscriber before any
/// server starts (every test starts its server through [`start_server`] or
/// [`start_server_with_secret`]), so that no call site is ever registered without it: a
/// thread-local subscriber would race with the other tests' threads over tracing's cached
/// call-site interest.
static LOG: LazyLock<Captured> = LazyLock::new(|| {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    captured
});

fn capture_logs() {
    LazyLock::force(&LOG);
}

impl Captured {
    fn audit_lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "linkmcp::audit")
            .collect()
    }
}

#[tokio::test]
async fn every_call_writes_one_audit_line() {
    let server = start_server_with_secret(|s| s.limits.max_output_bytes = 1024).await;
    // The other tests of this binary write audit lines too: these calls are told apart by a
    // marker in their arguments and an unknown tool name of their own.
    let marker = "audit-marker-7f3a";
    let long = "L".repeat(2000);
    rest_call(
        &server,
        "echo",
        json!({"text": format!("{SECRET} {long}"), "marker": marker}),
    )
    .await;
    rest_call(&server, "no_such_tool_for_audit", json!({})).await;
    server.stop().await;

    let lines: Vec<Value> = LOG
        .audit_lines()
        .into_iter()
        .filter(|l| {
            l["fields"]["tool"] == "no_such_tool_for_audit"
                || l["fields"]["arguments"]
                    .as_str()
                    .is_some_and(|a| a.contains(marker))
        })
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let echo = &lines[0]["fields"];
    assert_eq!(echo["message"], "tool call");
    assert_eq!(echo["identity"], "anonymous");
    assert_eq!(echo["tool"], "echo");
    assert_eq!(echo["toolset"], "link/fixture");
    assert_eq!(echo["outcome"], "ok");
    assert_eq!(
        echo["truncated"], true,
        "the echoed text exceeds the 1024-byte cap"
    );
    assert!(echo["duration_ms"].is_u64());
    assert!(lines[0]["timestamp"].is_string());
    let arguments = echo["arguments"].as_str().unwrap();
    assert!(!arguments.contains(SECRET), "{arguments}");
    assert!(
        arguments.contains(r#""text":"[REDACTED] LLL"#),
        "{arguments}"
    );
    assert!(
        arguments.len() < 400,
        "long values are shortened: {arguments}"
    );

    let unknown = &lines[1]["fields"];
    assert_eq!(unknown["outcome"], "unknown_tool");
    assert_eq!(unknown["toolset"], "");
    assert_eq!(unknown["truncated"], false);
}

#[tokio::test]
async fn resource_reads_and_prompt_requests_are_audited_with_their_method() {
    let server = start_server(|_| {}).await;
    let client = connect(&server).await;
    client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "linkmcp://server/info",
        ))
        .await
        .unwrap();
    client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("linkmcp_overview"))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    server.stop().await;

    let lines = LOG.audit_lines();
    let read = lines
        .iter()
        .map(|l| &l["fields"])
        .find(|f| f["method"] == "resources/read" && f["tool"] == "server-info")
        .unwrap_or_else(|| panic!("no audit line of the read: {lines:#?}"));
    assert_eq!(read["message"], "resource read");
    assert_eq!(read["toolset"], "core");
    assert_eq!(read["outcome"], "ok");
    assert!(
        read["arguments"]
            .as_str()
            .is_some_and(|a| a.contains("linkmcp://server/info")),
        "{read}"
    );
    let prompt = lines
        .iter()
        .map(|l| &l["fields"])
        .find(|f| f["method"] == "prompts/get" && f["tool"] == "linkmcp_overview")
        .unwrap_or_else(|| panic!("no audit line of the prompt: {lines:#?}"));
    assert_eq!(prompt["message"], "prompt request");
    assert_eq!(prompt["outcome"], "ok");
    // Tool calls keep their method.
    assert!(
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == "tool call")
            .all(|l| l["fields"]["method"] == "tools/call")
    );
}
