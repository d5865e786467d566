//! The base URL of an HTTP backend: checked once when the link is built, shown in messages
//! (never with credentials), and joined with each request's path.

use reqwest::Url;

/// An http(s) URL with a host and no credentials, with any trailing `/` removed from its path
/// so that request paths join under it (`https://host/grafana` + `/api/search`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Url,
}

impl BaseUrl {
    /// Parses `raw`, the value of the spec field `field` (named in every refusal).
    pub fn parse(field: &str, raw: &str) -> Result<Self, String> {
        let mut url = Url::parse(raw.trim())
            .map_err(|e| format!("{field} `{raw}` is not a valid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{field} must be an http:// or https:// URL, not {}://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{field} `{raw}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoing `raw`: it holds the credential.
            return Err(format!(
                "{field} must not carry credentials (user:password@); put them in the link's \
                 credentials Secret (`token`, or `username` and `password`)"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{field} must not have a query or fragment; give the base URL of the API"
            ));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// `scheme://host:port/prefix` as shown to people and models.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// The host.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, explicit or the scheme's.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// `host:port`, for "cannot reach" messages.
    pub fn endpoint(&self) -> String {
        // `host_str` keeps the brackets of an IPv6 address.
        format!("{}:{}", self.host(), self.port())
    }

    /// Whether the URL is https.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The URL of `path` (starting with `/`, already percent-encoded where it needs to be)
    /// under the base.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        let path = path.trim_start_matches('/');
        url.set_path(&format!("{base}/{path}"));
        url
    }

    /// The URL of the path made of `segments` under the base, each percent-encoded (a name
    /// holding `/` stays one segment).
    pub fn join_segments(&self, segments: &[&str]) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
