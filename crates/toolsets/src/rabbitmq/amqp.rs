//! The link's AMQP connection, used only to publish.
//!
//! Opened on the first publish and reused; a connection or channel the broker closed (after a
//! network failure, or a channel error such as publishing to a missing exchange) is opened
//! again on the next publish. The channel is in confirm mode, so a publish is reported only
//! once the broker has acknowledged it. The URI is built from parts and never formatted, so no
//! text can show the password.

use std::sync::Arc;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use linkmcp_api::link::RabbitmqBackend;

use super::{CONNECT_TIMEOUT, LinkInfo};
use crate::link::BuildError;

/// One message to publish.
pub(super) struct Message<'a> {
    pub exchange: lapin::types::ShortString,
    pub routing_key: lapin::types::ShortString,
    pub payload: &'a [u8],
    pub properties: BasicProperties,
    pub mandatory: bool,
}

/// What the broker did with a published message.
pub(super) enum Published {
    /// Confirmed and routed to at least one queue (or not mandatory).
    Confirmed,
    /// Confirmed, but returned because no queue is bound for its routing key.
    Unroutable { reply: String },
    /// Refused by the broker (nack).
    Refused,
}

struct Open {
    connection: Connection,
    channel: Channel,
}

/// A lazily opened AMQP connection of one link.
pub(super) struct Publisher {
    uri: AMQPUri,
    /// `host:port`, as shown in messages.
    endpoint: String,
    /// Whether the link connects with TLS (named in connection failures).
    tls: bool,
    info: Arc<LinkInfo>,
    open: tokio::sync::Mutex<Option<Open>>,
}

impl Publisher {
    /// The publisher of `block`, not connected.
    pub(super) fn new(block: &RabbitmqBackend, info: Arc<LinkInfo>) -> Result<Self, BuildError> {
        let port = u16::try_from(block.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                BuildError::Invalid(format!("rabbitmq.port {} is not a TCP port", block.port))
            })?;
        let uri = AMQPUri {
            scheme: if block.tls {
                AMQPScheme::AMQPS
            } else {
                AMQPScheme::AMQP
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: info.username.clone(),
                    password: info.password.clone(),
                },
                host: block.host.clone(),
                port,
            },
            vhost: block.vhost.clone(),
            query: AMQPQueryString {
                connection_timeout: u64::try_from(CONNECT_TIMEOUT.as_millis()).ok(),
                ..AMQPQueryString::default()
            },
        };
        Ok(Self {
            uri,
            endpoint: format!("{}:{port}", block.host),
            tls: block.tls,
            info,
            open: tokio::sync::Mutex::new(None),
        })
    }

    /// Publishes `message` and waits for the broker's confirmation.
    pub(super) async fn publish(&self, message: Message<'_>) -> Result<Published, String> {
        let channel = self.channel().await?;
        let confirm = channel
            .basic_publish(
                message.exchange,
                message.routing_key,
                BasicPublishOptions {
                    mandatory: message.mandatory,
                    ..BasicPublishOptions::default()
                },
                message.payload,
                message.properties,
            )
            .await
            .map_err(|e| self.describe(&e))?;
        match confirm.await.map_err(|e| self.describe(&e))? {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(Published::Confirmed),
            Confirmation::Ack(Some(returned)) => Ok(Published::Unroutable {
                reply: format!("{} {}", returned.reply_code, returned.reply_text),
            }),
            Confirmation::Nack(_) => Ok(Published::Refused),
        }
    }

    /// The open confirm-mode channel, (re)opening the connection or channel as needed.
    async fn channel(&self) -> Result<Channel, String> {
        let mut open = self.open.lock().await;
        if let Some(current) = open.as_ref() {
            if current.channel.status().connected() {
                return Ok(current.channel.clone());
            }
            if current.connection.status().connected() {
                let channel = self.confirm_channel(&current.connection).await?;
                if let Some(current) = open.as_mut() {
                    current.channel = channel.clone();
                }
                return Ok(channel);
            }
        }
        *open = None;
        let connect = Connection::connect_uri(
            self.uri.clone(),
            ConnectionProperties::default()
                .with_connection_name(format!("linkmcp:{}", self.info.name).into()),
        );
        let connection = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(self.describe(&e)),
            Err(_) => {
                return Err(
                    self.unreachable(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
                );
            }
        };
        let channel = self.confirm_channel(&connection).await?;
        *open = Some(Open {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn confirm_channel(&self, connection: &Connection) -> Result<Channel, String> {
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| self.describe(&e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.describe(&e))?;
        Ok(channel)
    }

    /// The broker cannot be reached: what happened, and what to check.
    fn unreachable(&self, detail: &str) -> String {
        let hint = if self.tls {
            "; the link has `tls: true`, so also check that this port speaks AMQPS"
        } else {
            ""
        };
        format!(
            "cannot reach rabbitmq at {}: {detail}; check host, port and NetworkPolicy{hint}",
            self.endpoint
        )
    }

    /// A message for `err` a model can act on, without credential values.
    fn describe(&self, err: &lapin::Error) -> String {
        let detail = self.info.scrub(&err.to_string());
        let endpoint = &self.endpoint;
        if detail.contains("ACCESS_REFUSED")
            || matches!(err.kind(), lapin::ErrorKind::AuthProviderError(_))
        {
            return self
                .info
                .auth_message(&format!("rabbitmq at {endpoint}"), &detail);
        }
        if err.is_io_error() {
            return self.unreachable(&detail);
        }
        if detail.contains("NOT_ALLOWED") {
            return format!(
                "rabbitmq at {endpoint} refused the connection: {detail}; check the link's \
                 vhost and the user's permissions on it"
            );
        }
        format!("rabbitmq at {endpoint} refused the request: {detail}")
    }
}
