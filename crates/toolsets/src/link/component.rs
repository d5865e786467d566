//! A link as a component of the stack topology: what it is and where, never a credential.
//!
//! The topology tools (query_topology, list_components) read these; each backend module
//! describes its own block, and the link's `spec.component` overrides name, type and group.

use std::collections::BTreeMap;

use serde::Serialize;

use super::LinkContext;

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

impl Component {
    /// `link` as a component of type `link_type`: its backend's `endpoint` plus the namespace,
    /// with `spec.component` overriding name, kind (else `default_kind`), group, attributes,
    /// dependencies and namespace. Each backend module describes only its endpoint.
    pub fn of_link(
        link: &LinkContext<'_>,
        link_type: &str,
        default_kind: &str,
        mut endpoint: BTreeMap<String, String>,
    ) -> Self {
        let meta = link.spec.component.clone().unwrap_or_default();
        endpoint.insert(
            "namespace".to_owned(),
            meta.namespace.unwrap_or_else(|| link.namespace.to_owned()),
        );
        Self {
            name: meta.name.unwrap_or_else(|| link.name.to_owned()),
            link_type: link_type.to_owned(),
            kind: meta.r#type.unwrap_or_else(|| default_kind.to_owned()),
            group: meta.group,
            endpoint,
            attributes: meta.attributes,
            depends_on: meta.depends_on,
        }
    }
}
