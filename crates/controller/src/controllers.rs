//! The four controllers, wired to their watches and run together until told to stop.
//!
//! | controller | reconciles on |
//! |------------|---------------|
//! | McpServer  | itself; its children (`owns`, by the controller's label); links, agents and tasks naming it (spec changes); Secrets any of those reference (metadata) |
//! | McpLink    | itself; its McpServer appearing or going |
//! | Agent      | itself; its McpServer appearing or going; its API key Secret |
//! | AiTask     | itself; its McpServer; Agents and AiTasks of its server (spec changes); its notification Secrets |
//!
//! Errors are retried by class ([`error_policy`]); every reconcile is timed and counted.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::ListParams;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use linkmcp_api::names::{MANAGED_BY_VALUE, label};
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::error::{Error, ErrorClass, is_not_found};
use crate::watch::{
    matching, secrets, server_of, servers_reading_secret, spec_changes, tasks_reading_secret,
};
use crate::{agent, link, server, task};

/// Retries a failed reconcile by the error's class: an invalid request waits for the object
/// to change, anything else backs off per object (5 s doubling to 5 minutes).
pub fn error_policy<K>(object: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    let key = format!(
        "{kind}/{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    );
    ctx.metrics.failed(&kind, err.metric_label());
    match err.class() {
        ErrorClass::Invalid => {
            tracing::warn!(object = %key, error = %err, "reconcile failed; waiting for the object to change");
            Action::await_change()
        }
        ErrorClass::Transient => {
            let wait = ctx.retry_after(&key);
            tracing::warn!(object = %key, error = %err, retry_in = ?wait, "reconcile failed; retrying");
            Action::requeue(wait)
        }
    }
}

/// Runs `reconcile` on `object`, timing and counting it, and resetting the object's backoff
/// when it succeeds.
async fn measured<K, F>(object: Arc<K>, ctx: Arc<Context>, reconcile: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: Future<Output = Result<Action, Error>>,
{
    let kind = K::kind(&());
    let key = format!(
        "{kind}/{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    );
    let started = Instant::now();
    let result = reconcile.await;
    ctx.metrics.reconciled(&kind, started.elapsed());
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

fn config() -> Config {
    // A burst of changes (a `kubectl apply -f` of a folder, whose objects arrive a few ms
    // apart) becomes one reconcile. Kept short: a new link's credentials reach the running
    // server only after this wait (e2e_link_to_tools_latency_over_20_links measures the path).
    Config::default()
        .debounce(Duration::from_millis(50))
        .concurrency(8)
}

/// Logs what a controller stream reports: reconcile failures are logged by [`error_policy`],
/// watch failures here.
async fn drain<K, S, E>(kind: &'static str, stream: S)
where
    K: Resource,
    S: futures::Stream<Item = Result<(kube::runtime::reflector::ObjectRef<K>, Action), E>>,
    E: std::fmt::Display,
{
    stream
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%kind, object = %object.name, "reconciled"),
                Err(err) => tracing::debug!(%kind, error = %err, "controller event"),
            }
        })
        .await;
}

/// Runs the four controllers until `stop` is cancelled; returns once they have finished the
/// reconciles in flight.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default()
        .labels(&format!("{}={MANAGED_BY_VALUE}", label::MANAGED_BY))
        .any_semantic();
    let main = || watcher::Config::default().any_semantic();
    let stopped = || {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };

    // McpServer.
    let (links, link_changes) = spec_changes::<McpLink>(&client);
    let (agents, agent_changes) = spec_changes::<Agent>(&client);
    let (tasks, task_changes) = spec_changes::<AiTask>(&client);
    let servers_controller =
        Controller::new(Api::<McpServer>::all(client.clone()), main()).with_config(config());
    let servers = servers_controller.store();
    let servers_controller = servers_controller
        .owns(Api::<ServiceAccount>::all(client.clone()), owned.clone())
        .owns(Api::<Role>::all(client.clone()), owned.clone())
        .owns(Api::<RoleBinding>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned.clone())
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned.clone())
        .watches_stream(link_changes, |l: McpLink| {
            Some(server_of(&l, &l.spec.server_ref.name))
        })
        .watches_stream(agent_changes, |a: Agent| {
            Some(server_of(&a, &a.spec.server_ref.name))
        })
        .watches_stream(task_changes, |t: AiTask| {
            Some(server_of(&t, &t.spec.server_ref.name))
        })
        .watches_stream(secrets(&client), {
            let (servers, links, agents, tasks) = (servers.clone(), links, agents, tasks);
            move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                servers_reading_secret(
                    &namespace,
                    &secret.name_any(),
                    &servers,
                    &links,
                    &agents,
                    &tasks,
                )
            }
        })
        .graceful_shutdown_on(stopped())
        .run(
            |o, c| measured(o.clone(), c.clone(), server::reconcile(o, c)),
            error_policy,
            ctx.clone(),
        );

    // McpLink: links whose server is missing (the McpServer reconciler writes the others).
    let links_controller =
        Controller::new(Api::<McpLink>::all(client.clone()), main()).with_config(config());
    let link_store = links_controller.store();
    let (_, server_changes) = spec_changes::<McpServer>(&client);
    let links_controller = links_controller
        .watches_stream(server_changes, move |s: McpServer| {
            let name = s.name_any();
            matching(&link_store, &s.namespace().unwrap_or_default(), |l| {
                l.spec.server_ref.name == name
            })
        })
        .graceful_shutdown_on(stopped())
        .run(
            |o, c| measured(o.clone(), c.clone(), link::reconcile(o, c)),
            error_policy,
            ctx.clone(),
        );

    // Agent.
    let agents_controller =
        Controller::new(Api::<Agent>::all(client.clone()), main()).with_config(config());
    let agent_store = agents_controller.store();
    let (_, server_changes) = spec_changes::<McpServer>(&client);
    let agents_controller = agents_controller
        .watches_stream(server_changes, {
            let store = agent_store.clone();
            move |s: McpServer| {
                let name = s.name_any();
                matching(&store, &s.namespace().unwrap_or_default(), |a| {
                    a.spec.server_ref.name == name
                })
            }
        })
        .watches_stream(secrets(&client), move |secret| {
            let name = secret.name_any();
            matching(&agent_store, &secret.namespace().unwrap_or_default(), |a| {
                a.spec
                    .api_key_secret_ref
                    .as_ref()
                    .is_some_and(|r| r.name == name)
            })
        })
        .graceful_shutdown_on(stopped())
        .run(
            |o, c| measured(o.clone(), c.clone(), agent::reconcile(o, c)),
            error_policy,
            ctx.clone(),
        );

    // AiTask.
    let tasks_controller =
        Controller::new(Api::<AiTask>::all(client.clone()), main()).with_config(config());
    let task_store = tasks_controller.store();
    let (_, server_changes) = spec_changes::<McpServer>(&client);
    let (_, agent_changes) = spec_changes::<Agent>(&client);
    let (_, task_changes) = spec_changes::<AiTask>(&client);
    let of_server = |store: kube::runtime::reflector::Store<AiTask>| {
        move |namespace: String, server: String| {
            matching(&store, &namespace, |t| t.spec.server_ref.name == server)
        }
    };
    let tasks_controller = tasks_controller
        .watches_stream(server_changes, {
            let find = of_server(task_store.clone());
            move |s: McpServer| find(s.namespace().unwrap_or_default(), s.name_any())
        })
        .watches_stream(agent_changes, {
            let find = of_server(task_store.clone());
            move |a: Agent| {
                find(
                    a.namespace().unwrap_or_default(),
                    a.spec.server_ref.name.clone(),
                )
            }
        })
        // A task appearing, changing its `next` or going can resolve or break the chains of
        // every task of its server.
        .watches_stream(task_changes, {
            let find = of_server(task_store.clone());
            move |t: AiTask| {
                find(
                    t.namespace().unwrap_or_default(),
                    t.spec.server_ref.name.clone(),
                )
            }
        })
        .watches_stream(secrets(&client), move |secret| {
            tasks_reading_secret(
                &task_store,
                &secret.namespace().unwrap_or_default(),
                &secret.name_any(),
            )
        })
        .graceful_shutdown_on(stopped())
        .run(
            |o, c| measured(o.clone(), c.clone(), task::reconcile(o, c)),
            error_policy,
            ctx.clone(),
        );

    tracing::info!("controllers started");
    futures::join!(
        drain("McpServer", servers_controller),
        drain("McpLink", links_controller),
        drain("Agent", agents_controller),
        drain("AiTask", tasks_controller),
    );
    tracing::info!("controllers stopped");
}

