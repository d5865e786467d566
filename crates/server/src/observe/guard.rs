//! What every tool call passes through around the tool itself, whoever makes it.
//!
//! [`Registry::call`](crate::registry::Registry::call) is the one path from MCP clients, REST
//! clients and agent runs to a tool; it asks the [`Guards`] to admit the call (the per-tool
//! rate limit), runs the tool, and hands the result back to [`Guards::release`], which in this
//! order scrubs known secret values, hides error details when `maskErrorDetails` is on, and
//! caps the text at the call's `max_output_bytes`. Scrubbing comes before the cap so that a
//! secret cut in half at the limit cannot survive as a fragment.
//!
//! The policy (masking, rate) can be replaced at run time, as when an McpServer is edited;
//! the scrubber follows the desired state on its own (see [`super::scrub::follow`]).

use std::{
    hash::{BuildHasher as _, Hasher as _},
    num::NonZeroU32,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use linkmcp_toolsets::{CallContext, output};
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptResult, JsonObject, MetaObject, ResourceContents,
};

use super::{
    audit::{CallRecord, Outcome},
    limit::ToolRateLimit,
    metrics::Metrics,
    scrub::Scrubber,
};

/// The `_meta` key set to `true` on a result whose text was cut.
pub const TRUNCATED_META_KEY: &str = "linkmcp.io/truncated";

/// The settings the guards apply to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallPolicy {
    /// Replace the text of calls the tool failed (its error result, or a panic) by a
    /// reference the operator can look up in the log. The server's own refusals (timeout,
    /// rate limit) reveal nothing internal and keep their text.
    pub mask_error_details: bool,
    /// At most this many calls per minute to each tool; `None`: unlimited.
    pub calls_per_minute_per_tool: Option<NonZeroU32>,
}

struct ActivePolicy {
    policy: CallPolicy,
    /// Shared by successive policies with the same rate, so that editing another setting
    /// does not refill every bucket.
    limit: Option<Arc<ToolRateLimit>>,
}

/// A result ready to go out, with what the audit line says about it.
#[derive(Debug)]
pub struct Released {
    /// The result to send.
    pub result: CallToolResult,
    /// Whether its text was cut, here or by the toolset.
    pub truncated: bool,
    /// The correlation id of a masked error.
    pub reference: Option<String>,
}

/// The scrubber, metrics and policy of one registry.
pub struct Guards {
    scrubber: Arc<Scrubber>,
    metrics: Arc<Metrics>,
    policy: RwLock<Arc<ActivePolicy>>,
}

impl Default for Guards {
    fn default() -> Self {
        Self::new(Arc::new(Scrubber::new()), Arc::new(Metrics::new()))
    }
}

impl Guards {
    /// Guards scrubbing with `scrubber` and counting in `metrics`, with the default policy
    /// (no masking, no rate limit).
    pub fn new(scrubber: Arc<Scrubber>, metrics: Arc<Metrics>) -> Self {
        Self {
            scrubber,
            metrics,
            policy: RwLock::new(Arc::new(ActivePolicy {
                policy: CallPolicy::default(),
                limit: None,
            })),
        }
    }

    /// The scrubber applied to every result, error and audit line.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The policy in force.
    pub fn policy(&self) -> CallPolicy {
        self.active().policy
    }

    /// Replaces the policy for the calls that arrive from now on. The rate limit's buckets are
    /// kept when the rate does not change.
    pub fn set_policy(&self, policy: CallPolicy) {
        let mut current = self.policy.write().unwrap_or_else(PoisonError::into_inner);
        if current.policy == policy {
            return;
        }
        let limit = match (policy.calls_per_minute_per_tool, &current.limit) {
            (None, _) => None,
            (Some(rate), Some(limit)) if limit.calls_per_minute() == rate => Some(limit.clone()),
            (Some(rate), _) => Some(Arc::new(ToolRateLimit::per_minute(rate))),
        };
        *current = Arc::new(ActivePolicy { policy, limit });
        tracing::info!(
            mask_error_details = policy.mask_error_details,
            calls_per_minute_per_tool = policy.calls_per_minute_per_tool.map(NonZeroU32::get),
            "tool call policy set"
        );
    }

