//! Events on state changes, published from one place.
//!
//! Every status write goes through [`crate::status`], which hands the old and new conditions
//! here: a condition whose status or reason changed becomes one Event on the object (Normal
//! when it turned good, Warning otherwise), so `kubectl describe` tells the story of an object
//! without repeating it on every reconcile. A failed Event is logged and never fails a
//! reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event, EventType};
use linkmcp_api::names::condition;

use crate::context::Context;

/// One condition change worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Normal or Warning.
    pub warning: bool,
    /// The condition's new reason.
    pub reason: String,
    /// The condition's new message.
    pub message: String,
    /// The condition type, as the Event's action.
    pub condition: String,
}

/// Whether a condition of `type_` with `status` is the good state ("True" for all but
/// OptionalApiMissing).
fn is_good(type_: &str, status: &str) -> bool {
    if type_ == condition::OPTIONAL_API_MISSING {
        status != "True"
    } else {
        status == "True"
    }
}

/// The changes from `before` to `after` worth an Event: a new condition that is not good, or
/// a condition whose status or reason changed.
pub fn transitions(before: &[Condition], after: &[Condition]) -> Vec<Transition> {
    after
        .iter()
        .filter_map(|now| {
            let good = is_good(&now.type_, &now.status);
            let changed = match before.iter().find(|b| b.type_ == now.type_) {
                Some(was) => was.status != now.status || was.reason != now.reason,
                // A first condition is news only when something is wrong; a first good
                // condition of every kind would flood `kubectl get events`.
                None => !good || now.type_ == condition::READY,
            };
            changed.then(|| Transition {
                warning: !good,
                reason: now.reason.clone(),
                message: now.message.clone(),
                condition: now.type_.clone(),
            })
        })
        .collect()
}

/// Publishes `changes` on the object `reference`.
pub async fn publish(ctx: &Context, reference: &ObjectReference, changes: Vec<Transition>) {
    for change in changes {
        let event = Event {
            type_: if change.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: change.reason,
            note: Some(change.message),
            action: change.condition,
            secondary: None,
        };
        match ctx.recorder.publish(&event, reference).await {
            Ok(()) => ctx.metrics.wrote("Event", "create"),
            Err(err) => tracing::warn!(
                object = reference.name.as_deref().unwrap_or_default(),
                error = %err,
                "cannot publish an Event"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{type_} {reason}"),
            observed_generation: None,
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn only_changes_are_events() {
        let before = vec![
            cond("Ready", "False", "SecretNotFound"),
            cond("CredentialsResolved", "False", "SecretNotFound"),
        ];
        let after = vec![
            cond("Ready", "True", "Reconciled"),
            cond("CredentialsResolved", "False", "SecretNotFound"),
        ];
        let events = transitions(&before, &after);
        assert_eq!(events.len(), 1);
        assert!(!events[0].warning);
        assert_eq!(events[0].reason, "Reconciled");
        assert!(transitions(&after, &after).is_empty());
    }

    #[test]
    fn first_conditions_report_ready_and_problems() {
        let after = vec![
            cond("Ready", "False", "ServerNotFound"),
            cond("CredentialsResolved", "True", "CredentialsCopied"),
            cond("OptionalApiMissing", "True", "ApiNotInstalled"),
        ];
        let events = transitions(&[], &after);
        let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["ServerNotFound", "ApiNotInstalled"]);
        assert!(events.iter().all(|e| e.warning));
    }
}
