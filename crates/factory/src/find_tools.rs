//! `find_tools`: the built-in tool a run uses to ask for tools its selection left out.
//!
//! Local selection ([`crate::select`]) offers a run a few tools; when the model finds it needs
//! one it was not offered, it calls `find_tools` with what it is looking for. The loop answers
//! from the tools the run may use (its mode's, never the Dark Factory's own) that it was not
//! offered yet, ranked the same way selection ranks, and adds the matches to the tools of the
//! next model call. A missed tool then costs one extra round trip instead of a failed run; the
//! run counts these searches (`RunOutcome::tool_searches`, shown in status and history).
//!
//! The tool is handled inside the loop, not by the host: it reads no system and needs no
//! identity, and what it returns depends on what this run was offered.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    host::HostTool,
    provider::ToolSpec,
    select::{SelectOptions, select},
};

/// The tool's name. No host tool may shadow it: a run offers the built-in one.
pub const FIND_TOOLS: &str = "find_tools";

/// Tools one search adds when it asks for no number.
pub const DEFAULT_LIMIT: usize = 5;
/// Most tools one search adds.
pub const MAX_LIMIT: usize = 10;

/// The tool as the model sees it.
pub fn spec() -> ToolSpec {
    ToolSpec {
        name: FIND_TOOLS.to_owned(),
        description: "Get a tool you were not offered: say what it should do (e.g. \"p99 \
                      latency over time\", \"insert a row into PostgreSQL\"); the best \
                      matches are added to your tools for the next step."
            .to_owned(),
        input_schema: json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What the tool should do."},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
            },
            "required": ["query"],
            "additionalProperties": false
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
}

/// A search's arguments, or a message saying what is wrong with them.
pub fn parse(arguments: &Value) -> Result<(String, usize), String> {
    let args: Args = serde_json::from_value(arguments.clone()).map_err(|e| {
        format!(
            "`{FIND_TOOLS}` was not run: {e}; pass {{\"query\": \"what the tool should do\"}} \
             and optionally \"limit\" (1 to {MAX_LIMIT})"
        )
    })?;
    let query = args.query.trim().to_owned();
    if query.is_empty() {
        return Err(format!(
            "`{FIND_TOOLS}` was not run: `query` is empty; describe what the tool should do"
        ));
    }
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    Ok((query, limit))
}

/// The best matches for `query` among `candidates` (the run's tools not offered yet), at most
/// `limit`, ranked as selection ranks a task description.
pub fn find<'t>(
    query: &str,
    limit: usize,
    candidates: &[&'t HostTool],
    options: &SelectOptions,
) -> Vec<&'t HostTool> {
    let owned: Vec<HostTool> = candidates.iter().map(|t| (*t).clone()).collect();
    let selection = select(
        query,
        &owned,
        &SelectOptions {
            max_tools: limit + crate::select::CORE_TOOLS.len(),
            ..*options
        },
    );
    selection
        .tools
        .iter()
        .filter(|s| !crate::select::CORE_TOOLS.contains(&s.tool.name()))
        .filter_map(|s| {
            candidates
                .iter()
                .copied()
                .find(|t| t.name() == s.tool.name())
        })
        .take(limit)
        .collect()
}

/// What the model reads back: the tools added (name, whether it writes, description), or why
/// nothing was.
pub fn answer(query: &str, found: &[&HostTool], wire: impl Fn(&str) -> String) -> String {
    if found.is_empty() {
        return format!(
            "No further tool matches \"{query}\": every tool that could was already offered, \
             or none does this. Work with the tools you have, or say in your report what is \
             missing."
        );
    }
    let mut text = format!(
        "Added {} tool(s) for \"{query}\"; call them by name from your next step:\n",
        found.len()
    );
    for tool in found {
        let access = match tool.access {
            linkmcp_toolsets::Access::Write => " (changes data)",
            linkmcp_toolsets::Access::Read => "",
        };
        let description: String = tool.description().chars().take(300).collect();
        text.push_str(&format!(
            "- {}{access}: {}\n",
            wire(tool.name()),
            description.trim()
        ));
    }
    text
}
