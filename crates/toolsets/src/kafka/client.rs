//! The link's Kafka clients: configured with the toolset, created on the first call that needs
//! them (so registering a link never touches the network) and then reused — one metadata
//! consumer and one producer per link.
//!
//! The metadata consumer never subscribes, never is assigned a partition and never commits: it
//! only asks for metadata, watermarks and group lists. Peeks and committed-offset lookups use a
//! short-lived consumer of their own ([`Kafka::peek_consumer`], [`Kafka::group_reader`]), both
//! with automatic commits and offset stores off. Every failure becomes a message a model can
//! act on (unreachable, credentials refused, topic missing), with the link's credential values
//! scrubbed from it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linkmcp_api::common::TlsOptions;
use linkmcp_api::link::{KafkaBackend, KafkaSecurity, SaslMechanism};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use crate::credentials::Credentials;
use crate::link::{BuildError, LinkContext};

/// Records the last error librdkafka reports for a client (a refused connection, a failed SASL
/// handshake), so a call that ran out of time can say why.
#[derive(Clone, Default)]
pub(super) struct Context {
    last_error: Arc<Mutex<Option<String>>>,
}

impl Context {
    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            tracing::debug!(facility = fac, "librdkafka: {log_message}");
        }
        // A broker connection that failed (refused, TLS handshake, SASL login) is logged with
        // the reason; the error event that follows may only say that every broker is down.
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        ) && fac == "FAIL"
        {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(log_message.to_owned());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka error: {error}: {reason}");
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // "All brokers are down" follows the failure that took each broker down, which is the
        // one that says why.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) && last.is_some() {
            return;
        }
        *last = Some(reason.to_owned());
    }
}

impl ConsumerContext for Context {}

/// A consumer of this module.
pub(super) type Consumer = BaseConsumer<Context>;

/// A lazily created set of clients of one link's Kafka cluster.
pub(super) struct Kafka {
    /// Settings shared by every client (bootstrap servers, security, SASL credentials).
    base: ClientConfig,
    /// Why the link's settings cannot connect at all (said by every call).
    config_error: Option<String>,
    meta: Mutex<Option<Arc<Consumer>>>,
    /// The producer and its context (which the producer does not give back).
    producer: Mutex<Option<(Arc<FutureProducer<Context>>, Context)>>,
    /// The bootstrap servers, as shown in messages.
    pub(super) bootstrap: String,
    /// `namespace/name` of the link, as shown in messages.
    link: String,
    security: KafkaSecurity,
    mechanism: SaslMechanism,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
    /// How long a produced message may wait for its delivery report.
    delivery_timeout: Duration,
}

/// Numbers peek group ids within this process.
static PEEKS: AtomicU64 = AtomicU64::new(0);

