//! The link's one Valkey connection: built with the toolset, opened on the first call and
//! reopened after it drops, so registering a link never waits on the network.
//!
//! Tools reach the server only through [`Valkey::read`] and [`Valkey::write`], which take the
//! command from the closed sets [`Read`] and [`Write`]: a read tool cannot issue a command that
//! changes data, because no such command is in the set it can name. Every failure becomes a
//! message a model can act on (unreachable, timed out, credentials refused), with the link's
//! credential values scrubbed from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fred::prelude::{
    Builder, ClientLike, Config, Error as FredError, ErrorKind, ServerConfig, Value,
};
use fred::types::config::{TlsConfig, TlsConnector};
use fred::types::{ClusterHash, ConnectHandle, CustomCommand};
use linkmcp_api::link::ValkeyBackend;

use crate::link::{BuildError, LinkContext};

/// How long opening the connection (TCP, TLS, AUTH, SELECT) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The commands read tools may send. None of them changes data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    Info,
    DbSize,
    Scan,
    Type,
    Pttl,
    Strlen,
    GetRange,
    Llen,
    Lrange,
    Scard,
    Sscan,
    Zcard,
    Zrange,
    Hlen,
    Hgetall,
    Hscan,
    Xlen,
    Xrange,
}

impl Read {
    /// Every read command, for the tests that check the set.
    #[cfg(test)]
    pub(super) const ALL: [Read; 18] = [
        Read::Info,
        Read::DbSize,
        Read::Scan,
        Read::Type,
        Read::Pttl,
        Read::Strlen,
        Read::GetRange,
        Read::Llen,
        Read::Lrange,
        Read::Scard,
        Read::Sscan,
        Read::Zcard,
        Read::Zrange,
        Read::Hlen,
        Read::Hgetall,
        Read::Hscan,
        Read::Xlen,
        Read::Xrange,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Read::Info => "INFO",
            Read::DbSize => "DBSIZE",
            Read::Scan => "SCAN",
            Read::Type => "TYPE",
            Read::Pttl => "PTTL",
            Read::Strlen => "STRLEN",
            Read::GetRange => "GETRANGE",
            Read::Llen => "LLEN",
            Read::Lrange => "LRANGE",
            Read::Scard => "SCARD",
            Read::Sscan => "SSCAN",
            Read::Zcard => "ZCARD",
            Read::Zrange => "ZRANGE",
            Read::Hlen => "HLEN",
            Read::Hgetall => "HGETALL",
            Read::Hscan => "HSCAN",
            Read::Xlen => "XLEN",
            Read::Xrange => "XRANGE",
        }
    }
}

/// The commands write tools may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    Set,
    Del,
}

impl Write {
    fn name(self) -> &'static str {
        match self {
            Write::Set => "SET",
            Write::Del => "DEL",
        }
    }
}

/// The task driving an open connection, numbered so that calls which failed on the same
/// connection replace it once, not once each.
struct Live {
    generation: u64,
    task: ConnectHandle,
}

/// A lazily connected client of one link's Valkey server.
///
/// The client's connection task is kept: when it has ended (the server closed the connection)
/// or a command timed out (the connection may be dead without the client knowing), the next
/// call opens a new connection instead of queuing behind the old one.
pub(super) struct Valkey {
    client: fred::clients::Client,
    /// The open connection; the lock serializes (re)connection attempts so concurrent calls
    /// open one connection.
    connection: tokio::sync::Mutex<Option<Live>>,
    generations: AtomicU64,
    /// Set when a command timed out: the next call reconnects first.
    suspect: AtomicBool,
    /// `host:port`, as shown in messages.
    endpoint: String,
    /// `namespace/name` of the link, as shown in messages.
    link: String,
    /// Names the client is registered under (`CLIENT SETNAME`), for operators' `CLIENT LIST`.
    client_name: String,
    has_password: bool,
    has_username: bool,
    /// Whether the link connects with TLS (named in connection failures).
    tls: bool,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
}

