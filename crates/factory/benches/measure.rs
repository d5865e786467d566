//! How tool selection does on a task set: the schema tokens it saves and the needed tools it
//! keeps, measured exactly as a run selects. Shared by the benchmark that prints the figures
//! (examples/selection_bench.rs) and the test that holds them to their bounds
//! (tests/selection.rs), so both measure the same thing.
//!
//! Tokens are those of the tool definitions a provider receives (`{name, description,
//! input_schema}` as JSON) in cl100k_base. A run is offered `find_tools` beside its selection
//! whenever something was left out, so its tokens count too; "after one search" is the recall
//! when the model calls `find_tools` once with the task's own words.

// Each of its two users reads only part of what it measures.
#![allow(dead_code)]

use std::{collections::BTreeSet, path::Path, sync::Arc};

use linkmcp_api::{LinkType, task::TaskMode};
use linkmcp_factory::{
    HostTool, find_tools,
    select::{SelectOptions, eligible, select},
};
use linkmcp_toolsets::Access;
use rmcp::model::Tool;
use serde::Deserialize;
use serde_json::{Value, json};

/// The benchmark's targets: at least this share of schema tokens saved ...
pub const TARGET_SAVING: f64 = 0.90;
/// ... at this recall of needed tools or more.
pub const TARGET_RECALL: f64 = 0.97;

#[derive(Deserialize)]
struct CatalogueEntry {
    name: String,
    access: String,
    #[serde(default)]
    link: Option<String>,
    description: String,
    schema: Value,
}

/// One task of a set: what it says and the tools it needs.
#[derive(Deserialize)]
pub struct BenchTask {
    pub description: String,
    #[serde(default)]
    pub mode: Option<String>,
    pub needs: Vec<String>,
}

/// The tools of a catalogue with their token counts.
pub struct Catalogue {
    pub tools: Vec<HostTool>,
    /// Tokens of each tool's definition, in the order of `tools`.
    pub tokens: Vec<usize>,
    /// Tokens of the `find_tools` definition.
    pub find_tools_tokens: usize,
}

/// How selection did on one task.
pub struct TaskResult {
    pub mode: TaskMode,
    pub selected: Vec<String>,
    pub tokens: usize,
    pub missed: Vec<String>,
    /// Of the missed tools, those one `find_tools` search with the task's words brings.
    pub found_by_search: Vec<String>,
}

/// How selection did on a task set.
pub struct Report {
    pub tasks: Vec<TaskResult>,
    /// Mean schema tokens of all tools per run.
    pub all_tokens: usize,
    pub read_tokens: usize,
    /// 1 - selected tokens / all tokens, over all runs.
    pub saving: f64,
    /// 1 - selected tokens / the tokens of the tools the run's mode allows.
    pub saving_mode: f64,
    pub needed: usize,
    pub found: usize,
    /// Needed tools offered after one `find_tools` search of the task's words.
    pub found_after_search: usize,
    /// Tasks that need a tool, and of them those that got every one.
    pub tasks_needing: usize,
    pub complete: usize,
    pub mean_recall: f64,
    pub mean_tools: f64,
    pub mean_tokens: f64,
}

impl Report {
    pub fn recall(&self) -> f64 {
        self.found as f64 / self.needed.max(1) as f64
    }

    pub fn recall_after_search(&self) -> f64 {
        self.found_after_search as f64 / self.needed.max(1) as f64
    }

