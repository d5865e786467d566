//! The HTTP link types (prometheus, loki, grafana, argocd) served live by the server binary in
//! standalone mode: a manifests folder with one McpLink of each type, pointed at an in-process
//! HTTP server answering recorded responses of each documented API. A real MCP client sees
//! their read tools (and no write tool), calls one of each through the whole path (auth,
//! registry, governance, the toolset's HTTP client, the backend), and sees the write tools of
//! a link appear when a file gives it writeAccess — and the link's tools go when its file does.
//! The Prometheus link caches its results (spec.cache): a repeated query does not reach the
//! backend, and /metrics counts the hit and the miss.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

mod support;
use support::{ServerProcess, args, http};

/// The bearer token of the links' Secret; no tool output may show it.
const TOKEN: &str = "http-links-token-7f3a";

/// Requests the backend saw: method, path and the Authorization header.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// One recorded answer per documented endpoint the test calls.
async fn backend(seen: Seen) -> String {
    let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push((uri.path().to_owned(), auth));
            let answer = match uri.path() {
                "/api/v1/query" => json!({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {"__name__": "up", "job": "checkout", "instance": "10.0.0.7:8080"},
                                "value": [1714564800.0, "1"]}]}}),
                "/loki/api/v1/labels" => {
                    json!({"status": "success", "data": ["app", "namespace", "level"]})
                }
                "/api/datasources" => json!([
                    {"id": 1, "orgId": 1, "uid": "prom1", "name": "Prometheus", "type": "prometheus",
                     "access": "proxy", "url": "http://prometheus:9090", "isDefault": true, "jsonData": {}, "readOnly": false}
                ]),
                "/api/v1/applications" => json!({"metadata": {}, "items": [{
                    "metadata": {"name": "checkout", "namespace": "argocd"},
                    "spec": {"project": "platform",
                             "source": {"repoURL": "https://git.example.com/deploy.git", "path": "apps/checkout", "targetRevision": "main"},
                             "destination": {"server": "https://kubernetes.default.svc", "namespace": "checkout"}},
                    "status": {"sync": {"status": "OutOfSync", "revision": "4e3b2f1"}, "health": {"status": "Degraded"}}
                }]}),
                other => {
                    return (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(json!({"message": format!("no route {other}")})),
                    )
                        .into_response();
                }
            };
            axum::Json(answer).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

fn link(name: &str, block: &str, write: bool) -> String {
    format!(
        "apiVersion: linkmcp.io/v1alpha1
kind: McpLink
metadata: {{name: {name}}}
spec:
  serverRef: {{name: obs}}
  {block}
  credentialsSecretRef: {{name: obs-token}}
  writeAccess: {write}
"
    )
}

fn manifests(url: &str) -> String {
    [
        format!(
            "apiVersion: linkmcp.io/v1alpha1
kind: McpServer
metadata: {{name: obs}}
spec:
  auth: {{allowUnauthenticated: true}}
---
apiVersion: v1
kind: Secret
metadata: {{name: obs-token}}
stringData: {{token: {TOKEN}}}
"
        ),
        link(
            "metrics",
            &format!("prometheus: {{url: \"{url}\"}}\n  cache: {{ttlSeconds: 300}}"),
            false,
        ),
        link("logs", &format!("loki: {{url: \"{url}\"}}"), false),
        link("dashboards", &format!("grafana: {{url: \"{url}\"}}"), false),
    ]
    .join("---\n")
}

async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Waits until the served tool names satisfy `done`; the last names otherwise.
async fn wait_for(
    client: &RunningService<RoleClient, ()>,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names = tool_names(client).await;
        if done(&names) {
            return names;
        }
        assert!(Instant::now() < deadline, "{what}: tools are {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> String {
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap();
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(result.is_error, Some(true), "{tool}: {text}");
    let everything = format!("{text}{:?}", result.structured_content);
    assert!(
        !everything.contains(TOKEN),
        "{tool} showed the token: {text}"
    );
    text
}

#[tokio::test]
async fn http_links_serve_their_tools_live_in_standalone_mode() {
    let seen = Seen::default();
    let backend_url = backend(seen.clone()).await;
    let dir = std::env::temp_dir().join(format!("linkmcp-http-links-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stack.yaml"), manifests(&backend_url)).unwrap();
    let server = ServerProcess::start(&dir, &[]).await;
    let url = server.url.clone();
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{url}/mcp"
        )))
        .await
        .unwrap();

    let names = wait_for(&client, "the three links' tools", |names| {
        ["prom_query", "loki_labels", "grafana_list_datasources"]
            .iter()
            .all(|t| names.iter().any(|n| n == t))
    })
    .await;
    for expected in [
        "prom_query_range",
        "prom_alerts",
        "prom_targets",
        "prom_rules",
        "prom_label_values",
        "prom_series",
        "prom_metadata",
        "loki_query",
        "loki_query_range",
        "loki_label_values",
        "loki_series",
        "grafana_list_dashboards",
        "grafana_get_dashboard",
        "grafana_get_alerts",
        "grafana_list_folders",
        "grafana_query_datasource",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n == "grafana_create_annotation"),
        "a write tool without writeAccess: {names:?}"
    );

    let up = call(&client, "prom_query", json!({"query": "up"})).await;
    assert!(
        up.contains("checkout") && up.contains("10.0.0.7:8080"),
        "{up}"
    );
    // The metrics link caches (spec.cache): the same query again is answered from the cache.
    let again = call(&client, "prom_query", json!({"query": "up"})).await;
    assert_eq!(again, up);
    let queries = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/api/v1/query")
        .count();
    assert_eq!(queries, 1, "the second prom_query reached the backend");
    let metrics = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"linkmcp_tool_cache_total{toolset="link/metrics",result="miss"} 1"#,
        r#"linkmcp_tool_cache_total{toolset="link/metrics",result="hit"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let labels = call(&client, "loki_labels", json!({})).await;
    assert!(
        labels.contains("namespace") && labels.contains("level"),
        "{labels}"
    );
    let sources = call(&client, "grafana_list_datasources", json!({})).await;
    assert!(sources.contains("prom1"), "{sources}");
    {
        let seen = seen.lock().unwrap();
        for path in ["/api/v1/query", "/loki/api/v1/labels", "/api/datasources"] {
            let (_, auth) = seen
                .iter()
                .find(|(p, _)| p == path)
                .unwrap_or_else(|| panic!("no request to {path}: {seen:?}"));
            assert_eq!(auth, &format!("Bearer {TOKEN}"), "{path}");
        }
    }

    // A new file: an Argo CD link with writeAccess brings its read and write tools.
    std::fs::write(
        dir.join("argocd.yaml"),
        link(
            "deploys",
            &format!("argocd: {{url: \"{backend_url}\"}}"),
            true,
        ),
    )
    .unwrap();
    wait_for(&client, "the argocd link's tools", |names| {
        [
            "argocd_list_applications",
            "argocd_sync_application",
            "argocd_rollback",
        ]
        .iter()
        .all(|t| names.iter().any(|n| n == t))
    })
    .await;
    let apps = call(&client, "argocd_list_applications", json!({})).await;
    assert!(
        apps.contains("checkout") && apps.contains("OutOfSync"),
        "{apps}"
    );

    // Its file removed, its tools go; the others stay.
    std::fs::remove_file(dir.join("argocd.yaml")).unwrap();
    let names = wait_for(&client, "the argocd tools gone", |names| {
        !names.iter().any(|n| n.starts_with("argocd_"))
    })
    .await;
    assert!(names.iter().any(|n| n == "prom_query"), "{names:?}");

    client.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
