//! The reconcilers' error type, and how each error is retried.
//!
//! Two classes: an [`ErrorClass::Invalid`] error cannot go away by retrying (the API server
//! refused what the spec asks for), so the object waits for its next change; a
//! [`ErrorClass::Transient`] one (network, conflicts, the API server restarting, RBAC being
//! fixed) is retried with a per-object exponential backoff. Problems a person can fix in a
//! spec are not errors at all: the reconcilers write them as conditions and finish normally.

use kube::core::Status;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object from the API server lacks a field every stored object has.
    #[error("{kind} has no metadata.{field}")]
    MissingMetadata {
        kind: &'static str,
        field: &'static str,
    },
    /// A call to the Kubernetes API failed.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// An object could not be turned into JSON (a bug, not a spec problem).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How an error is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying cannot help: wait for the object to change.
    Invalid,
    /// Retry with backoff.
    Transient,
}

impl Error {
    /// A Kubernetes API error with what was being done.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// The `reason` label of the `reconcile_errors_total` metric: a fixed, low-cardinality name.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::MissingMetadata { .. } => "missing_metadata",
            Error::Encode { .. } => "encode",
            Error::Kube { source, .. } => match api_status(source).map(|s| s.code) {
                Some(400 | 422) => "api_invalid",
                Some(403) => "api_forbidden",
                Some(404) => "api_not_found",
                Some(409) => "api_conflict",
                Some(429) => "api_throttled",
                Some(code) if code >= 500 => "api_server_error",
                Some(_) => "api_other",
                None => "api_unreachable",
            },
        }
    }

    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::MissingMetadata { .. } | Error::Encode { .. } => ErrorClass::Invalid,
            Error::Kube { source, .. } => match api_status(source).map(|s| s.code) {
                Some(400 | 422) => ErrorClass::Invalid,
                _ => ErrorClass::Transient,
            },
        }
    }

    /// The API server's own message, when it refused a request as invalid (400/422): what a
    /// person must change, as the API server words it.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Error::Kube { source, .. } => api_status(source)
                .filter(|s| s.code == 400 || s.code == 422)
                .map(|s| s.message.as_str()),
            _ => None,
        }
    }
}

/// The API server's status of a failed request, if it answered.
pub fn api_status(err: &kube::Error) -> Option<&Status> {
    match err {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// Whether `err` is the API server answering 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    api_status(err).is_some_and(|s| s.code == 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> Error {
        let status = Status::failure(message, "Invalid").with_code(code);
        Error::kube("applying Deployment x", kube::Error::Api(status.boxed()))
    }

    #[test]
    fn refusals_wait_and_the_rest_backs_off() {
        let invalid = api(422, "spec.replicas: Invalid value");
        assert_eq!(invalid.class(), ErrorClass::Invalid);
        assert_eq!(invalid.metric_label(), "api_invalid");
        assert_eq!(invalid.refusal(), Some("spec.replicas: Invalid value"));

        let conflict = api(409, "the object has been modified");
        assert_eq!(conflict.class(), ErrorClass::Transient);
        assert_eq!(conflict.metric_label(), "api_conflict");
        assert_eq!(conflict.refusal(), None);

        assert_eq!(api(503, "unavailable").metric_label(), "api_server_error");
        assert_eq!(api(403, "forbidden").class(), ErrorClass::Transient);
    }
}
