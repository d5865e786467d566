//! Who may call this server, and which tools they may call (DESIGN §3 `McpServer.spec.auth`,
//! §7 security model).
//!
//! Every HTTP request to a protected route is authenticated on its own — an MCP session id is
//! not a credential — by the [`require_auth`] middleware, which puts the caller's [`Identity`]
//! into the request extensions; each MCP session is also bound to the identity that opened it
//! (see `http::sessions`). Credentials are `Authorization: Bearer` API keys (from the
//! McpServer's Secret, see `api_keys.rs`) or OIDC JWTs (see `oidc.rs`); [`Policy`] decides
//! what an identity may do with its scopes.
//!
//! The configuration changes at run time (a rotated Secret, re-read manifests), so [`Auth`]
//! holds an immutable authenticator behind a lock and swaps it whole in [`Auth::update`]; a
//! request in progress keeps the one it started with. [`follow`] applies every new
//! [`DesiredState`] to it.

mod api_keys;
mod middleware;
mod oidc;
mod policy;

pub use middleware::{AuthError, challenge_tool_calls, protect, require_auth};
pub use policy::Policy;

use std::{
    collections::BTreeSet,
    sync::{Arc, LazyLock, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use axum::http::{HeaderMap, header};
use linkmcp_api::server::AuthSpec;
use linkmcp_toolsets::credentials::Credentials;
use rmcp::model::Tool;

use crate::{
    observe::Metrics,
    source::{DesiredState, StateReceiver},
};
use api_keys::ApiKeys;
use oidc::OidcVerifier;

/// Who is calling: the identity written to the audit log, and the scopes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `apikey:<key id>`, `jwt:<identity claim>` or `anonymous`.
    pub id: String,
    /// The scopes of an OIDC token (`scope` and `scp` claims).
    pub scopes: BTreeSet<String>,
    /// Whether the identity holds every scope (API keys do).
    pub all_scopes: bool,
}

/// The identity of requests admitted without credentials (`allowUnauthenticated: true`).
pub const ANONYMOUS: &str = "anonymous";

/// The `linkmcp_auth_failures_total` reason of a request refused because it used an MCP
/// session opened by another identity.
pub const SESSION_IDENTITY: &str = "session_identity";

impl Identity {
    /// A caller without credentials: no scopes.
    pub fn anonymous() -> Self {
        Self {
            id: ANONYMOUS.to_owned(),
            scopes: BTreeSet::new(),
            all_scopes: false,
        }
    }

    /// The holder of the API key `key_id`: every scope.
    pub fn api_key(key_id: &str) -> Self {
        Self {
            id: format!("apikey:{key_id}"),
            scopes: BTreeSet::new(),
            all_scopes: true,
        }
    }

    /// The subject of a validated JWT, with the token's scopes.
    pub fn jwt(subject: &str, scopes: BTreeSet<String>) -> Self {
        Self {
            id: format!("jwt:{subject}"),
            scopes,
            all_scopes: false,
        }
    }

    /// Whether the identity holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.all_scopes || self.scopes.contains(scope)
    }

    /// Whether the caller sent no credentials.
    pub fn is_anonymous(&self) -> bool {
        self.id == ANONYMOUS && !self.all_scopes
    }
}

/// The identity assumed where a request carries none (it did not pass [`require_auth`]): no
/// scopes, so it sees and calls only tools no scope protects.
pub(crate) static UNAUTHENTICATED: LazyLock<Identity> = LazyLock::new(Identity::anonymous);

/// Client authentication as declared: the McpServer's `spec.auth` and the API keys of the
/// Secret it names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthConfig {
    /// `McpServer.spec.auth`.
    pub spec: AuthSpec,
    /// The keys of the `spec.auth.apiKeys` Secret (key id -> key); used only when the spec
    /// names that Secret.
    pub api_keys: Credentials,
}

// Every field compares by plain value equality (strings, booleans, lists).
impl Eq for AuthConfig {}

