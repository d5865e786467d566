//! A measurement run by hand, not a test: the latency one read tool call adds per backend, so a
//! change to a toolset's client, governance or output shaping shows up as a number. For each
//! toolset whose server is reachable it builds the link exactly as the server does
//! (`link::build`), warms it up, then calls one representative read tool N times in a row and
//! prints p50 / p90 / p99 per toolset, with the server it ran against. A toolset whose server is
//! unavailable is listed as skipped, with the reason.
//!
//! Servers, as the tests find them:
//! - PostgreSQL on 127.0.0.1:5432 (`LINKMCP_TEST_PG_HOST`/`_PORT`/`_USER`), database `postgres`;
//! - Valkey/Redis on 127.0.0.1:6379 (`LINKMCP_BENCH_VALKEY_HOST`/`_PORT`);
//! - RabbitMQ on 127.0.0.1:5672 with its management API on 15672, user guest/guest
//!   (`LINKMCP_BENCH_RMQ_HOST`);
//! - Kafka: rdkafka's in-process MockCluster;
//! - S3: `moto_server` started on a free port (`scripts/test-services.sh` installs it), or the
//!   endpoint in `LINKMCP_BENCH_S3_ENDPOINT` (which must accept any access key);
//! - ClickHouse: `clickhouse-server` started by `scripts/clickhouse.sh` on a free port, or the
//!   HTTP URL in `LINKMCP_BENCH_CH_URL` (user `default`, no password);
//! - MongoDB: `nx-27017` started on a free port, or the server at `LINKMCP_TEST_MONGO_PORT`.
//! - Prometheus: Debian's `prometheus` started on a free port, scraping itself, or the server
//!   at `LINKMCP_BENCH_PROM_URL`;
//! - Loki, Grafana, Argo CD: none can be installed here, so an in-process HTTP server answers
//!   one recorded response of each documented API; their figures are the toolset's own cost
//!   (HTTP client, parsing, rendering, governance) plus loopback HTTP, not a real server's.
//!
//! Servers it starts are stopped by a watchdog when it exits.
//!
//! ```sh
//! cargo run --release --example read_latency -- [--calls N]
//! ```

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials as AwsCredentials, Region};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use linkmcp_api::McpLinkSpec;
use linkmcp_toolsets::compliance::result_text;
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::{self, LinkContext};
use linkmcp_toolsets::{CallContext, Toolset};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rmcp::model::JsonObject;
use serde_json::{Value, json};

/// Calls made before measuring, so connection setup and first-use costs stay out of the figures.
const WARMUP_CALLS: usize = 20;
/// Default number of measured calls per toolset.
const DEFAULT_CALLS: usize = 500;
/// The password of the `linkmcp` user of a ClickHouse server this example starts.
const CH_PASSWORD: &str = "read-latency-bench-pw";
const S3_ACCESS_KEY: &str = "AKIALINKMCPBENCH0001";
const S3_SECRET_KEY: &str = "linkmcp-bench-secret-Xc4vR8tL2mQ9";

/// The measured latencies of one toolset.
struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

/// One line of the table.
struct Row {
    toolset: &'static str,
    tool: &'static str,
    server: String,
    outcome: Result<Stats, String>,
}

/// What a backend's setup hands to the measurement.
struct Target {
    toolset: Arc<dyn Toolset>,
    args: JsonObject,
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("linkmcp-bench-{}-{nanos}-{tag}", std::process::id())
}

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

fn ctx() -> CallContext {
    CallContext::new("bench").with_timeout(Duration::from_secs(10))
}

/// The link's served toolset, built through the same dispatch and governance as the server's.
fn build(
    block_key: &str,
    block: Value,
    credentials: &Credentials,
    prefix: &str,
) -> Result<Arc<dyn Toolset>, String> {
    let spec: McpLinkSpec = serde_json::from_value(json!({
        "serverRef": {"name": "bench"},
        block_key: block,
        "writeAccess": true,
    }))
    .map_err(|e| format!("link spec: {e}"))?;
    let link = LinkContext {
        name: "bench",
        namespace: "default",
        spec: &spec,
        credentials,
    };
    link::build(&link, prefix).map_err(|e| e.to_string())
}

