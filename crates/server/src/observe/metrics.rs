//! The server's Prometheus metrics, served on `/metrics` (prefix `linkmcp_`).
//!
//! Counters and histograms are updated where things happen: tool calls in the registry's call
//! path, authentication failures by the auth layer ([`Metrics::auth_failure`]). Values that
//! are a state rather than an event (open sessions, registry size, readiness) are read when
//! `/metrics` is scraped and set just before encoding, so they cannot drift.
//!
//! Label values are bounded: tools and toolsets are the registered ones (a call to an unknown
//! name is counted under [`UNKNOWN_TOOL`]), outcomes and auth failure reasons are fixed words.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::{Registry, Unit},
};

/// The `tool` label of calls to a name that is not registered (no registered tool can have
/// this name: tool names use only `A-Z a-z 0-9 _ - .`).
pub const UNKNOWN_TOOL: &str = "<unknown>";

/// The content type of the text `/metrics` serves.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the call duration buckets, in seconds: 1 ms to the longest tool timeout.
const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    toolset: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
    toolset: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    toolset: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// What `/metrics` reads at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Open MCP sessions.
    pub active_sessions: usize,
    /// Registered toolsets.
    pub toolsets: usize,
    /// Registered tools.
    pub tools: usize,
    /// Whether the registry holds the declared state.
    pub sync_ready: bool,
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    tool_calls: Family<CallLabels, Counter>,
    tool_call_duration: Family<ToolLabels, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabels, Counter>,
    tool_cache: Family<CacheLabels, Counter>,
    active_sessions: Gauge,
    registry_toolsets: Gauge,
    registry_tools: Gauge,
    sync_ready: Gauge,
    /// Serializes scrapes, so that the gauges set for one are the ones it encodes.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The metrics, registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linkmcp");
        let tool_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls, by tool, toolset and outcome (ok, error, timeout, panic, rate_limited, \
             unknown_tool, cancelled)",
            tool_calls.clone(),
        );
        let tool_call_duration =
            Family::<ToolLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register_with_unit(
            "tool_call_duration",
            "Time from the start of a tool call to its result, by tool and toolset",
            Unit::Seconds,
            tool_call_duration.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused by client authentication, by reason",
            auth_failures.clone(),
        );
        let tool_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "tool_cache",
            "Calls of cached read tools (McpLink spec.cache), by toolset and result (hit, miss)",
            tool_cache.clone(),
        );
        let active_sessions = Gauge::default();
        registry.register(
            "active_sessions",
            "Open MCP sessions (stateless requests are not sessions)",
            active_sessions.clone(),
        );
        let registry_toolsets = Gauge::default();
        registry.register(
            "registry_toolsets",
            "Toolsets registered: the built-in ones and one per served link",
            registry_toolsets.clone(),
        );
        let registry_tools = Gauge::default();
        registry.register(
            "registry_tools",
            "Tools registered, as listed to clients",
            registry_tools.clone(),
        );
        let sync_ready = Gauge::default();
        registry.register(
            "sync_ready",
            "1 once the registry serves the declared state, 0 before",
            sync_ready.clone(),
        );
        registry.register(
            "build",
            "The server's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Self {
            registry,
            tool_calls,
            tool_call_duration,
            auth_failures,
            tool_cache,
            active_sessions,
            registry_toolsets,
            registry_tools,
            sync_ready,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one tool call with its outcome; `duration` is observed for calls that ran.
    pub fn tool_call(
        &self,
        tool: &str,
        toolset: &str,
        outcome: &'static str,
        duration: Option<Duration>,
    ) {
        self.tool_calls
            .get_or_create(&CallLabels {
                tool: tool.to_owned(),
                toolset: toolset.to_owned(),
                outcome,
            })
            .inc();
        if let Some(duration) = duration {
            self.tool_call_duration
                .get_or_create(&ToolLabels {
                    tool: tool.to_owned(),
                    toolset: toolset.to_owned(),
                })
                .observe(duration.as_secs_f64());
        }
    }

    /// Counts a call of a cached tool: `result` is `hit` or `miss`.
    pub fn tool_cache(&self, toolset: &str, result: &str) {
        let result = if result == "hit" { "hit" } else { "miss" };
        self.tool_cache
            .get_or_create(&CacheLabels {
                toolset: toolset.to_owned(),
                result,
            })
            .inc();
    }

    /// Counts a request refused by authentication. `reason` should be one of a few fixed
    /// words (`missing_token`, `invalid_token`, `expired`, `insufficient_scope`, ...), never
    /// anything taken from the request.
    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format, with the scrape-time values of `sample`.
    pub fn encode(&self, sample: Sample) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.active_sessions
            .set(gauge_value(sample.active_sessions));
        self.registry_toolsets.set(gauge_value(sample.toolsets));
        self.registry_tools.set(gauge_value(sample.tools));
        self.sync_ready.set(i64::from(sample.sync_ready));
        let mut out = String::new();
        // Writing to a String cannot fail; a metric that could not be encoded would surface
        // as a truncated scrape, which Prometheus reports.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        out
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_durations_are_counted_by_label() {
        let metrics = Metrics::new();
        metrics.tool_call("ping", "core", "ok", Some(Duration::from_millis(3)));
        metrics.tool_call("ping", "core", "ok", Some(Duration::from_millis(3)));
        metrics.tool_call(UNKNOWN_TOOL, "", "unknown_tool", None);
        metrics.auth_failure("invalid_token");
        let text = metrics.encode(Sample {
            active_sessions: 2,
            toolsets: 1,
            tools: 2,
            sync_ready: true,
        });
        for line in [
            r#"linkmcp_tool_calls_total{tool="ping",toolset="core",outcome="ok"} 2"#,
            r#"linkmcp_tool_calls_total{tool="<unknown>",toolset="",outcome="unknown_tool"} 1"#,
            r#"linkmcp_tool_call_duration_seconds_count{tool="ping",toolset="core"} 2"#,
            r#"linkmcp_tool_call_duration_seconds_bucket{le="0.005",tool="ping",toolset="core"} 2"#,
            r#"linkmcp_auth_failures_total{reason="invalid_token"} 1"#,
            "linkmcp_active_sessions 2",
            "linkmcp_registry_toolsets 1",
            "linkmcp_registry_tools 2",
            "linkmcp_sync_ready 1",
            concat!(
                r#"linkmcp_build_info{version=""#,
                env!("CARGO_PKG_VERSION"),
                r#""} 1"#
            ),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains(r#"tool_call_duration_seconds_count{tool="<unknown>""#),
            "calls that did not run have no duration"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
