//! The channel from a running call back to the client that made it.
//!
//! A call may take long (a 1M-row scan, a clone) or need a person (confirm a destructive
//! step): [`Client`] lets a toolset report progress, send log messages, and ask the client for
//! input (elicitation, sampling, roots) while it runs. Every method is safe to call whatever
//! the client: progress and logs are dropped when nobody asked for them, and a question the
//! client cannot answer is a [`ClientError`] the toolset turns into a clear refusal.
//!
//! The transport behind it is the server's business ([`ClientLink`]): a session of protocol
//! versions up to 2025-11-25 sends server-to-client requests on the call's own stream; a
//! 2026-07-28 request (no session) cannot, so a question ends the call with an
//! `InputRequiredResult` and the client calls again with the answers — the toolset is then run
//! again from the start and [`Client::elicit`] returns the answer given for its `key`. Toolsets
//! therefore ask before they change anything, and name each question with a stable key.

// roots/list is deprecated by SEP-2577, yet part of both revisions served (2025-11-25 and
// 2026-07-28 input requests).
#![allow(deprecated)]

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, ElicitResult, ElicitationAction,
    ElicitationSchema, ListRootsResult,
};
use serde_json::Value;

/// The severity of a log message (the MCP logging levels, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

/// A question a call asks its client.
#[derive(Debug, Clone)]
pub enum Question {
    /// `elicitation/create` (form mode): a person fills in `schema`.
    Elicit {
        message: String,
        schema: ElicitationSchema,
    },
    /// `sampling/createMessage`: the client's model answers.
    Sample(Box<CreateMessageRequestParams>),
    /// `roots/list`: the client's roots.
    Roots,
}

impl Question {
    /// The client capability the question needs.
    pub fn capability(&self) -> Capability {
        match self {
            Self::Elicit { .. } => Capability::Elicitation,
            Self::Sample(_) => Capability::Sampling,
            Self::Roots => Capability::Roots,
        }
    }
}

/// A client capability a question needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    Elicitation,
    Sampling,
    Roots,
}

impl Capability {
    /// The capability's name in `ClientCapabilities`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::Sampling => "sampling",
            Self::Roots => "roots",
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// Nobody to ask: the call came from an agent run, REST or a test.
    #[error("no client is connected to this call to answer")]
    NoClient,
    /// The client did not declare the capability, or the transport cannot carry the question
    /// (a stateless server has no session to send a request on).
    #[error("the client cannot answer: {0}")]
    Unsupported(String),
    /// The answer will come with the client's next call (2026-07-28): end this call now; the
    /// server answers it with an `InputRequiredResult` whatever the toolset returns.
    #[error("waiting for the client's answer")]
    InputRequired,
    /// The client answered with something that is not an answer to the question, or the
    /// request failed on the way.
    #[error("the client's answer could not be used: {0}")]
    Failed(String),
}

/// What a person answered to an elicitation.
#[derive(Debug, Clone, PartialEq)]
pub struct Elicited {
    /// Accept, decline or cancel.
    pub action: ElicitationAction,
    /// The form's content when accepted.
    pub content: Option<Value>,
}

impl Elicited {
    /// Whether the person accepted.
    pub fn accepted(&self) -> bool {
        self.action == ElicitationAction::Accept
    }
}

/// The transport side of [`Client`], implemented by the server per request.
pub trait ClientLink: Send + Sync {
    /// Whether the client asked for progress (sent a progress token).
    fn wants_progress(&self) -> bool;

    /// Sends `notifications/progress`.
    fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> BoxFuture<'_, ()>;

    /// The least severe level the client wants to see; `None`: no log messages.
    fn log_level(&self) -> Option<LogLevel>;

    /// Sends `notifications/message`.
    fn log(&self, level: LogLevel, data: Value) -> BoxFuture<'_, ()>;

    /// Whether the client declared `capability` and the transport can carry its questions.
    fn can_ask(&self, capability: Capability) -> bool;

    /// Asks `question` under `key` and returns the client's raw answer.
    fn ask<'a>(
        &'a self,
        key: &'a str,
        question: Question,
    ) -> BoxFuture<'a, Result<Value, ClientError>>;
}

