//! The Secrets a reconcile reads, and what it makes of references into them.
//!
//! Secrets are read by name, one GET each, never listed: the controller looks only at the
//! Secrets some object references (a link's credentials, an Agent's API key, notification
//! credentials). What is found is kept decoded for the pure steps that follow; a missing
//! Secret or key becomes a [`Problem`] whose message names what to create.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use linkmcp_api::common::{CredentialsSecretRef, SecretKeyRef};
use linkmcp_api::names::reason;

use crate::error::Error;

/// A reference that does not resolve, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// [`reason::SECRET_NOT_FOUND`] or [`reason::SECRET_KEY_MISSING`].
    pub reason: &'static str,
    /// E.g. "Secret pg-creds has no key 'password'".
    pub message: String,
}

/// The decoded Secrets of one namespace that a reconcile looked up, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    namespace: String,
    /// Name -> its data; `None` when the Secret does not exist.
    found: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Secrets {
    /// Reads each Secret of `names` in `namespace`.
    pub async fn fetch(
        client: &kube::Client,
        namespace: &str,
        names: BTreeSet<String>,
    ) -> Result<Self, Error> {
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let mut found = BTreeMap::new();
        for name in names {
            let secret = api
                .get_opt(&name)
                .await
                .map_err(|e| Error::kube(format!("reading Secret {namespace}/{name}"), e))?;
            found.insert(name, secret.as_ref().map(decode));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            found,
        })
    }

    /// Secrets given as data (tests, and the pure steps' callers).
    pub fn new(
        namespace: &str,
        found: impl IntoIterator<Item = (String, Option<BTreeMap<String, String>>)>,
    ) -> Self {
        Self {
            namespace: namespace.to_owned(),
            found: found.into_iter().collect(),
        }
    }

    /// The data of Secret `name`.
    pub fn data(&self, name: &str) -> Result<&BTreeMap<String, String>, Problem> {
        self.found
            .get(name)
            .and_then(Option::as_ref)
            .ok_or_else(|| Problem {
                reason: reason::SECRET_NOT_FOUND,
                message: format!("Secret {name} not found in namespace {}", self.namespace),
            })
    }

    /// The credentials a link's reference resolves to (see [`CredentialsSecretRef::resolve`]).
    pub fn resolve(
        &self,
        reference: &CredentialsSecretRef,
    ) -> Result<BTreeMap<String, String>, Problem> {
        let data = self.data(&reference.name)?;
        reference.resolve(data).map_err(|missing| Problem {
            reason: reason::SECRET_KEY_MISSING,
            message: missing.to_string(),
        })
    }

    /// The value of one Secret key.
    pub fn key(&self, reference: &SecretKeyRef) -> Result<String, Problem> {
        let data = self.data(&reference.name)?;
        data.get(&reference.key).cloned().ok_or_else(|| Problem {
            reason: reason::SECRET_KEY_MISSING,
            message: format!("Secret {} has no key '{}'", reference.name, reference.key),
        })
    }
}

/// A Secret's `data` decoded as text (credentials are text), with `stringData` winning as in
/// the API server.
pub fn decode(secret: &Secret) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    data.extend(secret.string_data.clone().unwrap_or_default());
    data
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn secrets() -> Secrets {
        Secrets::new(
            "team",
            [
                (
                    "pg-creds".to_owned(),
                    Some(BTreeMap::from([("user".to_owned(), "app".to_owned())])),
                ),
                ("gone".to_owned(), None),
            ],
        )
    }

    #[test]
    fn problems_name_what_is_missing() {
        let s = secrets();
        let missing = s.data("gone").unwrap_err();
        assert_eq!(missing.reason, reason::SECRET_NOT_FOUND);
        assert_eq!(missing.message, "Secret gone not found in namespace team");

        let reference = CredentialsSecretRef {
            name: "pg-creds".into(),
            keys: BTreeMap::from([("password".to_owned(), "password".to_owned())]),
        };
        let problem = s.resolve(&reference).unwrap_err();
        assert_eq!(problem.reason, reason::SECRET_KEY_MISSING);
        assert!(
            problem
                .message
                .starts_with("Secret pg-creds has no key 'password'"),
            "{}",
            problem.message
        );

        let key = SecretKeyRef {
            name: "pg-creds".into(),
            key: "token".into(),
        };
        assert_eq!(
            s.key(&key).unwrap_err().message,
            "Secret pg-creds has no key 'token'"
        );
    }
}
