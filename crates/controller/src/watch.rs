//! Watch streams that trigger reconciles of related objects, and the mappings behind them.
//!
//! Related objects matter to a reconcile through their spec (a link's `serverRef`, an Agent's
//! `enabled`) or their existence, not their status: [`spec_changes`] passes an object when it
//! appears, when its generation changes and when it is deleted, and drops status-only
//! updates, so the controller's own status writes never fan out into reconciles of every
//! sibling. Secrets are watched as metadata only ([`secrets`]): the controller reacts to a
//! referenced Secret changing, and reads the one it needs when it reconciles.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use kube::{Api, Client, Resource, ResourceExt};
use linkmcp_api::names::{MANAGED_BY_VALUE, label};
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde::de::DeserializeOwned;

use crate::server::credentials::referenced;
use crate::task::notification_secrets;

/// Objects of `K` in the whole cluster as they appear, change spec, or go, with a store of
/// all of them for mappers to look things up in.
pub fn spec_changes<K>(
    client: &Client,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let mut generations: HashMap<String, Option<i64>> = HashMap::new();
    let stream = watcher(Api::<K>::all(client.clone()))
        .reflect(writer)
        .filter_map(move |event| {
            let key = |o: &K| o.uid().unwrap_or_else(|| o.name_any());
            let out = match event {
                Ok(Event::Apply(object) | Event::InitApply(object)) => {
                    let generation = object.meta().generation;
                    (generations.insert(key(&object), generation) != Some(generation))
                        .then_some(Ok(object))
                }
                Ok(Event::Delete(object)) => {
                    generations.remove(&key(&object));
                    Some(Ok(object))
                }
                Ok(Event::Init | Event::InitDone) => None,
                Err(err) => Some(Err(err)),
            };
            std::future::ready(out)
        });
    (store, stream)
}

fn watcher<K>(api: Api<K>) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default().any_semantic()).default_backoff()
}

/// Every Secret of the cluster, as metadata, on every change. Secrets the controller itself
/// manages are left out: they are watched as owned objects.
pub fn secrets(
    client: &Client,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static {
    // An `Api` of `PartialObjectMeta` makes metadata-only requests: no Secret value is read.
    watcher::watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .touched_objects()
    .filter(|secret| {
        let ours = secret.as_ref().is_ok_and(|s| {
            s.labels().get(label::MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
        });
        std::future::ready(!ours)
    })
}

fn in_namespace<K: Resource>(object: &K, namespace: &str) -> bool {
    object.meta().namespace.as_deref() == Some(namespace)
}

/// The McpServer an object names, as a reconcile request.
pub fn server_of<K: Resource>(object: &K, server: &str) -> ObjectRef<McpServer> {
    let reference = ObjectRef::new(server);
    match &object.meta().namespace {
        Some(namespace) => reference.within(namespace),
        None => reference,
    }
}

/// The McpServers of `namespace` whose reconcile reads Secret `name`.
pub fn servers_reading_secret(
    namespace: &str,
    name: &str,
    servers: &Store<McpServer>,
    links: &Store<McpLink>,
    agents: &Store<Agent>,
    tasks: &Store<AiTask>,
) -> Vec<ObjectRef<McpServer>> {
    let links: Vec<McpLink> = links
        .state()
        .iter()
        .filter(|o| in_namespace(o.as_ref(), namespace))
        .map(|o| (**o).clone())
        .collect();
    let agents: Vec<Agent> = agents
        .state()
        .iter()
        .filter(|o| in_namespace(o.as_ref(), namespace))
        .map(|o| (**o).clone())
        .collect();
    let tasks: Vec<AiTask> = tasks
        .state()
        .iter()
        .filter(|o| in_namespace(o.as_ref(), namespace))
        .map(|o| (**o).clone())
        .collect();
    servers
        .state()
        .iter()
        .filter(|s| in_namespace(s.as_ref(), namespace))
        .filter(|server| {
            let mine = server.name_any();
            let served = |r: &str| r == mine;
            let links: Vec<McpLink> = links
                .iter()
                .filter(|l| served(&l.spec.server_ref.name))
                .cloned()
                .collect();
            let agents: Vec<Agent> = agents
                .iter()
                .filter(|a| served(&a.spec.server_ref.name))
                .cloned()
                .collect();
            let tasks: Vec<AiTask> = tasks
                .iter()
                .filter(|t| served(&t.spec.server_ref.name))
                .cloned()
                .collect();
            referenced(server, &links, &agents, &tasks).contains(name)
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// The objects of `store` in `namespace` for which `wants` holds, as reconcile requests.
pub fn matching<K>(
    store: &Store<K>,
    namespace: &str,
    wants: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store
        .state()
        .iter()
        .filter(|o| in_namespace(o.as_ref(), namespace) && wants(o))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The AiTasks whose notifications name Secret `name`.
pub fn tasks_reading_secret(
    store: &Store<AiTask>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<AiTask>> {
    matching(store, namespace, |t| notification_secrets(t).contains(name))
}
