//! McpServer: everything a server needs to run, reconciled in steps.
//!
//! 1. fetch what it references: its links, agents and tasks (by `spec.serverRef`) and the
//!    Secrets those name, and whether the optional APIs it asks for exist ([`apis`]);
//! 2. validate the spec ([`validate`], no client);
//! 3. evaluate its links ([`crate::link::evaluate`]) and assemble its credentials Secret
//!    ([`credentials`]), then render every object ([`build`], pure);
//! 4. apply ([`apply`]): server-side apply of what changed, deletion of what is no longer
//!    rendered;
//! 5. write the links' and the server's status when they changed ([`status`]).
//!
//! Namespaced objects are owned by the McpServer and garbage-collected with it. Cluster-wide
//! kubectl RBAC cannot be: while it exists the McpServer carries the [`FINALIZER`], which
//! removes it when the McpServer is deleted.

pub mod apis;
pub mod apply;
pub mod build;
pub mod credentials;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde::de::DeserializeOwned;
use serde_json::json;

use self::build::Input;
use crate::context::Context;
use crate::error::Error;
use crate::link::{self, evaluate::evaluate};
use crate::secrets::Secrets;

/// Finalizer of an McpServer whose kubectl access is cluster-wide.
pub const FINALIZER: &str = "linkmcp.io/cluster-rbac";
/// How often a steady McpServer is reconciled anyway, to repair what no watch reports.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon an McpServer waiting for an optional API is looked at again.
const API_RECHECK: Duration = Duration::from_secs(60);

/// Problems of a spec that the schema cannot refuse, in words a person can act on.
pub fn validate(server: &McpServer) -> Option<String> {
    let spec = &server.spec;
    if spec
        .availability
        .as_ref()
        .is_some_and(|a| a.autoscaling.is_some())
        && !spec.stateless
    {
        return Some(
            "availability.autoscaling needs stateless: true: MCP sessions live in one replica, \
             and an autoscaler adds and removes replicas"
                .to_owned(),
        );
    }
    None
}

async fn list_in<K>(ctx: &Context, namespace: &str, what: &str) -> Result<Vec<K>, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing {what} in {namespace}"), e))?
        .items)
}

/// Reconciles one McpServer.
#[tracing::instrument(skip(server, ctx), fields(server = %server.name_any(), namespace = server.namespace().unwrap_or_default()))]
pub async fn reconcile(server: Arc<McpServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = server.namespace().ok_or(Error::MissingMetadata {
        kind: "McpServer",
        field: "namespace",
    })?;
    let name = server.name_any();
    if server.metadata.deletion_timestamp.is_some() {
        return finalize(&ctx, &server, &namespace).await;
    }

    // 1. Fetch.
    let links: Vec<McpLink> = list_in::<McpLink>(&ctx, &namespace, "McpLinks")
        .await?
        .into_iter()
        .filter(|l| l.spec.server_ref.name == name)
        .collect();
    let agents: Vec<Agent> = list_in::<Agent>(&ctx, &namespace, "Agents")
        .await?
        .into_iter()
        .filter(|a| a.spec.server_ref.name == name)
        .collect();
    let tasks: Vec<AiTask> = list_in::<AiTask>(&ctx, &namespace, "AiTasks")
        .await?
        .into_iter()
        .filter(|t| t.spec.server_ref.name == name)
        .collect();
    let secrets = Secrets::fetch(
        &ctx.client,
        &namespace,
        credentials::referenced(&server, &links, &agents, &tasks),
    )
    .await?;
    let wanted = build::wanted_optional(&server);
    let present = ctx.apis.present(&ctx.client, &wanted).await?;

    // 2. Validate; 3. evaluate and render.
    let invalid = validate(&server);
    let evals = evaluate(&links, &secrets, server.spec.on_duplicate_tools);
    let assembled = credentials::assemble(&server, &evals, &agents, &tasks, &secrets);
    let rendered = build::render(&Input {
        server: &server,
        settings: &ctx.settings,
        credentials: &assembled.data,
        present: &present,
    })?;

    // 4. Apply (not when the spec is invalid: what runs keeps running).
    let mut refusal = None;
    let mut deployment: Option<Deployment> = None;
    if invalid.is_none() {
        let cluster_scoped = rendered.children.iter().any(|c| !c.kind.namespaced());
        if cluster_scoped {
            set_finalizer(&ctx, &server, &namespace, true).await?;
        }
        match apply::sync(&ctx, &name, &namespace, &rendered).await {
            Ok(synced) => {
                deployment = synced
                    .deployment
                    .map(|d| serde_json::to_value(d).and_then(serde_json::from_value))
                    .transpose()
                    .map_err(|source| Error::Encode {
                        what: format!("Deployment {namespace}/{name}"),
                        source,
                    })?;
                if !cluster_scoped {
                    set_finalizer(&ctx, &server, &namespace, false).await?;
                }
            }
            Err(err) => match err.refusal() {
                Some(message) => refusal = Some(message.to_owned()),
                None => return Err(err),
            },
        }
    }

    // 5. Status.
    for link in &links {
        let link_name = link.name_any();
        if let Some(eval) = evals.iter().find(|e| e.name == link_name) {
            link::write_status(&ctx, link, eval, true).await?;
        }
    }
    let invalid_message = invalid.or(refusal);
    let desired = status::compute(
        &server,
        &status::Observed {
            links: &evals,
            problems: &assembled.problems,
            invalid: invalid_message.as_deref(),
            missing_apis: &rendered.missing_apis,
            deployment: deployment.as_ref(),
        },
        &link::now(),
    );
    if status::changed(&server, &desired) {
        let before = server
            .status
            .as_ref()
            .map(|s| crate::conditions::owned(&s.conditions, &status::OWNED_CONDITIONS))
            .unwrap_or_default();
        crate::status::write(
            &ctx,
            server.as_ref(),
            &desired,
            &before,
            &desired.conditions,
        )
        .await?;
    }

    Ok(if invalid_message.is_some() {
        Action::await_change()
    } else if !rendered.missing_apis.is_empty() {
        Action::requeue(API_RECHECK)
    } else {
        Action::requeue(RESYNC)
    })
}

/// Adds or removes the [`FINALIZER`], when it is not already so. The patch carries the
/// object's resourceVersion, so it fails (and the reconcile retries) rather than overwrite
/// another writer's finalizers.
async fn set_finalizer(
    ctx: &Context,
    server: &McpServer,
    namespace: &str,
    present: bool,
) -> Result<(), Error> {
    let current = server.finalizers();
    if current.iter().any(|f| f == FINALIZER) == present {
        return Ok(());
    }
    let mut finalizers: Vec<String> = current
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let name = server.name_any();
    let patch = json!({
        "metadata": {
            "resourceVersion": server.resource_version(),
            "finalizers": finalizers,
        }
    });
    let api: Api<McpServer> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            Error::kube(
                format!("updating the finalizers of McpServer {namespace}/{name}"),
                e,
            )
        })?;
    ctx.metrics
        .wrote(McpServer::kind(&()).as_ref(), "finalizer");
    Ok(())
}

/// An McpServer being deleted: its namespaced objects go with it (owner references); the
/// cluster-wide kubectl RBAC is deleted here, then the finalizer is released.
async fn finalize(ctx: &Context, server: &McpServer, namespace: &str) -> Result<Action, Error> {
    if server.finalizers().iter().any(|f| f == FINALIZER) {
        apply::delete_cluster_objects(ctx, &server.name_any(), namespace).await?;
        set_finalizer(ctx, server, namespace, false).await?;
    }
    Ok(Action::await_change())
}