    fn active(&self) -> Arc<ActivePolicy> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Opens the audit record of a call.
    pub fn record<'a>(
        &'a self,
        tool: &'a str,
        args: &JsonObject,
        ctx: &'a CallContext,
    ) -> CallRecord<'a> {
        CallRecord::start(&self.metrics, &self.scrubber, tool, args, ctx)
    }

    /// Opens the audit record of a `method` request (`resources/read`, `prompts/get`) for the
    /// resource or prompt `name`.
    pub fn record_method<'a>(
        &'a self,
        method: &'static str,
        name: &'a str,
        args: &JsonObject,
        ctx: &'a CallContext,
    ) -> CallRecord<'a> {
        CallRecord::start_method(method, &self.metrics, &self.scrubber, name, args, ctx)
    }

    /// `None` when a call to `tool` may run now; otherwise the result that refuses it.
    pub fn admit(&self, tool: &str) -> Option<CallToolResult> {
        let active = self.active();
        let limit = active.limit.as_ref()?;
        match limit.check(tool) {
            Ok(()) => None,
            Err(retry_after) => Some(limit.refusal(tool, retry_after)),
        }
    }

    /// Makes a tool's result fit to send: scrubbed, masked if it failed and masking is on,
    /// and capped at `ctx.max_output_bytes`.
    pub fn release(
        &self,
        tool: &str,
        mut result: CallToolResult,
        outcome: Outcome,
        ctx: &CallContext,
    ) -> Released {
        self.scrubber.scrub_result(&mut result);
        let mut reference = None;
        if self.active().policy.mask_error_details
            && matches!(outcome, Outcome::Error | Outcome::Panic)
        {
            let id = correlation_id();
            tracing::warn!(
                tool,
                reference = %id,
                error = %error_text(&result),
                "tool call failed; details hidden from the client (maskErrorDetails)"
            );
            result = output::error(format!("the tool failed; reference {id}"));
            reference = Some(id);
        }
        let truncated = cap(&mut result, ctx.max_output_bytes);
        Released {
            result,
            truncated,
            reference,
        }
    }
}

impl Guards {
    /// The message of a failed resource read or prompt request (`what`), fit to send:
    /// scrubbed, or replaced by a reference the operator can look up when `maskErrorDetails`
    /// is on. Returns the message and the reference.
    pub fn release_failure(&self, what: &str, message: &str) -> (String, Option<String>) {
        let message = self.scrubber.scrub(message).into_owned();
        if !self.active().policy.mask_error_details {
            return (message, None);
        }
        let id = correlation_id();
        tracing::warn!(
            what,
            reference = %id,
            error = %message,
            "request failed; details hidden from the client (maskErrorDetails)"
        );
        (format!("{what} failed; reference {id}"), Some(id))
    }

    /// Resource contents fit to send: URIs and text scrubbed, then text capped so that all of it together
    /// fits in `ctx.max_output_bytes` (binary contents are neither). Returns whether a text was
    /// cut.
    pub fn release_contents(&self, contents: &mut [ResourceContents], ctx: &CallContext) -> bool {
        let mut remaining = ctx.max_output_bytes;
        let mut truncated = false;
        for content in contents {
            match content {
                ResourceContents::TextResourceContents { uri, .. }
                | ResourceContents::BlobResourceContents { uri, .. } => {
                    self.scrubber.scrub_string(uri);
                }
                // A future kind of contents: no URI known here to scrub.
                _ => {}
            }
            if let ResourceContents::TextResourceContents { text, .. } = content {
                self.scrubber.scrub_string(text);
                if text.len() <= remaining {
                    remaining -= text.len();
                } else {
                    let (cut, _) = output::cap_text(text, remaining);
                    *text = cut;
                    remaining = 0;
                    truncated = true;
                }
            }
        }
        truncated
    }

    /// A prompt's messages fit to send: every text in them scrubbed.
    pub fn release_prompt(&self, result: GetPromptResult) -> GetPromptResult {
        let Ok(mut value) = serde_json::to_value(&result) else {
            return result;
        };
        if !self.scrubber.scrub_json(&mut value) {
            return result;
        }
        // The scrubbed value has the same shape; should it not read back, send nothing of it.
        serde_json::from_value(value).unwrap_or_else(|_| GetPromptResult::new(Vec::new()))
    }
}

/// The text of a failed result, as logged when it is masked.
fn error_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A short id, unique within the process and hard to guess across restarts.
fn correlation_id() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    // RandomState's keys are random per process (and per thread); hashing a sequence number
    // with them gives distinct ids without a random-number dependency.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(SEQUENCE.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

/// Cuts the text of `result` so that all of it together fits in `max_bytes`; marks the result
/// truncated (`_meta`) if it was cut here or carries a toolset's truncation line. Returns
/// whether it is truncated.
pub fn cap(result: &mut CallToolResult, max_bytes: usize) -> bool {
    let mut remaining = max_bytes;
    let mut truncated = false;
    for block in &mut result.content {
        let text = match block {
            ContentBlock::Text(text) => &mut text.text,
            ContentBlock::Resource(embedded) => match &mut embedded.resource {
                ResourceContents::TextResourceContents { text, .. } => text,
                // Binary contents are not text to cap.
                _ => continue,
            },
            // Images, audio and links are not text either.
            _ => continue,
        };
        if text.len() <= remaining {
            remaining -= text.len();
            truncated |= carries_truncation_line(text);
        } else {
            let (cut, _) = output::cap_text(text, remaining);
            *text = cut;
            remaining = 0;
            truncated = true;
        }
    }
    if truncated {
        result
            .meta
            .get_or_insert_with(MetaObject::default)
            .0
            .insert(TRUNCATED_META_KEY.to_owned(), true.into());
    }
    truncated
}