impl AuthConfig {
    /// Admit everyone, as `anonymous`; for tests and embedding, never a server's default.
    pub fn allow_unauthenticated() -> Self {
        Self {
            spec: AuthSpec {
                allow_unauthenticated: true,
                ..AuthSpec::default()
            },
            api_keys: Credentials::default(),
        }
    }

    /// What `state` declares; a state without an McpServer admits no one.
    pub fn from_state(state: &DesiredState) -> Self {
        Self {
            spec: state
                .server
                .as_ref()
                .and_then(|server| server.spec.auth.clone())
                .unwrap_or_default(),
            api_keys: state.api_keys.clone(),
        }
    }
}

/// How often the "admits no one" warning is repeated while requests keep being refused.
const NO_ONE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The live authenticator: swapped whole when the configuration changes.
pub struct Auth {
    current: RwLock<Arc<Authenticator>>,
    no_one_logged: Mutex<Option<Instant>>,
    /// Where refusals are counted (`linkmcp_auth_failures`), when the server has metrics.
    metrics: Option<Arc<Metrics>>,
}

/// One immutable configuration, ready to check requests.
struct Authenticator {
    config: AuthConfig,
    api_keys: ApiKeys,
    oidc: Option<Arc<OidcVerifier>>,
    policy: Policy,
}

impl Authenticator {
    fn build(config: AuthConfig, previous: Option<&Authenticator>) -> Self {
        let api_keys = if config.spec.api_keys.is_some() {
            ApiKeys::new(&config.api_keys)
        } else {
            ApiKeys::default()
        };
        // Keep the verifier (and its cached signing keys) when only other settings changed.
        let oidc = config.spec.oidc.as_ref().map(|spec| {
            previous
                .and_then(|p| p.oidc.as_ref())
                .filter(|verifier| verifier.spec() == spec)
                .cloned()
                .unwrap_or_else(|| Arc::new(OidcVerifier::new(spec.clone())))
        });
        let policy = Policy::new(&config.spec);
        Self {
            config,
            api_keys,
            oidc,
            policy,
        }
    }

    /// No credential can succeed and anonymous access is off.
    fn admits_no_one(&self) -> bool {
        self.api_keys.is_empty() && self.oidc.is_none() && !self.config.spec.allow_unauthenticated
    }

    fn log_configuration(&self) {
        let spec = &self.config.spec;
        let key_ids = self.api_keys.ids().collect::<Vec<_>>().join(", ");
        tracing::info!(
            api_keys = %key_ids,
            api_key_secret = spec.api_keys.as_ref().map(|a| a.secret_name.as_str()),
            oidc_issuer = spec.oidc.as_ref().map(|o| o.issuer.as_str()),
            required_scopes = %spec.required_scopes.join(" "),
            tool_scope_rules = spec.tool_scopes.len(),
            allow_unauthenticated = spec.allow_unauthenticated,
            "client authentication configured"
        );
        if self.admits_no_one() {
            tracing::warn!(
                reason = %self.no_one_reason(),
                "this McpServer allows no one: every request will be refused"
            );
        }
        if spec.allow_unauthenticated && !spec.required_scopes.is_empty() {
            tracing::warn!(
                required_scopes = %spec.required_scopes.join(" "),
                "allowUnauthenticated admits no one while requiredScopes is set: anonymous \
                 callers hold no scopes"
            );
        }
    }

