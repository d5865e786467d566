//! The end-to-end suite (issue 6): the controller and the server, as local processes, against
//! the cluster in `KUBECONFIG`. Every test is `#[ignore]`d so `cargo test --workspace` never
//! needs a cluster; `make e2e` runs them (see tests/e2e/README.md).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use linkmcp_api::task::TaskPhase;
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
    linkmcp_e2e::report(&format!(
        "kubectl apply of one McpLink to its tools at /mcp (polled every 250 ms, after its status): {:?}",
        applied.elapsed()
    ));
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

/// From `kubectl apply` of an McpLink (with credentials the controller copies) to its tools
/// listed at the running server's /mcp, over 20 links applied one after the other; p50 and
/// p95 go to the report. The tools are polled every 10 ms, so polling adds at most that.
#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_link_to_tools_latency_over_20_links() {
    let mut h = Harness::start("latency").await.unwrap();
    h.apply(LIVE).unwrap();
    h.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: cache-creds}\nstringData: {password: cache-pass}\n",
    )
    .unwrap();
    h.wait("the credentials Secret of live", MINUTE, || async {
        let secret: Option<Secret> = get(&h, "live-credentials").await;
        Ok(secret.filter(|s| data_keys(s).contains("apikey.e2e")))
    })
    .await
    .unwrap();
    let url = h.start_server("live").await.unwrap();
    h.list_tools(&url, "live-key-1").await.unwrap();

    let (mut total, mut kubectl_alone) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let link = format!(
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: lat-{i}}}\n\
             spec:\n  serverRef: {{name: live}}\n  toolPrefix: lat{i}\n\
               valkey: {{host: lat-{i}.invalid}}\n  credentialsSecretRef: {{name: cache-creds}}\n"
        );
        let tool = format!("lat{i}_get");
        let started = Instant::now();
        h.apply(&link).unwrap();
        kubectl_alone.push(started.elapsed());
        let deadline = started + Duration::from_secs(30);
        loop {
            if h.list_tools(&url, "live-key-1")
                .await
                .unwrap()
                .contains(&tool)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{tool} not listed 30 s after kubectl apply; logs in {}",
                h.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        total.push(started.elapsed());
    }
    h.check_processes().unwrap();
    let q = linkmcp_e2e::quantile;
    linkmcp_e2e::report(&format!(
        "kubectl apply of an McpLink to its tools at /mcp over 20 links: p50 {:?}, p95 {:?} \
         (kubectl itself: p50 {:?}, p95 {:?}; goal p95 < 300 ms)",
        q(&total, 0.5),
        q(&total, 0.95),
        q(&kubectl_alone, 0.5),
        q(&kubectl_alone, 0.95),
    ));
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
    linkmcp_e2e::report(&format!(
        "100 links converged in {:?} with {writes} API writes and {reconciles} reconciles",
        started.elapsed()
    ));
    tokio::time::sleep(MINUTE).await;
    let writes_after = h
        .metric("linkmcp_controller_api_writes_total")
        .await
        .unwrap();
    let reconciles_after = h
        .metric("linkmcp_controller_reconciles_total")
        .await
        .unwrap();
    linkmcp_e2e::report(&format!(
        "a steady minute of 100 links: {} API writes, {} reconciles",
        writes_after - writes,
        reconciles_after - reconciles
    ));
    assert_eq!(writes_after, writes, "a steady cluster costs no API write");
}

/// The controller objects `config/default` promises (see config/rbac and config/manager).
const CONTROLLER: &str = "linkmcp-controller";

/// The linkmcp CRDs, as the harness installs them.
const CRDS: [&str; 4] = [
    "mcpservers.linkmcp.io",
    "mcplinks.linkmcp.io",
    "agents.linkmcp.io",
    "aitasks.linkmcp.io",
];

/// Deletes, on drop, the non-CRD objects `e2e_kustomize_install` applied, waiting until they
/// are gone (the namespace last, so no pod of the Deployment outlives the test).
///
/// The CRDs are not deleted: like the harness, the suite leaves them installed; deleting them
/// would delete every linkmcp object in the cluster and race the next test's CRD install.
struct Uninstall(String);

