//! OAuth 2.0 / OIDC bearer JWTs (Keycloak or any issuer publishing a JWKS), per
//! `McpServer.spec.auth.oidc`.
//!
//! It exists to turn an access token into an [`Identity`] without calling the issuer on every
//! request: the issuer's signing keys are found through `<issuer>/.well-known/openid-configuration`
//! (or the configured `jwksUri`), fetched once and cached. A token signed with a key id the
//! cache does not know makes the verifier fetch the keys again — that is how a key rotation
//! reaches the server — but at most once per [`UNKNOWN_KID_REFETCH`], so tokens with made-up
//! key ids cannot turn the server into a load generator against the issuer. The cache is also
//! renewed in the background after [`MAX_KEY_AGE`], so a key the issuer withdrew stops being
//! accepted. Only asymmetric algorithms are accepted, with the algorithm checked against the
//! key, so a token cannot pick HMAC with a public key as the secret.
//!
//! A fetch failure never panics and never reaches the client in detail: the request gets a
//! 401 saying the token could not be verified, and the cause (URL, HTTP status, parse error) is
//! logged for the operator.

use std::{
    collections::BTreeSet,
    str::FromStr as _,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, PublicKeyUse},
};
use linkmcp_api::server::OidcSpec;
use serde_json::{Map, Value};

use super::{AuthError, Identity};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(30);
/// The least time between two fetches caused by tokens naming an unknown key.
pub(crate) const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(30);
/// Cached keys older than this are renewed in the background.
pub(crate) const MAX_KEY_AGE: Duration = Duration::from_secs(600);
/// After a failed fetch, the least time before the next attempt.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Time limits of one HTTP fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Signature algorithms accepted: asymmetric only.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Whether `token` has the shape of a signed JWT: three non-empty base64url parts.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let parts = token.split('.');
    parts.clone().count() == 3
        && parts.into_iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Validates the JWTs of one issuer.
pub(crate) struct OidcVerifier {
    spec: OidcSpec,
    http: Result<reqwest::Client, String>,
    keys: RwLock<Arc<KeySet>>,
    fetch: tokio::sync::Mutex<FetchState>,
    /// Set while a background renewal runs, so that only one is started.
    renewing: Arc<AtomicBool>,
}

/// The issuer's signing keys as last fetched.
#[derive(Default)]
struct KeySet {
    /// Increases with every successful fetch; 0: never fetched.
    generation: u64,
    fetched_at: Option<Instant>,
    keys: Vec<Arc<SigningKey>>,
}

struct SigningKey {
    kid: Option<String>,
    /// The key's declared algorithm, when the JWK names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl SigningKey {
    fn accepts(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|own| own == alg)
    }
}

impl KeySet {
    /// The key a token with `kid` and `alg` must be verified with; `Ok(None)` when the set
    /// has none (perhaps it was rotated).
    fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Option<Arc<SigningKey>>, AuthError> {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) if key.accepts(alg) => Ok(Some(key.clone())),
                Some(_) => Err(AuthError::invalid_token(format!(
                    "the token's algorithm {alg:?} does not match its signing key `{}`",
                    shorten(kid)
                ))),
                None => Ok(None),
            },
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.accepts(alg));
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(Some(key.clone())),
                    (Some(_), Some(_)) => Err(AuthError::invalid_token(
                        "the token names no signing key (kid) and the issuer publishes several",
                    )),
                    (None, _) => Ok(None),
                }
            }
        }
    }

    fn is_stale(&self) -> bool {
        self.fetched_at.is_none_or(|at| at.elapsed() >= MAX_KEY_AGE)
    }
}

#[derive(Default)]
struct FetchState {
    /// The JWKS URL found by discovery.
    discovered_jwks_uri: Option<String>,
    /// When the last fetch failed.
    last_failure: Option<Instant>,
    /// When tokens with an unknown key id last caused a fetch.
    last_unknown_kid_fetch: Option<Instant>,
}

