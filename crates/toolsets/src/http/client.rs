//! The HTTP client of one link and the requests its tools make.

use std::time::Duration;

use linkmcp_api::common::TlsOptions;
use reqwest::{Method, StatusCode, Url, header::HeaderName, header::HeaderValue};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::error::{HttpError, server_message};
use super::{Auth, BaseUrl, CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, tls};
use crate::link::{BuildError, LinkContext};

/// The most bytes of an error body read (its message is what matters).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// What a toolset tells the shared client about its backend.
#[derive(Debug, Clone)]
pub struct HttpSettings<'a> {
    /// The service as named in messages: `Prometheus`, `Grafana`.
    pub service: &'static str,
    /// The spec field holding the URL, named when it is refused: `prometheus.url`.
    pub url_field: &'static str,
    /// The base URL.
    pub url: &'a str,
    /// The block's TLS options.
    pub tls: Option<&'a TlsOptions>,
    /// What the credentials need when the server answers 403 ("the service account needs
    /// the Viewer role").
    pub permission_hint: &'static str,
    /// Headers sent with every request (a tenant, an organisation); never a credential.
    pub headers: Vec<(&'static str, String)>,
}

/// One link's client: built once per link, shared by all calls, connecting on first use.
#[derive(Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    base: BaseUrl,
    auth: Auth,
    service: &'static str,
    url_field: &'static str,
    permission_hint: &'static str,
    /// `namespace/name` of the link.
    link: String,
    /// The Secret the credentials come from, as the user named it.
    secret: Option<String>,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
    timeout: Duration,
}

/// A successful answer: its status, content type and body (at most the request's cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl HttpClient {
    /// The client of `link` for the backend `settings` describe. Refuses a bad URL, bad TLS
    /// material or a header that cannot be sent; opens no connection.
    pub fn new(link: &LinkContext<'_>, settings: HttpSettings<'_>) -> Result<Self, BuildError> {
        let base = BaseUrl::parse(settings.url_field, settings.url).map_err(BuildError::Invalid)?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &settings.headers {
            let value = HeaderValue::from_str(value).map_err(|_| {
                BuildError::Invalid(format!("the {name} header value is not valid HTTP text"))
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(link.timeout())
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("linkmcp/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers);
        let builder = tls::configure(builder, settings.tls, link.credentials).map_err(|e| {
            BuildError::Invalid(format!("{} link {}: {e}", settings.service, link.name))
        })?;
        let http = builder.build().map_err(|e| {
            BuildError::Invalid(format!(
                "the HTTP client for {} could not be built: {e}",
                settings.service
            ))
        })?;
        Ok(Self {
            http,
            base,
            auth: Auth::from_credentials(link.credentials),
            service: settings.service,
            url_field: settings.url_field,
            permission_hint: settings.permission_hint,
            link: format!("{}/{}", link.namespace, link.name),
            secret: link.spec.credentials_secret().map(|r| r.name),
            secrets: link
                .credentials
                .values()
                .filter(|v| v.len() >= 4)
                .map(str::to_owned)
                .collect(),
            timeout: link.timeout(),
        })
    }

    /// The base URL (for messages and the topology).
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// How the link authenticates.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// `GET <base><path>`.
    pub fn get(&self, path: &str) -> HttpRequest<'_> {
        self.request(Method::GET, self.base.join(path))
    }

    /// `POST <base><path>`.
    pub fn post(&self, path: &str) -> HttpRequest<'_> {
        self.request(Method::POST, self.base.join(path))
    }

    /// A request to `url` (built with [`BaseUrl::join_segments`] when names go in the path).
    pub fn request(&self, method: Method, url: Url) -> HttpRequest<'_> {
        let path = url.path().to_owned();
        HttpRequest {
            client: self,
            builder: self.auth.apply(self.http.request(method, url)),
            path,
            max_bytes: DEFAULT_MAX_BODY_BYTES,
            timeout: self.timeout,
        }
    }

    /// `text` with every credential value replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }

    /// `<Service> at <base>`, the subject of every message.
    fn at(&self) -> String {
        format!("{} at {}", self.service, self.base)
    }

    /// `Secret x`, or where the credentials would come from.
    fn secret(&self) -> String {
        match &self.secret {
            Some(name) => format!("Secret {name}"),
            None => "the link's credentials".to_owned(),
        }
    }

    fn status_error(&self, status: StatusCode, path: &str, body: &[u8]) -> HttpError {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let said = self.scrub(&server_message(body, json.as_ref()));
        let at = self.at();
        let code = status.as_u16();
        let message = match status {
            StatusCode::UNAUTHORIZED => match (&self.auth, &self.secret) {
                (Auth::None, _) => format!(
                    "{at} requires authentication (401: {said}); link {} has no credentials: \
                     set credentialsSecretRef to a Secret with `token` (bearer) or `username` \
                     and `password`",
                    self.link
                ),
                (auth, _) => format!(
                    "{at} answered 401: {} in {} was refused ({said}); check that value in the \
                     Secret, or issue a new one",
                    auth.what(),
                    self.secret()
                ),
            },
            StatusCode::FORBIDDEN => format!(
                "{at} answered 403: the identity of {} in {} may not do this ({said}); {}",
                self.auth.what(),
                self.secret(),
                self.permission_hint
            ),
            StatusCode::NOT_FOUND => format!(
                "{at} has no {path} (404: {said}); check {} (does the API live under a path \
                 prefix?) and the names in the request",
                self.url_field
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                format!("{at} is rate limiting requests (429: {said}); wait a little and try again")
            }
            s if s.is_server_error() => format!(
                "{at} failed with {s} ({said}); the service may be overloaded, restarting or \
                 unable to reach its own backends: try again shortly, or ask for less"
            ),
            s => format!("{at} refused the request with {s}: {said}"),
        };
        HttpError {
            message,
            status: Some(code),
            server_message: Some(said),
            body: json,
            timed_out: false,
        }
    }

    fn transport_error(&self, err: &reqwest::Error, timeout: Duration) -> HttpError {
        // The innermost cause says what happened (connection refused, unknown issuer, ...).
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let cause = self.scrub(&cause.to_string());
        let endpoint = self.base.endpoint();
        let service = self.service;
        let timed_out = err.is_timeout();
        let message = if timed_out {
            format!(
                "{service} at {endpoint} did not answer within {} s (the call's time limit, \
                 limits.timeoutSeconds of the link); narrow the request or raise the limit",
                timeout.as_secs_f32()
            )
        } else if tls::is_certificate_error(&cause) {
            format!(
                "the TLS connection to {service} at {endpoint} failed: {cause}. If its \
                 certificate comes from a private CA, put that CA (PEM) under `ca.crt` in {}; \
                 tls.insecureSkipVerify: true skips the check (test setups only)",
                self.secret()
            )
        } else if err.is_connect() {
            format!(
                "cannot reach {service} at {endpoint}: {cause}; check {}, that the service \
                 runs, and that the network (NetworkPolicy, DNS) allows the connection",
                self.url_field
            )
        } else {
            format!("the request to {service} at {endpoint} failed: {cause}")
        };
        HttpError {
            message,
            status: None,
            server_message: None,
            body: None,
            timed_out,
        }
    }
}

