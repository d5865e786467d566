//! Reconcilers against the in-process fake API ([`crate::fake_api`]): the exact calls they
//! make, and that a steady object costs no write.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use linkmcp_api::{Agent, McpLink, McpServer};
use serde_json::{Value, json};

use crate::context::{Context, Settings};
use crate::fake_api::{FakeApi, Recorded, writes};
use crate::metrics::Metrics;

const NS: &str = "team";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        generation: Some(1),
        ..ObjectMeta::default()
    }
}

fn server(spec: Value) -> McpServer {
    McpServer {
        metadata: meta("data"),
        spec: serde_json::from_value(spec).unwrap(),
        status: None,
    }
}

fn link(name: &str, spec: Value) -> McpLink {
    McpLink {
        metadata: meta(name),
        spec: serde_json::from_value(spec).unwrap(),
        status: None,
    }
}

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn setup() -> (FakeApi, Arc<Context>) {
    let (fake, client) = FakeApi::start();
    let ctx = Context::new(
        client,
        Settings::default(),
        Arc::new(Metrics::default()),
        None,
    );
    (fake, Arc::new(ctx))
}

async fn reconcile_server(fake: &FakeApi, ctx: &Arc<Context>) -> Vec<Recorded> {
    let server: McpServer = fake.get(NS, "data").unwrap();
    crate::server::reconcile(Arc::new(server), ctx.clone())
        .await
        .unwrap();
    fake.take_requests()
}

