//! The `prometheus` link type: PromQL and the state of a Prometheus server, as eight read
//! tools (prom_query, prom_query_range, prom_alerts, prom_targets, prom_rules,
//! prom_label_values, prom_series, prom_metadata). Prometheus's HTTP API has no writes, so
//! neither does the link.
//!
//! Calls go through the shared HTTP client ([`crate::http`]): bearer `token` or basic auth,
//! TLS from `ca.crt`, the link's timeout (also sent as Prometheus's own query `timeout`), and a
//! byte cap on every answer. Times accept `now-1h`, `-30m`, RFC 3339 and unix seconds
//! ([`crate::time`]); a range query's step is raised so that no series exceeds its point
//! budget. Results are rendered for a model ([`crate::series`]) with the full typed data in
//! structured content up to the output cap, and a range can come back as a PNG chart
//! ([`chart`]).

mod api;
mod chart;
pub mod params;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::PrometheusBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::http::{HttpClient, HttpSettings};
use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output, with_args};

use api::Api;

/// Points per series of a range query when the call does not say.
pub const DEFAULT_MAX_POINTS: usize = 250;

/// The toolset of one Prometheus link.
pub struct PrometheusToolset {
    defs: Vec<ToolDef>,
    api: Api,
    /// The most series, targets, rules, alerts or names one call returns.
    max_rows: usize,
}

/// The toolset of a `prometheus` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &PrometheusBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let http = HttpClient::new(
        link,
        HttpSettings {
            service: "Prometheus",
            url_field: "prometheus.url",
            url: &block.url,
            tls: block.tls.as_ref(),
            permission_hint: "check the proxy or gateway in front of Prometheus grants this \
                              identity read access to /api/v1",
            headers: Vec::new(),
        },
    )?;
    let defs = tool_defs(http.base().as_str(), link.max_rows())
        .map_err(|e| BuildError::Invalid(format!("prometheus tools: {e}")))?;
    Ok(Arc::new(PrometheusToolset {
        defs,
        api: Api { http },
        max_rows: link.max_rows(),
    }))
}

/// The link as a component of the stack topology: where Prometheus is, never a credential.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.prometheus {
        match crate::http::BaseUrl::parse("prometheus.url", &block.url) {
            Ok(url) => {
                endpoint.insert("url".to_owned(), url.to_string());
                endpoint.insert("host".to_owned(), url.host().to_owned());
                endpoint.insert("port".to_owned(), url.port().to_string());
            }
            Err(_) => {
                endpoint.insert("url".to_owned(), "(invalid)".to_owned());
            }
        }
    }
    Component::of_link(link, "prometheus", "metrics", endpoint)
}

fn tool_defs(url: &str, max_rows: usize) -> Result<Vec<ToolDef>, ToolDefError> {
    Ok(vec![
        ToolDef::read::<params::Query>(
            "prom_query",
            format!(
                "Evaluate a PromQL expression at one instant on Prometheus at {url} (default \
                 now): each series with its labels and value; labels shared by all series are \
                 shown once. At most {max_rows} series. A PromQL error comes back with \
                 Prometheus's message and a caret at its position."
            ),
        )?,
        ToolDef::read::<params::QueryRange>(
            "prom_query_range",
            format!(
                "Evaluate a PromQL expression over a time range (default the last hour) on \
                 Prometheus at {url}. Long series are summarised (min, max, avg, last and a \
                 downsampled tail); structured content has every point. The step is raised so \
                 no series exceeds `max_points`. `chart: true` adds a PNG line chart. At most \
                 {max_rows} series."
            ),
        )?,
        ToolDef::read::<params::Alerts>(
            "prom_alerts",
            "List the alerts Prometheus currently has, firing first: name, state, since when, \
             value, labels and annotations (summary, description). Filter by state or name.",
        )?,
        ToolDef::read::<params::Targets>(
            "prom_targets",
            "List Prometheus's scrape targets, down first: health, scrape pool (job), URL, \
             last scrape time and duration, and the last scrape error. Filter by health or \
             scrape pool; `state: dropped` lists what relabelling dropped.",
        )?,
        ToolDef::read::<params::Rules>(
            "prom_rules",
            "List Prometheus's alerting and recording rules by group: name, expression, \
             `for` duration, health and last evaluation error, and for alerting rules their \
             state and active alerts.",
        )?,
        ToolDef::read::<params::LabelValues>(
            "prom_label_values",
            format!(
                "List the values of one label (e.g. `job`, `namespace`, `__name__` for metric \
                 names) in a time range (default the last hour), optionally only from series \
                 matching selectors; without `label`, list the label names. At most {max_rows} \
                 values."
            ),
        )?,
        ToolDef::read::<params::Series>(
            "prom_series",
            format!(
                "List the series (label sets) matching selectors in a time range (default the \
                 last hour), to see which labels a metric has before querying it. At most \
                 {max_rows} series."
            ),
        )?,
        ToolDef::read::<params::Metadata>(
            "prom_metadata",
            format!(
                "The type (counter, gauge, histogram, summary), help text and unit of metrics, \
                 from their scrape targets: one metric, or those whose name contains a text. \
                 At most {max_rows} metrics."
            ),
        )?,
    ])
}

impl Toolset for PrometheusToolset {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            match name {
                "prom_query" => with_args(args, |p| self.query(p, ctx)).await,
                "prom_query_range" => with_args(args, |p| self.query_range(p, ctx)).await,
                "prom_alerts" => with_args(args, |p| self.alerts(p, ctx)).await,
                "prom_targets" => with_args(args, |p| self.targets(p, ctx)).await,
                "prom_rules" => with_args(args, |p| self.rules(p, ctx)).await,
                "prom_label_values" => with_args(args, |p| self.label_values(p, ctx)).await,
                "prom_series" => with_args(args, |p| self.series(p, ctx)).await,
                "prom_metadata" => with_args(args, |p| self.metadata(p, ctx)).await,
                other => output::error(format!("tool `{other}` is not a prometheus tool")),
            }
        })
    }
}
