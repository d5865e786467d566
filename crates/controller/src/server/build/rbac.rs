//! The server's RBAC: exactly what it needs to follow its own objects, and kubectl access only
//! when the spec asks for it.
//!
//! The server's Role (namespaced, one per McpServer):
//!
//! | apiGroups                    | resources                        | verbs                  | resourceNames          |
//! |------------------------------|----------------------------------|------------------------|------------------------|
//! | `linkmcp.io`                 | `mcpservers`                     | get, list, watch       | `<server>`             |
//! | `linkmcp.io`                 | `mcplinks`, `agents`, `aitasks`  | get, list, watch       |                        |
//! | `linkmcp.io`                 | `agents/status`, `aitasks/status`| get, patch, update     |                        |
//! | `""`                         | `secrets`                        | get, list, watch       | `<server>-credentials` |
//! | `""`, `events.k8s.io`        | `events`                         | create, patch          |                        |
//! | `coordination.k8s.io`        | `leases`                         | create                 |                        |
//! | `coordination.k8s.io`        | `leases`                         | get, update, patch     | `<server>-scheduler`   |
//!
//! `list` and `watch` restricted by `resourceNames` are authorized only for requests that name
//! the object with a `metadata.name=<name>` field selector, which is how the server watches its
//! McpServer and its Secret; a plain list of Secrets is refused. `create` cannot be restricted
//! by name in RBAC (the name is not known when it is authorized), so the Lease rule is split.
//!
//! kubectl access: `Readonly` reads workloads, pods and their logs, events, services,
//! configmaps and the like — never Secrets; `ReadWrite` adds create/update/patch/delete on
//! workloads and ConfigMaps (still never Secrets). In the namespace with a Role, or everywhere
//! with a ClusterRole when `allNamespaces` is set. `Disabled` renders nothing, so switching
//! down deletes the bindings.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use linkmcp_api::GROUP;
use linkmcp_api::names::{credentials_secret_name, scheduler_lease_name};
use linkmcp_api::server::KubectlAccess;

use super::Ctx;

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: None,
        non_resource_urls: None,
    }
}

fn named(mut rule: PolicyRule, name: String) -> PolicyRule {
    rule.resource_names = Some(vec![name]);
    rule
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete"];

/// The rules of the server's own Role.
pub fn server_rules(server: &str) -> Vec<PolicyRule> {
    vec![
        named(rule(&[GROUP], &["mcpservers"], READ), server.to_owned()),
        rule(&[GROUP], &["mcplinks", "agents", "aitasks"], READ),
        rule(
            &[GROUP],
            &["agents/status", "aitasks/status"],
            &["get", "patch", "update"],
        ),
        named(
            rule(&[""], &["secrets"], READ),
            credentials_secret_name(server),
        ),
        rule(&["", "events.k8s.io"], &["events"], &["create", "patch"]),
        rule(&["coordination.k8s.io"], &["leases"], &["create"]),
        named(
            rule(
                &["coordination.k8s.io"],
                &["leases"],
                &["get", "update", "patch"],
            ),
            scheduler_lease_name(server),
        ),
    ]
}

/// The rules of kubectl access at `access`, for one namespace or (`cluster`) all of them.
pub fn kubectl_rules(access: KubectlAccess, cluster: bool) -> Vec<PolicyRule> {
    if access == KubectlAccess::Disabled {
        return Vec::new();
    }
    let mut core_read = vec![
        "pods",
        "pods/log",
        "services",
        "endpoints",
        "configmaps",
        "events",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "serviceaccounts",
        "limitranges",
        "resourcequotas",
    ];
    if cluster {
        core_read.extend(["namespaces", "nodes", "persistentvolumes"]);
    }
    let mut rules = vec![
        rule(&[""], &core_read, READ),
        rule(
            &["apps"],
            &["deployments", "replicasets", "statefulsets", "daemonsets"],
            READ,
        ),
        rule(&["batch"], &["jobs", "cronjobs"], READ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], READ),
        rule(&["policy"], &["poddisruptionbudgets"], READ),
        rule(
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
            READ,
        ),
        rule(&["discovery.k8s.io"], &["endpointslices"], READ),
        rule(&["events.k8s.io"], &["events"], READ),
    ];
    if access == KubectlAccess::ReadWrite {
        rules.extend([
            rule(&[""], &["pods", "configmaps"], WRITE),
            rule(
                &["apps"],
                &[
                    "deployments",
                    "replicasets",
                    "statefulsets",
                    "daemonsets",
                    "deployments/scale",
                    "replicasets/scale",
                    "statefulsets/scale",
                ],
                WRITE,
            ),
            rule(&["batch"], &["jobs", "cronjobs"], WRITE),
        ]);
    }
    rules
}

pub(super) fn server_role(ctx: &Ctx<'_>) -> Role {
    Role {
        metadata: ctx.meta(&ctx.name),
        rules: Some(server_rules(&ctx.name)),
    }
}

fn subject(ctx: &Ctx<'_>) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: ctx.name.clone(),
        namespace: Some(ctx.namespace.clone()),
        api_group: None,
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

pub(super) fn server_role_binding(ctx: &Ctx<'_>) -> RoleBinding {
    RoleBinding {
        metadata: ctx.meta(&ctx.name),
        role_ref: role_ref("Role", &ctx.name),
        subjects: Some(vec![subject(ctx)]),
    }
}

/// One object of kubectl access.
pub(super) enum KubectlObject {
    Role(Role),
    RoleBinding(RoleBinding),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
}

/// Name of the namespaced kubectl Role and RoleBinding.
pub fn kubectl_name(server: &str) -> String {
    format!("{server}-kubectl")
}

/// Name of the cluster-wide kubectl ClusterRole and ClusterRoleBinding: unique per server and
/// namespace, as cluster-scoped names must be.
pub fn cluster_kubectl_name(server: &str, namespace: &str) -> String {
    format!("linkmcp:{namespace}:{server}:kubectl")
}

pub(super) fn kubectl(ctx: &Ctx<'_>) -> Vec<KubectlObject> {
    let spec = &ctx.server.spec.kubectl;
    if spec.access == KubectlAccess::Disabled {
        return Vec::new();
    }
    if spec.all_namespaces {
        let name = cluster_kubectl_name(&ctx.name, &ctx.namespace);
        vec![
            KubectlObject::ClusterRole(ClusterRole {
                metadata: ctx.cluster_meta(&name),
                rules: Some(kubectl_rules(spec.access, true)),
                aggregation_rule: None,
            }),
            KubectlObject::ClusterRoleBinding(ClusterRoleBinding {
                metadata: ctx.cluster_meta(&name),
                role_ref: role_ref("ClusterRole", &name),
                subjects: Some(vec![subject(ctx)]),
            }),
        ]
    } else {
        let name = kubectl_name(&ctx.name);
        vec![
            KubectlObject::Role(Role {
                metadata: ctx.meta(&name),
                rules: Some(kubectl_rules(spec.access, false)),
            }),
            KubectlObject::RoleBinding(RoleBinding {
                metadata: ctx.meta(&name),
                role_ref: role_ref("Role", &name),
                subjects: Some(vec![subject(ctx)]),
            }),
        ]
    }
}
