//! Tool selection benchmark: how many schema tokens local selection saves, and whether the
//! tools each task needs survive it.
//!
//! Reads task sets (descriptions with the tools they need) and the full tool catalogue
//! (`benches/catalogue.yaml`: every tool of DESIGN.md §4 with its description and input
//! schema), selects tools for each task exactly as a run does (`benches/measure.rs`), and
//! counts the tokens of the tool definitions sent to the model with the cl100k_base tokenizer,
//! for all tools and for the selected ones (with `find_tools`). By default it measures the
//! four sets: `tasks.yaml` (the set selection is tuned on), `heldout.yaml`, `unseen.yaml` and
//! `blind.yaml` (written without looking at the selection code; never tuned on). Targets: at
//! least 90% fewer tokens at 97% recall or more; the exit status is 1 when a set misses them.
//!
//! `cargo run --release --example selection_bench -- [--max-tools N] [--verbose]
//!  [--tasks FILE]... [--catalogue FILE]`

use std::{path::PathBuf, process::ExitCode};

#[path = "../benches/measure.rs"]
mod measure;

use measure::{TARGET_RECALL, TARGET_SAVING};

struct Args {
    max_tools: usize,
    verbose: bool,
    tasks: Vec<PathBuf>,
    catalogue: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
    let mut args = Args {
        max_tools: 24,
        verbose: false,
        tasks: Vec::new(),
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
            "--tasks" => args.tasks.push(value("--tasks")?.into()),
            "--catalogue" => args.catalogue = value("--catalogue")?.into(),
            "--verbose" | "-v" => args.verbose = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tasks.is_empty() {
        args.tasks = ["tasks.yaml", "heldout.yaml", "unseen.yaml", "blind.yaml"]
            .iter()
            .map(|f| here.join(f))
            .collect();
    }
    Ok(args)
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
    let catalogue = measure::load_catalogue(&args.catalogue)?;
    let mut all_met = true;
    let mut summary = Vec::new();
    for path in &args.tasks {
        let tasks = measure::load_tasks(path, &catalogue)?;
        let report = measure::measure(&catalogue, &tasks, args.max_tools)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "== {name}: {} tasks; catalogue {} tools, {} schema tokens (cl100k_base), read tools only {}; maxTools {}",
            tasks.len(),
            catalogue.tools.len(),
            report.all_tokens,
            report.read_tokens,
            args.max_tools
        );
        println!(
            "{:>3}  {:<7} {:>5} {:>7} {:>7}  {:>7}  description",
            "#", "mode", "tools", "tokens", "saved", "recall"
        );
        for (i, (task, result)) in tasks.iter().zip(&report.tasks).enumerate() {
            let recall = if task.needs.is_empty() {
                "-".to_owned()
            } else {
                let hit = task.needs.len() - result.missed.len();
                format!("{:.0}%", 100.0 * hit as f64 / task.needs.len() as f64)
            };
            let short: String = task.description.chars().take(64).collect();
            println!(
                "{:>3}  {:<7} {:>5} {:>7} {:>6.1}%  {:>7}  {short}",
                i + 1,
                format!("{:?}", result.mode).to_lowercase(),
                result.selected.len(),
                result.tokens,
                100.0 * (1.0 - result.tokens as f64 / report.all_tokens as f64),
                recall,
            );
            if !result.missed.is_empty() {
                println!(
                    "     missed: {}; one find_tools search with the task's words brings: {}",
                    result.missed.join(", "),
                    if result.found_by_search.is_empty() {
                        "none".to_owned()
                    } else {
                        result.found_by_search.join(", ")
                    }
                );
            }
            if args.verbose {
                println!("     selected: {}", result.selected.join(", "));
            }
        }
        let met = report.meets_targets();
        all_met &= met;
        let line = format!(
            "{name}: {:.1}% fewer schema tokens ({:.0} of {} per run, {:.1} tools; {:.1}% vs the mode's tools), recall {:.1}% ({}/{}, {}/{} tasks complete), after one find_tools search {:.1}% ({}/{}): target {}",
            report.saving * 100.0,
            report.mean_tokens,
            report.all_tokens,
            report.mean_tools,
            report.saving_mode * 100.0,
            report.recall() * 100.0,
            report.found,
            report.needed,
            report.complete,
            report.tasks_needing,
            report.recall_after_search() * 100.0,
            report.found_after_search,
            report.needed,
            if met { "met" } else { "MISSED" }
        );
        println!("\n{line}\n");
        summary.push(line);
    }
    println!(
        "targets: >= {:.0}% fewer tokens at >= {:.0}% recall",
        TARGET_SAVING * 100.0,
        TARGET_RECALL * 100.0
    );
    for line in summary {
        println!("{line}");
    }
    Ok(all_met)
}
