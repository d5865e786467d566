//! The end-to-end suite (issue 6): the controller and the server, as local processes, against
//! the cluster in `KUBECONFIG`. Every test is `#[ignore]`d so `cargo test --workspace` never
//! needs a cluster; `make e2e` runs them (see tests/e2e/README.md).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use linkmcp_e2e::{Harness, kubectl};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

/// A sample of config/samples, without its namespace (the test's is used).
fn sample(path: &str) -> String {
    let file = format!("{}/../../config/samples/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("namespace: platform"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Secrets the samples reference.
const SAMPLE_SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: data-mcp-api-keys}
stringData: {ci: "e2e-key-ci"}
---
apiVersion: v1
kind: Secret
metadata: {name: orders-db}
stringData: {user: orders, password: "orders-pass"}
---
apiVersion: v1
kind: Secret
metadata: {name: valkey}
stringData: {password: "valkey-pass"}
---
apiVersion: v1
kind: Secret
metadata: {name: anthropic}
stringData: {api-key: "sk-e2e"}
"#;

/// Applies the samples (server, agent, tasks, the postgres, cnpg and valkey links) and the
/// Secrets they name.
fn apply_samples(h: &Harness) {
    h.apply(SAMPLE_SECRETS).unwrap();
    for path in [
        "mcpserver.yaml",
        "agent.yaml",
        "aitask.yaml",
        "links/postgres.yaml",
        "links/cnpg.yaml",
        "links/valkey.yaml",
    ] {
        h.apply(&sample(path)).unwrap();
    }
}

async fn get<K>(h: &Harness, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(h.client.clone(), &h.namespace)
        .get_opt(name)
        .await
        .unwrap()
}

async fn wait_for<K>(h: &Harness, name: &str) -> K
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    h.wait(&format!("{} {name}", K::kind(&())), MINUTE, || async {
        Ok(get::<K>(h, name).await)
    })
    .await
    .unwrap()
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Waits until a link's status has Ready, and returns the status.
async fn link_status(h: &Harness, name: &str) -> Value {
    h.wait(&format!("the status of McpLink {name}"), MINUTE, || async {
        let link = get::<McpLink>(h, name).await;
        let status = link
            .and_then(|l| l.status)
            .map(|s| serde_json::to_value(s).unwrap());
        Ok(status.filter(|s| condition(s, "Ready").is_some()))
    })
    .await
    .unwrap()
}

fn data_keys(secret: &Secret) -> BTreeSet<String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_samples_become_the_promised_objects() {
    let h = Harness::start("objects").await.unwrap();
    apply_samples(&h);
    let ns = h.namespace.clone();

    let deployment: Deployment = wait_for(&h, "data").await;
    let owner = &deployment.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("McpServer", "data")
    );
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let template = spec.template;
    assert!(
        template
            .metadata
            .unwrap()
            .annotations
            .unwrap()
            .contains_key("linkmcp.io/config-hash")
    );
    let pod = template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("data"));
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    assert_eq!(
        pod.security_context.unwrap().seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    for (probe, path) in [
        (&container.startup_probe, "/startupz"),
        (&container.readiness_probe, "/readyz"),
        (&container.liveness_probe, "/healthz"),
    ] {
        assert_eq!(
            probe.clone().unwrap().http_get.unwrap().path.as_deref(),
            Some(path)
        );
    }
    let env: Vec<(String, String)> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env.contains(&("LINKMCP_SERVER".into(), "data".into())));
    assert!(env.contains(&("LINKMCP_NAMESPACE".into(), ns.clone())));
    assert!(env.contains(&("LINKMCP_LISTEN".into(), "0.0.0.0:8080".into())));
    let hosts = &env
        .iter()
        .find(|(n, _)| n == "LINKMCP_ALLOWED_HOSTS")
        .unwrap()
        .1;
    assert!(hosts.contains(&format!("data.{ns}.svc")) && hosts.contains("mcp.example.com"));

    let service: Service = wait_for(&h, "data").await;
    assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 8080);
    let account: ServiceAccount = wait_for(&h, "data").await;
    assert_eq!(account.automount_service_account_token, Some(false));
    let role: Role = wait_for(&h, "data").await;
    let secret_rules: Vec<_> = role
        .rules
        .unwrap()
        .into_iter()
        .filter(|r| r.resources.iter().flatten().any(|r| r == "secrets"))
        .collect();
    assert_eq!(secret_rules.len(), 1);
    assert_eq!(
        secret_rules[0].resource_names.as_deref(),
        Some(&["data-credentials".to_owned()][..])
    );
    let _: RoleBinding = wait_for(&h, "data").await;
    let kubectl_role: Role = wait_for(&h, "data-kubectl").await;
    assert!(
        kubectl_role.rules.unwrap().iter().all(|r| r
            .resources
            .iter()
            .flatten()
            .all(|r| r != "secrets"))
    );
    let settings: ConfigMap = wait_for(&h, "data-settings").await;
    let settings = settings.data.unwrap();
    assert_eq!(settings["LINKMCP_CALLS_PER_MINUTE_PER_TOOL"], "600");
    assert_eq!(settings["LINKMCP_MASK_ERROR_DETAILS"], "true");

    let credentials = h
        .wait("the credentials Secret to be filled", MINUTE, || async {
            let secret: Option<Secret> = get(&h, "data-credentials").await;
            Ok(secret.filter(|s| data_keys(s).contains("link.orders-db.password")))
        })
        .await
        .unwrap();
    let keys = data_keys(&credentials);
    for key in [
        "apikey.ci",
        "agent.sre.apiKey",
        "link.orders-db.username",
        "link.orders-db.password",
        "link.sessions-cache.password",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    assert!(
        keys.iter().all(|k| !k.starts_with("link.orders-pg.")),
        "the cnpg link's Secret does not exist: nothing is copied"
    );

    let orders = link_status(&h, "orders-db").await;
    assert_eq!(orders["type"], "postgres");
    assert_eq!(
        condition(&orders, "CredentialsResolved").unwrap()["status"],
        "True"
    );
    let cnpg = link_status(&h, "orders-pg").await;
    let resolved = condition(&cnpg, "CredentialsResolved").unwrap();
    assert_eq!(resolved["reason"], "SecretNotFound");
    assert_eq!(
        resolved["message"],
        format!("Secret orders-pg-app not found in namespace {ns}")
    );

    let server = h
        .wait("the McpServer status", MINUTE, || async {
            let server: Option<McpServer> = get(&h, "data").await;
            Ok(server.and_then(|s| s.status).filter(|s| s.links == 3))
        })
        .await
        .unwrap();
    assert_eq!(
        server.endpoint.as_deref(),
        Some(format!("http://data.{ns}.svc:8080/mcp").as_str())
    );
    let (_, resources, _) = kubectl(&["api-resources", "-o", "name"], None).unwrap();
    let missing = server
        .conditions
        .iter()
        .find(|c| c.type_ == "OptionalApiMissing")
        .unwrap();
    let has_monitors = resources
        .lines()
        .any(|l| l == "servicemonitors.monitoring.coreos.com");
    let has_routes = resources
        .lines()
        .any(|l| l == "httproutes.gateway.networking.k8s.io");
    assert_eq!(
        missing.status == "True",
        !(has_monitors && has_routes),
        "{missing:?}"
    );

    for (kind, name) in [
        ("agents", "sre"),
        ("aitasks", "db-health"),
        ("aitasks", "db-report"),
    ] {
        let status = h
            .wait(
                &format!("{kind}/{name} to be validated"),
                MINUTE,
                || async {
                    let value = match kind {
                        "agents" => get::<Agent>(&h, name)
                            .await
                            .and_then(|a| a.status)
                            .map(|s| serde_json::to_value(s).unwrap()),
                        _ => get::<AiTask>(&h, name)
                            .await
                            .and_then(|t| t.status)
                            .map(|s| serde_json::to_value(s).unwrap()),
                    };
                    Ok(value.filter(|s| condition(s, "ReferencesResolved").is_some()))
                },
            )
            .await
            .unwrap();
        assert_eq!(
            condition(&status, "ReferencesResolved").unwrap()["status"],
            "True",
            "{kind}/{name}: {status}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_kubectl_get_shows_the_promised_columns() {
    let h = Harness::start("columns").await.unwrap();
    apply_samples(&h);
    link_status(&h, "orders-db").await;
    let header = |kind: &str| {
        let (ok, out, err) = kubectl(&["get", kind, "-n", &h.namespace], None).unwrap();
        assert!(ok, "{err}");
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(header("mcpservers"), "NAME READY LINKS TOOLS ENDPOINT AGE");
    assert_eq!(header("mcplinks"), "NAME SERVER TYPE WRITE TOOLS READY AGE");
    assert_eq!(
        header("agents"),
        "NAME PROVIDER MODEL ENABLED TASKS COST AGE"
    );
    assert_eq!(
        header("aitasks"),
        "NAME AGENT MODE SCHEDULE PHASE LAST RUN NEXT RUN COST AGE"
    );
    let (ok, all, err) = kubectl(
        &[
            "get",
            "mcpservers,mcplinks,agents,aitasks",
            "-n",
            &h.namespace,
        ],
        None,
    )
    .unwrap();
    assert!(ok, "{err}");
    assert!(
        all.contains(&format!("http://data.{}.svc:8080/mcp", h.namespace)),
        "{all}"
    );
    assert!(
        all.contains("orders-db") && all.contains("postgres"),
        "{all}"
    );
}

async fn allowed(h: &Harness, attributes: Value) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("system:serviceaccount:{}:data", h.namespace),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", h.namespace)],
            "resourceAttributes": attributes,
        }
    }))
    .unwrap();
    let answer = Api::<SubjectAccessReview>::all(h.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.unwrap().allowed
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_the_server_account_reads_its_own_secret_and_no_other() {
    let h = Harness::start("rbac").await.unwrap();
    apply_samples(&h);
    let _: RoleBinding = wait_for(&h, "data").await;
    let ns = h.namespace.clone();
    let secret = |verb: &str, name: Option<&str>| {
        let mut attributes = json!({"namespace": ns, "verb": verb, "resource": "secrets"});
        if let Some(name) = name {
            attributes["name"] = json!(name);
        }
        attributes
    };
    assert!(allowed(&h, secret("get", Some("data-credentials"))).await);
    assert!(allowed(&h, secret("watch", Some("data-credentials"))).await);
    assert!(!allowed(&h, secret("get", Some("orders-db"))).await);
    assert!(
        !allowed(&h, secret("list", None)).await,
        "no plain list of Secrets"
    );
    assert!(!allowed(&h, secret("create", None)).await);
    let linkmcp = |verb: &str, resource: &str, sub: Option<&str>| {
        let mut attributes =
            json!({"namespace": ns, "verb": verb, "group": "linkmcp.io", "resource": resource});
        if let Some(sub) = sub {
            attributes["subresource"] = json!(sub);
        }
        attributes
    };
    assert!(allowed(&h, linkmcp("list", "mcplinks", None)).await);
    assert!(allowed(&h, linkmcp("patch", "aitasks", Some("status"))).await);
    assert!(!allowed(&h, linkmcp("patch", "mcplinks", None)).await);
    assert!(!allowed(&h, linkmcp("delete", "mcpservers", None)).await);
    // kubectl access is Readonly in the sample: pods yes, deleting them no.
    let pods = |verb: &str| json!({"namespace": ns, "verb": verb, "resource": "pods"});
    assert!(allowed(&h, pods("list")).await);
    assert!(!allowed(&h, pods("delete")).await);
}

const LIVE: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: live-keys}
stringData: {e2e: "live-key-1"}
---
apiVersion: linkmcp.io/v1alpha1
kind: McpServer
metadata: {name: live}
spec:
  stateless: true
  auth:
    apiKeys: {secretName: live-keys}
