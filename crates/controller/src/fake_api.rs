//! An in-process Kubernetes API for the reconcilers' tests (tower-test's mock service behind
//! `kube::Client::new`, so no socket or kubeconfig is involved).
//!
//! It keeps objects by collection path and name and answers what the reconcilers ask: list
//! (with equality label selectors), get, server-side apply and merge patches of objects and
//! of their status, delete, Event creation, and discovery of the API groups it is told exist.
//! Every request is recorded, so a test asserts the exact calls a reconcile made.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::{Client, Resource};
use serde::Serialize;
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// The JSON body, for writes.
    pub body: Option<Value>,
}

impl Recorded {
    /// Whether the request changes something.
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    /// `METHOD path` without the query.
    pub fn line(&self) -> String {
        let path = self.uri.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

#[derive(Default)]
struct Inner {
    revision: u64,
    /// (collection path, name) -> object.
    objects: BTreeMap<(String, String), Value>,
    /// `group/version` paths discovery answers for, with their resources.
    groups: BTreeMap<String, Vec<(String, String)>>,
    requests: Vec<Recorded>,
}

/// The fake API server; clones share one state.
#[derive(Clone, Default)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
}

/// The collection path of `K` in `namespace`.
pub fn collection<K: Resource<DynamicType = ()>>(namespace: &str) -> String {
    K::url_path(&(), Some(namespace))
}

impl FakeApi {
    /// A fake API and a client talking to it.
    pub fn start() -> (Self, Client) {
        let (service, mut handle) =
            tower_test::mock::pair::<Request<kube::client::Body>, Response<kube::client::Body>>();
        let api = Self::default();
        let serving = api.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                respond.send_response(serving.respond(&parts.method, &parts.uri, &bytes));
            }
        });
        (api, Client::new(service, "default"))
    }

    /// Stores `object` as if a user had applied it.
    pub fn put<K: Resource<DynamicType = ()> + Serialize>(&self, object: &K) {
        let namespace = object.meta().namespace.clone().unwrap();
        let name = object.meta().name.clone().unwrap();
        let mut value = serde_json::to_value(object).unwrap();
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        let mut inner = self.inner.lock().unwrap();
        inner.store(collection::<K>(&namespace), name, value);
    }

    /// Deletes the stored object `name` of `K`, as a user would.
    pub fn delete<K: Resource<DynamicType = ()>>(&self, namespace: &str, name: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .objects
            .remove(&(collection::<K>(namespace), name.to_owned()));
    }

    /// The stored object `name` of `K`.
    pub fn get<K: Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let inner = self.inner.lock().unwrap();
        inner
            .objects
            .get(&(collection::<K>(namespace), name.to_owned()))
            .map(|v| serde_json::from_value(v.clone()).unwrap())
    }

    /// Makes discovery answer for `api_version` (`group/version`) with `(kind, plural)`s.
    pub fn serve_api(&self, api_version: &str, resources: &[(&str, &str)]) {
        self.inner.lock().unwrap().groups.insert(
            api_version.to_owned(),
            resources
                .iter()
                .map(|(k, p)| ((*k).to_owned(), (*p).to_owned()))
                .collect(),
        );
    }

    /// The requests received so far, and forgets them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.inner.lock().unwrap().requests)
    }

    fn respond(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        body: &[u8],
    ) -> Response<kube::client::Body> {
        let body: Option<Value> = serde_json::from_slice(body).ok();
        let mut inner = self.inner.lock().unwrap();
        inner.requests.push(Recorded {
            method: method.clone(),
            uri: uri.to_string(),
            body: body.clone(),
        });
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v)))
            .collect();
        let path = uri.path();
        if let Some(answer) = inner.discovery(path) {
            return answer;
        }
        let Some(target) = Target::parse(path) else {
            return status(StatusCode::NOT_FOUND, "no such path");
        };
        match (method.clone(), &target.name, target.status) {
            (Method::GET, None, _) => {
                let selector = query.get("labelSelector").cloned().unwrap_or_default();
                let items: Vec<Value> = inner
                    .objects
                    .iter()
                    .filter(|((c, _), o)| *c == target.collection && matches(o, &selector))
                    .map(|(_, o)| o.clone())
                    .collect();
                ok(&json!({"apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": inner.revision.to_string()}, "items": items}))
            }
            (Method::POST, None, _) => {
                let mut object = body.unwrap_or_default();
                if object["metadata"]["name"].is_null() {
                    object["metadata"]["name"] = json!(format!("event-{}", inner.revision));
                }
                let name = object["metadata"]["name"].as_str().unwrap().to_owned();
                let stored = inner.store(target.collection.clone(), name, object);
                respond(StatusCode::CREATED, &stored)
            }
            (Method::GET, Some(name), _) => match inner.objects.get(&target.key(name)) {
                Some(object) => ok(object),
                None => status(StatusCode::NOT_FOUND, &format!("{name} not found")),
            },
            (Method::PATCH, Some(name), is_status) => {
                let patch = body.unwrap_or_default();
                let existing = inner.objects.get(&target.key(name)).cloned();
                let object = match (existing, is_status) {
                    (None, true) => return status(StatusCode::NOT_FOUND, "no object"),
                    (Some(mut object), true) => {
                        object["status"] = patch["status"].clone();
                        object
                    }
                    (None, false) => patch,
                    // Server-side apply by the one manager these tests use: the applied
                    // configuration is the whole of that manager's fields, so a field left out
                    // is removed; the object's identity and status stay.
                    (Some(existing), false) if query.contains_key("fieldManager") => {
                        let mut object = patch;
                        for field in ["uid", "creationTimestamp", "finalizers"] {
                            if !existing["metadata"][field].is_null() {
                                object["metadata"][field] = existing["metadata"][field].clone();
                            }
                        }
                        if !existing["status"].is_null() {
                            object["status"] = existing["status"].clone();
                        }
                        object
                    }
                    (Some(mut object), false) => {
                        merge(&mut object, &patch);
                        object
                    }
                };
                let stored = inner.store(target.collection.clone(), name.clone(), object);
                ok(&stored)
            }
            (Method::DELETE, Some(name), _) => match inner.objects.remove(&target.key(name)) {
                Some(_) => ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                None => status(StatusCode::NOT_FOUND, &format!("{name} not found")),
            },
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "not supported by the fake"),
        }
    }
}

