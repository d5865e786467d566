//! Snapshot tests of the rendered objects, and the properties every rendering must keep.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use linkmcp_api::server::KubectlAccess;
use linkmcp_api::{McpLink, McpServer};
use serde_json::{Value, json};

use super::*;
use crate::link::evaluate::evaluate;
use crate::secrets::Secrets;
use crate::server::credentials::assemble;

fn server(spec: Value) -> McpServer {
    McpServer {
        metadata: ObjectMeta {
            name: Some("data".into()),
            namespace: Some("team".into()),
            uid: Some("7d6c1b4e-0000-4000-8000-000000000001".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: serde_json::from_value(spec).unwrap(),
        status: None,
    }
}

fn minimal() -> McpServer {
    server(json!({"auth": {"allowUnauthenticated": true}}))
}

fn everything() -> McpServer {
    server(json!({
        "serverName": "platform-data",
        "port": 9000,
        "replicas": 2,
        "image": "registry.example.com/linkmcp-server:1.2.3",
        "imagePullPolicy": "Always",
        "stateless": true,
        "allowedHosts": ["mcp.example.com"],
        "auth": {"apiKeys": {"secretName": "client-keys"}},
        "kubectl": {"access": "ReadWrite", "allNamespaces": true},
        "exposure": {
            "serviceType": "LoadBalancer",
            "httpRoute": {
                "parentRefs": [{"name": "public", "namespace": "gateway", "sectionName": "https"}],
                "hostnames": ["mcp.example.com"],
                "pathPrefix": "/"
            },
            "ingress": {
                "className": "nginx",
                "host": "mcp.internal.example.com",
                "tlsSecretName": "mcp-tls",
                "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"}
            }
        },
        "monitoring": {"serviceMonitor": true, "interval": "15s", "labels": {"release": "prometheus"}},
        "telemetry": {"otlpEndpoint": "http://otel-collector.observability:4317", "samplePerMille": 250},
        "limits": {"toolTimeoutSeconds": 20, "maxOutputBytes": 131072, "callsPerMinutePerTool": 600},
        "maskErrorDetails": true,
        "availability": {
            "minAvailable": 1,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "targetCpuPercent": 60}
        },
        "networkPolicy": {"allowedNamespaces": ["ai-clients"], "allowedPodLabels": {"role": "agent"}},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    }))
}

fn all_optional() -> BTreeSet<Kind> {
    Kind::ALL.into_iter().filter(|k| k.optional()).collect()
}

fn render_with(
    server: &McpServer,
    credentials: &BTreeMap<String, String>,
    present: &BTreeSet<Kind>,
) -> Rendered {
    render(&Input {
        server,
        settings: &Settings::default(),
        credentials,
        present,
    })
    .unwrap()
}

/// The rendered objects as one YAML-able list.
fn objects(rendered: &Rendered) -> Vec<Value> {
    rendered
        .children
        .iter()
        .map(|c| sorted(serde_json::to_value(&c.object).unwrap()))
        .collect()
}

fn of_kind(rendered: &Rendered, kinds: &[Kind]) -> Vec<Value> {
    rendered
        .children
        .iter()
        .filter(|c| kinds.contains(&c.kind))
        .map(|c| sorted(serde_json::to_value(&c.object).unwrap()))
        .collect()
}

/// Keys in sorted order, whether or not a dependency turns on serde_json's `preserve_order`,
/// so the snapshots do not depend on which crates are in the build.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn deployment(rendered: &Rendered) -> Deployment {
    let child = rendered
        .children
        .iter()
        .find(|c| c.kind == Kind::Deployment)
        .unwrap();
    serde_json::from_value(serde_json::to_value(&child.object).unwrap()).unwrap()
}

#[test]
fn minimal_server() {
    let rendered = render_with(&minimal(), &BTreeMap::new(), &BTreeSet::new());
    assert!(rendered.missing_apis.is_empty());
    let kinds: Vec<Kind> = rendered.children.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::ServiceAccount,
            Kind::Role,
            Kind::RoleBinding,
            Kind::ConfigMap,
            Kind::Secret,
            Kind::Deployment,
            Kind::Service
        ]
    );
    insta::assert_yaml_snapshot!("minimal", objects(&rendered));
}

