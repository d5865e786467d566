//! Tool selection benchmark: how many schema tokens local selection saves, and whether the
//! tools each task needs survive it.
//!
//! Reads a task set (`benches/tasks.yaml`: descriptions with the tools they need) and a full
//! tool catalogue (`benches/catalogue.yaml`: every tool of DESIGN.md §4 with its description
//! and input schema), selects tools for each task exactly as a run does, and counts the tokens
//! of the tool definitions sent to the model (`{name, description, input_schema}` as JSON) with
//! the cl100k_base tokenizer, for all tools and for the selected ones. Targets: at least 90%
//! fewer tokens at 95% recall or more; the exit status is 1 when a target is missed.
//!
//! `cargo run --release --example selection_bench -- [--max-tools N] [--verbose]
//!  [--tasks FILE] [--catalogue FILE]`

use std::{collections::BTreeSet, path::PathBuf, process::ExitCode, sync::Arc};

use linkmcp_api::{LinkType, task::TaskMode};
use linkmcp_factory::{
    HostTool,
    select::{SelectOptions, select},
};
use linkmcp_toolsets::Access;
use rmcp::model::Tool;
use serde::Deserialize;
use serde_json::{Value, json};

const TARGET_SAVING: f64 = 0.90;
const TARGET_RECALL: f64 = 0.95;

#[derive(Deserialize)]
struct CatalogueEntry {
    name: String,
    access: String,
    #[serde(default)]
    link: Option<String>,
    description: String,
    schema: Value,
}

#[derive(Deserialize)]
struct BenchTask {
    description: String,
    #[serde(default)]
    mode: Option<String>,
    needs: Vec<String>,
}

