//! The typed parameters of the Prometheus tools; their doc comments are the descriptions a
//! model reads in each tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of prom_query.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// The PromQL expression, e.g. `up`, `sum by (job) (rate(http_requests_total[5m]))`.
    pub query: String,
    /// When to evaluate it: `now` (default), `now-1h`, `-30m`, an RFC 3339 time
    /// (`2024-05-01T12:00:00Z`) or unix seconds.
    #[serde(default)]
    pub time: Option<String>,
}

/// Parameters of prom_query_range.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRange {
    /// The PromQL expression, e.g. `rate(node_cpu_seconds_total{mode!="idle"}[5m])`.
    pub query: String,
    /// Start of the range: `now-1h` (default), `-6h`, an RFC 3339 time or unix seconds.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default), an RFC 3339 time or unix seconds.
    #[serde(default)]
    pub end: Option<String>,
    /// Resolution, e.g. `30s`, `5m`. Default: the finest step that keeps the range within
    /// `max_points` points; a finer step than that is raised, and the result says so.
    #[serde(default)]
    pub step: Option<String>,
    /// Most points per series (default 250, at most 1000); sets the coarsest step needed.
    #[serde(default)]
    #[schemars(range(min = 10, max = 1000))]
    pub max_points: Option<u32>,
    /// Also return the series as a PNG line chart (image content), for people to look at.
    #[serde(default)]
    pub chart: bool,
}

/// Alert states to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Alerts whose condition held for their `for` duration.
    Firing,
    /// Alerts whose condition holds but not yet for their `for` duration.
    Pending,
}

/// Parameters of prom_alerts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Only alerts in this state (`firing` or `pending`). Default: both.
    #[serde(default)]
    pub state: Option<AlertState>,
    /// Only alerts whose name (`alertname`) contains this text, case-insensitively.
    #[serde(default)]
    pub name_contains: Option<String>,
}

/// Which targets to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Targets being scraped (default).
    #[default]
    Active,
    /// Targets service discovery found and relabelling dropped.
    Dropped,
    /// Both.
    Any,
}

/// Target health to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    Unknown,
}

/// Parameters of prom_targets.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// `active` (default), `dropped` or `any`.
    #[serde(default)]
    pub state: TargetState,
    /// Only active targets with this health: `up`, `down` or `unknown`.
    #[serde(default)]
    pub health: Option<Health>,
    /// Only targets of this scrape pool (usually the job name).
    #[serde(default)]
    pub scrape_pool: Option<String>,
}

/// Rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Alerting rules.
    Alert,
    /// Recording rules.
    Record,
}

/// Parameters of prom_rules.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Only `alert` (alerting) or `record` (recording) rules. Default: both.
    #[serde(default)]
    pub kind: Option<RuleKind>,
    /// Only rules whose name contains this text, case-insensitively.
    #[serde(default)]
    pub name_contains: Option<String>,
}

/// Parameters of prom_label_values.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelValues {
    /// The label whose values to list, e.g. `job`, `namespace`, `__name__` (metric names).
    /// Empty: list the label names instead.
    #[serde(default)]
    pub label: Option<String>,
    /// Only from series matching these selectors, e.g. `up{job="node"}`.
    #[serde(default, rename = "match")]
    pub matches: Vec<String>,
    /// Start of the time range looked at: `now-1h` (default), an RFC 3339 time or unix
    /// seconds.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
}

/// Parameters of prom_series.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Series selectors, at least one, e.g. `up`, `{__name__=~"http_.*", job="api"}`.
    #[serde(rename = "match")]
    #[schemars(length(min = 1))]
    pub matches: Vec<String>,
    /// Start of the time range: `now-1h` (default), an RFC 3339 time or unix seconds.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
}

/// Parameters of prom_metadata.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// One metric's name, e.g. `http_requests_total`. Empty: every metric (capped).
    #[serde(default)]
    pub metric: Option<String>,
    /// Only metrics whose name contains this text, case-insensitively.
    #[serde(default)]
    pub name_contains: Option<String>,
}
