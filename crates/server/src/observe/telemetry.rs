//! OpenTelemetry traces (McpServer `spec.telemetry`): a span per `/mcp` request and per tool
//! call, exported over OTLP/HTTP.
//!
//! The controller renders `spec.telemetry` into the pod as the standard variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` =
//! `parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG`), which the SDK reads; without an
//! endpoint nothing is traced and no span is even created on the call path ([`enabled`]).
//!
//! Spans come from `tracing` through tracing-opentelemetry. Both spans take the client's W3C
//! trace context (`traceparent`/`tracestate` headers) as parent, so a client's trace shows the
//! server's work under its own; a tool call's span carries the tool, its toolset (`core`,
//! `link/<name>`) and the outcome, and is marked an error when the call did not succeed.
//! Arguments and results are never attached: they may hold what the audit line scrubs.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::{extract::Request, http::HeaderMap, middleware::Next, response::Response};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The variable naming the OTLP endpoint; traces are exported only when it is set.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported. Checked before any span is created on the call path.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting tracer provider; flush it with [`Telemetry::shutdown`] before exiting.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Sends what is still batched and stops exporting.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "flushing the last traces failed");
        }
    }
}

/// The tracing layer exporting spans to the OTLP endpoint.
pub type TraceLayer<S> =
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>;

/// The tracing layer exporting spans, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (an empty
/// value counts as unset). Errors building the exporter are returned for the caller to log;
/// the server then runs without traces.
pub fn layer<S>() -> Result<Option<(TraceLayer<S>, Telemetry)>, String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    if std::env::var(ENDPOINT_VAR).map_or(true, |v| v.trim().is_empty()) {
        return Ok(None);
    }
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|e| format!("the OTLP exporter could not be built: {e}"))?;
    // The sampler (OTEL_TRACES_SAMPLER, _ARG) and service name (OTEL_SERVICE_NAME) come from
    // the environment through the SDK's defaults.
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("linkmcp-server");
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Telemetry { provider },
    )))
}

/// Makes the client's W3C trace context (in `headers`) the parent of `span`.
fn adopt_parent(span: &Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    // Fails only when the span was already started or is disabled: it then stays a root.
    let _ = span.set_parent(parent);
}

/// Middleware: one span per request, named for its method and path, child of the client's
/// trace, with the response status.
pub async fn http_span(request: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(request).await;
    }
    let span = tracing::info_span!(
        "http request",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    adopt_parent(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The span of one tool call, child of the client's trace in `headers` (when the request came
/// over HTTP); the registry records its toolset and outcome ([`record_call`]).
pub fn tool_span(tool: &str, headers: Option<&HeaderMap>) -> Span {
    let span = tracing::info_span!(
        "tool call",
        otel.name = %format!("tools/call {tool}"),
        otel.kind = "server",
        mcp.method.name = "tools/call",
        mcp.tool.name = %tool,
        linkmcp.toolset = Empty,
        linkmcp.outcome = Empty,
        otel.status_code = Empty,
    );
    if let Some(headers) = headers {
        adopt_parent(&span, headers);
    }
    span
}

/// The span of one `resources/read`, child of the client's trace in `headers`.
pub fn resource_span(uri: &str, headers: Option<&HeaderMap>) -> Span {
    let span = tracing::info_span!(
        "resource read",
        otel.name = "resources/read",
        otel.kind = "server",
        mcp.method.name = "resources/read",
        mcp.resource.uri = %uri,
        linkmcp.outcome = Empty,
        otel.status_code = Empty,
    );
    if let Some(headers) = headers {
        adopt_parent(&span, headers);
    }
    span
}

/// The span of one `prompts/get`, child of the client's trace in `headers`.
pub fn prompt_span(prompt: &str, headers: Option<&HeaderMap>) -> Span {
    let span = tracing::info_span!(
        "prompt get",
        otel.name = %format!("prompts/get {prompt}"),
        otel.kind = "server",
        mcp.method.name = "prompts/get",
        mcp.prompt.name = %prompt,
        linkmcp.outcome = Empty,
        otel.status_code = Empty,
    );
    if let Some(headers) = headers {
        adopt_parent(&span, headers);
    }
    span
}

/// Records on the current resource or prompt span whether it was served.
pub fn record_served(ok: bool) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    span.record("linkmcp.outcome", if ok { "ok" } else { "error" });
    if !ok {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records on the current tool call's span which toolset served it and how it ended.
pub fn record_call(toolset: &str, outcome: &str) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    span.record("linkmcp.toolset", toolset);
    span.record("linkmcp.outcome", outcome);
    if outcome != "ok" {
        span.record("otel.status_code", "ERROR");
    }
}
