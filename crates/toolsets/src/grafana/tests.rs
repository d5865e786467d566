//! The grafana toolset against an in-process server answering recorded responses of Grafana's
//! documented HTTP API (search, dashboards by uid, datasources, folders, the Prometheus-style
//! alerts of Grafana-managed rules, /api/ds/query, annotations), including its errors (404
//! dashboard not found, 403 for a Viewer creating annotations, a datasource's query error).
//! No Grafana can be installed here, so Grafana's own behaviour is not exercised.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use linkmcp_api::McpLinkSpec;
use serde_json::{Value, json};

use crate::Toolset;
use crate::compliance::{Caller, check_annotations, check_bad_arguments, check_write_gating};
use crate::credentials::Credentials;
use crate::http::stub::serve;
use crate::link::{self, LinkContext};

const EDITOR: &str = "glsa_editor_7Hq2kP";
const VIEWER: &str = "glsa_viewer_3Zr8mT";

type Seen = Arc<Mutex<Vec<(String, Value, String)>>>;

async fn handle(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let org = headers
        .get("x-grafana-org-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock()
        .unwrap()
        .push((format!("{method} {uri}"), body.clone(), org));
    if auth != format!("Bearer {EDITOR}") && auth != format!("Bearer {VIEWER}") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "invalid API key"})),
        )
            .into_response();
    }
    let answer = match (method.as_str(), uri.path()) {
        ("GET", "/api/search") => json!([
            {"id": 163, "uid": "000000163", "title": "Folder", "url": "/dashboards/f/000000163/folder", "type": "dash-folder", "tags": [], "isStarred": false, "uri": "db/folder"},
            {"id": 1, "uid": "cIBgcSjkk", "title": "Production Overview", "url": "/d/cIBgcSjkk/production-overview", "type": "dash-db", "tags": ["prod"], "isStarred": true, "folderId": 2, "folderUid": "000000163", "folderTitle": "Folder", "folderUrl": "/dashboards/f/000000163/folder", "uri": "db/production-overview"}
        ]),
        ("GET", "/api/dashboards/uid/cIBgcSjkk") => json!({
            "dashboard": {"id": 1, "uid": "cIBgcSjkk", "title": "Production Overview", "tags": ["prod"], "timezone": "browser", "schemaVersion": 16, "version": 3,
                "templating": {"list": [{"name": "job", "type": "query", "query": "label_values(up, job)"}]},
                "panels": [
                    {"id": 1, "type": "row", "title": "API", "panels": [
                        {"id": 2, "type": "timeseries", "title": "Error rate", "datasource": {"type": "prometheus", "uid": "prom1"},
                         "targets": [{"refId": "A", "expr": "sum(rate(http_requests_total{code=~\"5..\"}[5m]))"}]}
                    ]},
                    {"id": 3, "type": "logs", "title": "API logs", "datasource": {"type": "loki", "uid": "loki1"},
                     "targets": [{"refId": "A", "expr": "{app=\"api\"} |= \"error\""}]},
                    {"id": 4, "type": "table", "title": "Orders", "datasource": "PostgreSQL",
                     "targets": [{"refId": "A", "rawSql": "SELECT status, count(*) FROM orders GROUP BY 1", "format": "table"}]}
                ]},
            "meta": {"isStarred": false, "url": "/d/cIBgcSjkk/production-overview", "folderId": 2, "folderUid": "000000163", "folderTitle": "Folder", "slug": "production-overview", "updated": "2024-05-01T10:00:00Z"}
        }),
        ("GET", path) if path.starts_with("/api/dashboards/uid/") => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "Dashboard not found"})),
            )
                .into_response();
        }
        ("GET", "/api/datasources") => json!([
            {"id": 1, "orgId": 1, "uid": "prom1", "name": "Prometheus", "type": "prometheus", "access": "proxy", "url": "http://prometheus:9090", "password": "", "user": "", "basicAuth": false, "isDefault": true, "jsonData": {}, "readOnly": false},
            {"id": 2, "orgId": 1, "uid": "H8joYFVGz", "name": "datasource_elastic", "type": "elasticsearch", "access": "proxy", "url": "http://mydatasource.com", "database": "grafana-dash", "basicAuth": false, "isDefault": false, "jsonData": {"esVersion": 5, "timeField": "@timestamp"}, "readOnly": false}
        ]),
        ("GET", "/api/folders") => {
            json!([{"id": 1, "uid": "nErXDvCkzz", "title": "Department ABC"}, {"id": 2, "uid": "k3S1cklGk", "title": "Department RND"}])
        }
        ("GET", "/api/prometheus/grafana/api/v1/alerts") => {
            json!({"status": "success", "data": {"alerts": [
                {"labels": {"alertname": "DiskAlmostFull", "grafana_folder": "Ops"}, "annotations": {}, "state": "Pending", "activeAt": "2024-05-01T11:59:00Z", "value": "9.1e+01"},
                {"labels": {"alertname": "HighErrorRate", "grafana_folder": "Ops"}, "annotations": {"summary": "5xx above 5%"}, "state": "Alerting", "activeAt": "2024-05-01T11:58:00Z", "value": "6.2e+00"}
            ]}})
        }
        ("POST", "/api/ds/query") => {
            if body["queries"][0]["expr"] == "up{" {
                return (StatusCode::BAD_REQUEST, axum::Json(json!({"results": {"A": {"error": "bad_data: 1:4: parse error: unexpected end of input", "status": 400}}}))).into_response();
            }
            json!({"results": {"A": {"status": 200, "frames": [{"schema": {"name": "up", "refId": "A", "fields": [
                {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                {"name": "Value", "type": "number", "labels": {"job": "api"}}
            ]}, "data": {"values": [[1714564800000_i64, 1714564815000_i64, 1714564830000_i64], [1, 1, 0]]}}]}}})
        }
        ("POST", "/api/annotations") => {
            if auth == format!("Bearer {VIEWER}") {
                return (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"message": "Permission denied"})),
                )
                    .into_response();
            }
            json!({"message": "Annotation added", "id": 1})
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "Not found"})),
            )
                .into_response();
        }
    };
    axum::Json(answer).into_response()
}

