//! One immutable state of the registry: the registered toolsets and the indexes a request is
//! routed by (tool names, resource URIs and templates, prompt names).
//!
//! A snapshot is built whole when a toolset is registered or removed, so a clash of names is
//! found there, once, and resolved by the server's onDuplicateTools policy for tools, prompts
//! and resources alike; requests only look names up.

use std::{collections::BTreeMap, fmt, sync::Arc};

use linkmcp_api::server::OnDuplicateTools;
use linkmcp_toolsets::{
    Access, ToolDef, Toolset,
    prompt::Prompt,
    resource::{Resource, ResourceTemplate, ResourceTemplateDef},
};
use rmcp::model::Tool;

use super::{RegistryError, ToolsetKey};

/// What a name in the registry is the name of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A tool name.
    Tool,
    /// A prompt name.
    Prompt,
    /// A resource URI.
    Resource,
    /// A resource URI template.
    ResourceTemplate,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::Resource => "resource",
            ItemKind::ResourceTemplate => "resource template",
        })
    }
}

/// A registered item with the toolset that serves it.
#[derive(Clone)]
pub(super) struct Entry<T> {
    pub key: ToolsetKey,
    pub toolset: Arc<dyn Toolset>,
    pub item: T,
}

impl<T> Entry<T> {
    fn new(key: &ToolsetKey, toolset: &Arc<dyn Toolset>, item: T) -> Self {
        Self {
            key: key.clone(),
            toolset: toolset.clone(),
            item,
        }
    }
}

/// What a registry change changed, as clients are told of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    /// The tool list (`notifications/tools/list_changed`).
    pub tools: bool,
    /// The prompt list (`notifications/prompts/list_changed`).
    pub prompts: bool,
    /// The resource or resource template list (`notifications/resources/list_changed`).
    pub resources: bool,
}

/// One immutable state of the registry.
pub struct Snapshot {
    pub(super) generation: u64,
    pub(super) toolsets: BTreeMap<ToolsetKey, Arc<dyn Toolset>>,
    /// When each key was first registered: replacing a key's toolset keeps its place.
    pub(super) order: BTreeMap<ToolsetKey, u64>,
    pub(super) tools: BTreeMap<String, Entry<ToolDef>>,
    pub(super) resources: BTreeMap<String, Entry<Resource>>,
    /// By URI template; a read that names no fixed resource tries them in this order.
    pub(super) templates: BTreeMap<String, Entry<ResourceTemplateDef>>,
    pub(super) prompts: BTreeMap<String, Entry<Prompt>>,
    listed_tools: Vec<Tool>,
    listed_resources: Vec<Resource>,
    listed_templates: Vec<ResourceTemplate>,
    listed_prompts: Vec<Prompt>,
}

/// Adds `item` under `name` to `index`, or applies `policy` if another toolset has it.
fn index<T>(
    index: &mut BTreeMap<String, Entry<T>>,
    kind: ItemKind,
    name: &str,
    entry: Entry<T>,
    policy: OnDuplicateTools,
) -> Result<(), RegistryError> {
    if let Some(existing) = index.get(name) {
        match policy {
            OnDuplicateTools::Error => {
                return Err(RegistryError::Duplicate {
                    kind,
                    name: name.to_owned(),
                    key: entry.key,
                    owner: existing.key.clone(),
                });
            }
            OnDuplicateTools::Warn => {
                tracing::warn!(
                    %kind,
                    name,
                    toolset = %entry.key,
                    kept = %existing.key,
                    "duplicate name: the first toolset keeps it"
                );
                return Ok(());
            }
            OnDuplicateTools::Replace => {
                tracing::warn!(
                    %kind,
                    name,
                    toolset = %entry.key,
                    replaced = %existing.key,
                    "duplicate name: the later toolset takes it"
                );
            }
        }
    }
    index.insert(name.to_owned(), entry);
    Ok(())
}

impl Snapshot {
    pub(super) fn empty() -> Self {
        Self {
            generation: 0,
            toolsets: BTreeMap::new(),
            order: BTreeMap::new(),
            tools: BTreeMap::new(),
            resources: BTreeMap::new(),
            templates: BTreeMap::new(),
            prompts: BTreeMap::new(),
            listed_tools: Vec::new(),
            listed_resources: Vec::new(),
            listed_templates: Vec::new(),
            listed_prompts: Vec::new(),
        }
    }

