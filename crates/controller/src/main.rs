//! `linkmcp-controller`: flags, logging, signals, leader election and the metrics endpoint
//! around the reconcilers of [`linkmcp_controller`].
//!
//! `linkmcp-controller` (or `linkmcp-controller run`) reconciles until SIGTERM;
//! `linkmcp-controller crds` prints the CRDs to install (`| kubectl apply --server-side -f -`).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum, builder::BoolishValueParser};
use linkmcp_controller::metrics::Metrics;
use linkmcp_controller::{Context, Settings, controllers, http, leader};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "linkmcp-controller",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile McpServers, McpLinks, Agents and AiTasks until stopped (the default).
    Run(RunArgs),
    /// Print the CustomResourceDefinitions of the four linkmcp kinds as one YAML stream.
    Crds,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Address of `/metrics` and `/healthz`.
    #[arg(long, env = "LINKMCP_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,

    /// Server image used for McpServers that name none.
    #[arg(long, env = "LINKMCP_SERVER_IMAGE", default_value_t = Settings::default_server_image())]
    server_image: String,

    /// The cluster's DNS domain, for the Service host names each server accepts.
    #[arg(long, env = "LINKMCP_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,

    /// Elect one active replica with a Lease. Turn off only when a single replica runs.
    #[arg(
        long,
        env = "LINKMCP_LEADER_ELECTION",
        value_parser = BoolishValueParser::new(),
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    leader_election: bool,

    /// Namespace of the leader Lease. Defaults to the pod's namespace (POD_NAMESPACE), else the
    /// kubeconfig context's.
    #[arg(long, env = "LINKMCP_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,

    /// Name of the leader Lease.
    #[arg(
        long,
        env = "LINKMCP_LEADER_ELECTION_LEASE",
        default_value = "linkmcp-controller"
    )]
    leader_election_lease: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before any TLS client exists: rustls cannot pick between the providers linked in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds) => print_crds(),
        Some(Command::Run(args)) => run(args).await,
        None => run(cli.run).await,
    }
}

fn print_crds() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (_, crd) in linkmcp_api::crds::all() {
        writeln!(out, "---\n{}", linkmcp_api::crds::to_yaml(&crd)?)?;
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::default());
    let bound = http::serve(args.metrics_listen, metrics.clone(), shutdown.clone())
        .await
        .with_context(|| format!("listening on {}", args.metrics_listen))?;
    tracing::info!(listen = %bound, "serving /metrics and /healthz");

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster ServiceAccount or KUBECONFIG)")?;
    if !controllers::wait_for_crds(&client, &shutdown).await {
        return Ok(());
    }

    let identity = leader::identity();
    let settings = Settings {
        server_image: args.server_image,
        cluster_domain: args.cluster_domain,
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        metrics.clone(),
        Some(identity.clone()),
    ));

    if !args.leader_election {
        metrics.set_leader(true);
        controllers::run(ctx, shutdown.child_token()).await;
        return Ok(());
    }

    let namespace = args
        .leader_election_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let election =
        leader::Election::start(client, &namespace, &args.leader_election_lease, &identity)
            .await
            .with_context(|| {
                format!(
                    "joining the leader election (Lease {namespace}/{})",
                    args.leader_election_lease
                )
            })?;
    tracing::info!(%identity, lease = %args.leader_election_lease, %namespace, "waiting to lead");
    let mut leading = election.leading.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = leading.wait_for(|leads| *leads) => {
                if changed.is_err() {
                    anyhow::bail!("the leader election stopped");
                }
            }
        }
        tracing::info!(%identity, "leading: starting the controllers");
        metrics.set_leader(true);
        let stop = shutdown.child_token();
        let watcher = {
            let stop = stop.clone();
            let mut leading = leading.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = leading.wait_for(|leads| !*leads) => {
                        tracing::warn!("lost the leader Lease: stopping the controllers");
                        stop.cancel();
                    }
                }
            })
        };
        controllers::run(ctx.clone(), stop.clone()).await;
        stop.cancel();
        let _ = watcher.await;
        metrics.set_leader(false);
        if shutdown.is_cancelled() {
            break;
        }
        tracing::info!("standing by for the leader Lease");
    }
    election.stop().await;
    Ok(())
}

/// Cancels `shutdown` on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C: shutting down"),
        () = terminate => tracing::info!("received SIGTERM: shutting down"),
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_is_the_default_and_crds_stays() {
        let cli = Cli::try_parse_from(["linkmcp-controller", "--metrics-listen=127.0.0.1:9090"])
            .map_err(|e| e.to_string());
        assert!(matches!(cli, Ok(Cli { command: None, .. })));
        let crds = Cli::try_parse_from(["linkmcp-controller", "crds"]).map_err(|e| e.to_string());
        assert!(matches!(
            crds,
            Ok(Cli {
                command: Some(Command::Crds),
                ..
            })
        ));
        let run = Cli::try_parse_from(["linkmcp-controller", "run", "--leader-election=false"])
            .map_err(|e| e.to_string());
        assert!(matches!(
            run,
            Ok(Cli {
                command: Some(Command::Run(RunArgs {
                    leader_election: false,
                    ..
                })),
                ..
            })
        ));
    }
}
