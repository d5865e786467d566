//! Traces over OTLP/HTTP (McpServer spec.telemetry) from the server binary, received by an
//! in-process OTLP receiver that decodes the protobuf export requests.
//!
//! The server runs with the variables the controller renders from `spec.telemetry`, sampling
//! ratio 0 under `parentbased_traceidratio`: a request carrying a sampled W3C `traceparent` is
//! traced as a child of the client's span (the request's span and the tool call's, with tool,
//! toolset and outcome), and a request without one is not traced at all.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

mod support;
use support::{ServerProcess, http};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Spans received, with their service name.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            AnyValue::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            store.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}"), received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            AnyValue::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start(otlp: &str) -> (ServerProcess, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("linkmcp-telemetry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.yaml"),
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: traced}\nspec:\n  \
         auth: {allowUnauthenticated: true}\n  stateless: true\n",
    )
    .unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_SERVICE_NAME", "linkmcp-server"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    (ServerProcess::start(&dir, &env).await, dir)
}

/// A JSON-RPC request over the 2025-11-25 wire, with an optional `traceparent`.
async fn rpc(url: &str, method: &str, params: Value, traceparent: Option<&str>) -> Value {
    let mut request = http()
        .post(format!("{url}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn ping(url: &str, traceparent: Option<&str>) -> Value {
    rpc(
        url,
        "tools/call",
        json!({"name": "ping", "arguments": {}}),
        traceparent,
    )
    .await
}

#[tokio::test]
async fn requests_and_tool_calls_are_traced_under_the_clients_trace() {
    let (otlp, received) = receiver().await;
    let (server, dir) = start(&otlp).await;
    let url = server.url.clone();

    // Not sampled by the client, and the ratio is 0: not traced.
    let untraced = ping(&url, None).await;
    assert_eq!(
        untraced["result"]["structuredContent"],
        json!({"pong": true})
    );
    let parent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let traced = ping(&url, Some(&parent)).await;
    assert_eq!(traced["result"]["structuredContent"], json!({"pong": true}));
    let read = rpc(
        &url,
        "resources/read",
        json!({"uri": "linkmcp://server/info"}),
        Some(&parent),
    )
    .await;
    assert!(read["result"]["contents"].is_array(), "{read}");
    let prompt = rpc(
        &url,
        "prompts/get",
        json!({"name": "linkmcp_overview"}),
        Some(&parent),
    )
    .await;
    assert!(prompt["result"]["messages"].is_array(), "{prompt}");

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let names: Vec<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.name.clone())
            .collect();
        let wanted = [
            "tools/call ping",
            "resources/read",
            "prompts/get linkmcp_overview",
            "POST /mcp",
        ];
        if wanted.iter().all(|w| names.iter().any(|n| n == w)) {
            break;
        }
        assert!(Instant::now() < deadline, "spans received: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a late export of the untraced request time to show up, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = received.lock().unwrap().clone();

    for (service, span) in &spans {
        assert_eq!(service, "linkmcp-server");
        assert_eq!(
            hex(&span.trace_id),
            TRACE_ID,
            "{} is outside the client's trace",
            span.name
        );
    }
    let tool = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "tools/call ping")
        .unwrap();
    assert_eq!(hex(&tool.parent_span_id), CLIENT_SPAN);
    assert_eq!(attribute(tool, "mcp.tool.name").as_deref(), Some("ping"));
    assert_eq!(attribute(tool, "linkmcp.toolset").as_deref(), Some("core"));
    assert_eq!(attribute(tool, "linkmcp.outcome").as_deref(), Some("ok"));
    let request = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "POST /mcp")
        .unwrap();
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    let read = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "resources/read")
        .unwrap();
    assert_eq!(hex(&read.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attribute(read, "mcp.resource.uri").as_deref(),
        Some("linkmcp://server/info")
    );
    assert_eq!(attribute(read, "linkmcp.outcome").as_deref(), Some("ok"));
    let prompt = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "prompts/get linkmcp_overview")
        .unwrap();
    assert_eq!(
        attribute(prompt, "mcp.prompt.name").as_deref(),
        Some("linkmcp_overview")
    );
    assert_eq!(attribute(prompt, "linkmcp.outcome").as_deref(), Some("ok"));
    let requests = spans.iter().filter(|(_, s)| s.name == "POST /mcp").count();
    assert_eq!(requests, 3, "the unsampled request was traced too");
    let _ = std::fs::remove_dir_all(&dir);
}
