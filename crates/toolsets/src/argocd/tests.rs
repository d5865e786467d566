//! The argocd toolset against an in-process server answering recorded responses of Argo CD's
//! documented REST API (`/api/v1/applications`, `.../events`, `.../sync`, `.../rollback`,
//! `/api/v1/projects`; Application objects as `argocd app get -o json` shows them) and its
//! grpc-gateway errors (`{"error", "code", "message"}`: 404 NotFound, 401 Unauthenticated).
//! No Argo CD can be installed here, so Argo CD's own behaviour is not exercised.

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

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.argocd-test-token";
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

fn app(name: &str, project: &str, sync: &str, health: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "argocd", "labels": {"team": "payments"}},
        "spec": {
            "project": project,
            "source": {"repoURL": "https://github.com/example/deploy.git", "path": format!("apps/{name}"), "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}
        },
        "status": {
            "sync": {"status": sync, "revision": "4e3b2f1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"},
            "health": {"status": health},
            "resources": [
                {"version": "v1", "kind": "Service", "namespace": name, "name": name, "status": "Synced", "health": {"status": "Healthy"}},
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": name, "name": name, "status": sync, "health": {"status": health, "message": "Deployment \"api\" exceeded its progress deadline"}},
                {"version": "v1", "kind": "ConfigMap", "namespace": name, "name": "old-config", "status": "OutOfSync", "requiresPruning": true}
            ],
            "conditions": [{"type": "SyncError", "message": "one or more objects failed to apply", "lastTransitionTime": "2024-05-01T11:50:00Z"}],
            "operationState": {"operation": {"sync": {"revision": "4e3b2f1"}}, "phase": "Failed", "message": "one or more objects failed to apply", "startedAt": "2024-05-01T11:49:00Z", "finishedAt": "2024-05-01T11:50:00Z"},
            "history": [
                {"id": 4, "revision": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "deployedAt": "2024-04-30T09:00:00Z", "deployStartedAt": "2024-04-30T08:59:50Z", "source": {"repoURL": "https://github.com/example/deploy.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "initiatedBy": {"username": "alice"}},
                {"id": 5, "revision": "4e3b2f1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", "deployedAt": "2024-05-01T11:50:00Z", "deployStartedAt": "2024-05-01T11:49:00Z", "source": {"repoURL": "https://github.com/example/deploy.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "initiatedBy": {"automated": true}}
            ]
        }
    })
}

