//! The loki toolset against an in-process server answering recorded responses of Loki's
//! documented HTTP API (`/loki/api/v1/...`, the example bodies of its API reference),
//! including its errors: a LogQL parse error (400, plain text) and a missing tenant (401).
//! No Loki can be installed here, so Loki's own behaviour is not exercised.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use linkmcp_api::McpLinkSpec;
use serde_json::{Value, json};

use crate::compliance::{
    Caller, check_annotations, check_bad_arguments, check_output_capped, check_write_gating,
};
use crate::credentials::Credentials;
use crate::http::stub::{closed_port, serve};
use crate::link::{self, LinkContext};
use crate::{Toolset, output};

const TOKEN: &str = "loki-token-5d1e8b";

/// What the stub saw: each request's path and query, and its tenant and auth headers.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, String)>>>);

impl Seen {
    fn last(&self) -> (String, String, String) {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

fn streams_example() -> Value {
    json!({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"filename": "/var/log/myproject.log", "job": "varlogs", "level": "info"},
         "values": [["1569266497240578000", "foo"], ["1569266492548155000", "bar"]]},
        {"stream": {"filename": "/var/log/myproject.log", "job": "varlogs", "level": "error"},
         "values": [["1569266497240579000", "disk full"], ["1569266492548156000", "retrying"]]}
    ], "stats": {"summary": {"bytesProcessedPerSecond": 24, "linesProcessedPerSecond": 2}}}})
}

async fn handle(
    State(seen): State<Seen>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    seen.0.lock().unwrap().push((
        uri.path().to_owned(),
        uri.query().unwrap_or_default().to_owned(),
        format!("{}|{}", header("x-scope-orgid"), header("authorization")),
    ));
    if header("x-scope-orgid").is_empty() {
        return (StatusCode::UNAUTHORIZED, "no org id\n").into_response();
    }
    let query = q.get("query").cloned().unwrap_or_default();
    let body = match uri.path() {
        "/loki/api/v1/query_range" if query.starts_with("{bad") => {
            return (StatusCode::BAD_REQUEST, "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, expecting = or != or =~ or !~\n").into_response();
        }
        "/loki/api/v1/query_range" if query.starts_with("{huge") => {
            let values: Vec<Value> = (0..100)
                .map(|i| {
                    json!([
                        format!("{}", 1_569_266_497_000_000_000_i64 - i),
                        "x".repeat(5_000)
                    ])
                })
                .collect();
            json!({"status": "success", "data": {"resultType": "streams", "result": [{"stream": {"app": "huge"}, "values": values}]}})
        }
        "/loki/api/v1/query_range" if query.starts_with("rate(") => {
            json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"level": "info"}, "values": [[1588889221, "137.95"], [1588889236, "467.115"], [1588889251, "658.8516666666667"]]},
                {"metric": {"level": "warn"}, "values": [[1588889221, "137.27833333333334"], [1588889236, "467.69"], [1588889251, "660.6933333333333"]]}
            ]}})
        }
        "/loki/api/v1/query_range" => streams_example(),
        "/loki/api/v1/query" => {
            json!({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1588889221, "1267.1266666666666"]},
                {"metric": {"level": "warn"}, "value": [1588889221, "37.77166666666667"]},
                {"metric": {"level": "info"}, "value": [1588889221, "37.69"]}
            ]}})
        }
        "/loki/api/v1/labels" => json!({"status": "success", "data": ["foo", "bar", "baz"]}),
        "/loki/api/v1/label/namespace/values" => {
            json!({"status": "success", "data": ["cortex-ops/consul", "cortex-ops/cortex-gw"]})
        }
        "/loki/api/v1/series" => json!({"status": "success", "data": [
            {"container_name": "loki", "app": "loki", "stream": "stderr", "job": "default/loki", "namespace": "default", "instance": "loki-stack-0"},
            {"container_name": "promtail", "app": "promtail", "stream": "stderr", "job": "default/promtail", "namespace": "default", "instance": "promtail-x2kfd"}
        ]}),
        _ => return (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    };
    axum::Json(body).into_response()
}

