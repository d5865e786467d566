//! The ClickHouse HTTP interface: one reqwest client per link, statements in the POST body,
//! settings as URL parameters, credentials in the `X-ClickHouse-User` / `X-ClickHouse-Key`
//! headers (never in the URL), and results streamed line by line.
//!
//! Reads carry `readonly=1`, so ClickHouse itself refuses anything that changes data, schema or
//! settings; every statement carries `max_execution_time` from the call's timeout, and reads
//! `max_result_rows` with `result_overflow_mode=break` so the server stops producing rows soon
//! after the limit (block by block) while the reader stops at the row itself.

use crate::client::{self, Ticker};
use std::time::Duration;

use reqwest::Url;

use super::rows::{Collector, Line, RowSet};
use crate::credentials::Credentials;

/// The output format of every statement: streamed, one row a line, with names and types.
const FORMAT: &str = "TabSeparatedWithNamesAndTypes";
/// The most bytes of an error body kept.
const MAX_ERROR_BYTES: usize = 16 * 1024;
/// The longest line read before giving up on it (a single enormous value).
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Whether a statement may change the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// ClickHouse answered with an exception: its code and its message.
    Server { code: Option<u32>, message: String },
    /// The call ran out of time.
    Timeout,
    /// The server could not be reached or the connection broke.
    Unreachable(String),
}

/// The HTTP client of one link.
pub(crate) struct Client {
    http: reqwest::Client,
    url: Url,
    /// `host:port` for messages.
    pub endpoint: String,
    pub link: String,
    pub database: String,
    user: Option<String>,
    password: Option<String>,
    /// Whether the server knows [`CANCEL_ON_CLOSE`]; cleared when it refuses the setting.
    cancel_on_close: std::sync::atomic::AtomicBool,
}

/// The setting that makes ClickHouse stop a read whose client went away (a call cancelled or
/// timed out) even before it sends a row; without it a long aggregation runs on until
/// `max_execution_time`. Servers older than 19.x do not know it and refuse the request (code
/// 115): the client then goes on without it.
const CANCEL_ON_CLOSE: &str = "cancel_http_readonly_queries_on_client_close";

/// ClickHouse's code for an unknown setting.
const UNKNOWN_SETTING: u32 = 115;

