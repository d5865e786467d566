//! The audit trail: one structured log line per tool call, whoever made it (an MCP client, a
//! REST client, an agent run), and per resource read and prompt request (which may reach a
//! backend too), with target [`TARGET`] and the request's `method`.
//!
//! The line is written by a [`CallRecord`] that the registry opens when a call arrives and
//! finishes when its result is ready; a call abandoned half-way (the client went away, the
//! request was cancelled) is written by the record's `Drop` with outcome `cancelled`, so every
//! call leaves exactly one line, and the call counters in [`Metrics`] are updated from the same
//! place. Arguments are scrubbed of secret values before anything is cut, so a secret cannot
//! survive as a fragment, then long values are shortened so one call cannot flood the log.

use std::time::{Duration, Instant};

use linkmcp_toolsets::CallContext;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::{
    metrics::{Metrics, UNKNOWN_TOOL},
    scrub::Scrubber,
};

/// The `tracing` target of audit lines; route or filter on it (`RUST_LOG=linkmcp::audit=info`).
pub const TARGET: &str = "linkmcp::audit";

/// The `method` of a tool call's audit line.
pub const TOOLS_CALL: &str = "tools/call";
/// The `method` of a resource read's audit line.
pub const RESOURCES_READ: &str = "resources/read";
/// The `method` of a prompt request's audit line.
pub const PROMPTS_GET: &str = "prompts/get";

/// Longest string argument kept whole in an audit line, in bytes.
const MAX_VALUE_BYTES: usize = 256;
/// Most array items kept in an audit line.
const MAX_ITEMS: usize = 32;
/// Longest rendering of all arguments in an audit line, in bytes.
const MAX_ARGUMENTS_BYTES: usize = 4096;
/// Longest tool name written for a call to an unknown tool (the name comes from the client).
const MAX_UNKNOWN_NAME_BYTES: usize = 128;

/// How a call ended, as audited and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The tool returned a result.
    Ok,
    /// The tool returned an `isError` result.
    Error,
    /// The tool did not finish within its time limit.
    Timeout,
    /// The tool panicked.
    Panic,
    /// The call was refused by the per-tool rate limit.
    RateLimited,
    /// No tool has the requested name.
    UnknownTool,
    /// The call was abandoned before it finished (the client cancelled or went away).
    Cancelled,
}

impl Outcome {
    /// The word written in the audit line and the metrics' `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Panic => "panic",
            Outcome::RateLimited => "rate_limited",
            Outcome::UnknownTool => "unknown_tool",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Whether the tool itself ran (so the call's duration says something about it).
    fn ran(self) -> bool {
        matches!(
            self,
            Outcome::Ok | Outcome::Error | Outcome::Timeout | Outcome::Panic | Outcome::Cancelled
        )
    }
}

/// One call in progress; writes its audit line and counts it once, when finished or dropped.
pub struct CallRecord<'a> {
    metrics: &'a Metrics,
    /// `tools/call`, `resources/read` or `prompts/get`.
    method: &'static str,
    /// The tool, resource or prompt name.
    tool: &'a str,
    toolset: Option<String>,
    identity: &'a str,
    /// Rendered only when audit lines are enabled.
    arguments: Option<String>,
    started: Instant,
    finished: bool,
}

impl<'a> CallRecord<'a> {
    /// Opens the record of a call to `tool` with `args` by `ctx.identity`.
    pub fn start(
        metrics: &'a Metrics,
        scrubber: &Scrubber,
        tool: &'a str,
        args: &JsonObject,
        ctx: &'a CallContext,
    ) -> Self {
        Self::start_method(TOOLS_CALL, metrics, scrubber, tool, args, ctx)
    }

