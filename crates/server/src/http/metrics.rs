//! `GET /metrics`: the Prometheus scrape endpoint.
//!
//! Not behind authentication or Host validation: Prometheus (or a ServiceMonitor) scrapes the
//! pod IP without credentials, and the metrics carry no secret (labels are tool, toolset and
//! outcome names and fixed reasons).

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};

use super::Health;
use crate::{mcp::Peers, observe::metrics::Sample, registry::Registry};

struct Scrape {
    registry: Arc<Registry>,
    peers: Arc<Peers>,
    health: Arc<Health>,
}

/// The `/metrics` route.
pub fn router(registry: Arc<Registry>, peers: Arc<Peers>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::new(Scrape {
            registry,
            peers,
            health,
        }))
}

async fn metrics(State(scrape): State<Arc<Scrape>>) -> Response {
    let snapshot = scrape.registry.snapshot();
    let sample = Sample {
        active_sessions: scrape.peers.len(),
        toolsets: snapshot.toolsets().count(),
        tools: snapshot.tools().len(),
        // `started` is set once the registry holds its first declared state.
        sync_ready: scrape.health.is_started(),
    };
    let body = scrape.registry.guards().metrics().encode(sample);
    (
        [(header::CONTENT_TYPE, crate::observe::metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}
