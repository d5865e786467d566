//! From an McpLink to the toolset the server registers for it.
//!
//! [`build`] picks the backend module by link type — the one registration line a new backend
//! adds — and wraps its toolset in [`Governed`], which applies what the link declares for every
//! backend alike: the tool name prefix, the include/exclude filters, write access, the limits
//! (timeout, output, calls at once) and the result cache ([`cache`]). Backends
//! therefore declare all their tools under their type's default prefix and never look at those
//! settings themselves.

pub mod cache;
mod component;
mod governed;
mod naming;

use std::sync::Arc;

use linkmcp_api::{Backend, LinkType, McpLinkSpec, link::BackendCountError};

pub use component::Component;
pub use governed::Governed;
pub use naming::{LinkNaming, default_prefix, prefixes};

use crate::{Toolset, credentials::Credentials};

/// Everything a link's toolset is built from.
#[derive(Debug, Clone, Copy)]
pub struct LinkContext<'a> {
    /// The McpLink's name.
    pub name: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its spec.
    pub spec: &'a McpLinkSpec,
    /// Its resolved credentials.
    pub credentials: &'a Credentials,
}

impl LinkContext<'_> {
    /// Most rows, messages, keys or objects one call returns: `spec.limits.maxRows`, else 100.
    pub fn max_rows(&self) -> usize {
        self.spec
            .limits
            .max_rows
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_ROWS)
    }

    /// The backend-side time limit of one call: `spec.limits.timeoutSeconds`, else 30 s (the
    /// registry bounds the whole call by the same value).
    pub fn timeout(&self) -> std::time::Duration {
        self.spec
            .limits
            .timeout_seconds
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TIMEOUT, std::time::Duration::from_secs)
    }
}

/// Rows per call when a link sets no `limits.maxRows`.
pub const DEFAULT_MAX_ROWS: usize = 100;
/// Backend time limit when a link sets no `limits.timeoutSeconds`.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why a link has no toolset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The spec does not have exactly one backend block.
    #[error(transparent)]
    Backend(#[from] BackendCountError),
    /// No toolset for this link type is compiled into this server.
    #[error("link type {0} has no toolset in this server version")]
    Unsupported(LinkType),
    /// The link's settings cannot be served (an invalid tool filter, a bad URL, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Builds the governed toolset of a link whose tools are named with `prefix` (from
/// [`prefixes`]). Backends build their clients lazily, so this never waits on the network: an
/// unreachable backend still gets its tools listed, and a call says what to check.
pub fn build(link: &LinkContext<'_>, prefix: &str) -> Result<Arc<dyn Toolset>, BuildError> {
    let backend = link.spec.backend()?;
    let inner = backend_toolset(link, backend)?;
    Ok(Arc::new(
        Governed::new(
            inner,
            default_prefix(backend.link_type()),
            prefix,
            &link.spec.tools,
            link.spec.write_access,
        )?
        .describing(
            link.name,
            &backend.link_type().to_string(),
            link.spec.write_access,
        )
        .with_limits(&link.spec.limits)
        .with_cache(link.spec.cache.as_ref())?,
    ))
}

/// The backend module's toolset for the link's block: one arm per backend module.
fn backend_toolset(
    _link: &LinkContext<'_>,
    backend: Backend<'_>,
) -> Result<Arc<dyn Toolset>, BuildError> {
    #[allow(clippy::match_single_binding)]
    match backend {
        #[cfg(feature = "postgres")]
        Backend::Postgres(block) => crate::postgres::toolset(_link, block),
        #[cfg(feature = "postgres")]
        Backend::Cnpg(block) => crate::postgres::cnpg_toolset(_link, block),
        #[cfg(feature = "valkey")]
        Backend::Valkey(block) => crate::valkey::toolset(_link, block),
        #[cfg(feature = "rabbitmq")]
        Backend::Rabbitmq(block) => crate::rabbitmq::toolset(_link, block),
        #[cfg(feature = "kafka")]
        Backend::Kafka(block) => crate::kafka::toolset(_link, block),
        #[cfg(feature = "s3")]
        Backend::S3(block) => crate::s3::toolset(_link, block),
        #[cfg(feature = "clickhouse")]
        Backend::Clickhouse(block) => crate::clickhouse::toolset(_link, block),
        #[cfg(feature = "mongodb")]
        Backend::Mongodb(block) => crate::mongodb::toolset(_link, block),
        #[cfg(feature = "prometheus")]
        Backend::Prometheus(block) => crate::prometheus::toolset(_link, block),
        #[cfg(feature = "loki")]
        Backend::Loki(block) => crate::loki::toolset(_link, block),
        #[cfg(feature = "grafana")]
        Backend::Grafana(block) => crate::grafana::toolset(_link, block),
        #[cfg(feature = "argocd")]
        Backend::Argocd(block) => crate::argocd::toolset(_link, block),
        other => Err(BuildError::Unsupported(other.link_type())),
    }
}
