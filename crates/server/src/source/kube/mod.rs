//! In-cluster source: the desired state watched from the API server.
//!
//! Five watches, all in the server's namespace: its McpServer and its credentials Secret by
//! name, and every McpLink, Agent and AiTask (kept when `spec.serverRef` names this server;
//! the API server cannot filter on a spec field). Each watch feeds a kube-runtime reflector
//! store. Once every kind has been listed completely the stores are turned into a
//! [`DesiredState`] by the pure [`state::desired_state`], then again after each burst of
//! changes ([`DEBOUNCE`]); a state is published only when it differs from the last one.
//!
//! A broken watch relists with kube-runtime's default backoff while the last state stays
//! served. A missing CRD or a Role that does not allow a watch is logged once, with what to
//! do, and retried with the same backoff: the server waits instead of crash-looping.
//!
//! # RBAC
//!
//! A watcher lists, then watches from the list's resourceVersion, so every kind needs `list`
//! and `watch`. For the two objects watched by name both requests carry the field selector
//! `metadata.name=<name>`; the kube-apiserver takes the request's name from an exact
//! `metadata.name` field selector on list and watch requests (the request-info resolver in
//! k8s.io/apiserver, `endpoints/request/requestinfo.go`), and the RBAC reference documents it:
//! a rule restricted by `resourceNames` authorizes a list or watch only when that selector
//! names the resource. So the Role can limit both to exactly one object, and this source needs
//! no other access (no `get`: a watcher never reads one object by URL):
//!
//! | apiGroups    | resources                       | verbs       | resourceNames          |
//! |--------------|---------------------------------|-------------|------------------------|
//! | `linkmcp.io` | `mcpservers`                    | list, watch | `<server>`             |
//! | `""`         | `secrets`                       | list, watch | `<server>-credentials` |
//! | `linkmcp.io` | `mcplinks`, `agents`, `aitasks` | list, watch | none (filtered here)   |

pub mod state;

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::kube::runtime::reflector::{self, Store};
use ::kube::runtime::{WatchStreamExt as _, watcher};
use ::kube::{Api, Client, Resource, ResourceExt as _};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Secret;
use linkmcp_api::names::credentials_secret_name;
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::state::{Objects, desired_state};
use super::{DesiredState, StateReceiver};

/// How long after the first change of a burst the state is rebuilt: a `kubectl apply` of a
/// folder becomes a few new states, not one per object. The wait is counted from the first
/// change (later ones do not push it back), and it is on the path from `kubectl apply` to
/// tools at /mcp, so it stays short; rebuilding the state and diffing the links is cheap.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// Why the cluster source cannot start or stopped before its first sync.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name that cannot be a Kubernetes object name (and would break a field selector).
    #[error("{what} {value:?} is not a valid Kubernetes name: {rule}")]
    InvalidName {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    /// The source stopped (shutdown) before every kind was listed once.
    #[error("the cluster source stopped before its first complete sync")]
    Stopped,
}

/// Whether the source has listed every watched kind once and published the resulting state.
/// It stays ready afterwards: during a watch outage the last state is still the best known.
#[derive(Debug, Clone)]
pub struct ReadySignal(watch::Receiver<bool>);

impl ReadySignal {
    /// Whether the first complete sync is done.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for the first complete sync; its state is on the [`StateReceiver`] by then.
    pub async fn wait(&self) -> Result<(), Error> {
        let mut ready = self.0.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| Error::Stopped)
    }
}

/// Starts watching McpServer `server` in `namespace` and returns the state channel and the
/// readiness signal. The state is empty until [`ReadySignal::wait`] returns. The watches stop
/// on `shutdown` or when every [`StateReceiver`] is dropped. Call it inside a Tokio runtime.
pub fn start(
    client: Client,
    namespace: &str,
    server: &str,
    shutdown: CancellationToken,
) -> Result<(StateReceiver, ReadySignal), Error> {
    check_name("namespace", namespace, 63, false)?;
    check_name("McpServer name", server, 253, true)?;

    let watches = Watches::new(client, namespace, server);
    let (state_tx, state_rx) = watch::channel(Arc::new(DesiredState::default()));
    let (ready_tx, ready_rx) = watch::channel(false);
    tokio::spawn(watches.run(state_tx, ready_tx, shutdown));
    Ok((state_rx, ReadySignal(ready_rx)))
}

/// Refuses names that are not DNS-1123 (a label for a namespace, a subdomain for an object):
/// whatever passes can go into a `metadata.name=` field selector as it is.
fn check_name(what: &'static str, value: &str, max: usize, dots: bool) -> Result<(), Error> {
    let rule = if dots {
        "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
    } else {
        "lowercase letters, digits and '-', starting and ending with a letter or digit"
    };
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !value.is_empty()
        && value.len() <= max
        && value.starts_with(alphanumeric)
        && value.ends_with(alphanumeric)
        && value
            .chars()
            .all(|c| alphanumeric(c) || c == '-' || (dots && c == '.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: value.to_owned(),
            rule,
        })
    }
}

