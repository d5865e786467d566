//! The live MCP sessions, and the fan-out of registry changes to them.
//!
//! A session of protocol version 2025-11-25 or older hears about new or removed tools only if
//! the server sends it `notifications/tools/list_changed` (on its standalone GET stream). The
//! registry is shared, so one task watches it and notifies every session still open; closed
//! sessions are pruned as they are found.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rmcp::{Peer, RoleServer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long one session may take to accept a notification before it is skipped; a stuck
/// client must not delay the others.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The peers of the sessions that completed their handshake.
#[derive(Debug, Default)]
pub struct Peers {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Peers {
    /// Keeps `peer` to notify until its session closes.
    pub fn add(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    /// The number of sessions still open.
    pub fn len(&self) -> usize {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        peers.retain(|p| !p.is_transport_closed());
        peers.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `notifications/tools/list_changed` to every open session, concurrently; returns
    /// how many accepted it.
    pub async fn notify_tool_list_changed(&self) -> usize {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        let sends = peers.iter().map(|peer| async move {
            match tokio::time::timeout(NOTIFY_TIMEOUT, peer.notify_tool_list_changed()).await {
                Ok(Ok(())) => true,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "session did not take tools/list_changed");
                    false
                }
                Err(_) => {
                    tracing::warn!("session did not take tools/list_changed in time; skipped");
                    false
                }
            }
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .filter(|sent| *sent)
            .count()
    }
}

/// Notifies every session in `peers` after each registry change seen on `changes`, until
/// `stop` is cancelled or the registry is dropped. Changes that arrive while a round of
/// notifications is being sent are coalesced into the next round.
pub async fn forward_changes(
    mut changes: watch::Receiver<u64>,
    peers: Arc<Peers>,
    stop: CancellationToken,
) {
    changes.borrow_and_update();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let generation = *changes.borrow_and_update();
                let sent = peers.notify_tool_list_changed().await;
                tracing::debug!(generation, sessions = sent, "sent tools/list_changed");
            }
        }
    }
}
