//! RabbitMQ as tools: see queues and their depth, peek at messages without consuming them,
//! and, with writeAccess, publish.
//!
//! Listing, statistics and peeking use the management HTTP API (`spec.rabbitmq.managementUrl`,
//! or `http://<host>:15672`); publishing uses AMQP with publisher confirms, so a publish is
//! reported only once the broker has taken the message. A peek is a `basic.get` that the
//! broker requeues (`ackmode=ack_requeue_true`): the messages stay in the queue, in place, and
//! are marked redelivered, which the result says.
//!
//! Every call is bounded: at most `limits.maxRows` queues or messages (default 100), payloads
//! cut at [`FIELD_BYTES`] by the broker itself, the answer within the call's output cap; queue
//! lists are paginated by the management API.
//!
//! The credentials are the link's `username` and `password` (RabbitMQ's default `guest` user
//! when the link has none). Neither client connects when the toolset is built: the HTTP client
//! connects per request, the AMQP connection on the first publish, reused until it closes.

mod amqp;
mod management;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use linkmcp_api::link::RabbitmqBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output};

use amqp::Publisher;
use management::Management;
use tools::{ListQueuesParams, PeekParams, PublishParams, QueueStatsParams};

/// The most bytes of one message payload a result carries.
pub const FIELD_BYTES: usize = 4096;

/// How long opening a connection (HTTP or AMQP) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The user RabbitMQ creates by default, tried when a link has no credentials.
const DEFAULT_USER: &str = "guest";

/// The toolset of one RabbitMQ link.
pub struct RabbitmqToolset {
    defs: Vec<ToolDef>,
    management: Management,
    publisher: Publisher,
    /// The link's virtual host.
    vhost: String,
    /// The most queues or messages one call returns.
    max_rows: usize,
}

/// What both clients need to know about the link.
struct LinkInfo {
    /// `namespace/name`, as shown in messages.
    name: String,
    username: String,
    password: String,
    /// Whether the link has its own credentials (otherwise `guest` is tried).
    has_credentials: bool,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
}

impl LinkInfo {
    fn new(link: &LinkContext<'_>) -> Self {
        let username = link.credentials.get("username");
        let password = link.credentials.get("password");
        Self {
            name: format!("{}/{}", link.namespace, link.name),
            has_credentials: username.is_some() || password.is_some(),
            username: username.unwrap_or(DEFAULT_USER).to_owned(),
            password: password.unwrap_or(DEFAULT_USER).to_owned(),
            secrets: link
                .credentials
                .values()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// `text` with every credential value replaced.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }

    /// What to say when RabbitMQ refuses the login of `service`.
    fn auth_message(&self, service: &str, detail: &str) -> String {
        let link = &self.name;
        let detail = detail.trim_end_matches('.');
        if self.has_credentials {
            format!(
                "{service} refused the credentials of link {link} (`username` and `password` \
                 from its credentialsSecretRef): {detail}; check those values in the Secret"
            )
        } else {
            format!(
                "{service} refused the login: {detail}; link {link} has no credentials, so \
                 RabbitMQ's default `guest` user was tried (accepted only from localhost); set \
                 credentialsSecretRef to a Secret with `username` and `password`"
            )
        }
    }
}

/// The toolset of a RabbitMQ link. Builds both clients without connecting.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &RabbitmqBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let timeout = link.timeout();
    let max_rows = link.max_rows();
    let info = Arc::new(LinkInfo::new(link));
    Ok(Arc::new(RabbitmqToolset {
        defs: tool_defs(&block.vhost)
            .map_err(|e| BuildError::Invalid(format!("rabbitmq tools: {e}")))?,
        management: Management::new(block, info.clone(), timeout)?,
        publisher: Publisher::new(block, info)?,
        vhost: block.vhost.clone(),
        max_rows,
    }))
}

/// The link as a component of the stack topology: where the broker is, never a credential.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.rabbitmq {
        endpoint.insert("host".to_owned(), block.host.clone());
        endpoint.insert("port".to_owned(), block.port.to_string());
        endpoint.insert("vhost".to_owned(), block.vhost.clone());
        endpoint.insert("tls".to_owned(), block.tls.to_string());
        endpoint.insert(
            "managementUrl".to_owned(),
            management::shown_url(block).unwrap_or_else(|| "(invalid)".to_owned()),
        );
    }
    Component::of_link(link, "rabbitmq", "queue", endpoint)
}

fn tool_defs(vhost: &str) -> Result<Vec<ToolDef>, ToolDefError> {
    Ok(vec![
        ToolDef::read::<ListQueuesParams>(
            "rmq_list_queues",
            format!(
                "List the queues of virtual host `{vhost}` with their type, state, message \
                 counts (ready and unacknowledged) and consumers, one page at a time. Filter \
                 by `name`; `page_count` says how many pages there are."
            ),
        )?,
        ToolDef::read::<QueueStatsParams>(
            "rmq_queue_stats",
            "Details of one queue: messages ready and unacknowledged, bytes, consumers and \
             their utilisation, memory, state, policy, arguments, and publish/deliver/ack \
             counts and rates. Counts are sampled by the broker every few seconds.",
        )?,
        ToolDef::read::<PeekParams>(
            "rmq_peek_messages",
            "Look at the first messages of a queue without consuming them: payload, routing \
             key, exchange, properties and headers. The broker requeues them in place, and \
             marks them redelivered, which their consumers will see.",
        )?,
        ToolDef::write::<PublishParams>(
            "rmq_publish",
            "Publish one message to an exchange (the default exchange `` routes by queue \
             name) with a routing key, optional properties and headers. Waits for the \
             broker's confirmation, and reports a message no queue received.",
        )?
        .destructive(false),
    ])
}

impl Toolset for RabbitmqToolset {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            let result = match name {
                "rmq_list_queues" => self.list_queues(args, ctx).await,
                "rmq_queue_stats" => self.queue_stats(args, ctx).await,
                "rmq_peek_messages" => self.peek_messages(args, ctx).await,
                "rmq_publish" => self.publish(args, ctx).await,
                other => Err(output::error(format!(
                    "tool `{other}` is not a rabbitmq tool"
                ))),
            };
            result.unwrap_or_else(|error| error)
        })
    }
}
