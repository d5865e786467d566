//! AiTask: its references checked, its conditions set. The controller never runs a task: the
//! server's Dark Factory schedules and runs it and owns the run fields of the status.
//!
//! ReferencesResolved checks that the McpServer exists; that the task has an agent (the one
//! `spec.agentRef` names, serving the same McpServer, or else an enabled Agent of that server
//! to fall back on); that every `next` task exists on the same McpServer and that following
//! `next` never leads back to the task; and that the notification Secrets have their keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use linkmcp_api::names::{condition, reason};
use linkmcp_api::notify::NotificationSpec;
use linkmcp_api::{Agent, AiTask, McpServer};

use crate::agent::{OWNED_CONDITIONS, RECHECK, ValidationStatus};
use crate::conditions::{Cond, finalize, owned};
use crate::context::Context;
use crate::error::Error;
use crate::secrets::Secrets;
use crate::status::write;

/// What a task's references are checked against: the objects of its namespace.
pub struct Scope<'a> {
    /// Whether the task's McpServer exists.
    pub server_found: bool,
    /// Every Agent of the namespace.
    pub agents: &'a [Agent],
    /// Every AiTask of the namespace.
    pub tasks: &'a [AiTask],
    /// The Secrets the task's notifications name.
    pub secrets: &'a Secrets,
}

/// The first chain of `next` links from `start` back to it, as task names.
pub fn find_cycle(start: &str, tasks: &[AiTask]) -> Option<Vec<String>> {
    let next: BTreeMap<String, &[String]> = tasks
        .iter()
        .map(|t| (t.name_any(), t.spec.next.as_slice()))
        .collect();
    // Depth-first search keeping the path; `done` holds tasks fully explored without a way
    // back to `start`.
    fn walk(
        at: &str,
        start: &str,
        next: &BTreeMap<String, &[String]>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> bool {
        for to in next.get(at).copied().unwrap_or_default() {
            if to == start {
                path.push(to.clone());
                return true;
            }
            if done.contains(to) || path.contains(to) {
                continue;
            }
            path.push(to.clone());
            if walk(to, start, next, path, done) {
                return true;
            }
            path.pop();
            done.insert(to.clone());
        }
        false
    }
    let mut path = vec![start.to_owned()];
    let mut done = BTreeSet::new();
    walk(start, start, &next, &mut path, &mut done).then_some(path)
}

/// The first unresolved reference of `task`, as (reason, message).
fn problem(task: &AiTask, scope: &Scope<'_>) -> Result<String, (&'static str, String)> {
    let server = &task.spec.server_ref.name;
    let namespace = task.namespace().unwrap_or_default();
    if !scope.server_found {
        return Err((
            reason::SERVER_NOT_FOUND,
            format!("McpServer {server} not found in namespace {namespace}"),
        ));
    }
    let agent = match &task.spec.agent_ref {
        Some(reference) => {
            let agent = scope
                .agents
                .iter()
                .find(|a| a.name_any() == reference.name)
                .ok_or_else(|| {
                    (
                        reason::AGENT_NOT_FOUND,
                        format!(
                            "spec.agentRef: Agent {} not found in namespace {namespace}",
                            reference.name
                        ),
                    )
                })?;
            if agent.spec.server_ref.name != *server {
                return Err((
                    reason::AGENT_NOT_FOUND,
                    format!(
                        "spec.agentRef: Agent {} serves McpServer {}, not {server}",
                        reference.name, agent.spec.server_ref.name
                    ),
                ));
            }
            reference.name.clone()
        }
        None => {
            let mut candidates: Vec<&Agent> = scope
                .agents
                .iter()
                .filter(|a| a.spec.server_ref.name == *server && a.spec.enabled)
                .collect();
            candidates.sort_by_key(|a| a.name_any());
            candidates.first().map(|a| a.name_any()).ok_or_else(|| {
                (
                    reason::AGENT_NOT_FOUND,
                    format!(
                        "no enabled Agent serves McpServer {server}: create one, or set \
                         spec.agentRef"
                    ),
                )
            })?
        }
    };
    for name in &task.spec.next {
        let next = scope
            .tasks
            .iter()
            .find(|t| t.name_any() == *name)
            .ok_or_else(|| {
                (
                    reason::TASK_NOT_FOUND,
                    format!("spec.next: AiTask {name} not found in namespace {namespace}"),
                )
            })?;
        if next.spec.server_ref.name != *server {
            return Err((
                reason::TASK_NOT_FOUND,
                format!(
                    "spec.next: AiTask {name} runs on McpServer {}, not {server}; a chain \
                     stays on one server",
                    next.spec.server_ref.name
                ),
            ));
        }
    }
    if let Some(cycle) = find_cycle(&task.name_any(), scope.tasks) {
        return Err((
            reason::CYCLE_IN_NEXT,
            format!(
                "spec.next leads back to this task: {}; remove one of these links",
                cycle.join(" -> ")
            ),
        ));
    }
    if let Some(notify) = &task.spec.notify
        && let Some(message) = notification_problem(notify, scope.secrets)
    {
        return Err((reason::SECRET_NOT_FOUND, message));
    }
    Ok(agent)
}

fn notification_problem(notify: &NotificationSpec, secrets: &Secrets) -> Option<String> {
    let webhook = notify
        .webhook
        .as_ref()
        .and_then(|w| w.authorization_secret_ref.as_ref())
        .and_then(|r| secrets.key(r).err())
        .map(|p| format!("spec.notify.webhook.authorizationSecretRef: {}", p.message));
    let email = notify.email.as_ref();
    let smtp = email
        .and_then(|e| e.smtp.as_ref())
        .and_then(|s| s.credentials_secret_ref.as_ref())
        .and_then(|r| secrets.resolve(r).err())
        .map(|p| format!("spec.notify.email.smtp.credentialsSecretRef: {}", p.message));
    let http = email
        .and_then(|e| e.http.as_ref())
        .and_then(|h| secrets.key(&h.api_key_secret_ref).err())
        .map(|p| format!("spec.notify.email.http.apiKeySecretRef: {}", p.message));
    webhook.or(smtp).or(http)
}

/// The Secrets a task's notifications name.
pub fn notification_secrets(task: &AiTask) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Some(notify) = &task.spec.notify {
        if let Some(r) = notify
            .webhook
            .as_ref()
            .and_then(|w| w.authorization_secret_ref.as_ref())
        {
            names.insert(r.name.clone());
        }
        if let Some(email) = &notify.email {
            if let Some(r) = email
                .smtp
                .as_ref()
                .and_then(|s| s.credentials_secret_ref.as_ref())
            {
                names.insert(r.name.clone());
            }
            if let Some(http) = &email.http {
                names.insert(http.api_key_secret_ref.name.clone());
            }
        }
    }
    names
}

