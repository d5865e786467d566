//! The load: one task per connection, each holding a keep-alive HTTP/1.1 connection and calling
//! `tools/call ping` back to back for the phase's duration, timing every call.
//!
//! Stateless phases post each call on its own, as any client of a `--stateless` server does;
//! session phases first run the MCP handshake (`initialize`, `notifications/initialized`) and
//! then send the session id with every call, whose answer arrives as an SSE stream. Calls that
//! start during the warm-up are made but not counted.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    HeaderMap, Request, StatusCode,
    client::conn::http1::SendRequest,
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::server::{cpu_time, rss_kib};

/// The protocol version every request names.
const PROTOCOL_VERSION: &str = "2025-11-25";

/// How often the server's RSS is sampled during a phase.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// How the calls reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No session: every call stands alone (`linkmcp-server --stateless`).
    Stateless,
    /// One MCP session per connection, opened before the phase starts.
    Session,
}

/// One measured run of the load.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub mode: Mode,
    /// Concurrent connections (each with its own session in [`Mode::Session`]).
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a phase measured.
pub struct PhaseResult {
    /// Successful calls that started after the warm-up.
    pub calls: u64,
    /// Failed calls (transport errors, non-200 answers, JSON-RPC or tool errors).
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// The measured window.
    pub measured: Duration,
    /// Latency of the counted calls, in microseconds.
    pub latency: Histogram<u64>,
    /// The largest server RSS sampled during the phase, warm-up included.
    pub rss_max_kib: u64,
    /// CPU cores the server kept busy on average over the measured window.
    pub server_cores: f64,
    /// CPU cores the load client kept busy on average over the measured window.
    pub client_cores: f64,
}

impl PhaseResult {
    /// Successful calls per second over the measured window.
    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.measured.as_secs_f64()
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `phase` against the server at `addr` (process `pid`).
pub async fn run(addr: SocketAddr, pid: u32, phase: Phase) -> anyhow::Result<PhaseResult> {
    let mut workers = Vec::with_capacity(phase.connections);
    let mut opened = Vec::with_capacity(phase.connections);
    for _ in 0..phase.connections {
        let mut connection = Connection::open(addr).await?;
        let session = match phase.mode {
            Mode::Stateless => None,
            Mode::Session => Some(connection.open_session().await?),
        };
        opened.push((connection, session));
    }

    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let until = measure_from + phase.duration;
    let sampler = tokio::spawn(sample(pid, measure_from, until));
    for (connection, session) in opened {
        workers.push(tokio::spawn(worker(
            connection,
            session,
            measure_from,
            until,
        )));
    }

    let mut result = PhaseResult {
        calls: 0,
        errors: 0,
        first_error: None,
        measured: phase.duration,
        latency: new_histogram(),
        rss_max_kib: 0,
        server_cores: 0.0,
        client_cores: 0.0,
    };
    for worker in workers {
        let stats = worker.await.context("a load task failed")?;
        result.calls += stats.calls;
        result.errors += stats.errors;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
        result
            .latency
            .add(&stats.latency)
            .map_err(|err| anyhow!("merging latencies: {err}"))?;
    }
    let samples = sampler.await.context("the sampler failed")??;
    result.rss_max_kib = samples.rss_max_kib;
    result.server_cores = samples.server_cores;
    result.client_cores = samples.client_cores;
    Ok(result)
}

/// What [`sample`] saw of the server (and of this client).
struct Samples {
    rss_max_kib: u64,
    server_cores: f64,
    client_cores: f64,
}

/// Samples the RSS of `pid` until `until`, and the CPU time of `pid` and of this process at
/// `measure_from` and at `until`.
async fn sample(pid: u32, measure_from: Instant, until: Instant) -> anyhow::Result<Samples> {
    let client = std::process::id();
    let mut rss_max_kib = rss_kib(pid)?;
    while Instant::now() < measure_from {
        tokio::time::sleep(RSS_SAMPLE_EVERY.min(measure_from - Instant::now())).await;
        rss_max_kib = rss_max_kib.max(rss_kib(pid)?);
    }
    let started = Instant::now();
    let (server_start, client_start) = (cpu_time(pid)?, cpu_time(client)?);
    while Instant::now() < until {
        tokio::time::sleep(RSS_SAMPLE_EVERY.min(until - Instant::now())).await;
        rss_max_kib = rss_max_kib.max(rss_kib(pid)?);
    }
    let wall = started.elapsed().as_secs_f64();
    let cores = |end: Duration, start: Duration| end.saturating_sub(start).as_secs_f64() / wall;
    Ok(Samples {
        rss_max_kib,
        server_cores: cores(cpu_time(pid)?, server_start),
        client_cores: cores(cpu_time(client)?, client_start),
    })
}

/// 1 µs to 60 s at three significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

struct WorkerStats {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

/// Calls `ping` back to back on `connection` until `until`, counting calls that start at or
/// after `measure_from`.
async fn worker(
    mut connection: Connection,
    session: Option<HeaderValue>,
    measure_from: Instant,
    until: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats {
        calls: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
    };
    let mut id: u64 = 1;
    loop {
        let started = Instant::now();
        if started >= until {
            break;
        }
        id += 1;
        let outcome = connection
            .post(ping_body(id), session.as_ref())
            .await
            .and_then(|(status, _, body)| check_ping(status, &body));
        let elapsed = started.elapsed();
        let counted = started >= measure_from;
        match outcome {
            Ok(()) if counted => {
                stats.calls += 1;
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                stats.latency.saturating_record(micros.max(1));
            }
            Ok(()) => {}
            Err(err) => {
                if counted {
                    stats.errors += 1;
                    stats.first_error.get_or_insert_with(|| format!("{err:#}"));
                }
                if connection.is_closed() {
                    connection = match Connection::open(connection.addr()).await {
                        Ok(fresh) => fresh,
                        Err(err) => {
                            stats.first_error.get_or_insert_with(|| format!("{err:#}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                }
            }
        }
    }
    stats
}

pub(crate) fn ping_body(id: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"ping","arguments":{{}}}}}}"#
    ))
}

/// Accepts a 200 carrying a successful `ping` result.
pub(crate) fn check_ping(status: StatusCode, body: &[u8]) -> anyhow::Result<()> {
    if status != StatusCode::OK {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(body));
    }
    let message = jsonrpc_response(body)?;
    if let Some(error) = message.get("error") {
        bail!("JSON-RPC error: {error}");
    }
    let result = message
        .get("result")
        .ok_or_else(|| anyhow!("no result in {message}"))?;
    if result.get("isError") == Some(&Value::Bool(true)) {
        bail!("tool error: {result}");
    }
    Ok(())
}

