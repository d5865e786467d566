//! Kafka as tools: list and describe topics, look at consumer groups and their lag, peek at
//! messages, and, with writeAccess, produce a message.
//!
//! Reading never moves anyone's offsets, because of how it reads, not because of a check on what
//! was asked: kafka_consume assigns the partitions it reads explicitly and seeks to its start
//! offsets (it never subscribes, so it never joins a consumer group), runs in a throwaway group
//! `linkmcp-peek-...` that is never committed to, and has automatic commits and offset stores
//! off. Committed offsets of a real group are read with a consumer that never subscribes and
//! never commits. A link with `topics` confines every tool to topics matching those globs.
//!
//! Every call is bounded: at most `limits.maxRows` messages, topics, groups or partitions
//! (default 100), each value cut at [`VALUE_BYTES`], the whole answer within the call's output
//! cap, and the time limit of the call or the link, whichever is shorter; the result says what
//! was cut and how to narrow the request. Messages are structured (partition, offset, timestamp,
//! key, headers, value as UTF-8 text or base64).
//!
//! The clients are created on the first call and reused (one metadata consumer and one producer
//! per link), so an unreachable cluster never blocks registration: the tools are listed and a
//! call says what to check. The blocking librdkafka calls run on tokio's blocking pool.

mod client;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use globset::{Glob, GlobSet, GlobSetBuilder};
use linkmcp_api::link::KafkaBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output};

use client::Kafka;
use tools::{
    ConsumeParams, ConsumerGroupsParams, DescribeTopicParams, ListTopicsParams, ProduceParams,
};

/// The most bytes of one message value (or key, or header value) a result carries.
pub const VALUE_BYTES: usize = 4096;

/// `spec.kafka.topics`: the topics a link may see and use; empty allows every topic.
#[derive(Clone, Default)]
pub(crate) struct AllowList {
    allow: Option<Arc<GlobSet>>,
    patterns: Vec<String>,
}

impl AllowList {
    fn new(patterns: &[String]) -> Result<Self, BuildError> {
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            builder.add(Glob::new(pattern).map_err(|e| {
                BuildError::Invalid(format!("kafka.topics: `{pattern}` is not a glob: {e}"))
            })?);
        }
        let set = builder
            .build()
            .map_err(|e| BuildError::Invalid(format!("kafka.topics: {e}")))?;
        Ok(Self {
            allow: Some(Arc::new(set)),
            patterns: patterns.to_vec(),
        })
    }

    /// Whether the link may use `topic`.
    fn allowed(&self, topic: &str) -> bool {
        self.allow.as_ref().is_none_or(|set| set.is_match(topic))
    }
}

/// The toolset of one Kafka link.
pub struct KafkaToolset {
    defs: Vec<ToolDef>,
    kafka: Arc<Kafka>,
    topics: AllowList,
    /// The most messages, topics, groups or partitions one call returns.
    max_rows: usize,
    /// The link's time limit for one call.
    timeout: Duration,
}

/// The toolset of a Kafka link. Configures the clients without creating or connecting them.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &KafkaBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let timeout = link.timeout();
    let max_rows = link.max_rows();
    let topics = AllowList::new(&block.topics)?;
    Ok(Arc::new(KafkaToolset {
        defs: tool_defs(&topics.patterns)
            .map_err(|e| BuildError::Invalid(format!("kafka tools: {e}")))?,
        kafka: Arc::new(Kafka::new(link, block, timeout)?),
        topics,
        max_rows,
        timeout,
    }))
}

/// The link as a component of the stack topology: where the brokers are and which topics it
/// uses, never a credential.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.kafka {
        endpoint.insert(
            "bootstrapServers".to_owned(),
            block.bootstrap_servers.join(","),
        );
        if let Some((host, port)) = block
            .bootstrap_servers
            .first()
            .and_then(|b| b.rsplit_once(':'))
        {
            endpoint.insert("host".to_owned(), host.to_owned());
            endpoint.insert("port".to_owned(), port.to_owned());
        }
        endpoint.insert(
            "securityProtocol".to_owned(),
            client::protocol_name(block.security_protocol).to_owned(),
        );
        if !block.topics.is_empty() {
            endpoint.insert("topics".to_owned(), block.topics.join(","));
        }
    }
    Component::of_link(link, "kafka", "queue", endpoint)
}

fn tool_defs(patterns: &[String]) -> Result<Vec<ToolDef>, ToolDefError> {
    let scope = if patterns.is_empty() {
        String::new()
    } else {
        format!(
            " This link only sees topics matching {}.",
            patterns.join(", ")
        )
    };
    Ok(vec![
        ToolDef::read::<ListTopicsParams>(
            "kafka_list_topics",
            format!(
                "List the cluster's topics with their partition count and replication factor. \
                 Narrow with a glob `pattern`; internal `__` topics only with \
                 `include_internal`.{scope}"
            ),
        )?,
        ToolDef::read::<DescribeTopicParams>(
            "kafka_describe_topic",
            format!(
                "Describe one topic: per partition its leader, replicas, in-sync replicas and \
                 low/high watermark offsets (so how many messages it holds).{scope}"
            ),
        )?,
        ToolDef::read::<ConsumerGroupsParams>(
            "kafka_consumer_groups",
            format!(
                "Without `group`: list consumer groups with their state and member count. With \
                 `group`: its state, members, and per partition its committed offset, the high \
                 watermark and the lag. Never joins the group or changes its offsets.{scope}"
            ),
        )?,
        ToolDef::read::<ConsumeParams>(
            "kafka_consume",
            format!(
                "Peek at messages of a topic without consuming them: nothing is committed and \
                 no consumer group moves, so repeating the call returns the same messages. By \
                 default the last `max_messages` messages; or from `offset` (with `partition`) \
                 or from `timestamp_ms`. Each message has partition, offset, timestamp, key, \
                 headers and value (UTF-8 text, or base64 for binary; long values cut).{scope}"
            ),
        )?,
        ToolDef::write::<ProduceParams>(
            "kafka_produce",
            format!(
                "Produce one message to an existing topic (value, optional key, headers and \
                 partition) and wait until the brokers acknowledge it; returns its partition \
                 and offset. Consumers of the topic will receive it.{scope}"
            ),
        )?
        .destructive(false),
    ])
}

impl Toolset for KafkaToolset {
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
                "kafka_list_topics" => self.list_topics(args, ctx).await,
                "kafka_describe_topic" => self.describe_topic(args, ctx).await,
                "kafka_consumer_groups" => self.consumer_groups(args, ctx).await,
                "kafka_consume" => self.consume(args, ctx).await,
                "kafka_produce" => self.produce(args, ctx).await,
                other => Err(output::error(format!("tool `{other}` is not a kafka tool"))),
            };
            result.unwrap_or_else(|error| error)
        })
    }
}
