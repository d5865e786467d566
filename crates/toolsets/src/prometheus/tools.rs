//! The Prometheus tools' handlers: resolve times, call the API, shape a bounded result.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Failure, MetadataMap, QueryResult, with_caret};
use super::{DEFAULT_MAX_POINTS, PrometheusToolset, chart, params};
use crate::series::{self as render, Labels, Series};
use crate::time::{TimeRange, choose_step, format_duration, parse_duration, parse_time};
use crate::{CallContext, output};

/// The range label, series and metadata lookups cover when the call gives none.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3_600);

/// Room kept in the output cap for the parts of structured content that are not series.
const ENVELOPE_BYTES: usize = 2_048;

fn contains(haystack: &str, needle: Option<&str>) -> bool {
    needle
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .is_none_or(|n| haystack.to_lowercase().contains(&n.to_lowercase()))
}

fn finish(value: Value, text: String, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
    output::ok_json(&value, text)
}

fn warnings_text(warnings: &[String]) -> String {
    warnings
        .iter()
        .map(|w| format!("warning from Prometheus: {w}\n"))
        .collect()
}

impl PrometheusToolset {
    fn fail(&self, failure: Failure, query: &str) -> CallToolResult {
        match failure {
            Failure::BadQuery(message) => {
                output::error(format!("PromQL error: {}", with_caret(&message, query)))
            }
            Failure::Other(message) => output::error(message),
        }
    }

    fn range(&self, start: Option<&str>, end: Option<&str>) -> Result<TimeRange, CallToolResult> {
        TimeRange::resolve(start, end, None, DEFAULT_LOOKBACK, Timestamp::now())
            .map_err(output::error)
    }