impl Inner {
    fn store(&mut self, collection: String, name: String, mut object: Value) -> Value {
        self.revision += 1;
        let metadata = &mut object["metadata"];
        if metadata["uid"].is_null() {
            metadata["uid"] = json!(format!("uid-{name}-{}", self.revision));
        }
        if metadata["creationTimestamp"].is_null() {
            metadata["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        metadata["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert((collection, name), object.clone());
        object
    }

    fn discovery(&self, path: &str) -> Option<Response<kube::client::Body>> {
        let rest = path.strip_prefix("/apis/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != 2 {
            return None;
        }
        let group_version = format!("{}/{}", parts[0], parts[1]);
        Some(match self.groups.get(&group_version) {
            Some(resources) => ok(&json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources.iter().map(|(kind, plural)| json!({
                    "name": plural, "singularName": "", "namespaced": true, "kind": kind,
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                })).collect::<Vec<_>>(),
            })),
            None => status(
                StatusCode::NOT_FOUND,
                "the server could not find the requested resource",
            ),
        })
    }
}

/// A parsed resource path.
struct Target {
    collection: String,
    name: Option<String>,
    status: bool,
}

impl Target {
    fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let prefix_len = match *segments.first()? {
            "api" => 2,
            "apis" => 3,
            _ => return None,
        };
        let mut rest = &segments[prefix_len.min(segments.len())..];
        let mut collection = format!("/{}", segments[..prefix_len].join("/"));
        if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
            collection.push_str(&format!("/namespaces/{}", rest[1]));
            rest = &rest[2..];
        }
        let plural = rest.first()?;
        collection.push_str(&format!("/{plural}"));
        Some(Self {
            collection,
            name: rest.get(1).map(|s| (*s).to_owned()),
            status: rest.get(2) == Some(&"status"),
        })
    }

    fn key(&self, name: &str) -> (String, String) {
        (self.collection.clone(), name.to_owned())
    }
}

fn decode(value: &str) -> String {
    value
        .replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%2F", "/")
}

fn matches(object: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.split_once('='))
        .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v))
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn respond(code: StatusCode, body: &Value) -> Response<kube::client::Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn ok(body: &Value) -> Response<kube::client::Body> {
    respond(StatusCode::OK, body)
}

fn status(code: StatusCode, message: &str) -> Response<kube::client::Body> {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "NotFound", "code": code.as_u16()}),
    )
}

/// The distinct write lines of `requests`, in order.
pub fn writes(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.is_write())
        .map(Recorded::line)
        .collect()
}
