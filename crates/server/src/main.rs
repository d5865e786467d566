//! `linkmcp-server`: flags, logging and signals around [`linkmcp_server::Server`].

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use linkmcp_server::observe::telemetry::{self, Telemetry};
use linkmcp_server::{
    Settings, agents,
    args::{Args, Given, LogFormat},
    auth::{self, AuthConfig},
    links::{self, LinkStatuses, LinkSync},
    registry::Registry,
    source::{self, StateReceiver, manifests::ManifestSource},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: under load a call allocates and frees many small objects
/// across the runtime's threads, where glibc's malloc took a fifth of the server's CPU. With
/// make bench: ~20 % less CPU per call for +0.7 MiB idle RSS. Built without transparent huge
/// pages (`no_thp`): with them its arenas cost 11 MiB more RSS, idle and under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (args, given) = Given::parse();
    let telemetry = init_tracing(args.log_format);
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
    // The desired state, from a folder or the API server; everything below follows it.
    let state = match &args.manifests {
        Some(dir) => ManifestSource::new(dir, args.server.clone())
            .watch(MANIFEST_POLL, shutdown.clone())
            .with_context(|| format!("reading manifests from {}", dir.display()))?,
        None => match cluster_state(&args, &shutdown).await? {
            Some(state) => state,
            // Shutdown came before the first sync.
            None => return Ok(()),
        },
    };
    report_server_name(&mut settings, &args, &state);
    settings.auth = AuthConfig::from_state(&state.borrow());
    if let Some(server) = &state.borrow().server {
        settings.apply_server_spec(&server.spec, &given);
    }

    let registry = Arc::new(Registry::new());
    let statuses = Arc::new(LinkStatuses::default());
    let sync = LinkSync::new(registry.clone(), links::default_builder(), statuses.clone());
    tokio::spawn(links::follow(sync, state.clone()));
    start_dark_factory(&args, &settings, &registry, &statuses, &state, &shutdown).await?;

    let server = linkmcp_server::Server::bind(&settings, registry, shutdown).await?;
    // The McpServer's auth and API keys follow the source: a rotated Secret or an edited
    // manifest takes effect on the next request.
    tokio::spawn(auth::follow(server.auth().clone(), state.clone()));
    // Secret values are scrubbed from outgoing text; /debug/info reports the links.
    server.follow_state(state);
    let served = server.run().await;
    if let Some(telemetry) = telemetry {
        // The exporter's thread blocks on its last HTTP request: not on a runtime worker.
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .ok();
    }
    served
}

/// How often the manifests folder is checked for changes.
const MANIFEST_POLL: Duration = Duration::from_millis(500);

/// Starts the Dark Factory: standalone it always schedules; in a cluster the replica holding
/// the `<server>-scheduler` Lease does, and reports runs to status and Events.
async fn start_dark_factory(
    args: &Args,
    settings: &Settings,
    registry: &Arc<Registry>,
    statuses: &Arc<LinkStatuses>,
    state: &StateReceiver,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let Some(server) = state
        .borrow()
        .server
        .as_ref()
        .and_then(|s| s.metadata.name.clone())
    else {
        return Ok(());
    };
    let (reporter, leading, agents_api) = if args.manifests.is_some() {
        (agents::StatusReporter::Log, watch::channel(true).1, None)
    } else {
        let client = kube::Client::try_default().await?;
        let namespace = args
            .namespace()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let instance = instance_name();
        let lease = linkmcp_api::names::scheduler_lease_name(&server);
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &lease)
            .with_namespace(&namespace)
            .with_identity(&instance)
            .with_duration(15)
            .with_grace(5)
            .with_field_manager(format!("{}-lease", linkmcp_api::names::manager::SERVER))
            .build()
            .await
            .context("setting up the scheduler Lease")?;
        let (leading, _task) = manager.watch().await;
        (
            agents::StatusReporter::kubernetes(client.clone(), &namespace, instance),
            leading,
            Some(kube::Api::<linkmcp_api::Agent>::namespaced(
                client, &namespace,
            )),
        )
    };
    let factory = agents::factory(
        &server,
        registry.clone(),
        statuses.clone(),
        settings.limits,
        state.clone(),
        reporter,
    );
    tokio::spawn(agents::follow(
        factory.clone(),
        registry.clone(),
        state.clone(),
        agents_api,
    ));
    tokio::spawn(agents::lead(factory, leading, shutdown.clone()));
    Ok(())
}

/// This replica's name for Leases and Events: the pod name, else host name and process id.
fn instance_name() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "linkmcp-server".to_owned());
    format!("{host}-{}", std::process::id())
}

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
/// outage once, with the error. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also
/// exported (`observe::telemetry`); the returned handle flushes them at exit.
fn init_tracing(format: LogFormat) -> Option<Telemetry> {
    use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn,kube_client::client::builder=off"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (text, json) = match format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer().with_ansi(ansi)), None),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().json())),
    };
    let (otel, telemetry, otel_error) = match telemetry::layer() {
        Ok(Some((layer, telemetry))) => (Some(layer), Some(telemetry), None),
        Ok(None) => (None, None, None),
        Err(err) => (None, None, Some(err)),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .init();
    if let Some(err) = otel_error {
        tracing::error!(error = %err, "tracing is off: {}", telemetry::ENDPOINT_VAR);
    } else if telemetry.is_some() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    telemetry
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
