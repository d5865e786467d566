//! The shared HTTP client against an in-process server: URL checks, auth, body caps, and
//! every failure named by status with the server's message and no credential.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use linkmcp_api::McpLinkSpec;
use serde_json::{Value, json};

use super::stub::{closed_port, serve};
use super::*;
use crate::credentials::Credentials;
use crate::link::LinkContext;

const TOKEN: &str = "tok-3f9a7c-very-secret";

fn spec(secret: Option<&str>) -> McpLinkSpec {
    let mut spec = json!({"serverRef": {"name": "main"}, "prometheus": {"url": "http://x"}});
    if let Some(secret) = secret {
        spec["credentialsSecretRef"] = json!({"name": secret});
    }
    serde_json::from_value(spec).unwrap()
}

fn client(url: &str, spec: &McpLinkSpec, credentials: &Credentials) -> HttpClient {
    let link = LinkContext {
        name: "metrics",
        namespace: "ops",
        spec,
        credentials,
    };
    HttpClient::new(
        &link,
        HttpSettings {
            service: "Prometheus",
            url_field: "prometheus.url",
            url,
            tls: None,
            permission_hint: "the token needs read access",
            headers: vec![("x-scope-orgid", "tenant-a".to_owned())],
        },
    )
    .unwrap()
}

fn token() -> Credentials {
    Credentials::new(BTreeMap::from([("token".to_owned(), TOKEN.to_owned())]))
}

/// A server that checks the bearer token and the fixed header, and answers each documented
/// failure on its own path.
fn router() -> Router {
    Router::new()
        .route(
            "/api/v1/ok",
            get(|headers: HeaderMap| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                let tenant = headers.get("x-scope-orgid").and_then(|v| v.to_str().ok());
                if auth != Some(&format!("Bearer {TOKEN}")) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"message": "invalid API key"})),
                    );
                }
                (StatusCode::OK, axum::Json(json!({"tenant": tenant})))
            }),
        )
        .route(
            "/forbidden",
            get(|| async { (StatusCode::FORBIDDEN, axum::Json(json!({"message": "Permission denied"}))) }),
        )
        .route(
            "/bad",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})),
                )
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, format!("backend down, token {TOKEN}")) }),
        )
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/text", get(|| async { "not json" }))
}

