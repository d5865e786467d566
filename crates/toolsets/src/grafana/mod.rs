//! The `grafana` link type: dashboards, datasources, folders and alerts of a Grafana, as six
//! read tools (grafana_list_dashboards, grafana_get_dashboard, grafana_list_datasources,
//! grafana_get_alerts, grafana_list_folders, grafana_query_datasource) and, with writeAccess,
//! grafana_create_annotation.
//!
//! grafana_query_datasource goes through Grafana's `/api/ds/query`, so a model can reach any
//! datasource Grafana has — including ones with no link of their own — with Grafana's
//! permissions. Dashboards come back as their panels and queries, not the whole JSON unless
//! asked. Credentials: a service-account `token` (bearer) or `username`/`password`; the
//! link's `orgId` is sent as `X-Grafana-Org-Id`.

pub mod params;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::GrafanaBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::http::{HttpClient, HttpSettings};
use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, NoArgs, ToolDef, ToolDefError, Toolset, output, with_args};

/// The toolset of one Grafana link.
pub struct GrafanaToolset {
    defs: Vec<ToolDef>,
    http: HttpClient,
    max_rows: usize,
}

/// The toolset of a `grafana` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &GrafanaBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let headers = block
        .org_id
        .map(|org| vec![("x-grafana-org-id", org.to_string())])
        .unwrap_or_default();
    let http = HttpClient::new(
        link,
        HttpSettings {
            service: "Grafana",
            url_field: "grafana.url",
            url: &block.url,
            tls: block.tls.as_ref(),
            permission_hint: "the service account needs the Viewer role for reads (Editor for \
                              annotations) and query permission on the datasource",
            headers,
        },
    )?;
    let defs = tool_defs(http.base().as_str(), link.max_rows())
        .map_err(|e| BuildError::Invalid(format!("grafana tools: {e}")))?;
    Ok(Arc::new(GrafanaToolset {
        defs,
        http,
        max_rows: link.max_rows(),
    }))
}

/// The link as a component of the stack topology.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.grafana {
        if let Ok(url) = crate::http::BaseUrl::parse("grafana.url", &block.url) {
            endpoint.insert("url".to_owned(), url.to_string());
            endpoint.insert("host".to_owned(), url.host().to_owned());
            endpoint.insert("port".to_owned(), url.port().to_string());
        }
        if let Some(org) = block.org_id {
            endpoint.insert("orgId".to_owned(), org.to_string());
        }
    }
    Component::of_link(link, "grafana", "dashboards", endpoint)
}

fn tool_defs(url: &str, max_rows: usize) -> Result<Vec<ToolDef>, ToolDefError> {
    Ok(vec![
        ToolDef::read::<params::ListDashboards>(
            "grafana_list_dashboards",
            format!(
                "Search the dashboards of Grafana at {url} by title text, tags or folder: uid, \
                 title, folder, tags and URL. At most {max_rows}."
            ),
        )?,
        ToolDef::read::<params::GetDashboard>(
            "grafana_get_dashboard",
            "One dashboard by uid: its title, folder, variables, and each panel with its type, \
             datasource and queries (PromQL, LogQL, SQL) — what to run with \
             grafana_query_datasource or the metrics tools. `full: true` returns the whole JSON.",
        )?,
        ToolDef::read::<NoArgs>(
            "grafana_list_datasources",
            "List Grafana's datasources: uid, name, type (prometheus, loki, postgres, ...), URL \
             and which is the default. Use the uid with grafana_query_datasource.",
        )?,
        ToolDef::read::<params::GetAlerts>(
            "grafana_get_alerts",
            "List the alerts of Grafana-managed alert rules: name, state (firing, pending, \
             normal), since when, labels, annotations and value.",
        )?,
        ToolDef::read::<NoArgs>(
            "grafana_list_folders",
            format!(
                "List the dashboard folders of Grafana at {url}: uid and title. At most {max_rows}."
            ),
        )?,
        ToolDef::read::<params::QueryDatasource>(
            "grafana_query_datasource",
            format!(
                "Run one query against any Grafana datasource through Grafana's /api/ds/query \
                 (Prometheus, Loki, SQL and others, also datasources no link reaches directly) \
                 over a time range (default the last hour): the result frames as columns and \
                 rows, at most {max_rows} rows a frame."
            ),
        )?,
        ToolDef::write::<params::CreateAnnotation>(
            "grafana_create_annotation",
            "Add an annotation (a marked point or region in time, with text and tags) to a \
             dashboard or the whole organisation, e.g. to mark a deploy or an incident. Adds \
             only; nothing is changed or removed.",
        )?
        .destructive(false),
    ])
}

impl Toolset for GrafanaToolset {
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
                "grafana_list_dashboards" => {
                    with_args(args, |p| self.list_dashboards(p, ctx)).await
                }
                "grafana_get_dashboard" => with_args(args, |p| self.get_dashboard(p, ctx)).await,
                "grafana_list_datasources" => {
                    with_args(args, |_: NoArgs| self.list_datasources(ctx)).await
                }
                "grafana_get_alerts" => with_args(args, |p| self.get_alerts(p, ctx)).await,
                "grafana_list_folders" => with_args(args, |_: NoArgs| self.list_folders(ctx)).await,
                "grafana_query_datasource" => {
                    with_args(args, |p| self.query_datasource(p, ctx)).await
                }
                "grafana_create_annotation" => {
                    with_args(args, |p| self.create_annotation(p, ctx)).await
                }
                other => output::error(format!("tool `{other}` is not a grafana tool")),
            }
        })
    }
}
