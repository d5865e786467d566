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
pub async fn lead(factory: Factory, leading: watch::Receiver<bool>, shutdown: CancellationToken) {
    lead_with(leading, shutdown, |term| {
        let factory = factory.clone();
        async move { factory.run(term).await }
    })
    .await;
}

/// The leadership loop of [`lead`]: `start(term)` runs while `leading` is true and is
/// cancelled through `term` when leadership is lost (then started again when it returns).
///
/// A `leading` whose sender is gone keeps its last value for good — standalone, where it is
/// `true` from the start — so a closed channel means "no change", never "lost".
async fn lead_with<F, Fut>(
    mut leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
    mut start: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        while !*leading.borrow_and_update() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = leading.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
        let term = shutdown.child_token();
        let run = start(term.clone());
        tokio::pin!(run);
        let lost = async {
            loop {
                if leading.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if !*leading.borrow_and_update() {
                    return;
                }
            }
        };
        tokio::select! {
            () = &mut run => return,
            () = shutdown.cancelled() => {
                term.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
                return;
            }
            () = lost => {
                tracing::info!("scheduler Lease lost: no new runs start here");
                term.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    /// Starts a scheduler that runs until cancelled, counting its starts.
    fn counting(
        starts: &Arc<AtomicUsize>,
    ) -> impl FnMut(CancellationToken) -> futures::future::BoxFuture<'static, ()> + use<> {
        let starts = starts.clone();
        move |term: CancellationToken| {
            starts.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { term.cancelled().await })
        }
    }

    /// Waits (up to 5 s) until `starts` reaches `n`, then a little longer to see it stay.
    async fn settles_at(starts: &AtomicUsize, n: usize) {
        for _ in 0..500 {
            if starts.load(Ordering::SeqCst) >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A restart loop would count on within this window.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(starts.load(Ordering::SeqCst), n);
    }

    #[tokio::test]
    async fn a_closed_leading_channel_keeps_its_value_and_runs_once() {
        let (tx, rx) = watch::channel(true);
        drop(tx);
        let starts = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(lead_with(rx, shutdown.clone(), counting(&starts)));
        settles_at(&starts, 1).await;
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn losing_and_regaining_the_lease_restarts_the_scheduler() {
        let (tx, rx) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(lead_with(rx, shutdown.clone(), counting(&starts)));
        settles_at(&starts, 0).await;
        tx.send(true).unwrap();
        settles_at(&starts, 1).await;
        // Renewing (true again) is no change of leadership.
        tx.send(true).unwrap();
        settles_at(&starts, 1).await;
        tx.send(false).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).unwrap();
        settles_at(&starts, 2).await;
        shutdown.cancel();
        task.await.unwrap();
    }
}
