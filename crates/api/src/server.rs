//! McpServer: one governed MCP endpoint — the Deployment the controller runs, and everything
//! that shapes what its clients may do (auth, limits, exposure, kubectl access, knowledge).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CredentialsSecretRef, HTTP_URL_MESSAGE, HTTP_URL_RULE};
use crate::notify::NotificationSpec;

/// An MCP endpoint serving the tools of the McpLinks that reference it, and running the
/// AiTasks of its Agents.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "linkmcp.io",
    version = "v1alpha1",
    kind = "McpServer",
    namespaced,
    derive = "PartialEq",
    status = "McpServerStatus",
    shortname = "mcps",
    category = "linkmcp",
    doc = "A governed MCP endpoint: its clients see tools only for the McpLinks that reference it.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Links", type_ = "integer", json_path = ".status.links"),
    printcolumn(name = "Tools", type_ = "integer", json_path = ".status.tools"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
// `auth` is not in the schema's `required` list on purpose: the API server skips every CEL
// rule of an object that misses a required field, and its "Required value" does not say what
// to write. This rule refuses the same objects with a message that does.
#[x_kube(validation = kube::core::Rule::new("has(self.auth)").message("spec.auth is required: set auth.apiKeys.secretName (a Secret of API keys), auth.oidc (issuer and audiences), or auth.allowUnauthenticated: true"))]
pub struct McpServerSpec {
    /// Name the server reports to MCP clients in `initialize`. Defaults to the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub server_name: Option<String>,
    /// TCP port the server listens on (container port and Service port).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Number of server replicas. More than one needs `stateless: true` unless the Service
    /// uses session affinity; the Dark Factory elects one scheduler among them with a Lease.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    /// Server image. Defaults to the server image of the controller's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Image pull policy of the server container.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,
    /// CPU and memory requests and limits of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Serve without MCP sessions, so any replica can answer any request. Clients then get no
    /// server-to-client stream on GET /mcp, hence no `list_changed` notifications, unless they
    /// speak protocol 2026-07-28 and listen with `subscriptions/listen`.
    #[serde(default)]
    pub stateless: bool,
    /// Host names accepted in the HTTP Host header, beside loopback and the Service's own DNS
    /// names (a guard against DNS rebinding). Add the public host of an HTTPRoute or Ingress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub allowed_hosts: Vec<String>,
    /// Who may call the server: API keys, OIDC, or, explicitly, `allowUnauthenticated: true`.
    /// Required, with no default (a default admitting no one would break its own rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Kubernetes access given to the server's tools (kubectl_get, kubectl_logs, ...).
    #[serde(default)]
    pub kubectl: KubectlSpec,
    /// A knowledge base (knowledge_base.json and Markdown) served as knowledge tools and
    /// knowledge:// resources, and injected into agent prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<KnowledgeSpec>,
    /// Default notifications for the AiTasks of this server; a task's own `notify` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationSpec>,
    /// How the server is reached: Service type, Gateway API HTTPRoute, Ingress.
    #[serde(default)]
    pub exposure: ExposureSpec,
    /// Prometheus Operator ServiceMonitor for /metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
    /// OpenTelemetry traces of every request and tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetrySpec>,
    /// Server-wide guards. A link's own limits win over these for its tools.
    #[serde(default)]
    pub limits: ServerLimits,
    /// Replace error details in tool results with a generic message (details still go to the
    /// server log), for servers whose clients must not learn backend internals.
    #[serde(default)]
    pub mask_error_details: bool,
    /// Serve the built-in `find_tools` tool to clients: given what a client wants to do, the
    /// best matching tools with their schemas, among those the caller may call. For clients
    /// facing many tools; agent runs always have it.
    #[serde(default)]
    pub find_tools: bool,
    /// Ask the person at an interactive client to confirm before a tool with
    /// `destructiveHint` runs, when the client declares the elicitation capability
    /// (`elicitation/create`, or an input request at protocol 2026-07-28); a declined or
    /// cancelled confirmation refuses the call. Clients without elicitation call as before.
    #[serde(default)]
    pub confirm_destructive: bool,
    /// What happens when two links contribute a tool of the same name: `error` (the later link
    /// is not registered and says why in its Ready condition), `warn` (the first keeps the
    /// name, a warning is logged), or `replace` (the later link wins).
    #[serde(default)]
    pub on_duplicate_tools: OnDuplicateTools,
    /// Availability: PodDisruptionBudget and HorizontalPodAutoscaler for the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilitySpec>,
    /// A NetworkPolicy admitting traffic to the server only from the listed sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,
}

fn default_port() -> i32 {
    8080
}
fn default_replicas() -> i32 {
    1
}

/// Image pull policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// Client authentication. Several methods may be set; a request passes with any of them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.apiKeys) || has(self.oidc) || self.allowUnauthenticated").message("auth must configure apiKeys or oidc, or set allowUnauthenticated: true"))]
pub struct AuthSpec {
    /// API keys, sent by clients as `Authorization: Bearer <key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeysSpec>,
    /// OAuth 2.0 / OIDC bearer JWTs (Keycloak or any issuer publishing a JWKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSpec>,
    /// Scopes every caller needs, whatever the tool (OIDC `scope`/`scp` claim; API keys have
    /// every scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128)))]
    pub required_scopes: Vec<String>,
    /// Extra scopes needed for particular tools, matched by glob on the tool name. A caller
    /// only sees, in tools/list, the tools whose scopes it has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub tool_scopes: Vec<ToolScope>,
    /// Serve without authentication. Only for loopback or a trusted network.
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

/// API keys held in a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeysSpec {
    /// Name of a Secret in this namespace. Every entry is one valid key; the entry's name is
    /// the key id shown as the client identity in the audit log. Add an entry to rotate, then
    /// remove the old one.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// OIDC JWT validation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OidcSpec {
    /// Issuer URL; `<issuer>/.well-known/openid-configuration` is read to find the JWKS.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub issuer: String,
    /// Accepted audiences (`aud` claim). At least one must match.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 253)))]
    pub audiences: Vec<String>,
    /// JWKS URL, when it is not the one the issuer's discovery document names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub jwks_uri: Option<String>,
    /// Claim used as the client identity in the audit log.
    #[serde(default = "default_identity_claim")]
    #[schemars(length(min = 1, max = 128))]
    pub identity_claim: String,
}

fn default_identity_claim() -> String {
    "sub".into()
}

/// Scopes a caller needs for the tools matching a pattern.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolScope {
    /// Glob on tool names, e.g. `pg_execute` or `*_execute`.
    #[schemars(length(min = 1, max = 128))]
    pub tools: String,
    /// Scopes required, all of them.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 128)))]
    pub scopes: Vec<String>,
}