impl Valkey {
    /// The client of `block`, configured but not connected. `timeout` bounds each command.
    pub(super) fn new(
        link: &LinkContext<'_>,
        block: &ValkeyBackend,
        timeout: Duration,
    ) -> Result<Self, BuildError> {
        let port = u16::try_from(block.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                BuildError::Invalid(format!("valkey.port {} is not a TCP port", block.port))
            })?;
        let db = u8::try_from(block.db).map_err(|_| {
            BuildError::Invalid(format!("valkey.db {} is not a database number", block.db))
        })?;
        let tls = if block.tls {
            Some(tls_config().map_err(BuildError::Invalid)?)
        } else {
            None
        };
        let username = link.credentials.get("username").map(str::to_owned);
        let password = link.credentials.get("password").map(str::to_owned);
        let config = Config {
            server: ServerConfig::new_centralized(block.host.clone(), port),
            username: username.clone(),
            password: password.clone(),
            database: (db != 0).then_some(db),
            tls,
            fail_fast: true,
            ..Config::default()
        };
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = CONNECT_TIMEOUT;
                c.internal_command_timeout = CONNECT_TIMEOUT;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = timeout;
            })
            .build()
            .map_err(|e| {
                BuildError::Invalid(format!("valkey client for {}:{port}: {e}", block.host))
            })?;
        Ok(Self {
            client,
            connection: tokio::sync::Mutex::new(None),
            generations: AtomicU64::new(0),
            suspect: AtomicBool::new(false),
            endpoint: format!("{}:{port}", block.host),
            link: format!("{}/{}", link.namespace, link.name),
            client_name: format!("linkmcp:{}:{}", link.namespace, link.name),
            has_password: password.is_some(),
            has_username: username.is_some(),
            tls: block.tls,
            secrets: link
                .credentials
                .values()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    /// Sends a read command.
    pub(super) async fn read(&self, cmd: Read, args: Vec<Value>) -> Result<Value, String> {
        self.send(cmd.name(), args).await
    }

    /// Sends a write command.
    pub(super) async fn write(&self, cmd: Write, args: Vec<Value>) -> Result<Value, String> {
        self.send(cmd.name(), args).await
    }

    /// Sends read commands in one round trip; each gets its own result.
    pub(super) async fn read_pipeline(
        &self,
        cmds: Vec<(Read, Vec<Value>)>,
    ) -> Result<Vec<Result<Value, String>>, String> {
        self.ready(None).await?;
        let pipeline = self.client.pipeline();
        for (cmd, args) in cmds {
            // Queuing only buffers the command; errors come back from `try_all`.
            let queued: Result<Value, FredError> = pipeline.custom(command(cmd.name()), args).await;
            queued.map_err(|e| self.describe(&e))?;
        }
        Ok(pipeline
            .try_all::<Value>()
            .await
            .into_iter()
            .map(|r| r.map_err(|e| self.describe(&e)))
            .collect())
    }

    async fn send(&self, name: &'static str, args: Vec<Value>) -> Result<Value, String> {
        let generation = self.ready(None).await?;
        match self.client.custom(command(name), args.clone()).await {
            Ok(value) => Ok(value),
            // A connection that dropped since the last call: reconnect once and retry. Both
            // read and write commands here are idempotent, so a retry cannot apply twice.
            Err(e) if is_connection_error(&e) => {
                self.ready(Some(generation)).await?;
                self.client
                    .custom(command(name), args)
                    .await
                    .map_err(|e| self.describe(&e))
            }
            Err(e) => Err(self.describe(&e)),
        }
    }

    /// Makes sure a connection is open, connecting first if there is no live one or if the
    /// live one is the connection `failed` (which a command just failed on). Returns the
    /// generation of the connection.
    async fn ready(&self, failed: Option<u64>) -> Result<u64, String> {
        let mut live = self.connection.lock().await;
        let suspect = self.suspect.swap(false, Ordering::AcqRel);
        if let Some(current) = live.as_ref() {
            let healthy = !current.task.is_finished() && !suspect && self.client.is_connected();
            if healthy && failed != Some(current.generation) {
                return Ok(current.generation);
            }
        }
        if let Some(old) = live.take() {
            old.task.abort();
        }
        let limit = CONNECT_TIMEOUT + Duration::from_secs(1);
        match tokio::time::timeout(limit, self.client.init()).await {
            Ok(Ok(task)) => {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                *live = Some(Live { generation, task });
                // A name operators recognise in CLIENT LIST; an ACL user may not be allowed to
                // set it, which changes nothing for the tools.
                let _ = self
                    .client
                    .custom::<Value, Value>(
                        command("CLIENT"),
                        vec!["SETNAME".into(), self.client_name.as_str().into()],
                    )
                    .await;
                Ok(generation)
            }
            // A connection that cannot be set up in time is unreachable, not a slow command.
            Ok(Err(e)) if matches!(e.kind(), ErrorKind::Timeout) => {
                Err(self.unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))
            }
            Ok(Err(e)) => Err(self.describe(&e)),
            Err(_) => Err(self.unreachable(&format!("no answer within {} s", limit.as_secs()))),
        }
    }

    /// The server cannot be reached: what happened, and what to check.
    fn unreachable(&self, detail: &str) -> String {
        let hint = if self.tls {
            "; the link has `tls: true`, so also check that this port speaks TLS"
        } else {
            ""
        };
        format!(
            "cannot reach valkey at {}: {detail}; check host, port and NetworkPolicy{hint}",
            self.endpoint
        )
    }

    /// A message for `err` a model can act on, without credential values.
    pub(super) fn describe(&self, err: &FredError) -> String {
        if matches!(err.kind(), ErrorKind::Timeout) {
            self.suspect.store(true, Ordering::Release);
        }
        let detail = self.scrub(&readable(err.details()));
        let endpoint = &self.endpoint;
        match err.kind() {
            ErrorKind::IO | ErrorKind::Canceled => self.unreachable(&detail),
            ErrorKind::Timeout => format!(
                "valkey at {endpoint} did not answer in time ({detail}); check host, port and \
                 NetworkPolicy, or narrow the request"
            ),
            ErrorKind::Tls => format!(
                "the TLS handshake with valkey at {endpoint} failed: {detail}; check the link's \
                 `tls` setting and the server's certificate"
            ),
            ErrorKind::Auth => self.auth_message(&detail),
            _ if is_auth_text(&detail) => self.auth_message(&detail),
            _ => format!("valkey at {endpoint} answered: {detail}"),
        }
    }

    fn auth_message(&self, detail: &str) -> String {
        let (endpoint, link) = (&self.endpoint, &self.link);
        let detail = detail.trim_end_matches('.');
        if self.has_password {
            let names = if self.has_username {
                "`username` and `password`"
            } else {
                "`password`"
            };
            format!(
                "valkey at {endpoint} refused the credentials of link {link} ({names} from its \
                 credentialsSecretRef): {detail}; check those values in the Secret"
            )
        } else {
            format!(
                "valkey at {endpoint} requires authentication and link {link} has no \
                 credentials: {detail}; set credentialsSecretRef to a Secret with `password` \
                 (and `username` for an ACL user)"
            )
        }
    }

    /// `text` with every credential value replaced.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

impl Drop for Valkey {
    /// Closes the connection when the link goes (or its toolset is rebuilt).
    fn drop(&mut self) {
        if let Some(live) = self.connection.get_mut().take() {
            live.task.abort();
        }
    }
}

/// An error detail without the debug formatting of an I/O error (`Os { code: 111, kind:
/// ConnectionRefused, message: "Connection refused" }` becomes `Connection refused`).
fn readable(detail: &str) -> String {
    match detail.split_once("message: \"") {
        Some((_, rest)) if detail.starts_with("Os {") => {
            rest.split('"').next().unwrap_or(rest).to_owned()
        }
        _ => detail.to_owned(),
    }
}

fn command(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

fn is_connection_error(err: &FredError) -> bool {
    matches!(err.kind(), ErrorKind::IO | ErrorKind::Canceled)
}

/// Server replies that mean the credentials are missing or wrong (`NOAUTH`, `WRONGPASS`, or
/// `AUTH ... called without any password configured`).
fn is_auth_text(detail: &str) -> bool {
    let upper = detail.to_ascii_uppercase();
    upper.contains("NOAUTH")
        || upper.contains("WRONGPASS")
        || upper.contains("AUTH <PASSWORD>")
        || upper.contains("INVALID USERNAME-PASSWORD")
}

/// TLS on rustls with ring, chosen explicitly so the connection never depends on which
/// process-level crypto provider another component installed, trusting the system's roots.
fn tls_config() -> Result<TlsConfig, String> {
    let mut roots = fred::rustls::RootCertStore::empty();
    for cert in fred::rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("valkey.tls: no trusted root certificates were found on this system".into());
    }
    let provider = Arc::new(fred::rustls::crypto::ring::default_provider());
    let config = fred::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("valkey.tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config).into())
}
