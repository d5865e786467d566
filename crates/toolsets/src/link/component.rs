//! A link as a component of the stack topology: what it is and where, never a credential.
//!
//! The topology tools (query_topology, list_components) read these; each backend module
//! describes its own block, and the link's `spec.component` overrides name, type and group.

use std::collections::BTreeMap;

use serde::Serialize;

/// One component of the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// Component name (the link's, unless `spec.component.name` says otherwise).
    pub name: String,
    /// The link type (`postgres`, `kafka`, ...).
    pub link_type: String,
    /// Kind of component: `database`, `queue`, `cache`, `object-store`, `metrics`, ...
    pub kind: String,
    /// Group it belongs to, from `spec.component.group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where it runs: host, port, URL, database, bucket, topics... (no credentials).
    pub endpoint: BTreeMap<String, String>,
    /// Free-form attributes from `spec.component.attributes`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Components it depends on, from `spec.component.dependsOn`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}
