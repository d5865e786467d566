//! TLS of an HTTP backend: which server certificates are trusted, and which client
//! certificate is presented, from the link's `tls` options and credentials.
//!
//! A CA bundle in the credentials (`ca.crt`) replaces the system roots rather than adding to
//! them: a link that names its CA trusts exactly that CA, which is what a private PKI wants
//! (and the platform verifier cannot merge roots anyway).

use linkmcp_api::common::TlsOptions;

use crate::credentials::Credentials;

/// Applies `options` and the TLS credentials to a client under construction. Errors name the
/// credential that could not be read (never its value).
pub fn configure(
    mut builder: reqwest::ClientBuilder,
    options: Option<&TlsOptions>,
    credentials: &Credentials,
) -> Result<reqwest::ClientBuilder, String> {
    if let Some(pem) = credentials
        .get(TlsOptions::CA_CREDENTIAL)
        .filter(|p| !p.trim().is_empty())
    {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                format!(
                    "the credential `{}` is not a PEM certificate bundle (-----BEGIN \
                     CERTIFICATE----- ...)",
                    TlsOptions::CA_CREDENTIAL
                )
            })?;
        builder = builder.tls_certs_only(certs);
    }
    match (
        credentials.get(TlsOptions::CLIENT_CERT_CREDENTIAL),
        credentials.get(TlsOptions::CLIENT_KEY_CREDENTIAL),
    ) {
        (Some(cert), Some(key)) => {
            let pem = format!("{}\n{}", cert.trim(), key.trim());
            let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
                format!(
                    "the credentials `{}` and `{}` are not a PEM certificate and private key",
                    TlsOptions::CLIENT_CERT_CREDENTIAL,
                    TlsOptions::CLIENT_KEY_CREDENTIAL
                )
            })?;
            builder = builder.identity(identity);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "a client certificate needs both `{}` and `{}` in the credentials",
                TlsOptions::CLIENT_CERT_CREDENTIAL,
                TlsOptions::CLIENT_KEY_CREDENTIAL
            ));
        }
        (None, None) => {}
    }
    if options.is_some_and(|o| o.insecure_skip_verify) {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// Whether `cause` (the innermost error of a failed request) is a certificate problem, so the
/// message can say how to trust the server.
pub(super) fn is_certificate_error(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "unknown issuer",
        "notvalidforname",
        "handshake",
    ]
    .iter()
    .any(|needle| cause.contains(needle))
}