async fn handle(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock()
        .unwrap()
        .push((format!("{method} {uri}"), body.clone()));
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid session: token signature is invalid", "code": 16, "message": "invalid session: token signature is invalid"}))).into_response();
    }
    let not_found = |name: &str| {
        let said = format!("applications.argoproj.io \"{name}\" not found");
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": said, "code": 5, "message": said})),
        )
            .into_response()
    };
    let path = uri.path().trim_start_matches("/api/v1/");
    let answer = match (
        method.as_str(),
        path.split('/').collect::<Vec<_>>().as_slice(),
    ) {
        ("GET", ["applications"]) => json!({"metadata": {}, "items": [
            app("web", "platform", "Synced", "Healthy"),
            app("api", "platform", "OutOfSync", "Degraded"),
            app("billing", "finance", "Synced", "Healthy")
        ]}),
        ("GET", ["applications", name]) => match *name {
            "api" => app("api", "platform", "OutOfSync", "Degraded"),
            "billing" => app("billing", "finance", "Synced", "Healthy"),
            other => return not_found(other),
        },
        ("GET", ["applications", "api", "events"]) => json!({"metadata": {}, "items": [
            {"metadata": {"name": "api.17c"}, "involvedObject": {"kind": "Application", "name": "api"}, "reason": "OperationStarted", "message": "Initiated automated sync to '4e3b2f1'", "type": "Normal", "count": 1, "firstTimestamp": "2024-05-01T11:49:00Z", "lastTimestamp": "2024-05-01T11:49:00Z"},
            {"metadata": {"name": "api.17d"}, "involvedObject": {"kind": "Application", "name": "api"}, "reason": "OperationCompleted", "message": "Sync operation to 4e3b2f1 failed: one or more objects failed to apply", "type": "Warning", "count": 2, "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:52:00Z"}
        ]}),
        ("POST", ["applications", "api", "sync" | "rollback"]) => {
            let mut answer = app("api", "platform", "OutOfSync", "Progressing");
            answer["operation"] = json!({"sync": {"revision": body.get("revision").cloned().unwrap_or(json!("main")), "prune": body["prune"], "dryRun": body["dryRun"]}, "initiatedBy": {"username": "linkmcp"}});
            answer["status"]["operationState"] = json!({"phase": "Running", "message": "waiting for healthy state of apps/Deployment/api"});
            answer
        }
        ("GET", ["projects"]) => json!({"items": [
            {"metadata": {"name": "platform"}, "spec": {"description": "Platform services", "sourceRepos": ["https://github.com/example/deploy.git"], "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "*"}]}},
            {"metadata": {"name": "finance"}, "spec": {"description": "Finance", "sourceRepos": ["*"], "destinations": []}}
        ]}),
        _ => return not_found(path),
    };
    axum::Json(answer).into_response()
}

async fn stub() -> (String, Seen) {
    let seen = Seen::default();
    (
        serve(Router::new().fallback(handle).with_state(seen.clone())).await,
        seen,
    )
}

fn spec(url: &str, write: bool) -> McpLinkSpec {
    serde_json::from_value(json!({
        "serverRef": {"name": "main"},
        "argocd": {"url": url, "projects": ["platform"]},
        "credentialsSecretRef": {"name": "argocd-token"},
        "writeAccess": write,
    }))
    .unwrap()
}

fn token() -> Credentials {
    Credentials::new(BTreeMap::from([("token".to_owned(), TOKEN.to_owned())]))
}

fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let link = LinkContext {
        name: "argocd",
        namespace: "ops",
        spec,
        credentials,
    };
    link::build(&link, "argocd").unwrap()
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content[0].as_text().unwrap().text.clone()
}

#[tokio::test]
async fn applications_at_a_glance_confined_to_the_links_projects() {
    let (url, seen) = stub().await;
    let mut c = Caller::new(served(&spec(&url, false), &token()));
    let result = c.call("argocd_list_applications", json!({})).await;
    let text = text_of(&result);
    assert!(text.starts_with("2 applications, 1 not synced and healthy (listed first)\napi [platform] sync OutOfSync health Degraded rev 4e3b2f1 from https://github.com/example/deploy.git apps/api@main to https://kubernetes.default.svc/api\n"), "{text}");
    assert!(
        !text.contains("billing"),
        "another project's app is not listed: {text}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .last()
            .unwrap()
            .0
            .contains("projects=platform")
    );
    let text = c
        .err("argocd_get_application", json!({"name": "billing"}))
        .await;
    assert!(
        text.contains("application billing is in project finance, which this link does not reach"),
        "{text}"
    );
    let text = c
        .err("argocd_list_applications", json!({"project": "finance"}))
        .await;
    assert!(
        text.contains("project finance is not one this link reaches"),
        "{text}"
    );
    let v = c.ok("argocd_list_projects", json!({})).await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["projects"][0]["name"], "platform");
}

