//! The link's one S3 client: built with the toolset from the link's block and credentials, with
//! everything set explicitly (endpoint, region, path-style, a static credentials provider), so
//! nothing is looked up in the environment or an instance metadata service and building it
//! never touches the network.
//!
//! [`S3::classify`] turns every failure of a call into a [`Failure`]: the cases a tool answers
//! with more context (a missing bucket or key) and, for everything else, a message a model can
//! act on (unreachable, timed out, credentials refused), with the link's credential values
//! scrubbed from it.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use linkmcp_api::link::S3Backend;

use crate::link::{BuildError, LinkContext};

/// How long opening a connection (TCP, TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The bucket does not exist.
    NoSuchBucket,
    /// The key does not exist in the bucket.
    NoSuchKey,
    /// A 404 without an error code (HEAD requests have no body): the bucket or the key.
    NotFound,
    /// A ranged GET asked for bytes the object does not have.
    InvalidRange,
    /// Anything else, as a complete message for the model.
    Message(String),
}

/// A lazily connecting client of one link's S3 store.
pub(super) struct S3 {
    pub(super) client: Client,
    /// `host:port` of the store, as shown in messages.
    pub(super) endpoint: String,
    /// `namespace/name` of the link, as shown in messages.
    link: String,
    has_credentials: bool,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
}

impl S3 {
    /// The client of `block`, configured but not connected. `timeout` bounds each operation.
    pub(super) fn new(
        link: &LinkContext<'_>,
        block: &S3Backend,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let access_key = link
            .credentials
            .get("accessKeyId")
            .filter(|v| !v.is_empty());
        let secret_key = link
            .credentials
            .get("secretAccessKey")
            .filter(|v| !v.is_empty());
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(block.region.clone()))
            .force_path_style(block.path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            // S3-compatible stores (SeaweedFS, MinIO, older versions) do not all know the
            // newer checksum headers; send and check them only where S3 requires them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &block.endpoint {
            config = config.endpoint_url(endpoint.trim_end_matches('/'));
        }
        let has_credentials = match (access_key, secret_key) {
            (Some(id), Some(secret)) => {
                config = config.credentials_provider(Credentials::new(
                    id,
                    secret,
                    None,
                    None,
                    "linkmcp-link-secret",
                ));
                true
            }
            (None, None) => {
                // Anonymous requests: public buckets, or a store without authentication.
                config = config.allow_no_auth();
                false
            }
            _ => {
                return Err(BuildError::Invalid(
                    "s3 credentials need both `accessKeyId` and `secretAccessKey` (or neither, \
                     for anonymous access)"
                        .into(),
                ));
            }
        };
        Ok(Self {
            client: Client::from_conf(config.build()),
            endpoint: host_port(block),
            link: format!("{}/{}", link.namespace, link.name),
            has_credentials,
            secrets: link
                .credentials
                .values()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// What went wrong with `action` (e.g. `ListObjectsV2 on bucket `b``).
    pub(super) fn classify<E>(&self, err: &SdkError<E>, action: &str) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let endpoint = &self.endpoint;
        match err {
            SdkError::DispatchFailure(failure) => {
                let detail = self.scrub(&innermost(err));
                if failure.is_timeout() {
                    Failure::Message(format!(
                        "S3 at {endpoint} did not answer in time ({detail}); check the link's \
                         endpoint, that the store listens there, and NetworkPolicy"
                    ))
                } else {
                    Failure::Message(self.unreachable(&detail))
                }
            }
            SdkError::TimeoutError(_) => Failure::Message(format!(
                "S3 at {endpoint} did not finish {action} in time; check that the store is \
                 reachable and healthy, or narrow the request"
            )),
            SdkError::ConstructionFailure(_) => Failure::Message(format!(
                "the request for {action} could not be built: {}",
                self.scrub(&innermost(err))
            )),
            _ => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let code = err.code().unwrap_or_default();
                let message = self.scrub(err.message().unwrap_or_default());
                match code {
                    "NoSuchBucket" => Failure::NoSuchBucket,
                    "NoSuchKey" => Failure::NoSuchKey,
                    "InvalidRange" => Failure::InvalidRange,
                    "AccessDenied"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "InvalidToken"
                    | "ExpiredToken"
                    | "AllAccessDisabled" => Failure::Message(self.denied(action, code, &message)),
                    _ if status == Some(403) => {
                        Failure::Message(self.denied(action, "403 Forbidden", &message))
                    }
                    _ if status == Some(404) => Failure::NotFound,
                    _ if status == Some(416) => Failure::InvalidRange,
                    "" => Failure::Message(format!(
                        "S3 at {endpoint} failed {action}{}: {}",
                        status
                            .map(|s| format!(" with HTTP {s}"))
                            .unwrap_or_default(),
                        self.scrub(&innermost(err))
                    )),
                    _ => Failure::Message(format!(
                        "S3 at {endpoint} refused {action}: {code}: {message}"
                    )),
                }
            }
        }
    }

    /// The store cannot be reached: what happened, and what to check.
    fn unreachable(&self, detail: &str) -> String {
        format!(
            "cannot reach S3 at {}: {detail}; check the link's endpoint (host, port, http or \
             https), that the store listens there, and NetworkPolicy",
            self.endpoint
        )
    }

    /// The store refused the link's credentials (or they lack a permission).
    fn denied(&self, action: &str, code: &str, message: &str) -> String {
        let (endpoint, link) = (&self.endpoint, &self.link);
        let message = message.trim_end_matches('.');
        let detail = if message.is_empty() {
            code.to_owned()
        } else {
            format!("{code}: {message}")
        };
        if self.has_credentials {
            format!(
                "S3 at {endpoint} refused {action} with the credentials of link {link} \
                 (`accessKeyId` and `secretAccessKey` from its credentialsSecretRef): {detail}; \
                 check those values in the Secret and the permissions granted to that key"
            )
        } else {
            format!(
                "S3 at {endpoint} refused {action} to link {link}, which has no credentials: \
                 {detail}; set credentialsSecretRef to a Secret with `accessKeyId` and \
                 `secretAccessKey`"
            )
        }
    }

    /// `text` with every credential value replaced.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// The message of the innermost cause of `err` (`Connection refused (os error 111)` rather
/// than `dispatch failure`).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// `host:port` of the store the link talks to.
fn host_port(block: &S3Backend) -> String {
    let Some(endpoint) = &block.endpoint else {
        return format!("s3.{}.amazonaws.com:443", block.region);
    };
    let (default_port, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (80, rest),
        Some((_, rest)) => (443, rest),
        None => (443, endpoint.as_str()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Userinfo never belongs in a message.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(endpoint: Option<&str>) -> S3Backend {
        S3Backend {
            endpoint: endpoint.map(str::to_owned),
            region: "eu-west-1".into(),
            ..S3Backend::default()
        }
    }

    #[test]
    fn endpoints_are_shown_as_host_and_port() {
        for (endpoint, expected) in [
            (None, "s3.eu-west-1.amazonaws.com:443"),
            (Some("http://127.0.0.1:8333"), "127.0.0.1:8333"),
            (
                Some("http://seaweedfs.storage.svc"),
                "seaweedfs.storage.svc:80",
            ),
            (Some("https://minio.example.com/"), "minio.example.com:443"),
            (Some("https://user:pw@minio:9000/x"), "minio:9000"),
            (Some("http://[::1]:9000"), "[::1]:9000"),
            (Some("http://[::1]"), "[::1]:80"),
        ] {
            assert_eq!(host_port(&block(endpoint)), expected, "{endpoint:?}");
        }
    }
}
