//! Binds every MCP session to the identity that opened it.
//!
//! Each `/mcp` request is authenticated on its own ([`crate::auth::require_auth`]), but an
//! `Mcp-Session-Id` is only a random string that rmcp accepts from whoever sends it. Without
//! this layer a caller holding someone else's session id (leaked in a log or a proxy, guessed)
//! could post into that session, read its notification stream or end it with its own valid
//! credentials. [`bind_sessions`] records which identity's request created each session and
//! answers any other identity's use of the id with the 404 an unknown session gets, so a foreign
//! id reveals nothing, not even that it exists.
//!
//! It also bounds how many sessions exist at once (`limits.maxSessions`): a client that opens
//! sessions and never closes them cannot exhaust memory. Sessions end on DELETE or after five
//! minutes without a request (rmcp's idle timeout); an `initialize` while the bound is reached
//! gets 503 with `Retry-After`.
//!
//! Sessions are compared by [`Identity::id`] only: a refreshed JWT of the same subject with
//! other scopes keeps its session (scopes are checked on every request anyway). Only stateful
//! mode has sessions; `--stateless` does not install this layer.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode},
    middleware::Next,
    response::Response,
};
use rmcp::transport::{
    common::http_header::HEADER_SESSION_ID,
    streamable_http_server::{SessionId, SessionManager, session::local::LocalSessionManager},
};

use super::{is_json, jsonrpc_error};
use crate::auth::{ANONYMOUS, Auth, Identity};

/// The table is never pruned below this size.
const MIN_PRUNE_AT: usize = 1024;

/// Which identity opened each session.
pub struct SessionOwners {
    /// The session manager `/mcp` serves with: the authority on which sessions still exist.
    manager: Arc<LocalSessionManager>,
    /// Counts refusals (`linkmcp_auth_failures_total{reason="session_identity"}`).
    auth: Arc<Auth>,
    table: Mutex<Table>,
    min_prune_at: usize,
    max_sessions: usize,
}

struct Table {
    /// Session id -> [`Identity::id`] of the caller whose `initialize` created it.
    owners: HashMap<SessionId, String>,
    /// The size at which the next record starts a prune.
    prune_at: usize,
    /// Whether a prune is under way (only one at a time).
    pruning: bool,
}

impl SessionOwners {
    /// An empty table for the sessions of `manager`.
    pub fn new(manager: Arc<LocalSessionManager>, auth: Arc<Auth>) -> Self {
        Self::with_min_prune_at(manager, auth, MIN_PRUNE_AT)
    }

    fn with_min_prune_at(
        manager: Arc<LocalSessionManager>,
        auth: Arc<Auth>,
        min_prune_at: usize,
    ) -> Self {
        Self {
            manager,
            auth,
            table: Mutex::new(Table {
                owners: HashMap::new(),
                prune_at: min_prune_at,
                pruning: false,
            }),
            min_prune_at,
            max_sessions: usize::MAX,
        }
    }

    /// Refuses new sessions while `max` exist.
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Whether a new session may open now.
    async fn has_room(&self) -> bool {
        self.max_sessions == usize::MAX
            || self.manager.sessions.read().await.len() < self.max_sessions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The critical sections only touch the map; a panic in one leaves it consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The identity that opened `session`, if it was recorded.
    fn owner(&self, session: &str) -> Option<String> {
        self.lock().owners.get(session).cloned()
    }

    /// Records that `owner` opened `session`, pruning the table when it is due.
    ///
    /// Why prune: a record is removed when its owner DELETEs the session, but most clients
    /// never do; their sessions end when the client goes away and rmcp's idle timeout stops
    /// the session worker (which removes it from the manager), and nothing tells us. So when
    /// the table has doubled since the last prune (at least [`MIN_PRUNE_AT`] records), the
    /// records of sessions the manager no longer has are dropped. Doubling keeps the cost
    /// amortised constant per session and the table at most twice the live sessions (or the
    /// minimum). Session ids are random and never reused, so a record found dead stays dead.
    async fn record(&self, session: SessionId, owner: String) {
        let candidates: Vec<SessionId> = {
            let mut table = self.lock();
            table.owners.insert(session, owner);
            if table.pruning || table.owners.len() < table.prune_at {
                return;
            }
            table.pruning = true;
            table.owners.keys().cloned().collect()
        };
        // The manager's lock is a tokio lock: ask it with ours released.
        let mut dead = Vec::new();
        for session in candidates {
            // An error says nothing about the session: keep its record.
            if matches!(self.manager.has_session(&session).await, Ok(false)) {
                dead.push(session);
            }
        }
        let mut table = self.lock();
        for session in &dead {
            table.owners.remove(session);
        }
        table.prune_at = (table.owners.len() * 2).max(self.min_prune_at);
        table.pruning = false;
        let (removed, kept) = (dead.len(), table.owners.len());
        drop(table);
        tracing::debug!(removed, kept, "pruned the records of ended MCP sessions");
    }

    /// Drops the record of `session` (its owner ended it).
    fn forget(&self, session: &str) {
        self.lock().owners.remove(session);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().owners.len()
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(HEADER_SESSION_ID)
        .and_then(|value| value.to_str().ok())
}

/// What a request for a session this caller may not use gets — the same whether the session
/// does not exist or another identity opened it.
fn session_not_found() -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        -32001,
        "Session not found: it does not exist or has ended; initialize a new one".to_owned(),
    )
}