/// A call's channel to its client; [`Client::none`] when there is no client.
#[derive(Clone, Default)]
pub struct Client(Option<Arc<dyn ClientLink>>);

impl Client {
    /// No client: progress and logs go nowhere, questions get [`ClientError::NoClient`].
    pub fn none() -> Self {
        Self(None)
    }

    /// A channel over `link`.
    pub fn new(link: Arc<dyn ClientLink>) -> Self {
        Self(Some(link))
    }

    /// Whether a progress report would reach anyone: lets a toolset skip the work of
    /// counting what nobody reads.
    pub fn wants_progress(&self) -> bool {
        self.0.as_ref().is_some_and(|link| link.wants_progress())
    }

    /// Reports `done` of `total` (when known) with a short message.
    pub async fn progress(&self, done: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(link) = self.0.as_ref().filter(|link| link.wants_progress()) {
            link.progress(done, total, Some(message.into())).await;
        }
    }

    /// Whether a message at `level` would reach anyone.
    pub fn wants_log(&self, level: LogLevel) -> bool {
        self.0
            .as_ref()
            .and_then(|link| link.log_level())
            .is_some_and(|least| level >= least)
    }

    /// Sends a log message at `level`, when the client asked for that level.
    pub async fn log(&self, level: LogLevel, message: impl Into<String>) {
        if self.wants_log(level)
            && let Some(link) = &self.0
        {
            link.log(level, Value::String(message.into())).await;
        }
    }

    /// Whether a question needing `capability` can be asked at all: lets a toolset that
    /// merely would like to ask (a confirmation) go on without asking.
    pub fn can_ask(&self, capability: Capability) -> bool {
        self.0.as_ref().is_some_and(|link| link.can_ask(capability))
    }

    /// Asks a person to fill in `schema`. `key` names the question among the call's
    /// questions and must be the same on every run of the call (see the module docs).
    pub async fn elicit(
        &self,
        key: &str,
        message: impl Into<String>,
        schema: ElicitationSchema,
    ) -> Result<Elicited, ClientError> {
        let question = Question::Elicit {
            message: message.into(),
            schema,
        };
        let answer = self.ask(key, question).await?;
        let result: ElicitResult = serde_json::from_value(answer)
            .map_err(|e| ClientError::Failed(format!("not an elicitation result: {e}")))?;
        Ok(Elicited {
            action: result.action,
            content: result.content,
        })
    }

    /// Asks the client's model (`sampling/createMessage`).
    pub async fn sample(
        &self,
        key: &str,
        request: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, ClientError> {
        let answer = self.ask(key, Question::Sample(Box::new(request))).await?;
        serde_json::from_value(answer)
            .map_err(|e| ClientError::Failed(format!("not a sampling result: {e}")))
    }

    /// Asks for the client's roots (`roots/list`).
    pub async fn roots(&self, key: &str) -> Result<ListRootsResult, ClientError> {
        let answer = self.ask(key, Question::Roots).await?;
        serde_json::from_value(answer)
            .map_err(|e| ClientError::Failed(format!("not a roots result: {e}")))
    }

    async fn ask(&self, key: &str, question: Question) -> Result<Value, ClientError> {
        match &self.0 {
            Some(link) => link.ask(key, question).await,
            None => Err(ClientError::NoClient),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Client"
        } else {
            "Client(none)"
        })
    }
}

/// Two channels are equal when they are the same channel.
impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Client {}

/// Progress of a stream of items, reported at most every [`Ticker::EVERY`] so a fast stream
/// does not flood the client: the one place toolsets count rows, messages or bytes.
pub struct Ticker<'a> {
    client: &'a Client,
    unit: &'static str,
    last: Option<std::time::Instant>,
}

impl<'a> Ticker<'a> {
    /// The least time between two reports.
    pub const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

    /// A ticker reporting counts of `unit` ("rows read", "messages", "bytes").
    pub fn new(client: &'a Client, unit: &'static str) -> Self {
        Self {
            client,
            unit,
            last: None,
        }
    }