/// Why the keys are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// None are cached, or the cached ones are old.
    Load,
    /// A token names a key the cache does not hold.
    UnknownKid,
}

impl OidcVerifier {
    pub(crate) fn new(spec: OidcSpec) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("linkmcp-server/", env!("CARGO_PKG_VERSION")))
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| format!("cannot create the HTTP client: {err}"));
        if let Err(err) = &http {
            tracing::error!(issuer = %spec.issuer, error = %err, "OIDC tokens cannot be verified");
        }
        Self {
            spec,
            http,
            keys: RwLock::new(Arc::new(KeySet::default())),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            renewing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn spec(&self) -> &OidcSpec {
        &self.spec
    }

    fn key_set(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Validates `token` (signature, `iss`, `aud`, `exp`, `nbf`) and returns its identity.
    pub(crate) async fn verify(self: &Arc<Self>, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid_token("the bearer token is not a well-formed JWT"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(AuthError::invalid_token(format!(
                "tokens signed with {:?} are not accepted; the issuer must sign with RSA, EC or \
                 EdDSA keys",
                header.alg
            )));
        }
        let key = self.signing_key(header.kid.as_deref(), header.alg).await?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &key.key,
            &self.validation(header.alg),
        )
        .map_err(|err| self.describe(&err))?;
        self.identity(&data.claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        // The configured issuer, also without a trailing slash (as issuers write `iss`).
        let issuer = self.spec.issuer.as_str();
        validation.set_issuer(&[issuer, issuer.trim_end_matches('/')]);
        validation.set_audience(&self.spec.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY.as_secs();
        validation
    }

    /// The client-facing reason a token was refused.
    fn describe(&self, err: &jsonwebtoken::errors::Error) -> AuthError {
        AuthError::invalid_token(match err.kind() {
            ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidIssuer => {
                format!("the token was not issued by {}", self.spec.issuer)
            }
            ErrorKind::InvalidAudience => format!(
                "the token is not meant for this server: its audience (aud) is none of {}",
                self.spec.audiences.join(", ")
            ),
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
            ErrorKind::InvalidAlgorithm => {
                "the token's algorithm does not match its signing key".to_owned()
            }
            _ => "the bearer token is not a well-formed JWT".to_owned(),
        })
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let claim = &self.spec.identity_claim;
        let subject = match claims.get(claim) {
            Some(Value::String(value)) if !value.is_empty() => value.clone(),
            Some(Value::Number(value)) => value.to_string(),
            _ => {
                return Err(AuthError::invalid_token(format!(
                    "the token has no `{claim}` claim, which this server uses as the client \
                     identity"
                )));
            }
        };
        Ok(Identity::jwt(&subject, scopes(claims)))
    }

    /// The key to verify a token with `kid` and `alg`, fetching the key set when needed.
    async fn signing_key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<SigningKey>, AuthError> {
        let mut set = self.key_set();
        if set.generation == 0 {
            self.refresh(Reason::Load, 0).await?;
            set = self.key_set();
        } else if set.is_stale() {
            self.renew_in_background(set.generation);
        }
        if let Some(key) = set.find(kid, alg)? {
            return Ok(key);
        }
        if self.refresh(Reason::UnknownKid, set.generation).await? {
            set = self.key_set();
            if let Some(key) = set.find(kid, alg)? {
                return Ok(key);
            }
        }
        Err(AuthError::invalid_token(match kid {
            Some(kid) => format!(
                "the token's signing key `{}` is not published by its issuer",
                shorten(kid)
            ),
            None => format!("the issuer publishes no {alg:?} signing key"),
        }))
    }

    fn renew_in_background(self: &Arc<Self>, seen: u64) {
        if self.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // A failure is logged by `refresh`; the cached keys stay in use meanwhile.
            let _ = this.refresh(Reason::Load, seen).await;
            this.renewing.store(false, Ordering::Release);
        });
    }

    /// Fetches the key set unless another task did since generation `seen` or a limit
    /// forbids it now; returns whether a newer key set is in place. Fails only when no keys
    /// are cached at all.
    async fn refresh(&self, reason: Reason, seen: u64) -> Result<bool, AuthError> {
        let mut state = self.fetch.lock().await;
        let current = self.key_set();
        if current.generation != seen {
            return Ok(true);
        }
        let now = Instant::now();
        let unavailable = || {
            AuthError::invalid_token(
                "the token cannot be verified now: the issuer's signing keys could not be \
                 fetched",
            )
        };
        if state
            .last_failure
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE)
        {
            return if current.generation == 0 {
                Err(unavailable())
            } else {
                Ok(false)
            };
        }
        if reason == Reason::UnknownKid {
            if state
                .last_unknown_kid_fetch
                .is_some_and(|at| now.duration_since(at) < UNKNOWN_KID_REFETCH)
            {
                return Ok(false);
            }
            state.last_unknown_kid_fetch = Some(now);
        }
        match self.fetch_keys(&mut state).await {
            Ok(keys) => {
                let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
                tracing::info!(
                    issuer = %self.spec.issuer,
                    keys = keys.len(),
                    key_ids = %kids.join(", "),
                    reason = ?reason,
                    "OIDC signing keys fetched"
                );
                let next = KeySet {
                    generation: current.generation + 1,
                    fetched_at: Some(Instant::now()),
                    keys,
                };
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
                state.last_failure = None;
                Ok(true)
            }
            Err(cause) => {
                tracing::warn!(
                    issuer = %self.spec.issuer,
                    error = %cause,
                    cached_keys = current.keys.len(),
                    "fetching the OIDC signing keys failed"
                );
                state.last_failure = Some(Instant::now());
                if current.generation == 0 {
                    Err(unavailable())
                } else {
                    Ok(false)
                }
            }
        }
    }

    async fn fetch_keys(&self, state: &mut FetchState) -> Result<Vec<Arc<SigningKey>>, String> {
        let client = self.http.as_ref().map_err(Clone::clone)?;
        let jwks_uri = match (&self.spec.jwks_uri, &state.discovered_jwks_uri) {
            (Some(configured), _) => configured.clone(),
            (None, Some(discovered)) => discovered.clone(),
            (None, None) => {
                let url = discovery_url(&self.spec.issuer);
                let document = fetch_json(client, &url).await?;
                let uri = document
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("the discovery document {url} names no jwks_uri"))?
                    .to_owned();
                state.discovered_jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = match fetch_json(client, &jwks_uri).await {
            Ok(document) => document,
            Err(err) => {
                // Discover again next time: the issuer may have moved its keys.
                state.discovered_jwks_uri = None;
                return Err(err);
            }
        };
        let keys = parse_jwks(&document).map_err(|err| format!("{jwks_uri}: {err}"))?;
        if keys.is_empty() {
            return Err(format!("{jwks_uri} holds no usable signing key"));
        }
        Ok(keys)
    }
}