    pub(super) async fn query(&self, p: params::Query, ctx: &CallContext) -> CallToolResult {
        if p.query.trim().is_empty() {
            return output::error(
                "invalid argument `query`: it is empty; pass a PromQL expression",
            );
        }
        let time = match p.time.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => match parse_time(t, Timestamp::now()) {
                Ok(time) => time,
                Err(e) => return output::error(format!("invalid argument `time`: {e}")),
            },
            None => Timestamp::now(),
        };
        let (result, warnings) = match self.api.query(&p.query, time, ctx.timeout).await {
            Ok(found) => found,
            Err(f) => return self.fail(f, &p.query),
        };
        let mut text = format!("`{}` at {time}: ", p.query);
        let mut value = json!({"query": p.query, "time": time.to_string(), "warnings": warnings});
        match result {
            QueryResult::Scalar(_, v) => {
                let _ = writeln!(text, "scalar {}", render::fmt_value(v));
                value["resultType"] = json!("scalar");
                value["value"] = render::json_value(v);
            }
            QueryResult::String(_, s) => {
                let _ = writeln!(text, "string {s:?}");
                value["resultType"] = json!("string");
                value["value"] = json!(s);
            }
            QueryResult::Vector(series) => {
                self.series_result(&mut value, &mut text, "vector", &series, false, ctx);
            }
            QueryResult::Matrix(series) => {
                self.series_result(&mut value, &mut text, "matrix", &series, true, ctx);
            }
        }
        text.push_str(&warnings_text(&warnings));
        finish(value, text, ctx)
    }

    /// Fills `value` and `text` with `series` (a vector or matrix), within the row limit and
    /// the output cap.
    fn series_result(
        &self,
        value: &mut Value,
        text: &mut String,
        kind: &str,
        series: &[Series],
        range: bool,
        ctx: &CallContext,
    ) {
        let shown = series.len().min(self.max_rows);
        let budget = ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES);
        let (json_series, left_out) = render::fit_series(&series[..shown], range, budget);
        let _ = write!(text, "{kind} of {} series", series.len());
        if series.len() > shown {
            let _ = write!(
                text,
                " (the first {shown} shown: the link's row limit; narrow the selector or \
                 aggregate with sum by (...))"
            );
        }
        text.push('\n');
        if series.is_empty() {
            text.push_str(
                "no series matched: check the metric name and labels with prom_series or \
                 prom_label_values (label __name__)\n",
            );
        }
        text.push_str(&if range {
            render::matrix_text(series, shown)
        } else {
            render::vector_text(series, shown)
        });
        value["resultType"] = json!(kind);
        value["seriesCount"] = json!(series.len());
        value["series"] = Value::Array(json_series);
        let truncated = series.len() > shown || left_out > 0;
        value["truncated"] = json!(truncated);
        if left_out > 0 {
            value["note"] = json!(format!(
                "{left_out} more series did not fit in the output cap; the text summarises them"
            ));
        }
    }

    pub(super) async fn query_range(
        &self,
        p: params::QueryRange,
        ctx: &CallContext,
    ) -> CallToolResult {
        if p.query.trim().is_empty() {
            return output::error(
                "invalid argument `query`: it is empty; pass a PromQL expression",
            );
        }
        let range = match self.range(p.start.as_deref(), p.end.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let requested = match p.step.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(step) => match parse_duration(step) {
                Ok(step) => Some(step),
                Err(e) => return output::error(format!("invalid argument `step`: {e}")),
            },
            None => None,
        };
        let max_points = p
            .max_points
            .map_or(DEFAULT_MAX_POINTS, |n| (n as usize).clamp(10, 1000));
        let step = choose_step(&range, requested, max_points);
        let (series, warnings) = match self
            .api
            .query_range(&p.query, range.start, range.end, step.step, ctx.timeout)
            .await
        {
            Ok(found) => found,
            Err(f) => return self.fail(f, &p.query),
        };
        let step_text = format_duration(step.step);
        let mut text = format!(
            "`{}` from {} to {}, step {step_text}",
            p.query, range.start, range.end
        );
        if let Some(asked) = step.raised_from {
            let _ = write!(
                text,
                " (raised from {} to stay within {max_points} points a series)",
                format_duration(asked)
            );
        }
        text.push_str(": ");
        let mut value = json!({
            "query": p.query,
            "start": range.start.to_string(),
            "end": range.end.to_string(),
            "step": step_text,
            "warnings": warnings,
        });
        if let Some(asked) = step.raised_from {
            value["stepRaisedFrom"] = json!(format_duration(asked));
        }
        self.series_result(&mut value, &mut text, "matrix", &series, true, ctx);
        text.push_str(&warnings_text(&warnings));
        let mut image = None;
        if p.chart && !series.is_empty() {
            let shown = &series[..series.len().min(self.max_rows)];
            let start = range.start.as_millisecond() as f64 / 1000.0;
            let end = range.end.as_millisecond() as f64 / 1000.0;
            match chart::render(shown, &p.query, start, end, step.step.as_secs_f64()) {
                Ok(png) => {
                    if shown.len() > chart::MAX_CHART_SERIES {
                        let _ = writeln!(
                            text,
                            "the chart draws the first {} series",
                            chart::MAX_CHART_SERIES
                        );
                    }
                    image = Some(base64::engine::general_purpose::STANDARD.encode(png));
                }
                Err(e) => {
                    let _ = writeln!(text, "no chart: {e}");
                }
            }
        }
        let mut result = finish(value, text, ctx);
        if let Some(data) = image {
            result.content.push(ContentBlock::image(data, "image/png"));
        }
        result
    }

    pub(super) async fn alerts(&self, p: params::Alerts, ctx: &CallContext) -> CallToolResult {
        #[derive(Deserialize)]
        struct Data {
            #[serde(default)]
            alerts: Vec<Value>,
        }
        let url = self.api.http.base().join("/api/v1/alerts");
        let data: Data = match self.api.get(url, &[], ctx.timeout).await {
            Ok(data) => data,
            Err(f) => return self.fail(f, ""),
        };
        let want = p.state.map(|s| match s {
            params::AlertState::Firing => "firing",
            params::AlertState::Pending => "pending",
        });
        let str_of = |a: &Value, path: &[&str]| {
            path.iter()
                .try_fold(a, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut alerts: Vec<Value> = data
            .alerts
            .into_iter()
            .filter(|a| want.is_none_or(|w| str_of(a, &["state"]) == w))
            .filter(|a| {
                contains(
                    &str_of(a, &["labels", "alertname"]),
                    p.name_contains.as_deref(),
                )
            })
            .collect();
        alerts.sort_by_key(|a| (str_of(a, &["state"]) != "firing", str_of(a, &["activeAt"])));
        let total = alerts.len();
        alerts.truncate(self.max_rows);
        let firing = alerts
            .iter()
            .filter(|a| str_of(a, &["state"]) == "firing")
            .count();
        let mut text = format!("{total} alerts ({firing} firing shown first)");
        if total > alerts.len() {
            let _ = write!(
                text,
                "; the first {} shown (the link's row limit)",
                alerts.len()
            );
        }
        text.push('\n');
        for a in &alerts {
            let mut labels: Labels =
                serde_json::from_value(a["labels"].clone()).unwrap_or_default();
            let name = labels.remove("alertname").unwrap_or_default();
            let _ = write!(
                text,
                "[{}] {name} since {} value {} {}",
                str_of(a, &["state"]),
                str_of(a, &["activeAt"]),
                str_of(a, &["value"]),
                render::fmt_labels(&labels, &Labels::new())
            );
            for key in ["summary", "description"] {
                let said = str_of(a, &["annotations", key]);
                if !said.is_empty() {
                    let _ = write!(text, "\n    {key}: {said}");
                }
            }
            text.push('\n');
        }
        let truncated = total > alerts.len();
        finish(
            json!({"alerts": alerts, "total": total, "truncated": truncated}),
            text,
            ctx,
        )
    }

    pub(super) async fn targets(&self, p: params::Targets, ctx: &CallContext) -> CallToolResult {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            #[serde(default)]
            active_targets: Vec<Value>,
            #[serde(default)]
            dropped_targets: Vec<Value>,
        }
        let state = match p.state {
            params::TargetState::Active => "active",
            params::TargetState::Dropped => "dropped",
            params::TargetState::Any => "any",
        };
        let url = self.api.http.base().join("/api/v1/targets");
        let data: Data = match self
            .api
            .get(url, &[("state", state.to_owned())], ctx.timeout)
            .await
        {
            Ok(data) => data,
            Err(f) => return self.fail(f, ""),
        };
        let s = |t: &Value, k: &str| {
            t.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let health = p.health.map(|h| match h {
            params::Health::Up => "up",
            params::Health::Down => "down",
            params::Health::Unknown => "unknown",
        });
        let pool = p
            .scrape_pool
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let mut active: Vec<Value> = data
            .active_targets
            .into_iter()
            .filter(|t| health.is_none_or(|h| s(t, "health") == h))
            .filter(|t| pool.is_none_or(|p| s(t, "scrapePool") == p))
            .map(|mut t| {
                // The labels before relabelling are long and rarely what is asked.
                if let Some(o) = t.as_object_mut() {
                    o.remove("discoveredLabels");
                }
                t
            })
            .collect();
        active.sort_by_key(|t| {
            (
                s(t, "health") == "up",
                s(t, "scrapePool"),
                s(t, "scrapeUrl"),
            )
        });
        let total_active = active.len();
        let up = active.iter().filter(|t| s(t, "health") == "up").count();
        active.truncate(self.max_rows);
        let mut dropped = data.dropped_targets;
        let total_dropped = dropped.len();
        dropped.truncate(self.max_rows.saturating_sub(active.len()));
        let mut text = format!(
            "{total_active} active targets ({up} up, {} not up)",
            total_active - up
        );
        if state != "active" {
            let _ = write!(text, ", {total_dropped} dropped");
        }
        text.push('\n');
        for t in &active {
            let _ = write!(
                text,
                "{} {} {} last scrape {} ({}s)",
                s(t, "health"),
                s(t, "scrapePool"),
                s(t, "scrapeUrl"),
                s(t, "lastScrape"),
                t.get("lastScrapeDuration")
                    .map_or(String::new(), |d| render::fmt_value(
                        d.as_f64().unwrap_or(f64::NAN)
                    ))
            );
            let error = s(t, "lastError");
            if !error.is_empty() {
                let _ = write!(text, "\n    error: {error}");
            }
            text.push('\n');
        }
        for t in &dropped {
            let labels: Labels =
                serde_json::from_value(t["discoveredLabels"].clone()).unwrap_or_default();
            let _ = writeln!(
                text,
                "dropped {} {}",
                labels.get("job").map_or("", String::as_str),
                labels.get("__address__").map_or("", String::as_str)
            );
        }
        let truncated = total_active + total_dropped > active.len() + dropped.len();
        if truncated {
            text.push_str(
                "(more targets exist than the link's row limit: filter by health or scrape_pool)\n",
            );
        }
        finish(
            json!({
                "activeTargets": active,
                "droppedTargets": dropped,
                "activeCount": total_active,
                "upCount": up,
                "droppedCount": total_dropped,
                "truncated": truncated,
            }),
            text,
            ctx,
        )
    }

    pub(super) async fn rules(&self, p: params::Rules, ctx: &CallContext) -> CallToolResult {
        #[derive(Deserialize)]
        struct Data {
            #[serde(default)]
            groups: Vec<Value>,
        }
        let mut query = Vec::new();
        if let Some(kind) = p.kind {
            let kind = match kind {
                params::RuleKind::Alert => "alert",
                params::RuleKind::Record => "record",
            };
            query.push(("type", kind.to_owned()));
        }
        let url = self.api.http.base().join("/api/v1/rules");
        let data: Data = match self.api.get(url, &query, ctx.timeout).await {
            Ok(data) => data,
            Err(f) => return self.fail(f, ""),
        };
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut text = String::new();
        let mut groups = Vec::new();
        let mut count = 0;
        let mut total = 0;
        for group in data.groups {
            let rules: Vec<Value> = group
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| contains(&s(r, "name"), p.name_contains.as_deref()))
                .collect();
            total += rules.len();
            let room = self.max_rows.saturating_sub(count);
            let rules: Vec<Value> = rules.into_iter().take(room).collect();
            if rules.is_empty() {
                continue;
            }
            count += rules.len();
            let _ = writeln!(
                text,
                "group {} ({}, every {}s):",
                s(&group, "name"),
                s(&group, "file"),
                group
                    .get("interval")
                    .and_then(Value::as_f64)
                    .unwrap_or_default()
            );
            for r in &rules {
                let health = s(r, "health");
                if s(r, "type") == "alerting" {
                    let active = r
                        .get("alerts")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    let _ = write!(
                        text,
                        "  alert {} [{}] for {}s: {} ({active} active, health {health})",
                        s(r, "name"),
                        s(r, "state"),
                        r.get("duration")
                            .and_then(Value::as_f64)
                            .unwrap_or_default(),
                        s(r, "query"),
                    );
                } else {
                    let _ = write!(
                        text,
                        "  record {}: {} (health {health})",
                        s(r, "name"),
                        s(r, "query")
                    );
                }
                let error = s(r, "lastError");
                if !error.is_empty() {
                    let _ = write!(text, "\n    last error: {error}");
                }
                text.push('\n');
            }
            let mut group = group;
            group["rules"] = Value::Array(rules);
            groups.push(group);
        }
        let truncated = total > count;
        let mut head = format!("{total} rules");
        if truncated {
            let _ = write!(
                head,
                " (the first {count} shown: the link's row limit; filter by kind or name)"
            );
        }
        head.push('\n');
        finish(
            json!({"groups": groups, "total": total, "truncated": truncated}),
            head + &text,
            ctx,
        )
    }

    pub(super) async fn label_values(
        &self,
        p: params::LabelValues,
        ctx: &CallContext,
    ) -> CallToolResult {
        let range = match self.range(p.start.as_deref(), p.end.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let label = p.label.as_deref().map(str::trim).filter(|l| !l.is_empty());
        let url = match label {
            Some(label) => self
                .api
                .http
                .base()
                .join_segments(&["api", "v1", "label", label, "values"]),
            None => self.api.http.base().join("/api/v1/labels"),
        };
        let mut query: Vec<(&str, String)> =
            p.matches.iter().map(|m| ("match[]", m.clone())).collect();
        query.push(("start", crate::time::unix_seconds(range.start)));
        query.push(("end", crate::time::unix_seconds(range.end)));
        let mut values: Vec<String> = match self.api.get(url, &query, ctx.timeout).await {
            Ok(values) => values,
            Err(f) => return self.fail(f, p.matches.first().map_or("", String::as_str)),
        };
        let total = values.len();
        values.truncate(self.max_rows);
        let what = match label {
            Some(label) => format!("values of label {label}"),
            None => "label names".to_owned(),
        };
        let mut text = format!("{total} {what} from {} to {}", range.start, range.end);
        if total > values.len() {
            let _ = write!(
                text,
                " (the first {} shown: the link's row limit; narrow with `match`)",
                values.len()
            );
        }
        let _ = write!(text, ":\n{}\n", values.join("\n"));
        let truncated = total > values.len();
        let key = if label.is_some() { "values" } else { "labels" };
        finish(
            json!({key: values, "total": total, "truncated": truncated}),
            text,
            ctx,
        )
    }

    pub(super) async fn series(&self, p: params::Series, ctx: &CallContext) -> CallToolResult {
        let matches: Vec<String> = p
            .matches
            .iter()
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        if matches.is_empty() {
            return output::error(
                "invalid argument `match`: give at least one series selector, e.g. `up` or \
                 `{job=\"node\"}`",
            );
        }
        let range = match self.range(p.start.as_deref(), p.end.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let mut found = match self
            .api
            .series(&matches, range.start, range.end, ctx.timeout)
            .await
        {
            Ok(found) => found,
            Err(f) => return self.fail(f, &matches[0]),
        };
        let (text, total) =
            render::label_sets_text("series", &mut found, self.max_rows, range.start, range.end);
        let truncated = total > found.len();
        finish(
            json!({"series": found, "total": total, "truncated": truncated}),
            text,
            ctx,
        )
    }

    pub(super) async fn metadata(&self, p: params::Metadata, ctx: &CallContext) -> CallToolResult {
        let mut query = Vec::new();
        if let Some(metric) = p.metric.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            query.push(("metric", metric.to_owned()));
        }
        let url = self.api.http.base().join("/api/v1/metadata");
        let data: MetadataMap = match self.api.get(url, &query, ctx.timeout).await {
            Ok(data) => data,
            Err(f) => return self.fail(f, ""),
        };
        let matching: Vec<(String, Vec<Value>)> = data
            .into_iter()
            .filter(|(name, _)| contains(name, p.name_contains.as_deref()))
            .collect();
        let total = matching.len();
        let mut text = format!("{total} metrics");
        if total > self.max_rows {
            let _ = write!(
                text,
                " (the first {} shown: the link's row limit; filter with name_contains)",
                self.max_rows
            );
        }
        text.push('\n');
        if total == 0 && !query.is_empty() {
            text.push_str("no metadata: the metric is unknown to the scrape targets, or is a recording rule's\n");
        }
        let mut metrics = Vec::new();
        for (name, entries) in matching.into_iter().take(self.max_rows) {
            let entry = entries.first().cloned().unwrap_or_default();
            let s = |k: &str| {
                entry
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let _ = write!(text, "{name} ({})", s("type"));
            if !s("unit").is_empty() {
                let _ = write!(text, " unit {}", s("unit"));
            }
            let _ = writeln!(text, ": {}", s("help"));
            metrics.push(
                json!({"metric": name, "type": s("type"), "help": s("help"), "unit": s("unit")}),
            );
        }
        let truncated = total > metrics.len();
        finish(
            json!({"metrics": metrics, "total": total, "truncated": truncated}),
            text,
            ctx,
        )
    }
}