impl Kafka {
    /// The clients of `block`, configured but not created.
    pub(super) fn new(
        link: &LinkContext<'_>,
        block: &KafkaBackend,
        delivery_timeout: Duration,
    ) -> Result<Self, BuildError> {
        if block.bootstrap_servers.is_empty() {
            return Err(BuildError::Invalid(
                "kafka.bootstrapServers is empty; give at least one host:port".into(),
            ));
        }
        let bootstrap = block.bootstrap_servers.join(",");
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &bootstrap)
            .set(
                "client.id",
                format!("linkmcp-{}-{}", link.namespace, link.name),
            )
            .set("socket.connection.setup.timeout.ms", "5000")
            .set("reconnect.backoff.max.ms", "2000")
            .set("security.protocol", protocol_name(block.security_protocol));
        let sasl = matches!(
            block.security_protocol,
            KafkaSecurity::SaslPlaintext | KafkaSecurity::SaslSsl
        );
        let mut config_error = None;
        if matches!(
            block.security_protocol,
            KafkaSecurity::Ssl | KafkaSecurity::SaslSsl
        ) && let Err(err) = apply_tls(&mut base, block.tls.as_ref(), link.credentials)
        {
            config_error = Some(format!("link {}/{}: {err}", link.namespace, link.name));
        }
        if sasl {
            base.set("sasl.mechanism", mechanism_name(block.sasl_mechanism));
            match (
                link.credentials.get("username"),
                link.credentials.get("password"),
            ) {
                (Some(user), Some(password)) => {
                    base.set("sasl.username", user)
                        .set("sasl.password", password);
                }
                _ => {
                    config_error.get_or_insert(format!(
                        "link {}/{} uses securityProtocol {} but its credentials lack \
                         `username` and `password`; set credentialsSecretRef to a Secret with both",
                        link.namespace,
                        link.name,
                        protocol_name(block.security_protocol)
                    ));
                }
            }
        }
        Ok(Self {
            base,
            config_error,
            meta: Mutex::new(None),
            producer: Mutex::new(None),
            bootstrap,
            link: format!("{}/{}", link.namespace, link.name),
            security: block.security_protocol,
            mechanism: block.sasl_mechanism,
            secrets: link
                .credentials
                .values()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
            delivery_timeout,
        })
    }

    /// The consumer settings every consumer of this module shares: never commit, never store
    /// offsets, never create a topic by asking about it.
    fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base.clone();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("allow.auto.create.topics", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true");
        config
    }

    fn create_consumer(&self, config: &ClientConfig) -> Result<Consumer, String> {
        if let Some(err) = &self.config_error {
            return Err(err.clone());
        }
        config
            .create_with_context(Context::default())
            .map_err(|e| self.config_message(&e))
    }

    /// The link's metadata consumer, created on first use.
    pub(super) fn meta(&self) -> Result<Arc<Consumer>, String> {
        let mut meta = self.meta.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(consumer) = meta.as_ref() {
            return Ok(consumer.clone());
        }
        let consumer = Arc::new(self.create_consumer(
            &self.consumer_config(&format!("linkmcp-meta-{}", self.link.replace('/', "-"))),
        )?);
        *meta = Some(consumer.clone());
        Ok(consumer)
    }

    /// The link's producer, created on first use. It waits for every message's delivery report.
    pub(super) fn producer(&self) -> Result<(Arc<FutureProducer<Context>>, Context), String> {
        let mut producer = self.producer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((p, context)) = producer.as_ref() {
            return Ok((p.clone(), context.clone()));
        }
        if let Some(err) = &self.config_error {
            return Err(err.clone());
        }
        let mut config = self.base.clone();
        config
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().max(1000).to_string(),
            )
            .set("allow.auto.create.topics", "false");
        let context = Context::default();
        let p: FutureProducer<Context> = config
            .create_with_context(context.clone())
            .map_err(|e| self.config_message(&e))?;
        let p = Arc::new(p);
        *producer = Some((p.clone(), context.clone()));
        Ok((p, context))
    }

    /// A consumer for one peek, in a throwaway group (`linkmcp-peek-...`) that is never joined
    /// and never committed to: partitions are assigned explicitly, and commits and offset
    /// stores are off.
    pub(super) fn peek_consumer(&self) -> Result<(Consumer, String), String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let group = format!(
            "linkmcp-peek-{:x}-{nanos:x}-{}",
            std::process::id(),
            PEEKS.fetch_add(1, Ordering::Relaxed)
        );
        let consumer = self.create_consumer(&self.consumer_config(&group))?;
        Ok((consumer, group))
    }

    /// A consumer that reads the committed offsets of `group`: it never subscribes (so it never
    /// joins the group), is never assigned a partition and never commits.
    pub(super) fn group_reader(&self, group: &str) -> Result<Consumer, String> {
        self.create_consumer(&self.consumer_config(group))
    }

    /// The link's settings cannot create a client (a value librdkafka refuses).
    fn config_message(&self, err: &KafkaError) -> String {
        self.scrub(&format!(
            "the kafka client for link {} cannot be created: {err}; check the link's \
             securityProtocol and saslMechanism",
            self.link
        ))
    }

    /// A message for `err` a model can act on, without credential values. `last` is the last
    /// error the client reported in the background (connection refused, SASL failure).
    pub(super) fn describe(
        &self,
        err: &KafkaError,
        last: Option<String>,
        waited: Duration,
    ) -> String {
        let code = err.rdkafka_error_code();
        let detail = last.unwrap_or_else(|| err.to_string());
        let text = if is_tls_text(&detail) {
            format!(
                "the TLS handshake with kafka at {} failed for link {}: {detail}; put the CA \
                 bundle that signed the brokers' certificates into its credentialsSecretRef as \
                 `{}` (and `{}` with `{}` when the brokers want a client certificate)",
                self.bootstrap,
                self.link,
                TlsOptions::CA_CREDENTIAL,
                TlsOptions::CLIENT_CERT_CREDENTIAL,
                TlsOptions::CLIENT_KEY_CREDENTIAL
            )
        } else if is_auth_text(&detail)
            || matches!(
                code,
                Some(
                    RDKafkaErrorCode::SaslAuthenticationFailed
                        | RDKafkaErrorCode::Authentication
                        | RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::GroupAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed
                )
            )
        {
            format!(
                "kafka at {} refused the credentials or permissions of link {} (`username` and \
                 `password` from its credentialsSecretRef, saslMechanism {}): {detail}; check \
                 those values in the Secret and the user's ACLs",
                self.bootstrap,
                self.link,
                mechanism_name(self.mechanism)
            )
        } else if matches!(
            code,
            Some(
                RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::Resolve
                    | RDKafkaErrorCode::NetworkException
            )
        ) {
            self.unreachable(&detail, waited)
        } else {
            format!("kafka at {} answered: {err}", self.bootstrap)
        };
        self.scrub(&text)
    }

    /// The cluster cannot be reached: what happened, and what to check.
    pub(super) fn unreachable(&self, detail: &str, waited: Duration) -> String {
        let tls = match self.security {
            KafkaSecurity::Ssl | KafkaSecurity::SaslSsl => {
                " (the link uses TLS: also check that the port speaks TLS)"
            }
            _ => "",
        };
        self.scrub(&format!(
            "cannot reach kafka at {}: no broker answered within {:.1} s ({detail}); check \
             bootstrapServers, securityProtocol {}{tls} and NetworkPolicy",
            self.bootstrap,
            waited.as_secs_f64(),
            protocol_name(self.security)
        ))
    }

    /// The last background error of `consumer`, or of the metadata consumer.
    pub(super) fn last_error(consumer: &Consumer) -> Option<String> {
        use rdkafka::consumer::Consumer as _;
        // librdkafka queues its log and error events for the client's poll, which a metadata
        // request never makes: serve them first. Only on a failed call's path, where a message
        // a poll takes off a peek consumer is not needed any more.
        for _ in 0..16 {
            if consumer.poll(Duration::ZERO).is_none() {
                break;
            }
        }
        consumer.context().last_error()
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

impl Drop for Kafka {
    /// Closes the clients when the link goes (or its toolset is rebuilt). Closing waits on
    /// librdkafka (a producer flushes for up to half a second), so it runs on the blocking pool
    /// when there is one, never on an async worker.
    fn drop(&mut self) {
        let meta = self
            .meta
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let producer = self
            .producer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if meta.is_none() && producer.is_none() {
            return;
        }
        let close = move || drop((meta, producer));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}

/// librdkafka's `security.protocol` value.
pub(super) fn protocol_name(security: KafkaSecurity) -> &'static str {
    match security {
        KafkaSecurity::Plaintext => "plaintext",
        KafkaSecurity::Ssl => "ssl",
        KafkaSecurity::SaslPlaintext => "sasl_plaintext",
        KafkaSecurity::SaslSsl => "sasl_ssl",
    }
}

fn mechanism_name(mechanism: SaslMechanism) -> &'static str {
    match mechanism {
        SaslMechanism::Plain => "PLAIN",
        SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
        SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
    }
}

