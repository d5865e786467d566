//! The HTTP surface: `/mcp` (MCP over Streamable HTTP) and the probe endpoints.
//!
//! `/mcp` is rmcp's Streamable HTTP service behind its layers: one counts requests in progress
//! (for a draining shutdown), one binds each session to the identity that opened it
//! (`sessions`), one answers malformed JSON with a JSON-RPC error instead of rmcp's bare `415`.
//! Host validation (against DNS rebinding) applies to `/mcp` only, so that kubelet probes
//! addressed to the pod IP pass.
//!
//! Beside them: `/metrics` ([`metrics`]), the REST API under `/api/v1` ([`rest`]) and
//! `/debug/info` ([`debug`]), each its own router so that a layer can wrap it alone.

pub mod debug;
mod hosts;
mod in_flight;
pub mod metrics;
pub mod openapi;
pub mod rest;
pub mod serve;
mod sessions;

pub use in_flight::{InFlight, InFlightGuard, TrackedBody};

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::{local::LocalSessionManager, never::NeverSessionManager},
};
use tokio_util::sync::CancellationToken;

use crate::{Settings, auth::Auth, mcp::McpHandler};

/// Host names accepted on `/mcp` whatever is configured: a local client always works.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What the probe endpoints report.
#[derive(Debug, Default)]
pub struct Health {
    started: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    /// Marks the server started: the registry has its first state.
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Marks the server shutting down: it should receive no new traffic.
    pub fn mark_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether `/startupz` succeeds.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether `/readyz` succeeds: started and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.is_started() && !self.draining.load(Ordering::SeqCst)
    }
}

/// The Host names `/mcp` accepts: loopback plus the configured ones.
pub fn allowed_hosts(configured: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
    for host in configured {
        let host = host.trim();
        if !host.is_empty() && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            hosts.push(host.to_owned());
        }
    }
    hosts
}

/// The application router. `auth` guards `/mcp`, `/api/v1` and `/debug` (the probes and
/// `/metrics` stay open); `in_flight` counts `/mcp` requests until their response is sent;
/// `mcp_stop` closes every MCP session and stream when cancelled; `desired` is the state
/// `/debug/info` reports.
pub fn router(
    settings: &Settings,
    handler: McpHandler,
    auth: Arc<Auth>,
    health: Arc<Health>,
    in_flight: Arc<InFlight>,
    mcp_stop: CancellationToken,
    desired: debug::DesiredView,
) -> Router {
    let registry = handler.registry().clone();
    let peers = handler.peers().clone();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(&settings.allowed_hosts))
        .with_cancellation_token(mcp_stop)
        .with_max_request_body_bytes(settings.max_request_body_bytes);
    let factory = move || Ok(handler.instance());
    let (mcp, session_owners) = if settings.stateless {
        // Stateless: no Mcp-Session-Id; every POST is served on its own, answered with plain
        // JSON where possible, so any replica can answer any request (no sticky sessions).
        // What a client loses: GET /mcp answers 405, so clients of protocol versions up to
        // 2025-11-25 get no notifications/tools/list_changed (they see new tools on their next
        // tools/list) and the server cannot send them requests (sampling, elicitation) or
        // resume a broken stream. 2026-07-28 clients lose nothing: they have no sessions and
        // receive list_changed on their subscriptions/listen request in either mode.
        let config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
        let service =
            StreamableHttpService::new(factory, Arc::new(NeverSessionManager::default()), config);
        (
            Router::new().route_service("/mcp", Shared::new(service)),
            None,
        )
    } else {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = sessions::SessionOwners::new(manager.clone(), auth.clone())
            .with_max_sessions(settings.max_sessions);
        let service = StreamableHttpService::new(factory, manager, config);
        (
            Router::new().route_service("/mcp", Shared::new(service)),
            Some(Arc::new(owners)),
        )
    };
    // Outermost first: trace the request, count it, authenticate it (before its body is read), refuse
    // a session id the caller did not open (stateful mode only), check the JSON, then refuse
    // tool calls the caller lacks scopes for.
    let mcp = mcp
        .layer(middleware::from_fn_with_state(
            (auth.clone(), settings.max_request_body_bytes),
            crate::auth::challenge_tool_calls,
        ))
        .layer(middleware::from_fn_with_state(
            settings.max_request_body_bytes,
            guard_json_body,
        ));
    let mcp = match session_owners {
        Some(owners) => mcp.layer(middleware::from_fn_with_state(
            owners,
            sessions::bind_sessions,
        )),
        None => mcp,
    };
    let mcp = mcp
        .layer(middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::require_auth,
        ))
        .layer(middleware::from_fn_with_state(in_flight, track_in_flight));
    // Outermost, and only when traces are exported (no cost otherwise): the request's span
    // covers everything the server does for it.
    let mcp = if crate::observe::telemetry::enabled() {
        mcp.layer(middleware::from_fn(crate::observe::telemetry::http_span))
    } else {
        mcp
    };
    Router::new()
        .route("/healthz", get(alive))
        .route("/health", get(alive))
        .route("/startupz", get(startupz))
        .route("/readyz", get(readyz))
        .with_state(health.clone())
        .merge(mcp)
        .merge(metrics::router(registry.clone(), peers, health))
        .merge(crate::auth::protect(
            rest::router(registry.clone(), settings, auth.clone()),
            auth.clone(),
        ))
        .merge(crate::auth::protect(
            debug::router(registry, settings, desired, auth.clone()),
            auth,
        ))
}