/// The conditions of `task` in `scope`.
pub fn conditions(task: &AiTask, scope: &Scope<'_>) -> Vec<Cond> {
    match problem(task, scope) {
        Err((reason, message)) => vec![
            Cond::no(condition::READY, reason, message.clone()),
            Cond::no(condition::REFERENCES_RESOLVED, reason, message),
        ],
        Ok(agent) => {
            let server = &task.spec.server_ref.name;
            let mut ready = format!("runs with Agent {agent} on McpServer {server}");
            if task.spec.suspend {
                ready.push_str(" (suspended: scheduled runs are skipped)");
            }
            let mut references = format!("McpServer {server} and Agent {agent} found");
            if !task.spec.next.is_empty() {
                references.push_str(&format!("; next: {}", task.spec.next.join(", ")));
            }
            vec![
                Cond::yes(condition::READY, reason::RECONCILED, ready),
                Cond::yes(
                    condition::REFERENCES_RESOLVED,
                    reason::RECONCILED,
                    references,
                ),
            ]
        }
    }
}

/// The status the controller writes for `task`.
pub fn status(task: &AiTask, scope: &Scope<'_>, now: &Time) -> ValidationStatus {
    let previous = task
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    ValidationStatus {
        observed_generation: task.metadata.generation,
        conditions: finalize(
            &conditions(task, scope),
            previous,
            task.metadata.generation,
            now,
        ),
    }
}