async fn stub() -> (String, Seen) {
    let seen = Seen::default();
    let router = Router::new().fallback(handle).with_state(seen.clone());
    (serve(router).await, seen)
}

fn spec(url: &str, write: bool) -> McpLinkSpec {
    serde_json::from_value(json!({
        "serverRef": {"name": "main"},
        "grafana": {"url": url, "orgId": 3},
        "credentialsSecretRef": {"name": "grafana-sa"},
        "writeAccess": write,
    }))
    .unwrap()
}

fn token(value: &str) -> Credentials {
    Credentials::new(BTreeMap::from([("token".to_owned(), value.to_owned())]))
}

fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let link = LinkContext {
        name: "grafana",
        namespace: "ops",
        spec,
        credentials,
    };
    link::build(&link, "grafana").unwrap()
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

#[tokio::test]
async fn dashboards_come_as_panels_and_their_queries() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, false), &token(VIEWER)));
    let v = c
        .ok(
            "grafana_list_dashboards",
            json!({"query": "prod", "tags": ["prod"]}),
        )
        .await;
    assert_eq!(v["dashboards"][1]["uid"], "cIBgcSjkk");
    let (request, _, org) = seen.lock().unwrap().last().cloned().unwrap();
    assert!(
        request.contains("type=dash-db")
            && request.contains("query=prod")
            && request.contains("tag=prod"),
        "{request}"
    );
    assert_eq!(org, "3", "orgId goes in X-Grafana-Org-Id");

    let result = c
        .call("grafana_get_dashboard", json!({"uid": "cIBgcSjkk"}))
        .await;
    let text = text_of(&result);
    assert!(
        text.contains(
            "dashboard \"Production Overview\" (uid cIBgcSjkk) in folder Folder, 3 panels"
        ),
        "{text}"
    );
    assert!(text.contains("panel 2 \"Error rate\" (timeseries) datasource prometheus prom1\n  A: sum(rate(http_requests_total{code=~\"5..\"}[5m]))"), "{text}");
    assert!(
        text.contains("A: SELECT status, count(*) FROM orders GROUP BY 1"),
        "{text}"
    );
    assert!(
        text.contains("variable $job (query): label_values(up, job)"),
        "{text}"
    );
    let v = result.structured_content.unwrap();
    assert!(
        v.get("dashboard").is_none(),
        "not the whole JSON unless asked"
    );
    let v = c
        .ok(
            "grafana_get_dashboard",
            json!({"uid": "cIBgcSjkk", "full": true}),
        )
        .await;
    assert_eq!(v["dashboard"]["schemaVersion"], 16);

    let text = c.err("grafana_get_dashboard", json!({"uid": "nope"})).await;
    assert!(
        text.contains("dashboard uid nope does not exist in Grafana"),
        "{text}"
    );
    assert!(text.contains("Dashboard not found"), "{text}");
    c.no_secrets(&token(VIEWER));
}

