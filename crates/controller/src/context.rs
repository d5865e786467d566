//! What every reconcile shares: the API client, the Event recorder, metrics, the controller's
//! settings, the optional-API cache and the per-object retry backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::server::apis::ApiCache;

/// The controller's settings, from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Server image used when an McpServer names none.
    pub server_image: String,
    /// The cluster's DNS domain, for the Service names the server accepts as Host.
    pub cluster_domain: String,
    /// Field manager of every server-side apply.
    pub field_manager: String,
}

impl Settings {
    /// The server image of this controller's own version.
    pub fn default_server_image() -> String {
        format!(
            "ghcr.io/linkmcp/linkmcp-server:{}",
            env!("CARGO_PKG_VERSION")
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server_image: Self::default_server_image(),
            cluster_domain: "cluster.local".to_owned(),
            field_manager: linkmcp_api::names::manager::CONTROLLER.to_owned(),
        }
    }
}

/// Shared state of the reconcilers.
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// Publishes Events (see [`crate::events`]).
    pub recorder: Recorder,
    /// The controller's metrics.
    pub metrics: Arc<Metrics>,
    /// Flags.
    pub settings: Settings,
    /// Which optional APIs (ServiceMonitor, HTTPRoute, ...) the cluster serves.
    pub apis: ApiCache,
    backoff: Backoff,
}

impl Context {
    /// A context on `client`, reporting Events as `instance` (the pod name, when known).
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: settings.field_manager.clone(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            settings,
            apis: ApiCache::default(),
            backoff: Backoff::default(),
        }
    }

    /// The wait before retrying `key` after one more failure.
    pub fn retry_after(&self, key: &str) -> Duration {
        self.backoff.next(key)
    }

    /// Forgets the failures of `key` after a reconcile succeeded.
    pub fn succeeded(&self, key: &str) {
        self.backoff.reset(key);
    }
}

/// Per-object exponential backoff: 5 s, 10 s, 20 s, ... up to 5 minutes, so a broken object
/// neither storms the API server nor waits long once fixed.
#[derive(Default)]
struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    const FIRST: Duration = Duration::from_secs(5);
    const MAX: Duration = Duration::from_secs(300);

    fn next(&self, key: &str) -> Duration {
        let mut failures = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        let wait = Self::FIRST
            .saturating_mul(2u32.saturating_pow(*count))
            .min(Self::MAX);
        *count = count.saturating_add(1);
        wait
    }

    fn reset(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_resets() {
        let backoff = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| backoff.next("a").as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff.next("b").as_secs(), 5, "keys are independent");
        backoff.reset("a");
        assert_eq!(backoff.next("a").as_secs(), 5);
    }
}
