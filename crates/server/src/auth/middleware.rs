//! The HTTP face of authentication: axum middleware for the protected routes, and the
//! RFC 6750 answers a refused request gets.
//!
//! [`require_auth`] (or [`protect`] on a whole router) guards any route — `/mcp` today,
//! `/api/v1/*` and `/debug/*` as they come; the probes stay outside it. A refused request gets
//! 401 with `WWW-Authenticate: Bearer realm="linkmcp"` (plus `error="invalid_token"` and an
//! `error_description` when the token it sent is bad), or 403 with
//! `error="insufficient_scope", scope="..."` when it lacks a scope, and a small JSON body saying
//! the same. [`challenge_tool_calls`] applies the tool scopes to MCP `tools/call` requests.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Auth, Identity};

/// The realm named in every challenge.
pub const REALM: &str = "linkmcp";

/// Why a request was refused. The descriptions never contain a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable credential was sent (none, or not a Bearer one).
    #[error("{description}")]
    Missing { description: String },
    /// The McpServer configures no way in: no API keys, no OIDC, no anonymous access.
    #[error("this server admits no client: its McpServer configures no way to authenticate")]
    NoOneAdmitted,
    /// The bearer token is not valid (unknown key, bad or expired JWT, keys unavailable).
    #[error("{0}")]
    InvalidToken(String),
    /// The caller is known but lacks scopes.
    #[error("{what} needs scope(s) {}, which the caller lacks", missing.join(" "))]
    InsufficientScope {
        /// The scopes lacking, in declaration order.
        missing: Vec<String>,
        /// Whether the caller sent no credentials: it is asked to authenticate (401) rather
        /// than told its token is too weak (403).
        anonymous: bool,
        /// What needs them ("this server", "tool `pg_execute`").
        what: String,
    },
}

impl AuthError {
    pub(crate) fn missing() -> Self {
        Self::Missing {
            description: "this endpoint needs credentials: send `Authorization: Bearer <token>` \
                          with an API key or an OIDC access token"
                .to_owned(),
        }
    }

    pub(crate) fn unsupported_scheme() -> Self {
        Self::Missing {
            description: "only Bearer credentials are accepted: send `Authorization: Bearer \
                          <token>` with an API key or an OIDC access token"
                .to_owned(),
        }
    }

    pub(crate) fn invalid_token(description: impl Into<String>) -> Self {
        Self::InvalidToken(description.into())
    }

    pub(crate) fn insufficient_scope(missing: Vec<String>, anonymous: bool, what: String) -> Self {
        Self::InsufficientScope {
            missing,
            anonymous,
            what,
        }
    }

    /// The refusal as one fixed word, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "missing_token",
            Self::NoOneAdmitted => "no_auth_configured",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
        }
    }

    /// 403 for a known caller lacking scopes, 401 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InsufficientScope {
                anonymous: false, ..
            } => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code, absent when the request carried no credentials.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope {
                anonymous: false, ..
            } => Some("insufficient_scope"),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge.
    pub fn challenge(&self) -> String {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if let Some(code) = self.code() {
            challenge.push_str(&format!(", error=\"{code}\""));
        }
        if let Self::InsufficientScope { missing, .. } = self {
            challenge.push_str(&format!(", scope=\"{}\"", quotable(&missing.join(" "))));
        }
        if self.code().is_some() {
            challenge.push_str(&format!(
                ", error_description=\"{}\"",
                quotable(&self.to_string())
            ));
        }
        challenge
    }
}

/// `text` reduced to what an RFC 6750 quoted value may hold (printable ASCII without `"` and
/// `\`).
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "error": self.code().unwrap_or("unauthorized"),
            "error_description": self.to_string(),
        });
        if let Self::InsufficientScope { missing, .. } = &self {
            body["scope"] = missing.join(" ").into();
        }
        let challenge = HeaderValue::from_str(&self.challenge())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"linkmcp\""));
        let mut response = (self.status(), axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}

