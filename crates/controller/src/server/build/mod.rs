//! The objects an McpServer is rendered into: a pure function of its spec, its credentials
//! and which optional APIs the cluster serves. No client is involved, so every rendering is
//! tested by snapshot.
//!
//! Every object carries the server's labels (with `app.kubernetes.io/managed-by`, which the
//! controller's watches and the apply layer select on) and, when namespaced, a controller
//! owner reference to the McpServer, so deleting the McpServer garbage-collects it. The
//! cluster-wide kubectl RBAC cannot be owned by a namespaced object; it carries the server's
//! namespace as a label instead and is removed by the McpServer's finalizer.

mod optional;
mod rbac;
mod workload;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ApiResource, DynamicObject};
use kube::{Resource, ResourceExt};
use linkmcp_api::McpServer;
use linkmcp_api::names::{MANAGED_BY_VALUE, SERVER_APP_NAME, label};
use serde::Serialize;

use crate::context::Settings;
use crate::error::Error;

pub use rbac::{kubectl_rules, server_rules};
pub use workload::{allowed_hosts, endpoint, settings};

/// Label on cluster-scoped objects: the namespace of the McpServer they belong to.
pub const SERVER_NAMESPACE_LABEL: &str = "linkmcp.io/server-namespace";
/// Value of `app.kubernetes.io/component` on the server's objects.
pub const COMPONENT: &str = "mcp-server";
/// Value of `app.kubernetes.io/part-of`.
pub const PART_OF: &str = "linkmcp";

/// Every kind the controller renders for an McpServer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ServiceAccount,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    ConfigMap,
    Secret,
    Deployment,
    Service,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    NetworkPolicy,
    Ingress,
    ServiceMonitor,
    HttpRoute,
}

impl Kind {
    /// Every kind, in the order objects are applied: the credentials Secret first, because
    /// the running server serves a new link as soon as its credentials are there (the rest of
    /// a reconcile costs it nothing); then RBAC before the Deployment using it.
    pub const ALL: [Kind; 15] = [
        Kind::Secret,
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::ConfigMap,
        Kind::Deployment,
        Kind::Service,
        Kind::PodDisruptionBudget,
        Kind::HorizontalPodAutoscaler,
        Kind::NetworkPolicy,
        Kind::Ingress,
        Kind::ServiceMonitor,
        Kind::HttpRoute,
    ];

    /// How the API names the kind.
    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            Kind::Role => ApiResource::erase::<Role>(&()),
            Kind::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
            Kind::ClusterRole => ApiResource::erase::<ClusterRole>(&()),
            Kind::ClusterRoleBinding => ApiResource::erase::<ClusterRoleBinding>(&()),
            Kind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            Kind::Secret => ApiResource::erase::<Secret>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
            Kind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            Kind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
            Kind::Ingress => ApiResource::erase::<Ingress>(&()),
            Kind::ServiceMonitor => ApiResource {
                group: "monitoring.coreos.com".into(),
                version: "v1".into(),
                api_version: "monitoring.coreos.com/v1".into(),
                kind: "ServiceMonitor".into(),
                plural: "servicemonitors".into(),
            },
            Kind::HttpRoute => ApiResource {
                group: "gateway.networking.k8s.io".into(),
                version: "v1".into(),
                api_version: "gateway.networking.k8s.io/v1".into(),
                kind: "HTTPRoute".into(),
                plural: "httproutes".into(),
            },
        }
    }

    /// Whether objects of the kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::ClusterRole | Kind::ClusterRoleBinding)
    }

    /// Whether the kind is rendered only on request, after discovery found its API.
    pub fn optional(self) -> bool {
        matches!(
            self,
            Kind::PodDisruptionBudget
                | Kind::HorizontalPodAutoscaler
                | Kind::NetworkPolicy
                | Kind::Ingress
                | Kind::ServiceMonitor
                | Kind::HttpRoute
        )
    }

    /// What to install when the kind's API is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            Kind::ServiceMonitor => {
                "ServiceMonitor needs the monitoring.coreos.com/v1 API: install the Prometheus \
                 Operator CRDs"
            }
            Kind::HttpRoute => {
                "HTTPRoute needs the gateway.networking.k8s.io/v1 API: install the Gateway API \
                 CRDs"
            }
            Kind::Ingress => "Ingress needs the networking.k8s.io/v1 API",
            Kind::NetworkPolicy => "NetworkPolicy needs the networking.k8s.io/v1 API",
            Kind::PodDisruptionBudget => "PodDisruptionBudget needs the policy/v1 API",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler needs the autoscaling/v2 API",
            _ => "a core API",
        }
    }
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub kind: Kind,
    pub object: DynamicObject,
}