/// The CRDs (as `<plural>.linkmcp.io`) the API server does not serve.
pub async fn missing_crds(client: &kube::Client) -> Result<Vec<String>, kube::Error> {
    async fn probe<K>(client: &kube::Client) -> Result<Option<String>, kube::Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    {
        match Api::<K>::all(client.clone())
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            Ok(_) => Ok(None),
            Err(err) if is_not_found(&err) => {
                Ok(Some(format!("{}.{}", K::plural(&()), K::group(&()))))
            }
            Err(err) => Err(err),
        }
    }
    Ok([
        probe::<McpServer>(client).await?,
        probe::<McpLink>(client).await?,
        probe::<Agent>(client).await?,
        probe::<AiTask>(client).await?,
    ]
    .into_iter()
    .flatten()
    .collect())
}

/// Waits until the linkmcp CRDs are installed, saying once what to do. Returns false when
/// `stop` came first.
pub async fn wait_for_crds(client: &kube::Client, stop: &CancellationToken) -> bool {
    let mut told = false;
    loop {
        match missing_crds(client).await {
            Ok(missing) if missing.is_empty() => {
                if told {
                    tracing::info!("the linkmcp CRDs are installed; starting");
                }
                return true;
            }
            Ok(missing) if !told => {
                told = true;
                tracing::error!(
                    missing = %missing.join(", "),
                    "the linkmcp CRDs are not installed: install them with \
                     `linkmcp-controller crds | kubectl apply --server-side -f -` (or \
                     `kubectl apply -f config/crd`, or the Helm chart); waiting for them"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot check the linkmcp CRDs; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}
