//! The REST API: the server's tools for clients that do not speak MCP (scripts, CI jobs,
//! dashboards).
//!
//! `GET /api/v1/tools` lists the tools exactly as `tools/list` does; `POST
//! /api/v1/tools/{name}/call` takes the arguments object as its body and answers the
//! `CallToolResult` as MCP would. A call goes through [`Registry::call`] like an MCP call, so
//! the same time limit, output cap, rate limit, scrubbing, masking and audit apply.
//! `GET /api/v1/openapi.json` describes these endpoints ([`super::openapi`]).
//!
//! The router expects the auth layer in front of it ([`crate::auth::protect`]), which puts the
//! caller's [`Identity`] in the request extensions; the tool scopes then apply as on `/mcp`:
//! the list shows only the tools the caller may call, and a call it lacks scopes for is
//! refused with 403 `insufficient_scope`. A request without an identity has no scopes.
//!
//! Requests must carry `Content-Type: application/json`: a browser cannot send that
//! cross-site without a CORS preflight (which this API never grants), so a web page cannot
//! make a visitor's browser call a tool.

use std::sync::{Arc, LazyLock};

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use linkmcp_toolsets::CallContext;
use rmcp::model::JsonObject;
use serde_json::{Value, json};

use super::hosts::{AllowedHosts, require_allowed_host};
use crate::{
    Settings,
    auth::{Auth, AuthError, Identity},
    mcp::CallLimits,
    registry::Registry,
};

struct Rest {
    registry: Arc<Registry>,
    limits: CallLimits,
    auth: Arc<Auth>,
}

/// The `/api/v1` routes, guarded by Host validation and the request body limit.
pub fn router(registry: Arc<Registry>, settings: &Settings, auth: Arc<Auth>) -> Router {
    let rest = Arc::new(Rest {
        registry,
        limits: settings.limits,
        auth,
    });
    Router::new()
        .route("/api/v1/tools", get(list_tools))
        .route("/api/v1/tools/{name}/call", post(call_tool))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(rest)
        .layer(DefaultBodyLimit::max(settings.max_request_body_bytes))
        .layer(middleware::from_fn_with_state(
            AllowedHosts::new(super::allowed_hosts(&settings.allowed_hosts)),
            require_allowed_host,
        ))
}

/// An error answer: `{"error": message, ...extra}`.
fn error(status: StatusCode, message: impl Into<String>, extra: Value) -> Response {
    let mut body = json!({ "error": message.into() });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// The caller the auth layer identified; without one, a caller with no scopes.
fn caller(identity: Option<Extension<Identity>>) -> Identity {
    identity.map_or_else(Identity::anonymous, |Extension(identity)| identity)
}

async fn list_tools(
    State(rest): State<Arc<Rest>>,
    identity: Option<Extension<Identity>>,
) -> Response {
    let tools = rest
        .auth
        .visible_tools(&caller(identity), rest.registry.list());
    Json(json!({ "tools": tools })).into_response()
}

async fn openapi() -> Response {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(super::openapi::document);
    Json(&*DOCUMENT).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Why a call request was refused before reaching the registry.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.message, Value::Null)
    }
}

/// The arguments object of a call request, or why it is refused.
fn arguments(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<JsonObject, Refusal> {
    if !is_json(headers) {
        return Err(Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the tool's arguments as a JSON object with Content-Type: \
                      application/json"
                .to_owned(),
        });
    }
    let body = body.map_err(|rejection| Refusal {
        status: rejection.status(),
        message: rejection.body_text(),
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonObject::new());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(args)) => Ok(args),
        Ok(other) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "the request body must be a JSON object of the tool's arguments, not {}",
                json_kind(&other)
            ),
        }),
        Err(err) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            message: format!("the request body is not valid JSON: {err}"),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn call_tool(
    State(rest): State<Arc<Rest>>,
    Path(name): Path<String>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let args = match arguments(&headers, body) {
        Ok(args) => args,
        Err(refused) => return refused.into_response(),
    };
    let identity = caller(identity);
    let missing = rest.auth.missing_tool_scopes(&identity, &name);
    if !missing.is_empty() {
        tracing::info!(
            identity = %identity.id,
            tool = %name,
            missing_scopes = %missing.join(" "),
            "tool call refused: missing scopes"
        );
        let err = AuthError::insufficient_scope(
            missing,
            identity.is_anonymous(),
            format!("tool `{name}`"),
        );
        rest.auth.count_refusal(&err);
        return err.into_response();
    }
    let mut ctx = CallContext::new(identity.id.clone())
        .with_timeout(rest.limits.timeout)
        .with_max_output_bytes(rest.limits.max_output_bytes);
    if let Some(visible) = crate::auth::visibility_for(&rest.auth, &identity, &name) {
        ctx = ctx.with_visibility(visible);
    }
    match rest.registry.call(&name, args, &ctx).await {
        Ok(mut result) => {
            // The result-type discriminator belongs to the MCP protocol version, not to REST.
            result.result_type = None;
            Json(result).into_response()
        }
        Err(unknown) => error(
            StatusCode::NOT_FOUND,
            format!("unknown tool `{}`", unknown.name),
            json!({ "tool": unknown.name, "available": unknown.available }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("x")),
        );
        headers
    }

    #[test]
    fn only_json_content_types_are_accepted() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn an_empty_body_is_no_arguments() {
        let args = arguments(&headers("application/json"), Ok(Bytes::from_static(b" \n")));
        assert!(args.is_ok_and(|a| a.is_empty()));
    }

    #[test]
    fn non_objects_are_refused() {
        for (body, kind) in [("[1]", "an array"), ("\"x\"", "a string"), ("null", "null")] {
            let refused = arguments(&headers("application/json"), Ok(Bytes::from(body)));
            let Err(refusal) = refused else {
                panic!("{body} was accepted");
            };
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{kind}");
            assert!(refusal.message.ends_with(kind), "{}", refusal.message);
        }
    }
}