#[test]
fn urls_are_checked_and_joined() {
    let base = BaseUrl::parse("grafana.url", "https://grafana.example/sub/").unwrap();
    assert_eq!(base.as_str(), "https://grafana.example/sub");
    assert_eq!(base.endpoint(), "grafana.example:443");
    assert_eq!(
        base.join("/api/search").as_str(),
        "https://grafana.example/sub/api/search"
    );
    assert_eq!(
        base.join_segments(&["api", "dashboards", "uid", "a/b"])
            .as_str(),
        "https://grafana.example/sub/api/dashboards/uid/a%2Fb"
    );
    let v6 = BaseUrl::parse("x.url", "http://[::1]:9090").unwrap();
    assert_eq!(v6.endpoint(), "[::1]:9090");

    let err = BaseUrl::parse("loki.url", "https://admin:hunter2@loki.example").unwrap_err();
    assert!(err.contains("must not carry credentials"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    for bad in [
        "ftp://x",
        "not a url",
        "http://x/?a=1",
        "file:///etc/passwd",
    ] {
        assert!(BaseUrl::parse("loki.url", bad).is_err(), "{bad}");
    }
}

#[test]
fn auth_comes_from_the_credentials() {
    assert_eq!(
        Auth::from_credentials(&token()),
        Auth::Bearer(TOKEN.to_owned())
    );
    let basic = Credentials::new(BTreeMap::from([
        ("username".to_owned(), "admin".to_owned()),
        ("password".to_owned(), "pw".to_owned()),
    ]));
    assert_eq!(
        Auth::from_credentials(&basic),
        Auth::Basic {
            username: "admin".into(),
            password: "pw".into()
        }
    );
    assert_eq!(Auth::from_credentials(&Credentials::default()), Auth::None);
    assert!(!format!("{:?}", Auth::from_credentials(&token())).contains(TOKEN));
}

#[tokio::test]
async fn json_answers_decode_with_the_token_and_headers_sent() {
    let url = serve(router()).await;
    let spec = spec(Some("prom-token"));
    let client = client(&url, &spec, &token());
    let value: Value = client.get("/api/v1/ok").fetch().await.unwrap();
    assert_eq!(value, json!({"tenant": "tenant-a"}));
}

#[tokio::test]
async fn failures_are_named_by_status_with_the_servers_message() {
    let url = serve(router()).await;
    let spec = spec(Some("prom-token"));
    let wrong = Credentials::new(BTreeMap::from([(
        "token".to_owned(),
        "wrong-token-123".to_owned(),
    )]));
    let refused = client(&url, &spec, &wrong)
        .get("/api/v1/ok")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401));
    let text = refused.to_string();
    assert!(
        text.contains("the token in Secret prom-token was refused"),
        "{text}"
    );
    assert!(text.contains("invalid API key"), "{text}");
    assert!(!text.contains("wrong-token-123"), "{text}");

    let anonymous = client(&url, &self::spec(None), &Credentials::default());
    let text = anonymous
        .get("/api/v1/ok")
        .send()
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("requires authentication"), "{text}");
    assert!(text.contains("set credentialsSecretRef"), "{text}");

    let c = client(&url, &spec, &token());
    let forbidden = c.get("/forbidden").send().await.unwrap_err();
    assert_eq!(forbidden.status(), Some(403));
    assert!(
        forbidden.to_string().contains("Permission denied"),
        "{forbidden}"
    );
    assert!(
        forbidden
            .to_string()
            .contains("the token needs read access"),
        "{forbidden}"
    );

    let bad = c.get("/bad").send().await.unwrap_err();
    assert_eq!(bad.status(), Some(400));
    assert_eq!(bad.server_message(), Some("bad_data: 1:5: parse error"));
    assert_eq!(bad.body().unwrap()["errorType"], "bad_data");

    let missing = c.get("/nope").send().await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    assert!(missing.to_string().contains("has no /nope"), "{missing}");
    assert!(
        missing.to_string().contains("check prometheus.url"),
        "{missing}"
    );

    let down = c.get("/down").send().await.unwrap_err();
    assert_eq!(down.status(), Some(503));
    let text = down.to_string();
    assert!(text.contains("503 Service Unavailable"), "{text}");
    assert!(text.contains("backend down, token [redacted]"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    let not_json = c.get("/text").fetch::<Value>().await.unwrap_err();
    assert!(not_json.to_string().contains("cannot read"), "{not_json}");
}

#[tokio::test]
async fn bodies_are_capped_and_calls_bounded() {
    let url = serve(router()).await;
    let spec = spec(None);
    let c = client(&url, &spec, &Credentials::default());
    let reply = c.get("/big").max_bytes(10_000).send().await.unwrap();
    assert_eq!(reply.body.len(), 10_000);
    let err = c.get("/big").max_bytes(9_999).send().await.unwrap_err();
    assert!(err.to_string().contains("exceeded 9999 bytes"), "{err}");

    let err = c
        .get("/slow")
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        err.to_string().contains("did not answer within 0.2 s"),
        "{err}"
    );

    let port = closed_port();
    let closed = client(
        &format!("http://127.0.0.1:{port}"),
        &spec,
        &Credentials::default(),
    );
    let err = closed.get("/").send().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot reach Prometheus at 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("check prometheus.url"), "{text}");
}

#[test]
fn bad_tls_material_is_refused_by_name() {
    let spec = spec(Some("s"));
    let credentials = Credentials::new(BTreeMap::from([(
        "ca.crt".to_owned(),
        "garbage".to_owned(),
    )]));
    let link = LinkContext {
        name: "m",
        namespace: "ops",
        spec: &spec,
        credentials: &credentials,
    };
    let settings = HttpSettings {
        service: "Loki",
        url_field: "loki.url",
        url: "https://loki",
        tls: None,
        permission_hint: "",
        headers: vec![],
    };
    let err = HttpClient::new(&link, settings.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`ca.crt` is not a PEM certificate bundle"),
        "{err}"
    );
    let half = Credentials::new(BTreeMap::from([("tls.crt".to_owned(), "x".to_owned())]));
    let link = LinkContext {
        credentials: &half,
        ..link
    };
    let err = HttpClient::new(&link, settings).unwrap_err().to_string();
    assert!(err.contains("needs both `tls.crt` and `tls.key`"), "{err}");
}
