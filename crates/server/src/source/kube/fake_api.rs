//! A fake Kubernetes API in process, for the cluster source's tests.
//!
//! It answers what kube-runtime watchers ask — list, then watch from the list's
//! resourceVersion — for namespaced collections, honours `metadata.name` field selectors,
//! replays the changes a watch asks for by resourceVersion, and answers 404 for a collection
//! marked missing (a CRD not installed). Like a real API server it can end every open watch
//! ([`FakeApi::cut_watches`]) and forget the history older watches would resume from
//! ([`FakeApi::compact`]: 410 Gone). Requests arrive through tower-test's mock service
//! (`kube::Client::new`), so no socket or kubeconfig is involved, and every request is recorded
//! for assertions.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use ::kube::{Client, Resource};
use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{Request, Response, StatusCode};
use futures::StreamExt as _;
use futures::channel::mpsc;
use serde::Serialize;
use serde_json::{Value, json};

/// The fake API server; clones share one state.
#[derive(Clone, Default)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    revision: u64,
    /// (collection path, name) -> object.
    objects: BTreeMap<(String, String), Value>,
    /// Every change, for watches that start from an older resourceVersion.
    log: Vec<Change>,
    watches: Vec<Watch>,
    missing: BTreeSet<String>,
    requests: Vec<String>,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
}

struct Change {
    revision: u64,
    path: String,
    name: String,
    event: Value,
}

struct Watch {
    path: String,
    name: Option<String>,
    events: mpsc::UnboundedSender<Bytes>,
}

impl Watch {
    fn wants(&self, path: &str, name: &str) -> bool {
        self.path == path && self.name.as_deref().is_none_or(|n| n == name)
    }
}

/// The collection URL path of `K` in `namespace`, as kube's `Api` requests it.
fn collection<K: Resource<DynamicType = ()>>(namespace: &str) -> String {
    K::url_path(&(), Some(namespace))
}

impl FakeApi {
    /// A fake API server and a client talking to it.
    pub fn start() -> (Self, Client) {
        let (service, mut handle) =
            tower_test::mock::pair::<Request<::kube::client::Body>, Response<Body>>();
        let api = Self::default();
        let serving = api.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                respond.send_response(serving.respond(&request));
            }
        });
        (api, Client::new(service, "default"))
    }

    /// Creates or replaces an object (ADDED or MODIFIED to the watches that want it).
    pub fn apply<K: Resource<DynamicType = ()> + Serialize>(&self, object: &K) {
        let namespace = object.meta().namespace.clone().unwrap();
        let name = object.meta().name.clone().unwrap();
        let path = collection::<K>(&namespace);
        let mut value = serde_json::to_value(object).unwrap();
        let mut inner = self.inner.lock().unwrap();
        inner.revision += 1;
        value["metadata"]["resourceVersion"] = json!(inner.revision.to_string());
        let kind = if inner
            .objects
            .insert((path.clone(), name.clone()), value.clone())
            .is_some()
        {
            "MODIFIED"
        } else {
            "ADDED"
        };
        inner.record(path, name, json!({"type": kind, "object": value}));
    }

    /// Deletes an object (DELETED to the watches that want it).
    pub fn delete<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        let path = collection::<K>(namespace);
        let mut inner = self.inner.lock().unwrap();
        let mut value = inner
            .objects
            .remove(&(path.clone(), name.to_owned()))
            .unwrap();
        inner.revision += 1;
        value["metadata"]["resourceVersion"] = json!(inner.revision.to_string());
        inner.record(
            path,
            name.to_owned(),
            json!({"type": "DELETED", "object": value}),
        );
    }

    /// Makes the collection of `K` answer 404, as when its CRD is not installed, or not.
    pub fn set_missing<K: Resource<DynamicType = ()>>(&self, namespace: &str, missing: bool) {
        let path = collection::<K>(namespace);
        let mut inner = self.inner.lock().unwrap();
        if missing {
            inner.missing.insert(path);
        } else {
            inner.missing.remove(&path);
        }
    }

    /// Ends every open watch, as an API server does when it restarts or a watch times out.
    pub fn cut_watches(&self) {
        self.inner.lock().unwrap().watches.clear();
    }

    /// Forgets the history up to now: a watch resuming from an older resourceVersion gets an
    /// `ERROR` event with 410 Gone and must list again.
    pub fn compact(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.compacted = inner.revision + 1;
    }

    /// The requests received so far (path and query).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    fn respond(&self, request: &Request<::kube::client::Body>) -> Response<Body> {
        let uri = request.uri();
        let path = uri.path().to_owned();
        let query: BTreeMap<String, String> = Query::try_from_uri(uri).unwrap().0;
        let mut inner = self.inner.lock().unwrap();
        inner.requests.push(uri.to_string());
        if inner.missing.contains(&path) {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "the server could not find the requested resource",
                    "reason": "NotFound", "details": {}, "code": 404,
                }),
            );
        }
        let name = query
            .get("fieldSelector")
            .map(|selector| selector.strip_prefix("metadata.name=").unwrap().to_owned());
        if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
            let since: u64 = query
                .get("resourceVersion")
                .map_or(0, |rv| rv.parse().unwrap());
            let (events, stream) = mpsc::unbounded();
            if since < inner.compacted {
                let gone = json!({"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {since}"),
                    "reason": "Expired", "code": 410,
                }});
                events.unbounded_send(line(&gone)).unwrap();
                drop(events);
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(stream.map(Ok::<_, Infallible>)))
                    .unwrap();
            }
            let watch = Watch { path, name, events };
            for change in &inner.log {
                if change.revision > since && watch.wants(&change.path, &change.name) {
                    watch.events.unbounded_send(line(&change.event)).unwrap();
                }
            }
            inner.watches.push(watch);
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream.map(Ok::<_, Infallible>)))
                .unwrap();
        }
        let items: Vec<Value> = inner
            .objects
            .iter()
            .filter(|((p, n), _)| *p == path && name.as_ref().is_none_or(|name| name == n))
            .map(|(_, object)| object.clone())
            .collect();
        json_response(
            StatusCode::OK,
            &json!({
                "apiVersion": "v1", "kind": "List",
                "metadata": {"resourceVersion": inner.revision.to_string()},
                "items": items,
            }),
        )
    }
}

impl Inner {
    fn record(&mut self, path: String, name: String, event: Value) {
        self.watches.retain(|watch| {
            !watch.wants(&path, &name) || watch.events.unbounded_send(line(&event)).is_ok()
        });
        self.log.push(Change {
            revision: self.revision,
            path,
            name,
            event,
        });
    }
}

fn line(event: &Value) -> Bytes {
    let mut text = serde_json::to_vec(event).unwrap();
    text.push(b'\n');
    Bytes::from(text)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}