/// The scopes of a token: the `scope` claim (space-separated, RFC 8693 / Keycloak) and the
/// `scp` claim (an array, or a space-separated string, as some issuers send it).
fn scopes(claims: &Map<String, Value>) -> BTreeSet<String> {
    let mut scopes = BTreeSet::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(list)) => {
                scopes.extend(list.split_whitespace().map(str::to_owned));
            }
            Some(Value::Array(items)) => {
                scopes.extend(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            _ => {}
        }
    }
    scopes
}

/// At most 64 characters of a value taken from a token, for an error description.
fn shorten(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|err| format!("GET {url}: not JSON: {err}"))
}

/// The signature keys of a JWK set. Keys this server cannot use (encryption keys, symmetric
/// keys, unknown types or algorithms) are skipped, not fatal: issuers publish such keys beside
/// their signing keys.
fn parse_jwks(document: &Value) -> Result<Vec<Arc<SigningKey>>, String> {
    let list = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWK set (no `keys` array)")?;
    let mut keys = Vec::new();
    for item in list {
        let kid = item.get("kid").and_then(Value::as_str);
        let jwk: Jwk = match serde_json::from_value(item.clone()) {
            Ok(jwk) => jwk,
            Err(err) => {
                tracing::debug!(kid, error = %err, "skipping a JWK this server cannot read");
                continue;
            }
        };
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption)
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            continue;
        }
        let alg = match &jwk.common.key_algorithm {
            None => None,
            Some(declared) => match Algorithm::from_str(&declared.to_string()) {
                Ok(alg) if ACCEPTED.contains(&alg) => Some(alg),
                _ => continue,
            },
        };
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(Arc::new(SigningKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            })),
            Err(err) => tracing::debug!(kid, error = %err, "skipping an unusable JWK"),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(
            !looks_like_jwt("eyJh.eyJz."),
            "unsigned tokens are not JWTs here"
        );
        assert!(!looks_like_jwt("eyJh.eyJz"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("k-live-1234567890"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims = json!({
            "scope": "openid  mcp:tools db:read",
            "scp": ["db:write", "", 7],
        });
        let scopes = scopes(claims.as_object().unwrap());
        assert_eq!(
            scopes.into_iter().collect::<Vec<_>>(),
            ["db:read", "db:write", "mcp:tools", "openid"]
        );
        let claims = json!({"scp": "a b"});
        assert_eq!(scopes_of(&claims), ["a", "b"]);
        assert!(scopes_of(&json!({"scope": 5})).is_empty());
    }

    fn scopes_of(claims: &Value) -> Vec<String> {
        scopes(claims.as_object().unwrap()).into_iter().collect()
    }

    #[test]
    fn values_from_tokens_are_shortened() {
        assert_eq!(shorten("kid-1"), "kid-1");
        let long = "k".repeat(100);
        assert_eq!(shorten(&long), format!("{}...", "k".repeat(64)));
        assert_eq!(shorten(&"é".repeat(64)), "é".repeat(64));
    }

    #[test]
    fn discovery_url_ignores_a_trailing_slash() {
        assert_eq!(
            discovery_url("https://kc.example/realms/x/"),
            "https://kc.example/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://kc.example/realms/x"),
            "https://kc.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_signature_keys_of_accepted_algorithms_are_kept() {
        // A P-256 public key (the example of RFC 7515 A.3).
        let ec = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        });
        let document = json!({"keys": [
            ec,
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "hs", "alg": "HS256", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "weird", "kid": "unknown"},
        ]});
        let keys = parse_jwks(&document).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["ec-1"]);
        assert!(keys[0].accepts(Algorithm::ES256));
        assert!(!keys[0].accepts(Algorithm::RS256));
        assert!(!keys[0].accepts(Algorithm::HS256));

        assert!(parse_jwks(&json!({"nokeys": []})).is_err());
    }

    #[test]
    fn keys_are_found_by_kid_and_algorithm() {
        let document = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }]});
        let set = KeySet {
            generation: 1,
            fetched_at: Some(Instant::now()),
            keys: parse_jwks(&document).unwrap(),
        };
        assert!(set.find(Some("ec-1"), Algorithm::ES256).unwrap().is_some());
        assert!(
            set.find(None, Algorithm::ES256).unwrap().is_some(),
            "the only EC key"
        );
        assert!(set.find(Some("other"), Algorithm::ES256).unwrap().is_none());
        assert!(set.find(None, Algorithm::RS256).unwrap().is_none());
        assert!(matches!(
            set.find(Some("ec-1"), Algorithm::RS256),
            Err(AuthError::InvalidToken(_))
        ));
        assert!(!set.is_stale());
        assert!(KeySet::default().is_stale());
    }
}
