//! The one way status is written: server-side apply of the fields the controller owns, only
//! when they changed, followed by the Events of the condition transitions.
//!
//! Callers compare the status they decided with the object's current one and call [`write`]
//! only on a difference, so a steady cluster costs no status write at all. The applied patch
//! names only the controller's fields: on Agents and AiTasks the server owns the run fields
//! and its own conditions (a map-list keyed by type), and server-side apply leaves those alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::Error;
use crate::events;

/// Applies `status` to `object` and publishes the Events of the change from `before` to
/// `after` (the conditions the controller owns, as they were and as they are written).
pub async fn write<K>(
    ctx: &Context,
    object: &K,
    status: &impl Serialize,
    before: &[Condition],
    after: &[Condition],
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let name = object.name_any();
    let namespace = object.namespace().ok_or(Error::MissingMetadata {
        kind: "object",
        field: "namespace",
    })?;
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "status": status,
    });
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::apply(&ctx.settings.field_manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| {
        Error::kube(
            format!("writing the status of {kind} {namespace}/{name}"),
            e,
        )
    })?;
    ctx.metrics.wrote(&kind, "status");
    tracing::info!(%kind, %namespace, %name, "status updated");
    events::publish(
        ctx,
        &object.object_ref(&()),
        events::transitions(before, after),
    )
    .await;
    Ok(())
}

/// Whether two condition lists say the same (type, status, reason, message, generation),
/// whatever their order; times are ignored, they are kept by [`crate::conditions::finalize`].
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}
