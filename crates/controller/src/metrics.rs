//! The controller's Prometheus metrics, served at `/metrics` ([`crate::http`]).
//!
//! What an operator of the controller asks: is it reconciling (`reconciles_total`, durations),
//! what fails and why (`reconcile_errors_total` by the error's fixed metric label), and does
//! a steady cluster cost API writes (`api_writes_total`: it should stop growing once every
//! object has converged). Every name carries the `linkmcp_controller_` prefix.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-kind metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The reconciled kind (`McpServer`, `McpLink`, `Agent`, `AiTask`).
    pub kind: String,
}

/// Labels of `reconcile_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: String,
    /// [`crate::Error::metric_label`].
    pub reason: String,
}

/// Labels of `api_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The written kind (`Deployment`, `McpLink`, ...).
    pub kind: String,
    /// `apply`, `delete`, `status` or `finalizer`.
    pub verb: String,
}

type DurationFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

/// The controller's metrics and the registry they are encoded from.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: DurationFamily,
    writes: Family<WriteLabels, Counter>,
    leader: Gauge,
}

fn duration_histogram() -> Histogram {
    // 5 ms .. ~20 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("linkmcp_controller");
        let reconciles = Family::<KindLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(duration_histogram);
        let writes = Family::<WriteLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles started, by kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and error reason",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            durations.clone(),
        );
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API (server-side applies, deletes, status and finalizer \
             patches), by written kind and verb; flat once a cluster is steady",
            writes.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and reconciles, else 0",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            durations,
            writes,
            leader,
        }
    }
}

impl Metrics {
    /// Counts a finished reconcile of `kind` that took `elapsed`.
    pub fn reconciled(&self, kind: &str, elapsed: Duration) {
        let labels = KindLabels {
            kind: kind.to_owned(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a failed reconcile.
    pub fn failed(&self, kind: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one write to the API.
    pub fn wrote(&self, kind: &str, verb: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
                verb: verb.to_owned(),
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// All writes counted so far (tests and the e2e suite read it).
    pub fn writes_total(&self) -> u64 {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return 0;
        }
        sum_of(&text, "linkmcp_controller_api_writes_total")
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The sum of every sample of `metric` in an OpenMetrics text.
pub fn sum_of(text: &str, metric: &str) -> u64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn counts_are_encoded_with_the_prefix() {
        let metrics = Metrics::default();
        metrics.reconciled("McpServer", Duration::from_millis(12));
        metrics.failed("McpLink", "api_conflict");
        metrics.wrote("Deployment", "apply");
        metrics.wrote("McpServer", "status");
        metrics.set_leader(true);
        let text = metrics.encode().unwrap();
        assert!(text.contains("linkmcp_controller_reconciles_total{kind=\"McpServer\"} 1"));
        assert!(text.contains(
            "linkmcp_controller_reconcile_errors_total{kind=\"McpLink\",reason=\"api_conflict\"} 1"
        ));
        assert!(text.contains("linkmcp_controller_reconcile_duration_seconds_bucket"));
        assert!(text.contains("linkmcp_controller_leader 1"));
        assert_eq!(metrics.writes_total(), 2);
    }
}