struct Args {
    max_tools: usize,
    verbose: bool,
    tasks: PathBuf,
    catalogue: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
    let mut args = Args {
        max_tools: 24,
        verbose: false,
        tasks: here.join("tasks.yaml"),
        catalogue: here.join("catalogue.yaml"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--max-tools" => {
                args.max_tools = value("--max-tools")?
                    .parse()
                    .map_err(|e| format!("--max-tools: {e}"))?;
            }
            "--tasks" => args.tasks = value("--tasks")?.into(),
            "--catalogue" => args.catalogue = value("--catalogue")?.into(),
            "--verbose" | "-v" => args.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn load<T: for<'de> Deserialize<'de>>(path: &PathBuf) -> Result<T, String> {
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

/// The tokens of a tool definition as a provider receives it.
fn tool_tokens(bpe: &tiktoken_rs::CoreBPE, tool: &HostTool) -> usize {
    let wire = json!({
        "name": tool.name(),
        "description": tool.description(),
        "input_schema": tool.tool.input_schema.as_ref(),
    });
    bpe.encode_ordinary(&wire.to_string()).len()
}

fn main() -> ExitCode {
    match bench() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("selection_bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn bench() -> Result<bool, String> {
    let args = parse_args()?;
    let catalogue: Vec<CatalogueEntry> = load(&args.catalogue)?;
    let tools = catalogue
        .into_iter()
        .map(host_tool)
        .collect::<Result<Vec<_>, _>>()?;
    let tasks: Vec<BenchTask> = load(&args.tasks)?;
    let bpe = tiktoken_rs::cl100k_base().map_err(|e| format!("cl100k_base: {e}"))?;
    let names: BTreeSet<&str> = tools.iter().map(HostTool::name).collect();
    for task in &tasks {
        if let Some(unknown) = task.needs.iter().find(|n| !names.contains(n.as_str())) {
            return Err(format!("a task needs {unknown}, which the catalogue lacks"));
        }
    }

    let tokens: Vec<usize> = tools.iter().map(|t| tool_tokens(&bpe, t)).collect();
    let all_tokens: usize = tokens.iter().sum();
    let read_tokens: usize = tools
        .iter()
        .zip(&tokens)
        .filter(|(t, _)| t.access == Access::Read)
        .map(|(_, n)| n)
        .sum();
    println!(
        "catalogue: {} tools, {all_tokens} schema tokens (cl100k_base); read tools only: {read_tokens}",
        tools.len()
    );
    println!("tasks: {}, maxTools {}\n", tasks.len(), args.max_tools);
    println!(
        "{:>3}  {:<7} {:>5} {:>7} {:>7}  {:>7}  description",
        "#", "mode", "tools", "tokens", "saved", "recall"
    );

    let (mut sum_all, mut sum_mode, mut sum_selected) = (0usize, 0usize, 0usize);
    let (mut needed, mut found, mut selected_count) = (0usize, 0usize, 0usize);
    let mut recalls = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let mode = match task.mode.as_deref() {
            Some("act") => TaskMode::Act,
            None | Some("monitor") => TaskMode::Monitor,
            Some(other) => return Err(format!("task {}: mode {other:?}", i + 1)),
        };
        let selection = select(
            &task.description,
            &tools,
            &SelectOptions {
                max_tools: args.max_tools,
                mode,
            },
        );
        let chosen: BTreeSet<&str> = selection.tools.iter().map(|t| t.tool.name()).collect();
        let selected_tokens: usize = tools
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| chosen.contains(t.name()))
            .map(|(_, n)| n)
            .sum();
        let missed: Vec<&str> = task
            .needs
            .iter()
            .map(String::as_str)
            .filter(|n| !chosen.contains(n))
            .collect();
        let hit = task.needs.len() - missed.len();
        sum_all += all_tokens;
        sum_mode += match mode {
            TaskMode::Monitor => read_tokens,
            TaskMode::Act => all_tokens,
        };
        sum_selected += selected_tokens;
        needed += task.needs.len();
        found += hit;
        selected_count += chosen.len();
        let recall = if task.needs.is_empty() {
            "-".to_owned()
        } else {
            let r = hit as f64 / task.needs.len() as f64;
            recalls.push(r);
            format!("{:.0}%", r * 100.0)
        };
        let short: String = task.description.chars().take(64).collect();
        println!(
            "{:>3}  {:<7} {:>5} {:>7} {:>6.1}%  {:>7}  {short}",
            i + 1,
            format!("{mode:?}").to_lowercase(),
            chosen.len(),
            selected_tokens,
            100.0 * (1.0 - selected_tokens as f64 / all_tokens as f64),
            recall,
        );
        if args.verbose || !missed.is_empty() {
            if !missed.is_empty() {
                println!("     missed: {}", missed.join(", "));
            }
            if args.verbose {
                println!("     selected: {}", selection.names().join(", "));
            }
        }
    }

    let saving = 1.0 - sum_selected as f64 / sum_all as f64;
    let saving_mode = 1.0 - sum_selected as f64 / sum_mode as f64;
    let recall = found as f64 / needed.max(1) as f64;
    let mean_recall = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    let complete = recalls.iter().filter(|r| **r >= 1.0).count();
    println!();
    println!(
        "schema tokens per run: all tools {:.0}, selected {:.0} (mean {:.1} tools)",
        sum_all as f64 / tasks.len() as f64,
        sum_selected as f64 / tasks.len() as f64,
        selected_count as f64 / tasks.len() as f64,
    );
    println!(
        "token saving: {:.1}% vs all tools; {:.1}% vs the tools the run's mode allows",
        saving * 100.0,
        saving_mode * 100.0
    );
    println!(
        "recall of needed tools: {:.1}% ({found}/{needed}); mean per task {:.1}%; {complete}/{} tasks complete",
        recall * 100.0,
        mean_recall * 100.0,
        recalls.len()
    );
    let met = saving >= TARGET_SAVING && recall >= TARGET_RECALL;
    println!(
        "target (>= {:.0}% fewer tokens at >= {:.0}% recall): {}",
        TARGET_SAVING * 100.0,
        TARGET_RECALL * 100.0,
        if met { "met" } else { "MISSED" }
    );
    Ok(met)
}