async fn stub() -> (String, Seen) {
    let seen = Seen::default();
    let router = Router::new().fallback(get(handle)).with_state(seen.clone());
    (serve(router).await, seen)
}

fn spec(url: &str, tenant: Option<&str>) -> McpLinkSpec {
    let mut loki = json!({"url": url});
    if let Some(t) = tenant {
        loki["tenantId"] = json!(t);
    }
    serde_json::from_value(json!({"serverRef": {"name": "main"}, "loki": loki, "credentialsSecretRef": {"name": "loki-token"}})).unwrap()
}

fn token() -> Credentials {
    Credentials::new(BTreeMap::from([("token".to_owned(), TOKEN.to_owned())]))
}

fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let link = LinkContext {
        name: "logs",
        namespace: "ops",
        spec,
        credentials,
    };
    link::build(&link, "loki").unwrap()
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

#[tokio::test]
async fn log_lines_come_newest_first_grouped_by_stream() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, Some("platform")), &token()));
    let result = c
        .call(
            "loki_query_range",
            json!({"query": "{job=\"varlogs\"}", "since": "30m"}),
        )
        .await;
    let text = text_of(&result);
    assert!(text.contains("4 lines from 2 streams"), "{text}");
    assert!(text.contains("== {filename=\"/var/log/myproject.log\", job=\"varlogs\", level=\"error\"} (2 lines)\n2019-09-23T19:21:37.240579Z disk full\n"), "{text}");
    let error_at = text.find("level=\"error\"").unwrap();
    let info_at = text.find("level=\"info\"").unwrap();
    assert!(
        error_at < info_at,
        "the stream with the newest line comes first: {text}"
    );
    let v = result.structured_content.unwrap();
    assert_eq!(v["lineCount"], 4);
    assert_eq!(v["streams"][0]["entries"][0]["line"], "disk full");
    let (path, query, headers) = seen.last();
    assert_eq!(path, "/loki/api/v1/query_range");
    assert!(
        query.contains("direction=backward") && query.contains("limit=100"),
        "{query}"
    );
    let start: i128 = query
        .split("start=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let end: i128 = query
        .split("end=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        end - start,
        30 * 60 * 1_000_000_000,
        "since 30m in nanoseconds"
    );
    assert_eq!(headers, format!("platform|Bearer {TOKEN}"));

    let v = c
        .ok(
            "loki_query_range",
            json!({"query": "{job=\"varlogs\"}", "limit": 1, "direction": "forward"}),
        )
        .await;
    assert_eq!(v["lineCount"], 1);
    assert_eq!(v["truncated"], true);
    assert!(seen.last().1.contains("direction=forward"));
    c.no_secrets(&token());
}

#[tokio::test]
async fn lines_are_capped_in_count_and_bytes() {
    let (url, _) = stub().await;
    let toolset = served(&spec(&url, Some("platform")), &token());
    let mut c = Caller::new(toolset.clone());
    let result = c
        .call(
            "loki_query_range",
            json!({"query": "{huge=\"1\"}", "limit": 5}),
        )
        .await;
    let text = text_of(&result);
    assert!(text.contains("5 lines from 1 streams"), "{text}");
    assert!(text.contains("5 long lines cut at 2048 bytes"), "{text}");
    assert!(text.contains("... [5000 bytes]"), "{text}");
    let args = json!({"query": "{huge=\"1\"}"})
        .as_object()
        .cloned()
        .unwrap();
    check_output_capped(toolset.as_ref(), "loki_query_range", args, 8 * 1024).await;
    c.ctx = c.ctx.clone().with_max_output_bytes(8 * 1024);
    let v = c
        .ok("loki_query_range", json!({"query": "{huge=\"1\"}"}))
        .await;
    assert_eq!(v["truncated"], true);
    assert!(
        v.to_string().len() < 12 * 1024,
        "structured content stays near the cap"
    );
}