/// One request being built: reqwest's builder with the link's auth already applied, plus the
/// bounds of reading its answer.
#[must_use = "a request does nothing until it is sent"]
pub struct HttpRequest<'a> {
    client: &'a HttpClient,
    builder: reqwest::RequestBuilder,
    path: String,
    max_bytes: usize,
    timeout: Duration,
}

impl HttpRequest<'_> {
    /// Adds URL query parameters (a slice of pairs, or a serializable struct).
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    /// Sends `form` as `application/x-www-form-urlencoded` (long PromQL fits in no URL).
    pub fn form<T: Serialize + ?Sized>(mut self, form: &T) -> Self {
        self.builder = self.builder.form(form);
        self
    }

    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Adds one header (never a credential: the client adds those).
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Bounds this request by `timeout` (the call's) instead of the link's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads at most `max_bytes` of the answer; a longer one is an error saying so.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sends the request; a non-2xx answer is an [`HttpError`] named by its status.
    pub async fn send(self) -> Result<Reply, HttpError> {
        let client = self.client;
        let timeout = self.timeout;
        let mut response = self
            .builder
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| client.transport_error(&e, timeout))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = if status.is_success() {
            self.max_bytes
        } else {
            MAX_ERROR_BODY_BYTES
        };
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        if !status.is_success() {
                            body.extend_from_slice(&chunk[..limit - body.len()]);
                            break;
                        }
                        return Err(HttpError::other(format!(
                            "the answer of {} exceeded {} bytes, the most read for one call; \
                             narrow the request (a shorter time range, fewer series or lines, \
                             a filter)",
                            client.at(),
                            limit
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(client.transport_error(&e, timeout)),
            }
        }
        if !status.is_success() {
            return Err(client.status_error(status, &self.path, &body));
        }
        Ok(Reply {
            status: status.as_u16(),
            content_type,
            body,
        })
    }

    /// Sends the request and decodes its JSON answer as `T`.
    pub async fn fetch<T: DeserializeOwned>(self) -> Result<T, HttpError> {
        let client = self.client;
        let path = self.path.clone();
        let reply = self.send().await?;
        serde_json::from_slice(&reply.body).map_err(|e| {
            HttpError::other(format!(
                "{} answered {path} with something this tool cannot read ({e}); check that {} \
                 points at the {} API",
                client.at(),
                client.url_field,
                client.service
            ))
        })
    }
}
