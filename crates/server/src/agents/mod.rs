//! The Dark Factory inside the server: the factory crate plugged into this server's registry,
//! secrets, status and leadership.
//!
//! The factory schedules and runs AiTasks; this module gives it what only the server has: the
//! registry as its [`ToolHost`](linkmcp_factory::ToolHost) (so agent calls take the same
//! path, limits, scrubbing and audit as any MCP client), the desired state's Secrets, a status
//! writer, and — in a cluster — a Lease, so one replica schedules however many serve. It also
//! serves the `dark_factory_*` tools while the server has agents.

mod host;
mod reporter;
mod secrets;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use linkmcp_factory::{Factory, FactoryConfig, FactoryDeps, NoKnowledge, SystemClock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use host::RegistryHost;
pub use reporter::StatusReporter;
pub use secrets::StateSecrets;
pub use tools::DarkFactoryTools;

use crate::links::LinkStatuses;
use crate::mcp::CallLimits;
use crate::registry::{Registry, ToolsetKey};
use crate::source::StateReceiver;

/// The registry key of the `dark_factory_*` tools.
pub fn toolset_key() -> ToolsetKey {
    ToolsetKey::from("dark-factory")
}

/// Builds the factory of `server` over the server's registry and state.
pub fn factory(
    server: &str,
    registry: Arc<Registry>,
    statuses: Arc<LinkStatuses>,
    limits: CallLimits,
    state: StateReceiver,
    reporter: StatusReporter,
) -> Factory {
    Factory::new(
        FactoryConfig::new(server),
        FactoryDeps {
            host: Arc::new(RegistryHost::new(registry, statuses, limits)),
            knowledge: Arc::new(NoKnowledge),
            secrets: Arc::new(StateSecrets::new(state)),
            reporter: Arc::new(reporter),
            clock: Arc::new(SystemClock),
        },
    )
}

/// Keeps the factory's agents, tasks and notification defaults in step with the desired
/// state, and the `dark_factory_*` tools registered while the server has agents.
pub async fn follow(
    factory: Factory,
    registry: Arc<Registry>,
    mut state: StateReceiver,
    agents_api: Option<kube::Api<linkmcp_api::Agent>>,
) {
    loop {
        let current = state.borrow_and_update().clone();
        factory.update(current.tasks.clone(), current.agents.clone());
        factory.set_notification_defaults(
            current
                .server
                .as_ref()
                .and_then(|s| s.spec.notifications.clone()),
        );
        let key = toolset_key();
        if current.agents.is_empty() {
            registry.remove(&key);
        } else if registry.snapshot().toolsets().all(|(k, _)| *k != key) {
            match DarkFactoryTools::new(factory.clone()) {
                Ok(tools) => {
                    let tools = match &agents_api {
                        Some(api) => tools.with_agents_api(api.clone()),
                        None => tools,
                    };
                    if let Err(err) = registry.insert(key, Arc::new(tools)) {
                        tracing::error!(error = %err, "cannot register the dark_factory tools");
                    }
                }
                Err(err) => tracing::error!(error = %err, "cannot build the dark_factory tools"),
            }
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the factory's scheduler while `leading` is true, until `shutdown`.
///
/// Standalone there is one replica and `leading` is always true; in a cluster it follows the
/// scheduler Lease, so a new leader takes over within the Lease duration and a replica that
/// loses it stops starting runs at once.
pub async fn lead(
    factory: Factory,
    mut leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    loop {
        if !*leading.borrow_and_update() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = leading.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let term = shutdown.child_token();
        let run = factory.run(term.clone());
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => return,
            () = shutdown.cancelled() => {
                term.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
                return;
            }
            _ = leading.changed() => {
                tracing::info!("scheduler Lease lost: no new runs start here");
                term.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
            }
        }
    }
}
