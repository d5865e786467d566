//! Leader election over a coordination.k8s.io Lease, so that of several controller replicas
//! exactly one reconciles and writes.
//!
//! kube-rs has no elector of its own; `kube-lease-manager` holds the Lease with server-side
//! apply, renews it before it expires, and takes it over when its holder stops renewing. The
//! leader releases the Lease on shutdown, so a rolling update hands over at once instead of
//! after the Lease duration.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds a Lease stays valid after its last renewal.
pub const LEASE_SECONDS: u64 = 15;
/// Seconds before expiry the holder renews.
pub const GRACE_SECONDS: u64 = 5;

/// A running election: whether this replica leads, and the task keeping the Lease.
pub struct Election {
    /// True while this replica holds the Lease.
    pub leading: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for Lease `lease` in `namespace` as `identity`.
    pub async fn start(
        client: Client,
        namespace: &str,
        lease: &str,
        identity: &str,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, lease)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(GRACE_SECONDS)
            .with_field_manager(format!("{}-lease", linkmcp_api::names::manager::CONTROLLER))
            .build()
            .await?;
        let (leading, task) = manager.watch().await;
        Ok(Self { leading, task })
    }

    /// Leaves the election, releasing the Lease if held.
    pub async fn stop(self) {
        drop(self.leading);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leader Lease released"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot release the leader Lease"),
            Err(err) => tracing::warn!(error = %err, "the leader election task failed"),
        }
    }
}

/// This replica's identity in the election: the pod name when the Downward API provides it,
/// else the host name, with the process id.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "linkmcp-controller".to_owned());
    format!("{host}-{}", std::process::id())
}