    fn no_one_reason(&self) -> String {
        match &self.config.spec.api_keys {
            Some(keys) => format!(
                "spec.auth.apiKeys names Secret `{}`, which holds no keys, no OIDC issuer is \
                 configured, and allowUnauthenticated is not set",
                keys.secret_name
            ),
            None => "spec.auth configures no API keys and no OIDC issuer, and does not set \
                     allowUnauthenticated: true"
                .to_owned(),
        }
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let identity = match bearer_token(headers)? {
            Some(token) => self.verify(token).await?,
            None if self.config.spec.allow_unauthenticated => Identity::anonymous(),
            None => return Err(AuthError::missing()),
        };
        let missing = self.policy.missing_required(&identity);
        if missing.is_empty() {
            Ok(identity)
        } else {
            Err(AuthError::insufficient_scope(
                missing,
                identity.is_anonymous(),
                "this server".to_owned(),
            ))
        }
    }

    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        // Every key is compared, whatever the token looks like, so that timing reveals nothing.
        if let Some(key_id) = self.api_keys.find(token) {
            return Ok(Identity::api_key(key_id));
        }
        match &self.oidc {
            Some(oidc) if oidc::looks_like_jwt(token) => oidc.verify(token).await,
            Some(_) => Err(AuthError::invalid_token(
                "the bearer token is neither a valid API key nor a JWT",
            )),
            None if self.api_keys.is_empty() => Err(AuthError::invalid_token(
                "this server accepts no bearer tokens",
            )),
            None => Err(AuthError::invalid_token(
                "the bearer token is not a valid API key",
            )),
        }
    }
}

/// The bearer token of the request: `None` without an Authorization header.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::invalid_token(
            "the request carries several Authorization headers",
        ));
    }
    let value = value.to_str().map_err(|_| {
        AuthError::invalid_token("the Authorization header is not visible ASCII text")
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::unsupported_scheme());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::invalid_token("the bearer token is empty"));
    }
    Ok(Some(token))
}

impl Auth {
    /// An authenticator for `config`.
    pub fn new(config: &AuthConfig) -> Self {
        let authenticator = Authenticator::build(config.clone(), None);
        authenticator.log_configuration();
        Self {
            current: RwLock::new(Arc::new(authenticator)),
            no_one_logged: Mutex::new(None),
            metrics: None,
        }
    }

    /// Counts every refused request in `metrics`, by [`AuthError::reason`].
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Counts a refused request.
    pub(crate) fn count_refusal(&self, err: &AuthError) {
        if let Some(metrics) = &self.metrics {
            metrics.auth_failure(err.reason());
        }
    }

    /// Counts a request refused for using an MCP session another identity opened (see
    /// `http::sessions`), under the reason [`SESSION_IDENTITY`].
    pub(crate) fn count_foreign_session(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.auth_failure(SESSION_IDENTITY);
        }
    }

    /// Replaces the configuration; requests already being checked finish with the old one.
    /// Nothing happens when it is unchanged.
    pub fn update(&self, spec: &AuthSpec, api_keys: &Credentials) {
        let current = self.current();
        if current.config.spec == *spec && current.config.api_keys == *api_keys {
            return;
        }
        let config = AuthConfig {
            spec: spec.clone(),
            api_keys: api_keys.clone(),
        };
        let next = Arc::new(Authenticator::build(config, Some(&current)));
        next.log_configuration();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        *self
            .no_one_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn current(&self) -> Arc<Authenticator> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> AuthConfig {
        self.current().config.clone()
    }

    /// Authenticates a request by its headers and checks the scopes every caller needs.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let authenticator = self.current();
        if authenticator.admits_no_one() {
            self.log_no_one(&authenticator);
            return Err(AuthError::NoOneAdmitted);
        }
        authenticator.authenticate(headers).await
    }

    fn log_no_one(&self, authenticator: &Authenticator) {
        let mut last = self
            .no_one_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= NO_ONE_LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(
                reason = %authenticator.no_one_reason(),
                "request refused: this McpServer allows no one"
            );
        }
    }

    /// The scopes `identity` lacks to call `tool`: those every caller needs and those of each
    /// `toolScopes` entry matching the name. Empty: the call is allowed.
    pub fn missing_tool_scopes(&self, identity: &Identity, tool: &str) -> Vec<String> {
        self.current().policy.missing_for_tool(identity, tool)
    }

    /// Whether some tools need scopes beyond those every caller needs.
    pub fn restricts_tools(&self) -> bool {
        self.current().policy.restricts_tools()
    }

    /// `tools` less those `identity` may not call.
    pub fn visible_tools(&self, identity: &Identity, mut tools: Vec<Tool>) -> Vec<Tool> {
        let authenticator = self.current();
        let policy = &authenticator.policy;
        if identity.all_scopes
            || (!policy.restricts_tools() && policy.missing_required(identity).is_empty())
        {
            return tools;
        }
        tools.retain(|tool| policy.missing_for_tool(identity, &tool.name).is_empty());
        tools
    }
}

