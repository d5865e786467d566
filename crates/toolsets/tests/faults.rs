//! Backends failing under a link, and what a caller sees: a clear error, no hang, and the next
//! call working again once the backend is back.
//!
//! - Redis killed in the middle of a call (frozen with `DEBUG SLEEP`, then SIGKILL), then
//!   started again on the same port: the call in flight fails naming the server, a call while
//!   it is down fails the same way, and the first call after the restart succeeds.
//! - PostgreSQL stopped (`pg_ctl stop -m fast`) under a running query, then started again: the
//!   query fails saying the server ended the connection, calls while it is down say it cannot
//!   be reached, and the pool reconnects once it is back.
//! - RabbitMQ unreachable, then reachable again (the local broker behind a TCP proxy whose
//!   connections are cut and whose port refuses connections while it is down): the AMQP and
//!   management tools fail naming the broker, and behave as before once it is back.
//! - An S3 endpoint answering 500 to everything, and one answering too slowly: the calls fail
//!   with the status or a timeout within the link's limit, after at most the configured
//!   retries.
//!
//! Redis is a private `redis-server` on a free port, PostgreSQL a private cluster made with
//! `initdb` on a free port (scripts/test-services.sh installs both); S3 is an in-process HTTP
//! server.
#![cfg(all(
    feature = "valkey",
    feature = "s3",
    feature = "postgres",
    feature = "rabbitmq"
))]
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use linkmcp_api::McpLinkSpec;
use linkmcp_toolsets::compliance::result_text;
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::{self, LinkContext};
use linkmcp_toolsets::{CallContext, Toolset};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{Value, json};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn build(block_key: &str, block: Value, limits: Value) -> Arc<dyn Toolset> {
    build_with(
        block_key,
        block,
        limits,
        &[
            ("accessKeyId", "AKIAFAULTS"),
            ("secretAccessKey", "faults-secret"),
        ],
    )
}

/// A link of `block_key` with `credentials`, writes enabled.
fn build_with(
    block_key: &str,
    block: Value,
    limits: Value,
    credentials: &[(&str, &str)],
) -> Arc<dyn Toolset> {
    let spec: McpLinkSpec = serde_json::from_value(json!({
        "serverRef": {"name": "faults"},
        block_key: block,
        "limits": limits,
        "writeAccess": true,
    }))
    .unwrap();
    let credentials = Credentials::new(
        credentials
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let context = LinkContext {
        name: "faults",
        namespace: "default",
        spec: &spec,
        credentials: &credentials,
    };
    link::build(&context, block_key_prefix(block_key)).unwrap()
}

fn block_key_prefix(block_key: &str) -> &'static str {
    match block_key {
        "valkey" => "valkey",
        "postgres" => "pg",
        "rabbitmq" => "rmq",
        _ => "s3",
    }
}

async fn call(toolset: &dyn Toolset, tool: &str, timeout: Duration) -> (CallToolResult, Duration) {
    call_with(toolset, tool, JsonObject::new(), timeout).await
}

async fn call_with(
    toolset: &dyn Toolset,
    tool: &str,
    args: JsonObject,
    timeout: Duration,
) -> (CallToolResult, Duration) {
    let ctx = CallContext::new("faults").with_timeout(timeout);
    let started = Instant::now();
    let result = toolset.call(tool, args, &ctx).await;
    (result, started.elapsed())
}

