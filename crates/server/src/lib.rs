//! The linkmcp server: one governed MCP endpoint per McpServer.
//!
//! [`Server`] binds the HTTP listener, registers the built-in tools and serves `/mcp` and the
//! probes until its shutdown token is cancelled; the binary (`main.rs`) only turns flags into
//! [`Settings`] and signals into that token, so tests run the same server in process.

pub mod agents;
pub mod args;
pub mod auth;
pub mod http;
pub mod links;
pub mod mcp;
pub mod observe;
pub mod registry;
pub mod source;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{Auth, AuthConfig},
    http::{Health, InFlight, debug::DesiredView},
    mcp::{CallLimits, McpHandler},
    observe::{CallPolicy, Metrics},
    registry::Registry,
    source::StateReceiver,
};

/// How the server listens and serves.
///
/// `Settings::default()` admits every client without credentials (`auth` is
/// [`AuthConfig::allow_unauthenticated`]), so that tests and embedders get a working server on
/// loopback with no setup. The binary never relies on it: [`args::Args::settings`] starts from
/// an auth configuration that admits no one, and `main` replaces it with the McpServer's
/// `spec.auth` and API keys before binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The address to listen on; port 0 picks a free port (see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// Serve without sessions (see [`http::router`] for what clients lose).
    pub stateless: bool,
    /// Host names accepted on `/mcp` besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// The name reported to clients.
    pub server_name: String,
    /// The limits every tool call runs under.
    pub limits: CallLimits,
    /// The largest request body accepted on `/mcp`.
    pub max_request_body_bytes: usize,
    /// Most MCP sessions open at once (stateful mode); an `initialize` beyond it gets 503.
    pub max_sessions: usize,
    /// Serve the built-in `find_tools` to clients.
    pub find_tools: bool,
    /// Ask interactive clients to confirm destructive calls (elicitation).
    pub confirm_destructive: bool,
    /// How long shutdown waits for running requests (tool calls) before closing sessions.
    pub drain_timeout: Duration,
    /// Bounds of each client connection (slow headers, oversized headers).
    pub connection: http::serve::ConnectionLimits,
    /// Replace the text of failed tool calls by a reference logged with the real message.
    pub mask_error_details: bool,
    /// At most this many calls per minute to each tool, all clients together; `None` or 0:
    /// unlimited.
    pub calls_per_minute_per_tool: Option<u32>,
    /// Where the desired state comes from (reported on `/debug/info`).
    pub source: SourceKind,
    /// Client authentication when the server starts; later changes go through
    /// [`Server::auth`].
    pub auth: AuthConfig,
}

impl Settings {
    /// The guards' policy these settings describe.
    pub fn call_policy(&self) -> CallPolicy {
        CallPolicy {
            mask_error_details: self.mask_error_details,
            calls_per_minute_per_tool: self
                .calls_per_minute_per_tool
                .and_then(std::num::NonZeroU32::new),
        }
    }
}

/// Where the server's desired state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// None: the built-in tools only.
    #[default]
    None,
    /// A folder of manifests (standalone mode).
    Manifests,
    /// The Kubernetes API server.
    Kubernetes,
}

impl SourceKind {
    /// The name shown on `/debug/info`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::None => "none",
            SourceKind::Manifests => "manifests",
            SourceKind::Kubernetes => "kubernetes",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            stateless: false,
            allowed_hosts: Vec::new(),
            server_name: "linkmcp".to_owned(),
            limits: CallLimits::default(),
            max_request_body_bytes: 4 * 1024 * 1024,
            max_sessions: linkmcp_api::server::ServerLimits::DEFAULT_MAX_SESSIONS,
            find_tools: false,
            confirm_destructive: false,
            drain_timeout: Duration::from_secs(20),
            connection: http::serve::ConnectionLimits::default(),
            mask_error_details: false,
            calls_per_minute_per_tool: None,
            source: SourceKind::None,
            auth: AuthConfig::allow_unauthenticated(),
        }
    }
}

/// After the sessions are closed, how long open connections get to finish before the server
/// returns anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet serving server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    handler: McpHandler,
    health: Arc<Health>,
    in_flight: Arc<InFlight>,
    registry: Arc<Registry>,
    auth: Arc<Auth>,
    shutdown: CancellationToken,
    mcp_stop: CancellationToken,
    drain_timeout: Duration,
    connection: http::serve::ConnectionLimits,
    desired: DesiredView,
}

