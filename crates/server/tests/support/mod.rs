//! What the server's integration tests share: an in-process server on an ephemeral port
//! ([`TestServer`]), the server binary on a manifests folder ([`ServerProcess`]), the clients
//! that talk to them and the small helpers every file needs. Cargo
//! builds each file of `tests/` as its own crate, so each declares `mod support;` rather than
//! keeping its own copy of this start-up code.

// Each test crate uses only part of this module; what one leaves unused is not dead code.
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use linkmcp_server::{Server, Settings, auth::Auth, registry::Registry, source::DesiredState};
use linkmcp_toolsets::Toolset;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolResult, JsonObject},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// The `linkmcp-server` binary serving a manifests folder on a free loopback port, killed when
/// dropped.
pub struct ServerProcess {
    child: std::process::Child,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl ServerProcess {
    /// Starts the binary on `dir` with `env` added to its environment and waits until
    /// `/startupz` answers (at most 20 s).
    pub async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_linkmcp-server"))
            .args(["--manifests", dir.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let process = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let started = http().get(format!("{}/startupz", process.url)).send().await;
            if started.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// A server running in the test's runtime, listening on `127.0.0.1` on a port of its own.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server's registry: tests add and remove toolsets while it serves.
    pub registry: Arc<Registry>,
    /// The server's live authentication: tests update it as a Secret change would.
    pub auth: Arc<Auth>,
    /// Cancelling it starts the graceful shutdown.
    pub shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// Keeps the desired state alive while the server follows it.
    _state: Option<watch::Sender<Arc<DesiredState>>>,
}

impl TestServer {
    /// A server with the default settings and an empty registry (the core toolset only).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server with the settings `configure` makes of the defaults and an empty registry.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::builder().settings(configure).start().await
    }

    /// A server set up step by step: settings, registry, desired state.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            settings: Settings {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Settings::default()
            },
            registry: Arc::new(Registry::new()),
            state: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts the server down and waits until it has stopped, without error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops after shutdown")
            .expect("server task")
            .expect("server ends without error");
    }
}

/// A [`TestServer`] being set up; each step applies at once, in the order called.
pub struct TestServerBuilder {
    settings: Settings,
    registry: Arc<Registry>,
    state: Option<DesiredState>,
}

impl TestServerBuilder {
    /// Changes the settings (they start as the defaults, listening on an ephemeral port).
    pub fn settings(mut self, configure: impl FnOnce(&mut Settings)) -> Self {
        configure(&mut self.settings);
        self
    }

    /// Registers `toolset` under `key`.
    pub fn toolset(self, key: &str, toolset: Arc<dyn Toolset>) -> Self {
        self.registry.insert(key, toolset).unwrap();
        self
    }

    /// Sets up the registry otherwise, before the server binds.
    pub fn registry(self, set_up: impl FnOnce(&Registry)) -> Self {
        set_up(&self.registry);
        self
    }

    /// Makes the server follow `state` (kept alive as long as the server).
    pub fn follow_state(mut self, state: DesiredState) -> Self {
        self.state = Some(state);
        self
    }

    /// Binds the server and runs it.
    pub async fn start(self) -> TestServer {
        let shutdown = CancellationToken::new();
        let server = Server::bind(&self.settings, self.registry.clone(), shutdown.clone())
            .await
            .expect("server binds");
        let state = self.state.map(|state| {
            let (tx, rx) = watch::channel(Arc::new(state));
            server.follow_state(rx);
            tx
        });
        let addr = server.local_addr();
        let auth = server.auth().clone();
        let task = tokio::spawn(server.run());
        TestServer {
            addr,
            registry: self.registry,
            auth,
            shutdown,
            task,
            _state: state,
        }
    }
}

/// An HTTP client for raw requests, bypassing any proxy of the environment.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An rmcp client with an initialized session, without credentials.
pub async fn connect(server: &TestServer) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    ().serve(transport).await.expect("client initializes")
}

/// An rmcp client with an initialized session, sending `key` as bearer token.
pub async fn connect_with_key(server: &TestServer, key: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(key);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("client initializes")
}

/// The text of the first content of a tool result.
pub fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

/// A JSON object as tool or prompt arguments.
pub fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}
