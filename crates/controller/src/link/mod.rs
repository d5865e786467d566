//! McpLink: credentials resolved, tools computed, status written.
//!
//! A link is evaluated together with the other links of its server ([`evaluate`]): tool
//! prefixes and duplicate names depend on all of them, and one pass over a server's links
//! reads each referenced Secret once. So the McpServer reconciler, which needs that pass
//! anyway for the credentials Secret and its tool count, writes the status of the links of an
//! existing server ([`write_status`]). This module's own controller covers what that cannot:
//! a link whose McpServer does not exist, which waits and says so.

pub mod evaluate;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use linkmcp_api::names::{condition, reason};
use linkmcp_api::server::OnDuplicateTools;
use linkmcp_api::{McpLink, McpLinkStatus, McpServer};

use self::evaluate::{CredentialsEval, LinkEval, evaluate, resolved_message};
use crate::conditions::{Cond, finalize, owned};
use crate::context::Context;
use crate::error::Error;
use crate::secrets::Secrets;
use crate::status::{same_conditions, write};

/// The condition types the controller owns on an McpLink.
pub const OWNED_CONDITIONS: [&str; 2] = [condition::READY, condition::CREDENTIALS_RESOLVED];

/// How often a link waiting for its server is looked at again, besides the watches.
const WAITING_RECHECK: Duration = Duration::from_secs(300);

/// The status of `link` from its evaluation; `server_found` says whether its McpServer exists.
pub fn status(link: &McpLink, eval: &LinkEval, server_found: bool, now: &Time) -> McpLinkStatus {
    let server = &link.spec.server_ref.name;
    let namespace = link.namespace().unwrap_or_default();
    let credentials = match &eval.credentials {
        CredentialsEval::None => Cond::yes(
            condition::CREDENTIALS_RESOLVED,
            reason::NO_CREDENTIALS,
            "the link names no credentials Secret",
        ),
        CredentialsEval::Resolved { secret, values } => {
            let names: Vec<&str> = values.keys().map(String::as_str).collect();
            let message = if server_found {
                resolved_message(link, server, secret, &names)
            } else {
                format!(
                    "credentials {} found in Secret {secret}; they are copied once McpServer \
                     {server} exists",
                    names.join(", ")
                )
            };
            Cond::yes(
                condition::CREDENTIALS_RESOLVED,
                reason::CREDENTIALS_COPIED,
                message,
            )
        }
        CredentialsEval::Problem(problem) => Cond::no(
            condition::CREDENTIALS_RESOLVED,
            problem.reason,
            problem.message.clone(),
        ),
    };
    let served = eval.tools.as_ref().ok().filter(|_| server_found);
    let ready = match (&eval.tools, server_found) {
        (_, false) => Cond::no(
            condition::READY,
            reason::SERVER_NOT_FOUND,
            format!(
                "McpServer {server} not found in namespace {namespace}: the link waits for it \
                 (check spec.serverRef.name)"
            ),
        ),
        (Err(not_served), true) => Cond::no(
            condition::READY,
            not_served.reason,
            not_served.message.clone(),
        ),
        (Ok(tools), true) => Cond::yes(
            condition::READY,
            reason::RECONCILED,
            format!(
                "{} tools on McpServer {server}{}",
                tools.names.len(),
                if tools.write {
                    ", write tools included"
                } else {
                    ""
                }
            ),
        ),
    };
    let previous = link
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let tools = served.map(|t| t.names.clone()).unwrap_or_default();
    McpLinkStatus {
        observed_generation: link.metadata.generation,
        conditions: finalize(
            &[ready, credentials],
            previous,
            link.metadata.generation,
            now,
        ),
        r#type: eval.link_type.map(|t| t.to_string()),
        tool_count: i32::try_from(tools.len()).unwrap_or(i32::MAX),
        tools,
        write: served.is_some_and(|t| t.write),
    }
}

/// Whether `desired` differs from what `link` shows for the fields the controller owns.
pub fn changed(link: &McpLink, desired: &McpLinkStatus) -> bool {
    let Some(current) = &link.status else {
        return true;
    };
    current.observed_generation != desired.observed_generation
        || current.r#type != desired.r#type
        || current.tools != desired.tools
        || current.tool_count != desired.tool_count
        || current.write != desired.write
        || !same_conditions(
            &owned(&current.conditions, &OWNED_CONDITIONS),
            &desired.conditions,
        )
}

/// Writes the status of `link` when it changed.
pub async fn write_status(
    ctx: &Context,
    link: &McpLink,
    eval: &LinkEval,
    server_found: bool,
) -> Result<(), Error> {
    let desired = status(link, eval, server_found, &now());
    if !changed(link, &desired) {
        return Ok(());
    }
    let before = link
        .status
        .as_ref()
        .map(|s| owned(&s.conditions, &OWNED_CONDITIONS))
        .unwrap_or_default();
    write(ctx, link, &desired, &before, &desired.conditions).await
}

/// The current time, as conditions record it.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Reconciles one McpLink: when its McpServer exists the server's reconciler owns its status;
/// otherwise the link is evaluated alone and says that it waits.
#[tracing::instrument(skip(link, ctx), fields(link = %link.name_any(), namespace = link.namespace().unwrap_or_default()))]
pub async fn reconcile(link: Arc<McpLink>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = link.namespace().ok_or(Error::MissingMetadata {
        kind: "McpLink",
        field: "namespace",
    })?;
    let server = &link.spec.server_ref.name;
    let servers: Api<McpServer> = Api::namespaced(ctx.client.clone(), &namespace);
    let found = servers
        .get_opt(server)
        .await
        .map_err(|e| Error::kube(format!("reading McpServer {namespace}/{server}"), e))?;
    if found.is_some() {
        return Ok(Action::await_change());
    }

    let links: Api<McpLink> = Api::namespaced(ctx.client.clone(), &namespace);
    let siblings: Vec<McpLink> = links
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing McpLinks in {namespace}"), e))?
        .items
        .into_iter()
        .filter(|l| l.spec.server_ref.name == *server)
        .collect();
    let names: BTreeSet<String> = link
        .spec
        .credentials_secret()
        .map(|r| r.name)
        .into_iter()
        .collect();
    let secrets = Secrets::fetch(&ctx.client, &namespace, names).await?;
    let evals = evaluate(&siblings, &secrets, OnDuplicateTools::Warn);
    let name = link.name_any();
    if let Some(eval) = evals.iter().find(|e| e.name == name) {
        write_status(&ctx, &link, eval, false).await?;
    }
    Ok(Action::requeue(WAITING_RECHECK))
}