    /// Opens the record of a `method` request (`resources/read`, `prompts/get`) for the
    /// resource or prompt `name`. Only tool calls are counted in the tool-call metrics.
    pub fn start_method(
        method: &'static str,
        metrics: &'a Metrics,
        scrubber: &Scrubber,
        name: &'a str,
        args: &JsonObject,
        ctx: &'a CallContext,
    ) -> Self {
        let arguments = tracing::enabled!(target: TARGET, tracing::Level::INFO)
            .then(|| render_arguments(args, scrubber));
        Self {
            metrics,
            method,
            tool: name,
            toolset: None,
            identity: &ctx.identity,
            arguments,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Names the toolset (`core`, `link/<name>`) that serves the tool.
    pub fn set_toolset(&mut self, toolset: &str) {
        self.toolset = Some(toolset.to_owned());
    }

    /// Writes the audit line and counts the call. `reference` is the correlation id of an
    /// error whose details were hidden from the client.
    pub fn finish(mut self, outcome: Outcome, truncated: bool, reference: Option<&str>) {
        self.write(outcome, truncated, reference);
    }

    fn write(&mut self, outcome: Outcome, truncated: bool, reference: Option<&str>) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let toolset = self.toolset.as_deref().unwrap_or_default();
        let (tool, label) = if outcome == Outcome::UnknownTool {
            (cut(self.tool, MAX_UNKNOWN_NAME_BYTES), UNKNOWN_TOOL)
        } else {
            (self.tool.to_owned(), self.tool)
        };
        if self.method == TOOLS_CALL {
            self.metrics.tool_call(
                label,
                toolset,
                outcome.as_str(),
                outcome.ran().then_some(elapsed),
            );
        }
        tracing::info!(
            target: TARGET,
            method = self.method,
            identity = self.identity,
            tool = %tool,
            toolset,
            arguments = self.arguments.as_deref().unwrap_or_default(),
            duration_ms = duration_ms(elapsed),
            outcome = outcome.as_str(),
            truncated,
            reference,
            "{}",
            match self.method {
                RESOURCES_READ => "resource read",
                PROMPTS_GET => "prompt request",
                _ => "tool call",
            }
        );
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.write(Outcome::Cancelled, false, None);
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The arguments as one line of JSON: scrubbed, then with long strings and arrays shortened,
/// then cut to [`MAX_ARGUMENTS_BYTES`].
pub fn render_arguments(args: &JsonObject, scrubber: &Scrubber) -> String {
    let mut value = Value::Object(args.clone());
    scrubber.scrub_json(&mut value);
    shorten(&mut value);
    cut(&value.to_string(), MAX_ARGUMENTS_BYTES)
}

fn shorten(value: &mut Value) {
    match value {
        Value::String(text) if text.len() > MAX_VALUE_BYTES => {
            let total = text.len();
            let mut short = cut(text, MAX_VALUE_BYTES);
            short.push_str(&format!("({total} bytes)"));
            *text = short;
        }
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                let more = items.len() - MAX_ITEMS;
                items.truncate(MAX_ITEMS);
                items.push(Value::String(format!("… {more} more items")));
            }
            items.iter_mut().for_each(shorten);
        }
        Value::Object(map) => map.values_mut().for_each(shorten),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn arguments_are_scrubbed_before_they_are_cut() {
        // The secret straddles the cut at 256 bytes: scrubbing first leaves no fragment.
        let secret = "s3cret-value-123";
        let scrubber = Scrubber::with_values([secret]);
        let sql = format!("{}{secret}", "x".repeat(250));
        let line = render_arguments(&object(json!({"sql": sql, "limit": 5})), &scrubber);
        assert!(!line.contains("s3cr"), "{line}");
        // The replacement is what gets cut.
        assert!(line.contains("[REDAC"), "{line}");
        assert!(line.contains(r#""limit":5"#), "{line}");
    }

    #[test]
    fn long_values_and_arrays_are_shortened() {
        let scrubber = Scrubber::new();
        let long = "é".repeat(300);
        let line = render_arguments(
            &object(json!({"text": long, "ids": (0..40).collect::<Vec<_>>()})),
            &scrubber,
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        let text = parsed["text"].as_str().unwrap();
        assert!(text.ends_with("…(600 bytes)"), "{text}");
        assert!(text.len() < 300, "{}", text.len());
        let ids = parsed["ids"].as_array().unwrap();
        assert_eq!(ids.len(), MAX_ITEMS + 1);
        assert_eq!(ids[MAX_ITEMS], "… 8 more items");
    }

    #[test]
    fn the_whole_line_is_bounded() {
        let scrubber = Scrubber::new();
        let many: JsonObject = (0..100)
            .map(|i| (format!("k{i}"), Value::String("v".repeat(200))))
            .collect();
        let line = render_arguments(&many, &scrubber);
        assert!(
            line.len() <= MAX_ARGUMENTS_BYTES + "…".len(),
            "{}",
            line.len()
        );
        assert!(line.ends_with('…'));
    }

    #[test]
    fn a_dropped_record_counts_as_cancelled() {
        let metrics = Metrics::new();
        let scrubber = Scrubber::new();
        let ctx = CallContext::new("tester");
        let mut record = CallRecord::start(&metrics, &scrubber, "slow", &JsonObject::new(), &ctx);
        record.set_toolset("link/x");
        drop(record);
        let record = CallRecord::start(&metrics, &scrubber, "slow", &JsonObject::new(), &ctx);
        record.finish(Outcome::Ok, false, None);
        let text = metrics.encode(super::super::metrics::Sample::default());
        assert!(
            text.contains(
                r#"linkmcp_tool_calls_total{tool="slow",toolset="link/x",outcome="cancelled"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"linkmcp_tool_calls_total{tool="slow",toolset="",outcome="ok"} 1"#),
            "{text}"
        );
    }
}