/// Kubernetes access for the kubectl_* tools.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubectlSpec {
    /// `Disabled`: no kubectl tools. `Readonly`: get, describe, logs, events and policy checks
    /// (never Secrets). `ReadWrite`: also apply, scale, restart and delete of workloads.
    #[serde(default)]
    pub access: KubectlAccess,
    /// Grant the access cluster-wide instead of only in the server's namespace.
    #[serde(default)]
    pub all_namespaces: bool,
}

/// Level of Kubernetes access.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KubectlAccess {
    #[default]
    Disabled,
    Readonly,
    ReadWrite,
}

/// Where the knowledge base comes from: exactly one of git or configMap.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.git) != has(self.configMap)").message("knowledge needs exactly one of git or configMap"))]
pub struct KnowledgeSpec {
    /// A git repository holding knowledge_base.json and Markdown files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// Name of a ConfigMap in this namespace holding knowledge_base.json and Markdown files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub config_map: Option<String>,
}

/// A folder in a git repository.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Repository URL (https).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Branch, tag or commit. Defaults to the repository's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub r#ref: Option<String>,
    /// Folder inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub path: Option<String>,
    /// Seconds between refreshes.
    #[serde(default = "default_refresh")]
    #[schemars(range(min = 30, max = 86400))]
    pub refresh_seconds: i32,
    /// Secret with a `token` (https) for private repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

fn default_refresh() -> i32 {
    300
}

/// How the server is exposed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExposureSpec {
    /// Type of the server's Service.
    #[serde(default)]
    pub service_type: ServiceType,
    /// A Gateway API HTTPRoute to the Service (created when the Gateway API is installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<HttpRouteSpec>,
    /// A networking.k8s.io Ingress to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
}

/// Kubernetes Service type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// A Gateway API HTTPRoute.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Gateways the route attaches to.
    #[schemars(length(min = 1, max = 8))]
    pub parent_refs: Vec<GatewayRef>,
    /// Host names the route matches; each is also accepted as an allowed Host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub hostnames: Vec<String>,
    /// Path prefix routed to the server.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 1024))]
    pub path_prefix: String,
}

fn default_path() -> String {
    "/".into()
}

/// A Gateway an HTTPRoute attaches to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Gateway name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Gateway namespace; defaults to the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Listener of the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub section_name: Option<String>,
}

