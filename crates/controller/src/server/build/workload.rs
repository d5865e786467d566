//! The server itself: ServiceAccount, settings ConfigMap, credentials Secret, Deployment and
//! Service.
//!
//! Settings the server reads at start (limits, log format, telemetry) live in the ConfigMap as
//! environment variables; the pod template carries a hash of them, so a settings change rolls
//! the pods. Links never do: the server follows its links and the credentials Secret live.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecurityContext, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use linkmcp_api::McpServer;
use linkmcp_api::names::{annotation, credentials_secret_name, settings_configmap_name};
use linkmcp_api::server::{PullPolicy, ServiceType};
use sha2::{Digest, Sha256};

use super::Ctx;

/// The user the server runs as (the distroless `nonroot` user).
const RUN_AS: i64 = 65532;
/// The server's largest accepted `--max-output-bytes`; the CRD allows more.
const SERVER_MAX_OUTPUT_BYTES: i32 = 16 * 1024 * 1024;
/// Name of the port on the container and the Service.
pub const PORT_NAME: &str = "http";

pub(super) fn service_account(ctx: &Ctx<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: ctx.meta(&ctx.name),
        // Only the server's pod mounts a token (it asks for one); nothing else running as
        // this account gets the server's API access by accident.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The environment the server reads its settings from (the ConfigMap's data).
pub fn settings(server: &McpServer) -> BTreeMap<String, String> {
    let spec = &server.spec;
    let mut env = BTreeMap::from([
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        (
            "LINKMCP_TOOL_TIMEOUT_SECONDS".to_owned(),
            spec.limits.tool_timeout_seconds.to_string(),
        ),
        (
            "LINKMCP_MAX_OUTPUT_BYTES".to_owned(),
            spec.limits
                .max_output_bytes
                .min(SERVER_MAX_OUTPUT_BYTES)
                .to_string(),
        ),
        (
            "LINKMCP_MASK_ERROR_DETAILS".to_owned(),
            spec.mask_error_details.to_string(),
        ),
        ("LINKMCP_FIND_TOOLS".to_owned(), spec.find_tools.to_string()),
    ]);
    if let Some(sessions) = spec.limits.max_sessions {
        env.insert("LINKMCP_MAX_SESSIONS".to_owned(), sessions.to_string());
    }
    if let Some(calls) = spec.limits.calls_per_minute_per_tool {
        env.insert(
            "LINKMCP_CALLS_PER_MINUTE_PER_TOOL".to_owned(),
            calls.to_string(),
        );
    }
    if let Some(telemetry) = &spec.telemetry {
        env.insert("OTEL_SERVICE_NAME".to_owned(), "linkmcp-server".to_owned());
        env.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            telemetry.otlp_endpoint.clone(),
        );
        env.insert(
            "OTEL_TRACES_SAMPLER".to_owned(),
            "parentbased_traceidratio".to_owned(),
        );
        env.insert(
            "OTEL_TRACES_SAMPLER_ARG".to_owned(),
            format!("{}", f64::from(telemetry.sample_per_mille) / 1000.0),
        );
    }
    env
}

pub(super) fn config_map(ctx: &Ctx<'_>) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(settings_configmap_name(&ctx.name)),
        data: Some(settings(ctx.server)),
        ..ConfigMap::default()
    }
}

/// A short, stable hash of the ConfigMap's data for the pod template annotation.
pub(super) fn config_hash(config_map: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in config_map.data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn credentials_secret(ctx: &Ctx<'_>, credentials: &BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: ctx.meta(credentials_secret_name(&ctx.name)),
        type_: Some("Opaque".to_owned()),
        data: Some(
            credentials
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The Host names the server accepts: its Service's DNS names, the spec's `allowedHosts`,
/// and the hosts of its HTTPRoute and Ingress.
pub fn allowed_hosts(server: &McpServer, namespace: &str, cluster_domain: &str) -> Vec<String> {
    let name = server.metadata.name.clone().unwrap_or_default();
    let spec = &server.spec;
    let mut hosts = vec![
        name.clone(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.{cluster_domain}"),
    ];
    hosts.extend(spec.allowed_hosts.iter().cloned());
    if let Some(route) = &spec.exposure.http_route {
        hosts.extend(route.hostnames.iter().cloned());
    }
    if let Some(ingress) = &spec.exposure.ingress {
        hosts.push(ingress.host.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    hosts.retain(|h| seen.insert(h.to_ascii_lowercase()));
    hosts
}

/// The in-cluster URL of the server's MCP endpoint.
pub fn endpoint(server: &McpServer, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc:{}/mcp",
        server.metadata.name.as_deref().unwrap_or_default(),
        server.spec.port
    )
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(PORT_NAME.to_owned()),
            scheme: Some("HTTP".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Requests and limits when the spec names none: small, as the server is.
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

pub(super) fn deployment(ctx: &Ctx<'_>, config_hash: &str) -> Deployment {
    let spec = &ctx.server.spec;
    let autoscaled = spec
        .availability
        .as_ref()
        .is_some_and(|a| a.autoscaling.is_some());
    let image = spec
        .image
        .clone()
        .unwrap_or_else(|| ctx.settings.server_image.clone());
    let pull_policy = match spec.image_pull_policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    };
    let container = Container {
        name: "server".to_owned(),
        image: Some(image),
        image_pull_policy: Some(pull_policy.to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.to_owned()),
            container_port: spec.port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            env("LINKMCP_SERVER", ctx.name.clone()),
            env("LINKMCP_NAMESPACE", ctx.namespace.clone()),
            env("LINKMCP_LISTEN", format!("0.0.0.0:{}", spec.port)),
            env(
                "LINKMCP_ALLOWED_HOSTS",
                allowed_hosts(ctx.server, &ctx.namespace, &ctx.settings.cluster_domain).join(","),
            ),
            env("LINKMCP_STATELESS", spec.stateless.to_string()),
        ]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: settings_configmap_name(&ctx.name),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        // The server answers /startupz once it has read its links from the API.
        startup_probe: Some(probe("/startupz", 2, 60)),
        readiness_probe: Some(probe("/readyz", 5, 3)),
        liveness_probe: Some(probe("/healthz", 10, 3)),
        volume_mounts: Some(vec![VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let pod = PodSpec {
        service_account_name: Some(ctx.name.clone()),
        // The server watches its McpServer, links and Secret: it needs a token, and only it.
        automount_service_account_token: Some(true),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity("256Mi".to_owned())),
            }),
            ..Volume::default()
        }]),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    };
    Deployment {
        metadata: ctx.meta(&ctx.name),
        spec: Some(DeploymentSpec {
            // With an autoscaler the HPA owns the replica count.
            replicas: (!autoscaled).then_some(spec.replicas),
            revision_history_limit: Some(3),
            selector: LabelSelector {
                match_labels: Some(ctx.selector()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.labels()),
                    annotations: Some(BTreeMap::from([(
                        annotation::CONFIG_HASH.to_owned(),
                        config_hash.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

pub(super) fn service(ctx: &Ctx<'_>) -> Service {
    let spec = &ctx.server.spec;
    let service_type = match spec.exposure.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata: ctx.meta(&ctx.name),
        spec: Some(ServiceSpec {
            type_: Some(service_type.to_owned()),
            selector: Some(ctx.selector()),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: spec.port,
                target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            // MCP sessions live in one replica: without stateless mode a client must keep
            // reaching the replica that holds its session.
            session_affinity: Some(if spec.stateless { "None" } else { "ClientIP" }.to_owned()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
