//! McpLink: one service made available as tools on one McpServer.
//!
//! A link names its server, carries exactly one typed backend block (see [`backends`]), and
//! says how its tools are governed: write access, name prefix, include/exclude filters, limits.

pub mod backends;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use backends::*;

use crate::common::{CredentialsSecretRef, ServerRef};

/// An external service exposed as typed MCP tools on one McpServer.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "linkmcp.io",
    version = "v1alpha1",
    kind = "McpLink",
    namespaced,
    derive = "PartialEq",
    status = "McpLinkStatus",
    shortname = "mcpl",
    category = "linkmcp",
    doc = "A service (database, queue, store, API) exposed as typed MCP tools on one McpServer.",
    printcolumn(name = "Server", type_ = "string", json_path = ".spec.serverRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".status.type"),
    printcolumn(name = "Write", type_ = "boolean", json_path = ".spec.writeAccess"),
    printcolumn(name = "Tools", type_ = "integer", json_path = ".status.toolCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("[has(self.postgres), has(self.cnpg), has(self.mongodb), has(self.clickhouse), has(self.s3), has(self.kafka), has(self.rabbitmq), has(self.prometheus), has(self.loki), has(self.grafana), has(self.valkey), has(self.argocd), has(self.fastapi), has(self.git)].filter(x, x).size() == 1").message("exactly one backend block must be set: postgres, cnpg, mongodb, clickhouse, s3, kafka, rabbitmq, prometheus, loki, grafana, valkey, argocd, fastapi or git"))]
pub struct McpLinkSpec {
    /// The McpServer (same namespace) whose clients get this link's tools.
    pub server_ref: ServerRef,

    /// PostgreSQL: pg_list_databases, pg_list_tables, pg_describe_table, pg_table_stats,
    /// pg_query; pg_execute with writeAccess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresBackend>,
    /// CloudNativePG cluster: the cnpg_* tools, like postgres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnpg: Option<CnpgBackend>,
    /// MongoDB: mongo_list_collections, mongo_find, mongo_aggregate, mongo_count; mongo_insert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<MongodbBackend>,
    /// ClickHouse: ch_list_databases, ch_list_tables, ch_describe_table, ch_table_stats,
    /// ch_query; ch_execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickhouseBackend>,
    /// S3: s3_list_buckets, s3_list_objects, s3_get_object, s3_read_text, s3_bucket_stats;
    /// s3_upload_text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Backend>,
    /// Kafka: kafka_list_topics, kafka_describe_topic, kafka_consumer_groups, kafka_consume
    /// (peek, never commits); kafka_produce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaBackend>,
    /// RabbitMQ: rmq_list_queues, rmq_queue_stats, rmq_peek_messages (requeued); rmq_publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq: Option<RabbitmqBackend>,
    /// Prometheus: prom_query, prom_query_range, prom_alerts, prom_targets, prom_rules,
    /// prom_label_values, prom_series, prom_metadata (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusBackend>,
    /// Loki: loki_query, loki_query_range, loki_labels, loki_label_values, loki_series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loki: Option<LokiBackend>,
    /// Grafana: grafana_list_dashboards, grafana_get_dashboard, grafana_list_datasources,
    /// grafana_get_alerts, grafana_list_folders, grafana_query_datasource;
    /// grafana_create_annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana: Option<GrafanaBackend>,
    /// Valkey / Redis: valkey_info, valkey_dbsize, valkey_scan_keys, valkey_get,
    /// valkey_type_and_ttl, valkey_hgetall; valkey_set, valkey_delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valkey: Option<ValkeyBackend>,
    /// Argo CD: argocd_list_applications, argocd_get_application, argocd_get_app_resources,
    /// argocd_list_projects, argocd_get_app_events, argocd_get_app_history;
    /// argocd_sync_application, argocd_rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<ArgocdBackend>,
    /// An OpenAPI-described HTTP API: fastapi_openapi, fastapi_get, one typed tool per
    /// operation; fastapi_call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastapi: Option<FastapiBackend>,
    /// A git repository: clone_repo, list_files, read_file, search_code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitBackend>,

    /// The Secret (same namespace) holding this link's credentials. They are copied into the
    /// server's own Secret and never reach a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
    /// Register the link's write tools (pg_execute, s3_upload_text, ...). Read tools are
    /// always registered; write tools never run in a monitor-mode agent run.
    #[serde(default)]
    pub write_access: bool,
    /// Prefix replacing the type's own (e.g. `orders` gives `orders_query` instead of
    /// `pg_query`), to tell two links of one type apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self.matches('^[a-z][a-z0-9_]*$')").message("toolPrefix must start with a lowercase letter and hold only lowercase letters, digits and '_'"))]
    pub tool_prefix: Option<String>,
    /// Which of the link's tools are registered.
    #[serde(default)]
    pub tools: ToolFilter,
    /// Bounds of every call to this link's tools; unset values fall back to the server's.
    #[serde(default)]
    pub limits: LinkLimits,
    /// How the service appears in the stack topology (query_topology, list_components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentMeta>,
    /// Keep the results of the link's read tools for a while, so repeated identical calls
    /// (dashboards, agents polling) do not reach the backend each time. Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<ResultCache>,
}

/// Caching of read-tool results. A result is reused only for the same tool, the same
/// arguments and the same caller, while it is fresh; write tools and failed calls are never
/// cached.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResultCache {
    /// How long a result stays fresh, in seconds.
    #[schemars(range(min = 1, max = 86400))]
    pub ttl_seconds: i32,
    /// Most results kept for this link (default 1000); the oldest go first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_entries: Option<i32>,
    /// Per-tool freshness by glob on the served tool name, first match wins, e.g.
    /// `{name: "pg_list_*", ttlSeconds: 300}`; `ttlSeconds: 0` never caches those tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub tools: Vec<ToolCacheTtl>,
}

impl ResultCache {
    /// Results kept per link when `maxEntries` is not set.
    pub const DEFAULT_MAX_ENTRIES: usize = 1000;
}

/// The freshness of the results of some of a link's tools.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolCacheTtl {
    /// A glob on the served tool name, e.g. `pg_list_*`.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// How long their results stay fresh, in seconds; 0: never cached.
    #[schemars(range(min = 0, max = 86400))]
    pub ttl_seconds: i32,
}