/// The TLS settings of the ssl and sasl_ssl protocols from the link's `tls` options and
/// credentials. PEM values go to librdkafka inline (`ssl.*.pem`), never through a file; an
/// unusable value is named (never shown) before any client exists.
fn apply_tls(
    config: &mut ClientConfig,
    options: Option<&TlsOptions>,
    credentials: &Credentials,
) -> Result<(), String> {
    const PEM: &str = "-----BEGIN ";
    if let Some(ca) = credentials
        .get(TlsOptions::CA_CREDENTIAL)
        .filter(|v| !v.trim().is_empty())
    {
        if !ca.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "the credential `{}` is not a PEM certificate bundle (-----BEGIN CERTIFICATE----- ...)",
                TlsOptions::CA_CREDENTIAL
            ));
        }
        config.set("ssl.ca.pem", ca);
    }
    match (
        credentials.get(TlsOptions::CLIENT_CERT_CREDENTIAL),
        credentials.get(TlsOptions::CLIENT_KEY_CREDENTIAL),
    ) {
        (Some(cert), Some(key)) => {
            if !cert.contains(PEM) || !key.contains(PEM) {
                return Err(format!(
                    "the credentials `{}` and `{}` are not a PEM certificate and private key",
                    TlsOptions::CLIENT_CERT_CREDENTIAL,
                    TlsOptions::CLIENT_KEY_CREDENTIAL
                ));
            }
            config
                .set("ssl.certificate.pem", cert)
                .set("ssl.key.pem", key);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "a client certificate needs both `{}` and `{}` in the credentials",
                TlsOptions::CLIENT_CERT_CREDENTIAL,
                TlsOptions::CLIENT_KEY_CREDENTIAL
            ));
        }
        (None, None) => {}
    }
    if options.is_some_and(|o| o.insecure_skip_verify) {
        config
            .set("enable.ssl.certificate.verification", "false")
            .set("ssl.endpoint.identification.algorithm", "none");
    }
    Ok(())
}

/// A failed TLS handshake, as librdkafka reports it.
fn is_tls_text(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("ssl handshake") || lower.contains("certificate")
}

fn is_auth_text(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("sasl") || lower.contains("authentication") || lower.contains("authoriz")
}
