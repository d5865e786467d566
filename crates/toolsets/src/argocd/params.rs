//! The typed parameters of the Argo CD tools; their doc comments are the descriptions a model
//! reads in each tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of argocd_list_applications.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListApplications {
    /// Only applications of this project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only applications matching this label selector, e.g. `team=payments`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Only applications whose name contains this text.
    #[serde(default)]
    pub name_contains: Option<String>,
}

/// Parameters naming one application.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// The application's name (from argocd_list_applications).
    pub name: String,
    /// The namespace the Application object lives in, when Argo CD manages applications in
    /// several namespaces. Empty: Argo CD's own.
    #[serde(default)]
    pub app_namespace: Option<String>,
}

/// Parameters of argocd_get_app_resources.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppResources {
    /// The application's name.
    pub name: String,
    /// The namespace of the Application object. Empty: Argo CD's own.
    #[serde(default)]
    pub app_namespace: Option<String>,
    /// Only resources that are out of sync or not healthy.
    #[serde(default)]
    pub problems_only: bool,
}

/// Parameters of argocd_sync_application.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// The application's name.
    pub name: String,
    /// The namespace of the Application object. Empty: Argo CD's own.
    #[serde(default)]
    pub app_namespace: Option<String>,
    /// The revision (commit, tag, branch) to sync to. Empty: the application's target.
    #[serde(default)]
    pub revision: Option<String>,
    /// Only show what would change; nothing is applied.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete resources that are no longer in git. Off unless asked.
    #[serde(default)]
    pub prune: bool,
}

/// Parameters of argocd_rollback.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The application's name.
    pub name: String,
    /// The namespace of the Application object. Empty: Argo CD's own.
    #[serde(default)]
    pub app_namespace: Option<String>,
    /// The history id to roll back to (from argocd_get_app_history).
    pub id: i64,
    /// Only show what would change; nothing is applied.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete resources that are not in that revision. Off unless asked.
    #[serde(default)]
    pub prune: bool,
}