impl Drop for Uninstall {
    fn drop(&mut self) {
        match kubectl(
            &[
                "delete",
                "--ignore-not-found",
                "--wait=true",
                "--timeout=180s",
                "-f",
                "-",
            ],
            Some(&self.0),
        ) {
            Ok((true, _, _)) => {}
            Ok((false, _, err)) => eprintln!("e2e: uninstalling config/default failed: {err}"),
            Err(err) => eprintln!("e2e: uninstalling config/default failed: {err:#}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs a cluster: make e2e"]
async fn e2e_kustomize_install() {
    let client = linkmcp_e2e::connect().await.unwrap();
    let dir = linkmcp_e2e::workspace_dir().join("config/default");
    let kustomization: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())
            .unwrap();
    let ns = kustomization["namespace"]
        .as_str()
        .expect("config/default names its namespace")
        .to_owned();
    let dir = dir.to_str().unwrap();
    let (ok, rendered, err) = kubectl(&["kustomize", dir], None).unwrap();
    assert!(ok, "kubectl kustomize {dir} failed: {err}");

    let documents: Vec<Value> = serde_yaml::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| !d.is_null())
        .collect();
    let kind_name = |d: &Value| {
        (
            d["kind"].as_str().unwrap_or_default().to_owned(),
            d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let rendered_crds: BTreeSet<String> = documents
        .iter()
        .map(kind_name)
        .filter(|(kind, _)| kind == "CustomResourceDefinition")
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        rendered_crds,
        CRDS.iter()
            .map(|c| (*c).to_owned())
            .collect::<BTreeSet<_>>()
    );
    for (kind, name, namespaced) in [
        ("Namespace", ns.as_str(), false),
        ("ServiceAccount", CONTROLLER, true),
        ("ClusterRole", CONTROLLER, false),
        ("ClusterRoleBinding", CONTROLLER, false),
        ("Deployment", CONTROLLER, true),
        ("Service", "linkmcp-controller-metrics", true),
    ] {
        let document = documents
            .iter()
            .find(|d| kind_name(d) == (kind.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("config/default renders no {kind} {name}"));
        if namespaced {
            assert_eq!(
                document["metadata"]["namespace"],
                ns.as_str(),
                "{kind} {name}"
            );
        }
    }
    let installed: Vec<Value> = documents
        .iter()
        .filter(|d| d["kind"] != "CustomResourceDefinition")
        .cloned()
        .collect();
    let uninstall = Uninstall(linkmcp_e2e::yaml_stream(&installed).unwrap());

    let (ok, _, err) = kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&rendered),
    )
    .unwrap();
    assert!(ok, "kubectl apply of config/default failed: {err}");
    let mut wait = vec!["wait", "--for", "condition=established", "--timeout=60s"];
    let crd_names: Vec<String> = CRDS.iter().map(|c| format!("crd/{c}")).collect();
    wait.extend(crd_names.iter().map(String::as_str));
    let (ok, _, err) = kubectl(&wait, None).unwrap();
    assert!(ok, "the CRDs of config/default are not Established: {err}");

    let namespace = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .get(&ns)
        .await
        .unwrap();
    assert_eq!(
        namespace.labels().get("pod-security.kubernetes.io/enforce"),
        Some(&"restricted".to_owned())
    );

    let account = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get(CONTROLLER)
        .await
        .unwrap();
    assert_eq!(account.name_any(), CONTROLLER);

    let role = Api::<ClusterRole>::all(client.clone())
        .get(CONTROLLER)
        .await
        .unwrap();
    let rules = role.rules.unwrap_or_default();
    let grants = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == group)
                && r.resources.iter().flatten().any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (group, resource, verb) in [
        ("linkmcp.io", "mcpservers", "watch"),
        ("linkmcp.io", "aitasks/status", "patch"),
        ("linkmcp.io", "mcpservers/finalizers", "update"),
        ("", "secrets", "create"),
        ("apps", "deployments", "patch"),
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
        ("coordination.k8s.io", "leases", "update"),
    ] {
        assert!(
            grants(group, resource, verb),
            "the ClusterRole does not grant {verb} {group}/{resource}"
        );
    }

    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(CONTROLLER)
        .await
        .unwrap();
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("ClusterRole", CONTROLLER)
    );
    let subjects = binding.subjects.unwrap_or_default();
    assert!(
        subjects.iter().any(|s| s.kind == "ServiceAccount"
            && s.name == CONTROLLER
            && s.namespace.as_deref() == Some(ns.as_str())),
        "{subjects:?}"
    );

    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(CONTROLLER)
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(CONTROLLER));
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "controller")
        .expect("a container named controller");
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    let args = container.args.clone().unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("run"), "{args:?}");
    for arg in [
        "--leader-election=true",
        "--leader-election-lease=linkmcp-controller",
    ] {
        assert!(args.iter().any(|a| a == arg), "{arg} missing from {args:?}");
    }
    let env = container.env.clone().unwrap_or_default();
    let pod_namespace = env.iter().find(|e| e.name == "POD_NAMESPACE");
    assert_eq!(
        pod_namespace
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("metadata.namespace"),
        "the Lease lives in the pod's namespace"
    );
    let probe = container.liveness_probe.clone().unwrap();
    assert_eq!(probe.http_get.unwrap().path.as_deref(), Some("/healthz"));
    drop(uninstall);
}