/// The watched kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    McpServer,
    McpLink,
    Agent,
    AiTask,
    Secret,
}

impl Kind {
    const COUNT: usize = 5;

    /// The resource as RBAC and `kubectl` name it.
    fn resource(self) -> &'static str {
        match self {
            Kind::McpServer => "mcpservers.linkmcp.io",
            Kind::McpLink => "mcplinks.linkmcp.io",
            Kind::Agent => "agents.linkmcp.io",
            Kind::AiTask => "aitasks.linkmcp.io",
            Kind::Secret => "secrets",
        }
    }

    fn is_custom(self) -> bool {
        self != Kind::Secret
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a watch tells the publishing loop.
#[derive(Debug)]
enum Signal {
    /// An object was added, changed or deleted.
    Changed,
    /// A complete list of the kind is in its store (the first one, or after a relist).
    Listed(Kind),
}

/// The reflector stores: what the watches have seen.
struct Stores {
    servers: Store<McpServer>,
    links: Store<McpLink>,
    agents: Store<Agent>,
    tasks: Store<AiTask>,
    secrets: Store<Secret>,
}

impl Stores {
    fn objects(&self) -> Objects {
        Objects {
            servers: owned(&self.servers),
            links: owned(&self.links),
            agents: owned(&self.agents),
            tasks: owned(&self.tasks),
            secrets: owned(&self.secrets),
        }
    }
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect()
}

/// The five watches of one McpServer, not yet running.
struct Watches {
    namespace: String,
    server: String,
    stores: Stores,
    signals: BoxStream<'static, Signal>,
}

impl Watches {
    fn new(client: Client, namespace: &str, server: &str) -> Self {
        let by_name =
            |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
        let all = watcher::Config::default;
        let api = || client.clone();

        let (servers, servers_writer) = reflector::store();
        let (links, links_writer) = reflector::store();
        let (agents, agents_writer) = reflector::store();
        let (tasks, tasks_writer) = reflector::store();
        let (secrets, secrets_writer) = reflector::store();
        let signals = futures::stream::select_all([
            follow::<McpServer>(
                Api::namespaced(api(), namespace),
                by_name(server),
                servers_writer,
                Kind::McpServer,
                namespace,
            ),
            follow::<McpLink>(
                Api::namespaced(api(), namespace),
                all(),
                links_writer,
                Kind::McpLink,
                namespace,
            ),
            follow::<Agent>(
                Api::namespaced(api(), namespace),
                all(),
                agents_writer,
                Kind::Agent,
                namespace,
            ),
            follow::<AiTask>(
                Api::namespaced(api(), namespace),
                all(),
                tasks_writer,
                Kind::AiTask,
                namespace,
            ),
            follow::<Secret>(
                Api::namespaced(api(), namespace),
                by_name(&credentials_secret_name(server)),
                secrets_writer,
                Kind::Secret,
                namespace,
            ),
        ])
        .boxed();
        Self {
            namespace: namespace.to_owned(),
            server: server.to_owned(),
            stores: Stores {
                servers,
                links,
                agents,
                tasks,
                secrets,
            },
            signals,
        }
    }

    /// Drives the watches and publishes: the first state once every kind is listed, then a new
    /// one [`DEBOUNCE`] after a change, when it differs.
    async fn run(
        mut self,
        state_tx: watch::Sender<Arc<DesiredState>>,
        ready_tx: watch::Sender<bool>,
        shutdown: CancellationToken,
    ) {
        let mut listed: BTreeSet<Kind> = BTreeSet::new();
        let mut due: Option<Instant> = None;
        tracing::info!(
            namespace = %self.namespace,
            server = %self.server,
            "watching the McpServer, its links, agents, tasks and credentials"
        );
        loop {
            let deadline = due;
            let rebuild = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = state_tx.closed() => break,
                signal = self.signals.next() => {
                    let Some(signal) = signal else { break };
                    if let Signal::Listed(kind) = signal
                        && listed.insert(kind)
                    {
                        tracing::debug!(%kind, "first complete list");
                    }
                    if listed.len() == Kind::COUNT && due.is_none() {
                        due = Some(Instant::now() + DEBOUNCE);
                    }
                }
                () = rebuild => {
                    due = None;
                    self.publish(&state_tx, &ready_tx);
                }
            }
        }
        tracing::debug!("cluster source stopped");
    }

    fn publish(&self, state_tx: &watch::Sender<Arc<DesiredState>>, ready_tx: &watch::Sender<bool>) {
        let state = desired_state(&self.server, &self.namespace, self.stores.objects());
        let first = !*ready_tx.borrow();
        let was_found = state_tx.borrow().server.is_some();
        if state.server.is_none() && (first || was_found) {
            tracing::warn!(
                namespace = %self.namespace,
                server = %self.server,
                "McpServer not found: serving its links without the server's settings until it \
                 exists"
            );
        }
        let (links, agents, tasks) = (state.links.len(), state.agents.len(), state.tasks.len());
        let links_with_problems = state.links.iter().filter(|l| l.problem.is_some()).count();
        let changed = state_tx.send_if_modified(|current| {
            let changed = **current != state;
            if changed {
                *current = Arc::new(state);
            }
            changed
        });
        if first {
            tracing::info!(
                links,
                links_with_problems,
                agents,
                tasks,
                "synced with the Kubernetes API"
            );
            ready_tx.send_replace(true);
        } else if changed {
            tracing::info!(
                links,
                links_with_problems,
                agents,
                tasks,
                "desired state changed"
            );
        }
    }
}

