//! One way to talk to an HTTP API backend (Prometheus, Loki, Grafana, Argo CD, and later
//! OpenAPI services, MCP gateways and health probes), so every such toolset validates its URL,
//! authenticates, verifies TLS, bounds its calls and names its failures the same way.
//!
//! - [`BaseUrl`]: the link's URL, refused unless it is http(s) with a host and no credentials;
//!   request paths are joined to it, keeping a path prefix (`https://host/grafana`).
//! - [`Auth`]: from the link's credentials — bearer `token`, or basic `username`/`password`.
//! - TLS ([`tls`]): the CA bundle `ca.crt` from the credentials, else the system roots;
//!   `insecureSkipVerify` only when the link says so; a client certificate from
//!   `tls.crt`/`tls.key`.
//! - [`HttpClient`]: one reqwest client per link (connect and request timeouts), JSON GET and
//!   POST whose body is read up to a byte cap.
//! - [`HttpError`]: a failure named by its status with the server's own message (401 says
//!   which Secret's token was refused), or unreachable host:port, or timeout — never a
//!   credential: every message is scrubbed of the link's credential values.
//!
//! Building a client opens no connection, so an unreachable backend still lists its tools.

mod auth;
mod client;
mod error;
pub mod tls;
mod url;

pub use auth::Auth;
pub use client::{HttpClient, HttpRequest, HttpSettings, Reply};
pub use error::HttpError;
pub use url::BaseUrl;

/// The most bytes of one response body read when a request sets no cap of its own: enough for
/// any answer a tool summarises, small enough that a runaway answer cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long opening a TCP connection (and TLS handshake) may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
pub(crate) mod stub;
#[cfg(test)]
mod tests;
