//! Objects rendered only when the spec asks for them (and their API exists): availability
//! (PodDisruptionBudget, HorizontalPodAutoscaler), a NetworkPolicy, and exposure (Ingress,
//! Gateway API HTTPRoute) and monitoring (ServiceMonitor). The last two are CRDs of other
//! projects, rendered as untyped objects.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use serde_json::json;

use super::workload::PORT_NAME;
use super::{Ctx, Kind, dynamic};
use crate::error::Error;

fn selector(ctx: &Ctx<'_>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(ctx.selector()),
        match_expressions: None,
    }
}

pub(super) fn pod_disruption_budget(ctx: &Ctx<'_>) -> Option<PodDisruptionBudget> {
    let min_available = ctx.server.spec.availability.as_ref()?.min_available?;
    Some(PodDisruptionBudget {
        metadata: ctx.meta(&ctx.name),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available)),
            selector: Some(selector(ctx)),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

pub(super) fn autoscaler(ctx: &Ctx<'_>) -> Option<HorizontalPodAutoscaler> {
    let scaling = ctx
        .server
        .spec
        .availability
        .as_ref()?
        .autoscaling
        .as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: ctx.meta(&ctx.name),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: ctx.name.clone(),
            },
            min_replicas: Some(scaling.min_replicas),
            max_replicas: scaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(scaling.target_cpu_percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        },
        status: None,
    })
}

pub(super) fn network_policy(ctx: &Ctx<'_>) -> Option<NetworkPolicy> {
    let policy = ctx.server.spec.network_policy.as_ref()?;
    // Pods of the server's namespace (all, or those with the given labels) ...
    let mut from = vec![NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: (!policy.allowed_pod_labels.is_empty())
                .then(|| policy.allowed_pod_labels.clone()),
            match_expressions: None,
        }),
        ..NetworkPolicyPeer::default()
    }];
    // ... and every pod of the listed namespaces.
    if !policy.allowed_namespaces.is_empty() {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "kubernetes.io/metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(policy.allowed_namespaces.clone()),
                }]),
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    Some(NetworkPolicy {
        metadata: ctx.meta(&ctx.name),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(ctx)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(ctx.server.spec.port)),
                    protocol: Some("TCP".to_owned()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    })
}

pub(super) fn ingress(ctx: &Ctx<'_>) -> Option<Ingress> {
    let spec = ctx.server.spec.exposure.ingress.as_ref()?;
    let mut metadata = ctx.meta(&ctx.name);
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations.clone());
    }
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(spec.path_prefix.clone()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: ctx.name.clone(),
                                port: Some(ServiceBackendPort {
                                    name: Some(PORT_NAME.to_owned()),
                                    number: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    })
}

/// An untyped object of `kind` with the server's metadata and `spec`.
fn untyped(
    ctx: &Ctx<'_>,
    kind: Kind,
    extra_labels: &BTreeMap<String, String>,
    spec: serde_json::Value,
) -> Result<DynamicObject, Error> {
    let resource = kind.api_resource();
    let mut metadata = ctx.meta(&ctx.name);
    if let Some(labels) = metadata.labels.as_mut() {
        for (key, value) in extra_labels {
            labels.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    dynamic(&json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "spec": spec,
    }))
}

pub(super) fn service_monitor(ctx: &Ctx<'_>) -> Option<Result<DynamicObject, Error>> {
    let monitoring = ctx.server.spec.monitoring.as_ref()?;
    if !monitoring.service_monitor {
        return None;
    }
    Some(untyped(
        ctx,
        Kind::ServiceMonitor,
        &monitoring.labels,
        json!({
            "selector": {"matchLabels": ctx.selector()},
            "endpoints": [{
                "port": PORT_NAME,
                "path": "/metrics",
                "interval": monitoring.interval,
            }],
        }),
    ))
}

pub(super) fn http_route(ctx: &Ctx<'_>) -> Option<Result<DynamicObject, Error>> {
    let route = ctx.server.spec.exposure.http_route.as_ref()?;
    let parents: Vec<serde_json::Value> = route
        .parent_refs
        .iter()
        .map(|parent| {
            let mut reference = json!({"name": parent.name});
            if let Some(namespace) = &parent.namespace {
                reference["namespace"] = json!(namespace);
            }
            if let Some(section) = &parent.section_name {
                reference["sectionName"] = json!(section);
            }
            reference
        })
        .collect();
    let mut spec = json!({
        "parentRefs": parents,
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}}],
            "backendRefs": [{"name": ctx.name, "port": ctx.server.spec.port}],
        }],
    });
    if !route.hostnames.is_empty() {
        spec["hostnames"] = json!(route.hostnames);
    }
    Some(untyped(ctx, Kind::HttpRoute, &BTreeMap::new(), spec))
}
