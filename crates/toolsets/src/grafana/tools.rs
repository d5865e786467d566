//! The Grafana tools' handlers: the HTTP API calls and bounded, model-readable results.

use std::fmt::Write as _;

use jiff::Timestamp;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::{GrafanaToolset, params};
use crate::http::HttpError;
use crate::time::parse_time;
use crate::{CallContext, output};

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn finish(value: Value, text: String, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
    output::ok_json(&value, text)
}

/// A datasource reference as panels hold it: a uid string, `{type, uid}`, or nothing.
fn datasource(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Object(o)) => {
            let uid = o.get("uid").and_then(Value::as_str).unwrap_or_default();
            let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
            format!("{kind} {uid}").trim().to_owned()
        }
        _ => String::new(),
    }
}

/// The query text of a panel target, whatever its datasource calls it.
fn target_query(t: &Value) -> String {
    [
        "expr",
        "rawSql",
        "query",
        "rawQuery",
        "target",
        "expression",
    ]
    .iter()
    .map(|k| s(t, k))
    .find(|q| !q.is_empty())
    .unwrap_or_default()
}

/// Panels flattened (rows hold their own `panels`), with their queries.
fn panels(list: &[Value], out: &mut Vec<Value>) {
    for panel in list {
        if let Some(nested) = panel.get("panels").and_then(Value::as_array) {
            panels(nested, out);
        }
        if s(panel, "type") == "row" {
            continue;
        }
        let targets: Vec<Value> = panel
            .get("targets")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        json!({
                            "refId": s(t, "refId"),
                            "datasource": datasource(t.get("datasource")),
                            "query": target_query(t),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(json!({
            "id": panel.get("id"),
            "title": s(panel, "title"),
            "type": s(panel, "type"),
            "datasource": datasource(panel.get("datasource")),
            "targets": targets,
        }));
    }
}

impl GrafanaToolset {
    fn fail(&self, err: HttpError, what: &str) -> CallToolResult {
        match err.status() {
            Some(404) => output::error(format!(
                "{what} does not exist in Grafana at {} ({}); list what exists with the \
                 grafana_list_* tools",
                self.http.base(),
                err.server_message().unwrap_or("not found")
            )),
            _ => output::error(err.to_string()),
        }
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        ctx: &CallContext,
    ) -> Result<Value, HttpError> {
        self.http
            .get(path)
            .query(query)
            .timeout(ctx.timeout)
            .fetch()
            .await
    }

    pub(super) async fn list_dashboards(
        &self,
        p: params::ListDashboards,
        ctx: &CallContext,
    ) -> CallToolResult {
        let mut query = vec![
            ("type", "dash-db".to_owned()),
            ("limit", (self.max_rows + 1).to_string()),
        ];
        if !p.query.trim().is_empty() {
            query.push(("query", p.query.trim().to_owned()));
        }
        for tag in p.tags.iter().filter(|t| !t.is_empty()) {
            query.push(("tag", tag.clone()));
        }
        if let Some(folder) = p.folder_uid.as_deref().filter(|f| !f.is_empty()) {
            query.push(("folderUIDs", folder.to_owned()));
        }
        let found = match self.get("/api/search", &query, ctx).await {
            Ok(found) => found,
            Err(e) => return self.fail(e, "the search"),
        };
        let mut items: Vec<Value> = found
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                json!({
                    "uid": s(&d, "uid"),
                    "title": s(&d, "title"),
                    "folder": s(&d, "folderTitle"),
                    "folderUid": s(&d, "folderUid"),
                    "tags": d.get("tags").cloned().unwrap_or(json!([])),
                    "url": s(&d, "url"),
                })
            })
            .collect();
        let truncated = items.len() > self.max_rows;
        items.truncate(self.max_rows);
        let mut text = format!("{} dashboards", items.len());
        if truncated {
            let _ = write!(
                text,
                " (more exist: narrow with `query`, `tags` or `folder_uid`)"
            );
        }
        text.push('\n');
        for d in &items {
            let folder = s(d, "folder");
            let folder = if folder.is_empty() {
                "General".to_owned()
            } else {
                folder
            };
            let _ = writeln!(
                text,
                "{} {:?} in {folder} tags {}",
                s(d, "uid"),
                s(d, "title"),
                d["tags"]
            );
        }
        finish(
            json!({"dashboards": items, "truncated": truncated}),
            text,
            ctx,
        )
    }

    pub(super) async fn get_dashboard(
        &self,
        p: params::GetDashboard,
        ctx: &CallContext,
    ) -> CallToolResult {
        let uid = p.uid.trim();
        if uid.is_empty() {
            return output::error(
                "invalid argument `uid`: it is empty; find uids with grafana_list_dashboards",
            );
        }
        let url = self
            .http
            .base()
            .join_segments(&["api", "dashboards", "uid", uid]);
        let found: Value = match self
            .http
            .request(reqwest::Method::GET, url)
            .timeout(ctx.timeout)
            .fetch()
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, &format!("dashboard uid {uid}")),
        };
        let dashboard = &found["dashboard"];
        let meta = &found["meta"];
        if p.full {
            let text = serde_json::to_string_pretty(dashboard).unwrap_or_default();
            let (text, cut) = output::cap_text(&text, ctx.max_output_bytes);
            let mut value = json!({"meta": meta});
            if !cut {
                value["dashboard"] = dashboard.clone();
            }
            value["truncated"] = json!(cut);
            return output::ok_json(&value, text);
        }
        let mut list = Vec::new();
        panels(
            dashboard
                .get("panels")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice),
            &mut list,
        );
        let variables: Vec<Value> = dashboard["templating"]["list"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| json!({"name": s(v, "name"), "type": s(v, "type"), "query": v.get("query").map(|q| if q.is_string() { q.clone() } else { json!(target_query(q)) })}))
                    .collect()
            })
            .unwrap_or_default();
        let mut text = format!(
            "dashboard {:?} (uid {uid}) in folder {}, {} panels, updated {}\n",
            s(dashboard, "title"),
            s(meta, "folderTitle"),
            list.len(),
            s(meta, "updated")
        );
        for v in &variables {
            let _ = writeln!(
                text,
                "variable ${} ({}): {}",
                s(v, "name"),
                s(v, "type"),
                s(v, "query")
            );
        }
        for panel in &list {
            let _ = writeln!(
                text,
                "panel {} {:?} ({}) datasource {}",
                s(panel, "id"),
                s(panel, "title"),
                s(panel, "type"),
                s(panel, "datasource")
            );
            for t in panel["targets"].as_array().map_or(&[][..], Vec::as_slice) {
                let _ = writeln!(text, "  {}: {}", s(t, "refId"), s(t, "query"));
            }
        }
        let value = json!({
            "uid": uid,
            "title": s(dashboard, "title"),
            "folder": s(meta, "folderTitle"),
            "url": s(meta, "url"),
            "updated": s(meta, "updated"),
            "tags": dashboard.get("tags").cloned().unwrap_or(json!([])),
            "variables": variables,
            "panels": list,
        });
        finish(value, text, ctx)
    }

    pub(super) async fn list_datasources(&self, ctx: &CallContext) -> CallToolResult {
        let found = match self.get("/api/datasources", &[], ctx).await {
            Ok(found) => found,
            Err(e) => return self.fail(e, "the datasource list"),
        };
        let mut items: Vec<Value> = found
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| json!({"uid": s(&d, "uid"), "name": s(&d, "name"), "type": s(&d, "type"), "url": s(&d, "url"), "isDefault": d.get("isDefault").cloned().unwrap_or(json!(false))}))
            .collect();
        let total = items.len();
        items.truncate(self.max_rows);
        let mut text = format!("{total} datasources\n");
        for d in &items {
            let default = if d["isDefault"] == json!(true) {
                " (default)"
            } else {
                ""
            };
            let _ = writeln!(
                text,
                "{} {:?} {} {}{default}",
                s(d, "uid"),
                s(d, "name"),
                s(d, "type"),
                s(d, "url")
            );
        }
        finish(
            json!({"datasources": items, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }

    pub(super) async fn get_alerts(
        &self,
        p: params::GetAlerts,
        ctx: &CallContext,
    ) -> CallToolResult {
        let found = match self
            .get("/api/prometheus/grafana/api/v1/alerts", &[], ctx)
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, "Grafana-managed alerting"),
        };
        let want = p
            .state
            .as_deref()
            .map(|w| match w.trim().to_lowercase().as_str() {
                "firing" => "alerting".to_owned(),
                other => other.to_owned(),
            });
        let mut alerts: Vec<Value> = found["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                want.as_deref()
                    .is_none_or(|w| s(a, "state").to_lowercase().starts_with(w))
            })
            .collect();
        alerts.sort_by_key(|a| !s(a, "state").to_lowercase().starts_with("alerting"));
        let total = alerts.len();
        alerts.truncate(self.max_rows);
        let mut text = format!("{total} alerts\n");
        for a in &alerts {
            let labels = &a["labels"];
            let _ = writeln!(
                text,
                "[{}] {} since {} value {} labels {}",
                s(a, "state"),
                s(labels, "alertname"),
                s(a, "activeAt"),
                s(a, "value"),
                labels
            );
            let summary = s(&a["annotations"], "summary");
            if !summary.is_empty() {
                let _ = writeln!(text, "    summary: {summary}");
            }
        }
        finish(
            json!({"alerts": alerts, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }

    pub(super) async fn list_folders(&self, ctx: &CallContext) -> CallToolResult {
        let found = match self
            .get(
                "/api/folders",
                &[("limit", (self.max_rows + 1).to_string())],
                ctx,
            )
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, "the folder list"),
        };
        let mut items: Vec<Value> = found
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|f| json!({"uid": s(&f, "uid"), "title": s(&f, "title")}))
            .collect();
        let truncated = items.len() > self.max_rows;
        items.truncate(self.max_rows);
        let mut text = format!(
            "{} folders{}\n",
            items.len(),
            if truncated { " (more exist)" } else { "" }
        );
        for f in &items {
            let _ = writeln!(text, "{} {:?}", s(f, "uid"), s(f, "title"));
        }
        finish(json!({"folders": items, "truncated": truncated}), text, ctx)
    }

    pub(super) async fn query_datasource(
        &self,
        p: params::QueryDatasource,
        ctx: &CallContext,
    ) -> CallToolResult {
        let uid = p.datasource_uid.trim();
        if uid.is_empty() {
            return output::error(
                "invalid argument `datasource_uid`: it is empty; find uids with grafana_list_datasources",
            );
        }
        let mut query = p.query.clone();
        query.insert("refId".to_owned(), json!("A"));
        query.insert("datasource".to_owned(), json!({"uid": uid}));
        query.entry("maxDataPoints").or_insert(json!(self.max_rows));
        let body = json!({
            "queries": [query],
            "from": p.from.as_deref().filter(|f| !f.trim().is_empty()).unwrap_or("now-1h"),
            "to": p.to.as_deref().filter(|t| !t.trim().is_empty()).unwrap_or("now"),
        });
        let found: Value = match self
            .http
            .post("/api/ds/query")
            .json(&body)
            .timeout(ctx.timeout)
            .fetch()
            .await
        {
            Ok(found) => found,
            Err(e) => {
                let said = e
                    .body()
                    .and_then(|b| b["results"]["A"]["error"].as_str())
                    .map(str::to_owned);
                return match said {
                    Some(said) => output::error(format!(
                        "the datasource {uid} refused the query: {}",
                        self.http.scrub(&said)
                    )),
                    None => self.fail(e, &format!("datasource uid {uid}")),
                };
            }
        };
        let result = &found["results"]["A"];
        if let Some(error) = result.get("error").and_then(Value::as_str) {
            return output::error(format!(
                "the datasource {uid} refused the query: {}",
                self.http.scrub(error)
            ));
        }
        let mut frames = Vec::new();
        let mut text = String::new();
        let mut truncated = false;
        for frame in result["frames"].as_array().map_or(&[][..], Vec::as_slice) {
            let fields = frame["schema"]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let columns: Vec<String> = fields
                .iter()
                .map(|f| {
                    let labels = f
                        .get("labels")
                        .filter(|l| l.as_object().is_some_and(|o| !o.is_empty()));
                    match labels {
                        Some(labels) => format!("{} {labels}", s(f, "name")),
                        None => s(f, "name"),
                    }
                })
                .collect();
            let values = frame["data"]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let row_count = values.first().and_then(Value::as_array).map_or(0, Vec::len);
            let shown = row_count.min(self.max_rows);
            truncated |= row_count > shown;
            let rows: Vec<Vec<Value>> = (0..shown)
                .map(|i| {
                    values
                        .iter()
                        .map(|col| col.get(i).cloned().unwrap_or(Value::Null))
                        .collect()
                })
                .collect();
            let _ = writeln!(
                text,
                "frame {:?}: {row_count} rows{}",
                s(&frame["schema"], "name"),
                if row_count > shown {
                    format!(" (first {shown} shown)")
                } else {
                    String::new()
                }
            );
            let _ = writeln!(text, "{}", columns.join("\t"));
            for row in &rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| match c {
                        Value::String(t) => t.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let _ = writeln!(text, "{}", cells.join("\t"));
            }
            frames.push(json!({"name": s(&frame["schema"], "name"), "columns": columns, "rows": rows, "rowCount": row_count}));
        }
        if frames.is_empty() {
            text.push_str("the query returned no data frames\n");
        }
        let (text, cut) = output::cap_text(&text, ctx.max_output_bytes);
        let value = json!({"datasourceUid": uid, "frames": if cut { json!([]) } else { json!(frames) }, "truncated": truncated || cut});
        output::ok_json(&value, text)
    }

    pub(super) async fn create_annotation(
        &self,
        p: params::CreateAnnotation,
        ctx: &CallContext,
    ) -> CallToolResult {
        if p.text.trim().is_empty() {
            return output::error("invalid argument `text`: it is empty; say what happened");
        }
        let now = Timestamp::now();
        let at = |field: &str, value: Option<&str>| -> Result<Option<i64>, CallToolResult> {
            match value.map(str::trim).filter(|v| !v.is_empty()) {
                Some(v) => parse_time(v, now)
                    .map(|t| Some(t.as_millisecond()))
                    .map_err(|e| output::error(format!("invalid argument `{field}`: {e}"))),
                None => Ok(None),
            }
        };
        let time = match at("time", p.time.as_deref()) {
            Ok(t) => t.unwrap_or(now.as_millisecond()),
            Err(e) => return e,
        };
        let mut body = json!({"time": time, "text": p.text, "tags": p.tags});
        match at("time_end", p.time_end.as_deref()) {
            Ok(Some(end)) => body["timeEnd"] = json!(end),
            Ok(None) => {}
            Err(e) => return e,
        }
        if let Some(uid) = p.dashboard_uid.as_deref().filter(|u| !u.trim().is_empty()) {
            body["dashboardUID"] = json!(uid.trim());
        }
        if let Some(panel) = p.panel_id {
            body["panelId"] = json!(panel);
        }
        match self
            .http
            .post("/api/annotations")
            .json(&body)
            .timeout(ctx.timeout)
            .fetch::<Value>()
            .await
        {
            Ok(answer) => {
                let id = answer.get("id").cloned().unwrap_or(Value::Null);
                let text = format!(
                    "annotation {id} added at {}: {}",
                    Timestamp::from_millisecond(time)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    p.text
                );
                finish(
                    json!({"id": id, "time": time, "message": s(&answer, "message")}),
                    text,
                    ctx,
                )
            }
            Err(e) => self.fail(e, "the dashboard"),
        }
    }
}