/// Authenticates every request, refuses it with 401/403 or passes it on with its
/// [`Identity`] in the request extensions (where rmcp's handlers find it, in the
/// `http::request::Parts` rmcp puts in each request's context).
pub async fn require_auth(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(request.headers()).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(err) => {
            auth.count_refusal(&err);
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                status = err.status().as_u16(),
                reason = %err,
                "request refused"
            );
            err.into_response()
        }
    }
}

/// `router` with every route behind [`require_auth`].
pub fn protect<S>(router: Router<S>, auth: Arc<Auth>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(middleware::from_fn_with_state(auth, require_auth))
}

/// The part of a JSON-RPC message that says which tool it calls.
#[derive(Deserialize)]
struct ToolCall {
    method: Option<String>,
    params: Option<ToolCallParams>,
}

#[derive(Deserialize)]
struct ToolCallParams {
    name: Option<String>,
}

/// For `/mcp`, inside [`require_auth`] and the JSON body guard: refuses a `tools/call` of a
/// tool the caller lacks scopes for with HTTP 403 `insufficient_scope` naming them.
///
/// Why HTTP and not only a JSON-RPC error: the MCP authorization spec (2025-11-25, "Scope
/// challenge handling") answers a request whose token lacks a scope for the operation with
/// 403 and `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`, so that an OAuth
/// client can ask its issuer for the scope and retry (step-up authorization); rmcp's client
/// surfaces exactly that as `InsufficientScopeError`. The handler checks again and answers a
/// JSON-RPC error for whatever reaches it anyway (see `mcp::handler`). Callers with every scope
/// (API keys) and servers without tool scopes skip the body inspection.
pub async fn challenge_tool_calls(
    State((auth, max_bytes)): State<(Arc<Auth>, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let inspect = request.method() == Method::POST
        && request
            .extensions()
            .get::<Identity>()
            .is_some_and(|identity| !identity.all_scopes)
        && auth.restricts_tools();
    if !inspect {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, max_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: could not read the request body: {err}"),
            )
                .into_response();
        }
    };
    if let Ok(ToolCall {
        method: Some(method),
        params: Some(ToolCallParams { name: Some(tool) }),
    }) = serde_json::from_slice::<ToolCall>(&bytes)
        && method == "tools/call"
        && let Some(identity) = parts.extensions.get::<Identity>()
    {
        let missing = auth.missing_tool_scopes(identity, &tool);
        if !missing.is_empty() {
            tracing::info!(
                identity = %identity.id,
                tool = %tool,
                missing_scopes = %missing.join(" "),
                "tool call refused: missing scopes"
            );
            let err = AuthError::insufficient_scope(
                missing,
                identity.is_anonymous(),
                format!("tool `{tool}`"),
            );
            auth.count_refusal(&err);
            return err.into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(AuthError::missing().challenge(), "Bearer realm=\"linkmcp\"");
        assert_eq!(AuthError::missing().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            AuthError::NoOneAdmitted.challenge(),
            "Bearer realm=\"linkmcp\""
        );

        let invalid = AuthError::invalid_token("the token has \"expired\"\n");
        assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            invalid.challenge(),
            "Bearer realm=\"linkmcp\", error=\"invalid_token\", \
             error_description=\"the token has 'expired'?\""
        );

        let scope = AuthError::insufficient_scope(
            vec!["db:write".into(), "mcp".into()],
            false,
            "tool `pg_execute`".into(),
        );
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            scope.challenge(),
            "Bearer realm=\"linkmcp\", error=\"insufficient_scope\", scope=\"db:write mcp\", \
             error_description=\"tool `pg_execute` needs scope(s) db:write mcp, which the \
             caller lacks\""
        );

        let anonymous = AuthError::insufficient_scope(vec!["mcp".into()], true, "x".into());
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            anonymous.challenge(),
            "Bearer realm=\"linkmcp\", scope=\"mcp\""
        );
    }

    #[tokio::test]
    async fn the_body_repeats_the_challenge() {
        let response =
            AuthError::insufficient_scope(vec!["a".into()], false, "t".into()).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("error=\"insufficient_scope\"")
        );
        let body = to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "a");
        assert_eq!(
            body["error_description"],
            "t needs scope(s) a, which the caller lacks"
        );
    }
}