/// The PostgreSQL the AiTask test links to: `LINKMCP_E2E_PG_HOST` (default 127.0.0.1),
/// `LINKMCP_E2E_PG_PORT` (5432), `LINKMCP_E2E_PG_USER` (postgres), `LINKMCP_E2E_PG_PASSWORD`
/// (empty: trust authentication); database `test`.
struct Postgres {
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl Postgres {
    fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        let port = var("LINKMCP_E2E_PG_PORT", "5432");
        Self {
            host: var("LINKMCP_E2E_PG_HOST", "127.0.0.1"),
            port: port
                .parse()
                .unwrap_or_else(|_| panic!("LINKMCP_E2E_PG_PORT={port} is not a port")),
            user: var("LINKMCP_E2E_PG_USER", "postgres"),
            password: var("LINKMCP_E2E_PG_PASSWORD", ""),
        }
    }

    /// Fails the test, saying what it needs, unless the server accepts TCP connections.
    fn require_reachable(&self) {
        use std::net::{TcpStream, ToSocketAddrs as _};
        let need = "e2e_aitask_runs_on_schedule needs a PostgreSQL with a database `test` \
                    reachable from this machine: set LINKMCP_E2E_PG_HOST (and _PORT, _USER, \
                    _PASSWORD) to one";
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .unwrap_or_else(|e| panic!("{need}; {}:{} does not resolve: {e}", self.host, self.port))
            .collect();
        let reached = addrs
            .iter()
            .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).is_ok());
        assert!(
            reached,
            "{need}; nothing answers at {}:{} ({addrs:?})",
            self.host, self.port
        );
    }
}

/// The objects of the AiTask test: an McpServer without auth, an McpLink to `pg`, an Agent
/// calling the model at `base_url`, and a task every minute.
fn factory_objects(pg: &Postgres, base_url: &str) -> String {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-creds"},
               "stringData": {"username": pg.user, "password": pg.password}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "model-key"},
               "stringData": {"api-key": MODEL_KEY}}),
        json!({"apiVersion": "linkmcp.io/v1alpha1", "kind": "McpServer",
               "metadata": {"name": "factory"},
               "spec": {"stateless": true, "auth": {"allowUnauthenticated": true}}}),
        json!({"apiVersion": "linkmcp.io/v1alpha1", "kind": "McpLink", "metadata": {"name": "pg"},
               "spec": {"serverRef": {"name": "factory"},
                        "postgres": {"host": pg.host, "port": pg.port, "database": "test",
                                     "sslMode": "disable"},
                        "credentialsSecretRef": {"name": "pg-creds"},
                        "writeAccess": false}}),
        json!({"apiVersion": "linkmcp.io/v1alpha1", "kind": "Agent", "metadata": {"name": "scripted"},
               "spec": {"serverRef": {"name": "factory"}, "provider": "anthropic",
                        "baseUrl": base_url,
                        "apiKeySecretRef": {"name": "model-key", "key": "api-key"}}}),
        json!({"apiVersion": "linkmcp.io/v1alpha1", "kind": "AiTask", "metadata": {"name": "select-one"},
               "spec": {"serverRef": {"name": "factory"}, "agentRef": {"name": "scripted"},
                        "description": "Run the SQL query `select 1 as one` on the PostgreSQL \
                                        database with pg_query and report its result.",
                        "schedule": "* * * * *", "mode": "monitor"}}),
    ];
    linkmcp_e2e::yaml_stream(&objects).unwrap()
}