    /// Reports `done` (of `total`, when known) if the last report is old enough.
    pub async fn tick(&mut self, done: u64, total: Option<u64>) {
        if !self.client.wants_progress() {
            return;
        }
        let now = std::time::Instant::now();
        if self.last.is_some_and(|last| now - last < Self::EVERY) {
            return;
        }
        self.last = Some(now);
        self.report(done, total).await;
    }

    /// Reports `done` whatever the time (the final count).
    pub async fn finish(&mut self, done: u64, total: Option<u64>) {
        if self.client.wants_progress() {
            self.report(done, total).await;
        }
    }

    async fn report(&self, done: u64, total: Option<u64>) {
        let message = match total {
            Some(total) => format!("{done} of {total} {}", self.unit),
            None => format!("{done} {}", self.unit),
        };
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        self.client
            .progress(done as f64, total.map(|t| t as f64), message)
            .await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;

    /// One progress report: done, total, message.
    type Report = (f64, Option<f64>, Option<String>);

    #[derive(Default)]
    struct Recorder {
        progress: Mutex<Vec<Report>>,
        logs: Mutex<Vec<(LogLevel, Value)>>,
        level: Option<LogLevel>,
        token: bool,
    }

    impl ClientLink for Recorder {
        fn wants_progress(&self) -> bool {
            self.token
        }
        fn progress(
            &self,
            progress: f64,
            total: Option<f64>,
            message: Option<String>,
        ) -> BoxFuture<'_, ()> {
            self.progress
                .lock()
                .unwrap()
                .push((progress, total, message));
            Box::pin(async {})
        }
        fn log_level(&self) -> Option<LogLevel> {
            self.level
        }
        fn log(&self, level: LogLevel, data: Value) -> BoxFuture<'_, ()> {
            self.logs.lock().unwrap().push((level, data));
            Box::pin(async {})
        }
        fn can_ask(&self, _capability: Capability) -> bool {
            true
        }
        fn ask<'a>(
            &'a self,
            _key: &'a str,
            question: Question,
        ) -> BoxFuture<'a, Result<Value, ClientError>> {
            Box::pin(async move {
                match question {
                    Question::Elicit { .. } => {
                        Ok(serde_json::json!({"action": "accept", "content": {"ok": true}}))
                    }
                    _ => Ok(serde_json::json!({"nonsense": 1})),
                }
            })
        }
    }

    #[tokio::test]
    async fn logs_below_the_level_are_dropped() {
        let link = Arc::new(Recorder {
            level: Some(LogLevel::Warning),
            ..Recorder::default()
        });
        let client = Client::new(link.clone());
        client.log(LogLevel::Info, "quiet").await;
        client.log(LogLevel::Error, "loud").await;
        let logs = link.logs.lock().unwrap().clone();
        assert_eq!(logs, vec![(LogLevel::Error, Value::from("loud"))]);
    }

    #[tokio::test]
    async fn progress_needs_a_token_and_is_throttled() {
        let link = Arc::new(Recorder::default());
        let client = Client::new(link.clone());
        client.progress(1.0, None, "x").await;
        assert!(link.progress.lock().unwrap().is_empty());

        let link = Arc::new(Recorder {
            token: true,
            ..Recorder::default()
        });
        let client = Client::new(link.clone());
        let mut ticker = Ticker::new(&client, "rows read");
        for n in 0..1000 {
            ticker.tick(n, None).await;
        }
        ticker.finish(1000, Some(1000)).await;
        let progress = link.progress.lock().unwrap().clone();
        // The first tick and the final count, not a thousand notifications.
        assert!(progress.len() < 5, "{progress:?}");
        assert_eq!(
            progress.last().unwrap(),
            &(1000.0, Some(1000.0), Some("1000 of 1000 rows read".into()))
        );
    }

    #[tokio::test]
    async fn answers_are_typed_and_bad_ones_refused() {
        let client = Client::new(Arc::new(Recorder::default()));
        let schema = ElicitationSchema::builder().build().unwrap();
        let elicited = client.elicit("k", "sure?", schema).await.unwrap();
        assert!(elicited.accepted());
        let err = client.roots("r").await.unwrap_err();
        assert!(matches!(err, ClientError::Failed(_)), "{err:?}");
        assert_eq!(
            Client::none().roots("r").await.unwrap_err(),
            ClientError::NoClient
        );
    }
}
