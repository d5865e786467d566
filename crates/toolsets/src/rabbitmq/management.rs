//! The RabbitMQ management HTTP API, as the read tools use it.
//!
//! The URL is built from segments so a virtual host or queue name is always percent-encoded
//! (`/` becomes `%2F`); credentials travel only in the Authorization header, so no URL this
//! module shows or logs can carry a password. HTTP failures become messages a model can act
//! on: unreachable, credentials refused, not found, or the broker's own reason.

use std::sync::Arc;
use std::time::Duration;

use linkmcp_api::link::RabbitmqBackend;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::Value;

use super::{CONNECT_TIMEOUT, LinkInfo};
use crate::link::BuildError;

/// Why a management request failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The object (queue, vhost) does not exist.
    NotFound,
    /// Anything else, as a message for the model.
    Message(String),
}

/// The management API of one link's broker.
pub(super) struct Management {
    http: Client,
    /// The base URL, without credentials.
    base: Url,
    info: Arc<LinkInfo>,
    timeout: Duration,
}

/// The management URL of `block`: `managementUrl`, or `http://<host>:15672`.
fn management_url(block: &RabbitmqBackend) -> Result<Url, String> {
    let raw = match &block.management_url {
        Some(url) => url.clone(),
        None if block.host.contains(':') => format!("http://[{}]:15672", block.host),
        None => format!("http://{}:15672", block.host),
    };
    let url =
        Url::parse(&raw).map_err(|e| format!("rabbitmq.managementUrl is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("rabbitmq.managementUrl must be an http:// or https:// URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "rabbitmq.managementUrl must not carry credentials; put `username` and \
             `password` in the link's credentials Secret"
                .to_owned(),
        );
    }
    Ok(url)
}

/// The management URL as shown in the topology, when it is valid.
pub(super) fn shown_url(block: &RabbitmqBackend) -> Option<String> {
    management_url(block).ok().map(|u| u.to_string())
}

impl Management {
    /// The API client of `block`; `timeout` bounds each request.
    pub(super) fn new(
        block: &RabbitmqBackend,
        info: Arc<LinkInfo>,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let base = management_url(block).map_err(BuildError::Invalid)?;
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| BuildError::Invalid(format!("rabbitmq management client: {e}")))?;
        Ok(Self {
            http,
            base,
            info,
            timeout,
        })
    }

    /// `<base>/api/<segments...>`, each segment percent-encoded.
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("api").extend(segments);
        }
        url
    }

    /// `GET url`, as JSON.
    pub(super) async fn get(&self, url: Url) -> Result<Value, Failure> {
        self.send(self.http.get(url)).await
    }

    /// `POST url` with a JSON body, as JSON.
    pub(super) async fn post(&self, url: Url, body: &Value) -> Result<Value, Failure> {
        self.send(self.http.post(url).json(body)).await
    }

    async fn send(&self, request: RequestBuilder) -> Result<Value, Failure> {
        let response = request
            .basic_auth(&self.info.username, Some(&self.info.password))
            .send()
            .await
            .map_err(|e| Failure::Message(self.transport_message(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::Message(self.transport_message(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Failure::Message(format!(
                    "the RabbitMQ management API at {} answered something that is not JSON \
                     ({e}); check managementUrl",
                    self.base
                ))
            });
        }
        let reason = self.info.scrub(&reason(&body));
        let service = format!("the RabbitMQ management API at {}", self.base);
        Err(match status {
            StatusCode::NOT_FOUND => Failure::NotFound,
            StatusCode::UNAUTHORIZED => Failure::Message(self.info.auth_message(&service, &reason)),
            StatusCode::FORBIDDEN => Failure::Message(format!(
                "{service} denied the user of link {} this request: {reason}; the user needs \
                 the `monitoring` tag and permissions on the virtual host",
                self.info.name
            )),
            _ => Failure::Message(format!("{service} answered {status}: {reason}")),
        })
    }

    fn transport_message(&self, err: &reqwest::Error) -> String {
        let base = &self.base;
        // The innermost cause says what happened (connection refused, no such host, ...).
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let cause = self.info.scrub(&cause.to_string());
        if err.is_timeout() {
            format!(
                "the RabbitMQ management API at {base} did not answer within {} s; check \
                 managementUrl and NetworkPolicy, or narrow the request",
                self.timeout.as_secs()
            )
        } else if err.is_connect() || err.is_request() {
            format!(
                "cannot reach the RabbitMQ management API at {base}: {cause}; check \
                 managementUrl (or host), that the rabbitmq_management plugin is enabled, and \
                 NetworkPolicy"
            )
        } else {
            format!("the RabbitMQ management API at {base} failed: {cause}")
        }
    }
}

/// The broker's reason in an error body (`{"error": ..., "reason": ...}`), or the body itself.
fn reason(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let reason = parsed.as_ref().and_then(|v| {
        v.get("reason")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match reason {
        Some(reason) => reason,
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            match text.char_indices().nth(300) {
                Some((end, _)) => format!("{}...", &text[..end]),
                None if text.is_empty() => "no reason given".to_owned(),
                None => text.to_owned(),
            }
        }
    }
}