#[test]
fn every_option_on() {
    let credentials = BTreeMap::from([("apikey.ci".to_owned(), "k-123".to_owned())]);
    let rendered = render_with(&everything(), &credentials, &all_optional());
    assert!(rendered.missing_apis.is_empty());
    insta::assert_yaml_snapshot!("every_option", objects(&rendered));
}

#[test]
fn kubectl_readonly_in_the_namespace() {
    let mut server = minimal();
    server.spec.kubectl.access = KubectlAccess::Readonly;
    let rendered = render_with(&server, &BTreeMap::new(), &BTreeSet::new());
    insta::assert_yaml_snapshot!(
        "kubectl_readonly",
        of_kind(&rendered, &[Kind::Role, Kind::RoleBinding])
    );
}

#[test]
fn kubectl_read_write_in_the_namespace() {
    let mut server = minimal();
    server.spec.kubectl.access = KubectlAccess::ReadWrite;
    let rendered = render_with(&server, &BTreeMap::new(), &BTreeSet::new());
    insta::assert_yaml_snapshot!(
        "kubectl_read_write",
        of_kind(&rendered, &[Kind::Role, Kind::RoleBinding])
    );
}

fn link(name: &str, spec: Value) -> McpLink {
    McpLink {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: serde_json::from_value(spec).unwrap(),
        status: None,
    }
}

#[test]
fn two_links_with_credentials() {
    let links = [
        link(
            "orders-db",
            json!({
                "serverRef": {"name": "data"},
                "postgres": {"host": "orders.data.svc", "database": "orders"},
                "credentialsSecretRef": {"name": "orders-db", "keys": {"username": "user"}}
            }),
        ),
        link(
            "orders-pg",
            json!({"serverRef": {"name": "data"}, "cnpg": {"cluster": "orders-pg"}}),
        ),
    ];
    let secrets = Secrets::new(
        "team",
        [
            (
                "orders-db".to_owned(),
                Some(BTreeMap::from([
                    ("user".to_owned(), "orders".to_owned()),
                    ("password".to_owned(), "s3cret".to_owned()),
                ])),
            ),
            (
                "orders-pg-app".to_owned(),
                Some(BTreeMap::from([
                    ("username".to_owned(), "app".to_owned()),
                    ("password".to_owned(), "pg-pass".to_owned()),
                    ("host".to_owned(), "orders-pg-rw".to_owned()),
                ])),
            ),
        ],
    );
    let server = minimal();
    let evals = evaluate(&links, &secrets, server.spec.on_duplicate_tools);
    let assembled = assemble(&server, &evals, &[], &[], &secrets);
    assert!(assembled.problems.is_empty());
    let rendered = render_with(&server, &assembled.data, &BTreeSet::new());
    insta::assert_yaml_snapshot!(
        "two_links_credentials_secret",
        of_kind(&rendered, &[Kind::Secret])
    );
}

#[test]
fn missing_optional_apis_are_reported_not_rendered() {
    let rendered = render_with(&everything(), &BTreeMap::new(), &BTreeSet::new());
    assert_eq!(
        rendered.missing_apis,
        [
            Kind::PodDisruptionBudget,
            Kind::HorizontalPodAutoscaler,
            Kind::NetworkPolicy,
            Kind::Ingress,
            Kind::ServiceMonitor,
            Kind::HttpRoute
        ]
    );
    assert!(rendered.children.iter().all(|c| !c.kind.optional()));
}

#[test]
fn the_pods_roll_on_settings_changes_only() {
    let hash = |server: &McpServer, credentials: &BTreeMap<String, String>| {
        let rendered = render_with(server, credentials, &BTreeSet::new());
        deployment(&rendered)
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()[linkmcp_api::names::annotation::CONFIG_HASH]
            .clone()
    };
    let server = minimal();
    let before = hash(&server, &BTreeMap::new());
    let with_link = BTreeMap::from([("link.db.password".to_owned(), "x".to_owned())]);
    assert_eq!(
        hash(&server, &with_link),
        before,
        "links never roll the pods"
    );
    let mut changed = minimal();
    changed.spec.limits.tool_timeout_seconds = 45;
    assert_ne!(hash(&changed, &BTreeMap::new()), before);
}