/// A private Redis, killed when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server did not start ({e}): run scripts/test-services.sh")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    /// Freezes the server for `seconds` (it stops answering everyone).
    fn freeze(&self, seconds: u32) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let command = format!(
            "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{seconds}\r\n",
            seconds.to_string().len()
        );
        stream.write_all(command.as_bytes()).unwrap();
        stream
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn redis_killed_mid_call_fails_clearly_and_the_link_recovers_when_it_is_back() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let valkey = build(
        "valkey",
        json!({"host": "127.0.0.1", "port": port}),
        json!({"timeoutSeconds": 5}),
    );
    let timeout = Duration::from_secs(5);
    let (first, _) = call(valkey.as_ref(), "valkey_dbsize", timeout).await;
    assert_ne!(first.is_error, Some(true), "{}", result_text(&first));

    // A call in flight while the server is frozen, and the server killed under it.
    let _frozen = redis.freeze(3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let in_flight = {
        let valkey = valkey.clone();
        tokio::spawn(async move { call(valkey.as_ref(), "valkey_dbsize", timeout).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    let (mid_call, took) = in_flight.await.unwrap();
    assert_eq!(mid_call.is_error, Some(true), "{}", result_text(&mid_call));
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    let said = result_text(&mid_call);
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");

    // While it is down: the same clear error, in bounded time.
    let (down, took) = call(valkey.as_ref(), "valkey_dbsize", timeout).await;
    assert_eq!(down.is_error, Some(true));
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    let said = result_text(&down);
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");

    // Back on the same port: the next call reconnects and answers.
    let _redis = RedisServer::start(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (again, _) = call(valkey.as_ref(), "valkey_dbsize", timeout).await;
        if again.is_error != Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the link did not recover: {}",
            result_text(&again)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A private PostgreSQL cluster in a temporary directory, stopped and removed when dropped.
/// As root, its commands run as the `postgres` user (initdb refuses root).
struct PostgresServer {
    dir: std::path::PathBuf,
    port: u16,
}

impl PostgresServer {
    fn bin(tool: &str) -> std::path::PathBuf {
        let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| {
                dirs.filter_map(Result::ok)
                    .map(|d| d.path().join("bin").join(tool))
                    .filter(|p| p.exists())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found.pop().unwrap_or_else(|| {
            panic!("{tool} of PostgreSQL not found under /usr/lib/postgresql: run scripts/test-services.sh")
        })
    }

    fn run(args: &[&str]) {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            Command::new(args[0])
        };
        let args = if root { args } else { &args[1..] };
        let out = command.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start_new() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("linkmcp-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").arg("postgres").arg(&dir).status();
        let data = dir.join("data");
        let initdb = Self::bin("initdb");
        Self::run(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let server = Self { dir, port };
        server.start();
        server
    }

    fn ctl(&self, args: &[&str]) {
        let pg_ctl = Self::bin("pg_ctl");
        let data = self.dir.join("data");
        let mut all = vec![pg_ctl.to_str().unwrap(), "-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::run(&all);
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        self.ctl(&["-w", "-o", &options, "-l", log.to_str().unwrap(), "start"]);
    }

    fn stop(&self) {
        self.ctl(&["-w", "-m", "fast", "stop"]);
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let pg_ctl = Self::bin("pg_ctl");
        let data = self.dir.join("data");
        let _ = std::panic::catch_unwind(|| {
            Self::run(&[
                pg_ctl.to_str().unwrap(),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ]);
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sql(statement: &str) -> JsonObject {
    json!({ "sql": statement }).as_object().cloned().unwrap()
}

#[tokio::test]
async fn postgres_stopped_under_a_query_fails_clearly_and_the_pool_reconnects() {
    let pg = PostgresServer::start_new();
    let port = pg.port;
    let toolset = build(
        "postgres",
        json!({"host": "127.0.0.1", "port": port, "database": "postgres", "sslMode": "disable"}),
        json!({"timeoutSeconds": 10}),
    );
    let timeout = Duration::from_secs(10);
    let (first, _) = call_with(toolset.as_ref(), "pg_query", sql("SELECT 1"), timeout).await;
    assert_ne!(first.is_error, Some(true), "{}", result_text(&first));

    // A query running when the server stops.
    let in_flight = {
        let toolset = toolset.clone();
        tokio::spawn(async move {
            call_with(
                toolset.as_ref(),
                "pg_query",
                sql("SELECT pg_sleep(8)"),
                timeout,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Blocks this test's thread: the server ends its backends whether or not the client reads.
    pg.stop();
    let (mid_call, took) = in_flight.await.unwrap();
    assert_eq!(mid_call.is_error, Some(true), "{}", result_text(&mid_call));
    assert!(
        took < Duration::from_secs(6),
        "took {took:?}: it waited for the sleep"
    );
    let said = result_text(&mid_call);
    assert!(
        said.contains(&format!("127.0.0.1:{port}")) || said.contains("terminat"),
        "{said}"
    );

    // While it is down: a clear error naming the server, in bounded time.
    let (down, took) = call_with(toolset.as_ref(), "pg_query", sql("SELECT 1"), timeout).await;
    assert_eq!(down.is_error, Some(true));
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    let said = result_text(&down);
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");

    // Back: the pool drops its dead connections and answers again.
    pg.start();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (again, _) = call_with(toolset.as_ref(), "pg_query", sql("SELECT 1"), timeout).await;
        if again.is_error != Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the link did not recover: {}",
            result_text(&again)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TCP proxy to `target` on a port of its own that can be taken down — its connections cut,
/// its port refusing new ones — and brought back on the same port.
struct Proxy {
    port: u16,
    target: (&'static str, u16),
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: (&'static str, u16)) -> Self {
        // Bound at once on a port the system picks: a port looked up first and bound later can
        // be taken by a test running beside this one.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let mut proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target,
            serving: None,
        };
        proxy.serve(listener);
        proxy
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target;
        self.serving = Some(tokio::spawn(async move {
            // Dropped with this task: aborting it cuts every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        }));
    }

    async fn down(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            let _ = serving.await;
        }
    }
}

#[tokio::test]
async fn rabbitmq_unreachable_then_back_fails_clearly_and_recovers() {
    let mut amqp = Proxy::start(("127.0.0.1", 5672)).await;
    let mut management = Proxy::start(("127.0.0.1", 15672)).await;
    let rabbit = build_with(
        "rabbitmq",
        json!({
            "host": "127.0.0.1",
            "port": amqp.port,
            "vhost": "/",
            "managementUrl": format!("http://127.0.0.1:{}", management.port),
        }),
        json!({"timeoutSeconds": 5}),
        &[("username", "guest"), ("password", "guest")],
    );
    let timeout = Duration::from_secs(5);
    let publish = || {
        json!({"routing_key": format!("linkmcp-faults-{}", std::process::id()), "payload": "hello", "mandatory": false})
            .as_object()
            .cloned()
            .unwrap()
    };
    let (listed, _) = call(rabbit.as_ref(), "rmq_list_queues", timeout).await;
    assert_ne!(listed.is_error, Some(true), "{}", result_text(&listed));
    let (published, _) = call_with(rabbit.as_ref(), "rmq_publish", publish(), timeout).await;
    assert_ne!(
        published.is_error,
        Some(true),
        "{}",
        result_text(&published)
    );

    amqp.down().await;
    management.down().await;
    for (tool, args, port) in [
        ("rmq_list_queues", JsonObject::new(), management.port),
        ("rmq_publish", publish(), amqp.port),
    ] {
        let (down, took) = call_with(rabbit.as_ref(), tool, args, timeout).await;
        assert_eq!(down.is_error, Some(true), "{tool}: {}", result_text(&down));
        assert!(
            took < timeout + Duration::from_secs(2),
            "{tool} took {took:?}"
        );
        let said = result_text(&down);
        assert!(said.contains(&port.to_string()), "{tool}: {said}");
        assert!(!said.contains("guest"), "{tool} shows the password: {said}");
    }

    amqp.up().await;
    management.up().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    for (tool, args) in [
        ("rmq_list_queues", JsonObject::new()),
        ("rmq_publish", publish()),
    ] {
        loop {
            let (again, _) = call_with(rabbit.as_ref(), tool, args.clone(), timeout).await;
            if again.is_error != Some(true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{tool} did not recover: {}",
                result_text(&again)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An S3 endpoint answering every request after `delay` with `status` and S3's error body;
/// returns its URL and the count of requests it got.
async fn s3_stub(status: u16, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let router = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/xml")],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
                 <Message>We encountered an internal error. Please try again.</Message>\
                 <RequestId>4442587FB7D0A2F9</RequestId></Error>",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{address}"), requests)
}

fn s3_link(endpoint: &str, timeout_seconds: u64) -> Arc<dyn Toolset> {
    build(
        "s3",
        json!({"endpoint": endpoint, "region": "us-east-1", "bucket": "reports", "pathStyle": true}),
        json!({"timeoutSeconds": timeout_seconds}),
    )
}

#[tokio::test]
async fn s3_answering_500_fails_with_the_status_after_bounded_retries() {
    let (endpoint, requests) = s3_stub(500, Duration::ZERO).await;
    let s3 = s3_link(&endpoint, 10);
    let (result, _) = call(s3.as_ref(), "s3_list_objects", Duration::from_secs(10)).await;
    assert_eq!(result.is_error, Some(true));
    let said = result_text(&result);
    assert!(
        said.contains("InternalError") || said.contains("500"),
        "{said}"
    );
    assert!(!said.contains("faults-secret"), "{said}");
    let made = requests.load(Ordering::SeqCst);
    assert!((1..=2).contains(&made), "{made} requests for one call");
}

#[tokio::test]
async fn s3_answering_too_slowly_fails_within_the_links_timeout() {
    let (endpoint, _) = s3_stub(200, Duration::from_secs(30)).await;
    let s3 = s3_link(&endpoint, 1);
    let (result, took) = call(s3.as_ref(), "s3_list_objects", Duration::from_secs(1)).await;
    assert_eq!(result.is_error, Some(true));
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let said = result_text(&result);
    assert!(said.contains("in time"), "{said}");
}