#[tokio::test]
async fn datasources_folders_and_alerts() {
    let (url, _) = stub().await;
    let mut c = Caller::new(served(&spec(&url, false), &token(VIEWER)));
    let result = c.call("grafana_list_datasources", json!({})).await;
    assert!(
        text_of(&result)
            .contains("prom1 \"Prometheus\" prometheus http://prometheus:9090 (default)"),
        "{}",
        text_of(&result)
    );
    let v = result.structured_content.unwrap();
    assert!(
        v["datasources"][1].get("jsonData").is_none()
            && v["datasources"][1].get("password").is_none()
    );
    let v = c.ok("grafana_list_folders", json!({})).await;
    assert_eq!(v["folders"][1]["title"], "Department RND");
    let result = c.call("grafana_get_alerts", json!({})).await;
    let text = text_of(&result);
    assert!(
        text.starts_with("2 alerts\n[Alerting] HighErrorRate since 2024-05-01T11:58:00Z"),
        "firing first: {text}"
    );
    assert!(text.contains("summary: 5xx above 5%"), "{text}");
    let v = c
        .ok("grafana_get_alerts", json!({"state": "pending"}))
        .await;
    assert_eq!(v["total"], 1);
}

#[tokio::test]
async fn queries_go_through_ds_query() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, false), &token(VIEWER)));
    let result = c
        .call(
            "grafana_query_datasource",
            json!({"datasource_uid": "prom1", "query": {"expr": "up"}, "from": "now-6h"}),
        )
        .await;
    let text = text_of(&result);
    assert!(
        text.contains("frame \"up\": 3 rows\nTime\tValue {\"job\":\"api\"}\n1714564800000\t1\n"),
        "{text}"
    );
    let (_, body, _) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(body["queries"][0]["datasource"]["uid"], "prom1");
    assert_eq!(body["queries"][0]["refId"], "A");
    assert_eq!(body["from"], "now-6h");
    assert_eq!(body["to"], "now");
    let text = c
        .err(
            "grafana_query_datasource",
            json!({"datasource_uid": "prom1", "query": {"expr": "up{"}}),
        )
        .await;
    assert_eq!(
        text,
        "the datasource prom1 refused the query: bad_data: 1:4: parse error: unexpected end of input"
    );
}

#[tokio::test]
async fn annotations_need_write_access_and_an_editor() {
    let (url, seen) = stub().await;
    let read_only = served(&spec(&url, false), &token(EDITOR));
    assert!(
        read_only
            .tools()
            .iter()
            .all(|d| d.name() != "grafana_create_annotation")
    );
    let mut c = Caller::new(served(&spec(&url, true), &token(EDITOR)));
    let v = c.ok("grafana_create_annotation", json!({"text": "Deployed api v2.3.1", "tags": ["deploy"], "dashboard_uid": "cIBgcSjkk", "panel_id": 2, "time": "now-5m"})).await;
    assert_eq!(v["id"], 1);
    let (_, body, _) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(body["dashboardUID"], "cIBgcSjkk");
    assert_eq!(body["tags"], json!(["deploy"]));
    let age = jiff::Timestamp::now().as_millisecond() - body["time"].as_i64().unwrap();
    assert!((299_000..320_000).contains(&age), "five minutes ago: {age}");

    let mut viewer = Caller::new(served(&spec(&url, true), &token(VIEWER)));
    let text = viewer
        .err("grafana_create_annotation", json!({"text": "x"}))
        .await;
    assert!(text.contains("answered 403"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(text.contains("Editor for annotations"), "{text}");
    let mut refused = Caller::new(served(&spec(&url, true), &token("glsa_revoked_0000")));
    let text = refused.err("grafana_list_folders", json!({})).await;
    assert!(
        text.contains("the token in Secret grafana-sa was refused (invalid API key)"),
        "{text}"
    );
    for caller in [&c, &viewer] {
        caller.no_secrets(&token(EDITOR));
        caller.no_secrets(&token(VIEWER));
    }
    refused.no_secrets(&token("glsa_revoked_0000"));
}

#[tokio::test]
async fn the_toolset_complies() {
    let (url, _) = stub().await;
    let s = spec(&url, true);
    let creds = token(EDITOR);
    let toolset = served(&s, &creds);
    check_annotations(toolset.as_ref());
    check_bad_arguments(toolset.as_ref()).await;
    let link = LinkContext {
        name: "grafana",
        namespace: "ops",
        spec: &s,
        credentials: &creds,
    };
    check_write_gating(
        super::toolset(&link, s.grafana.as_ref().unwrap()).unwrap(),
        "grafana",
    )
    .await;
    assert_eq!(super::component(&link).endpoint["orgId"], "3");
}
