//! `linkmcp-server`: flags, logging and signals around [`linkmcp_server::Server`].

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use clap::Parser as _;
use linkmcp_server::{
    Settings,
    args::{Args, LogFormat},
    auth::{self, AuthConfig},
    links::{self, LinkStatuses, LinkSync},
    registry::Registry,
    source::{self, StateReceiver, manifests::ManifestSource},
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(args.log_format);
    // Before any TLS client exists: kube brings rustls's ring provider and reqwest aws-lc-rs,
    // and rustls then refuses to pick one and panics on the first connection.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let mut settings = args.settings();
    // Kept alive for the server's lifetime: the registry follows it as links come and go.
    let _state = match &args.manifests {
        Some(dir) => {
            let source = ManifestSource::new(dir, args.server.clone());
            let state = source
                .watch(MANIFEST_POLL, shutdown.clone())
                .with_context(|| format!("reading manifests from {}", dir.display()))?;
            report_server_name(&mut settings, &args, &state);
            Some(state)
        }
        None => {
            let Some(state) = cluster_state(&args, &shutdown).await? else {
                // Shutdown came before the first sync.
                return Ok(());
            };
            report_server_name(&mut settings, &args, &state);
            Some(state)
        }
    };

    let registry = Arc::new(Registry::new());
    if let Some(state) = &_state {
        let sync = LinkSync::new(
            registry.clone(),
            links::default_builder(),
            Arc::new(LinkStatuses::default()),
        );
        tokio::spawn(links::follow(sync, state.clone()));
    }
    if let Some(state) = &_state {
        settings.auth = AuthConfig::from_state(&state.borrow());
    }
    let server = linkmcp_server::Server::bind(&settings, registry, shutdown).await?;
    if let Some(state) = &_state {
        // The McpServer's auth and API keys follow the source: a rotated Secret or an edited
        // manifest takes effect on the next request.
        tokio::spawn(auth::follow(server.auth().clone(), state.clone()));
        // Secret values are scrubbed from outgoing text; /debug/info reports the links.
        server.follow_state(state.clone());
    }
    server.run().await
}

/// How often the manifests folder is checked for changes.
const MANIFEST_POLL: Duration = Duration::from_millis(500);

/// Without `--server-name`, clients are told the McpServer's `spec.serverName`, else its name.
fn report_server_name(settings: &mut Settings, args: &Args, state: &StateReceiver) {
    if let (None, Some(server)) = (&args.server_name, &state.borrow().server) {
        settings.server_name = server
            .spec
            .server_name
            .clone()
            .or_else(|| server.metadata.name.clone())
            .unwrap_or_else(|| settings.server_name.clone());
    }
}

/// The in-cluster source: the McpServer `--server` in `--namespace` (default: the pod's, else
/// the kubeconfig context's), through the API server the environment points at (in-cluster
/// ServiceAccount, or KUBECONFIG). Returns after the first complete sync, so the server binds
/// its port (and `/startupz` answers) only once it knows its links; `None` when shutdown came
/// first.
async fn cluster_state(
    args: &Args,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<StateReceiver>> {
    let server = args.server.clone().context(
        "no --manifests folder and no --server: name the McpServer to serve (LINKMCP_SERVER), \
         or give --manifests DIR to run without a cluster",
    )?;
    let client = kube::Client::try_default().await.context(
        "connecting to the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG); give \
         --manifests DIR to run without a cluster",
    )?;
    let namespace = args
        .namespace()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let (state, ready) = source::kube::start(client, &namespace, &server, shutdown.clone())?;
    tracing::info!(%namespace, %server, "waiting for the first sync with the Kubernetes API");
    tokio::select! {
        synced = ready.wait() => synced?,
        () = shutdown.cancelled() => return Ok(None),
    }
    Ok(Some(state))
}

/// Logs at `info` (rmcp's per-request lifecycle lines only from `warn`) unless `RUST_LOG`
/// says otherwise. kube-client's line per failed request is left out: a watch retries every
/// few seconds while the API server is unreachable, and the cluster source reports each
/// outage once, with the error.
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn,kube_client::client::builder=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `shutdown` on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
    shutdown.cancel();
}
