//! The typed parameters of the Grafana tools; their doc comments are the descriptions a model
//! reads in each tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Parameters of grafana_list_dashboards.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDashboards {
    /// Search text matched against dashboard titles. Empty: every dashboard.
    #[serde(default)]
    pub query: String,
    /// Only dashboards carrying all of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only dashboards in this folder (its uid, from grafana_list_folders).
    #[serde(default)]
    pub folder_uid: Option<String>,
}

/// Parameters of grafana_get_dashboard.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDashboard {
    /// The dashboard's uid (from grafana_list_dashboards).
    pub uid: String,
    /// Return the whole dashboard JSON (capped) instead of its panels and their queries.
    #[serde(default)]
    pub full: bool,
}

/// Parameters of grafana_get_alerts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetAlerts {
    /// Only alerts in this state: `firing` (alerting), `pending` or `normal`. Default: all.
    #[serde(default)]
    pub state: Option<String>,
}

/// Parameters of grafana_query_datasource.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDatasource {
    /// The datasource's uid (from grafana_list_datasources).
    pub datasource_uid: String,
    /// The query in the datasource's own query model, as a panel's target holds it: e.g.
    /// `{"expr": "up"}` for Prometheus, `{"expr": "{app=\"api\"}"}` for Loki,
    /// `{"rawSql": "SELECT ...", "format": "table"}` for SQL datasources.
    pub query: Map<String, Value>,
    /// Start of the range: `now-1h` (default), `now-6h`, or epoch milliseconds.
    #[serde(default)]
    pub from: Option<String>,
    /// End of the range: `now` (default) or epoch milliseconds.
    #[serde(default)]
    pub to: Option<String>,
}

/// Parameters of grafana_create_annotation.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAnnotation {
    /// The annotation's text, e.g. `Deployed api v2.3.1`.
    pub text: String,
    /// Tags, e.g. `["deploy", "api"]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Attach it to this dashboard (uid). Empty: an organisation-wide annotation.
    #[serde(default)]
    pub dashboard_uid: Option<String>,
    /// Attach it to this panel of the dashboard.
    #[serde(default)]
    pub panel_id: Option<i64>,
    /// When: `now` (default), `now-10m`, an RFC 3339 time or unix seconds.
    #[serde(default)]
    pub time: Option<String>,
    /// End of a region annotation, in the same forms. Empty: a point in time.
    #[serde(default)]
    pub time_end: Option<String>,
}