/// What a call of `tool` by `identity` may know of other tools: for `find_tools`, which lists
/// tools, exactly those `tools/list` shows this caller; other tools get no such check.
pub fn visibility_for(
    auth: &Arc<Auth>,
    identity: &Identity,
    tool: &str,
) -> Option<linkmcp_toolsets::ToolVisibility> {
    if tool != linkmcp_factory::find_tools::FIND_TOOLS {
        return None;
    }
    let auth = Arc::clone(auth);
    let identity = identity.clone();
    Some(linkmcp_toolsets::ToolVisibility::new(move |name| {
        auth.missing_tool_scopes(&identity, name).is_empty()
    }))
}

/// Applies the auth configuration of every state `state` publishes to `auth`, starting with
/// the current one; returns when the source stops.
pub async fn follow(auth: Arc<Auth>, mut state: StateReceiver) {
    loop {
        let current = state.borrow_and_update().clone();
        let spec = current
            .server
            .as_ref()
            .and_then(|server| server.spec.auth.clone())
            .unwrap_or_default();
        auth.update(&spec, &current.api_keys);
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use axum::http::HeaderValue;
    use linkmcp_api::server::{ApiKeysSpec, ToolScope};

    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn api_key_spec() -> AuthSpec {
        AuthSpec {
            api_keys: Some(ApiKeysSpec {
                secret_name: "keys".into(),
            }),
            ..AuthSpec::default()
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap(), None);
        assert_eq!(bearer_token(&bearer("abc")).unwrap(), Some("abc"));

        let mut lower = HeaderMap::new();
        lower.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&lower).unwrap(), Some("abc"));

        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert!(matches!(
            bearer_token(&basic),
            Err(AuthError::Missing { .. })
        ));

        let mut empty = HeaderMap::new();
        empty.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(
            bearer_token(&empty).unwrap_err(),
            AuthError::invalid_token("the bearer token is empty")
        );

        let mut twice = bearer("a");
        twice.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(
            bearer_token(&twice),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[tokio::test]
    async fn keys_are_used_only_when_the_spec_names_their_secret() {
        let api_keys = keys(&[("ci", "k-ci")]);
        let auth = Auth::new(&AuthConfig {
            spec: AuthSpec::default(),
            api_keys: api_keys.clone(),
        });
        assert_eq!(
            auth.authenticate(&bearer("k-ci")).await.unwrap_err(),
            AuthError::NoOneAdmitted
        );
        auth.update(&api_key_spec(), &api_keys);
        assert_eq!(
            auth.authenticate(&bearer("k-ci")).await.unwrap(),
            Identity::api_key("ci")
        );
    }

    #[tokio::test]
    async fn anonymous_callers_need_allow_unauthenticated_and_no_bad_credential() {
        let auth = Auth::new(&AuthConfig::allow_unauthenticated());
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await.unwrap(),
            Identity::anonymous()
        );
        assert_eq!(
            auth.authenticate(&bearer("guess")).await.unwrap_err(),
            AuthError::invalid_token("this server accepts no bearer tokens")
        );

        let mut spec = api_key_spec();
        spec.allow_unauthenticated = true;
        auth.update(&spec, &keys(&[("ci", "k-ci")]));
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).await.unwrap(),
            Identity::anonymous()
        );
        assert_eq!(
            auth.authenticate(&bearer("wrong")).await.unwrap_err(),
            AuthError::invalid_token("the bearer token is not a valid API key")
        );
    }

    #[tokio::test]
    async fn required_scopes_refuse_anonymous_callers_and_admit_api_keys() {
        let mut spec = api_key_spec();
        spec.allow_unauthenticated = true;
        spec.required_scopes = vec!["mcp:tools".into()];
        let auth = Auth::new(&AuthConfig {
            spec,
            api_keys: keys(&[("ci", "k-ci")]),
        });
        let err = auth.authenticate(&HeaderMap::new()).await.unwrap_err();
        assert!(
            matches!(&err, AuthError::InsufficientScope { missing, anonymous: true, .. }
                if missing == &["mcp:tools"]),
            "{err:?}"
        );
        assert_eq!(
            auth.authenticate(&bearer("k-ci")).await.unwrap().id,
            "apikey:ci"
        );
    }

    #[test]
    fn updates_swap_the_configuration_and_keep_the_oidc_verifier() {
        let mut spec = api_key_spec();
        spec.oidc = Some(linkmcp_api::server::OidcSpec {
            issuer: "https://issuer.example".into(),
            audiences: vec!["linkmcp".into()],
            jwks_uri: None,
            identity_claim: "sub".into(),
        });
        let auth = Auth::new(&AuthConfig {
            spec: spec.clone(),
            api_keys: keys(&[("old", "k-old")]),
        });
        let before = auth.current();
        auth.update(&spec, &keys(&[("old", "k-old")]));
        assert!(Arc::ptr_eq(&before, &auth.current()), "unchanged: no swap");

        auth.update(&spec, &keys(&[("new", "k-new")]));
        let after = auth.current();
        assert!(!Arc::ptr_eq(&before, &after));
        assert!(Arc::ptr_eq(
            before.oidc.as_ref().unwrap(),
            after.oidc.as_ref().unwrap()
        ));
        assert_eq!(after.api_keys.ids().collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn visible_tools_follow_tool_scopes() {
        let spec = AuthSpec {
            allow_unauthenticated: true,
            tool_scopes: vec![ToolScope {
                tools: "*_execute".into(),
                scopes: vec!["db:write".into()],
            }],
            ..AuthSpec::default()
        };
        let auth = Auth::new(&AuthConfig {
            spec,
            api_keys: Credentials::default(),
        });
        let tools = ["pg_execute", "pg_query"]
            .map(|name| Tool::new(name, "t", Arc::new(serde_json::Map::new())))
            .to_vec();
        let names = |tools: Vec<Tool>| -> Vec<String> {
            tools.into_iter().map(|t| t.name.into_owned()).collect()
        };
        let reader = Identity::jwt("r", BTreeSet::from(["db:read".to_owned()]));
        assert_eq!(
            names(auth.visible_tools(&reader, tools.clone())),
            ["pg_query"]
        );
        let writer = Identity::jwt("w", BTreeSet::from(["db:write".to_owned()]));
        assert_eq!(
            names(auth.visible_tools(&writer, tools.clone())),
            ["pg_execute", "pg_query"]
        );
        assert_eq!(
            names(auth.visible_tools(&Identity::api_key("ci"), tools)),
            ["pg_execute", "pg_query"]
        );
        assert_eq!(
            auth.missing_tool_scopes(&reader, "pg_execute"),
            ["db:write"]
        );
    }

    #[tokio::test]
    async fn follow_applies_each_state() {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(DesiredState::default()));
        let auth = Arc::new(Auth::new(&AuthConfig::default()));
        let task = tokio::spawn(follow(auth.clone(), rx));

        let server: linkmcp_api::McpServer = serde_json::from_value(serde_json::json!({
            "apiVersion": "linkmcp.io/v1alpha1",
            "kind": "McpServer",
            "metadata": {"name": "s"},
            "spec": {"auth": {"apiKeys": {"secretName": "keys"}}},
        }))
        .unwrap();
        tx.send_replace(Arc::new(DesiredState {
            server: Some(server),
            api_keys: keys(&[("ci", "k-ci")]),
            ..DesiredState::default()
        }));
        let mut admitted = false;
        for _ in 0..100 {
            if auth.authenticate(&bearer("k-ci")).await.is_ok() {
                admitted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(admitted, "the new key was applied");
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow returns when the source stops")
            .unwrap();
    }
}
