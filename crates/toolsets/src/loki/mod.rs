//! The `loki` link type: LogQL over Loki's HTTP API as five read tools (loki_query,
//! loki_query_range, loki_labels, loki_label_values, loki_series).
//!
//! Log lines are capped in count (the call's `limit`, at most the link's `maxRows`) and in
//! bytes (each line at [`MAX_LINE_BYTES`], the whole answer at the output cap), come newest
//! first unless asked otherwise, and are grouped by stream with the stream's labels shown
//! once. Metric queries render like Prometheus results ([`crate::series`]). A multi-tenant
//! Loki gets the link's `tenantId` as `X-Scope-OrgID` on every request; auth and TLS are the
//! shared HTTP client's ([`crate::http`]).

pub mod params;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::LokiBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::http::{HttpClient, HttpSettings};
use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output, with_args};

/// The most bytes of one log line a result carries.
pub const MAX_LINE_BYTES: usize = 2048;

/// The toolset of one Loki link.
pub struct LokiToolset {
    defs: Vec<ToolDef>,
    http: HttpClient,
    max_rows: usize,
}

/// The toolset of a `loki` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &LokiBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let headers = block
        .tenant_id
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| ("x-scope-orgid", t.clone()))
        .collect();
    let http = HttpClient::new(
        link,
        HttpSettings {
            service: "Loki",
            url_field: "loki.url",
            url: &block.url,
            tls: block.tls.as_ref(),
            permission_hint: "check that the gateway in front of Loki lets this identity read \
                              the tenant (loki.tenantId)",
            headers,
        },
    )?;
    let defs = tool_defs(http.base().as_str(), link.max_rows())
        .map_err(|e| BuildError::Invalid(format!("loki tools: {e}")))?;
    Ok(Arc::new(LokiToolset {
        defs,
        http,
        max_rows: link.max_rows(),
    }))
}

/// The link as a component of the stack topology: where Loki is and the tenant.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.loki {
        match crate::http::BaseUrl::parse("loki.url", &block.url) {
            Ok(url) => {
                endpoint.insert("url".to_owned(), url.to_string());
                endpoint.insert("host".to_owned(), url.host().to_owned());
                endpoint.insert("port".to_owned(), url.port().to_string());
            }
            Err(_) => {
                endpoint.insert("url".to_owned(), "(invalid)".to_owned());
            }
        }
        if let Some(tenant) = &block.tenant_id {
            endpoint.insert("tenant".to_owned(), tenant.clone());
        }
    }
    Component::of_link(link, "loki", "logs", endpoint)
}

fn tool_defs(url: &str, max_rows: usize) -> Result<Vec<ToolDef>, ToolDefError> {
    Ok(vec![
        ToolDef::read::<params::Query>(
            "loki_query",
            format!(
                "Evaluate a LogQL metric query at one instant on Loki at {url}, e.g. error \
                 counts per app over the last 5 minutes: each series with its labels (shared \
                 ones shown once) and value. For log lines use loki_query_range."
            ),
        )?,
        ToolDef::read::<params::QueryRange>(
            "loki_query_range",
            format!(
                "Read log lines (or a metric query's series) from Loki at {url} over a time \
                 range, default the last hour (`since`, or `start`/`end`). Lines come newest \
                 first unless `direction: forward`, grouped by stream with its labels shown \
                 once; at most `limit` lines (and {max_rows}), each cut at {MAX_LINE_BYTES} \
                 bytes. Filter in LogQL: `{{app=\"api\"}} |= \"error\"`."
            ),
        )?,
        ToolDef::read::<params::Labels>(
            "loki_labels",
            "List the label names of the log streams Loki has in a time range (default the \
             last hour), to build a stream selector.",
        )?,
        ToolDef::read::<params::LabelValues>(
            "loki_label_values",
            format!(
                "List the values of one label (e.g. `namespace`, `app`) in a time range \
                 (default the last hour), optionally only from streams matching a selector. At \
                 most {max_rows} values."
            ),
        )?,
        ToolDef::read::<params::Series>(
            "loki_series",
            format!(
                "List the log streams (label sets) matching selectors in a time range \
                 (default the last hour). At most {max_rows} streams."
            ),
        )?,
    ])
}

impl Toolset for LokiToolset {
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
                "loki_query" => with_args(args, |p| self.query(p, ctx)).await,
                "loki_query_range" => with_args(args, |p| self.query_range(p, ctx)).await,
                "loki_labels" => with_args(args, |p| self.labels(p, ctx)).await,
                "loki_label_values" => with_args(args, |p| self.label_values(p, ctx)).await,
                "loki_series" => with_args(args, |p| self.series(p, ctx)).await,
                other => output::error(format!("tool `{other}` is not a loki tool")),
            }
        })
    }
}
