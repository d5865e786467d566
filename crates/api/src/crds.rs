//! The four CRDs as objects and as YAML: what `crdgen` writes and the tests compare against.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{Agent, AiTask, McpLink, McpServer};

/// Every CRD with the file name it is written to.
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("linkmcp.io_mcpservers.yaml", McpServer::crd()),
        ("linkmcp.io_mcplinks.yaml", McpLink::crd()),
        ("linkmcp.io_agents.yaml", Agent::crd()),
        ("linkmcp.io_aitasks.yaml", AiTask::crd()),
    ]
}

/// The YAML document written for a CRD, with a header saying it is generated.
///
/// Keys are written in sorted order whatever serde_json's `preserve_order` feature says (a
/// dependency may turn it on for the whole build), so the generated files do not depend on
/// which crates are compiled in.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    let value =
        serde_json::to_value(crd).map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
    Ok(format!(
        "# Generated from crates/api by `make crds`. Do not edit.\n{}",
        serde_yaml::to_string(&sorted(value))?
    ))
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
