//! The typed parameters of the Loki tools; their doc comments are the descriptions a model
//! reads in each tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;

/// Order of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Newest first (default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Backward => "backward",
            Direction::Forward => "forward",
        }
    }
}

/// Parameters of loki_query.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// A LogQL metric query evaluated at one instant, e.g.
    /// `sum by (app) (count_over_time({namespace="shop"} |= "error" [5m]))`.
    pub query: String,
    /// When to evaluate it: `now` (default), `now-1h`, `-30m`, an RFC 3339 time or unix
    /// seconds.
    #[serde(default)]
    pub time: Option<String>,
    /// Most log lines or series to return (default and maximum: the link's row limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// `backward` (newest first, default) or `forward`.
    #[serde(default)]
    pub direction: Direction,
}

/// Parameters of loki_query_range.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRange {
    /// A LogQL query: a log query such as `{namespace="shop", app="api"} |= "error"`, or a
    /// metric query such as `rate({app="api"} |= "timeout" [1m])`.
    pub query: String,
    /// How far back from `end` to look, e.g. `15m`, `1h` (default `1h`). Instead of `start`.
    #[serde(default)]
    pub since: Option<String>,
    /// Start of the range: `now-1h`, an RFC 3339 time or unix seconds. Instead of `since`.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
    /// Most log lines to return (default and maximum: the link's row limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// `backward` (newest first, default) or `forward` (oldest first).
    #[serde(default)]
    pub direction: Direction,
    /// Resolution of a metric query, e.g. `1m`. Default: Loki's (the range in about 250
    /// steps).
    #[serde(default)]
    pub step: Option<String>,
}

/// Parameters of loki_labels.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// How far back to look, e.g. `6h` (default `1h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Start of the range, instead of `since`.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
}

/// Parameters of loki_label_values.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelValues {
    /// The label, e.g. `namespace`, `app`, `level`.
    pub label: String,
    /// Only from streams matching this selector, e.g. `{namespace="shop"}`.
    #[serde(default)]
    pub query: Option<String>,
    /// How far back to look, e.g. `6h` (default `1h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Start of the range, instead of `since`.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
}

/// Parameters of loki_series.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Stream selectors, at least one, e.g. `{namespace="shop"}`, `{app=~"api|web"}`.
    #[serde(rename = "match")]
    #[schemars(length(min = 1))]
    pub matches: Vec<String>,
    /// How far back to look, e.g. `6h` (default `1h`).
    #[serde(default)]
    pub since: Option<String>,
    /// Start of the range, instead of `since`.
    #[serde(default)]
    pub start: Option<String>,
    /// End of the range: `now` (default).
    #[serde(default)]
    pub end: Option<String>,
}