fn status_patch<'a>(requests: &'a [Recorded], path_end: &str) -> &'a Value {
    requests
        .iter()
        .find(|r| r.is_write() && r.line().ends_with(path_end))
        .and_then(|r| r.body.as_ref())
        .unwrap_or_else(|| panic!("no write to {path_end} in {:?}", writes(requests)))
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn credentials(fake: &FakeApi) -> BTreeMap<String, String> {
    let secret: Secret = fake.get(NS, "data-credentials").unwrap();
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_minimal_server_is_applied_once_then_costs_no_write() {
    let (fake, ctx) = setup();
    fake.put(&server(json!({"auth": {"allowUnauthenticated": true}})));

    let first = reconcile_server(&fake, &ctx).await;
    assert_eq!(
        writes(&first),
        [
            // The credentials first: a running server waits only for them (see Kind::ALL).
            "PATCH /api/v1/namespaces/team/secrets/data-credentials",
            "PATCH /api/v1/namespaces/team/serviceaccounts/data",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/data",
            "PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/data",
            "PATCH /api/v1/namespaces/team/configmaps/data-settings",
            "PATCH /apis/apps/v1/namespaces/team/deployments/data",
            "PATCH /api/v1/namespaces/team/services/data",
            "PATCH /apis/linkmcp.io/v1alpha1/namespaces/team/mcpservers/data/status",
            // Ready (False: no pod yet) and Available (False) are news; OptionalApiMissing
            // False is not.
            "POST /apis/events.k8s.io/v1/namespaces/team/events",
            "POST /apis/events.k8s.io/v1/namespaces/team/events",
        ]
    );
    for apply in first.iter().filter(|r| r.method == "PATCH") {
        assert!(
            apply.uri.contains("fieldManager=linkmcp-controller")
                && apply.uri.contains("force=true"),
            "{}",
            apply.uri
        );
    }
    let status = status_patch(&first, "/mcpservers/data/status");
    assert_eq!(
        status["status"]["endpoint"],
        "http://data.team.svc:8080/mcp"
    );
    assert_eq!(
        condition(status, "Ready")["reason"],
        "DeploymentProgressing"
    );
    assert_eq!(condition(status, "Available")["status"], "False");

    let second = reconcile_server(&fake, &ctx).await;
    assert_eq!(
        writes(&second),
        Vec::<String>::new(),
        "a steady server is only read"
    );
    assert_eq!(ctx.metrics.writes_total(), 10);
}

#[tokio::test]
async fn a_link_with_a_missing_key_says_which_and_its_credentials_follow_the_fix() {
    let (fake, ctx) = setup();
    fake.put(&server(json!({"auth": {"allowUnauthenticated": true}})));
    fake.put(&link(
        "orders-db",
        json!({
            "serverRef": {"name": "data"},
            "postgres": {"host": "orders.data.svc", "database": "orders"},
            "credentialsSecretRef": {"name": "pg-creds", "keys": {"password": "password"}}
        }),
    ));
    fake.put(&secret("pg-creds", &[("username", "orders")]));

    let first = reconcile_server(&fake, &ctx).await;
    let status = status_patch(&first, "/mcplinks/orders-db/status");
    let resolved = condition(status, "CredentialsResolved");
    assert_eq!(resolved["status"], "False");
    assert_eq!(resolved["reason"], "SecretKeyMissing");
    assert!(
        resolved["message"]
            .as_str()
            .unwrap()
            .starts_with("Secret pg-creds has no key 'password'"),
        "{resolved}"
    );
    assert_eq!(condition(status, "Ready")["reason"], "SecretKeyMissing");
    assert_eq!(status["status"]["type"], "postgres");
    assert_eq!(status["status"]["toolCount"], 0);
    assert!(
        credentials(&fake).keys().all(|k| !k.starts_with("link.")),
        "an unresolved link copies nothing"
    );

    fake.put(&secret(
        "pg-creds",
        &[("username", "orders"), ("password", "s3cret")],
    ));
    let second = reconcile_server(&fake, &ctx).await;
    let status = status_patch(&second, "/mcplinks/orders-db/status");
    assert_eq!(condition(status, "CredentialsResolved")["status"], "True");
    assert_eq!(condition(status, "Ready")["status"], "True");
    let tools: Vec<&str> = status["status"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        !tools.is_empty() && tools.iter().all(|t| t.starts_with("pg_")),
        "{tools:?}"
    );
    assert_eq!(status["status"]["toolCount"], tools.len());
    assert_eq!(status["status"]["write"], false);
    let copied = credentials(&fake);
    assert_eq!(copied["link.orders-db.password"], "s3cret");
    assert_eq!(copied["link.orders-db.username"], "orders");
    let server_status = status_patch(&second, "/mcpservers/data/status");
    assert_eq!(server_status["status"]["links"], 1);
    assert_eq!(server_status["status"]["tools"], tools.len());

    // Deleting the link removes its credentials.
    fake.delete::<McpLink>(NS, "orders-db");
    let third = reconcile_server(&fake, &ctx).await;
    assert!(credentials(&fake).keys().all(|k| !k.starts_with("link.")));
    assert_eq!(
        status_patch(&third, "/mcpservers/data/status")["status"]["links"],
        0
    );
}

#[tokio::test]
async fn a_link_whose_server_is_missing_waits_and_says_so() {
    let (fake, ctx) = setup();
    fake.put(&link(
        "metrics",
        json!({"serverRef": {"name": "nowhere"}, "prometheus": {"url": "http://prometheus:9090"}}),
    ));
    let link: McpLink = fake.get(NS, "metrics").unwrap();
    crate::link::reconcile(Arc::new(link), ctx.clone())
        .await
        .unwrap();
    let requests = fake.take_requests();
    let status = status_patch(&requests, "/mcplinks/metrics/status");
    let ready = condition(status, "Ready");
    assert_eq!(ready["reason"], "ServerNotFound");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("McpServer nowhere not found in namespace team: the link waits for it")
    );
    assert_eq!(
        condition(status, "CredentialsResolved")["reason"],
        "NoCredentials"
    );

    let link: McpLink = fake.get(NS, "metrics").unwrap();
    crate::link::reconcile(Arc::new(link), ctx.clone())
        .await
        .unwrap();
    assert_eq!(writes(&fake.take_requests()), Vec::<String>::new());
}