impl Child {
    /// The object's name.
    pub fn name(&self) -> String {
        self.object.name_any()
    }
}

/// What an McpServer renders to.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The objects that should exist, in apply order.
    pub children: Vec<Child>,
    /// Optional kinds the spec asks for whose API the cluster does not serve.
    pub missing_apis: Vec<Kind>,
}

/// What rendering needs.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The McpServer, as read from the API (with its uid).
    pub server: &'a McpServer,
    /// The controller's settings (default image, cluster domain).
    pub settings: &'a Settings,
    /// The content of the credentials Secret.
    pub credentials: &'a BTreeMap<String, String>,
    /// The optional kinds whose API the cluster serves.
    pub present: &'a BTreeSet<Kind>,
}

/// The optional kinds `server`'s spec asks for.
pub fn wanted_optional(server: &McpServer) -> Vec<Kind> {
    let spec = &server.spec;
    let availability = spec.availability.as_ref();
    [
        (
            availability.is_some_and(|a| a.min_available.is_some()),
            Kind::PodDisruptionBudget,
        ),
        (
            availability.is_some_and(|a| a.autoscaling.is_some()),
            Kind::HorizontalPodAutoscaler,
        ),
        (spec.network_policy.is_some(), Kind::NetworkPolicy),
        (spec.exposure.ingress.is_some(), Kind::Ingress),
        (
            spec.monitoring.as_ref().is_some_and(|m| m.service_monitor),
            Kind::ServiceMonitor,
        ),
        (spec.exposure.http_route.is_some(), Kind::HttpRoute),
    ]
    .into_iter()
    .filter_map(|(wanted, kind)| wanted.then_some(kind))
    .collect()
}

/// Renders `input.server` into the objects that should exist.
pub fn render(input: &Input<'_>) -> Result<Rendered, Error> {
    let ctx = Ctx::new(input)?;
    let mut children = Vec::new();
    let mut push = |kind: Kind, object: Result<DynamicObject, Error>| -> Result<(), Error> {
        children.push(Child {
            kind,
            object: object?,
        });
        Ok(())
    };

    push(
        Kind::ServiceAccount,
        dynamic(&workload::service_account(&ctx)),
    )?;
    push(Kind::Role, dynamic(&rbac::server_role(&ctx)))?;
    push(Kind::RoleBinding, dynamic(&rbac::server_role_binding(&ctx)))?;
    for object in rbac::kubectl(&ctx) {
        match object {
            rbac::KubectlObject::Role(role) => push(Kind::Role, dynamic(&role))?,
            rbac::KubectlObject::RoleBinding(binding) => {
                push(Kind::RoleBinding, dynamic(&binding))?;
            }
            rbac::KubectlObject::ClusterRole(role) => push(Kind::ClusterRole, dynamic(&role))?,
            rbac::KubectlObject::ClusterRoleBinding(binding) => {
                push(Kind::ClusterRoleBinding, dynamic(&binding))?;
            }
        }
    }
    let config_map = workload::config_map(&ctx);
    let config_hash = workload::config_hash(&config_map);
    push(Kind::ConfigMap, dynamic(&config_map))?;
    push(
        Kind::Secret,
        dynamic(&workload::credentials_secret(&ctx, input.credentials)),
    )?;
    push(
        Kind::Deployment,
        dynamic(&workload::deployment(&ctx, &config_hash)),
    )?;
    push(Kind::Service, dynamic(&workload::service(&ctx)))?;

    let mut missing_apis = Vec::new();
    for kind in wanted_optional(input.server) {
        if !input.present.contains(&kind) {
            missing_apis.push(kind);
            continue;
        }
        let object = match kind {
            Kind::PodDisruptionBudget => optional::pod_disruption_budget(&ctx).map(|o| dynamic(&o)),
            Kind::HorizontalPodAutoscaler => optional::autoscaler(&ctx).map(|o| dynamic(&o)),
            Kind::NetworkPolicy => optional::network_policy(&ctx).map(|o| dynamic(&o)),
            Kind::Ingress => optional::ingress(&ctx).map(|o| dynamic(&o)),
            Kind::ServiceMonitor => optional::service_monitor(&ctx),
            Kind::HttpRoute => optional::http_route(&ctx),
            _ => None,
        };
        if let Some(object) = object {
            push(kind, object)?;
        }
    }
    Ok(Rendered {
        children,
        missing_apis,
    })
}

