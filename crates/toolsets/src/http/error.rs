//! A failed HTTP call, said so a model (or a person) knows what to do next.

use serde_json::Value;

/// Why a request to an HTTP backend failed. `Display` is the whole message for the model:
/// the service, where, what happened, the server's own words, and what to check. It never
/// holds a credential (every message is scrubbed of the link's credential values).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    pub(super) message: String,
    pub(super) status: Option<u16>,
    pub(super) server_message: Option<String>,
    pub(super) body: Option<Value>,
    pub(super) timed_out: bool,
}

impl HttpError {
    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The server's own error message (from its JSON `error`/`message` field, or its text),
    /// scrubbed.
    pub fn server_message(&self) -> Option<&str> {
        self.server_message.as_deref()
    }

    /// The error body, when it was JSON (e.g. Prometheus's `errorType`).
    pub fn body(&self) -> Option<&Value> {
        self.body.as_ref()
    }

    /// Whether the call ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.timed_out
    }

    /// The error with its message replaced (a toolset saying more about a status it knows).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// An error that is not about transport or status (an answer of an unexpected shape).
    pub(super) fn other(message: String) -> Self {
        Self {
            message,
            status: None,
            server_message: None,
            body: None,
            timed_out: false,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// The most characters of a server's message kept.
const MAX_SERVER_MESSAGE_CHARS: usize = 600;

/// The server's own message in an error body: Prometheus `{"errorType", "error"}`, Grafana
/// `{"message"}`, Argo CD (grpc-gateway) `{"error", "message", "code"}`, others' `reason`,
/// `detail` or `title`; else the body's text (Loki answers plain text).
pub(super) fn server_message(body: &[u8], json: Option<&Value>) -> String {
    if let Some(object) = json.and_then(Value::as_object) {
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if let (Some(kind), Some(error)) = (text("errorType"), text("error")) {
            return shorten(&format!("{kind}: {error}"));
        }
        if let Some(found) = ["message", "error", "reason", "detail", "title"]
            .into_iter()
            .find_map(text)
        {
            return shorten(found);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no message".to_owned()
    } else {
        shorten(text)
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_SERVER_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
