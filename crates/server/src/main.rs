//! `linkmcp-server`: flags, logging and signals around [`linkmcp_server::serve`].

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use clap::Parser as _;
use linkmcp_server::{
    args::{Args, LogFormat},
    registry::Registry,
    source::manifests::ManifestSource,
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(args.log_format);

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
            if let (None, Some(server)) = (&args.server_name, &state.borrow().server) {
                settings.server_name = server
                    .spec
                    .server_name
                    .clone()
                    .or_else(|| server.metadata.name.clone())
                    .unwrap_or(settings.server_name);
            }
            Some(state)
        }
        None => {
            tracing::warn!("no --manifests folder given: serving the built-in tools only");
            None
        }
    };

    let registry = Arc::new(Registry::new());
    linkmcp_server::serve(&settings, registry, shutdown).await
}

/// How often the manifests folder is checked for changes.
const MANIFEST_POLL: Duration = Duration::from_millis(500);

/// Logs at `info` (rmcp's per-request lifecycle lines only from `warn`) unless `RUST_LOG`
/// says otherwise.
fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
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