/// Reconciles one AiTask.
#[tracing::instrument(skip(task, ctx), fields(task = %task.name_any(), namespace = task.namespace().unwrap_or_default()))]
pub async fn reconcile(task: Arc<AiTask>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = task.namespace().ok_or(Error::MissingMetadata {
        kind: "AiTask",
        field: "namespace",
    })?;
    let server = &task.spec.server_ref.name;
    let servers: Api<McpServer> = Api::namespaced(ctx.client.clone(), &namespace);
    let server_found = servers
        .get_opt(server)
        .await
        .map_err(|e| Error::kube(format!("reading McpServer {namespace}/{server}"), e))?
        .is_some();
    let agents = Api::<Agent>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing Agents in {namespace}"), e))?
        .items;
    let tasks = Api::<AiTask>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube(format!("listing AiTasks in {namespace}"), e))?
        .items;
    let secrets = Secrets::fetch(&ctx.client, &namespace, notification_secrets(&task)).await?;
    let scope = Scope {
        server_found,
        agents: &agents,
        tasks: &tasks,
        secrets: &secrets,
    };
    let desired = status(&task, &scope, &crate::link::now());
    let current = task.status.as_ref();
    let current_conditions = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    if desired.differs_from(
        current.and_then(|s| s.observed_generation),
        current_conditions,
    ) {
        let before = owned(current_conditions, &OWNED_CONDITIONS);
        write(&ctx, task.as_ref(), &desired, &before, &desired.conditions).await?;
    }
    Ok(Action::requeue(RECHECK))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;

    fn task(name: &str, server: &str, next: &[&str]) -> AiTask {
        AiTask {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            spec: serde_json::from_value(json!({
                "serverRef": {"name": server},
                "description": "check the database",
                "next": next,
            }))
            .unwrap(),
            status: None,
        }
    }

    fn agent(name: &str, server: &str, enabled: bool) -> Agent {
        Agent {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            spec: serde_json::from_value(json!({
                "serverRef": {"name": server}, "enabled": enabled,
            }))
            .unwrap(),
            status: None,
        }
    }

    fn check(task_name: &str, tasks: &[AiTask], agents: &[Agent]) -> Vec<Cond> {
        let secrets = Secrets::default();
        let scope = Scope {
            server_found: true,
            agents,
            tasks,
            secrets: &secrets,
        };
        let task = tasks.iter().find(|t| t.name_any() == task_name).unwrap();
        conditions(task, &scope)
    }

    #[test]
    fn a_cycle_in_next_is_named_hop_by_hop() {
        let tasks = [
            task("a", "srv", &["b"]),
            task("b", "srv", &["c"]),
            task("c", "srv", &["a"]),
            task("d", "srv", &["a"]),
        ];
        assert_eq!(find_cycle("a", &tasks).unwrap(), ["a", "b", "c", "a"]);
        assert_eq!(
            find_cycle("d", &tasks),
            None,
            "d leads into a cycle but not back to d"
        );
        let conds = check("b", &tasks, &[agent("sre", "srv", true)]);
        assert_eq!(conds[0].reason, reason::CYCLE_IN_NEXT);
        assert!(!conds[0].status);
        assert!(
            conds[0].message.contains("b -> c -> a -> b"),
            "{}",
            conds[0].message
        );
    }

    #[test]
    fn next_and_agent_must_exist_on_the_same_server() {
        let agents = [agent("sre", "srv", true), agent("other", "elsewhere", true)];
        let tasks = [task("a", "srv", &["missing"])];
        let conds = check("a", &tasks, &agents);
        assert_eq!(conds[1].reason, reason::TASK_NOT_FOUND);
        assert!(conds[1].message.contains("AiTask missing not found"));

        let tasks = [task("a", "srv", &["b"]), task("b", "elsewhere", &[])];
        let conds = check("a", &tasks, &agents);
        assert!(conds[0].message.contains("a chain stays on one server"));

        let mut with_ref = task("a", "srv", &[]);
        with_ref.spec.agent_ref = Some(linkmcp_api::common::LocalRef {
            name: "other".into(),
        });
        let conds = check("a", &[with_ref], &agents);
        assert_eq!(conds[0].reason, reason::AGENT_NOT_FOUND);
        assert!(
            conds[0]
                .message
                .contains("serves McpServer elsewhere, not srv")
        );
    }

    #[test]
    fn without_agent_ref_the_first_enabled_agent_is_used() {
        let agents = [
            agent("a-disabled", "srv", false),
            agent("b-sre", "srv", true),
            agent("c-ops", "srv", true),
        ];
        let tasks = [task("t", "srv", &[])];
        let conds = check("t", &tasks, &agents);
        assert!(conds[0].status);
        assert_eq!(conds[0].message, "runs with Agent b-sre on McpServer srv");

        let conds = check("t", &tasks, &agents[..1]);
        assert_eq!(conds[0].reason, reason::AGENT_NOT_FOUND);
        assert!(
            conds[0]
                .message
                .contains("no enabled Agent serves McpServer srv")
        );
    }
}
