//! The content of an McpServer's credentials Secret (`<server>-credentials`).
//!
//! The whole Secret is assembled on every reconcile from what the server's objects reference,
//! under the keys of [`credentials_key`]: each resolved link's credentials, each Agent's
//! provider API key, the client API keys, and the notification credentials of the server and
//! its tasks. Nothing else: a deleted link, or a link whose Secret lost a key, has no entry,
//! and applying the Secret removes what is gone.
//!
//! Notification keys: `notify.webhook.authorization`, `notify.smtp.<credential>` and
//! `notify.email.apiKey` for the McpServer's defaults; the same under
//! `notify.task.<task>.` for an AiTask's own `notify`.

use std::collections::{BTreeMap, BTreeSet};

use linkmcp_api::names::credentials_key;
use linkmcp_api::notify::NotificationSpec;
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};

use crate::link::evaluate::{CredentialsEval, LinkEval};
use crate::secrets::{Problem, Secrets};

/// The assembled Secret content and the problems of the McpServer's own references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    /// Key -> value.
    pub data: BTreeMap<String, String>,
    /// Unresolved references of the McpServer itself (API keys, notification defaults), each
    /// with the field that names it.
    pub problems: Vec<(String, Problem)>,
}

/// The Secrets of `namespace` the server's objects reference.
pub fn referenced(
    server: &McpServer,
    links: &[McpLink],
    agents: &[Agent],
    tasks: &[AiTask],
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    names.extend(
        links
            .iter()
            .filter_map(|l| l.spec.credentials_secret())
            .map(|r| r.name),
    );
    names.extend(
        agents
            .iter()
            .filter_map(|a| a.spec.api_key_secret_ref.as_ref())
            .map(|r| r.name.clone()),
    );
    if let Some(keys) = server.spec.auth.as_ref().and_then(|a| a.api_keys.as_ref()) {
        names.insert(keys.secret_name.clone());
    }
    let notifications = server
        .spec
        .notifications
        .iter()
        .chain(tasks.iter().filter_map(|t| t.spec.notify.as_ref()));
    for notify in notifications {
        names.extend(notification_secrets(notify));
    }
    names
}

fn notification_secrets(notify: &NotificationSpec) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(webhook) = &notify.webhook
        && let Some(auth) = &webhook.authorization_secret_ref
    {
        names.push(auth.name.clone());
    }
    if let Some(email) = &notify.email {
        if let Some(smtp) = email
            .smtp
            .as_ref()
            .and_then(|s| s.credentials_secret_ref.as_ref())
        {
            names.push(smtp.name.clone());
        }
        if let Some(http) = &email.http {
            names.push(http.api_key_secret_ref.name.clone());
        }
    }
    names
}

/// Assembles the credentials Secret of `server`.
pub fn assemble(
    server: &McpServer,
    links: &[LinkEval],
    agents: &[Agent],
    tasks: &[AiTask],
    secrets: &Secrets,
) -> Assembled {
    let mut out = Assembled::default();
    for link in links {
        if let CredentialsEval::Resolved { values, .. } = &link.credentials {
            for (credential, value) in values {
                out.data
                    .insert(credentials_key::link(&link.name, credential), value.clone());
            }
        }
    }
    for agent in agents {
        let (Some(name), Some(reference)) = (
            agent.metadata.name.as_deref(),
            agent.spec.api_key_secret_ref.as_ref(),
        ) else {
            continue;
        };
        // An unresolved key is the Agent's own condition to report.
        if let Ok(value) = secrets.key(reference) {
            out.data.insert(credentials_key::agent_api_key(name), value);
        }
    }
    if let Some(keys) = server.spec.auth.as_ref().and_then(|a| a.api_keys.as_ref()) {
        match secrets.data(&keys.secret_name) {
            Ok(data) => {
                for (id, key) in data {
                    out.data.insert(credentials_key::api_key(id), key.clone());
                }
            }
            Err(problem) => out
                .problems
                .push(("spec.auth.apiKeys.secretName".to_owned(), problem)),
        }
    }
    if let Some(notify) = &server.spec.notifications {
        let problems = notifications(&mut out.data, notify, secrets);
        out.problems.extend(
            problems
                .into_iter()
                .map(|(field, p)| (format!("spec.notifications.{field}"), p)),
        );
    }
    for task in tasks {
        if let Some(notify) = &task.spec.notify {
            // Unresolved task references are the AiTask's own condition to report.
            notifications(&mut out.data, notify, secrets);
        }
    }
    out
}

/// Copies the Secret keys `notify` names under `ref.<secret>.<key>` (the server looks them up
/// by the same pair); returns what did not resolve.
fn notifications(
    data: &mut BTreeMap<String, String>,
    notify: &NotificationSpec,
    secrets: &Secrets,
) -> Vec<(String, Problem)> {
    let mut problems = Vec::new();
    if let Some(reference) = notify
        .webhook
        .as_ref()
        .and_then(|w| w.authorization_secret_ref.as_ref())
    {
        match secrets.key(reference) {
            Ok(value) => {
                data.insert(
                    credentials_key::secret_ref(&reference.name, &reference.key),
                    value,
                );
            }
            Err(p) => problems.push(("webhook.authorizationSecretRef".to_owned(), p)),
        }
    }
    if let Some(email) = &notify.email {
        if let Some(reference) = email
            .smtp
            .as_ref()
            .and_then(|s| s.credentials_secret_ref.as_ref())
        {
            match secrets.resolve(reference) {
                Ok(values) => {
                    for credential in ["username", "password"] {
                        if let Some(value) = values.get(credential) {
                            let key = reference.key_for(credential);
                            data.insert(
                                credentials_key::secret_ref(&reference.name, key),
                                value.clone(),
                            );
                        }
                    }
                }
                Err(p) => problems.push(("email.smtp.credentialsSecretRef".to_owned(), p)),
            }
        }
        if let Some(http) = &email.http {
            match secrets.key(&http.api_key_secret_ref) {
                Ok(value) => {
                    data.insert(
                        credentials_key::secret_ref(
                            &http.api_key_secret_ref.name,
                            &http.api_key_secret_ref.key,
                        ),
                        value,
                    );
                }
                Err(p) => problems.push(("email.http.apiKeySecretRef".to_owned(), p)),
            }
        }
    }
    problems
}