/// rmcp's Streamable HTTP service behind an `Arc`.
///
/// axum clones a route's service for every request, and `StreamableHttpService::call` clones
/// it once more; each clone copies its configuration (the allowed-host list, a cancellation
/// token). Through this wrapper a request costs one reference count and goes straight to
/// `StreamableHttpService::handle`, which takes `&self`.
struct Shared<S, M>(Arc<StreamableHttpService<S, M>>);

impl<S, M> Shared<S, M> {
    fn new(service: StreamableHttpService<S, M>) -> Self {
        Self(Arc::new(service))
    }
}

impl<S, M> Clone for Shared<S, M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, M> tower_service::Service<Request> for Shared<S, M>
where
    S: rmcp::ServerHandler + Send + 'static,
    M: rmcp::transport::streamable_http_server::SessionManager,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(request).await.map(Body::new)) })
    }
}

async fn alive() -> &'static str {
    "ok"
}

async fn startupz(State(health): State<Arc<Health>>) -> Response {
    if health.is_started() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    if health.is_ready() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// Counts every `/mcp` request but the standalone notification stream (GET), which lasts as
/// long as its session and is closed by shutdown itself.
async fn track_in_flight(
    State(in_flight): State<Arc<InFlight>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    let guard = in_flight.enter();
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::new(TrackedBody::new(body, guard)))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON-RPC error response with no request id (the request could not be read).
fn jsonrpc_error(status: StatusCode, code: i32, message: String) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

/// Answers a POST whose JSON body does not parse with JSON-RPC `-32700` (parse error), and one
/// that parses but is not a JSON-RPC message rmcp accepts with `-32600` (invalid request),
/// both as HTTP 400. Everything else passes through unchanged.
async fn guard_json_body(State(max_bytes): State<usize>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !is_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, max_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => {
            // axum reports an exceeded limit as http-body's LengthLimitError.
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.to_string().contains("length limit exceeded"));
            return if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Payload Too Large: request body exceeds {max_bytes} bytes"),
                )
                    .into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("Bad Request: could not read the request body: {err}"),
                )
                    .into_response()
            };
        }
    };
    // rmcp parses the body; only when it refuses it (415) is it parsed here again, to tell
    // JSON that is not JSON-RPC from text that is not JSON — no second parse of good requests.
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32700,
            format!("Parse error: the request body is not valid JSON: {err}"),
        );
    }
    // The content type is JSON and the body parses, so rmcp's 415 means the body is not a
    // JSON-RPC message it accepts; its text says why.
    let detail = to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    jsonrpc_error(
        StatusCode::BAD_REQUEST,
        -32600,
        format!("Invalid Request: not a JSON-RPC 2.0 request or notification ({detail})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_allowed_and_duplicates_are_dropped() {
        let hosts = allowed_hosts(&[
            "mcp.example.com".into(),
            "LOCALHOST".into(),
            " ".into(),
            "mcp.example.com".into(),
        ]);
        assert_eq!(hosts, ["localhost", "127.0.0.1", "::1", "mcp.example.com"]);
    }

    #[test]
    fn readiness_follows_start_and_drain() {
        let health = Health::default();
        assert!(!health.is_started() && !health.is_ready());
        health.mark_started();
        assert!(health.is_ready());
        health.mark_draining();
        assert!(health.is_started() && !health.is_ready());
    }
}