    pub fn meets_targets(&self) -> bool {
        self.saving >= TARGET_SAVING && self.recall() >= TARGET_RECALL
    }
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn host_tool(entry: CatalogueEntry) -> Result<HostTool, String> {
    let schema = entry
        .schema
        .as_object()
        .cloned()
        .ok_or(format!("{}: the schema is not an object", entry.name))?;
    let access = match entry.access.as_str() {
        "read" => Access::Read,
        "write" => Access::Write,
        other => return Err(format!("{}: access {other:?}", entry.name)),
    };
    let tool = HostTool::new(
        Tool::new(entry.name.clone(), entry.description, Arc::new(schema)),
        access,
    );
    match entry.link {
        None => Ok(tool),
        Some(link) => LinkType::ALL
            .iter()
            .find(|t| t.as_str() == link)
            .map(|t| tool.clone().with_link_type(*t))
            .ok_or(format!("{}: unknown link type {link:?}", entry.name)),
    }
}

fn wire_tokens(bpe: &tiktoken_rs::CoreBPE, name: &str, description: &str, schema: &Value) -> usize {
    let wire = json!({"name": name, "description": description, "input_schema": schema});
    bpe.encode_ordinary(&wire.to_string()).len()
}

/// Loads a catalogue (benches/catalogue.yaml) and counts its tokens.
pub fn load_catalogue(path: &Path) -> Result<Catalogue, String> {
    let entries: Vec<CatalogueEntry> = read_yaml(path)?;
    let tools = entries
        .into_iter()
        .map(host_tool)
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = tiktoken_rs::cl100k_base().map_err(|e| format!("cl100k_base: {e}"))?;
    let tokens = tools
        .iter()
        .map(|t| {
            let schema = Value::Object(t.tool.input_schema.as_ref().clone());
            wire_tokens(&bpe, t.name(), t.description(), &schema)
        })
        .collect();
    let spec = find_tools::spec();
    let find_tools_tokens = wire_tokens(
        &bpe,
        &spec.name,
        &spec.description,
        &Value::Object(spec.input_schema),
    );
    Ok(Catalogue {
        tools,
        tokens,
        find_tools_tokens,
    })
}

/// Loads a task set and checks that every tool it needs is in the catalogue.
pub fn load_tasks(path: &Path, catalogue: &Catalogue) -> Result<Vec<BenchTask>, String> {
    let tasks: Vec<BenchTask> = read_yaml(path)?;
    let names: BTreeSet<&str> = catalogue.tools.iter().map(HostTool::name).collect();
    for task in &tasks {
        if let Some(unknown) = task.needs.iter().find(|n| !names.contains(n.as_str())) {
            return Err(format!(
                "{}: a task needs {unknown}, which the catalogue lacks",
                path.display()
            ));
        }
    }
    Ok(tasks)
}

/// Selects for every task as a run does and adds up tokens and recall.
pub fn measure(
    catalogue: &Catalogue,
    tasks: &[BenchTask],
    max_tools: usize,
) -> Result<Report, String> {
    let tools = &catalogue.tools;
    let all_tokens: usize = catalogue.tokens.iter().sum();
    let read_tokens: usize = tools
        .iter()
        .zip(&catalogue.tokens)
        .filter(|(t, _)| t.access == Access::Read)
        .map(|(_, n)| n)
        .sum();
    let (mut sum_all, mut sum_mode, mut sum_selected) = (0usize, 0usize, 0usize);
    let (mut needed, mut found, mut found_after_search, mut selected_count) = (0, 0, 0, 0);
    let mut recalls = Vec::new();
    let mut results = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let mode = match task.mode.as_deref() {
            Some("act") => TaskMode::Act,
            None | Some("monitor") => TaskMode::Monitor,
            Some(other) => return Err(format!("task {}: mode {other:?}", i + 1)),
        };
        let options = SelectOptions { max_tools, mode };
        let selection = select(&task.description, tools, &options);
        let chosen: BTreeSet<&str> = selection.tools.iter().map(|t| t.tool.name()).collect();
        let allowed = eligible(tools, mode);
        let left_out: Vec<&HostTool> = allowed
            .iter()
            .copied()
            .filter(|t| !chosen.contains(t.name()))
            .collect();
        let mut tokens: usize = tools
            .iter()
            .zip(&catalogue.tokens)
            .filter(|(t, _)| chosen.contains(t.name()))
            .map(|(_, n)| n)
            .sum();
        if !left_out.is_empty() {
            tokens += catalogue.find_tools_tokens;
        }
        let missed: Vec<String> = task
            .needs
            .iter()
            .filter(|n| !chosen.contains(n.as_str()))
            .cloned()
            .collect();
        let searched: BTreeSet<&str> = find_tools::find(
            &task.description,
            find_tools::DEFAULT_LIMIT,
            &left_out,
            &options,
        )
        .into_iter()
        .map(HostTool::name)
        .collect();
        let found_by_search: Vec<String> = missed
            .iter()
            .filter(|n| searched.contains(n.as_str()))
            .cloned()
            .collect();
        let hit = task.needs.len() - missed.len();
        sum_all += all_tokens;
        sum_mode += match mode {
            TaskMode::Monitor => read_tokens,
            TaskMode::Act => all_tokens,
        };
        sum_selected += tokens;
        needed += task.needs.len();
        found += hit;
        found_after_search += hit + found_by_search.len();
        selected_count += chosen.len();
        if !task.needs.is_empty() {
            recalls.push(hit as f64 / task.needs.len() as f64);
        }
        results.push(TaskResult {
            mode,
            selected: selection.names().into_iter().map(str::to_owned).collect(),
            tokens,
            missed,
            found_by_search,
        });
    }
    let runs = tasks.len().max(1) as f64;
    Ok(Report {
        tasks: results,
        all_tokens,
        read_tokens,
        saving: 1.0 - sum_selected as f64 / sum_all.max(1) as f64,
        saving_mode: 1.0 - sum_selected as f64 / sum_mode.max(1) as f64,
        needed,
        found,
        found_after_search,
        tasks_needing: recalls.len(),
        complete: recalls.iter().filter(|r| **r >= 1.0).count(),
        mean_recall: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        mean_tools: selected_count as f64 / runs,
        mean_tokens: sum_selected as f64 / runs,
    })
}