#[tokio::test]
async fn an_application_its_resources_events_and_history() {
    let (url, _) = stub().await;
    let mut c = Caller::new(served(&spec(&url, false), &token()));
    let result = c
        .call("argocd_get_application", json!({"name": "api"}))
        .await;
    let text = text_of(&result);
    assert!(
        text.contains("3 resources: 2 out of sync, 1 not healthy"),
        "{text}"
    );
    assert!(
        text.contains("condition SyncError: one or more objects failed to apply"),
        "{text}"
    );
    assert!(
        text.contains("last operation: Failed (sync) started 2024-05-01T11:49:00Z"),
        "{text}"
    );

    let result = c
        .call(
            "argocd_get_app_resources",
            json!({"name": "api", "problems_only": true}),
        )
        .await;
    let text = text_of(&result);
    assert!(
        text.starts_with("2 resources of api with problems"),
        "{text}"
    );
    assert!(text.contains("Deployment.apps api/api sync OutOfSync health Degraded: Deployment \"api\" exceeded its progress deadline"), "{text}");
    assert!(text.contains("ConfigMap api/old-config sync OutOfSync health - (not in git: a sync with prune would delete it)"), "{text}");

    let text = text_of(
        &c.call("argocd_get_app_events", json!({"name": "api"}))
            .await,
    );
    assert!(text.starts_with("2 events of api, newest first\n2024-05-01T11:52:00Z Warning OperationCompleted Application/api (x2)"), "{text}");

    let result = c
        .call("argocd_get_app_history", json!({"name": "api"}))
        .await;
    let text = text_of(&result);
    assert!(text.contains("2 deploys of api, newest first (current: rev 4e3b2f1)\nid 5 rev 4e3b2f1 deployed 2024-05-01T11:50:00Z by automated from apps/api@main\nid 4 rev 1a2b3c4 deployed 2024-04-30T09:00:00Z by alice"), "{text}");

    let text = c
        .err("argocd_get_application", json!({"name": "ghost"}))
        .await;
    assert!(
        text.contains("application ghost does not exist in Argo CD"),
        "{text}"
    );
    assert!(
        text.contains("applications.argoproj.io \"ghost\" not found"),
        "{text}"
    );
    c.no_secrets(&token());
}

#[tokio::test]
async fn sync_and_rollback_need_write_access_and_prune_only_when_asked() {
    let (url, seen) = stub().await;
    let read_only = served(&spec(&url, false), &token());
    let names: Vec<&str> = read_only.tools().iter().map(|d| d.name()).collect();
    assert!(!names.contains(&"argocd_sync_application") && !names.contains(&"argocd_rollback"));

    let mut c = Caller::new(served(&spec(&url, true), &token()));
    let text = text_of(
        &c.call(
            "argocd_sync_application",
            json!({"name": "api", "dry_run": true}),
        )
        .await,
    );
    assert!(
        text.starts_with(
            "sync of api ran as a dry run: nothing was applied (prune off, dry run on)"
        ),
        "{text}"
    );
    let (request, body) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(request, "POST /api/v1/applications/api/sync");
    assert_eq!(body, json!({"name": "api", "prune": false, "dryRun": true}));

    c.ok(
        "argocd_sync_application",
        json!({"name": "api", "revision": "v1.2.3", "prune": true}),
    )
    .await;
    let (_, body) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        body,
        json!({"name": "api", "prune": true, "dryRun": false, "revision": "v1.2.3"})
    );

    let text = c
        .err("argocd_rollback", json!({"name": "api", "id": 9}))
        .await;
    assert!(text.contains("has no history id 9"), "{text}");
    let v = c
        .ok("argocd_rollback", json!({"name": "api", "id": 4}))
        .await;
    assert_eq!(v["prune"], false);
    let (request, body) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(request, "POST /api/v1/applications/api/rollback");
    assert_eq!(
        body,
        json!({"name": "api", "id": 4, "prune": false, "dryRun": false})
    );
    let text = c
        .err("argocd_sync_application", json!({"name": "billing"}))
        .await;
    assert!(text.contains("which this link does not reach"), "{text}");
    c.no_secrets(&token());
}

#[tokio::test]
async fn a_refused_token_names_its_secret_and_the_toolset_complies() {
    let (url, _) = stub().await;
    let bad = Credentials::new(BTreeMap::from([(
        "token".to_owned(),
        "expired-token-0000".to_owned(),
    )]));
    let mut c = Caller::new(served(&spec(&url, true), &bad));
    let text = c.err("argocd_list_applications", json!({})).await;
    assert!(text.contains("the token in Secret argocd-token was refused (invalid session: token signature is invalid)"), "{text}");
    c.no_secrets(&bad);

    let s = spec(&url, true);
    let creds = token();
    let toolset = served(&s, &creds);
    check_annotations(toolset.as_ref());
    check_bad_arguments(toolset.as_ref()).await;
    let link = LinkContext {
        name: "argocd",
        namespace: "ops",
        spec: &s,
        credentials: &creds,
    };
    check_write_gating(
        super::toolset(&link, s.argocd.as_ref().unwrap()).unwrap(),
        "argocd",
    )
    .await;
    assert_eq!(super::component(&link).endpoint["projects"], "platform");
}