#[test]
fn the_pod_is_restricted() {
    let rendered = render_with(&everything(), &BTreeMap::new(), &all_optional());
    let pod = deployment(&rendered).spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(true));
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    let probes: Vec<String> = [
        &container.startup_probe,
        &container.readiness_probe,
        &container.liveness_probe,
    ]
    .iter()
    .map(|p| (*p).clone().unwrap().http_get.unwrap().path.unwrap())
    .collect();
    assert_eq!(probes, ["/startupz", "/readyz", "/healthz"]);
    let env: BTreeMap<String, String> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert_eq!(env["LINKMCP_LISTEN"], "0.0.0.0:9000");
    assert_eq!(env["LINKMCP_STATELESS"], "true");
    let hosts: Vec<&str> = env["LINKMCP_ALLOWED_HOSTS"].split(',').collect();
    for host in [
        "data",
        "data.team",
        "data.team.svc",
        "data.team.svc.cluster.local",
        "mcp.example.com",
        "mcp.internal.example.com",
    ] {
        assert!(hosts.contains(&host), "{host} missing from {hosts:?}");
    }
    // With an autoscaler the HPA owns the replica count.
    assert_eq!(deployment(&rendered).spec.unwrap().replicas, None);
}

fn mentions_secrets(rules: &[PolicyRule]) -> bool {
    rules
        .iter()
        .flat_map(|r| r.resources.iter().flatten())
        .any(|r| r == "secrets" || r == "*")
}

#[test]
fn kubectl_access_never_reaches_secrets() {
    for access in [KubectlAccess::Readonly, KubectlAccess::ReadWrite] {
        for cluster in [false, true] {
            let rules = kubectl_rules(access, cluster);
            assert!(!rules.is_empty());
            assert!(!mentions_secrets(&rules), "{access:?} cluster={cluster}");
            assert!(
                rules.iter().all(|r| r.verbs.iter().all(|v| v != "*")),
                "no wildcard verbs"
            );
        }
    }
    assert!(kubectl_rules(KubectlAccess::Disabled, true).is_empty());
    let read = kubectl_rules(KubectlAccess::Readonly, false);
    assert!(read.iter().all(|r| {
        r.verbs
            .iter()
            .all(|v| ["get", "list", "watch"].contains(&v.as_str()))
    }));
}

#[test]
fn the_server_reads_only_its_own_secret() {
    let rules = server_rules("data");
    let secrets: Vec<&PolicyRule> = rules
        .iter()
        .filter(|r| r.resources.iter().flatten().any(|r| r == "secrets"))
        .collect();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0].resource_names.as_deref(),
        Some(&["data-credentials".to_owned()][..])
    );
    assert_eq!(secrets[0].verbs, ["get", "list", "watch"]);
}

#[test]
fn disabled_or_namespaced_kubectl_renders_no_cluster_objects() {
    let rendered = render_with(&minimal(), &BTreeMap::new(), &BTreeSet::new());
    assert!(rendered.children.iter().all(|c| c.kind.namespaced()));
    let all = render_with(&everything(), &BTreeMap::new(), &all_optional());
    let cluster: Vec<String> = all
        .children
        .iter()
        .filter(|c| !c.kind.namespaced())
        .map(|c| c.name())
        .collect();
    assert_eq!(
        cluster,
        ["linkmcp:team:data:kubectl", "linkmcp:team:data:kubectl"]
    );
    for child in all.children.iter().filter(|c| !c.kind.namespaced()) {
        assert!(child.object.metadata.owner_references.is_none());
        assert_eq!(
            child.object.metadata.labels.as_ref().unwrap()[SERVER_NAMESPACE_LABEL],
            "team"
        );
    }
}
