//! Brings the cluster in line with a rendering: server-side apply of what should exist,
//! deletion of what should not, and nothing at all when both already agree.
//!
//! For each kind the server's objects are listed by label (the controller's own
//! `managed-by` and `linkmcp.io/server` labels, plus the namespace label for cluster-scoped
//! ones). A rendered object is applied (field manager `linkmcp-controller`, forced, so the
//! controller wins its own fields back) unless the existing object already carries the hash
//! of this exact rendering and every rendered field still has its rendered value; an existing
//! object that is no longer rendered — a switched-off option, a lowered kubectl access — is
//! deleted. A steady McpServer therefore costs reads and no write.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::build::{Child, Kind, Rendered, cluster_selector_of, selector_of};
use crate::context::Context;
use crate::error::{Error, is_not_found};

/// Annotation holding the hash of the rendering an object was last applied from.
pub const APPLIED_HASH: &str = "linkmcp.io/applied-hash";

/// What the sync saw of the objects it keeps.
#[derive(Debug, Default)]
pub struct Synced {
    /// The Deployment as it is after the sync (for status).
    pub deployment: Option<DynamicObject>,
    /// Writes made.
    pub writes: usize,
}

fn api(client: &Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    let resource: ApiResource = kind.api_resource();
    if kind.namespaced() {
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    }
}

/// Applies `rendered` for McpServer `server` in `namespace`, deleting what is no longer
/// rendered.
pub async fn sync(
    ctx: &Context,
    server: &str,
    namespace: &str,
    rendered: &Rendered,
) -> Result<Synced, Error> {
    let mut synced = Synced::default();
    for kind in Kind::ALL {
        let desired: Vec<&Child> = rendered
            .children
            .iter()
            .filter(|c| c.kind == kind)
            .collect();
        let api = api(&ctx.client, kind, namespace);
        let selector = if kind.namespaced() {
            selector_of(server)
        } else {
            cluster_selector_of(server, namespace)
        };
        let kind_name = kind.api_resource().kind;
        let current = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list.items,
            // An optional API that is not installed holds nothing to keep or delete.
            Err(err) if kind.optional() && desired.is_empty() && is_not_found(&err) => Vec::new(),
            Err(err) => {
                return Err(Error::kube(
                    format!("listing the {kind_name}s of McpServer {namespace}/{server}"),
                    err,
                ));
            }
        };

        for child in &desired {
            let name = child.name();
            let object = with_hash(&child.object)?;
            let existing = current.iter().find(|o| o.name_any() == name);
            let kept = match existing {
                Some(existing) if up_to_date(existing, &object)? => existing.clone(),
                _ => {
                    let applied = api
                        .patch(
                            &name,
                            &PatchParams::apply(&ctx.settings.field_manager).force(),
                            &Patch::Apply(&object),
                        )
                        .await
                        .map_err(|e| {
                            Error::kube(format!("applying {kind_name} {namespace}/{name}"), e)
                        })?;
                    ctx.metrics.wrote(&kind_name, "apply");
                    synced.writes += 1;
                    tracing::info!(kind = %kind_name, %namespace, %name, "applied");
                    applied
                }
            };
            if kind == Kind::Deployment {
                synced.deployment = Some(kept);
            }
        }

        for stale in current
            .iter()
            .filter(|o| !desired.iter().any(|c| c.name() == o.name_any()))
        {
            let name = stale.name_any();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => continue,
                Err(err) => {
                    return Err(Error::kube(
                        format!("deleting {kind_name} {namespace}/{name}"),
                        err,
                    ));
                }
            }
            ctx.metrics.wrote(&kind_name, "delete");
            synced.writes += 1;
            tracing::info!(kind = %kind_name, %namespace, %name, "deleted: no longer rendered");
        }
    }
    Ok(synced)
}

/// Deletes the cluster-scoped objects of McpServer `server` in `namespace`.
pub async fn delete_cluster_objects(
    ctx: &Context,
    server: &str,
    namespace: &str,
) -> Result<(), Error> {
    for kind in Kind::ALL.into_iter().filter(|k| !k.namespaced()) {
        let api = api(&ctx.client, kind, namespace);
        let selector = cluster_selector_of(server, namespace);
        let kind_name = kind.api_resource().kind;
        let current = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::kube(format!("listing {kind_name}s of {namespace}/{server}"), e))?;
        for object in current.items {
            let name = object.name_any();
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => ctx.metrics.wrote(&kind_name, "delete"),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(Error::kube(format!("deleting {kind_name} {name}"), err)),
            }
        }
    }
    Ok(())
}

/// The object with the hash of its rendering in [`APPLIED_HASH`].
fn with_hash(object: &DynamicObject) -> Result<DynamicObject, Error> {
    let bytes = serde_json::to_vec(object).map_err(|source| Error::Encode {
        what: format!("{} {}", kind_of(object), object.name_any()),
        source,
    })?;
    let digest = Sha256::digest(&bytes);
    let hash: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let mut object = object.clone();
    object
        .annotations_mut()
        .insert(APPLIED_HASH.to_owned(), hash);
    Ok(object)
}

fn kind_of(object: &DynamicObject) -> &str {
    object.types.as_ref().map_or("object", |t| t.kind.as_str())
}

/// Whether `existing` was applied from this rendering and still holds every rendered value.
fn up_to_date(existing: &DynamicObject, desired: &DynamicObject) -> Result<bool, Error> {
    if existing.annotations().get(APPLIED_HASH) != desired.annotations().get(APPLIED_HASH) {
        return Ok(false);
    }
    let encode = |source| Error::Encode {
        what: format!("{} {}", kind_of(desired), desired.name_any()),
        source,
    };
    let existing = serde_json::to_value(existing).map_err(encode)?;
    let desired = serde_json::to_value(desired).map_err(encode)?;
    Ok(holds(&existing, &desired))
}

/// Whether `actual` holds every value of `desired`: objects may have more keys (defaults the
/// API server filled in), lists must have the same length, scalars must be equal.
pub fn holds(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (Value::Object(actual), Value::Object(desired)) => desired.iter().all(|(key, want)| {
            match actual.get(key) {
                Some(have) => holds(have, want),
                // The API server drops empty maps and lists (a Secret without data).
                None => is_empty(want),
            }
        }),
        (Value::Array(actual), Value::Array(desired)) => {
            actual.len() == desired.len() && actual.iter().zip(desired).all(|(a, d)| holds(a, d))
        }
        _ => actual == desired,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_filled_in_by_the_api_server_do_not_count_as_drift() {
        let desired =
            json!({"spec": {"ports": [{"port": 80, "name": "http"}], "type": "ClusterIP"}});
        let actual = json!({"spec": {"ports": [{"port": 80, "name": "http", "protocol": "TCP"}],
            "type": "ClusterIP", "clusterIP": "10.0.0.1"}});
        assert!(holds(&actual, &desired));
        assert!(holds(
            &json!({"type": "Opaque"}),
            &json!({"type": "Opaque", "data": {}})
        ));
    }

    #[test]
    fn changed_and_removed_values_are_drift() {
        let desired = json!({"spec": {"replicas": 2, "args": ["a"]}});
        assert!(!holds(
            &json!({"spec": {"replicas": 3, "args": ["a"]}}),
            &desired
        ));
        assert!(!holds(&json!({"spec": {"args": ["a"]}}), &desired));
        assert!(!holds(
            &json!({"spec": {"replicas": 2, "args": ["a", "b"]}}),
            &desired
        ));
    }
}