/// One kind's watch: a reflector over a backed-off watcher, reduced to [`Signal`]s. Errors are
/// reported by [`Trouble`] and never end the stream: the watcher relists on its next poll.
fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    kind: Kind,
    namespace: &str,
) -> BoxStream<'static, Signal>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    let name = config
        .field_selector
        .as_deref()
        .and_then(|selector| selector.strip_prefix("metadata.name="))
        .map(str::to_owned);
    let mut trouble = Trouble::new(kind, namespace, name);
    watcher(api, config)
        .default_backoff()
        // Field ownership is noise here and churns with every write.
        .modify(|object: &mut K| object.managed_fields_mut().clear())
        .reflect(writer)
        .filter_map(move |event| {
            let signal = match event {
                Ok(watcher::Event::InitDone) => {
                    trouble.recovered();
                    Some(Signal::Listed(kind))
                }
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    trouble.recovered();
                    Some(Signal::Changed)
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(err) => {
                    trouble.report(&err);
                    None
                }
            };
            std::future::ready(signal)
        })
        .boxed()
}

/// What went wrong with a watch, for logging it once per outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TroubleClass {
    /// 404 on a linkmcp.io resource: its CRD is not installed.
    CrdMissing,
    /// 403: the Role does not grant list/watch.
    Forbidden,
    /// 410: the watch's resourceVersion is too old; the watcher relists, which is routine.
    Expired,
    /// Anything else (network, API server restarts, ...).
    Other,
}

/// Logs a watch's errors once per outage (the watcher retries every few seconds) and says so
/// when it recovers.
struct Trouble {
    kind: Kind,
    namespace: String,
    /// The one object watched, when watched by name.
    name: Option<String>,
    reported: Option<TroubleClass>,
}

impl Trouble {
    fn new(kind: Kind, namespace: &str, name: Option<String>) -> Self {
        Self {
            kind,
            namespace: namespace.to_owned(),
            name,
            reported: None,
        }
    }

    fn report(&mut self, err: &watcher::Error) {
        let class = classify(self.kind, err);
        if class == TroubleClass::Expired {
            tracing::debug!(kind = %self.kind, error = %err, "watch expired; relisting");
            return;
        }
        if self.reported == Some(class) {
            tracing::debug!(kind = %self.kind, error = %err, "watch still failing; retrying with backoff");
            return;
        }
        self.reported = Some(class);
        let resource = self.kind.resource();
        match class {
            TroubleClass::CrdMissing => tracing::error!(
                kind = %self.kind,
                "the {resource} CRD is not installed in the cluster: install the linkmcp CRDs \
                 (`kubectl apply -f config/crd`, generated by `make crds`, or the Helm chart); \
                 retrying with backoff"
            ),
            TroubleClass::Forbidden => {
                let names = self
                    .name
                    .as_ref()
                    .map(|name| format!(" with resourceNames [{name}]"))
                    .unwrap_or_default();
                tracing::error!(
                    kind = %self.kind,
                    namespace = %self.namespace,
                    error = %err,
                    "the server's ServiceAccount may not list and watch {resource} in namespace \
                     {}: its Role must grant list and watch on {resource}{names}; retrying \
                     with backoff",
                    self.namespace
                );
            }
            TroubleClass::Expired | TroubleClass::Other => tracing::warn!(
                kind = %self.kind,
                error = %err,
                "watch failed; relisting with backoff (a state already published stays served)"
            ),
        }
    }

    fn recovered(&mut self) {
        if let Some(class) = self.reported.take() {
            tracing::info!(kind = %self.kind, after = ?class, "watch recovered");
        }
    }
}

fn classify(kind: Kind, err: &watcher::Error) -> TroubleClass {
    let status = match err {
        watcher::Error::InitialListFailed(err)
        | watcher::Error::WatchStartFailed(err)
        | watcher::Error::WatchFailed(err) => match err {
            ::kube::Error::Api(status) => Some(&**status),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some(&**status),
        watcher::Error::NoResourceVersion => None,
    };
    match status.map(|s| s.code) {
        Some(404) if kind.is_custom() => TroubleClass::CrdMissing,
        Some(403) => TroubleClass::Forbidden,
        Some(410) => TroubleClass::Expired,
        _ => TroubleClass::Other,
    }
}