/// For `/mcp` in stateful mode, inside [`crate::auth::require_auth`]: records the identity that
/// opens each session and refuses the session's id to every other identity with 404.
///
/// A request without `Mcp-Session-Id` whose response carries one (`initialize`) records the
/// session for the caller. A request with a recorded session of another identity is refused;
/// one with an unknown session goes to rmcp, whose bare-text 404 is replaced by the same
/// JSON-RPC answer a refused one gets. A successful DELETE by the owner removes the record.
pub async fn bind_sessions(
    State(owners): State<Arc<SessionOwners>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request
        .extensions()
        .get::<Identity>()
        .map_or_else(|| ANONYMOUS.to_owned(), |identity| identity.id.clone());
    let Some(session) = session_id(request.headers()).map(str::to_owned) else {
        if request.method() == Method::POST && !owners.has_room().await {
            tracing::warn!(
                identity = %caller,
                max_sessions = owners.max_sessions,
                "MCP session refused: the server holds its maximum of sessions"
            );
            let mut refused = jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                -32000,
                format!(
                    "the server holds its maximum of {} MCP sessions (limits.maxSessions); \
                     close sessions you no longer use (DELETE /mcp) or retry later",
                    owners.max_sessions
                ),
            );
            refused
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
            return refused;
        }
        let response = next.run(request).await;
        if let Some(session) = session_id(response.headers()) {
            owners.record(session.into(), caller).await;
        }
        return response;
    };
    if let Some(owner) = owners.owner(&session)
        && owner != caller
    {
        tracing::info!(
            identity = %caller,
            session_owner = %owner,
            method = %request.method(),
            "MCP session refused: it was opened by another identity"
        );
        owners.auth.count_foreign_session();
        return session_not_found();
    }
    let delete = request.method() == Method::DELETE;
    let response = next.run(request).await;
    if delete && response.status().is_success() {
        owners.forget(&session);
    }
    // rmcp answers an unknown session with a bare-text 404; JSON-RPC errors of requests in a
    // session are HTTP 200, so a non-JSON 404 here is that one.
    if response.status() == StatusCode::NOT_FOUND && !is_json(response.headers()) {
        return session_not_found();
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::auth::AuthConfig;

    fn owners(manager: &Arc<LocalSessionManager>, min_prune_at: usize) -> SessionOwners {
        SessionOwners::with_min_prune_at(
            manager.clone(),
            Arc::new(Auth::new(&AuthConfig::allow_unauthenticated())),
            min_prune_at,
        )
    }

    async fn open(manager: &LocalSessionManager) -> SessionId {
        manager.create_session().await.unwrap().0
    }

    #[tokio::test]
    async fn records_are_kept_until_forgotten() {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = owners(&manager, MIN_PRUNE_AT);
        let a = open(&manager).await;
        owners.record(a.clone(), "apikey:a".into()).await;
        assert_eq!(owners.owner(&a).as_deref(), Some("apikey:a"));
        assert_eq!(owners.owner("unknown"), None);

        owners.forget(&a);
        assert_eq!(owners.owner(&a), None);
        assert_eq!(owners.len(), 0);
    }

    #[tokio::test]
    async fn ended_sessions_are_pruned_when_the_table_doubles() {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = owners(&manager, 4);
        let live = [open(&manager).await, open(&manager).await];
        for session in &live {
            owners.record(session.clone(), "apikey:a".into()).await;
        }
        // Sessions the manager never had (or ended without a DELETE) are dropped at the 4th
        // record, the live ones and the one just recorded stay.
        owners.record("ended-1".into(), "apikey:a".into()).await;
        assert_eq!(owners.len(), 3, "below the threshold nothing is pruned");
        let third = open(&manager).await;
        owners.record(third.clone(), "apikey:b".into()).await;
        assert_eq!(owners.len(), 3);
        assert_eq!(owners.owner("ended-1"), None);
        assert_eq!(owners.owner(&third).as_deref(), Some("apikey:b"));

        // The next prune comes when the table has doubled past its size after this one (3).
        manager.close_session(&live[0]).await.unwrap();
        for n in 0..2 {
            owners
                .record(format!("ended-{n}-2").into(), "apikey:a".into())
                .await;
        }
        assert_eq!(owners.len(), 5, "5 < 6: not yet");
        owners.record("ended-3".into(), "apikey:a".into()).await;
        let mut kept: Vec<_> = owners.lock().owners.keys().cloned().collect();
        kept.sort();
        let mut expected = vec![live[1].clone(), third];
        expected.sort();
        assert_eq!(kept, expected);
        assert_eq!(owners.lock().prune_at, 4, "never below the minimum");
    }
}
