//! The Argo CD tools' handlers: the `/api/v1` calls, project confinement, and bounded results.

use std::fmt::Write as _;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::{ArgocdToolset, MAX_HISTORY, params};
use crate::http::HttpError;
use crate::{CallContext, output};

fn s(v: &Value, path: &[&str]) -> String {
    match path.iter().try_fold(v, |v, k| v.get(k)) {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn short(revision: &str) -> &str {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        &revision[..7]
    } else {
        revision
    }
}

fn finish(value: Value, text: String, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
    output::ok_json(&value, text)
}

/// An application at a glance, as the list and get tools show it.
fn summary(app: &Value) -> Value {
    let source = app["spec"]
        .get("source")
        .cloned()
        .or_else(|| app["spec"]["sources"].get(0).cloned())
        .unwrap_or_default();
    json!({
        "name": s(app, &["metadata", "name"]),
        "namespace": s(app, &["metadata", "namespace"]),
        "project": s(app, &["spec", "project"]),
        "sync": s(app, &["status", "sync", "status"]),
        "health": s(app, &["status", "health", "status"]),
        "revision": s(app, &["status", "sync", "revision"]),
        "repoURL": s(&source, &["repoURL"]),
        "path": s(&source, &["path"]),
        "targetRevision": s(&source, &["targetRevision"]),
        "destination": {"server": s(app, &["spec", "destination", "server"]), "name": s(app, &["spec", "destination", "name"]), "namespace": s(app, &["spec", "destination", "namespace"])},
        "operationPhase": s(app, &["status", "operationState", "phase"]),
    })
}

fn summary_line(a: &Value) -> String {
    let dest = &a["destination"];
    let server = if s(dest, &["name"]).is_empty() {
        s(dest, &["server"])
    } else {
        s(dest, &["name"])
    };
    format!(
        "{} [{}] sync {} health {} rev {} from {} {}@{} to {server}/{}",
        s(a, &["name"]),
        s(a, &["project"]),
        s(a, &["sync"]),
        s(a, &["health"]),
        short(&s(a, &["revision"])),
        s(a, &["repoURL"]),
        s(a, &["path"]),
        s(a, &["targetRevision"]),
        s(dest, &["namespace"])
    )
}

impl ArgocdToolset {
    fn fail(&self, err: HttpError, name: &str) -> CallToolResult {
        match err.status() {
            Some(404) => output::error(format!(
                "application {name} does not exist in Argo CD at {} ({}); list them with argocd_list_applications",
                self.http.base(),
                err.server_message().unwrap_or("not found")
            )),
            // Argo CD answers "permission denied" also for applications that do not exist.
            Some(403) if !name.is_empty() => output::error(format!(
                "{err}. Argo CD says this also for an application that does not exist: check \
                 the name ({name}) with argocd_list_applications"
            )),
            _ => output::error(err.to_string()),
        }
    }

    fn app_url(&self, name: &str, rest: &[&str]) -> reqwest::Url {
        let mut segments = vec!["api", "v1", "applications", name];
        segments.extend_from_slice(rest);
        self.http.base().join_segments(&segments)
    }

    fn namespace_query(ns: Option<&str>) -> Vec<(&'static str, String)> {
        ns.map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| vec![("appNamespace", n.to_owned())])
            .unwrap_or_default()
    }

    fn allowed(&self, project: &str) -> bool {
        self.projects.is_empty() || self.projects.iter().any(|p| p == project)
    }

    /// The application, if it exists and is in one of the link's projects.
    async fn app(
        &self,
        name: &str,
        ns: Option<&str>,
        ctx: &CallContext,
    ) -> Result<Value, CallToolResult> {
        let name = name.trim();
        if name.is_empty() {
            return Err(output::error(
                "invalid argument `name`: it is empty; list applications with argocd_list_applications",
            ));
        }
        let app: Value = self
            .http
            .request(reqwest::Method::GET, self.app_url(name, &[]))
            .query(&Self::namespace_query(ns))
            .timeout(ctx.timeout)
            .fetch()
            .await
            .map_err(|e| self.fail(e, name))?;
        let project = s(&app, &["spec", "project"]);
        if !self.allowed(&project) {
            return Err(output::error(format!(
                "application {name} is in project {project}, which this link does not reach (argocd.projects: {})",
                self.projects.join(", ")
            )));
        }
        Ok(app)
    }

    pub(super) async fn list_applications(
        &self,
        p: params::ListApplications,
        ctx: &CallContext,
    ) -> CallToolResult {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(project) = p
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if !self.allowed(project) {
                return output::error(format!(
                    "project {project} is not one this link reaches (argocd.projects: {})",
                    self.projects.join(", ")
                ));
            }
            query.push(("projects", project.to_owned()));
        } else {
            query.extend(self.projects.iter().map(|p| ("projects", p.clone())));
        }
        if let Some(selector) = p.selector.as_deref().filter(|s| !s.trim().is_empty()) {
            query.push(("selector", selector.trim().to_owned()));
        }
        let found: Value = match self
            .http
            .get("/api/v1/applications")
            .query(&query)
            .timeout(ctx.timeout)
            .fetch()
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, ""),
        };
        let needle = p
            .name_contains
            .as_deref()
            .map(str::to_lowercase)
            .unwrap_or_default();
        let mut apps: Vec<Value> = found["items"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|a| self.allowed(&s(a, &["spec", "project"])))
            .filter(|a| s(a, &["metadata", "name"]).to_lowercase().contains(&needle))
            .map(summary)
            .collect();
        let healthy = |a: &Value| s(a, &["sync"]) == "Synced" && s(a, &["health"]) == "Healthy";
        apps.sort_by_key(|a| (healthy(a), s(a, &["name"])));
        let total = apps.len();
        let problems = apps.iter().filter(|a| !healthy(a)).count();
        apps.truncate(self.max_rows);
        let mut text =
            format!("{total} applications, {problems} not synced and healthy (listed first)\n");
        for a in &apps {
            let _ = writeln!(text, "{}", summary_line(a));
        }
        if total > apps.len() {
            let _ = writeln!(
                text,
                "(the first {} shown: the link's row limit; filter by project or selector)",
                apps.len()
            );
        }
        finish(
            json!({"applications": apps, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }

    pub(super) async fn get_application(
        &self,
        p: params::App,
        ctx: &CallContext,
    ) -> CallToolResult {
        let app = match self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            Ok(app) => app,
            Err(e) => return e,
        };
        let mut value = summary(&app);
        let resources = app["status"]["resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let out_of_sync = resources
            .iter()
            .filter(|r| s(r, &["status"]) == "OutOfSync")
            .count();
        let unhealthy = resources
            .iter()
            .filter(|r| !matches!(s(r, &["health", "status"]).as_str(), "" | "Healthy"))
            .count();
        let conditions = app["status"]["conditions"].clone();
        let operation = &app["status"]["operationState"];
        let mut text = summary_line(&value);
        let _ = write!(
            text,
            "\n{} resources: {out_of_sync} out of sync, {unhealthy} not healthy",
            resources.len()
        );
        for c in conditions.as_array().map_or(&[][..], Vec::as_slice) {
            let _ = write!(
                text,
                "\ncondition {}: {}",
                s(c, &["type"]),
                s(c, &["message"])
            );
        }
        if !operation.is_null() {
            let _ = write!(
                text,
                "\nlast operation: {} ({}) started {} finished {}: {}",
                s(operation, &["phase"]),
                if operation["operation"].get("sync").is_some() {
                    "sync"
                } else {
                    "other"
                },
                s(operation, &["startedAt"]),
                s(operation, &["finishedAt"]),
                s(operation, &["message"])
            );
        }
        let health_message = s(&app, &["status", "health", "message"]);
        if !health_message.is_empty() {
            let _ = write!(text, "\nhealth message: {health_message}");
        }
        text.push('\n');
        value["conditions"] = conditions;
        value["operationState"] = json!({
            "phase": s(operation, &["phase"]),
            "message": s(operation, &["message"]),
            "startedAt": s(operation, &["startedAt"]),
            "finishedAt": s(operation, &["finishedAt"]),
        });
        value["resourceCount"] = json!(resources.len());
        value["outOfSync"] = json!(out_of_sync);
        value["unhealthy"] = json!(unhealthy);
        value["syncPolicy"] = app["spec"]["syncPolicy"].clone();
        finish(value, text, ctx)
    }

    pub(super) async fn app_resources(
        &self,
        p: params::AppResources,
        ctx: &CallContext,
    ) -> CallToolResult {
        let app = match self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            Ok(app) => app,
            Err(e) => return e,
        };
        let mut resources: Vec<Value> = app["status"]["resources"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| json!({
                "group": s(&r, &["group"]), "kind": s(&r, &["kind"]), "namespace": s(&r, &["namespace"]), "name": s(&r, &["name"]),
                "sync": s(&r, &["status"]), "health": s(&r, &["health", "status"]), "healthMessage": s(&r, &["health", "message"]),
                "requiresPruning": r.get("requiresPruning").cloned().unwrap_or(json!(false)),
            }))
            .collect();
        let problem = |r: &Value| {
            s(r, &["sync"]) == "OutOfSync" || !matches!(s(r, &["health"]).as_str(), "" | "Healthy")
        };
        if p.problems_only {
            resources.retain(problem);
        }
        resources.sort_by_key(|r| !problem(r));
        let total = resources.len();
        resources.truncate(self.max_rows);
        let mut text = format!(
            "{total} resources of {}{} (drifted or unhealthy first)\n",
            p.name.trim(),
            if p.problems_only {
                " with problems"
            } else {
                ""
            }
        );
        for r in &resources {
            let kind = if s(r, &["group"]).is_empty() {
                s(r, &["kind"])
            } else {
                format!("{}.{}", s(r, &["kind"]), s(r, &["group"]))
            };
            let _ = write!(
                text,
                "{kind} {}/{} sync {} health {}",
                s(r, &["namespace"]),
                s(r, &["name"]),
                s(r, &["sync"]),
                if s(r, &["health"]).is_empty() {
                    "-".to_owned()
                } else {
                    s(r, &["health"])
                }
            );
            let message = s(r, &["healthMessage"]);
            if !message.is_empty() {
                let _ = write!(text, ": {message}");
            }
            if r["requiresPruning"] == json!(true) {
                text.push_str(" (not in git: a sync with prune would delete it)");
            }
            text.push('\n');
        }
        finish(
            json!({"resources": resources, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }

    pub(super) async fn list_projects(&self, ctx: &CallContext) -> CallToolResult {
        let found: Value = match self
            .http
            .get("/api/v1/projects")
            .timeout(ctx.timeout)
            .fetch()
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, ""),
        };
        let mut projects: Vec<Value> = found["items"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|p| self.allowed(&s(p, &["metadata", "name"])))
            .map(|p| {
                json!({
                    "name": s(p, &["metadata", "name"]),
                    "description": s(p, &["spec", "description"]),
                    "sourceRepos": p["spec"]["sourceRepos"].clone(),
                    "destinations": p["spec"]["destinations"].clone(),
                })
            })
            .collect();
        let total = projects.len();
        projects.truncate(self.max_rows);
        let mut text = format!("{total} projects\n");
        for p in &projects {
            let _ = writeln!(
                text,
                "{}: {} repos {} destinations {}",
                s(p, &["name"]),
                s(p, &["description"]),
                p["sourceRepos"],
                p["destinations"]
            );
        }
        finish(
            json!({"projects": projects, "total": total, "truncated": total > self.max_rows}),
            text,
            ctx,
        )
    }

    pub(super) async fn app_events(&self, p: params::App, ctx: &CallContext) -> CallToolResult {
        if let Err(e) = self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            return e;
        }
        let name = p.name.trim();
        let found: Value = match self
            .http
            .request(reqwest::Method::GET, self.app_url(name, &["events"]))
            .query(&Self::namespace_query(p.app_namespace.as_deref()))
            .timeout(ctx.timeout)
            .fetch()
            .await
        {
            Ok(found) => found,
            Err(e) => return self.fail(e, name),
        };
        let when = |e: &Value| {
            let last = s(e, &["lastTimestamp"]);
            if last.is_empty() {
                s(e, &["eventTime"])
            } else {
                last
            }
        };
        let mut events: Vec<Value> = found["items"].as_array().cloned().unwrap_or_default();
        events.sort_by_key(|e| std::cmp::Reverse(when(e)));
        let total = events.len();
        events.truncate(MAX_HISTORY.min(self.max_rows));
        let events: Vec<Value> = events
            .iter()
            .map(|e| json!({
                "type": s(e, &["type"]), "reason": s(e, &["reason"]), "message": s(e, &["message"]),
                "object": format!("{}/{}", s(e, &["involvedObject", "kind"]), s(e, &["involvedObject", "name"])),
                "count": e.get("count").cloned().unwrap_or(json!(1)), "lastTimestamp": when(e),
            }))
            .collect();
        let mut text = format!("{total} events of {name}, newest first\n");
        for e in &events {
            let _ = writeln!(
                text,
                "{} {} {} {} (x{}): {}",
                s(e, &["lastTimestamp"]),
                s(e, &["type"]),
                s(e, &["reason"]),
                s(e, &["object"]),
                s(e, &["count"]),
                s(e, &["message"])
            );
        }
        finish(
            json!({"events": events, "total": total, "truncated": total > events.len()}),
            text,
            ctx,
        )
    }

    pub(super) async fn app_history(&self, p: params::App, ctx: &CallContext) -> CallToolResult {
        let app = match self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            Ok(app) => app,
            Err(e) => return e,
        };
        let mut history: Vec<Value> = app["status"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        history.reverse();
        let total = history.len();
        history.truncate(MAX_HISTORY);
        let history: Vec<Value> = history
            .iter()
            .map(|h| {
                let source = h.get("source").cloned().or_else(|| h["sources"].get(0).cloned()).unwrap_or_default();
                json!({
                    "id": h.get("id").cloned().unwrap_or(Value::Null),
                    "revision": s(h, &["revision"]),
                    "deployedAt": s(h, &["deployedAt"]),
                    "deployStartedAt": s(h, &["deployStartedAt"]),
                    "initiatedBy": h["initiatedBy"].get("username").cloned().or_else(|| h["initiatedBy"].get("automated").map(|a| json!(if a == &json!(true) { "automated" } else { "" }))).unwrap_or(Value::Null),
                    "repoURL": s(&source, &["repoURL"]),
                    "path": s(&source, &["path"]),
                    "targetRevision": s(&source, &["targetRevision"]),
                })
            })
            .collect();
        let name = p.name.trim();
        let mut text = format!(
            "{total} deploys of {name}, newest first (current: rev {})\n",
            short(&s(&app, &["status", "sync", "revision"]))
        );
        for h in &history {
            let _ = write!(
                text,
                "id {} rev {} deployed {}",
                s(h, &["id"]),
                short(&s(h, &["revision"])),
                s(h, &["deployedAt"])
            );
            let by = s(h, &["initiatedBy"]);
            if !by.is_empty() {
                let _ = write!(text, " by {by}");
            }
            let _ = writeln!(
                text,
                " from {}@{}",
                s(h, &["path"]),
                s(h, &["targetRevision"])
            );
        }
        finish(
            json!({"history": history, "total": total, "truncated": total > history.len()}),
            text,
            ctx,
        )
    }

    /// The answer of a sync or rollback: the operation Argo CD started (or, dry, would run).
    fn operation_result(
        &self,
        app: &Value,
        what: &str,
        dry_run: bool,
        prune: bool,
        ctx: &CallContext,
    ) -> CallToolResult {
        let name = s(app, &["metadata", "name"]);
        let operation = &app["operation"];
        let state = &app["status"]["operationState"];
        let mut text = format!(
            "{what} of {name} {} (prune {}, dry run {})",
            if dry_run {
                "ran as a dry run: nothing was applied"
            } else {
                "started"
            },
            if prune { "on" } else { "off" },
            if dry_run { "on" } else { "off" }
        );
        let phase = s(state, &["phase"]);
        if !phase.is_empty() {
            let _ = write!(
                text,
                "; operation phase {phase}: {}",
                s(state, &["message"])
            );
        }
        text.push_str("\nFollow it with argocd_get_application and argocd_get_app_resources.\n");
        let value = json!({
            "application": name,
            "dryRun": dry_run,
            "prune": prune,
            "operation": operation,
            "operationPhase": phase,
        });
        finish(value, text, ctx)
    }

    pub(super) async fn sync(&self, p: params::Sync, ctx: &CallContext) -> CallToolResult {
        if let Err(e) = self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            return e;
        }
        let name = p.name.trim();
        let mut body = json!({"name": name, "prune": p.prune, "dryRun": p.dry_run});
        if let Some(revision) = p
            .revision
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            body["revision"] = json!(revision);
        }
        if let Some(ns) = p
            .app_namespace
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            body["appNamespace"] = json!(ns);
        }
        match self
            .http
            .request(reqwest::Method::POST, self.app_url(name, &["sync"]))
            .json(&body)
            .timeout(ctx.timeout)
            .fetch::<Value>()
            .await
        {
            Ok(app) => self.operation_result(&app, "sync", p.dry_run, p.prune, ctx),
            Err(e) => self.fail(e, name),
        }
    }

    pub(super) async fn rollback(&self, p: params::Rollback, ctx: &CallContext) -> CallToolResult {
        let app = match self.app(&p.name, p.app_namespace.as_deref(), ctx).await {
            Ok(app) => app,
            Err(e) => return e,
        };
        let known = app["status"]["history"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .any(|h| h["id"] == json!(p.id));
        let name = p.name.trim();
        if !known {
            return output::error(format!(
                "application {name} has no history id {}; see the ids with argocd_get_app_history",
                p.id
            ));
        }
        let mut body = json!({"name": name, "id": p.id, "prune": p.prune, "dryRun": p.dry_run});
        if let Some(ns) = p
            .app_namespace
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            body["appNamespace"] = json!(ns);
        }
        match self
            .http
            .request(reqwest::Method::POST, self.app_url(name, &["rollback"]))
            .json(&body)
            .timeout(ctx.timeout)
            .fetch::<Value>()
            .await
        {
            Ok(app) => self.operation_result(
                &app,
                &format!("rollback to history id {}", p.id),
                p.dry_run,
                p.prune,
                ctx,
            ),
            Err(e) => self.fail(e, name),
        }
    }
}