#[tokio::test]
async fn metric_queries_render_like_series() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, Some("platform")), &token()));
    let result = c
        .call(
            "loki_query_range",
            json!({"query": "rate({job=\"varlogs\"}[1m])", "step": "15s"}),
        )
        .await;
    let text = text_of(&result);
    assert!(text.contains(": 2 series"), "{text}");
    assert!(
        text.contains("[1] {level=\"info\"}: 22:07:01 137.9, 22:07:16 467.1, 22:07:31 658.9"),
        "{text}"
    );
    assert!(seen.last().1.contains("step=15"), "{:?}", seen.last());
    let v = c
        .ok(
            "loki_query",
            json!({"query": "sum by (level) (count_over_time({job=\"varlogs\"}[5m]))"}),
        )
        .await;
    assert_eq!(v["resultType"], "vector");
    assert_eq!(v["seriesCount"], 3);
    assert_eq!(v["series"][1]["labels"]["level"], "warn");
}

#[tokio::test]
async fn errors_name_the_logql_position_and_the_missing_tenant() {
    let (url, _) = stub().await;
    let mut c = Caller::new(served(&spec(&url, Some("platform")), &token()));
    let text = c
        .err("loki_query_range", json!({"query": "{bad label}"}))
        .await;
    assert!(
        text.starts_with("LogQL error: parse error at line 1, col 6: syntax error"),
        "{text}"
    );
    assert!(text.ends_with("\n  {bad label}\n       ^"), "{text}");
    let text = c
        .err(
            "loki_query_range",
            json!({"query": "{a=\"b\"}", "since": "1h", "start": "-2h"}),
        )
        .await;
    assert!(text.contains("either `start` or `since`"), "{text}");
    let text = c.err("loki_series", json!({"match": [" "]})).await;
    assert!(text.contains("at least one stream selector"), "{text}");

    let mut untenanted = Caller::new(served(&spec(&url, None), &token()));
    let text = untenanted.err("loki_labels", json!({})).await;
    assert!(
        text.contains("multi-tenant and got no tenant (no org id): set loki.tenantId"),
        "{text}"
    );

    let port = closed_port();
    let mut down = Caller::new(served(
        &spec(&format!("http://127.0.0.1:{port}"), Some("x")),
        &token(),
    ));
    let text = down.err("loki_labels", json!({})).await;
    assert!(
        text.contains(&format!("cannot reach Loki at 127.0.0.1:{port}")),
        "{text}"
    );
    c.no_secrets(&token());
    untenanted.no_secrets(&token());
}

#[tokio::test]
async fn labels_values_and_series() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, Some("platform")), &token()));
    let v = c.ok("loki_labels", json!({"since": "6h"})).await;
    assert_eq!(v["labels"], json!(["foo", "bar", "baz"]));
    let v = c
        .ok(
            "loki_label_values",
            json!({"label": "namespace", "query": "{app=\"x\"}"}),
        )
        .await;
    assert_eq!(
        v["values"],
        json!(["cortex-ops/consul", "cortex-ops/cortex-gw"])
    );
    assert!(
        seen.last().1.contains("query=%7Bapp%3D%22x%22%7D"),
        "{:?}",
        seen.last()
    );
    let result = c
        .call("loki_series", json!({"match": ["{namespace=\"default\"}"]}))
        .await;
    let text = text_of(&result);
    assert!(text.contains("2 streams"), "{text}");
    assert!(
        text.contains("all share {namespace=\"default\", stream=\"stderr\"}"),
        "{text}"
    );
    assert!(seen.last().1.contains("match%5B%5D="), "{:?}", seen.last());
}

#[tokio::test]
async fn the_toolset_complies() {
    let (url, _) = stub().await;
    let toolset = served(&spec(&url, Some("platform")), &token());
    check_annotations(toolset.as_ref());
    check_bad_arguments(toolset.as_ref()).await;
    let s = spec(&url, Some("platform"));
    let creds = token();
    let link = LinkContext {
        name: "logs",
        namespace: "ops",
        spec: &s,
        credentials: &creds,
    };
    let backend = super::toolset(&link, s.loki.as_ref().unwrap()).unwrap();
    check_write_gating(backend, "loki").await;
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "loki_query",
            "loki_query_range",
            "loki_labels",
            "loki_label_values",
            "loki_series"
        ]
    );
    let component = super::component(&link);
    assert_eq!(component.kind, "logs");
    assert_eq!(component.endpoint["tenant"], "platform");
    let _ = output::ok_text("");
}