/// Which tools of a link are registered, by glob on the (prefixed) tool name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolFilter {
    /// Only tools matching one of these globs. Empty: every tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub include: Vec<String>,
    /// No tool matching one of these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub exclude: Vec<String>,
}

/// Bounds of one call.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinkLimits {
    /// Timeout of one call (the backend statement timeout too, where it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: Option<i32>,
    /// Most rows, messages, keys or objects one call returns (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_rows: Option<i32>,
    /// Most bytes of output one call returns (default: the server's maxOutputBytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 67108864))]
    pub max_bytes: Option<i32>,
    /// Most calls of this link's tools running at once, all clients and agents together
    /// (default 32), so a burst cannot open the backend more than that many times. Further
    /// calls wait for a slot within their own timeout and fail saying so when none frees up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrent_calls: Option<i32>,
}

impl LinkLimits {
    /// Calls of one link running at once when `maxConcurrentCalls` is not set.
    pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;
}

/// The service as a component of the stack topology.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentMeta {
    /// Component name (defaults to the link's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
    /// Component type, e.g. `database`, `queue`, `cache` (defaults from the link type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub r#type: Option<String>,
    /// Group the component belongs to, e.g. `payments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub group: Option<String>,
    /// Namespace where the service runs, when it is not the link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// Free-form attributes shown by the topology tools.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Components this one depends on, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub depends_on: Vec<String>,
}

/// Observed state of an McpLink.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct McpLinkStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and CredentialsResolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The link type (the backend block that is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Names of the tools the link contributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Number of tools the link contributes.
    #[serde(default)]
    pub tool_count: i32,
    /// Whether write tools are registered.
    #[serde(default)]
    pub write: bool,
}

/// The link types, one per backend block: the closed set toolsets dispatch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkType {
    Postgres,
    Cnpg,
    Mongodb,
    Clickhouse,
    S3,
    Kafka,
    Rabbitmq,
    Prometheus,
    Loki,
    Grafana,
    Valkey,
    Argocd,
    Fastapi,
    Git,
}

impl LinkType {
    /// Every link type, in the order of the spec's blocks.
    pub const ALL: [LinkType; 14] = [
        LinkType::Postgres,
        LinkType::Cnpg,
        LinkType::Mongodb,
        LinkType::Clickhouse,
        LinkType::S3,
        LinkType::Kafka,
        LinkType::Rabbitmq,
        LinkType::Prometheus,
        LinkType::Loki,
        LinkType::Grafana,
        LinkType::Valkey,
        LinkType::Argocd,
        LinkType::Fastapi,
        LinkType::Git,
    ];

