//! The Loki tools' handlers: resolve times, call `/loki/api/v1/...`, and shape bounded results
//! (log lines grouped by stream, newest first; metric series like Prometheus's).

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use rmcp::model::CallToolResult;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LokiToolset, MAX_LINE_BYTES, params};
use crate::http::HttpError;
use crate::series::{self, Labels, Series, parse_value};
use crate::time::{TimeRange, parse_duration, parse_time, unix_nanos};
use crate::{CallContext, output};

/// The range the lookups cover when the call gives none.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3_600);
/// Room kept in the output cap for the parts of a result that are not lines.
const ENVELOPE_BYTES: usize = 1_024;

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Debug, Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: Vec<Value>,
}

/// One stream of log lines.
#[derive(Debug, Deserialize)]
struct Stream {
    #[serde(default)]
    stream: Labels,
    /// `[unix nanoseconds as text, line]`, in the query's direction.
    #[serde(default)]
    values: Vec<(String, String)>,
}

/// `line` cut at [`MAX_LINE_BYTES`] on a character boundary, saying how long it was.
fn cut_line(line: &str) -> (String, bool) {
    if line.len() <= MAX_LINE_BYTES {
        return (line.to_owned(), false);
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}... [{} bytes]", &line[..end], line.len()), true)
}

fn nanos_time(nanos: &str) -> String {
    nanos
        .parse::<i128>()
        .ok()
        .and_then(|n| Timestamp::from_nanosecond(n).ok())
        .map_or_else(|| nanos.to_owned(), |t| t.to_string())
}

/// `message` with the query and a caret under Loki's `line L, col C`.
fn with_caret(message: &str, query: &str) -> String {
    let position = message.find("line ").and_then(|at| {
        let rest = &message[at + 5..];
        let (line, rest) = rest.split_once(", col ")?;
        let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((line.parse::<usize>().ok()?, col.parse::<usize>().ok()?))
    });
    match position.and_then(|(l, c)| Some((query.lines().nth(l.checked_sub(1)?)?, c))) {
        Some((text, col)) => {
            let col = col.clamp(1, text.chars().count() + 1);
            format!("{message}\n  {text}\n  {}^", " ".repeat(col - 1))
        }
        None => message.to_owned(),
    }
}

fn finish(value: Value, text: String, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
    output::ok_json(&value, text)
}

impl LokiToolset {
    fn fail(&self, err: HttpError, query: &str) -> CallToolResult {
        match (err.status(), err.server_message()) {
            (Some(401), Some(said)) if said.contains("org id") => output::error(format!(
                "Loki at {} is multi-tenant and got no tenant ({said}): set loki.tenantId on the \
                 link (sent as X-Scope-OrgID)",
                self.http.base()
            )),
            (Some(400), Some(said)) if !query.is_empty() => {
                output::error(format!("LogQL error: {}", with_caret(said, query)))
            }
            (Some(400), Some(said)) => output::error(format!("Loki refused the request: {said}")),
            _ => output::error(err.to_string()),
        }
    }

    fn range(
        &self,
        start: Option<&str>,
        end: Option<&str>,
        since: Option<&str>,
    ) -> Result<TimeRange, CallToolResult> {
        TimeRange::resolve(start, end, since, DEFAULT_LOOKBACK, Timestamp::now())
            .map_err(output::error)
    }

    fn limit(&self, asked: Option<u32>) -> usize {
        asked.map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
        query: &[(&str, String)],
        ctx: &CallContext,
    ) -> Result<T, HttpError> {
        let envelope: Envelope<T> = self
            .http
            .request(reqwest::Method::GET, url)
            .query(query)
            .timeout(ctx.timeout)
            .fetch()
            .await?;
        Ok(envelope.data)
    }

