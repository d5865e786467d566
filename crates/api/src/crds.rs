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
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!(
        "# Generated from crates/api by `make crds`. Do not edit.\n{}",
        serde_yaml::to_string(crd)?
    ))
}