#[tokio::test]
async fn lowering_kubectl_access_deletes_the_bindings() {
    let (fake, ctx) = setup();
    fake.put(&server(json!({
        "auth": {"allowUnauthenticated": true},
        "kubectl": {"access": "ReadWrite"}
    })));
    let first = reconcile_server(&fake, &ctx).await;
    assert!(writes(&first).contains(
        &"PATCH /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/data-kubectl".to_owned()
    ));

    let mut lowered: McpServer = fake.get(NS, "data").unwrap();
    lowered.spec.kubectl.access = linkmcp_api::server::KubectlAccess::Disabled;
    lowered.metadata.generation = Some(2);
    fake.put(&lowered);
    let second = reconcile_server(&fake, &ctx).await;
    let written = writes(&second);
    assert!(written.contains(
        &"DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/data-kubectl".to_owned()
    ));
    assert!(
        written.contains(
            &"DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/data-kubectl"
                .to_owned()
        )
    );
    assert!(
        !written.iter().any(|w| w.contains("/roles/data")
            && w.starts_with("DELETE")
            && !w.contains("kubectl")),
        "the server's own Role stays"
    );
}

#[tokio::test]
async fn an_optional_api_that_is_missing_is_named_then_used_once_installed() {
    let (fake, ctx) = setup();
    fake.put(&server(json!({
        "auth": {"allowUnauthenticated": true},
        "monitoring": {"serviceMonitor": true}
    })));
    let first = reconcile_server(&fake, &ctx).await;
    let status = status_patch(&first, "/mcpservers/data/status");
    let missing = condition(status, "OptionalApiMissing");
    assert_eq!(missing["status"], "True");
    assert_eq!(missing["reason"], "ApiNotInstalled");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("install the Prometheus Operator CRDs")
    );
    assert!(!writes(&first).iter().any(|w| w.contains("servicemonitors")));

    // A new controller (empty discovery cache) in a cluster that has the API.
    let (fake2, ctx2) = setup();
    fake2.serve_api(
        "monitoring.coreos.com/v1",
        &[("ServiceMonitor", "servicemonitors")],
    );
    fake2.put(&server(json!({
        "auth": {"allowUnauthenticated": true},
        "monitoring": {"serviceMonitor": true}
    })));
    let applied = reconcile_server(&fake2, &ctx2).await;
    assert!(writes(&applied).contains(
        &"PATCH /apis/monitoring.coreos.com/v1/namespaces/team/servicemonitors/data".to_owned()
    ));
    let status = status_patch(&applied, "/mcpservers/data/status");
    assert_eq!(condition(status, "OptionalApiMissing")["status"], "False");
    drop(ctx);
}

#[tokio::test]
async fn an_agent_without_its_api_key_is_not_ready_and_the_key_is_not_copied() {
    let (fake, ctx) = setup();
    fake.put(&server(json!({"auth": {"allowUnauthenticated": true}})));
    fake.put(&Agent {
        metadata: meta("sre"),
        spec: serde_json::from_value(json!({
            "serverRef": {"name": "data"},
            "apiKeySecretRef": {"name": "anthropic", "key": "api-key"}
        }))
        .unwrap(),
        status: None,
    });
    fake.put(&secret("anthropic", &[("other", "x")]));
    let agent: Agent = fake.get(NS, "sre").unwrap();
    crate::agent::reconcile(Arc::new(agent), ctx.clone())
        .await
        .unwrap();
    let requests = fake.take_requests();
    let status = status_patch(&requests, "/agents/sre/status");
    let refs = condition(status, "ReferencesResolved");
    assert_eq!(refs["reason"], "SecretKeyMissing");
    assert_eq!(
        refs["message"],
        "spec.apiKeySecretRef: Secret anthropic has no key 'api-key'"
    );
    // The controller writes only its own status fields: no run fields.
    let mut fields: Vec<&String> = status["status"].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["conditions", "observedGeneration"]);

    reconcile_server(&fake, &ctx).await;
    assert!(!credentials(&fake).contains_key("agent.sre.apiKey"));
    fake.put(&secret("anthropic", &[("api-key", "sk-test")]));
    reconcile_server(&fake, &ctx).await;
    assert_eq!(credentials(&fake)["agent.sre.apiKey"], "sk-test");
}
