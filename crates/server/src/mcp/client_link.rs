//! The server side of a call's channel to its client, for one MCP request.
//!
//! [`RequestLink`] implements the toolsets' [`ClientLink`] over rmcp's peer, in one of three
//! ways fixed when the request arrives ([`Transport`]):
//! - a **session** (protocol up to 2025-11-25, stateful server): progress and log messages are
//!   notifications, questions are server-to-client requests on the call's own stream;
//! - a **stateless** server speaking up to 2025-11-25: notifications still reach the client
//!   (the reply becomes an SSE stream), but there is no session to ask on;
//! - a **2026-07-28** request: notifications as above, and a question ends the call with an
//!   `InputRequiredResult` (SEP-2322). The client answers and calls again; the call runs again
//!   from the start and finds the answers by key. Answers of earlier rounds travel in
//!   `requestState`, sealed by [`RoundState`] so that a client cannot forge them.
//!
//! After the call, [`RequestLink::outcome`] says whether the toolset's result stands or the
//! handler answers with an `InputRequiredResult` or a missing-capability error instead.

// Logging, sampling and roots are deprecated by SEP-2577 in rmcp, yet part of the revisions
// this server speaks.
#![allow(deprecated)]

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use futures::future::BoxFuture;
use linkmcp_toolsets::{
    ClientError, LogLevel,
    client::{Capability, ClientLink, Question},
};
use rmcp::{
    ErrorData, RoleServer,
    model::{
        ClientCapabilities, CreateMessageRequest, CreateMessageResult, ElicitRequest,
        ElicitRequestParams, ElicitResult, InputRequest, InputRequiredResult, InputResponses,
        ListRootsRequest, ListRootsResult, LoggingLevel, LoggingMessageNotificationParam,
        ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestStateCodec, SealOptions,
    },
    service::{Peer, RequestContext},
};
use serde_json::Value;

/// How long answers of earlier rounds stay valid in a `requestState`.
const ROUND_STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// How a request's questions reach the client.
enum Transport {
    /// Server-to-client requests in the session.
    Session,
    /// A stateless server and a client of a revision before 2026-07-28: nobody to ask.
    Stateless,
    /// 2026-07-28: questions are answered on the next round.
    Rounds(Box<Round>),
}

/// What a 2026-07-28 request brings to its round.
struct Round {
    /// The answers so far.
    answers: BTreeMap<String, Value>,
    /// The client's declared capabilities (from the request's `_meta`).
    capabilities: ClientCapabilities,
    /// What the sealed state of a next round is bound to.
    binding: Vec<u8>,
}

/// What a request said about itself that the link needs.
pub(super) struct RequestFacts<'a> {
    /// The caller's identity, the tool or prompt name and its arguments: what a sealed
    /// `requestState` is bound to.
    pub identity: &'a str,
    pub target: &'a str,
    pub arguments: Option<&'a serde_json::Map<String, Value>>,
    /// The answers the client sent with this round, and the state it echoed.
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
    /// The log level the session set with `logging/setLevel`.
    pub session_log_level: Option<LogLevel>,
}

/// The channel of one request; see the module docs.
pub(super) struct RequestLink {
    peer: Peer<RoleServer>,
    logger: String,
    progress_token: Option<ProgressToken>,
    log_level: Option<LogLevel>,
    transport: Transport,
    asked: Mutex<Asked>,
}

/// What the call asked that the client could not answer yet.
#[derive(Default)]
struct Asked {
    /// Questions for the next round (2026-07-28), by key.
    pending: BTreeMap<String, Question>,
    /// Capabilities a question needed that the client did not declare.
    missing: BTreeSet<Capability>,
}

/// What the handler answers once the call has returned.
pub(super) enum Outcome {
    /// The toolset's result.
    Complete,
    /// Ask the client and call again.
    InputRequired(InputRequiredResult),
    /// The call needed a capability the client did not declare (2026-07-28: -32021).
    MissingCapability(ErrorData),
}