/// The JSON-RPC response in a body sent either as JSON or as SSE `data:` lines (the first data
/// line holding a message with an `id`; priming events carry none).
fn jsonrpc_response(body: &[u8]) -> anyhow::Result<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body).context("the answer is not UTF-8")?;
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .ok_or_else(|| anyhow!("no JSON-RPC response in {text:?}"))
}

/// One keep-alive HTTP/1.1 connection to the server.
pub(crate) struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        let host = HeaderValue::try_from(addr.to_string()).context("Host header")?;
        Ok(Self { addr, host, sender })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Posts `body` to `/mcp` and reads the whole answer.
    pub(crate) async fn post(
        &mut self,
        body: Bytes,
        session: Option<&HeaderValue>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        let mut request = Request::post("/mcp")
            .header(header::HOST, self.host.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .body(Full::new(body))
            .context("building the request")?;
        if let Some(session) = session {
            request
                .headers_mut()
                .insert("mcp-session-id", session.clone());
        }
        self.sender.ready().await.context("connection closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the answer")?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// Ends `session` with `DELETE /mcp` and returns the answer's status.
    pub(crate) async fn delete(&mut self, session: &HeaderValue) -> anyhow::Result<StatusCode> {
        let request = Request::delete("/mcp")
            .header(header::HOST, self.host.clone())
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .header("mcp-session-id", session.clone())
            .body(Full::new(Bytes::new()))
            .context("building the request")?;
        self.sender.ready().await.context("connection closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .context("reading the answer")?;
        Ok(status)
    }

    /// Runs the MCP handshake and returns the session id.
    pub(crate) async fn open_session(&mut self) -> anyhow::Result<HeaderValue> {
        let initialize = Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"linkmcp-bench","version":"{}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        ));
        let (status, headers, body) = self.post(initialize, None).await?;
        if status != StatusCode::OK {
            bail!(
                "initialize answered HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let session = headers
            .get("mcp-session-id")
            .cloned()
            .context("initialize answered without an Mcp-Session-Id")?;
        let message = jsonrpc_response(&body)?;
        if message.get("result").is_none() {
            bail!("initialize failed: {message}");
        }
        let initialized =
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let (status, _, body) = self.post(initialized, Some(&session)).await?;
        if status != StatusCode::ACCEPTED {
            bail!(
                "notifications/initialized answered HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn json_and_sse_answers_are_read() {
        let json = br#"{"jsonrpc":"2.0","id":7,"result":{"isError":false}}"#;
        assert!(check_ping(StatusCode::OK, json).is_ok());

        let sse = b"id: 0\ndata: \n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"isError\":false}}\n\n";
        assert_eq!(jsonrpc_response(sse).unwrap()["id"], 7);
        assert!(check_ping(StatusCode::OK, sse).is_ok());
    }

    #[test]
    fn failures_are_errors() {
        let tool_error = br#"{"jsonrpc":"2.0","id":7,"result":{"isError":true}}"#;
        assert!(check_ping(StatusCode::OK, tool_error).is_err());
        let rpc_error = br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"x"}}"#;
        assert!(check_ping(StatusCode::OK, rpc_error).is_err());
        assert!(check_ping(StatusCode::NOT_FOUND, b"").is_err());
        assert!(check_ping(StatusCode::OK, b"data: nothing\n\n").is_err());
    }

    #[test]
    fn ping_bodies_are_jsonrpc() {
        let body: Value = serde_json::from_slice(&ping_body(42)).unwrap();
        assert_eq!(body["id"], 42);
        assert_eq!(body["params"]["name"], "ping");
    }
}