impl Client {
    /// A client for the link's `url`; connects on first use.
    pub(crate) fn new(
        link: &str,
        url: &str,
        database: &str,
        credentials: &Credentials,
    ) -> Result<Self, String> {
        let url = Url::parse(url).map_err(|e| format!("clickhouse.url `{url}` is invalid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "clickhouse.url `{url}` must be an http:// or https:// URL with a host"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "clickhouse.url must not carry credentials: put them in the link's \
                 `username` and `password` credentials"
                    .to_owned(),
            );
        }
        let endpoint = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(8123)
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("the HTTP client for ClickHouse could not be built: {e}"))?;
        Ok(Self {
            http,
            url,
            endpoint,
            link: link.to_owned(),
            database: database.to_owned(),
            user: credentials.get("username").map(str::to_owned),
            password: credentials.get("password").map(str::to_owned),
            cancel_on_close: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The user name the link authenticates as (`default` when none is set).
    pub(crate) fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("default")
    }

    async fn send(
        &self,
        sql: &str,
        mode: Mode,
        timeout: Duration,
        max_rows: usize,
    ) -> Result<reqwest::Response, Failure> {
        use std::sync::atomic::Ordering::Relaxed;
        let cancel_on_close = mode == Mode::Read && self.cancel_on_close.load(Relaxed);
        match self
            .send_once(sql, mode, timeout, max_rows, cancel_on_close)
            .await
        {
            Err(Failure::Server {
                code: Some(UNKNOWN_SETTING),
                message,
            }) if cancel_on_close && message.contains(CANCEL_ON_CLOSE) => {
                self.cancel_on_close.store(false, Relaxed);
                self.send_once(sql, mode, timeout, max_rows, false).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        sql: &str,
        mode: Mode,
        timeout: Duration,
        max_rows: usize,
        cancel_on_close: bool,
    ) -> Result<reqwest::Response, Failure> {
        let mut url = self.url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("database", &self.database);
            q.append_pair("default_format", FORMAT);
            q.append_pair(
                "max_execution_time",
                &execution_seconds(timeout).to_string(),
            );
            if mode == Mode::Read {
                q.append_pair("max_result_rows", &(max_rows + 1).to_string());
                q.append_pair("result_overflow_mode", "break");
                if cancel_on_close {
                    q.append_pair(CANCEL_ON_CLOSE, "1");
                }
                // Last: after it, the request may set no further setting.
                q.append_pair("readonly", "1");
            }
        }
        let mut request = self.http.post(url).timeout(timeout).body(sql.to_owned());
        if let Some(user) = &self.user {
            request = request.header("X-ClickHouse-User", user);
        }
        if let Some(password) = &self.password {
            request = request.header("X-ClickHouse-Key", password);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = read_capped(response, MAX_ERROR_BYTES).await;
        Err(parse_failure(&body).unwrap_or(Failure::Server {
            code: None,
            message: format!("HTTP {status}: {}", body.trim()),
        }))
    }

    fn transport(&self, err: &reqwest::Error) -> Failure {
        if err.is_timeout() {
            return Failure::Timeout;
        }
        let what = if err.is_connect() {
            "the connection was refused or could not be made"
        } else {
            "the connection failed"
        };
        Failure::Unreachable(what.to_owned())
    }

    /// Runs `sql` and collects its rows within the bounds.
    pub(crate) async fn rows(
        &self,
        sql: &str,
        mode: Mode,
        timeout: Duration,
        max_rows: usize,
        max_bytes: usize,
        client: &client::Client,
    ) -> Result<RowSet, Failure> {
        let mut response = self.send(sql, mode, timeout, max_rows).await?;
        let mut collector = Collector::new(max_rows, max_bytes);
        let mut pending: Vec<u8> = Vec::new();
        let mut ticker = Ticker::new(client, "lines read");
        let mut lines = 0u64;
        loop {
            ticker.tick(lines, None).await;
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(self.transport(&e)),
            };
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(at) = pending[start..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&pending[start..start + at]);
                start += at + 1;
                lines += 1;
                match collector.line(&line) {
                    Line::More => {}
                    // Dropping the response closes the connection: ClickHouse cancels the rest.
                    Line::Full => return Ok(collector.finish()),
                    Line::Error(message) => {
                        return Err(parse_failure(&message).unwrap_or(Failure::Server {
                            code: None,
                            message,
                        }));
                    }
                }
            }
            pending.drain(..start);
            if pending.len() > MAX_LINE_BYTES {
                collector.cut_output();
                return Ok(collector.finish());
            }
        }
        if !pending.is_empty() {
            let line = String::from_utf8_lossy(&pending).into_owned();
            if let Line::Error(message) = collector.line(&line) {
                return Err(parse_failure(&message).unwrap_or(Failure::Server {
                    code: None,
                    message,
                }));
            }
        }
        Ok(collector.finish())
    }

    /// Runs one statement that may change data; returns whatever text it answered (empty for
    /// most writes), capped.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<String, Failure> {
        let response = self.send(sql, Mode::Write, timeout, 0).await?;
        Ok(read_capped(response, max_bytes).await)
    }
}

/// Seconds for `max_execution_time`: a little under the call's timeout, at least one, so
/// ClickHouse's own clear message comes before the call is abandoned.
pub(crate) fn execution_seconds(timeout: Duration) -> u64 {
    let margin = (timeout / 10).min(Duration::from_secs(2));
    timeout.saturating_sub(margin).as_secs().max(1)
}

/// Reads at most `max` bytes of a body.
async fn read_capped(mut response: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= max {
            body.truncate(max);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// A ClickHouse exception text: `Code: 60, e.displayText() = DB::Exception: Table x doesn't
/// exist., e.what() = DB::Exception` (18.x) or `Code: 60. DB::Exception: Table x doesn't
/// exist. (UNKNOWN_TABLE) (version 23.8.1)` (later versions).
pub(crate) fn parse_failure(body: &str) -> Option<Failure> {
    let at = body.find("Code: ")?;
    let rest = &body[at + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code = digits.parse().ok();
    let message = match rest.find("DB::Exception: ") {
        Some(m) => {
            let text = &rest[m + "DB::Exception: ".len()..];
            let end = [", e.what()", " (version ", "\n"]
                .iter()
                .filter_map(|marker| text.find(marker))
                .min()
                .unwrap_or(text.len());
            text[..end].trim().to_owned()
        }
        None => rest[digits.len()..]
            .trim_start_matches([',', '.', ' '])
            .trim()
            .to_owned(),
    };
    Some(Failure::Server { code, message })
}

/// A string literal for ClickHouse SQL.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}
