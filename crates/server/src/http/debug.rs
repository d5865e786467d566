//! `GET /debug/info`: what this server is serving, for an operator checking a deployment.
//!
//! It answers the first questions of a support case (which version, since when, from which
//! source, which links and tools, which authentication) in one request, without kubectl. It
//! never shows a credential: links are described by name, type and problem (scrubbed), never
//! by their connection settings.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Instant,
};

use axum::{Json, Router, extract::State, middleware, response::IntoResponse, routing::get};
use serde_json::{Value, json};

use super::hosts::{AllowedHosts, require_allowed_host};
use crate::{
    Settings, SourceKind,
    auth::Auth,
    mcp::CallLimits,
    registry::{Registry, ToolsetKey},
    source::{DesiredState, StateReceiver},
};

/// The desired state the server follows, once it is given one (see
/// [`crate::Server::follow_state`]).
#[derive(Clone, Default)]
pub struct DesiredView(Arc<RwLock<Option<StateReceiver>>>);

impl DesiredView {
    /// Reports `state` from now on.
    pub fn set(&self, state: StateReceiver) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    fn current(&self) -> Option<Arc<DesiredState>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|state| state.borrow().clone())
    }
}

struct Debug {
    started: Instant,
    server_name: String,
    source: SourceKind,
    stateless: bool,
    limits: CallLimits,
    registry: Arc<Registry>,
    desired: DesiredView,
    auth: Arc<Auth>,
}

/// The `/debug` routes, guarded by Host validation.
pub fn router(
    registry: Arc<Registry>,
    settings: &Settings,
    desired: DesiredView,
    auth: Arc<Auth>,
) -> Router {
    let debug = Arc::new(Debug {
        started: Instant::now(),
        server_name: settings.server_name.clone(),
        source: settings.source,
        stateless: settings.stateless,
        limits: settings.limits,
        registry,
        desired,
        auth,
    });
    Router::new()
        .route("/debug/info", get(info))
        .with_state(debug)
        .layer(middleware::from_fn_with_state(
            AllowedHosts::new(super::allowed_hosts(&settings.allowed_hosts)),
            require_allowed_host,
        ))
}

/// How clients authenticate, as configured now.
fn auth_mode(auth: &Auth) -> &'static str {
    let auth = auth.config().spec;
    match (auth.api_keys.is_some(), auth.oidc.is_some()) {
        (true, true) => "api-keys+oidc",
        (true, false) => "api-keys",
        (false, true) => "oidc",
        (false, false) if auth.allow_unauthenticated => "unauthenticated",
        (false, false) => "none",
    }
}

async fn info(State(debug): State<Arc<Debug>>) -> impl IntoResponse {
    Json(describe(&debug))
}

fn describe(debug: &Debug) -> Value {
    let snapshot = debug.registry.snapshot();
    let guards = debug.registry.guards();
    let scrubber = guards.scrubber();
    let state = debug.desired.current();
    let tools_of = |key: &ToolsetKey| {
        snapshot
            .toolsets()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, n)| n)
    };
    let links: Vec<Value> = match &state {
        Some(state) => state
            .links
            .iter()
            .map(|link| {
                let key = ToolsetKey::link(link.name());
                json!({
                    "name": link.name(),
                    "type": link.link.spec.backend().ok().map(|b| b.link_type().as_str()),
                    "write": link.link.spec.write_access,
                    "toolset": key.as_str(),
                    "tools": tools_of(&key),
                    "problem": link.problem.as_deref().map(|p| scrubber.scrub(p).into_owned()),
                })
            })
            .collect(),
        None => snapshot
            .toolsets()
            .filter_map(|(key, tools)| {
                let name = key.as_str().strip_prefix("link/")?;
                Some(json!({
                    "name": name,
                    "type": null,
                    "toolset": key.as_str(),
                    "tools": tools,
                    "problem": null,
                }))
            })
            .collect(),
    };
    let policy = guards.policy();
    json!({
        "name": debug.server_name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": debug.started.elapsed().as_secs(),
        "source": debug.source.as_str(),
        "auth": auth_mode(&debug.auth),
        "stateless": debug.stateless,
        "limits": {
            "toolTimeoutSeconds": debug.limits.timeout.as_secs_f64(),
            "maxOutputBytes": debug.limits.max_output_bytes,
            "callsPerMinutePerTool": policy.calls_per_minute_per_tool.map(|n| n.get()),
            "maskErrorDetails": policy.mask_error_details,
        },
        "links": links,
        "toolsets": snapshot
            .toolsets()
            .map(|(key, tools)| json!({ "key": key.as_str(), "tools": tools }))
            .collect::<Vec<_>>(),
        "tools": snapshot.tools().iter().map(|t| t.name.as_ref()).collect::<Vec<&str>>(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use linkmcp_api::server::{ApiKeysSpec, AuthSpec};
    use linkmcp_toolsets::credentials::Credentials;
    use tokio::sync::watch;

    use super::*;
    use crate::{auth::AuthConfig, source::LinkState};

    fn debug(desired: DesiredView, auth: AuthConfig) -> Debug {
        let registry = Arc::new(Registry::new());
        crate::registry::core::register(&registry, "demo", false).unwrap();
        Debug {
            started: Instant::now(),
            server_name: "demo".into(),
            source: SourceKind::Manifests,
            stateless: false,
            limits: CallLimits::default(),
            registry,
            desired,
            auth: Arc::new(Auth::new(&auth)),
        }
    }

    #[test]
    fn describes_links_without_their_secrets() {
        let link: linkmcp_api::McpLink = serde_yaml::from_str(
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: orders}\n\
             spec: {serverRef: {name: demo}, postgres: {host: db.internal, database: orders}}\n",
        )
        .unwrap();
        let password = "orders-password-1";
        let state = DesiredState {
            links: vec![LinkState {
                link,
                credentials: Credentials::new(BTreeMap::from([(
                    "password".to_owned(),
                    password.to_owned(),
                )])),
                problem: Some(format!("cannot connect with {password}")),
            }],
            ..DesiredState::default()
        };
        let desired = DesiredView::default();
        let debug = debug(
            desired.clone(),
            AuthConfig {
                spec: AuthSpec {
                    api_keys: Some(ApiKeysSpec {
                        secret_name: "keys".into(),
                    }),
                    ..AuthSpec::default()
                },
                api_keys: Credentials::default(),
            },
        );
        debug
            .registry
            .guards()
            .scrubber()
            .set_values(crate::observe::scrub::secret_values(&state));
        let (_tx, rx) = watch::channel(Arc::new(state));
        desired.set(rx);

        let info = describe(&debug);
        assert_eq!(info["source"], "manifests");
        assert_eq!(info["auth"], "api-keys");
        assert_eq!(info["tools"], json!(["ping", "server_info"]));
        assert_eq!(
            info["links"],
            json!([{
                "name": "orders",
                "type": "postgres",
                "write": false,
                "toolset": "link/orders",
                "tools": 0,
                "problem": "cannot connect with [REDACTED]",
            }])
        );
        let text = info.to_string();
        assert!(
            !text.contains(password) && !text.contains("db.internal"),
            "{text}"
        );
    }

    #[test]
    fn without_a_state_links_come_from_the_registry() {
        let info = describe(&debug(
            DesiredView::default(),
            AuthConfig::allow_unauthenticated(),
        ));
        assert_eq!(info["auth"], "unauthenticated");
        assert_eq!(info["links"], json!([]));
        assert_eq!(info["toolsets"], json!([{"key": "core", "tools": 2}]));
        assert_eq!(info["limits"]["maskErrorDetails"], false);
    }
}
