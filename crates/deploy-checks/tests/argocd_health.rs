//! The ArgoCD health checks in deploy/argocd/health, run by an embedded Lua 5.4 the way ArgoCD
//! runs them (the object as the global `obj`, the chunk returns `{status, message}`), against
//! sample statuses of each kind.

use linkmcp_deploy_checks::repo_root;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

fn health(kind: &str, object: &Value) -> (String, String) {
    let path = repo_root().join(format!("deploy/argocd/health/linkmcp.io/{kind}/health.lua"));
    let script =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lua = Lua::new();
    let obj = lua
        .to_value(object)
        .unwrap_or_else(|e| panic!("converting the object: {e}"));
    lua.globals()
        .set("obj", obj)
        .unwrap_or_else(|e| panic!("{e}"));
    let hs: Table = lua
        .load(&script)
        .set_name(path.display().to_string())
        .eval()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let status: String = hs.get("status").unwrap_or_else(|e| panic!("status: {e}"));
    let message: Option<String> = hs.get("message").unwrap_or_else(|e| panic!("message: {e}"));
    (status, message.unwrap_or_default())
}

fn object(generation: i64, status: Value) -> Value {
    json!({
        "apiVersion": "linkmcp.io/v1alpha1",
        "metadata": {"name": "x", "namespace": "y", "generation": generation},
        "status": status
    })
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    })
}

fn check(kind: &str, object: &Value, status: &str, message: &str) {
    let (got_status, got_message) = health(kind, object);
    assert_eq!(
        (got_status.as_str(), got_message.as_str()),
        (status, message),
        "{kind} {object}"
    );
}

#[test]
fn condition_kinds_follow_ready_and_observed_generation() {
    for kind in ["McpServer", "McpLink", "Agent"] {
        let no_status = json!({"metadata": {"name": "x", "generation": 1}});
        check(
            kind,
            &no_status,
            "Progressing",
            "Waiting for the linkmcp controller",
        );
        check(
            kind,
            &object(
                2,
                json!({"observedGeneration": 2, "conditions": [ready("True", "Ready", "3 links, 21 tools")]}),
            ),
            "Healthy",
            "3 links, 21 tools",
        );
        check(
            kind,
            &object(
                3,
                json!({"observedGeneration": 2, "conditions": [ready("True", "Ready", "ok")]}),
            ),
            "Progressing",
            "Waiting for the controller to observe generation 3",
        );
        check(
            kind,
            &object(1, json!({"conditions": [ready("True", "Ready", "ok")]})),
            "Progressing",
            "Waiting for the controller to observe generation 1",
        );
        check(
            kind,
            &object(
                1,
                json!({"observedGeneration": 1, "conditions": [ready("Unknown", "Rolling", "1 of 2 replicas ready")]}),
            ),
            "Progressing",
            "1 of 2 replicas ready",
        );
        check(
            kind,
            &object(
                1,
                json!({"observedGeneration": 1, "conditions": [
                    {"type": "CredentialsResolved", "status": "True", "reason": "Resolved", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    ready("False", "SecretNotFound", "Secret orders-db not found in namespace y")
                ]}),
            ),
            "Degraded",
            "Secret orders-db not found in namespace y",
        );
        check(
            kind,
            &object(1, json!({"observedGeneration": 1, "conditions": []})),
            "Progressing",
            "Waiting for the Ready condition",
        );
        check(
            kind,
            &object(
                1,
                json!({"observedGeneration": 1, "conditions": [ready("False", "Invalid", "")]}),
            ),
            "Degraded",
            "Invalid",
        );
    }
}

#[test]
fn aitask_is_healthy_unless_its_last_run_failed() {
    let ok = ready("True", "Valid", "agent sre, 4 tools");
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Succeeded", "lastResult": "no slow queries", "conditions": [ok.clone()]}),
        ),
        "Healthy",
        "Succeeded: no slow queries",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Pending", "conditions": [ok.clone()]}),
        ),
        "Healthy",
        "Pending",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Suspended", "conditions": [ok.clone()]}),
        ),
        "Healthy",
        "Suspended",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Running", "conditions": [ok.clone()]}),
        ),
        "Healthy",
        "Running",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Failed", "lastResult": "tool pg_query timed out after 30s", "conditions": [ok.clone()]}),
        ),
        "Degraded",
        "tool pg_query timed out after 30s",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "phase": "Failed", "conditions": [ok.clone()]}),
        ),
        "Degraded",
        "The last run failed",
    );
    check(
        "AiTask",
        &object(
            2,
            json!({"observedGeneration": 1, "phase": "Succeeded", "conditions": [ok]}),
        ),
        "Progressing",
        "Waiting for the controller to observe generation 2",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "conditions": [ready("False", "AgentNotFound", "Agent sre not found")]}),
        ),
        "Degraded",
        "Agent sre not found",
    );
    check(
        "AiTask",
        &object(
            1,
            json!({"observedGeneration": 1, "conditions": [ready("Unknown", "Pending", "")]}),
        ),
        "Progressing",
        "Waiting for the Ready condition",
    );
}