    /// Indexes what `toolsets` serve, taking them in registration order (`order`) so that
    /// "the later toolset" of a name clash is well defined for the `policy`.
    pub(super) fn build(
        generation: u64,
        toolsets: BTreeMap<ToolsetKey, Arc<dyn Toolset>>,
        order: BTreeMap<ToolsetKey, u64>,
        policy: OnDuplicateTools,
    ) -> Result<Self, RegistryError> {
        let mut keys: Vec<&ToolsetKey> = toolsets.keys().collect();
        keys.sort_by_key(|k| (order.get(*k).copied().unwrap_or(u64::MAX), (*k).clone()));
        let mut next = Self::empty();
        for key in keys {
            let toolset = &toolsets[key];
            for def in toolset.tools() {
                index(
                    &mut next.tools,
                    ItemKind::Tool,
                    def.name(),
                    Entry::new(key, toolset, def.clone()),
                    policy,
                )?;
            }
            for resource in toolset.resources() {
                index(
                    &mut next.resources,
                    ItemKind::Resource,
                    &resource.uri,
                    Entry::new(key, toolset, resource.clone()),
                    policy,
                )?;
            }
            for template in toolset.resource_templates() {
                index(
                    &mut next.templates,
                    ItemKind::ResourceTemplate,
                    &template.template().uri_template,
                    Entry::new(key, toolset, template.clone()),
                    policy,
                )?;
            }
            for prompt in toolset.prompts() {
                index(
                    &mut next.prompts,
                    ItemKind::Prompt,
                    &prompt.name,
                    Entry::new(key, toolset, prompt.clone()),
                    policy,
                )?;
            }
        }
        next.listed_tools = next.tools.values().map(|e| e.item.tool().clone()).collect();
        next.listed_resources = next.resources.values().map(|e| e.item.clone()).collect();
        next.listed_templates = next
            .templates
            .values()
            .map(|e| e.item.template().clone())
            .collect();
        next.listed_prompts = next.prompts.values().map(|e| e.item.clone()).collect();
        next.generation = generation;
        next.toolsets = toolsets;
        next.order = order;
        Ok(next)
    }

    /// What changed for clients from `old` to this snapshot: a list is changed when what it
    /// lists differs.
    pub fn changed_since(&self, old: &Snapshot) -> Changed {
        Changed {
            tools: self.listed_tools != old.listed_tools,
            prompts: self.listed_prompts != old.listed_prompts,
            resources: self.listed_resources != old.listed_resources
                || self.listed_templates != old.listed_templates,
        }
    }

    /// Increases by one with every change; 0 is the empty registry it started as.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The tools as listed to clients, sorted by name.
    pub fn tools(&self) -> &[Tool] {
        &self.listed_tools
    }

    /// The resources with a fixed URI, sorted by URI.
    pub fn resources(&self) -> &[Resource] {
        &self.listed_resources
    }

    /// The resource templates, sorted by template.
    pub fn resource_templates(&self) -> &[ResourceTemplate] {
        &self.listed_templates
    }

    /// The prompts, sorted by name.
    pub fn prompts(&self) -> &[Prompt] {
        &self.listed_prompts
    }

    /// The definition of the tool `name`, if registered.
    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools.get(name).map(|e| &e.item)
    }

    /// Every served tool with the key of the toolset serving it, sorted by tool name.
    pub fn entries(&self) -> impl Iterator<Item = (&ToolsetKey, &ToolDef)> {
        self.tools.values().map(|e| (&e.key, &e.item))
    }

    /// The toolset keys with the number of tools each provides, sorted by key.
    pub fn toolsets(&self) -> impl Iterator<Item = (&ToolsetKey, usize)> {
        self.toolsets.iter().map(|(k, t)| (k, t.tools().len()))
    }

    /// The key of the toolset that serves the resource `uri` (listed, or matching a
    /// template), with the name the resource is audited under.
    pub fn resource_owner(&self, uri: &str) -> Option<(&ToolsetKey, &str)> {
        self.resource_entry(uri).map(|(key, _, name)| (key, name))
    }

    /// The key of the toolset serving prompt `name`.
    pub fn prompt_key(&self, name: &str) -> Option<&ToolsetKey> {
        self.prompts.get(name).map(|e| &e.key)
    }

    /// The key of the toolset listing the resource `uri`.
    pub fn resource_key(&self, uri: &str) -> Option<&ToolsetKey> {
        self.resources.get(uri).map(|e| &e.key)
    }

    /// The key of the toolset serving the template `uri_template`.
    pub fn template_key(&self, uri_template: &str) -> Option<&ToolsetKey> {
        self.templates.get(uri_template).map(|e| &e.key)
    }

    /// The toolset that serves `uri`: the one listing it, else the first whose template
    /// matches; with the resource's (or template's) name.
    pub(super) fn resource_entry(
        &self,
        uri: &str,
    ) -> Option<(&ToolsetKey, &Arc<dyn Toolset>, &str)> {
        if let Some(e) = self.resources.get(uri) {
            return Some((&e.key, &e.toolset, &e.item.name));
        }
        self.templates
            .values()
            .find(|e| e.item.matches(uri).is_some())
            .map(|e| (&e.key, &e.toolset, e.item.template().name.as_str()))
    }

    /// The read tools of the toolset under `key`: a caller who may call all of them may also
    /// read its resources and get its prompts.
    pub fn read_tools_of(&self, key: &ToolsetKey) -> impl Iterator<Item = &str> {
        self.toolsets
            .get(key)
            .into_iter()
            .flat_map(|t| t.tools())
            .filter(|d| d.access() == Access::Read)
            .map(ToolDef::name)
    }
}
