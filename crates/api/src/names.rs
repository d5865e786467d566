//! Shared names: condition types and reasons, label and annotation keys, field managers.
//!
//! The controller and the server meet only in the API server; these constants are the
//! vocabulary they agree on, so a typo cannot split it in two.

/// Condition types.
pub mod condition {
    /// The object is fully usable: every kind sets it.
    pub const READY: &str = "Ready";
    /// McpLink: its credentials Secret and every mapped key were found and copied.
    pub const CREDENTIALS_RESOLVED: &str = "CredentialsResolved";
    /// McpServer: the server Deployment has its replicas available.
    pub const AVAILABLE: &str = "Available";
    /// Agent / AiTask: the references (server, agent, Secrets, next tasks) resolve.
    pub const REFERENCES_RESOLVED: &str = "ReferencesResolved";
    /// McpServer: an optional object (ServiceMonitor, HTTPRoute, ...) was asked for but its API
    /// is not installed in the cluster.
    pub const OPTIONAL_API_MISSING: &str = "OptionalApiMissing";
}

/// Condition reasons (CamelCase, as Kubernetes expects).
pub mod reason {
    pub const RECONCILED: &str = "Reconciled";
    pub const SERVER_NOT_FOUND: &str = "ServerNotFound";
    pub const AGENT_NOT_FOUND: &str = "AgentNotFound";
    pub const TASK_NOT_FOUND: &str = "TaskNotFound";
    pub const CYCLE_IN_NEXT: &str = "CycleInNext";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
    pub const CREDENTIALS_COPIED: &str = "CredentialsCopied";
    pub const NO_CREDENTIALS: &str = "NoCredentials";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const DUPLICATE_TOOL: &str = "DuplicateTool";
    pub const BACKEND_UNREACHABLE: &str = "BackendUnreachable";
    pub const TOOLS_REGISTERED: &str = "ToolsRegistered";
    pub const DEPLOYMENT_PROGRESSING: &str = "DeploymentProgressing";
    pub const DEPLOYMENT_AVAILABLE: &str = "DeploymentAvailable";
    pub const API_NOT_INSTALLED: &str = "ApiNotInstalled";
    pub const AGENT_DISABLED: &str = "AgentDisabled";
    pub const AGENT_PAUSED: &str = "AgentPaused";
    pub const SUSPENDED: &str = "Suspended";
    pub const RUN_SUCCEEDED: &str = "RunSucceeded";
    pub const RUN_FAILED: &str = "RunFailed";
}

/// Label keys.
pub mod label {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// On every child object: the McpServer it belongs to.
    pub const SERVER: &str = "linkmcp.io/server";
}

/// Annotation keys.
pub mod annotation {
    /// On an AiTask: any new value triggers one run
    /// (`kubectl annotate aitask X linkmcp.io/run-now=$(date +%s)`).
    pub const RUN_NOW: &str = "linkmcp.io/run-now";
    /// On an Agent: `"true"` pauses it at run time without editing its spec, so GitOps tools
    /// see no drift in `spec.enabled`. ArgoCD is told to ignore this annotation.
    pub const PAUSED: &str = "linkmcp.io/paused";
    /// On the server's pod template: a hash of its settings, so a settings change rolls the pods.
    pub const CONFIG_HASH: &str = "linkmcp.io/config-hash";
}

/// Server-side apply field managers: one per writer, so each owns its own fields.
pub mod manager {
    pub const CONTROLLER: &str = "linkmcp-controller";
    pub const SERVER: &str = "linkmcp-server";
}

/// Value of the `app.kubernetes.io/managed-by` label on everything the controller creates.
pub const MANAGED_BY_VALUE: &str = "linkmcp-controller";
/// Value of `app.kubernetes.io/name` on the server's objects.
pub const SERVER_APP_NAME: &str = "linkmcp-server";

/// Name of the Secret the controller fills with an McpServer's link and agent credentials.
pub fn credentials_secret_name(server: &str) -> String {
    format!("{server}-credentials")
}

/// Name of the ConfigMap holding an McpServer's settings.
pub fn settings_configmap_name(server: &str) -> String {
    format!("{server}-settings")
}

/// Name of the Lease the replicas of one McpServer use to elect the Dark Factory scheduler.
pub fn scheduler_lease_name(server: &str) -> String {
    format!("{server}-scheduler")
}

/// Keys of the server's credentials Secret (`<server>-credentials`), which the controller fills
/// and the server reads. One Secret holds everything the server needs, so its ServiceAccount can
/// be limited to that one Secret by name.
pub mod credentials_key {
    /// A credential of a link: `link.<link>.<credential>` (e.g. `link.orders-db.password`).
    pub fn link(link: &str, credential: &str) -> String {
        format!("link.{link}.{credential}")
    }

    /// The provider API key of an Agent: `agent.<agent>.apiKey`.
    pub fn agent_api_key(agent: &str) -> String {
        format!("agent.{agent}.apiKey")
    }

    /// A client API key of the McpServer: `apikey.<key id>`.
    pub fn api_key(key_id: &str) -> String {
        format!("apikey.{key_id}")
    }

    /// The value of key `key` of Secret `secret`, copied because a notification setting names
    /// it (webhook authorization, SMTP username/password, email API key): `ref.<secret>.<key>`.
    /// The server looks values up by the same (secret, key) pair the spec names.
    pub fn secret_ref(secret: &str, key: &str) -> String {
        format!("ref.{secret}.{key}")
    }
}
