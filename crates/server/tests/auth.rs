//! Client authentication as clients meet it: API keys and OIDC JWTs against an in-process
//! server, through a real rmcp client sending `Authorization: Bearer`, and raw HTTP where the
//! status codes and `WWW-Authenticate` challenges are the point. JWTs are signed with keys made
//! here and published by a small issuer (discovery document + JWKS) on loopback.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
        RsaPublicKeyComponents,
    },
};
use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use linkmcp_api::server::{ApiKeysSpec, AuthSpec, OidcSpec, ToolScope};
use linkmcp_server::auth::{Auth, AuthConfig};
use linkmcp_toolsets::{CallContext, NoArgs, ToolDef, Toolset, credentials::Credentials, output};
use rmcp::{
    RoleClient, ServiceError, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, JsonObject},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::{
            AuthRequiredError, InsufficientScopeError, StreamableHttpClientTransportConfig,
        },
    },
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

mod support;

use support::{TestServer, connect, connect_with_key, http};

// ---- the server ----

/// A server with `auth` and the [`Tools`] registered as `link/test`.
async fn start_server(auth: AuthConfig) -> TestServer {
    start_server_with(auth, false).await
}

async fn start_server_with(auth: AuthConfig, stateless: bool) -> TestServer {
    TestServer::builder()
        .settings(|s| {
            s.stateless = stateless;
            s.auth = auth;
        })
        .toolset("link/test", Tools::new())
        .start()
        .await
}

/// `whoami` (a read tool answering the caller's identity) and `pg_execute` (a write tool).
struct Tools {
    defs: Vec<ToolDef>,
}

impl Tools {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            defs: vec![
                ToolDef::read::<NoArgs>("whoami", "Return the caller's identity.").unwrap(),
                ToolDef::write::<NoArgs>("pg_execute", "Pretend to write.").unwrap(),
            ],
        })
    }
}

impl Toolset for Tools {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            match name {
                "whoami" => output::ok_text(ctx.identity.clone()),
                _ => output::ok_text(format!("executed as {}", ctx.identity)),
            }
        })
    }
}

// ---- auth configurations ----

fn credentials(pairs: &[(&str, &str)]) -> Credentials {
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
            secret_name: "mcp-keys".into(),
        }),
        ..AuthSpec::default()
    }
}

fn api_keys(pairs: &[(&str, &str)]) -> AuthConfig {
    AuthConfig {
        spec: api_key_spec(),
        api_keys: credentials(pairs),
    }
}

fn oidc_spec(issuer: &Issuer) -> AuthSpec {
    AuthSpec {
        oidc: Some(OidcSpec {
            issuer: issuer.url.clone(),
            audiences: vec!["linkmcp".into(), "other-api".into()],
            jwks_uri: None,
            identity_claim: "sub".into(),
        }),
        ..AuthSpec::default()
    }
}

fn oidc(issuer: &Issuer) -> AuthConfig {
    AuthConfig {
        spec: oidc_spec(issuer),
        api_keys: Credentials::default(),
    }
}

// ---- clients ----

fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "auth-test", "version": "0"}
        }
    })
}

/// A raw MCP POST, with `token` as bearer credential when given.
fn post(server: &TestServer, token: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
    let request = http()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .json(body);
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts a 401 whose challenge and body report `invalid_token` with `description`.
async fn assert_invalid_token(response: reqwest::Response, description: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"linkmcp\", error=\"invalid_token\", error_description=\"{description}\""
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], description);
}

async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect()
}

async fn call_text(client: &RunningService<RoleClient, ()>, tool: &str) -> String {
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{tool}: {result:?}");
    result.content[0].as_text().unwrap().text.clone()
}