"#;

const CACHE_LINK: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: cache-creds}
stringData: {password: "cache-pass"}
---
apiVersion: linkmcp.io/v1alpha1
kind: McpLink
metadata: {name: cache}
spec:
  serverRef: {name: live}
  valkey: {host: valkey.invalid, port: 6379}
  credentialsSecretRef: {name: cache-creds}
"#;

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_a_link_shows_its_tools_at_the_running_server_and_they_vanish_on_delete() {
    let mut h = Harness::start("live").await.unwrap();
    h.apply(LIVE).unwrap();
    h.wait("the credentials Secret of live", MINUTE, || async {
        let secret: Option<Secret> = get(&h, "live-credentials").await;
        Ok(secret.filter(|s| data_keys(s).contains("apikey.e2e")))
    })
    .await
    .unwrap();
    let url = h.start_server("live").await.unwrap();
    let before = h.list_tools(&url, "live-key-1").await.unwrap();

    let applied = Instant::now();
    h.apply(CACHE_LINK).unwrap();
    let status = link_status(&h, "cache").await;
    let tools: Vec<String> = serde_json::from_value(status["tools"].clone()).unwrap();
    assert!(
        !tools.is_empty(),
        "the controller lists the link's tools: {status}"
    );
    h.wait(
        "the link's tools at /mcp",
        Duration::from_secs(30),
        || async {
            let listed = h.list_tools(&url, "live-key-1").await?;
            Ok(tools.iter().all(|t| listed.contains(t)).then_some(()))
        },
    )
    .await
    .unwrap();
    eprintln!(
        "e2e: kubectl apply of an McpLink to its tools at /mcp: {:?}",
        applied.elapsed()
    );
    h.controller.check_running().unwrap();

    let (ok, _, err) = kubectl(&["delete", "mcplink", "cache", "-n", &h.namespace], None).unwrap();
    assert!(ok, "{err}");
    h.wait(
        "the link's tools to vanish",
        Duration::from_secs(30),
        || async {
            let listed = h.list_tools(&url, "live-key-1").await?;
            Ok(tools.iter().all(|t| !listed.contains(t)).then_some(listed))
        },
    )
    .await
    .unwrap();
    let after = h.list_tools(&url, "live-key-1").await.unwrap();
    assert_eq!(after, before, "only the link's tools came and went");
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_an_invalid_link_is_refused_with_a_readable_message() {
    let h = Harness::start("invalid").await.unwrap();
    let (ok, _, err) = kubectl(
        &["apply", "-n", &h.namespace, "-f", "-"],
        Some(
            r#"
apiVersion: linkmcp.io/v1alpha1
kind: McpLink
metadata: {name: two-backends}
spec:
  serverRef: {name: data}
  postgres: {host: db, database: app}
  valkey: {host: cache}
"#,
        ),
    )
    .unwrap();
    assert!(!ok, "the API server must refuse two backend blocks");
    assert!(
        err.contains("exactly one backend block must be set"),
        "unreadable refusal: {err}"
    );
    assert!(get::<McpLink>(&h, "two-backends").await.is_none());
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_what_the_user_applied_is_not_mutated() {
    let h = Harness::start("nodrift").await.unwrap();
    h.apply(SAMPLE_SECRETS).unwrap();
    let server: Value = serde_yaml::from_str(&sample("mcpserver.yaml")).unwrap();
    let link: Value = serde_yaml::from_str(&sample("links/postgres.yaml")).unwrap();
    let applied_server: McpServer = h.apply_json(server).await.unwrap();
    let applied_link: McpLink = h.apply_json(link).await.unwrap();
    link_status(&h, "orders-db").await;
    h.wait("the McpServer status", MINUTE, || async {
        let s: Option<McpServer> = get(&h, "data").await;
        Ok(s.and_then(|s| s.status)
            .filter(|s| s.observed_generation.is_some()))
    })
    .await
    .unwrap();

    let server: McpServer = get(&h, "data").await.unwrap();
    let link: McpLink = get(&h, "orders-db").await.unwrap();
    assert_eq!(
        serde_json::to_string(&server.spec).unwrap(),
        serde_json::to_string(&applied_server.spec).unwrap()
    );
    assert_eq!(
        server.metadata.generation,
        applied_server.metadata.generation
    );
    assert_eq!(server.metadata.labels, applied_server.metadata.labels);
    assert_eq!(
        server.metadata.annotations,
        applied_server.metadata.annotations
    );
    assert_eq!(
        serde_json::to_string(&link.spec).unwrap(),
        serde_json::to_string(&applied_link.spec).unwrap()
    );
    assert_eq!(link.metadata.generation, applied_link.metadata.generation);
    assert_eq!(link.metadata.labels, applied_link.metadata.labels);
    assert_eq!(link.metadata.annotations, applied_link.metadata.annotations);
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_deleting_the_server_collects_its_children() {
    let h = Harness::start("gc").await.unwrap();
    h.apply(
        r#"
apiVersion: linkmcp.io/v1alpha1
kind: McpServer
metadata: {name: doomed}
spec:
  auth: {allowUnauthenticated: true}
  kubectl: {access: Readonly, allNamespaces: true}
"#,
    )
    .unwrap();
    let _: Deployment = wait_for(&h, "doomed").await;
    let cluster_name = format!("linkmcp:{}:doomed:kubectl", h.namespace);
    let cluster_roles: Api<ClusterRole> = Api::all(h.client.clone());
    h.wait("the cluster-wide kubectl ClusterRole", MINUTE, || async {
        Ok(cluster_roles.get_opt(&cluster_name).await?)
    })
    .await
    .unwrap();

    Api::<McpServer>::namespaced(h.client.clone(), &h.namespace)
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    h.wait(
        "the children to be garbage-collected",
        Duration::from_secs(120),
        || async {
            let remaining = [
                get::<Deployment>(&h, "doomed").await.is_some(),
                get::<Service>(&h, "doomed").await.is_some(),
                get::<ServiceAccount>(&h, "doomed").await.is_some(),
                get::<Role>(&h, "doomed").await.is_some(),
                get::<RoleBinding>(&h, "doomed").await.is_some(),
                get::<ConfigMap>(&h, "doomed-settings").await.is_some(),
                get::<Secret>(&h, "doomed-credentials").await.is_some(),
                cluster_roles.get_opt(&cluster_name).await?.is_some(),
                get::<McpServer>(&h, "doomed").await.is_some(),
            ];
            Ok(remaining.iter().all(|r| !r).then_some(()))
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_a_steady_state_of_100_links_makes_no_writes() {
    let h = Harness::start("steady").await.unwrap();
    h.apply(LIVE).unwrap();
    let mut links = String::new();
    for i in 0..100 {
        links.push_str(&format!(
            "---\napiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: cache-{i}}}\n\
             spec:\n  serverRef: {{name: live}}\n  valkey: {{host: cache-{i}.invalid}}\n"
        ));
    }
    let started = Instant::now();
    h.apply(&links).unwrap();
    h.wait("100 links reconciled", Duration::from_secs(300), || async {
        let server: Option<McpServer> = get(&h, "live").await;
        let counted = server
            .and_then(|s| s.status)
            .is_some_and(|s| s.links == 100);
        let all = Api::<McpLink>::namespaced(h.client.clone(), &h.namespace)
            .list(&Default::default())
            .await?;
        let done = all
            .items
            .iter()
            .filter(|l| {
                l.status
                    .as_ref()
                    .is_some_and(|s| s.observed_generation.is_some())
            })
            .count();
        Ok((counted && done == 100).then_some(()))
    })
    .await
    .unwrap();
    // Let in-flight reconciles and requeues settle, then measure a quiet minute.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let writes = h
        .metric("linkmcp_controller_api_writes_total")
        .await
        .unwrap();
    let reconciles = h
        .metric("linkmcp_controller_reconciles_total")
        .await
        .unwrap();
    eprintln!(
        "e2e: 100 links converged in {:?} with {writes} API writes and {reconciles} reconciles",
        started.elapsed()
    );
    tokio::time::sleep(MINUTE).await;
    let writes_after = h
        .metric("linkmcp_controller_api_writes_total")
        .await
        .unwrap();
    let reconciles_after = h
        .metric("linkmcp_controller_reconciles_total")
        .await
        .unwrap();
    eprintln!(
        "e2e: a steady minute: {} API writes, {} reconciles",
        writes_after - writes,
        reconciles_after - reconciles
    );
    assert_eq!(writes_after, writes, "a steady cluster costs no API write");
}
