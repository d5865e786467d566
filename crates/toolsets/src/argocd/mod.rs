//! The `argocd` link type: Argo CD applications as six read tools
//! (argocd_list_applications, argocd_get_application, argocd_get_app_resources,
//! argocd_list_projects, argocd_get_app_events, argocd_get_app_history) and, with writeAccess,
//! argocd_sync_application and argocd_rollback.
//!
//! `projects` in the link confines every tool: applications of other projects are neither
//! listed nor read nor synced. Syncs and rollbacks prune nothing unless asked and can be dry
//! runs. The credential is an Argo CD account `token` (bearer); TLS and errors are the shared
//! HTTP client's ([`crate::http`]).

pub mod params;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::ArgocdBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::http::{HttpClient, HttpSettings};
use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, NoArgs, ToolDef, ToolDefError, Toolset, output, with_args};

/// History entries and events a call shows at most.
pub const MAX_HISTORY: usize = 20;

/// The toolset of one Argo CD link.
pub struct ArgocdToolset {
    defs: Vec<ToolDef>,
    http: HttpClient,
    /// The projects the link may see; empty: all the token can read.
    projects: Vec<String>,
    max_rows: usize,
}

/// The toolset of an `argocd` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &ArgocdBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let http = HttpClient::new(
        link,
        HttpSettings {
            service: "Argo CD",
            url_field: "argocd.url",
            url: &block.url,
            tls: block.tls.as_ref(),
            permission_hint: "the account needs `get` on applications and projects in Argo CD's \
                              RBAC (policy.csv), and `sync` for syncs and rollbacks",
            headers: Vec::new(),
        },
    )?;
    let defs = tool_defs(http.base().as_str(), &block.projects)
        .map_err(|e| BuildError::Invalid(format!("argocd tools: {e}")))?;
    Ok(Arc::new(ArgocdToolset {
        defs,
        http,
        projects: block.projects.clone(),
        max_rows: link.max_rows(),
    }))
}

/// The link as a component of the stack topology.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.argocd {
        if let Ok(url) = crate::http::BaseUrl::parse("argocd.url", &block.url) {
            endpoint.insert("url".to_owned(), url.to_string());
            endpoint.insert("host".to_owned(), url.host().to_owned());
            endpoint.insert("port".to_owned(), url.port().to_string());
        }
        if !block.projects.is_empty() {
            endpoint.insert("projects".to_owned(), block.projects.join(","));
        }
    }
    Component::of_link(link, "argocd", "gitops", endpoint)
}

fn tool_defs(url: &str, projects: &[String]) -> Result<Vec<ToolDef>, ToolDefError> {
    let scope = if projects.is_empty() {
        String::new()
    } else {
        format!(" (projects {} only)", projects.join(", "))
    };
    Ok(vec![
        ToolDef::read::<params::ListApplications>(
            "argocd_list_applications",
            format!(
                "List the applications of Argo CD at {url}{scope} with their sync status \
                 (Synced, OutOfSync), health (Healthy, Degraded, Progressing, Missing), \
                 revision, source and destination, problems first."
            ),
        )?,
        ToolDef::read::<params::App>(
            "argocd_get_application",
            "One application: project, source (repo, path, target revision), destination, \
             sync and health status, conditions (errors and warnings), the last operation and \
             its result, and counts of resources out of sync or unhealthy.",
        )?,
        ToolDef::read::<params::AppResources>(
            "argocd_get_app_resources",
            "The resources an application manages, each with its kind, namespace, name, sync \
             status (drift: OutOfSync means the cluster differs from git) and health with its \
             message. `problems_only` keeps the drifted and unhealthy ones.",
        )?,
        ToolDef::read::<NoArgs>(
            "argocd_list_projects",
            format!(
                "List the Argo CD projects{scope}: description, source repositories and destinations allowed."
            ),
        )?,
        ToolDef::read::<params::App>(
            "argocd_get_app_events",
            format!(
                "The Kubernetes events of an application and its resources, newest first: \
                 type, reason, message, object, count and when (at most {MAX_HISTORY})."
            ),
        )?,
        ToolDef::read::<params::App>(
            "argocd_get_app_history",
            format!(
                "An application's recent deploys, newest first: history id, revision, when it \
                 was deployed, who started it and the source (at most {MAX_HISTORY}). The id is \
                 what argocd_rollback takes."
            ),
        )?,
        ToolDef::write::<params::Sync>(
            "argocd_sync_application",
            "Sync an application to git (or to `revision`): Argo CD applies the manifests. \
             `dry_run: true` only reports what would change; `prune` (off unless set) also \
             deletes resources no longer in git. Returns the operation Argo CD started.",
        )?
        .destructive(true),
        ToolDef::write::<params::Rollback>(
            "argocd_rollback",
            "Roll an application back to a previous deploy by history id (from \
             argocd_get_app_history). `dry_run: true` only reports; `prune` (off unless set) \
             deletes resources not in that revision. Auto-sync must be off for the app.",
        )?,
    ])
}

impl Toolset for ArgocdToolset {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            match name {
                "argocd_list_applications" => {
                    with_args(args, |p| self.list_applications(p, ctx)).await
                }
                "argocd_get_application" => with_args(args, |p| self.get_application(p, ctx)).await,
                "argocd_get_app_resources" => with_args(args, |p| self.app_resources(p, ctx)).await,
                "argocd_list_projects" => {
                    with_args(args, |_: NoArgs| self.list_projects(ctx)).await
                }
                "argocd_get_app_events" => with_args(args, |p| self.app_events(p, ctx)).await,
                "argocd_get_app_history" => with_args(args, |p| self.app_history(p, ctx)).await,
                "argocd_sync_application" => with_args(args, |p| self.sync(p, ctx)).await,
                "argocd_rollback" => with_args(args, |p| self.rollback(p, ctx)).await,
                other => output::error(format!("tool `{other}` is not an argocd tool")),
            }
        })
    }
}