impl Server {
    /// Registers the core toolset in `registry` and binds `settings.listen`. The server stops
    /// when `shutdown` is cancelled.
    pub async fn bind(
        settings: &Settings,
        registry: Arc<Registry>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        registry::core::register(&registry, &settings.server_name, settings.find_tools)
            .context("registering the core toolset")?;
        registry.guards().set_policy(settings.call_policy());
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let mcp_stop = CancellationToken::new();
        let auth =
            Arc::new(Auth::new(&settings.auth).with_metrics(registry.guards().metrics().clone()));
        let handler = McpHandler::new(
            registry.clone(),
            &settings.server_name,
            settings.limits,
            auth.clone(),
            shutdown.clone(),
            mcp::TalkBack {
                stateless: settings.stateless,
                rounds: round_state()?,
                confirm_destructive: settings.confirm_destructive,
            },
        );
        let health = Arc::new(Health::default());
        let in_flight = Arc::new(InFlight::default());
        let desired = DesiredView::default();
        let router = http::router(
            settings,
            handler.clone(),
            auth.clone(),
            health.clone(),
            in_flight.clone(),
            mcp_stop.clone(),
            desired.clone(),
        );
        health.mark_started();
        Ok(Self {
            listener,
            local_addr,
            router,
            handler,
            health,
            in_flight,
            registry,
            auth,
            shutdown,
            mcp_stop,
            drain_timeout: settings.drain_timeout,
            connection: settings.connection,
            desired,
        })
    }

    /// Follows the desired state: its secret values are scrubbed from every outgoing text, and
    /// `/debug/info` reports its links. Call it once, with the receiver the source returned.
    pub fn follow_state(&self, state: StateReceiver) {
        let scrubber = self.registry.guards().scrubber().clone();
        // Loaded now, so that no call is answered before the current secrets are known.
        scrubber.set_values(observe::scrub::secret_values(&state.borrow()));
        self.desired.set(state.clone());
        tokio::spawn(observe::scrub::follow(scrubber, state));
    }

    /// The server's metrics (the auth layer counts its refusals here).
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.registry.guards().metrics()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The state the probe endpoints report.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// The live client authentication: [`Auth::update`] it when the configuration changes
    /// (see [`auth::follow`]).
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// Serves until shutdown, then drains: stops accepting connections and reporting ready,
    /// lets running requests finish and their responses go out (up to the drain timeout),
    /// closes the MCP sessions and streams, and returns once the connections are done.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listener,
            local_addr,
            router,
            handler,
            health,
            in_flight,
            registry,
            auth: _,
            shutdown,
            mcp_stop,
            drain_timeout,
            connection,
            desired: _,
        } = self;

        tokio::spawn(mcp::forward_changes(
            registry.clone(),
            handler.peers().clone(),
            mcp_stop.clone(),
        ));
        tokio::spawn({
            let shutdown = shutdown.clone();
            let mcp_stop = mcp_stop.clone();
            async move {
                shutdown.cancelled().await;
                health.mark_draining();
                let running = in_flight.count();
                tracing::info!(running_requests = running, "shutting down: draining");
                if tokio::time::timeout(drain_timeout, in_flight.idle())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        running_requests = in_flight.count(),
                        "drain timeout reached; closing sessions with requests still running"
                    );
                }
                mcp_stop.cancel();
            }
        });

        tracing::info!(address = %local_addr, "serving MCP on /mcp");
        let serve = http::serve::serve(
            listener,
            router,
            connection,
            shutdown.clone().cancelled_owned(),
        );
        let deadline = async {
            mcp_stop.cancelled().await;
            tokio::time::sleep(CLOSE_GRACE).await;
        };
        tokio::select! {
            () = serve => {}
            () = deadline => tracing::warn!("connections still open after shutdown; closing them"),
        }
        // Stops the change fan-out as well if serving ended on its own.
        mcp_stop.cancel();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds and serves until `shutdown` is cancelled; see [`Server`].
pub async fn serve(
    settings: &Settings,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Server::bind(settings, registry, shutdown)
        .await?
        .run()
        .await
}

/// The environment variable holding the key that seals `requestState` (2026-07-28 input
/// requests). Replicas of one server must share it; without it each process draws its own.
pub const REQUEST_STATE_KEY_ENV: &str = "LINKMCP_REQUEST_STATE_KEY";

/// The `requestState` codec, keyed from [`REQUEST_STATE_KEY_ENV`] or at random.
fn round_state() -> anyhow::Result<mcp::RoundState> {
    let key = std::env::var(REQUEST_STATE_KEY_ENV).ok();
    if let Some(key) = &key
        && key.len() < mcp::RoundState::MIN_KEY_BYTES
    {
        anyhow::bail!(
            "{REQUEST_STATE_KEY_ENV} has {} bytes; it needs at least {}",
            key.len(),
            mcp::RoundState::MIN_KEY_BYTES
        );
    }
    mcp::RoundState::new(key.as_deref().map(str::as_bytes)).map_err(anyhow::Error::msg)
}