/// The transport error of type `E` behind a failed request.
fn transport_error<E: std::error::Error + 'static>(err: &ServiceError) -> Option<&E> {
    let ServiceError::TransportSend(err) = err else {
        return None;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<E>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

// ---- an OIDC issuer on loopback ----

enum SigningKey {
    Rsa { kid: String, pair: RsaKeyPair },
    Ec { kid: String, pair: EcdsaKeyPair },
}

impl SigningKey {
    fn rsa(kid: &str) -> Self {
        Self::Rsa {
            kid: kid.into(),
            pair: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    fn ec(kid: &str) -> Self {
        Self::Ec {
            kid: kid.into(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    /// The public key as a JWK.
    fn jwk(&self) -> Value {
        match self {
            Self::Rsa { kid, pair } => {
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({
                    "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                    "n": URL_SAFE_NO_PAD.encode(&public.n),
                    "e": URL_SAFE_NO_PAD.encode(&public.e),
                })
            }
            Self::Ec { kid, pair } => {
                // Uncompressed point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
        }
    }

    /// A compact JWS of `claims` signed with this key.
    fn sign(&self, claims: &Value) -> String {
        let (alg, kid) = match self {
            Self::Rsa { kid, .. } => ("RS256", kid),
            Self::Ec { kid, .. } => ("ES256", kid),
        };
        self.sign_with_header(&json!({"alg": alg, "typ": "JWT", "kid": kid}), claims)
    }

    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match self {
            Self::Rsa { pair, .. } => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut signature,
                )
                .unwrap();
                signature
            }
            Self::Ec { pair, .. } => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a token valid for five more minutes.
fn claims(issuer: &Issuer, subject: &str, scope: &str) -> Value {
    json!({
        "iss": issuer.url,
        "aud": "linkmcp",
        "sub": subject,
        "iat": now(),
        "exp": now() + 300,
        "scope": scope,
    })
}

#[derive(Clone, Default)]
struct IssuerState {
    base: Arc<Mutex<String>>,
    jwks: Arc<Mutex<Value>>,
    discovery_hits: Arc<AtomicUsize>,
    jwks_hits: Arc<AtomicUsize>,
}

/// A Keycloak-shaped issuer: `<base>/realms/test` with its discovery document and JWKS.
struct Issuer {
    url: String,
    state: IssuerState,
    task: JoinHandle<()>,
}

impl Issuer {
    async fn start(keys: &[&SigningKey]) -> Self {
        let state = IssuerState::default();
        let router = Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(|State(state): State<IssuerState>| async move {
                    state.discovery_hits.fetch_add(1, Ordering::SeqCst);
                    let base = state.base.lock().unwrap().clone();
                    Json(json!({
                        "issuer": format!("{base}/realms/test"),
                        "jwks_uri": format!("{base}/realms/test/protocol/openid-connect/certs"),
                    }))
                }),
            )
            .route(
                "/realms/test/protocol/openid-connect/certs",
                get(|State(state): State<IssuerState>| async move {
                    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
                    Json(state.jwks.lock().unwrap().clone())
                }),
            )
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *state.base.lock().unwrap() = base.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let issuer = Self {
            url: format!("{base}/realms/test"),
            state,
            task,
        };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the published keys (a key rotation at the issuer).
    fn publish(&self, keys: &[&SigningKey]) {
        // Issuers publish encryption keys beside signing keys; the server must skip them.
        let mut jwks: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
        jwks.push(
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP",
                          "n": "sXch", "e": "AQAB"}),
        );
        *self.state.jwks.lock().unwrap() = json!({ "keys": jwks });
    }

    fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- API keys ----

#[tokio::test]
async fn requests_without_credentials_get_a_bearer_challenge() {
    let server = start_server(api_keys(&[("ci", "k-ci-0123456789")])).await;

    let response = post(&server, None, &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), "Bearer realm=\"linkmcp\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );

    // The notification stream is guarded too, and so is a session id without a credential.
    let stream = http()
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 401);
    assert_eq!(challenge(&stream), "Bearer realm=\"linkmcp\"");

    // Other schemes are not credentials here.
    let basic = post(&server, None, &initialize_body())
        .header("authorization", "Basic Y2k6ay1jaS0wMTIzNDU2Nzg5")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(challenge(&basic), "Bearer realm=\"linkmcp\"");

    // The probes stay open, and so does /metrics, which counts the refusals.
    for path in ["/healthz", "/readyz", "/startupz"] {
        let probe = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(probe.status(), 200, "{path}");
    }
    let metrics = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|line| line == r#"linkmcp_auth_failures_total{reason="missing_token"} 3"#),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_an_invalid_token_and_is_never_echoed() {
    let server = start_server(api_keys(&[("ci", "k-ci-0123456789")])).await;

    let response = post(&server, Some("k-ci-012345678"), &initialize_body())
        .send()
        .await
        .unwrap();
    let text = format!("{:?}", response.headers());
    assert!(!text.contains("k-ci-0"), "no key in the headers: {text}");
    assert_invalid_token(response, "the bearer token is not a valid API key").await;

    // The rmcp client surfaces the challenge for its OAuth flow.
    let config =
        StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header("k-wrong");
    let err =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect_err("a wrong key cannot initialize");
    let challenge = err.auth_challenge().expect("the 401 challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"linkmcp\", error=\"invalid_token\""),
        "{challenge}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_valid_key_lists_and_calls_every_tool_as_its_key_id() {
    let mut config = api_keys(&[("ci", "k-ci-0123456789")]);
    // API keys carry every scope: required and tool scopes do not hide anything from them.
    config.spec.required_scopes = vec!["mcp:tools".into()];
    config.spec.tool_scopes = vec![ToolScope {
        tools: "*_execute".into(),
        scopes: vec!["db:write".into()],
    }];
    let server = start_server(config).await;
    let client = connect_with_key(&server, "k-ci-0123456789").await;

    assert_eq!(
        tool_names(&client).await,
        ["pg_execute", "ping", "server_info", "whoami"]
    );
    assert_eq!(call_text(&client, "whoami").await, "apikey:ci");
    assert_eq!(
        call_text(&client, "pg_execute").await,
        "executed as apikey:ci"
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn two_keys_are_valid_at_once_and_a_rotation_applies_to_open_sessions() {
    let server = start_server(api_keys(&[("old", "k-old-aaaa"), ("new", "k-new-bbbb")])).await;
    let old = connect_with_key(&server, "k-old-aaaa").await;
    let new = connect_with_key(&server, "k-new-bbbb").await;
    assert_eq!(call_text(&old, "whoami").await, "apikey:old");
    assert_eq!(call_text(&new, "whoami").await, "apikey:new");

    // The Secret loses its old entry: the next request with it is refused, even in a session
    // that was opened with it (a session id is not a credential).
    server
        .auth
        .update(&api_key_spec(), &credentials(&[("new", "k-new-bbbb")]));
    let err = old
        .list_all_tools()
        .await
        .expect_err("the old key is revoked");
    let refused = transport_error::<AuthRequiredError>(&err)
        .unwrap_or_else(|| panic!("expected a 401, got {err:?}"));
    assert!(
        refused
            .www_authenticate_header
            .contains("error=\"invalid_token\""),
        "{}",
        refused.www_authenticate_header
    );
    assert_eq!(call_text(&new, "whoami").await, "apikey:new");

    let response = post(&server, Some("k-old-aaaa"), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_invalid_token(response, "the bearer token is not a valid API key").await;

    let _ = old.cancel().await;
    new.cancel().await.unwrap();
    server.stop().await;
}

// ---- anonymous access and no access ----

#[tokio::test]
async fn allow_unauthenticated_serves_anonymous_but_refuses_bad_credentials() {
    let mut config = api_keys(&[("ci", "k-ci-0123456789")]);
    config.spec.allow_unauthenticated = true;
    let server = start_server(config).await;

    let anonymous = connect(&server).await;
    assert_eq!(call_text(&anonymous, "whoami").await, "anonymous");
    let keyed = connect_with_key(&server, "k-ci-0123456789").await;
    assert_eq!(call_text(&keyed, "whoami").await, "apikey:ci");

    let response = post(&server, Some("k-bad"), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_invalid_token(response, "the bearer token is not a valid API key").await;

    anonymous.cancel().await.unwrap();
    keyed.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn without_any_auth_configured_everyone_is_refused() {
    let server = start_server(AuthConfig::default()).await;
    for token in [None, Some("k-anything")] {
        let response = post(&server, token, &initialize_body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(challenge(&response), "Bearer realm=\"linkmcp\"");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("admits no client"),
            "{body}"
        );
    }
    // Configuring a key opens the door without a restart.
    server
        .auth
        .update(&api_key_spec(), &credentials(&[("ci", "k-ci-0123456789")]));
    let client = connect_with_key(&server, "k-ci-0123456789").await;
    assert_eq!(call_text(&client, "whoami").await, "apikey:ci");
    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- OIDC ----

#[tokio::test]
async fn jwts_signed_by_the_issuers_keys_are_accepted() {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::ec("ec-1");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let server = start_server(oidc(&issuer)).await;

    let token = rsa.sign(&claims(&issuer, "alice", "openid mcp:tools"));
    let client = connect_with_key(&server, &token).await;
    assert_eq!(call_text(&client, "whoami").await, "jwt:alice");
    client.cancel().await.unwrap();

    let mut es = claims(&issuer, "bob", "");
    es["aud"] = json!(["account", "other-api"]);
    es["preferred_username"] = json!("bob@example.com");
    let token = ec.sign(&es);
    let client = connect_with_key(&server, &token).await;
    assert_eq!(call_text(&client, "whoami").await, "jwt:bob");

    // Discovery and keys were fetched once, not per request.
    assert_eq!(issuer.discovery_hits(), 1);
    assert_eq!(issuer.jwks_hits(), 1);

    // Another identity claim applies from the next request on.
    let mut spec = oidc_spec(&issuer);
    if let Some(oidc) = spec.oidc.as_mut() {
        oidc.identity_claim = "preferred_username".into();
    }
    server.auth.update(&spec, &Credentials::default());
    assert_eq!(call_text(&client, "whoami").await, "jwt:bob@example.com");
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_jwts_are_invalid_tokens() {
    let key = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let server = start_server(oidc(&issuer)).await;

    let mut expired = claims(&issuer, "alice", "");
    expired["exp"] = json!(now() - 120);
    let response = post(&server, Some(&key.sign(&expired)), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_invalid_token(response, "the token has expired").await;

    let mut early = claims(&issuer, "alice", "");
    early["nbf"] = json!(now() + 600);
    let response = post(&server, Some(&key.sign(&early)), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_invalid_token(response, "the token is not valid yet (nbf)").await;

    // Within the leeway, a token that just expired still passes (clock skew).
    let mut skewed = claims(&issuer, "alice", "");
    skewed["exp"] = json!(now() - 5);
    let response = post(&server, Some(&key.sign(&skewed)), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn wrong_audience_issuer_signature_or_algorithm_is_refused() {
    let key = SigningKey::rsa("rsa-1");
    let stranger = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let server = start_server(oidc(&issuer)).await;
    let send = |token: String| post(&server, Some(&token), &initialize_body()).send();

    let mut other_audience = claims(&issuer, "alice", "");
    other_audience["aud"] = json!("someone-else");
    assert_invalid_token(
        send(key.sign(&other_audience)).await.unwrap(),
        "the token is not meant for this server: its audience (aud) is none of linkmcp, \
         other-api",
    )
    .await;

    let mut no_audience = claims(&issuer, "alice", "");
    no_audience.as_object_mut().unwrap().remove("aud");
    assert_invalid_token(
        send(key.sign(&no_audience)).await.unwrap(),
        "the token has no `aud` claim",
    )
    .await;

    let mut other_issuer = claims(&issuer, "alice", "");
    other_issuer["iss"] = json!("https://evil.example/realms/test");
    assert_invalid_token(
        send(key.sign(&other_issuer)).await.unwrap(),
        &format!("the token was not issued by {}", issuer.url),
    )
    .await;

    // Same kid, another key: the signature does not verify.
    assert_invalid_token(
        send(stranger.sign(&claims(&issuer, "alice", "")))
            .await
            .unwrap(),
        "the token's signature does not verify",
    )
    .await;

    // A token choosing HMAC (with the public key as secret) is refused outright.
    let forged = key.sign_with_header(
        &json!({"alg": "HS256", "kid": "rsa-1"}),
        &claims(&issuer, "alice", ""),
    );
    assert_invalid_token(
        send(forged).await.unwrap(),
        "tokens signed with HS256 are not accepted; the issuer must sign with RSA, EC or EdDSA \
         keys",
    )
    .await;

    let mut anonymous = claims(&issuer, "alice", "");
    anonymous.as_object_mut().unwrap().remove("sub");
    assert_invalid_token(
        send(key.sign(&anonymous)).await.unwrap(),
        "the token has no `sub` claim, which this server uses as the client identity",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn an_issuer_configured_with_a_trailing_slash_matches_its_tokens() {
    let key = SigningKey::ec("ec-1");
    let issuer = Issuer::start(&[&key]).await;
    let mut config = oidc(&issuer);
    if let Some(oidc) = config.spec.oidc.as_mut() {
        oidc.issuer.push('/');
    }
    let server = start_server(config).await;
    let token = key.sign(&claims(&issuer, "alice", ""));
    let response = post(&server, Some(&token), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(issuer.discovery_hits(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_for_its_new_kid() {
    let first = SigningKey::rsa("key-1");
    let second = SigningKey::ec("key-2");
    let issuer = Issuer::start(&[&first]).await;
    let server = start_server(oidc(&issuer)).await;
    let send = |token: String| post(&server, Some(&token), &initialize_body()).send();

    assert_eq!(
        send(first.sign(&claims(&issuer, "alice", "")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(issuer.jwks_hits(), 1);

    // The issuer rotates: key-2 replaces key-1.
    issuer.publish(&[&second]);
    assert_eq!(
        send(second.sign(&claims(&issuer, "alice", "")))
            .await
            .unwrap()
            .status(),
        200,
        "the unknown kid made the server fetch the keys again"
    );
    assert_eq!(issuer.jwks_hits(), 2);

    // The withdrawn key is no longer accepted, and unknown kids right after a fetch do not
    // make the server fetch again (at most one such fetch per 30 s).
    assert_invalid_token(
        send(first.sign(&claims(&issuer, "alice", "")))
            .await
            .unwrap(),
        "the token's signing key `key-1` is not published by its issuer",
    )
    .await;
    let ghost = SigningKey::rsa("ghost");
    assert_invalid_token(
        send(ghost.sign(&claims(&issuer, "alice", "")))
            .await
            .unwrap(),
        "the token's signing key `ghost` is not published by its issuer",
    )
    .await;
    assert_eq!(issuer.jwks_hits(), 2);
    assert_eq!(issuer.discovery_hits(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_401_and_the_server_keeps_serving() {
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/realms/test", closed.local_addr().unwrap());
    drop(closed);
    let key = SigningKey::rsa("rsa-1");
    let mut config = api_keys(&[("ci", "k-ci-0123456789")]);
    config.spec.oidc = Some(OidcSpec {
        issuer: url.clone(),
        audiences: vec!["linkmcp".into()],
        jwks_uri: None,
        identity_claim: "sub".into(),
    });
    let server = start_server(config).await;

    let token = key.sign(&json!({"iss": url, "aud": "linkmcp", "sub": "alice",
                                 "exp": now() + 300}));
    for _ in 0..2 {
        let response = post(&server, Some(&token), &initialize_body())
            .send()
            .await
            .unwrap();
        assert_invalid_token(
            response,
            "the token cannot be verified now: the issuer's signing keys could not be fetched",
        )
        .await;
    }
    let client = connect_with_key(&server, "k-ci-0123456789").await;
    assert_eq!(call_text(&client, "whoami").await, "apikey:ci");
    client.cancel().await.unwrap();
    server.stop().await;
}

// ---- scopes ----

#[tokio::test]
async fn a_missing_required_scope_is_403_insufficient_scope() {
    let key = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let mut config = oidc(&issuer);
    config.spec.required_scopes = vec!["mcp:tools".into()];
    let server = start_server(config).await;

    let weak = key.sign(&claims(&issuer, "alice", "openid profile"));
    let response = post(&server, Some(&weak), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        "Bearer realm=\"linkmcp\", error=\"insufficient_scope\", scope=\"mcp:tools\", \
         error_description=\"this server needs scope(s) mcp:tools, which the caller lacks\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "mcp:tools");

    // `scp` as an array counts as well as `scope`.
    let mut scp = claims(&issuer, "alice", "openid");
    scp["scp"] = json!(["mcp:tools"]);
    let client = connect_with_key(&server, &key.sign(&scp)).await;
    assert_eq!(call_text(&client, "whoami").await, "jwt:alice");
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn tool_scopes_hide_tools_from_tools_list_and_refuse_their_calls() {
    let key = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let mut config = oidc(&issuer);
    config.spec.tool_scopes = vec![ToolScope {
        tools: "*_execute".into(),
        scopes: vec!["db:write".into()],
    }];
    let server = start_server(config).await;

    let reader_token = key.sign(&claims(&issuer, "reader", "mcp:tools db:read"));
    let reader = connect_with_key(&server, &reader_token).await;
    assert_eq!(tool_names(&reader).await, ["ping", "server_info", "whoami"]);
    let err = reader
        .call_tool(CallToolRequestParams::new("pg_execute"))
        .await
        .expect_err("the call is refused");
    let refused = transport_error::<InsufficientScopeError>(&err)
        .unwrap_or_else(|| panic!("expected a 403 insufficient_scope, got {err:?}"));
    assert_eq!(refused.get_required_scope(), Some("db:write"));
    // The session is still usable for what the reader may do.
    assert_eq!(call_text(&reader, "whoami").await, "jwt:reader");

    let writer = connect_with_key(
        &server,
        &key.sign(&claims(&issuer, "writer", "mcp:tools db:write")),
    )
    .await;
    assert_eq!(
        tool_names(&writer).await,
        ["pg_execute", "ping", "server_info", "whoami"]
    );
    assert_eq!(
        call_text(&writer, "pg_execute").await,
        "executed as jwt:writer"
    );

    reader.cancel().await.unwrap();
    writer.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_refused_tool_call_names_the_missing_scope_over_raw_http() {
    let key = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let mut config = oidc(&issuer);
    config.spec.allow_unauthenticated = true;
    config.spec.tool_scopes = vec![ToolScope {
        tools: "pg_*".into(),
        scopes: vec!["db:write".into(), "pg".into()],
    }];
    let server = start_server_with(config, true).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "pg_execute", "arguments": {}}});

    let token = key.sign(&claims(&issuer, "alice", "pg"));
    let response = post(&server, Some(&token), &call).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        "Bearer realm=\"linkmcp\", error=\"insufficient_scope\", scope=\"db:write\", \
         error_description=\"tool `pg_execute` needs scope(s) db:write, which the caller lacks\""
    );

    // Anonymous callers are asked to authenticate, with the scopes they would need.
    let response = post(&server, None, &call).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        "Bearer realm=\"linkmcp\", scope=\"db:write pg\""
    );

    // Stateless tools/list shows the anonymous caller only what it may call.
    let list = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"});
    let response = post(&server, None, &list).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    let listed: Vec<&str> = message["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["ping", "server_info", "whoami"]);

    let allowed = key.sign(&claims(&issuer, "alice", "pg db:write"));
    let response = post(&server, Some(&allowed), &call).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(
        message["result"]["content"][0]["text"],
        "executed as jwt:alice"
    );
    server.stop().await;
}

// ---- sessions ----

/// A raw MCP request of `method` in `session`, with `token` as bearer credential.
fn in_session(
    server: &TestServer,
    method: reqwest::Method,
    token: &str,
    session: &str,
) -> reqwest::RequestBuilder {
    http()
        .request(method, server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session)
        .bearer_auth(token)
}

/// Opens a session over raw HTTP with `token`: initialize, then notifications/initialized.
async fn open_session(server: &TestServer, token: &str) -> String {
    let response = post(server, Some(token), &initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("initialize answers a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await.unwrap();
    let initialized = in_session(server, reqwest::Method::POST, token, &session)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), 202);
    session
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

/// Asserts the 404 JSON-RPC answer of a session this caller may not use, and returns it.
async fn assert_session_not_found(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], Value::Null, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Session not found"),
        "{body}"
    );
    body
}

async fn session_refusals(server: &TestServer) -> String {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(r#"linkmcp_auth_failures_total{reason="session_identity"}"#))
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn a_session_serves_only_the_identity_that_opened_it() {
    let server = start_server(api_keys(&[("a", "k-a-1111"), ("b", "k-b-2222")])).await;
    let session = open_session(&server, "k-a-1111").await;

    // Another valid key cannot use the session: 404 as for an unknown session, the very same
    // answer, so that a foreign id is not even confirmed to exist.
    let foreign = in_session(&server, reqwest::Method::POST, "k-b-2222", &session)
        .json(&tools_list())
        .send()
        .await
        .unwrap();
    let foreign = assert_session_not_found(foreign).await;
    let unknown = in_session(
        &server,
        reqwest::Method::POST,
        "k-b-2222",
        "no-such-session",
    )
    .json(&tools_list())
    .send()
    .await
    .unwrap();
    assert_eq!(assert_session_not_found(unknown).await, foreign);
    // Nor read its notification stream, nor end it.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = in_session(&server, method.clone(), "k-b-2222", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(
            assert_session_not_found(response).await,
            foreign,
            "{method}"
        );
    }
    assert_eq!(
        session_refusals(&server).await,
        r#"linkmcp_auth_failures_total{reason="session_identity"} 3"#
    );

    // Its owner still can.
    let own = in_session(&server, reqwest::Method::POST, "k-a-1111", &session)
        .json(&tools_list())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let text = own.text().await.unwrap();
    assert!(text.contains("\"whoami\""), "{text}");

    // The owner ends it: the record goes with it, so the id is now unknown to everyone (rmcp's
    // 404, not counted as a foreign use).
    let delete = in_session(&server, reqwest::Method::DELETE, "k-a-1111", &session)
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    for token in ["k-b-2222", "k-a-1111"] {
        let response = in_session(&server, reqwest::Method::POST, token, &session)
            .json(&tools_list())
            .send()
            .await
            .unwrap();
        assert_eq!(assert_session_not_found(response).await, foreign, "{token}");
    }
    assert_eq!(
        session_refusals(&server).await,
        r#"linkmcp_auth_failures_total{reason="session_identity"} 3"#
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refreshed_jwt_of_the_same_subject_keeps_its_session() {
    let key = SigningKey::rsa("rsa-1");
    let issuer = Issuer::start(&[&key]).await;
    let server = start_server(oidc(&issuer)).await;
    let first = key.sign(&claims(&issuer, "alice", "mcp"));
    let session = open_session(&server, &first).await;

    // Another token of alice, with other scopes, uses the session; bob's does not.
    let refreshed = key.sign(&claims(&issuer, "alice", "mcp db:write"));
    let response = in_session(&server, reqwest::Method::POST, &refreshed, &session)
        .json(&tools_list())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bob = key.sign(&claims(&issuer, "bob", "mcp db:write"));
    let response = in_session(&server, reqwest::Method::POST, &bob, &session)
        .json(&tools_list())
        .send()
        .await
        .unwrap();
    assert_session_not_found(response).await;
    server.stop().await;
}

// ---- the reusable layer ----

#[tokio::test]
async fn protect_guards_any_router_and_passes_the_identity() {
    let auth = Arc::new(Auth::new(&api_keys(&[("ops", "k-ops-42")])));
    let router =
        linkmcp_server::auth::protect(
            Router::new().route(
                "/api/v1/whoami",
                get(
                    |identity: axum::Extension<linkmcp_server::auth::Identity>| async move {
                        identity.0.id
                    },
                ),
            ),
            auth,
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/whoami", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let refused = http().get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(challenge(&refused), "Bearer realm=\"linkmcp\"");
    let admitted = http()
        .get(&url)
        .bearer_auth("k-ops-42")
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
    assert_eq!(admitted.text().await.unwrap(), "apikey:ops");
    task.abort();
}
