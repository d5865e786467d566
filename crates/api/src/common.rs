//! Small types every kind shares: references to other objects and to Secret keys, and the
//! CEL rules that guard them.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL: the value is a DNS label (RFC 1123), as Kubernetes object names in these references are.
pub const DNS_LABEL_RULE: &str = "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
/// The message shown when [`DNS_LABEL_RULE`] fails.
pub const DNS_LABEL_MESSAGE: &str = "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit";
/// CEL: the value is an http(s) URL.
pub const HTTP_URL_RULE: &str = "self.startsWith('http://') || self.startsWith('https://')";
/// The message shown when [`HTTP_URL_RULE`] fails.
pub const HTTP_URL_MESSAGE: &str = "must be an http:// or https:// URL";

/// A reference to the McpServer (in the same namespace) that serves this object.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerRef {
    /// Name of the McpServer in this object's namespace.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub name: String,
}

/// A reference by name to another object of a known kind in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// Name of the object in this object's namespace.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = kube::core::Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub name: String,
}

/// One key of a Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The Secret holding a link's credentials, and which of its keys holds each credential.
///
/// Each link type reads the credentials it needs by a fixed name (postgres: `username`,
/// `password`; s3: `accessKeyId`, `secretAccessKey`; grafana: `token`; ...). By default the
/// Secret key has the same name; `keys` maps a credential to another key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSecretRef {
    /// Name of the Secret in the link's namespace. Its values never leave the server.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Maps a credential name (e.g. `password`) to the key in the Secret that holds it
    /// (e.g. `pg-password`). A credential not listed is read from the key of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
}

impl CredentialsSecretRef {
    /// The Secret key that holds `credential`.
    pub fn key_for<'a>(&'a self, credential: &'a str) -> &'a str {
        self.keys
            .get(credential)
            .map(String::as_str)
            .unwrap_or(credential)
    }

    /// The credentials found in a Secret's decoded `data`: every entry under its own name, and
    /// each mapped credential under its credential name. A mapped key missing from the Secret
    /// is an error naming it, so the link's status can say exactly what to fix.
    pub fn resolve(
        &self,
        data: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, MissingSecretKey> {
        let mut credentials = data.clone();
        for (credential, key) in &self.keys {
            let value = data.get(key).ok_or_else(|| MissingSecretKey {
                secret: self.name.clone(),
                key: key.clone(),
                credential: credential.clone(),
            })?;
            credentials.insert(credential.clone(), value.clone());
        }
        Ok(credentials)
    }
}

/// A key the link's mapping names is not in its Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecretKey {
    /// The Secret's name.
    pub secret: String,
    /// The missing key.
    pub key: String,
    /// The credential it was mapped to.
    pub credential: String,
}

impl std::fmt::Display for MissingSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret {} has no key '{}' (mapped to the credential '{}')",
            self.secret, self.key, self.credential
        )
    }
}

impl std::error::Error for MissingSecretKey {}

/// TLS options of a link to an HTTP(S) service (prometheus, loki, grafana, argocd, fastapi).
///
/// The server's certificate is verified against the CA bundle (PEM) in the link's credentials
/// under [`TlsOptions::CA_CREDENTIAL`] (`ca.crt`; map another Secret key to it with
/// `credentialsSecretRef.keys`), or against the system roots when the credentials have none.
/// A client certificate is presented when the credentials hold both `tls.crt` and `tls.key`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptions {
    /// Accept any server certificate without verifying it (name, issuer, expiry). Only for
    /// test setups: anyone on the path can read and change the traffic, credentials included.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    /// The credential holding the CA bundle (PEM) that server certificates are verified with.
    pub const CA_CREDENTIAL: &'static str = "ca.crt";
    /// The credential holding a client certificate chain (PEM) for mutual TLS.
    pub const CLIENT_CERT_CREDENTIAL: &'static str = "tls.crt";
    /// The credential holding the client certificate's private key (PEM) for mutual TLS.
    pub const CLIENT_KEY_CREDENTIAL: &'static str = "tls.key";
}