impl RequestLink {
    /// The link for `context`'s request. A `requestState` that fails its integrity check is
    /// refused with -32602.
    pub(super) fn new(
        context: &RequestContext<RoleServer>,
        stateless: bool,
        rounds: &RoundState,
        facts: RequestFacts<'_>,
    ) -> Result<Self, ErrorData> {
        let per_request = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        // Built on every call: only the 2026-07-28 rounds pay for their binding and state.
        let (transport, log_level) = if per_request {
            let binding = binding(facts.identity, facts.target, facts.arguments);
            let mut answers = match &facts.request_state {
                Some(state) => rounds.open(state, &binding)?,
                None => BTreeMap::new(),
            };
            answers.extend(facts.input_responses.unwrap_or_default());
            let transport = Transport::Rounds(Box::new(Round {
                answers,
                capabilities: context.meta.client_capabilities().unwrap_or_default(),
                binding,
            }));
            (transport, context.meta.log_level().map(level_from_mcp))
        } else if stateless {
            (Transport::Stateless, None)
        } else {
            (Transport::Session, facts.session_log_level)
        };
        Ok(Self {
            peer: context.peer.clone(),
            logger: facts.target.to_owned(),
            progress_token: context.meta.get_progress_token(),
            log_level,
            transport,
            asked: Mutex::default(),
        })
    }

    /// What the handler answers, now that the call has returned.
    pub(super) fn outcome(&self, rounds: &RoundState) -> Outcome {
        let asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        let Transport::Rounds(round) = &self.transport else {
            // In a session a question the client cannot answer is the toolset's refusal.
            return Outcome::Complete;
        };
        if !asked.pending.is_empty() {
            let requests = asked
                .pending
                .iter()
                .map(|(key, question)| (key.clone(), input_request(question)))
                .collect();
            let state = rounds.seal(&round.answers, &round.binding);
            return Outcome::InputRequired(InputRequiredResult::new(Some(requests), Some(state)));
        }
        if !asked.missing.is_empty() {
            let mut required = serde_json::Map::new();
            for capability in &asked.missing {
                required.insert(
                    capability.name().to_owned(),
                    Value::Object(Default::default()),
                );
            }
            let required: ClientCapabilities =
                serde_json::from_value(Value::Object(required)).unwrap_or_default();
            return Outcome::MissingCapability(ErrorData::missing_required_client_capability(
                required,
            ));
        }
        Outcome::Complete
    }

