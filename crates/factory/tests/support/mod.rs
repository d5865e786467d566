//! Test doubles shared by the factory's integration tests: a scripted model server speaking
//! both provider APIs, a tool host, a run reporter, an HTTP receiver and an SMTP sink. All of
//! them listen on 127.0.0.1 with an ephemeral port.

#![allow(clippy::unwrap_used, dead_code)]

use std::{
    collections::{BTreeMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use futures::future::BoxFuture;
use linkmcp_api::{Agent, AiTask, common::SecretKeyRef};
use linkmcp_factory::{
    HostTool, RunReport, RunReporter, RunStart, SecretSource, ToolHost, provider::RetryPolicy,
};
use linkmcp_toolsets::Access;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};

/// The API key the tests configure; it must never appear in an error.
pub const API_KEY: &str = "sk-test-secret-4242";

/// Fast retries for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted model server

/// One scripted HTTP answer.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
    pub delay: Duration,
}

impl Scripted {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            ..Self::ok(body)
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the model server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct ScriptState {
    replies: Mutex<VecDeque<Scripted>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A model server that answers each request with the next scripted reply, on both
/// `POST /v1/messages` (Anthropic) and `POST /v1/chat/completions` (OpenAI-compatible).
pub struct ScriptedModel {
    pub addr: SocketAddr,
    state: Arc<ScriptState>,
}

impl ScriptedModel {
    pub async fn start(replies: Vec<Scripted>) -> Self {
        let state = Arc::new(ScriptState {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/messages", post(answer))
            .route("/v1/chat/completions", post(answer))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    /// The Anthropic base URL (`/v1/messages` is appended by the client).
    pub fn anthropic_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OpenAI-compatible base URL (`/chat/completions` is appended by the client).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Adds replies to the script.
    pub fn push(&self, replies: Vec<Scripted>) {
        self.state.replies.lock().unwrap().extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn remaining(&self) -> usize {
        self.state.replies.lock().unwrap().len()
    }
}

async fn answer(
    State(state): State<Arc<ScriptState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    let next = state.replies.lock().unwrap().pop_front();
    let Some(reply) = next else {
        return (
            StatusCode::IM_A_TEAPOT,
            Json(json!({"error": {"type": "script", "message": "the script has no reply left"}})),
        )
            .into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        Json(reply.body),
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Anthropic Messages API reply bodies.
pub mod anthropic {
    use serde_json::{Value, json};

    pub fn text(text: &str, input_tokens: u64, output_tokens: u64) -> Value {
        json!({
            "id": "msg_text", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
        })
    }

    pub fn tool_use(calls: &[(&str, &str, Value)], input_tokens: u64, output_tokens: u64) -> Value {
        let mut content = vec![json!({"type": "text", "text": "Let me look."})];
        for (id, name, input) in calls {
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        json!({
            "id": "msg_tools", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": content,
            "stop_reason": "tool_use",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
        })
    }

    pub fn error(kind: &str, message: &str) -> Value {
        json!({"type": "error", "error": {"type": kind, "message": message}})
    }
}

/// OpenAI chat completions reply bodies.
pub mod openai {
    use serde_json::{Value, json};

    pub fn text(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
        })
    }

    pub fn tool_calls(
        calls: &[(&str, &str, Value)],
        prompt_tokens: u64,
        completion_tokens: u64,
    ) -> Value {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function",
                       "function": {"name": name, "arguments": args.to_string()}})
            })
            .collect();
        json!({
            "id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls},
                         "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Tool host

/// A recorded tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCall {
    pub name: String,
    pub args: JsonObject,
    pub identity: String,
}

/// A tool host with fixed tools and canned outputs per tool.
pub struct FakeHost {
    tools: Vec<HostTool>,
    outputs: BTreeMap<String, String>,
    calls: Mutex<Vec<HostCall>>,
}

impl FakeHost {
    /// The tools of a server with a PostgreSQL link (writes allowed), an S3 link and the core.
    pub fn new() -> Self {
        let schema = |props: Value| {
            Arc::new(
                json!({"type": "object", "properties": props})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
        };
        let tool = |name: &str, description: &str, props: Value, access| {
            HostTool::new(
                Tool::new(name.to_owned(), description.to_owned(), schema(props)),
                access,
            )
        };
        use Access::{Read, Write};
        let tools = vec![
            tool("ping", "Check that the server answers.", json!({}), Read),
            tool(
                "server_info",
                "Describe this server and its toolsets.",
                json!({}),
                Read,
            ),
            tool(
                "pg_list_tables",
                "List the tables of the PostgreSQL database with their sizes.",
                json!({"schema": {"type": "string"}}),
                Read,
            ),
            tool(
                "pg_table_stats",
                "Dead tuples, last vacuum and analyze times of PostgreSQL tables.",
                json!({"table": {"type": "string"}}),
                Read,
            ),
            tool(
                "pg_query",
                "Run a read-only SQL query on PostgreSQL.",
                json!({"sql": {"type": "string"}}),
                Read,
            ),
            tool(
                "pg_execute",
                "Execute a SQL statement that changes PostgreSQL data.",
                json!({"sql": {"type": "string"}}),
                Write,
            ),
            tool("s3_list_buckets", "List the S3 buckets.", json!({}), Read),
        ];
        let outputs = BTreeMap::from([
            (
                "pg_list_tables".to_owned(),
                "orders 1.2 GB\ncustomers 80 MB".to_owned(),
            ),
            (
                "pg_table_stats".to_owned(),
                "orders: 42% dead tuples, last vacuum 9 days ago".to_owned(),
            ),
            ("pg_query".to_owned(), "count\n1234".to_owned()),
            ("pg_execute".to_owned(), "VACUUM done".to_owned()),
        ]);
        Self {
            tools,
            outputs,
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> Vec<HostCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl ToolHost for FakeHost {
    fn tools(&self) -> Vec<HostTool> {
        self.tools.clone()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        identity: &'a str,
    ) -> BoxFuture<'a, CallToolResult> {
        self.calls.lock().unwrap().push(HostCall {
            name: name.to_owned(),
            args,
            identity: identity.to_owned(),
        });
        let result = match self.outputs.get(name) {
            Some(out) => CallToolResult::success(vec![ContentBlock::text(out.clone())]),
            None => CallToolResult::error(vec![ContentBlock::text(format!("unknown tool {name}"))]),
        };
        Box::pin(async move { result })
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets and reporter

/// Secrets by `name/key`; every agent's API key is [`API_KEY`].
#[derive(Default)]
pub struct Secrets(pub BTreeMap<String, String>);

impl SecretSource for Secrets {
    fn agent_api_key(&self, _agent: &Agent) -> Option<String> {
        Some(API_KEY.to_owned())
    }

    fn secret_value(&self, r: &SecretKeyRef) -> Option<String> {
        self.0.get(&format!("{}/{}", r.name, r.key)).cloned()
    }
}

/// What a reporter saw.
#[derive(Debug, Clone)]
pub enum Reported {
    Started(Box<RunStart>),
    Finished(Box<RunReport>),
}

/// A reporter sending everything to a channel.
pub struct ChannelReporter(pub mpsc::UnboundedSender<Reported>);

impl ChannelReporter {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Reported>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }
}

impl RunReporter for ChannelReporter {
    fn started<'a>(&'a self, start: &'a RunStart) -> BoxFuture<'a, ()> {
        let _ = self.0.send(Reported::Started(Box::new(start.clone())));
        Box::pin(async {})
    }

    fn report<'a>(&'a self, report: &'a RunReport) -> BoxFuture<'a, ()> {
        let _ = self.0.send(Reported::Finished(Box::new(report.clone())));
        Box::pin(async {})
    }
}

/// Waits for the next finished run, skipping starts.
pub async fn next_report(rx: &mut mpsc::UnboundedReceiver<Reported>) -> RunReport {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a run report within 20 s")
            .expect("the reporter is alive");
        if let Reported::Finished(report) = got {
            return *report;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

pub fn agent(name: &str, spec: Value) -> Agent {
    let mut s =
        json!({"serverRef": {"name": "data"}, "apiKeySecretRef": {"name": "llm", "key": "apiKey"}});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "linkmcp.io/v1alpha1", "kind": "Agent",
        "metadata": {"name": name, "namespace": "platform"},
        "spec": s
    }))
    .unwrap()
}

pub fn task(name: &str, spec: Value) -> AiTask {
    let mut s = json!({"serverRef": {"name": "data"}, "agentRef": {"name": "sre"}});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "linkmcp.io/v1alpha1", "kind": "AiTask",
        "metadata": {"name": name, "namespace": "platform"},
        "spec": s
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// HTTP receiver (webhooks, email API)

/// A received HTTP request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Records every POST and answers with a fixed status.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(status: u16) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = (Arc::clone(&received), status);
        let app = Router::new()
            .fallback(
                |State((received, status)): State<(Arc<Mutex<Vec<Received>>>, u16)>,
                 uri: axum::http::Uri,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    received.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    StatusCode::from_u16(status).unwrap()
                },
            )
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP sink

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, no TLS, no auth.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let store = Arc::clone(&mails);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let _ = smtp_session(stream, store).await;
                });
            }
        });
        Self { addr, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut mail = Mail {
        helo: String::new(),
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            mail.helo = command[4..].trim().to_owned();
            b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
        } else if upper.starts_with("HELO") {
            mail.helo = command[4..].trim().to_owned();
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = address(&command[10..]);
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(address(&command[8..]));
            b"250 2.1.5 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                // Undo dot-stuffing.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            mail.data = data;
            store.lock().unwrap().push(mail.clone());
            b"250 2.0.0 queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let start = arg.find('<').map(|i| i + 1).unwrap_or(0);
    let end = arg.find('>').unwrap_or(arg.len());
    arg[start..end].to_owned()
}

/// The decoded body of the MIME part of `data` with content type `content_type`
/// (base64-encoded parts, as the notifier writes them), with `\n` line ends.
pub fn mime_part(data: &str, content_type: &str) -> String {
    use base64::Engine as _;
    let marker = format!("Content-Type: {content_type}");
    let start = data
        .find(&marker)
        .unwrap_or_else(|| panic!("no {content_type} part in:\n{data}"));
    let part = &data[start..];
    let body_start = part.find("\r\n\r\n").unwrap() + 4;
    let encoded: String = part[body_start..]
        .lines()
        .take_while(|l| !l.starts_with("--") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap();
    // Mail bodies travel with CRLF line ends.
    String::from_utf8(decoded).unwrap().replace("\r\n", "\n")
}

/// A header value of a message (first occurrence).
pub fn header<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    data.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}