    pub(super) async fn query(&self, p: params::Query, ctx: &CallContext) -> CallToolResult {
        if p.query.trim().is_empty() {
            return output::error(
                "invalid argument `query`: it is empty; pass a LogQL metric query",
            );
        }
        let time = match p.time.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => match parse_time(t, Timestamp::now()) {
                Ok(t) => t,
                Err(e) => return output::error(format!("invalid argument `time`: {e}")),
            },
            None => Timestamp::now(),
        };
        let limit = self.limit(p.limit);
        let query = [
            ("query", p.query.clone()),
            ("time", unix_nanos(time)),
            ("limit", limit.to_string()),
            ("direction", p.direction.as_str().to_owned()),
        ];
        let url = self.http.base().join("/loki/api/v1/query");
        match self.get::<QueryData>(url, &query, ctx).await {
            Ok(data) => {
                let head = format!("`{}` at {time}", p.query);
                self.result(
                    data,
                    head,
                    json!({"query": p.query, "time": time.to_string()}),
                    limit,
                    ctx,
                )
            }
            Err(e) => self.fail(e, &p.query),
        }
    }

    pub(super) async fn query_range(
        &self,
        p: params::QueryRange,
        ctx: &CallContext,
    ) -> CallToolResult {
        if p.query.trim().is_empty() {
            return output::error(
                "invalid argument `query`: it is empty; pass a LogQL query such as {app=\"api\"} |= \"error\"",
            );
        }
        let range = match self.range(p.start.as_deref(), p.end.as_deref(), p.since.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let limit = self.limit(p.limit);
        let mut query = vec![
            ("query", p.query.clone()),
            ("start", unix_nanos(range.start)),
            ("end", unix_nanos(range.end)),
            ("limit", limit.to_string()),
            ("direction", p.direction.as_str().to_owned()),
        ];
        if let Some(step) = p.step.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            match parse_duration(step) {
                Ok(step) => query.push(("step", format!("{}", step.as_secs_f64()))),
                Err(e) => return output::error(format!("invalid argument `step`: {e}")),
            }
        }
        let url = self.http.base().join("/loki/api/v1/query_range");
        match self.get::<QueryData>(url, &query, ctx).await {
            Ok(data) => {
                let order = match p.direction {
                    params::Direction::Backward => "newest first",
                    params::Direction::Forward => "oldest first",
                };
                let head = format!(
                    "`{}` from {} to {} ({order})",
                    p.query, range.start, range.end
                );
                let value = json!({
                    "query": p.query,
                    "start": range.start.to_string(),
                    "end": range.end.to_string(),
                    "direction": p.direction.as_str(),
                });
                self.result(data, head, value, limit, ctx)
            }
            Err(e) => self.fail(e, &p.query),
        }
    }

    /// Streams or series of a query, bounded by `limit` lines and the output cap.
    fn result(
        &self,
        data: QueryData,
        head: String,
        mut value: Value,
        limit: usize,
        ctx: &CallContext,
    ) -> CallToolResult {
        value["resultType"] = json!(data.result_type);
        let mut text = head;
        if data.result_type != "streams" {
            let mut all = Vec::new();
            for raw in data.result {
                let labels: Labels =
                    serde_json::from_value(raw["metric"].clone()).unwrap_or_default();
                let points: Vec<(f64, f64)> = match (raw.get("values"), raw.get("value")) {
                    (Some(values), _) => {
                        serde_json::from_value::<Vec<(f64, String)>>(values.clone())
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(t, v)| (t, parse_value(&v)))
                            .collect()
                    }
                    (None, Some(point)) => serde_json::from_value::<(f64, String)>(point.clone())
                        .map(|(t, v)| vec![(t, parse_value(&v))])
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                all.push(Series { labels, points });
            }
            let shown = all.len().min(limit);
            let range = data.result_type == "matrix";
            let (json_series, left) = series::fit_series(
                &all[..shown],
                range,
                ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES),
            );
            let _ = writeln!(text, ": {} series", all.len());
            text.push_str(&if range {
                series::matrix_text(&all, shown)
            } else {
                series::vector_text(&all, shown)
            });
            value["seriesCount"] = json!(all.len());
            value["series"] = Value::Array(json_series);
            value["truncated"] = json!(all.len() > shown || left > 0);
            return finish(value, text, ctx);
        }
        let mut streams: Vec<Stream> = data
            .result
            .into_iter()
            .filter_map(|s| serde_json::from_value(s).ok())
            .collect();
        // Streams in the order of their first line (the newest, going backward).
        let backward = value["direction"] != "forward";
        streams.sort_by(|a, b| {
            let first = |s: &Stream| {
                s.values
                    .first()
                    .and_then(|(t, _)| t.parse::<i128>().ok())
                    .unwrap_or_default()
            };
            if backward {
                first(b).cmp(&first(a))
            } else {
                first(a).cmp(&first(b))
            }
        });
        let budget = ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES);
        let mut used = 0;
        let mut lines = 0;
        let mut cut_lines = 0;
        let mut out_of_room = false;
        let mut json_streams = Vec::new();
        let mut body = String::new();
        for stream in &streams {
            let mut entries = Vec::new();
            for (nanos, line) in &stream.values {
                if lines == limit {
                    break;
                }
                let (line, cut) = cut_line(line);
                if used + line.len() > budget && lines > 0 {
                    out_of_room = true;
                    break;
                }
                used += line.len() + 40;
                lines += 1;
                cut_lines += usize::from(cut);
                entries.push((nanos_time(nanos), line));
            }
            if entries.is_empty() {
                continue;
            }
            let _ = writeln!(
                body,
                "== {} ({} lines)",
                series::fmt_labels(&stream.stream, &Labels::new()),
                entries.len()
            );
            for (time, line) in &entries {
                let _ = writeln!(body, "{time} {line}");
            }
            json_streams.push(json!({
                "labels": stream.stream,
                "entries": entries.iter().map(|(t, l)| json!({"time": t, "line": l})).collect::<Vec<_>>(),
            }));
            if lines == limit || out_of_room {
                break;
            }
        }
        let returned: usize = streams.iter().map(|s| s.values.len()).sum();
        let _ = write!(text, ": {lines} lines from {} streams", json_streams.len());
        let more = returned > lines || returned >= limit;
        if out_of_room {
            text.push_str(
                "; truncated at the output cap: narrow the range or filter the lines (|= \"...\")",
            );
        } else if more {
            let _ = write!(
                text,
                "; the limit of {limit} lines was reached, more may exist: narrow the range or filter the lines"
            );
        }
        if cut_lines > 0 {
            let _ = write!(
                text,
                "; {cut_lines} long lines cut at {MAX_LINE_BYTES} bytes"
            );
        }
        text.push('\n');
        if lines == 0 {
            text.push_str("no log lines matched: check the selector's labels with loki_labels and loki_label_values\n");
        }
        text.push_str(&body);
        value["streams"] = Value::Array(json_streams);
        value["lineCount"] = json!(lines);
        value["truncated"] = json!(out_of_room || more);
        finish(value, text, ctx)
    }

    pub(super) async fn labels(&self, p: params::Labels, ctx: &CallContext) -> CallToolResult {
        let range = match self.range(p.start.as_deref(), p.end.as_deref(), p.since.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let query = [
            ("start", unix_nanos(range.start)),
            ("end", unix_nanos(range.end)),
        ];
        let url = self.http.base().join("/loki/api/v1/labels");
        match self.get::<Option<Vec<String>>>(url, &query, ctx).await {
            Ok(names) => self.names(
                "label names",
                names.unwrap_or_default(),
                range,
                "labels",
                ctx,
            ),
            Err(e) => self.fail(e, ""),
        }
    }

    pub(super) async fn label_values(
        &self,
        p: params::LabelValues,
        ctx: &CallContext,
    ) -> CallToolResult {
        let label = p.label.trim();
        if label.is_empty() {
            return output::error(
                "invalid argument `label`: it is empty; list label names with loki_labels",
            );
        }
        let range = match self.range(p.start.as_deref(), p.end.as_deref(), p.since.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let mut query = vec![
            ("start", unix_nanos(range.start)),
            ("end", unix_nanos(range.end)),
        ];
        let selector = p.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
        if let Some(selector) = selector {
            query.push(("query", selector.to_owned()));
        }
        let url = self
            .http
            .base()
            .join_segments(&["loki", "api", "v1", "label", label, "values"]);
        match self.get::<Option<Vec<String>>>(url, &query, ctx).await {
            Ok(values) => self.names(
                &format!("values of label {label}"),
                values.unwrap_or_default(),
                range,
                "values",
                ctx,
            ),
            Err(e) => self.fail(e, selector.unwrap_or_default()),
        }
    }

    fn names(
        &self,
        what: &str,
        mut names: Vec<String>,
        range: TimeRange,
        key: &str,
        ctx: &CallContext,
    ) -> CallToolResult {
        let total = names.len();
        names.truncate(self.max_rows);
        let mut text = format!("{total} {what} from {} to {}", range.start, range.end);
        if total > names.len() {
            let _ = write!(
                text,
                " (the first {} shown: the link's row limit)",
                names.len()
            );
        }
        let _ = write!(text, ":\n{}\n", names.join("\n"));
        finish(
            json!({key: names, "total": total, "truncated": total > self.max_rows}),
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
                "invalid argument `match`: give at least one stream selector, e.g. {namespace=\"shop\"}",
            );
        }
        let range = match self.range(p.start.as_deref(), p.end.as_deref(), p.since.as_deref()) {
            Ok(range) => range,
            Err(e) => return e,
        };
        let mut query: Vec<(&str, String)> =
            matches.iter().map(|m| ("match[]", m.clone())).collect();
        query.push(("start", unix_nanos(range.start)));
        query.push(("end", unix_nanos(range.end)));
        let url = self.http.base().join("/loki/api/v1/series");
        let mut found: Vec<Labels> = match self.get::<Option<Vec<Labels>>>(url, &query, ctx).await {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => return self.fail(e, &matches[0]),
        };
        let (text, total) =
            series::label_sets_text("streams", &mut found, self.max_rows, range.start, range.end);
        finish(
            json!({"streams": found, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }
}
