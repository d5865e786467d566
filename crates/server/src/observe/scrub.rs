//! The second line of defence against leaked credentials: known secret values are replaced
//! by `[REDACTED]` in every text that leaves the server.
//!
//! Toolsets never put a credential in a result on purpose, but a backend's error message can
//! echo a connection string, and a model can be talked into reading a password out of a table.
//! The [`Scrubber`] knows the current secret values (every link's credentials, the client API
//! keys, the agents' provider keys), follows the desired state as they change ([`follow`]), and
//! searches outgoing text for all of them at once with one Aho-Corasick automaton.

use std::{
    borrow::Cow,
    collections::BTreeSet,
    sync::{Arc, PoisonError, RwLock},
};

use aho_corasick::{AhoCorasick, MatchKind};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

use crate::source::{DesiredState, StateReceiver};

/// What a secret value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this many characters are not scrubbed: replacing every `1` or `true` in
/// the output would shred it, and such a value protects nothing anyway.
pub const MIN_SECRET_CHARS: usize = 4;

/// Replaces known secret values in outgoing text; the set of values can change at any time.
#[derive(Default)]
pub struct Scrubber {
    current: RwLock<Arc<Patterns>>,
}

/// One immutable set of secret values and the automaton that finds them.
#[derive(Default)]
struct Patterns {
    values: BTreeSet<String>,
    matcher: Option<Matcher>,
}

enum Matcher {
    Automaton(AhoCorasick),
    /// Used only if the automaton cannot be built (it has size limits no real set of
    /// credentials reaches): slower, never less thorough.
    Naive(Vec<String>),
}

impl Patterns {
    fn new(values: BTreeSet<String>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let matcher = match AhoCorasick::builder()
            // Of two secrets where one starts the other, the longer is replaced whole.
            .match_kind(MatchKind::LeftmostLongest)
            .build(&values)
        {
            Ok(automaton) => Matcher::Automaton(automaton),
            Err(err) => {
                tracing::error!(error = %err, "cannot build the scrubbing automaton; scrubbing value by value");
                // Longest first, so that a secret containing another is replaced whole.
                let mut naive: Vec<String> = values.iter().cloned().collect();
                naive.sort_by_key(|v| std::cmp::Reverse(v.len()));
                Matcher::Naive(naive)
            }
        };
        Self {
            values,
            matcher: Some(matcher),
        }
    }

    fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.matcher {
            None => Cow::Borrowed(text),
            Some(Matcher::Automaton(automaton)) => {
                if automaton.find(text).is_none() {
                    return Cow::Borrowed(text);
                }
                let mut out = String::with_capacity(text.len());
                automaton.replace_all_with(text, &mut out, |_, _, out| {
                    out.push_str(REDACTED);
                    true
                });
                Cow::Owned(out)
            }
            Some(Matcher::Naive(values)) => {
                let mut out = Cow::Borrowed(text);
                for value in values {
                    if out.contains(value.as_str()) {
                        out = Cow::Owned(out.replace(value.as_str(), REDACTED));
                    }
                }
                out
            }
        }
    }

    fn scrub_string(&self, text: &mut String) -> bool {
        match self.scrub(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(scrubbed) => {
                *text = scrubbed;
                true
            }
        }
    }

    fn scrub_json(&self, value: &mut Value) -> bool {
        match value {
            Value::String(text) => self.scrub_string(text),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |hit, item| self.scrub_json(item) | hit),
            Value::Object(map) => {
                let mut hit = false;
                // A key can carry a secret too (a map keyed by token); such keys are rare, so
                // the map is rebuilt only when one is found.
                if map.keys().any(|k| matches!(self.scrub(k), Cow::Owned(_))) {
                    let entries = std::mem::take(map);
                    for (key, item) in entries {
                        map.insert(self.scrub(&key).into_owned(), item);
                    }
                    hit = true;
                }
                map.values_mut()
                    .fold(hit, |hit, item| self.scrub_json(item) | hit)
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    fn scrub_result(&self, result: &mut CallToolResult) -> bool {
        if self.matcher.is_none() {
            return false;
        }
        let mut hit = false;
        for block in &mut result.content {
            hit |= match block {
                ContentBlock::Text(text) => self.scrub_string(&mut text.text),
                ContentBlock::Resource(embedded) => match &mut embedded.resource {
                    ResourceContents::TextResourceContents { text, .. } => self.scrub_string(text),
                    // Binary (base64) contents are not searched.
                    _ => false,
                },
                // Nor are images, audio and resource links.
                _ => false,
            };
        }
        if let Some(structured) = &mut result.structured_content {
            hit |= self.scrub_json(structured);
        }
        hit
    }
}

impl Scrubber {
    /// A scrubber that knows no secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A scrubber for `values`.
    pub fn with_values<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Self {
        let scrubber = Self::new();
        scrubber.set_values(values);
        scrubber
    }

    /// Replaces the known secret values with `values`; returns whether the set changed.
    ///
    /// Values shorter than [`MIN_SECRET_CHARS`] are ignored. A value with surrounding
    /// whitespace (a Secret file's trailing newline) is also scrubbed trimmed, and a value with
    /// characters JSON escapes is also scrubbed as it appears inside a JSON string.
    pub fn set_values<S: AsRef<str>>(&self, values: impl IntoIterator<Item = S>) -> bool {
        let mut set = BTreeSet::new();
        for value in values {
            for variant in variants(value.as_ref()) {
                if variant.chars().count() >= MIN_SECRET_CHARS {
                    set.insert(variant);
                }
            }
        }
        if self.patterns().values == set {
            return false;
        }
        let patterns = Arc::new(Patterns::new(set));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = patterns;
        true
    }

    /// How many distinct values (variants included) are scrubbed.
    pub fn len(&self) -> usize {
        self.patterns().values.len()
    }

    /// Whether no value is scrubbed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn patterns(&self) -> Arc<Patterns> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `text` with every known secret value replaced by [`REDACTED`]; borrowed when nothing
    /// was found.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.patterns().scrub(text)
    }

    /// Scrubs `text` in place; returns whether a secret was found.
    pub fn scrub_string(&self, text: &mut String) -> bool {
        self.patterns().scrub_string(text)
    }

    /// Scrubs every string (and object key) inside `value`; returns whether a secret was found.
    pub fn scrub_json(&self, value: &mut Value) -> bool {
        self.patterns().scrub_json(value)
    }

    /// Scrubs a tool result: its text content, embedded text resources and every string of its
    /// structured content. Returns whether a secret was found.
    pub fn scrub_result(&self, result: &mut CallToolResult) -> bool {
        self.patterns().scrub_result(result)
    }
}

/// The forms in which `value` may appear in outgoing text.
fn variants(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    let trimmed = value.trim();
    if trimmed != value {
        out.push(trimmed.to_owned());
    }
    for v in [value, trimmed] {
        if let Ok(quoted) = serde_json::to_string(v) {
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != v {
                out.push(escaped.to_owned());
            }
        }
    }
    out
}

/// Every secret value `state` holds: the links' credentials, the client API keys and the
/// agents' provider API keys.
pub fn secret_values(state: &DesiredState) -> Vec<&str> {
    state
        .links
        .iter()
        .flat_map(|link| link.credentials.values())
        .chain(state.api_keys.values())
        .chain(state.agent_api_keys.values())
        .collect()
}

