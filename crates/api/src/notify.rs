//! Where run reports go: a webhook and/or email. Used for an McpServer's defaults and per AiTask.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{CredentialsSecretRef, HTTP_URL_MESSAGE, HTTP_URL_RULE, SecretKeyRef};

/// Notifications sent after a run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSpec {
    /// Which runs are reported: `always`, only on `failure`, or only on `success`.
    #[serde(default)]
    pub when: NotifyWhen,
    /// POST a JSON report (task, agent, status, summary, output, tokens, cost, times) to a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    /// Send an HTML report by email, through SMTP or an HTTP email API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailSpec>,
}

/// Which runs are reported.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyWhen {
    #[default]
    Always,
    Failure,
    Success,
}

/// A webhook receiving a JSON report per run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The URL the report is POSTed to.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// A Secret key whose value is sent as the `Authorization` header (e.g. `Bearer abc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_secret_ref: Option<SecretKeyRef>,
}

/// An email report, styled HTML with a status badge and the full output.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.smtp) && has(self.http))").message("set either smtp or http as the email transport, not both"))]
pub struct EmailSpec {
    /// Recipients.
    #[schemars(length(min = 1, max = 20), inner(length(min = 3, max = 254)))]
    pub to: Vec<String>,
    /// Sender address. Defaults to the server's notification defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub from: Option<String>,
    /// Prefix of the subject line, e.g. `[linkmcp]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub subject_prefix: Option<String>,
    /// Send through an SMTP server. Absent on a task: the server's default transport is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSpec>,
    /// Send through an HTTP email API (Resend-style JSON POST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<EmailApiSpec>,
}

/// An SMTP relay.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmtpSpec {
    /// SMTP host name.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// SMTP port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Transport security: `starttls` (upgrade after connect), `tls` (implicit TLS) or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Secret with `username` and `password` for SMTP AUTH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<CredentialsSecretRef>,
}

fn default_smtp_port() -> i32 {
    587
}

/// SMTP transport security.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// An HTTP email API taking `{from, to, subject, html}` as JSON with a bearer API key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmailApiSpec {
    /// Endpoint of the send call.
    #[serde(default = "default_email_api_url")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = kube::core::Rule::new(HTTP_URL_RULE).message(HTTP_URL_MESSAGE))]
    pub url: String,
    /// Secret key holding the API key, sent as `Authorization: Bearer <key>`.
    pub api_key_secret_ref: SecretKeyRef,
}

fn default_email_api_url() -> String {
    "https://api.resend.com/emails".into()
}