/// One call that must succeed (setup and warm-up); its error text otherwise.
async fn call_ok(toolset: &dyn Toolset, tool: &str, args: JsonObject) -> Result<Value, String> {
    let result = toolset.call(tool, args, &ctx()).await;
    if result.is_error == Some(true) {
        return Err(format!("{tool}: {}", result_text(&result)));
    }
    Ok(result.structured_content.unwrap_or(Value::Null))
}

fn reachable(host: &str, port: u16) -> Result<(), String> {
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
    let mut last = format!("{host}:{port} resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("nothing listens on {host}:{port} ({e})"),
        }
    }
    Err(last)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Where `name` is: on PATH, or in ~/.cache/linkmcp/bin where the repo's scripts install it.
fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cache/linkmcp/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Starts `binary args...` in the background under a watchdog shell that stops it when this
/// process exits, and waits until it listens on `port`.
fn spawn_watched(binary: &PathBuf, args: &str, port: u16) -> Result<(), String> {
    let script = format!(
        "( \"$0\" {args} >/dev/null 2>&1 & srv=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; \
         kill $srv 2>/dev/null ) >/dev/null 2>&1 &",
        pid = std::process::id()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    if !status.success() {
        return Err(format!("cannot start {}", binary.display()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while reachable("127.0.0.1", port).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not open port {port} within 60 s",
                binary.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Warms the toolset up, then times `calls` sequential calls of `tool`.
async fn measure(target: &Target, tool: &str, calls: usize) -> Result<Stats, String> {
    for _ in 0..WARMUP_CALLS {
        call_ok(target.toolset.as_ref(), tool, target.args.clone()).await?;
    }
    let context = ctx();
    let mut samples = Vec::with_capacity(calls);
    let mut failed = 0usize;
    let mut first_error = None;
    for _ in 0..calls {
        let args = target.args.clone();
        let started = Instant::now();
        let result = target.toolset.call(tool, args, &context).await;
        samples.push(started.elapsed());
        if result.is_error == Some(true) {
            failed += 1;
            first_error.get_or_insert_with(|| result_text(&result));
        }
    }
    if let Some(error) = first_error {
        return Err(format!("{failed} of {calls} calls failed, e.g. {error}"));
    }
    if samples.is_empty() {
        return Err("no calls made".to_owned());
    }
    samples.sort();
    Ok(Stats {
        p50: percentile(&samples, 50),
        p90: percentile(&samples, 90),
        p99: percentile(&samples, 99),
    })
}

async fn postgres(calls: usize) -> (String, Result<Stats, String>) {
    let host = env("LINKMCP_TEST_PG_HOST", "127.0.0.1");
    let port = env("LINKMCP_TEST_PG_PORT", "5432");
    let user = env("LINKMCP_TEST_PG_USER", "postgres");
    let server = format!("postgresql://{user}@{host}:{port}/postgres");
    let outcome = async {
        let port: u16 = port
            .parse()
            .map_err(|e| format!("LINKMCP_TEST_PG_PORT: {e}"))?;
        reachable(&host, port)?;
        let credentials = Credentials::new(BTreeMap::from([("username".into(), user.clone())]));
        let toolset = build(
            "postgres",
            json!({"host": host, "port": port, "database": "postgres", "sslMode": "disable"}),
            &credentials,
            "pg",
        )?;
        let target = Target {
            toolset,
            args: object(json!({"sql": "select 1"})),
        };
        measure(&target, "pg_query", calls).await
    }
    .await;
    (server, outcome)
}

async fn valkey(calls: usize) -> (String, Result<Stats, String>) {
    let host = env("LINKMCP_BENCH_VALKEY_HOST", "127.0.0.1");
    let port = env("LINKMCP_BENCH_VALKEY_PORT", "6379");
    let server = format!("redis://{host}:{port}");
    let outcome = async {
        let port: u16 = port
            .parse()
            .map_err(|e| format!("LINKMCP_BENCH_VALKEY_PORT: {e}"))?;
        reachable(&host, port)?;
        let toolset = build(
            "valkey",
            json!({"host": host, "port": port}),
            &Credentials::default(),
            "valkey",
        )?;
        let key = unique("key");
        call_ok(
            toolset.as_ref(),
            "valkey_set",
            object(json!({"key": key, "value": "a value of some bytes", "ttl_seconds": 300})),
        )
        .await?;
        let target = Target {
            toolset: toolset.clone(),
            args: object(json!({"key": key})),
        };
        let stats = measure(&target, "valkey_get", calls).await;
        let _ = call_ok(
            toolset.as_ref(),
            "valkey_delete",
            object(json!({"keys": [key]})),
        )
        .await;
        stats
    }
    .await;
    (server, outcome)
}

async fn rabbitmq(calls: usize) -> (String, Result<Stats, String>) {
    let host = env("LINKMCP_BENCH_RMQ_HOST", "127.0.0.1");
    let server = format!("amqp://{host}:5672, management http://{host}:15672");
    let outcome = async {
        reachable(&host, 5672)?;
        reachable(&host, 15672).map_err(|e| format!("management API: {e}"))?;
        let connection = Connection::connect(
            &format!("amqp://guest:guest@{host}:5672/%2f"),
            ConnectionProperties::default(),
        )
        .await
        .map_err(|e| format!("AMQP connect: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("AMQP channel: {e}"))?;
        let queue = unique("queue");
        let mut arguments = FieldTable::default();
        // The broker deletes the queue by itself if this run ends before its cleanup.
        arguments.insert("x-expires".into(), AMQPValue::LongInt(300_000));
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                arguments,
            )
            .await
            .map_err(|e| format!("declaring {queue}: {e}"))?;
        let stats = async {
            let toolset = build(
                "rabbitmq",
                json!({"host": host}),
                &Credentials::default(),
                "rmq",
            )?;
            let target = Target {
                toolset,
                args: object(json!({"queue": queue})),
            };
            measure(&target, "rmq_queue_stats", calls).await
        }
        .await;
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        stats
    }
    .await;
    (server, outcome)
}

async fn kafka(calls: usize) -> (String, Result<Stats, String>) {
    let cluster: MockCluster<'static, DefaultProducerContext> = match MockCluster::new(1) {
        Ok(cluster) => cluster,
        Err(e) => return ("rdkafka MockCluster".to_owned(), Err(e.to_string())),
    };
    let bootstrap = cluster.bootstrap_servers();
    let server = format!("rdkafka MockCluster, 1 broker ({bootstrap})");
    let outcome = async {
        cluster
            .create_topic("orders", 3, 1)
            .map_err(|e| format!("creating topic: {e}"))?;
        let toolset = build(
            "kafka",
            json!({"bootstrapServers": [bootstrap]}),
            &Credentials::default(),
            "kafka",
        )?;
        let target = Target {
            toolset,
            args: object(json!({"topic": "orders"})),
        };
        measure(&target, "kafka_describe_topic", calls).await
    }
    .await;
    (server, outcome)
}

/// The S3 endpoint: `LINKMCP_BENCH_S3_ENDPOINT`, or a `moto_server` started here.
fn s3_endpoint() -> Result<(String, String), String> {
    if let Ok(endpoint) = std::env::var("LINKMCP_BENCH_S3_ENDPOINT") {
        return Ok((endpoint.clone(), endpoint));
    }
    let binary = find_binary("moto_server").ok_or(
        "moto_server is neither on PATH nor in ~/.cache/linkmcp/bin (run scripts/test-services.sh) \
         and LINKMCP_BENCH_S3_ENDPOINT is not set",
    )?;
    let port = free_port()?;
    spawn_watched(&binary, &format!("-H 127.0.0.1 -p {port}"), port)?;
    let endpoint = format!("http://127.0.0.1:{port}");
    Ok((endpoint.clone(), format!("moto_server at {endpoint}")))
}

async fn s3(calls: usize) -> (String, Result<Stats, String>) {
    let (endpoint, server) = match s3_endpoint() {
        Ok(found) => found,
        Err(e) => return ("S3".to_owned(), Err(e)),
    };
    let outcome = async {
        let admin = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .force_path_style(true)
                .credentials_provider(AwsCredentials::new(
                    S3_ACCESS_KEY,
                    S3_SECRET_KEY,
                    None,
                    None,
                    "bench",
                ))
                .build(),
        );
        let bucket = unique("bucket");
        admin
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map_err(|e| format!("creating bucket {bucket}: {e}"))?;
        let credentials = Credentials::new(BTreeMap::from([
            ("accessKeyId".to_owned(), S3_ACCESS_KEY.to_owned()),
            ("secretAccessKey".to_owned(), S3_SECRET_KEY.to_owned()),
        ]));
        let stats = async {
            let toolset = build(
                "s3",
                json!({"endpoint": endpoint, "region": "us-east-1", "pathStyle": true}),
                &credentials,
                "s3",
            )?;
            call_ok(
                toolset.as_ref(),
                "s3_upload_text",
                object(
                    json!({"bucket": bucket, "key": "reports/latest.csv", "text": "id,n\n1,2\n"}),
                ),
            )
            .await?;
            let target = Target {
                toolset,
                args: object(json!({
                    "bucket": bucket,
                    "key": "reports/latest.csv",
                    "preview_bytes": 0,
                })),
            };
            measure(&target, "s3_get_object", calls).await
        }
        .await;
        let _ = admin
            .delete_object()
            .bucket(&bucket)
            .key("reports/latest.csv")
            .send()
            .await;
        let _ = admin.delete_bucket().bucket(&bucket).send().await;
        stats
    }
    .await;
    (server, outcome)
}

/// The ClickHouse HTTP URL and its credentials: `LINKMCP_BENCH_CH_URL` (user `default`), or a
/// server started here by `scripts/clickhouse.sh`.
fn clickhouse_server() -> Result<(String, Credentials, String), String> {
    if let Ok(url) = std::env::var("LINKMCP_BENCH_CH_URL") {
        return Ok((url.clone(), Credentials::default(), url));
    }
    if find_binary("clickhouse-server").is_none() {
        return Err(
            "clickhouse-server is not installed (scripts/test-services.sh) and \
             LINKMCP_BENCH_CH_URL is not set"
                .to_owned(),
        );
    }
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("linkmcp-ch-bench-{}-{port}", std::process::id()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .arg(&dir)
        .arg(port.to_string())
        .env("LINKMCP_TEST_CH_PASSWORD", CH_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("scripts/clickhouse.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/clickhouse.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let url = format!("http://127.0.0.1:{port}");
    let credentials = Credentials::new(BTreeMap::from([
        ("username".to_owned(), "linkmcp".to_owned()),
        ("password".to_owned(), CH_PASSWORD.to_owned()),
    ]));
    let server = format!("clickhouse-server at {url} (scripts/clickhouse.sh)");
    Ok((url, credentials, server))
}

async fn clickhouse(calls: usize) -> (String, Result<Stats, String>) {
    let (url, credentials, server) = match clickhouse_server() {
        Ok(found) => found,
        Err(e) => return ("ClickHouse".to_owned(), Err(e)),
    };
    let outcome = async {
        let toolset = build(
            "clickhouse",
            json!({"url": url, "database": "default"}),
            &credentials,
            "ch",
        )?;
        let target = Target {
            toolset,
            args: object(json!({"sql": "select 1"})),
        };
        measure(&target, "ch_query", calls).await
    }
    .await;
    (server, outcome)
}

/// The MongoDB port: `LINKMCP_TEST_MONGO_PORT`, or an in-memory `nx-27017` started here.
fn mongo_server() -> Result<(u16, String), String> {
    if let Ok(port) = std::env::var("LINKMCP_TEST_MONGO_PORT") {
        let port: u16 = port
            .parse()
            .map_err(|e| format!("LINKMCP_TEST_MONGO_PORT: {e}"))?;
        reachable("127.0.0.1", port)?;
        return Ok((port, format!("mongodb://127.0.0.1:{port}")));
    }
    let binary = find_binary("nx-27017").ok_or(
        "nx-27017 is not installed (pip install nx-27017) and LINKMCP_TEST_MONGO_PORT is not set",
    )?;
    let port = free_port()?;
    spawn_watched(
        &binary,
        &format!("--host 127.0.0.1 -p {port} --db memory"),
        port,
    )?;
    Ok((
        port,
        format!("nx-27017 (in-memory) at mongodb://127.0.0.1:{port}"),
    ))
}

async fn mongodb(calls: usize) -> (String, Result<Stats, String>) {
    let (port, server) = match mongo_server() {
        Ok(found) => found,
        Err(e) => return ("MongoDB".to_owned(), Err(e)),
    };
    let outcome = async {
        let database = unique("db").replace('-', "_");
        let toolset = build(
            "mongodb",
            json!({"host": "127.0.0.1", "port": port, "database": database}),
            &Credentials::default(),
            "mongo",
        )?;
        let documents: Vec<Value> = (0..100)
            .map(|i| json!({"_id": i, "n": i, "status": if i % 2 == 0 { "paid" } else { "open" }}))
            .collect();
        call_ok(
            toolset.as_ref(),
            "mongo_insert",
            object(json!({"collection": "orders", "documents": documents})),
        )
        .await?;
        let target = Target {
            toolset,
            args: object(json!({"collection": "orders", "filter": {"status": "paid"}})),
        };
        measure(&target, "mongo_count", calls).await
    }
    .await;
    (server, outcome)
}

/// A Prometheus to query: `LINKMCP_BENCH_PROM_URL`, or Debian's `prometheus` started on a free
/// port with a config (scraping itself every second) in a temporary directory.
fn prometheus_server() -> Result<(String, String), String> {
    if let Ok(url) = std::env::var("LINKMCP_BENCH_PROM_URL") {
        return Ok((url.clone(), format!("Prometheus at {url}")));
    }
    let binary = find_binary("prometheus")
        .ok_or("prometheus is not installed (scripts/test-services.sh installs it)")?;
    let port = free_port()?;
    let dir = std::env::temp_dir().join(unique("prometheus"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\n\
             scrape_configs:\n  - job_name: prometheus\n    \
             static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", config.display()))?;
    let data = dir.join("data");
    spawn_watched(
        &binary,
        &format!(
            "--config.file={} --storage.tsdb.path={} --web.listen-address=127.0.0.1:{port}",
            config.display(),
            data.display()
        ),
        port,
    )?;
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok((
        format!("http://127.0.0.1:{port}"),
        format!("Prometheus {version} (Debian), scraping itself"),
    ))
}

async fn prometheus(calls: usize) -> (String, Result<Stats, String>) {
    let (url, server) = match prometheus_server() {
        Ok(found) => found,
        Err(e) => return ("Prometheus".to_owned(), Err(e)),
    };
    let outcome = async {
        let toolset = build(
            "prometheus",
            json!({"url": url}),
            &Credentials::default(),
            "prom",
        )?;
        // The first scrape lands about a second after start: wait for a non-empty `up`.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = call_ok(
                toolset.as_ref(),
                "prom_query",
                object(json!({"query": "up"})),
            )
            .await;
            match answer {
                Ok(value) if value.to_string().contains("\"job\":\"prometheus\"") => break,
                _ if Instant::now() > deadline => {
                    return Err("Prometheus has no `up` series after 30 s".to_owned());
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let target = Target {
            toolset,
            args: object(json!({"query": "up"})),
        };
        measure(&target, "prom_query", calls).await
    }
    .await;
    (server, outcome)
}

/// Serves one recorded JSON answer on every path of a loopback port; returns the base URL.
async fn recorded(answer: Value) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind a loopback port: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let router = axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { axum::Json(answer) }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}

/// One read call of an HTTP toolset against a recorded answer.
async fn recorded_call(
    block_key: &str,
    block: Value,
    prefix: &str,
    tool: &str,
    args: Value,
    answer: Value,
    calls: usize,
) -> Result<Stats, String> {
    let url = recorded(answer).await?;
    let mut block = block;
    block["url"] = json!(url);
    let credentials = Credentials::new(BTreeMap::from([(
        "token".to_owned(),
        "read-latency-token".to_owned(),
    )]));
    let toolset = build(block_key, block, &credentials, prefix)?;
    let target = Target {
        toolset,
        args: object(args),
    };
    measure(&target, tool, calls).await
}

const RECORDED: &str = "recorded response (in-process HTTP server)";

async fn loki(calls: usize) -> (String, Result<Stats, String>) {
    // Loki's documented /loki/api/v1/query_range answer: 2 streams of 10 lines each.
    let streams: Vec<Value> = ["info", "error"]
        .iter()
        .map(|level| {
            let values: Vec<Value> = (0..10)
                .map(|i| {
                    json!([
                        format!("{}", 1_569_266_497_240_578_000_u64 - i * 1_000_000_000),
                        format!("level={level} msg=\"request served\" path=/orders/{i} status=200")
                    ])
                })
                .collect();
            json!({"stream": {"app": "api", "namespace": "shop", "level": level}, "values": values})
        })
        .collect();
    let answer = json!({"status": "success", "data": {"resultType": "streams", "result": streams}});
    let outcome = recorded_call(
        "loki",
        json!({}),
        "loki",
        "loki_query_range",
        json!({"query": "{app=\"api\"}", "since": "1h"}),
        answer,
        calls,
    )
    .await;
    (RECORDED.to_owned(), outcome)
}

async fn grafana(calls: usize) -> (String, Result<Stats, String>) {
    // Grafana's documented /api/search answer.
    let answer = json!([
        {"id": 163, "uid": "000000163", "title": "Folder", "url": "/dashboards/f/000000163/folder", "type": "dash-folder", "tags": [], "isStarred": false},
        {"id": 1, "uid": "cIBgcSjkk", "title": "Production Overview", "url": "/d/cIBgcSjkk/production-overview", "type": "dash-db", "tags": ["prod"], "isStarred": true, "folderUid": "000000163", "folderTitle": "Folder"}
    ]);
    let outcome = recorded_call(
        "grafana",
        json!({}),
        "grafana",
        "grafana_list_dashboards",
        json!({"query": "production"}),
        answer,
        calls,
    )
    .await;
    (RECORDED.to_owned(), outcome)
}

async fn argocd(calls: usize) -> (String, Result<Stats, String>) {
    // Argo CD's /api/v1/applications answer (Application objects as `argocd app get -o json`).
    let items: Vec<Value> = ["api", "web", "worker"]
        .iter()
        .map(|name| {
            json!({
                "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"project": "platform",
                         "source": {"repoURL": "https://git.example.com/deploy.git", "path": format!("apps/{name}"), "targetRevision": "main"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": name}},
                "status": {"sync": {"status": "Synced", "revision": "4e3b2f1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"},
                           "health": {"status": "Healthy"}}
            })
        })
        .collect();
    let answer = json!({"metadata": {"resourceVersion": "123"}, "items": items});
    let outcome = recorded_call(
        "argocd",
        json!({}),
        "argocd",
        "argocd_list_applications",
        json!({}),
        answer,
        calls,
    )
    .await;
    (RECORDED.to_owned(), outcome)
}

fn parse_calls() -> Result<usize, String> {
    let mut calls = DEFAULT_CALLS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--calls" | "-n" => {
                calls = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--calls needs a positive number")?;
            }
            "--help" | "-h" => {
                return Err("usage: read_latency [--calls N]  (default 500)".to_owned());
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: read_latency [--calls N]"
                ));
            }
        }
    }
    Ok(calls)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let calls = match parse_calls() {
        Ok(calls) => calls,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "read_latency: {WARMUP_CALLS} warm-up calls, then {calls} sequential calls per toolset"
    );

    let mut rows = Vec::new();
    macro_rules! run {
        ($name:literal, $tool:literal, $backend:ident) => {{
            let (server, outcome) = $backend(calls).await;
            rows.push(Row {
                toolset: $name,
                tool: $tool,
                server,
                outcome,
            });
        }};
    }
    run!("postgres", "pg_query", postgres);
    run!("valkey", "valkey_get", valkey);
    run!("rabbitmq", "rmq_queue_stats", rabbitmq);
    run!("kafka", "kafka_describe_topic", kafka);
    run!("s3", "s3_get_object", s3);
    run!("clickhouse", "ch_query", clickhouse);
    run!("mongodb", "mongo_count", mongodb);
    run!("prometheus", "prom_query", prometheus);
    run!("loki", "loki_query_range", loki);
    run!("grafana", "grafana_list_dashboards", grafana);
    run!("argocd", "argocd_list_applications", argocd);

    println!();
    println!(
        "{:<11} {:<24} {:>9} {:>9} {:>9}  server",
        "toolset", "tool", "p50 ms", "p90 ms", "p99 ms"
    );
    for row in &rows {
        match &row.outcome {
            Ok(stats) => println!(
                "{:<11} {:<24} {:>9} {:>9} {:>9}  {}",
                row.toolset,
                row.tool,
                ms(stats.p50),
                ms(stats.p90),
                ms(stats.p99),
                row.server
            ),
            Err(reason) => println!(
                "{:<11} {:<24} skipped: {} ({})",
                row.toolset,
                row.tool,
                reason.replace('\n', " "),
                row.server
            ),
        }
    }
    std::process::ExitCode::SUCCESS
}