/// Keeps `scrubber` in step with the desired state: loads the secret values of the current
/// state, then those of every new one, until the source is dropped.
pub async fn follow(scrubber: Arc<Scrubber>, mut state: StateReceiver) {
    loop {
        let current = state.borrow_and_update().clone();
        if scrubber.set_values(secret_values(&current)) {
            tracing::info!(values = scrubber.len(), "secret values to scrub updated");
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use linkmcp_toolsets::{credentials::Credentials, output};
    use serde_json::json;
    use tokio::sync::watch;

    use super::*;
    use crate::source::LinkState;

    #[test]
    fn a_value_inside_text_is_replaced() {
        let scrubber = Scrubber::with_values(["hunter22"]);
        assert_eq!(
            scrubber.scrub("connect failed: password=hunter22;host=db"),
            "connect failed: password=[REDACTED];host=db"
        );
        assert_eq!(
            scrubber.scrub("hunter22hunter22 and hunter22"),
            "[REDACTED][REDACTED] and [REDACTED]"
        );
        assert!(matches!(scrubber.scrub("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_of_overlapping_secrets_is_replaced_whole() {
        let scrubber = Scrubber::with_values(["abcd", "abcdefgh"]);
        assert_eq!(
            scrubber.scrub("x abcdefgh y abcd"),
            "x [REDACTED] y [REDACTED]"
        );
    }

    #[test]
    fn short_values_are_ignored() {
        let scrubber = Scrubber::with_values(["abc", "1", "", "€€€"]);
        assert!(scrubber.is_empty());
        assert_eq!(scrubber.scrub("abc 1 €€€"), "abc 1 €€€");
        // Four characters is enough, whatever their byte length.
        let scrubber = Scrubber::with_values(["€€€€"]);
        assert_eq!(scrubber.scrub("x€€€€x"), "x[REDACTED]x");
    }

    #[test]
    fn trimmed_and_json_escaped_forms_are_scrubbed() {
        let scrubber = Scrubber::with_values(["s3cr\"et\n"]);
        assert_eq!(scrubber.scrub("a s3cr\"et b"), "a [REDACTED] b");
        assert_eq!(
            scrubber.scrub(r#"{"password":"s3cr\"et"}"#),
            r#"{"password":"[REDACTED]"}"#
        );
    }

    #[test]
    fn strings_inside_structured_json_are_replaced() {
        let scrubber = Scrubber::with_values(["tok-9876"]);
        let mut value = json!({
            "rows": [{"user": "alice", "note": "key tok-9876 leaked"}, {"n": 5}],
            "tok-9876": true,
            "nested": {"deep": ["x", "tok-9876"]},
        });
        assert!(scrubber.scrub_json(&mut value));
        assert_eq!(
            value,
            json!({
                "rows": [{"user": "alice", "note": "key [REDACTED] leaked"}, {"n": 5}],
                "[REDACTED]": true,
                "nested": {"deep": ["x", "[REDACTED]"]},
            })
        );
        let mut clean = json!({"a": ["b", 1, null]});
        assert!(!scrubber.scrub_json(&mut clean));
    }

    #[test]
    fn results_are_scrubbed_in_text_and_structured_content() {
        let scrubber = Scrubber::with_values(["p4ssw0rd"]);
        let mut result = output::ok_json(
            &json!({"dsn": "postgres://app:p4ssw0rd@db/app"}),
            "dsn is postgres://app:p4ssw0rd@db/app",
        );
        assert!(scrubber.scrub_result(&mut result));
        assert_eq!(
            result.content[0].as_text().unwrap().text,
            "dsn is postgres://app:[REDACTED]@db/app"
        );
        assert_eq!(
            result.structured_content,
            Some(json!({"dsn": "postgres://app:[REDACTED]@db/app"}))
        );
    }

    #[test]
    fn values_can_be_replaced_at_run_time() {
        let scrubber = Scrubber::with_values(["first-secret"]);
        assert!(
            !scrubber.set_values(["first-secret"]),
            "same set: no rebuild"
        );
        assert!(scrubber.set_values(["second-secret"]));
        assert_eq!(
            scrubber.scrub("first-secret second-secret"),
            "first-secret [REDACTED]"
        );
        assert!(scrubber.set_values(Vec::<String>::new()));
        assert_eq!(scrubber.scrub("second-secret"), "second-secret");
    }

    fn state_with(password: &str, api_key: &str) -> DesiredState {
        let link: linkmcp_api::McpLink = serde_yaml::from_str(
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: db}\n\
             spec: {serverRef: {name: s}, postgres: {host: db, database: app}}\n",
        )
        .unwrap();
        DesiredState {
            links: vec![LinkState {
                link,
                credentials: Credentials::new(BTreeMap::from([(
                    "password".to_owned(),
                    password.to_owned(),
                )])),
                problem: None,
            }],
            api_keys: Credentials::new(BTreeMap::from([("ci".to_owned(), api_key.to_owned())])),
            ..DesiredState::default()
        }
    }

    #[tokio::test]
    async fn follow_tracks_the_desired_state() {
        let scrubber = Arc::new(Scrubber::new());
        let (tx, rx) = watch::channel(Arc::new(state_with("db-pass-1", "api-key-1")));
        let task = tokio::spawn(follow(scrubber.clone(), rx));

        let wait_for = |expected: &'static str| {
            let scrubber = scrubber.clone();
            async move {
                for _ in 0..200 {
                    if scrubber.scrub("db-pass-1 db-pass-2 api-key-1") == expected {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                panic!(
                    "scrubber never reached {expected:?}: {}",
                    scrubber.scrub("db-pass-1 db-pass-2 api-key-1")
                );
            }
        };
        wait_for("[REDACTED] db-pass-2 [REDACTED]").await;

        tx.send_replace(Arc::new(state_with("db-pass-2", "api-key-1")));
        wait_for("db-pass-1 [REDACTED] [REDACTED]").await;

        drop(tx);
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("follow ends when the source is dropped")
            .unwrap();
    }
}