    fn declares(&self, capability: Capability) -> bool {
        let has = |capabilities: &ClientCapabilities| match capability {
            Capability::Elicitation => capabilities.elicitation.is_some(),
            Capability::Sampling => capabilities.sampling.is_some(),
            Capability::Roots => capabilities.roots.is_some(),
        };
        match &self.transport {
            Transport::Rounds(round) => has(&round.capabilities),
            Transport::Session => self
                .peer
                .peer_info()
                .is_some_and(|info| has(&info.capabilities)),
            Transport::Stateless => false,
        }
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Asked> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `question` as a server-to-client request of the session.
    async fn request(&self, question: Question) -> Result<Value, ClientError> {
        let failed = |e: rmcp::ServiceError| ClientError::Failed(e.to_string());
        let answer = match question {
            Question::Elicit { message, schema } => {
                let params = ElicitRequestParams::FormElicitationParams {
                    meta: None,
                    message,
                    requested_schema: schema,
                };
                serde_json::to_value(self.peer.create_elicitation(params).await.map_err(failed)?)
            }
            Question::Sample(params) => {
                serde_json::to_value(self.peer.create_message(*params).await.map_err(failed)?)
            }
            Question::Roots => serde_json::to_value(self.peer.list_roots().await.map_err(failed)?),
        };
        answer.map_err(|e| ClientError::Failed(e.to_string()))
    }
}

impl ClientLink for RequestLink {
    fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(token) = self.progress_token.clone() else {
                return;
            };
            let mut params = ProgressNotificationParam::new(token, progress);
            params.total = total;
            params.message = message;
            if let Err(err) = self.peer.notify_progress(params).await {
                tracing::debug!(error = %err, "progress notification not delivered");
            }
        })
    }

    fn log_level(&self) -> Option<LogLevel> {
        self.log_level
    }

    fn log(&self, level: LogLevel, data: Value) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let params = LoggingMessageNotificationParam::new(level_to_mcp(level), data)
                .with_logger(self.logger.clone());
            if let Err(err) = self.peer.notify_logging_message(params).await {
                tracing::debug!(error = %err, "log notification not delivered");
            }
        })
    }

    fn can_ask(&self, capability: Capability) -> bool {
        !matches!(self.transport, Transport::Stateless) && self.declares(capability)
    }

    fn ask<'a>(
        &'a self,
        key: &'a str,
        question: Question,
    ) -> BoxFuture<'a, Result<Value, ClientError>> {
        Box::pin(async move {
            let capability = question.capability();
            if matches!(self.transport, Transport::Stateless) {
                return Err(ClientError::Unsupported(format!(
                    "this server runs stateless, so it cannot send the client a {} request; \
                     use a session or protocol 2026-07-28",
                    capability.name()
                )));
            }
            if !self.declares(capability) {
                self.asked().missing.insert(capability);
                return Err(ClientError::Unsupported(format!(
                    "the client did not declare the {} capability",
                    capability.name()
                )));
            }
            match &self.transport {
                Transport::Rounds(round) => match round.answers.get(key) {
                    Some(answer) if answers_question(&question, answer) => Ok(answer.clone()),
                    // Not answered yet, or not an answer to this question: ask (again).
                    _ => {
                        self.asked().pending.insert(key.to_owned(), question);
                        Err(ClientError::InputRequired)
                    }
                },
                _ => self.request(question).await,
            }
        })
    }
}

/// Whether `answer` has the shape of an answer to `question`.
fn answers_question(question: &Question, answer: &Value) -> bool {
    let parses = |answer: &Value| match question {
        Question::Elicit { .. } => serde_json::from_value::<ElicitResult>(answer.clone()).is_ok(),
        Question::Sample(_) => {
            serde_json::from_value::<CreateMessageResult>(answer.clone()).is_ok()
        }
        Question::Roots => serde_json::from_value::<ListRootsResult>(answer.clone()).is_ok(),
    };
    answer.is_object() && parses(answer)
}

/// A question as an entry of an `InputRequiredResult`.
fn input_request(question: &Question) -> InputRequest {
    match question.clone() {
        Question::Elicit { message, schema } => InputRequest::Elicitation(ElicitRequest::new(
            ElicitRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema: schema,
            },
        )),
        Question::Sample(params) => InputRequest::CreateMessage(CreateMessageRequest::new(*params)),
        Question::Roots => InputRequest::ListRoots(ListRootsRequest::default()),
    }
}

/// What a round's state is bound to: the caller, the tool or prompt, and its arguments, so a
/// state cannot be replayed by another caller or for another call.
fn binding(
    identity: &str,
    target: &str,
    arguments: Option<&serde_json::Map<String, Value>>,
) -> Vec<u8> {
    let arguments = arguments.map(|a| serde_json::to_string(a).unwrap_or_default());
    format!("{identity}\n{target}\n{}", arguments.unwrap_or_default()).into_bytes()
}

/// Seals and opens the answers of earlier rounds carried in `requestState` (HMAC-SHA256,
/// bound to the request, valid [`ROUND_STATE_TTL`]).
///
/// The key is the server's own (random per process) unless `LINKMCP_REQUEST_STATE_KEY` gives
/// one, which replicas behind one Service must share: a client's next round may reach any of
/// them.
pub struct RoundState {
    codec: RequestStateCodec,
}

impl RoundState {
    /// The least length of a configured key.
    pub const MIN_KEY_BYTES: usize = RequestStateCodec::MIN_KEY_LENGTH;