/// Whether `text` ends with the line [`output::cap_text`] appends.
fn carries_truncation_line(text: &str) -> bool {
    let last = text.rsplit('\n').next().unwrap_or(text);
    last.starts_with("[truncated: ") && last.ends_with("; narrow the request]")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn text(result: &CallToolResult) -> &str {
        &result.content[0].as_text().unwrap().text
    }

    fn ctx(max_output_bytes: usize) -> CallContext {
        CallContext::new("test").with_max_output_bytes(max_output_bytes)
    }

    #[test]
    fn long_text_is_capped_and_marked() {
        let mut result = output::ok_text("x".repeat(5000));
        assert!(cap(&mut result, 1024));
        assert!(text(&result).starts_with(&"x".repeat(1024)));
        assert!(
            text(&result).ends_with("[truncated: 1024 of 5000 bytes shown; narrow the request]"),
            "{}",
            text(&result)
        );
        assert_eq!(
            result.meta.unwrap().0.get(TRUNCATED_META_KEY),
            Some(&json!(true))
        );
    }

    #[test]
    fn the_cap_applies_to_all_text_blocks_together() {
        let mut result = CallToolResult::success(vec![
            ContentBlock::text("a".repeat(600)),
            ContentBlock::text("b".repeat(600)),
        ]);
        assert!(cap(&mut result, 1000));
        let second = &result.content[1].as_text().unwrap().text;
        assert_eq!(text(&result).len(), 600);
        assert!(second.starts_with(&"b".repeat(400)), "{second}");
        assert!(second.contains("[truncated: 400 of 600 bytes shown"));
    }

    #[test]
    fn short_text_is_untouched_and_unmarked() {
        let mut result = output::ok_json(&json!({"n": 1}), "one row");
        assert!(!cap(&mut result, 1024));
        assert_eq!(text(&result), "one row");
        assert!(result.meta.is_none());
    }

    #[test]
    fn a_toolset_truncation_is_recognised() {
        let (capped, _) = output::cap_text(&"y".repeat(100), 10);
        let mut result = output::ok_text(capped);
        assert!(cap(&mut result, 1024));
        assert!(result.meta.is_some());
    }

    #[test]
    fn release_scrubs_before_capping() {
        let secret = "abcdefghijklmnop";
        let guards = Guards::new(Arc::new(Scrubber::with_values([secret])), Arc::default());
        // Without scrubbing first, the cut at 1024 bytes would leave "abcdefgh".
        let result = output::ok_text(format!("{}{secret}", "x".repeat(1016)));
        let released = guards.release("t", result, Outcome::Ok, &ctx(1024));
        assert!(released.truncated);
        assert!(!text(&released.result).contains("abcd"));
    }

    #[test]
    fn masking_hides_errors_behind_a_reference() {
        let guards = Guards::default();
        guards.set_policy(CallPolicy {
            mask_error_details: true,
            calls_per_minute_per_tool: None,
        });
        let failed = output::error("relation \"secret_table\" does not exist");
        let released = guards.release("pg_query", failed, Outcome::Error, &ctx(4096));
        let reference = released.reference.clone().unwrap();
        assert_eq!(reference.len(), 16);
        assert_eq!(released.result.is_error, Some(true));
        assert_eq!(
            text(&released.result),
            format!("the tool failed; reference {reference}")
        );

        let other = guards.release("pg_query", output::error("x"), Outcome::Error, &ctx(4096));
        assert_ne!(
            other.reference.unwrap(),
            reference,
            "references are distinct"
        );

        let ok = guards.release("pg_query", output::ok_text("fine"), Outcome::Ok, &ctx(4096));
        assert_eq!(text(&ok.result), "fine");
        assert!(ok.reference.is_none());
        let timeout = output::error("did not finish within the time limit");
        let timeout = guards.release("pg_query", timeout, Outcome::Timeout, &ctx(4096));
        assert!(
            text(&timeout.result).contains("time limit"),
            "the server's own timeout message reveals nothing and stays"
        );
    }

    #[test]
    fn the_rate_limit_refuses_and_survives_an_unrelated_policy_change() {
        let guards = Guards::default();
        assert!(guards.admit("t").is_none(), "no limit by default");
        let limited = CallPolicy {
            mask_error_details: false,
            calls_per_minute_per_tool: NonZeroU32::new(2),
        };
        guards.set_policy(limited);
        assert!(guards.admit("t").is_none());
        guards.set_policy(CallPolicy {
            mask_error_details: true,
            ..limited
        });
        assert!(guards.admit("t").is_none());
        let refused = guards
            .admit("t")
            .expect("the third call in a minute is refused");
        assert_eq!(refused.is_error, Some(true));
        assert!(text(&refused).contains("at most 2 times per minute"));

        guards.set_policy(CallPolicy::default());
        assert!(guards.admit("t").is_none(), "the limit can be lifted");
    }
}
