//! Agent: its references checked, its conditions set. The controller never runs an agent: the
//! server's Dark Factory does, and owns the run fields of the status.
//!
//! ReferencesResolved says whether the McpServer exists and the provider API key Secret has
//! its key (the McpServer reconciler copies that key into the server's credentials Secret);
//! Ready adds whether the agent may run at all (`spec.enabled`, the `linkmcp.io/paused`
//! annotation).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use linkmcp_api::names::{annotation, condition, reason};
use linkmcp_api::{Agent, McpServer};
use serde::Serialize;

use crate::conditions::{Cond, finalize, owned};
use crate::context::Context;
use crate::error::Error;
use crate::secrets::{Problem, Secrets};
use crate::status::{same_conditions, write};

/// The condition types the controller owns on Agents and AiTasks.
pub const OWNED_CONDITIONS: [&str; 2] = [condition::READY, condition::REFERENCES_RESOLVED];

/// How often an Agent or AiTask is validated again, besides the watches.
pub const RECHECK: Duration = Duration::from_secs(600);

/// The part of an Agent's or AiTask's status the controller writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationStatus {
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}

impl ValidationStatus {
    /// Whether this differs from the current `observed_generation` and controller-owned
    /// conditions of an object.
    pub fn differs_from(&self, generation: Option<i64>, conditions: &[Condition]) -> bool {
        self.observed_generation != generation
            || !same_conditions(&owned(conditions, &OWNED_CONDITIONS), &self.conditions)
    }
}

/// What an Agent's references resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct References {
    /// Whether its McpServer exists.
    pub server_found: bool,
    /// The API key's problem, when it names one that does not resolve.
    pub api_key: Option<Problem>,
}

/// The conditions of `agent` given its references.
pub fn conditions(agent: &Agent, refs: &References) -> Vec<Cond> {
    let server = &agent.spec.server_ref.name;
    let namespace = agent.namespace().unwrap_or_default();
    let problem = if !refs.server_found {
        Some((
            reason::SERVER_NOT_FOUND,
            format!("McpServer {server} not found in namespace {namespace}"),
        ))
    } else {
        refs.api_key
            .as_ref()
            .map(|p| (p.reason, format!("spec.apiKeySecretRef: {}", p.message)))
    };
    let references = match &problem {
        Some((reason, message)) => {
            Cond::no(condition::REFERENCES_RESOLVED, reason, message.clone())
        }
        None => Cond::yes(
            condition::REFERENCES_RESOLVED,
            reason::RECONCILED,
            match &agent.spec.api_key_secret_ref {
                Some(key) => format!(
                    "McpServer {server} found; API key from Secret {} key '{}'",
                    key.name, key.key
                ),
                None => format!("McpServer {server} found; no API key configured"),
            },
        ),
    };
    let paused = agent
        .annotations()
        .get(annotation::PAUSED)
        .is_some_and(|v| v == "true");
    let ready = match &problem {
        Some((reason, message)) => Cond::no(condition::READY, reason, message.clone()),
        None if !agent.spec.enabled => Cond::no(
            condition::READY,
            reason::AGENT_DISABLED,
            "spec.enabled is false: the agent's tasks do not run",
        ),
        None if paused => Cond::no(
            condition::READY,
            reason::AGENT_PAUSED,
            format!(
                "annotation {} is \"true\": the agent's tasks do not run until it is removed",
                annotation::PAUSED
            ),
        ),
        None => Cond::yes(
            condition::READY,
            reason::RECONCILED,
            format!(
                "runs tasks of McpServer {server} with model {}",
                agent.spec.model
            ),
        ),
    };
    vec![ready, references]
}

/// The status the controller writes for `agent`.
pub fn status(agent: &Agent, refs: &References, now: &Time) -> ValidationStatus {
    let previous = agent
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    ValidationStatus {
        observed_generation: agent.metadata.generation,
        conditions: finalize(
            &conditions(agent, refs),
            previous,
            agent.metadata.generation,
            now,
        ),
    }
}

/// Reconciles one Agent.
#[tracing::instrument(skip(agent, ctx), fields(agent = %agent.name_any(), namespace = agent.namespace().unwrap_or_default()))]
pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = agent.namespace().ok_or(Error::MissingMetadata {
        kind: "Agent",
        field: "namespace",
    })?;
    let server = &agent.spec.server_ref.name;
    let servers: Api<McpServer> = Api::namespaced(ctx.client.clone(), &namespace);
    let server_found = servers
        .get_opt(server)
        .await
        .map_err(|e| Error::kube(format!("reading McpServer {namespace}/{server}"), e))?
        .is_some();
    let api_key = match &agent.spec.api_key_secret_ref {
        None => None,
        Some(reference) => {
            let secrets = Secrets::fetch(
                &ctx.client,
                &namespace,
                BTreeSet::from([reference.name.clone()]),
            )
            .await?;
            secrets.key(reference).err()
        }
    };
    let refs = References {
        server_found,
        api_key,
    };
    let desired = status(&agent, &refs, &crate::link::now());
    let current = agent.status.as_ref();
    let current_conditions = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    if desired.differs_from(
        current.and_then(|s| s.observed_generation),
        current_conditions,
    ) {
        let before = owned(current_conditions, &OWNED_CONDITIONS);
        write(&ctx, agent.as_ref(), &desired, &before, &desired.conditions).await?;
    }
    Ok(Action::requeue(RECHECK))
}
