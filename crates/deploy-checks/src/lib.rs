//! Checks of the deployment manifests: every object that `kubectl kustomize` or `helm template`
//! renders is parsed into its typed Kubernetes (k8s-openapi) or linkmcp type, and a field the
//! type does not know fails the check instead of being dropped silently.
//!
//! The typed parse alone ignores unknown fields, so the object is serialized back and the
//! original must be contained in the result: every field, at every depth, with the same value.
//! Fields the type adds (defaults) are allowed; fields it loses are reported by their path.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The kustomizations under config/, each rendered on its own.
pub const KUSTOMIZATIONS: &[&str] = &["crd", "rbac", "manager", "default", "samples"];

/// `kubectl kustomize DIR`, or why it could not run.
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| {
            format!(
                "cannot run `kubectl kustomize {}` ({e}): kubectl must be on PATH to check the \
                 kustomizations (any kubectl >= 1.27 bundles kustomize)",
                dir.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "`kubectl kustomize {}` failed: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("kustomize output is not UTF-8: {e}"))
}

/// The documents of a YAML stream, empty documents left out.
pub fn documents(yaml: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// `apiVersion/kind namespace/name` of an object, for messages.
pub fn describe(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("?")
    };
    format!(
        "{} {} {}/{}",
        text("/apiVersion"),
        text("/kind"),
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("-"),
        text("/metadata/name")
    )
}

/// Parses `object` into the type of its apiVersion and kind and fails on any field the type
/// does not carry.
pub fn validate(object: &Value) -> Result<(), String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let result = match (api_version, kind) {
        ("v1", "Namespace") => typed::<Namespace>(object),
        ("v1", "ServiceAccount") => typed::<ServiceAccount>(object),
        ("v1", "Service") => typed::<Service>(object),
        ("v1", "Secret") => typed::<Secret>(object),
        ("v1", "ConfigMap") => typed::<ConfigMap>(object),
        ("apps/v1", "Deployment") => typed::<Deployment>(object),
        ("policy/v1", "PodDisruptionBudget") => typed::<PodDisruptionBudget>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => typed::<ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            typed::<ClusterRoleBinding>(object)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => typed::<Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => typed::<RoleBinding>(object),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            typed::<CustomResourceDefinition>(object)
        }
        ("linkmcp.io/v1alpha1", "McpServer") => typed::<linkmcp_api::McpServer>(object),
        ("linkmcp.io/v1alpha1", "McpLink") => typed::<linkmcp_api::McpLink>(object),
        ("linkmcp.io/v1alpha1", "Agent") => typed::<linkmcp_api::Agent>(object),
        ("linkmcp.io/v1alpha1", "AiTask") => typed::<linkmcp_api::AiTask>(object),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => {
            typed::<monitoring::ServiceMonitor>(object)
        }
        _ => Err(format!(
            "no type known for apiVersion {api_version:?} kind {kind:?}"
        )),
    };
    result.map_err(|e| format!("{}: {e}", describe(object)))
}

fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let parsed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    contained(object, &back, String::new(), &mut lost);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fields unknown to the type or changed by it: {}",
            lost.join(", ")
        ))
    }
}

/// Collects into `lost` the paths where `original` is not found in `back`.
fn contained(original: &Value, back: &Value, path: String, lost: &mut Vec<String>) {
    match (original, back) {
        (Value::Null, _) => {}
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => contained(value, other, here, lost),
                    None if value.is_null() => {}
                    None => lost.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                contained(x, y, format!("{path}[{i}]"), lost);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        _ => lost.push(if path.is_empty() {
            ".".to_owned()
        } else {
            path
        }),
    }
}

/// The Prometheus Operator's ServiceMonitor, as far as linkmcp renders it (no Rust type of it
/// ships with k8s-openapi). Unknown fields are refused by serde itself.
pub mod monitoring {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ServiceMonitor {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: ServiceMonitorSpec,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ServiceMonitorSpec {
        pub selector: LabelSelector,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespace_selector: Option<NamespaceSelector>,
        pub endpoints: Vec<Endpoint>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NamespaceSelector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub any: Option<bool>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub match_names: Vec<String>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Endpoint {
        pub port: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub params: BTreeMap<String, Vec<String>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_reported_by_path() {
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "a", "namespace": "b"},
            "automountServiceAccountTokens": false
        });
        let err = validate(&object).err().unwrap_or_default();
        assert!(err.contains(".automountServiceAccountTokens"), "{err}");
        let nested = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "a"},
            "spec": {"ports": [{"port": 80, "targetPort": "http", "protcol": "TCP"}]}
        });
        let err = validate(&nested).err().unwrap_or_default();
        assert!(err.contains(".spec.ports[0].protcol"), "{err}");
    }

    #[test]
    fn a_known_object_passes_and_an_unknown_kind_fails() {
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]}
        });
        assert_eq!(validate(&object), Ok(()));
        let unknown = serde_json::json!({"apiVersion": "x/v1", "kind": "Y", "metadata": {}});
        assert!(validate(&unknown).is_err());
    }
}