/// An Ingress.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// IngressClass name (e.g. `nginx`, `apisix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub class_name: Option<String>,
    /// Host name; also accepted as an allowed Host.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Path prefix routed to the server.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 1024))]
    pub path_prefix: String,
    /// Secret holding the TLS certificate for the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub tls_secret_name: Option<String>,
    /// Annotations for the Ingress controller.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Prometheus Operator integration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a ServiceMonitor (when the monitoring.coreos.com API is installed).
    #[serde(default)]
    pub service_monitor: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default = "default_interval")]
    #[x_kube(validation = kube::core::Rule::new("self.matches('^[0-9]+(ms|s|m|h)$')").message("interval must be a duration like 30s or 1m"))]
    #[schemars(length(min = 2, max = 16))]
    pub interval: String,
    /// Extra labels on the ServiceMonitor (for the Prometheus selector).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

fn default_interval() -> String {
    "30s".into()
}

/// OTLP export of traces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// OTLP/HTTP endpoint (traces go to `<endpoint>/v1/traces` as protobuf), e.g.
    /// `http://otel-collector.observability:4318`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub otlp_endpoint: String,
    /// Fraction of requests traced, in per mille (1000 = every request).
    #[serde(default = "default_sample")]
    #[schemars(range(min = 0, max = 1000))]
    pub sample_per_mille: i32,
}

fn default_sample() -> i32 {
    1000
}

/// Server-wide guards.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerLimits {
    /// Timeout of one tool call, unless its link sets its own.
    #[serde(default = "default_tool_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub tool_timeout_seconds: i32,
    /// Largest tool result text sent to a client; longer results are cut and marked truncated.
    #[serde(default = "default_max_output")]
    #[schemars(range(min = 1024, max = 67108864))]
    pub max_output_bytes: i32,
    /// Largest HTTP request body accepted on /mcp and the REST API.
    #[serde(default = "default_max_request")]
    #[schemars(range(min = 1024, max = 67108864))]
    pub max_request_bytes: i32,
    /// Calls per minute allowed for each tool (all clients together); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub calls_per_minute_per_tool: Option<i32>,
    /// Most MCP sessions open at once, all clients together (default 1000, which fits the
    /// default 256Mi memory limit: a busy session holds about 190 KiB); an `initialize` beyond
    /// it is refused with 503 until sessions end (DELETE, or 5 minutes idle). Raise it together
    /// with the memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_sessions: Option<i32>,
}

impl ServerLimits {
    /// Sessions open at once when `maxSessions` is not set: what the default memory limit
    /// (256Mi) holds with room to spare. `make soak` measured about 80 KiB per open session and
    /// 190 KiB per busy one (10,000 busy sessions: 1.8 GiB; 1,000: 206 MiB).
    pub const DEFAULT_MAX_SESSIONS: usize = 1_000;
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            tool_timeout_seconds: default_tool_timeout(),
            max_output_bytes: default_max_output(),
            max_request_bytes: default_max_request(),
            calls_per_minute_per_tool: None,
            max_sessions: None,
        }
    }
}

fn default_tool_timeout() -> i32 {
    30
}
fn default_max_output() -> i32 {
    65536
}
fn default_max_request() -> i32 {
    1048576
}

/// What to do with a tool name two links both contribute.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicateTools {
    #[default]
    Error,
    Warn,
    Replace,
}

/// PodDisruptionBudget and HorizontalPodAutoscaler.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilitySpec {
    /// Create a PodDisruptionBudget keeping this many server pods available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub min_available: Option<i32>,
    /// Scale the server with a HorizontalPodAutoscaler (needs `stateless: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
}

/// HorizontalPodAutoscaler settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self.maxReplicas >= self.minReplicas").message("maxReplicas must be at least minReplicas"))]
pub struct AutoscalingSpec {
    /// Fewest replicas.
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most replicas.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Target average CPU utilisation, in percent of the request.
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_percent: i32,
}

fn default_cpu_target() -> i32 {
    75
}

/// Ingress sources admitted by the server's NetworkPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Namespaces (by name) whose pods may connect. The server's own namespace always may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub allowed_namespaces: Vec<String>,
    /// Pods (by label) in the server's namespace that may connect; empty: all of them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub allowed_pod_labels: std::collections::BTreeMap<String, String>,
}

/// Observed state of an McpServer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpServerStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Available, OptionalApiMissing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// URL of the MCP endpoint inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Number of McpLinks referencing this server.
    #[serde(default)]
    pub links: i32,
    /// Number of tools the server's links contribute.
    #[serde(default)]
    pub tools: i32,
    /// Server pods ready to serve.
    #[serde(default)]
    pub ready_replicas: i32,
}