    /// The block's field name in the spec, also shown in `status.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Postgres => "postgres",
            LinkType::Cnpg => "cnpg",
            LinkType::Mongodb => "mongodb",
            LinkType::Clickhouse => "clickhouse",
            LinkType::S3 => "s3",
            LinkType::Kafka => "kafka",
            LinkType::Rabbitmq => "rabbitmq",
            LinkType::Prometheus => "prometheus",
            LinkType::Loki => "loki",
            LinkType::Grafana => "grafana",
            LinkType::Valkey => "valkey",
            LinkType::Argocd => "argocd",
            LinkType::Fastapi => "fastapi",
            LinkType::Git => "git",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one backend block of a link, borrowed from its spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend<'a> {
    Postgres(&'a PostgresBackend),
    Cnpg(&'a CnpgBackend),
    Mongodb(&'a MongodbBackend),
    Clickhouse(&'a ClickhouseBackend),
    S3(&'a S3Backend),
    Kafka(&'a KafkaBackend),
    Rabbitmq(&'a RabbitmqBackend),
    Prometheus(&'a PrometheusBackend),
    Loki(&'a LokiBackend),
    Grafana(&'a GrafanaBackend),
    Valkey(&'a ValkeyBackend),
    Argocd(&'a ArgocdBackend),
    Fastapi(&'a FastapiBackend),
    Git(&'a GitBackend),
}

impl Backend<'_> {
    /// The link type of this block.
    pub fn link_type(&self) -> LinkType {
        match self {
            Backend::Postgres(_) => LinkType::Postgres,
            Backend::Cnpg(_) => LinkType::Cnpg,
            Backend::Mongodb(_) => LinkType::Mongodb,
            Backend::Clickhouse(_) => LinkType::Clickhouse,
            Backend::S3(_) => LinkType::S3,
            Backend::Kafka(_) => LinkType::Kafka,
            Backend::Rabbitmq(_) => LinkType::Rabbitmq,
            Backend::Prometheus(_) => LinkType::Prometheus,
            Backend::Loki(_) => LinkType::Loki,
            Backend::Grafana(_) => LinkType::Grafana,
            Backend::Valkey(_) => LinkType::Valkey,
            Backend::Argocd(_) => LinkType::Argocd,
            Backend::Fastapi(_) => LinkType::Fastapi,
            Backend::Git(_) => LinkType::Git,
        }
    }
}

/// A link spec whose backend blocks are not exactly one (the CRD refuses it; standalone
/// manifests are checked here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCountError {
    /// The blocks that are set.
    pub set: Vec<LinkType>,
}

impl fmt::Display for BackendCountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.set.is_empty() {
            write!(f, "no backend block is set; set exactly one of: ")?;
            let all: Vec<&str> = LinkType::ALL.iter().map(|t| t.as_str()).collect();
            f.write_str(&all.join(", "))
        } else {
            let set: Vec<&str> = self.set.iter().map(|t| t.as_str()).collect();
            write!(
                f,
                "exactly one backend block may be set, found {}",
                set.join(" and ")
            )
        }
    }
}

impl std::error::Error for BackendCountError {}

impl McpLinkSpec {
    /// The Secret holding the link's credentials: `credentialsSecretRef`, or for a
    /// CloudNativePG link without one, the cluster's `<cluster>-app` Secret.
    pub fn credentials_secret(&self) -> Option<CredentialsSecretRef> {
        match (&self.credentials_secret_ref, &self.cnpg) {
            (Some(reference), _) => Some(reference.clone()),
            (None, Some(cnpg)) => Some(CredentialsSecretRef {
                name: format!("{}-app", cnpg.cluster),
                keys: BTreeMap::new(),
            }),
            (None, None) => None,
        }
    }

    /// The one backend block, or which blocks make the spec invalid.
    pub fn backend(&self) -> Result<Backend<'_>, BackendCountError> {
        let blocks: [Option<Backend<'_>>; 14] = [
            self.postgres.as_ref().map(Backend::Postgres),
            self.cnpg.as_ref().map(Backend::Cnpg),
            self.mongodb.as_ref().map(Backend::Mongodb),
            self.clickhouse.as_ref().map(Backend::Clickhouse),
            self.s3.as_ref().map(Backend::S3),
            self.kafka.as_ref().map(Backend::Kafka),
            self.rabbitmq.as_ref().map(Backend::Rabbitmq),
            self.prometheus.as_ref().map(Backend::Prometheus),
            self.loki.as_ref().map(Backend::Loki),
            self.grafana.as_ref().map(Backend::Grafana),
            self.valkey.as_ref().map(Backend::Valkey),
            self.argocd.as_ref().map(Backend::Argocd),
            self.fastapi.as_ref().map(Backend::Fastapi),
            self.git.as_ref().map(Backend::Git),
        ];
        let set: Vec<Backend<'_>> = blocks.into_iter().flatten().collect();
        match set.as_slice() {
            [one] => Ok(*one),
            _ => Err(BackendCountError {
                set: set.iter().map(Backend::link_type).collect(),
            }),
        }
    }
}
