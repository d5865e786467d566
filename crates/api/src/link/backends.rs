//! The typed connection block of each link type. Exactly one is set on an McpLink.
//!
//! Blocks hold where a service is and how to talk to it — never a credential: those come from
//! the link's `credentialsSecretRef` (the credential names each type reads are in its doc).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{HTTP_URL_MESSAGE, HTTP_URL_RULE, TlsOptions};

macro_rules! port_default {
    ($name:ident, $port:expr) => {
        fn $name() -> i32 {
            $port
        }
    };
}
port_default!(pg_port, 5432);
port_default!(mongo_port, 27017);
port_default!(amqp_port, 5672);
port_default!(redis_port, 6379);

/// PostgreSQL. Credentials: `username`, `password`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostgresBackend {
    /// Host name or IP of the PostgreSQL server (e.g. `db.data.svc`).
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port.
    #[serde(default = "pg_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Database to connect to.
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// TLS mode, as libpq's sslmode.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// Schemas the list and describe tools show. Empty: every schema but the system ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub schemas: Vec<String>,
}

/// libpq sslmode.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A CloudNativePG cluster: host `<cluster>-rw` (or `-ro`) and, unless the link names its own
/// credentialsSecretRef, the `<cluster>-app` Secret (`username`, `password`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CnpgBackend {
    /// Name of the CloudNativePG `Cluster` in the link's namespace.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new(crate::common::DNS_LABEL_RULE).message(crate::common::DNS_LABEL_MESSAGE))]
    pub cluster: String,
    /// Database to connect to.
    #[serde(default = "cnpg_database")]
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// Which CloudNativePG Service to use: `rw` (primary) or `ro` (replicas). Write tools need
    /// `rw`.
    #[serde(default)]
    pub service: CnpgService,
    /// TLS mode, as libpq's sslmode.
    #[serde(default = "cnpg_ssl")]
    pub ssl_mode: SslMode,
}

fn cnpg_database() -> String {
    "app".into()
}
fn cnpg_ssl() -> SslMode {
    SslMode::Require
}

/// CloudNativePG Service suffix.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CnpgService {
    #[default]
    Rw,
    Ro,
}

/// MongoDB. Credentials: `username`, `password`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MongodbBackend {
    /// Host name or IP.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port.
    #[serde(default = "mongo_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Database the tools work in.
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
    /// Database to authenticate against (defaults to `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub auth_source: Option<String>,
    /// Replica set name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub replica_set: Option<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
}

/// ClickHouse over its HTTP interface. Credentials: `username`, `password`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClickhouseBackend {
    /// HTTP interface URL, e.g. `http://clickhouse.data:8123`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Default database.
    #[serde(default = "ch_database")]
    #[schemars(length(min = 1, max = 63))]
    pub database: String,
}

fn ch_database() -> String {
    "default".into()
}

/// S3 or an S3-compatible store (SeaweedFS, MinIO). Credentials: `accessKeyId`,
/// `secretAccessKey`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Backend {
    /// Endpoint URL for S3-compatible stores; absent: AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub endpoint: Option<String>,
    /// Region.
    #[serde(default = "s3_region")]
    #[schemars(length(min = 1, max = 64))]
    pub region: String,
    /// Restrict the tools to this bucket. Absent: every bucket the credentials can list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 63))]
    pub bucket: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by SeaweedFS and MinIO.
    #[serde(default)]
    pub path_style: bool,
}

fn s3_region() -> String {
    "us-east-1".into()
}

/// Kafka. Credentials: `username`, `password` (the sasl_* protocols); `ca.crt`, and `tls.crt`
/// with `tls.key` for mutual TLS (the ssl and sasl_ssl protocols).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaBackend {
    /// Bootstrap brokers as `host:port`.
    #[schemars(length(min = 1, max = 16), inner(length(min = 3, max = 260)))]
    #[x_kube(validation = kube::core::Rule::new("self.all(b, b.matches('^[^:]+:[0-9]{1,5}$'))").message("each bootstrap server must be host:port"))]
    pub bootstrap_servers: Vec<String>,
    /// Security protocol.
    #[serde(default)]
    pub security_protocol: KafkaSecurity,
    /// SASL mechanism, for the sasl_* protocols.
    #[serde(default)]
    pub sasl_mechanism: SaslMechanism,
    /// Topics the tools may see and use (exact names or globs). Empty: every topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 249)))]
    pub topics: Vec<String>,
    /// TLS of the ssl and sasl_ssl protocols: broker certificates are verified against `ca.crt`
    /// from the credentials, else the system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// Kafka security.protocol.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaSecurity {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