/// The provider API key of the AiTask test's Agent.
const MODEL_KEY: &str = "sk-e2e-scripted";

/// The scripted model's final answer.
const MODEL_ANSWER: &str = "The database answered: one = 1. All good.";

#[tokio::test]
#[ignore = "needs a cluster and a PostgreSQL: make e2e"]
async fn e2e_aitask_runs_on_schedule() {
    let pg = Postgres::from_env();
    pg.require_reachable();
    let mut h = Harness::start("aitask").await.unwrap();
    let model = linkmcp_e2e::model::ScriptedModel::start(
        "pg_query",
        json!({"sql": "select 1 as one"}),
        MODEL_ANSWER,
    )
    .await
    .unwrap();
    h.apply(&factory_objects(&pg, &model.base_url())).unwrap();
    h.wait("the credentials Secret of factory", MINUTE, || async {
        let secret: Option<Secret> = get(&h, "factory-credentials").await;
        Ok(secret.filter(|s| {
            let keys = data_keys(s);
            keys.contains("agent.scripted.apiKey") && keys.contains("link.pg.username")
        }))
    })
    .await
    .unwrap();
    h.start_server("factory").await.unwrap();

    // `* * * * *` runs at the next minute boundary after the task appeared: within 60 s, plus
    // the run itself.
    let status = h
        .wait(
            "AiTask select-one to succeed",
            Duration::from_secs(150),
            || async {
                let Some(status) = get::<AiTask>(&h, "select-one").await.and_then(|t| t.status)
                else {
                    return Ok(None);
                };
                if status.phase == Some(TaskPhase::Failed) {
                    anyhow::bail!(
                        "the run failed: {}",
                        status.last_result.as_deref().unwrap_or("(no result)")
                    );
                }
                let done = status.phase == Some(TaskPhase::Succeeded)
                    && status.last_run_time.is_some()
                    && status.next_run_time.is_some()
                    && status.cost.is_some();
                Ok(done.then_some(status))
            },
        )
        .await
        .unwrap();
    h.check_processes().unwrap();
    let last = status.last_run_time.clone().unwrap().0;
    let next = status.next_run_time.clone().unwrap().0;
    assert!(next > last, "next run {next} after last run {last}");
    let cost = status.cost.clone().unwrap();
    assert!(cost.starts_with('$'), "cost {cost}");
    assert!(status.runs.unwrap_or_default() >= 1, "{status:?}");

    let requests = model.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.api_key.as_deref() == Some(MODEL_KEY)),
        "the Agent's apiKeySecretRef reaches the model as x-api-key"
    );
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(offered.contains(&"pg_query"), "offered tools: {offered:?}");
    let results = model.tool_results();
    let result = results
        .iter()
        .find(|r| r.tool_use_id == "toolu_scripted_1")
        .unwrap_or_else(|| panic!("no result of the scripted pg_query call: {results:?}"));
    assert!(!result.is_error, "pg_query failed: {}", result.content);
    let lines: Vec<&str> = result.content.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"one") && lines.contains(&"1"),
        "the real database's row (column one, value 1) in the tool result: {}",
        result.content
    );

    // A later run can be in progress (every minute), so the row is read until it shows the
    // succeeded phase.
    let header = "NAME AGENT MODE SCHEDULE PHASE LAST RUN NEXT RUN COST AGE";
    let row = h
        .wait(
            "kubectl get aitasks to show select-one Succeeded",
            MINUTE,
            || async {
                let (ok, out, err) = kubectl(&["get", "aitasks", "-n", &h.namespace], None)?;
                anyhow::ensure!(ok, "kubectl get aitasks failed: {err}");
                let mut lines = out.lines();
                let printed = lines
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                anyhow::ensure!(printed == header, "kubectl get aitasks printed:\n{out}");
                Ok(lines
                    .find(|l| l.split_whitespace().next() == Some("select-one"))
                    .filter(|l| l.split_whitespace().any(|w| w == "Succeeded"))
                    .map(str::to_owned))
            },
        )
        .await
        .unwrap();
    for column in ["scripted", "monitor", "* * * * *", "$"] {
        assert!(row.contains(column), "{column} missing from the row: {row}");
    }
}