/// What the renderers share: names, labels, the owner reference.
pub(crate) struct Ctx<'a> {
    pub server: &'a McpServer,
    pub settings: &'a Settings,
    pub name: String,
    pub namespace: String,
    pub owner: OwnerReference,
}

impl<'a> Ctx<'a> {
    fn new(input: &Input<'a>) -> Result<Self, Error> {
        let server = input.server;
        let namespace = server.namespace().ok_or(Error::MissingMetadata {
            kind: "McpServer",
            field: "namespace",
        })?;
        let owner = server
            .controller_owner_ref(&())
            .ok_or(Error::MissingMetadata {
                kind: "McpServer",
                field: "uid",
            })?;
        Ok(Self {
            server,
            settings: input.settings,
            name: server.name_any(),
            namespace,
            owner,
        })
    }

    /// Labels selecting the server's pods (a Deployment's selector is immutable: keep these).
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (label::NAME.to_owned(), SERVER_APP_NAME.to_owned()),
            (label::INSTANCE.to_owned(), self.name.clone()),
        ])
    }

    /// Labels of every object of the server.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector();
        labels.insert(label::COMPONENT.to_owned(), COMPONENT.to_owned());
        labels.insert(label::PART_OF.to_owned(), PART_OF.to_owned());
        labels.insert(label::MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
        labels.insert(label::SERVER.to_owned(), self.name.clone());
        labels
    }

    /// Metadata of a namespaced object named `name`, owned by the McpServer.
    pub fn meta(&self, name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// Metadata of a cluster-scoped object named `name`.
    pub fn cluster_meta(&self, name: impl Into<String>) -> ObjectMeta {
        let mut labels = self.labels();
        labels.insert(SERVER_NAMESPACE_LABEL.to_owned(), self.namespace.clone());
        ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }
}

/// A typed object as the apply layer handles every kind.
fn dynamic<T: Serialize>(object: &T) -> Result<DynamicObject, Error> {
    let encode = |source| Error::Encode {
        what: "a rendered object".into(),
        source,
    };
    serde_json::from_value(serde_json::to_value(object).map_err(encode)?).map_err(encode)
}

/// The label selector of everything rendered for `server` in `namespace`.
pub fn selector_of(server: &str) -> String {
    format!(
        "{}={MANAGED_BY_VALUE},{}={server}",
        label::MANAGED_BY,
        label::SERVER
    )
}

/// The label selector of the cluster-scoped objects of `server` in `namespace`.
pub fn cluster_selector_of(server: &str, namespace: &str) -> String {
    format!(
        "{},{SERVER_NAMESPACE_LABEL}={namespace}",
        selector_of(server)
    )
}

#[cfg(test)]
mod tests;
