//! The McpServer's status: where it is reached, what it serves, and whether it is up.
//!
//! - `Available`: the Deployment reports the Available condition (its minimum of replicas is
//!   ready).
//! - `Ready`: Available, the spec is valid and applied, and the server's own references (API
//!   keys, notification credentials) resolve. Links are explained on each McpLink; the
//!   message names those that are not served.
//! - `OptionalApiMissing`: True, naming what to install, when the spec asks for an object
//!   whose API the cluster lacks.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use linkmcp_api::names::{condition, reason};
use linkmcp_api::{McpServer, McpServerStatus};

use super::build::{Kind, endpoint};
use crate::conditions::{Cond, finalize, owned};
use crate::link::evaluate::LinkEval;
use crate::secrets::Problem;
use crate::status::same_conditions;

/// The condition types the controller owns on an McpServer.
pub const OWNED_CONDITIONS: [&str; 3] = [
    condition::READY,
    condition::AVAILABLE,
    condition::OPTIONAL_API_MISSING,
];

/// What the status is computed from.
pub struct Observed<'a> {
    /// The server's links, evaluated.
    pub links: &'a [LinkEval],
    /// Unresolved references of the McpServer itself, with the field naming each.
    pub problems: &'a [(String, Problem)],
    /// Why the spec cannot be applied: a validation problem or the API server's refusal.
    pub invalid: Option<&'a str>,
    /// Optional kinds asked for whose API is missing.
    pub missing_apis: &'a [Kind],
    /// The Deployment, as the API server has it.
    pub deployment: Option<&'a Deployment>,
}

/// The status `server` should show.
pub fn compute(server: &McpServer, observed: &Observed<'_>, now: &Time) -> McpServerStatus {
    let namespace = server.namespace().unwrap_or_default();
    let deployment_status = observed.deployment.and_then(|d| d.status.as_ref());
    let ready_replicas = deployment_status
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let wanted = observed
        .deployment
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(server.spec.replicas);
    let available = deployment_status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
        .is_some_and(|c| c.status == "True");
    let replicas = format!("{ready_replicas} of {wanted} replicas ready");
    let available_cond = if available {
        Cond::yes(
            condition::AVAILABLE,
            reason::DEPLOYMENT_AVAILABLE,
            replicas.clone(),
        )
    } else {
        Cond::no(
            condition::AVAILABLE,
            reason::DEPLOYMENT_PROGRESSING,
            format!(
                "Deployment {}: {replicas}; `kubectl describe deployment {} -n {namespace}` \
                 shows why",
                server.name_any(),
                server.name_any()
            ),
        )
    };

    let tools: usize = observed
        .links
        .iter()
        .filter_map(|l| l.tools.as_ref().ok())
        .map(|t| t.names.len())
        .sum();
    let not_served: Vec<String> = observed
        .links
        .iter()
        .filter_map(|l| {
            let not = l.tools.as_ref().err()?;
            Some(format!("{} ({})", l.name, not.reason))
        })
        .collect();

    let ready = if let Some(invalid) = observed.invalid {
        Cond::no(condition::READY, reason::INVALID_SPEC, invalid)
    } else if let Some((field, problem)) = observed.problems.first() {
        Cond::no(
            condition::READY,
            problem.reason,
            format!("{field}: {}", problem.message),
        )
    } else if !available {
        Cond::no(
            condition::READY,
            reason::DEPLOYMENT_PROGRESSING,
            format!("waiting for the server: {replicas}"),
        )
    } else {
        let mut message = format!(
            "serving {tools} tools of {} links at {}",
            observed.links.len(),
            endpoint(server, &namespace)
        );
        if !not_served.is_empty() {
            message.push_str(&format!(
                "; links not served (see their Ready condition): {}",
                not_served.join(", ")
            ));
        }
        Cond::yes(condition::READY, reason::RECONCILED, message)
    };

    let optional = if observed.missing_apis.is_empty() {
        Cond::no(
            condition::OPTIONAL_API_MISSING,
            reason::RECONCILED,
            "every optional object the spec asks for has its API",
        )
    } else {
        let hints: Vec<&str> = observed
            .missing_apis
            .iter()
            .map(|k| k.install_hint())
            .collect();
        Cond::yes(
            condition::OPTIONAL_API_MISSING,
            reason::API_NOT_INSTALLED,
            format!(
                "{}; the controller checks again every minute",
                hints.join("; ")
            ),
        )
    };

    let previous = server
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    McpServerStatus {
        observed_generation: server.metadata.generation,
        conditions: finalize(
            &[ready, available_cond, optional],
            previous,
            server.metadata.generation,
            now,
        ),
        endpoint: Some(endpoint(server, &namespace)),
        links: i32::try_from(observed.links.len()).unwrap_or(i32::MAX),
        tools: i32::try_from(tools).unwrap_or(i32::MAX),
        ready_replicas,
    }
}

/// Whether `desired` differs from what `server` shows for the fields the controller owns.
pub fn changed(server: &McpServer, desired: &McpServerStatus) -> bool {
    let Some(current) = &server.status else {
        return true;
    };
    current.observed_generation != desired.observed_generation
        || current.endpoint != desired.endpoint
        || current.links != desired.links
        || current.tools != desired.tools
        || current.ready_replicas != desired.ready_replicas
        || !same_conditions(
            &owned(&current.conditions, &OWNED_CONDITIONS),
            &desired.conditions,
        )
}
