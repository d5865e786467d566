//! Conditions as the reconcilers decide them, and as they are written.
//!
//! A reconciler decides a [`Cond`] per condition type it owns (status, reason, message); the
//! written [`Condition`] keeps its `lastTransitionTime` while the status stays the same, so
//! a steady object renders the same status twice and nothing is written ([`crate::status`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as decided, before it gets its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// The condition type ([`linkmcp_api::names::condition`]).
    pub type_: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason ([`linkmcp_api::names::reason`]).
    pub reason: String,
    /// What a person reads, and can act on.
    pub message: String,
}

impl Cond {
    /// A True condition.
    pub fn yes(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    /// A False condition.
    pub fn no(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// The conditions to write: each decided condition, with the `lastTransitionTime` of the same
/// type in `previous` when its status did not change, else `now`.
pub fn finalize(
    decided: &[Cond],
    previous: &[Condition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|cond| {
            let status = if cond.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|p| p.type_ == cond.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: cond.type_.to_owned(),
                status: status.to_owned(),
                reason: cond.reason.clone(),
                message: truncate(&cond.message, MAX_MESSAGE),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// The longest condition message the API server accepts is 32768 bytes; ours stay far below,
/// but a long list of tool names or links must not make a status write fail.
const MAX_MESSAGE: usize = 4096;

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The condition of `type_` in `conditions`.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The conditions of `conditions` whose type is one of `types` (what one writer owns).
pub fn owned(conditions: &[Condition], types: &[&str]) -> Vec<Condition> {
    conditions
        .iter()
        .filter(|c| types.contains(&c.type_.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap_or_default())
    }

    #[test]
    fn transition_time_moves_only_when_the_status_does() {
        let first = finalize(
            &[Cond::no("Ready", "SecretNotFound", "Secret a not found")],
            &[],
            Some(1),
            &at(100),
        );
        assert_eq!(first[0].last_transition_time, at(100));
        assert_eq!(first[0].status, "False");
        assert_eq!(first[0].observed_generation, Some(1));

        let same_status = finalize(
            &[Cond::no(
                "Ready",
                "SecretKeyMissing",
                "Secret a has no key 'b'",
            )],
            &first,
            Some(2),
            &at(200),
        );
        assert_eq!(same_status[0].last_transition_time, at(100));
        assert_eq!(same_status[0].reason, "SecretKeyMissing");

        let flipped = finalize(
            &[Cond::yes("Ready", "Reconciled", "ok")],
            &same_status,
            Some(2),
            &at(300),
        );
        assert_eq!(flipped[0].last_transition_time, at(300));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let cut = truncate(&long, MAX_MESSAGE);
        assert!(cut.len() <= MAX_MESSAGE);
        assert!(cut.ends_with("..."));
    }
}
