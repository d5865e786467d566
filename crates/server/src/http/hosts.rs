//! Host validation for the REST and debug routes, the same rule rmcp applies to `/mcp`.
//!
//! A web page can make a browser send requests to `localhost` (DNS rebinding: a name the
//! attacker controls resolves to 127.0.0.1). Such requests carry the attacker's Host header,
//! so refusing Host names the server does not answer to keeps a page from calling tools
//! through the REST API when authentication is off. `/metrics` and the probes are not
//! guarded: Prometheus and the kubelet address the pod IP.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The Host names accepted (lower case, without port).
#[derive(Debug, Clone)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// Accepts `hosts` (as [`super::allowed_hosts`] builds them).
    pub fn new(hosts: Vec<String>) -> Self {
        Self(Arc::new(
            hosts
                .into_iter()
                .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
                .collect(),
        ))
    }

    /// Whether a request with this Host header value (`name[:port]`) is accepted.
    pub fn allows(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        let name = authority
            .host()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        self.0.contains(&name)
    }
}

/// Refuses (403) a request whose Host (or HTTP/2 authority) is not allowed.
pub async fn require_allowed_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if allowed.allows(&host) => next.run(request).await,
        _ => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "Forbidden: the Host header names a host this server does not answer to \
                          (see --allowed-host)"
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_whatever_the_port_and_case() {
        let allowed = AllowedHosts::new(super::super::allowed_hosts(&["MCP.example.com".into()]));
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "mcp.example.com",
            "Mcp.Example.Com:443",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in ["evil.example", "localhost.evil.example", "", "bad host"] {
            assert!(!allowed.allows(host), "{host}");
        }
    }
}