/// Kafka SASL mechanism.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SaslMechanism {
    #[default]
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

/// RabbitMQ: AMQP for publishing, the management HTTP API for listing and peeking.
/// Credentials: `username`, `password`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RabbitmqBackend {
    /// Host name or IP.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// AMQP port.
    #[serde(default = "amqp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Virtual host.
    #[serde(default = "rmq_vhost")]
    #[schemars(length(min = 1, max = 255))]
    pub vhost: String,
    /// Management API URL. Defaults to `http://<host>:15672`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub management_url: Option<String>,
    /// Use AMQPS.
    #[serde(default)]
    pub tls: bool,
}

fn rmq_vhost() -> String {
    "/".into()
}

/// Prometheus HTTP API. Credentials (optional): `token` (bearer) or `username`, `password`
/// (basic), and `ca.crt` for TLS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusBackend {
    /// Base URL, e.g. `http://prometheus-operated.monitoring:9090`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// TLS: the server certificate is verified against `ca.crt` from the credentials, else the
    /// system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// Loki HTTP API. Credentials (optional): `token` (bearer) or `username`, `password` (basic),
/// and `ca.crt` for TLS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LokiBackend {
    /// Base URL, e.g. `http://loki-gateway.monitoring`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Tenant sent as `X-Scope-OrgID` (multi-tenant Loki).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub tenant_id: Option<String>,
    /// TLS: the server certificate is verified against `ca.crt` from the credentials, else the
    /// system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// Grafana HTTP API. Credentials: `token` (a service account token) or `username`, `password`
/// (basic auth), and `ca.crt` for TLS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaBackend {
    /// Base URL, e.g. `http://grafana.monitoring`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Organisation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub org_id: Option<i32>,
    /// TLS: the server certificate is verified against `ca.crt` from the credentials, else the
    /// system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// Valkey or Redis. Credentials (optional): `password`, and `username` for ACL users.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValkeyBackend {
    /// Host name or IP.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port.
    #[serde(default = "redis_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Logical database number.
    #[serde(default)]
    #[schemars(range(min = 0, max = 15))]
    pub db: i32,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
    /// Restrict every tool to keys with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub key_prefix: Option<String>,
}

/// Argo CD API. Credentials: `token` (an Argo CD account token), and `ca.crt` for TLS.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArgocdBackend {
    /// Base URL of the Argo CD server, e.g. `https://argocd-server.argocd`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Projects the tools may see. Empty: every project the token can read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub projects: Vec<String>,
    /// TLS: the server certificate is verified against `ca.crt` from the credentials, else the
    /// system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

/// An HTTP API described by OpenAPI (FastAPI or any other). Credentials (optional): `token`
/// (bearer) or `apiKey` (sent in the header named by `apiKeyHeader`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FastapiBackend {
    /// Base URL of the API, e.g. `http://orders.shop:8000`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Path of the OpenAPI document.
    #[serde(default = "openapi_path")]
    #[schemars(length(min = 1, max = 1024))]
    pub openapi_path: String,
    /// Header carrying the `apiKey` credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub api_key_header: Option<String>,
    /// Most typed operation tools generated from the OpenAPI document.
    #[serde(default = "max_operations")]
    #[schemars(range(min = 0, max = 500))]
    pub max_operations: i32,
    /// TLS: the server certificate is verified against `ca.crt` from the credentials, else the
    /// system roots; `insecureSkipVerify` turns verification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

fn openapi_path() -> String {
    "/openapi.json".into()
}
fn max_operations() -> i32 {
    50
}

/// A git repository of source code, cloned read-only. Credentials (private repositories):
/// `token`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitBackend {
    /// Repository URL (https).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Branch, tag or commit. Defaults to the repository's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub r#ref: Option<String>,
    /// Path globs the tools may read. Empty: the whole repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 1024)))]
    pub paths: Vec<String>,
}
