//! The live MCP sessions, and the fan-out of registry changes to them.
//!
//! A session of protocol version 2025-11-25 or older hears about new or removed tools, prompts
//! and resources only if the server sends it the `list_changed` notifications (on its
//! standalone GET stream), and about a resource it subscribed to only through
//! `notifications/resources/updated`. The registry is shared, so one task watches it and
//! notifies every session still open; closed sessions are pruned as they are found.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rmcp::{
    Peer, RoleServer,
    model::{ResourceUpdatedNotificationParam, ServerNotification},
};
use tokio_util::sync::CancellationToken;

use crate::registry::{Changed, Registry, Snapshot};

/// How long one session may take to accept a round of notifications before it is skipped; a
/// stuck client must not delay the others.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The resource URIs one session subscribed to (`resources/subscribe`).
pub type Subscriptions = Arc<Mutex<BTreeSet<String>>>;

/// The URIs in `subscriptions`, copied out of the lock.
pub fn subscribed(subscriptions: &Subscriptions) -> Vec<String> {
    subscriptions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .cloned()
        .collect()
}

#[derive(Debug, Clone)]
struct Session {
    peer: Peer<RoleServer>,
    subscriptions: Subscriptions,
}

/// The sessions that completed their handshake.
#[derive(Debug, Default)]
pub struct Peers {
    sessions: Mutex<Vec<Session>>,
}

impl Peers {
    /// Keeps `peer`, with the resources it subscribes to, to notify until its session closes.
    pub fn add(&self, peer: Peer<RoleServer>, subscriptions: Subscriptions) {
        let mut sessions = self.open();
        sessions.push(Session {
            peer,
            subscriptions,
        });
    }

    /// The sessions, with the closed ones dropped.
    fn open(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|s| !s.peer.is_transport_closed());
        sessions
    }

    /// The number of sessions still open.
    pub fn len(&self) -> usize {
        self.open().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells every open session, concurrently, what `changed`: the `list_changed` of each
    /// changed list, and `resources/updated` for each resource it subscribed to that `now`
    /// still serves (a registry change is the only change of a resource the server sees).
    /// Returns how many sessions
    /// took all of theirs.
    pub async fn notify(&self, changed: Changed, now: &Snapshot) -> usize {
        let sessions: Vec<Session> = self.open().clone();
        let sends = sessions.iter().map(|session| async move {
            let round = async {
                for notification in list_changed(changed) {
                    session.peer.send_notification(notification).await?;
                }
                // A resource no longer served is announced by resources/list_changed.
                let served = subscribed(&session.subscriptions)
                    .into_iter()
                    .filter(|uri| now.resource_owner(uri).is_some());
                for uri in served {
                    session
                        .peer
                        .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                        .await?;
                }
                Ok::<_, rmcp::service::ServiceError>(())
            };
            match tokio::time::timeout(NOTIFY_TIMEOUT, round).await {
                Ok(Ok(())) => true,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "session did not take a notification");
                    false
                }
                Err(_) => {
                    tracing::warn!("session did not take its notifications in time; skipped");
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

/// The `list_changed` notifications that announce `changed`.
pub fn list_changed(changed: Changed) -> Vec<ServerNotification> {
    use rmcp::model::{
        PromptListChangedNotification, ResourceListChangedNotification, ToolListChangedNotification,
    };
    let mut notifications = Vec::new();
    if changed.tools {
        notifications.push(ToolListChangedNotification::default().into());
    }
    if changed.prompts {
        notifications.push(PromptListChangedNotification::default().into());
    }
    if changed.resources {
        notifications.push(ResourceListChangedNotification::default().into());
    }
    notifications
}

/// Notifies every session in `peers` after each change of `registry`, until `stop` is
/// cancelled or the registry is dropped. Changes that arrive while a round of notifications is
/// being sent are coalesced into the next round.
pub async fn forward_changes(registry: Arc<Registry>, peers: Arc<Peers>, stop: CancellationToken) {
    let mut changes = registry.subscribe();
    changes.borrow_and_update();
    let mut last = registry.snapshot();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                changes.borrow_and_update();
                let next = registry.snapshot();
                let changed = next.changed_since(&last);
                last = next;
                let sent = peers.notify(changed, &last).await;
                tracing::debug!(generation = last.generation(), ?changed, sessions = sent, "sent registry change");
            }
        }
    }
}