    /// A codec with `key`, or a random key when `None`.
    pub fn new(key: Option<&[u8]>) -> Result<Self, String> {
        let key = match key {
            Some(key) => key.to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(|e| format!("no random key: {e}"))?;
                key
            }
        };
        RequestStateCodec::try_new(key)
            .map(|codec| Self { codec })
            .map_err(|e| e.to_string())
    }

    fn seal(&self, answers: &BTreeMap<String, Value>, binding: &[u8]) -> String {
        let payload = serde_json::to_vec(answers).unwrap_or_default();
        self.codec.seal_with(
            &payload,
            &SealOptions::new()
                .associated_data(binding)
                .ttl(ROUND_STATE_TTL),
        )
    }

    fn open(&self, state: &str, binding: &[u8]) -> Result<BTreeMap<String, Value>, ErrorData> {
        let refused = |reason: String| {
            ErrorData::invalid_params(
                format!(
                    "requestState refused: {reason}; call again without requestState and \
                     inputResponses to start over"
                ),
                None,
            )
        };
        let payload = self
            .codec
            .open_with(state, binding)
            .map_err(|e| refused(e.to_string()))?;
        serde_json::from_slice(&payload).map_err(|e| refused(e.to_string()))
    }
}

/// The MCP logging level of `level`.
fn level_to_mcp(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
        LogLevel::Critical => LoggingLevel::Critical,
        LogLevel::Alert => LoggingLevel::Alert,
        LogLevel::Emergency => LoggingLevel::Emergency,
    }
}

/// `level` as the toolsets' level.
pub(super) fn level_from_mcp(level: LoggingLevel) -> LogLevel {
    match level {
        LoggingLevel::Debug => LogLevel::Debug,
        LoggingLevel::Info => LogLevel::Info,
        LoggingLevel::Notice => LogLevel::Notice,
        LoggingLevel::Warning => LogLevel::Warning,
        LoggingLevel::Error => LogLevel::Error,
        LoggingLevel::Critical => LogLevel::Critical,
        LoggingLevel::Alert => LogLevel::Alert,
        LoggingLevel::Emergency => LogLevel::Emergency,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sealed_answers_open_only_for_the_same_call() {
        let rounds = RoundState::new(None).unwrap();
        let mut answers = BTreeMap::new();
        answers.insert(
            "confirm".to_owned(),
            serde_json::json!({"action": "accept"}),
        );
        let bound = binding("alice", "pg_execute", None);
        let state = rounds.seal(&answers, &bound);
        assert_eq!(rounds.open(&state, &bound).unwrap(), answers);

        let other = binding("bob", "pg_execute", None);
        let err = rounds.open(&state, &other).unwrap_err();
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(
            err.message.starts_with("requestState refused"),
            "{}",
            err.message
        );

        let mut tampered = state.clone();
        tampered.insert(5, 'x');
        assert!(rounds.open(&tampered, &bound).is_err());
        // Another server's key (a replica without the shared key) is refused too.
        let elsewhere = RoundState::new(None).unwrap();
        assert!(elsewhere.open(&state, &bound).is_err());
    }

    #[test]
    fn answers_must_fit_their_question() {
        let elicit = Question::Elicit {
            message: "sure?".into(),
            schema: rmcp::model::ElicitationSchema::builder().build().unwrap(),
        };
        assert!(answers_question(
            &elicit,
            &serde_json::json!({"action": "decline"})
        ));
        assert!(!answers_question(&elicit, &serde_json::json!("yes")));
        assert!(!answers_question(
            &elicit,
            &serde_json::json!({"roots": []})
        ));
        assert!(answers_question(
            &Question::Roots,
            &serde_json::json!({"roots": []})
        ));
    }

    #[test]
    fn levels_map_both_ways() {
        for level in [LogLevel::Debug, LogLevel::Warning, LogLevel::Emergency] {
            assert_eq!(level_from_mcp(level_to_mcp(level)), level);
        }
    }
}
