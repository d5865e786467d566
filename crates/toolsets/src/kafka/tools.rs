//! The kafka tools: typed parameters, the blocking librdkafka calls (run on the blocking pool,
//! each bounded by the call's time budget) and bounded, structured results.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::Message as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers as _, OwnedHeaders, Timestamp};
use rdkafka::metadata::Metadata;
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::client::{Consumer, Kafka};
use super::{AllowList, KafkaToolset, VALUE_BYTES};
use crate::{CallContext, output, parse_args};

/// Parameters of kafka_list_topics.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListTopicsParams {
    /// Only topics whose name matches this glob (`orders.*`, `*-dlq`). Default: all topics
    /// this link may see.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Also list internal topics whose name starts with `__` (e.g. `__consumer_offsets`).
    #[serde(default)]
    pub include_internal: bool,
}

/// Parameters of kafka_describe_topic.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DescribeTopicParams {
    /// The topic's exact name.
    pub topic: String,
}

/// Parameters of kafka_consumer_groups.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsumerGroupsParams {
    /// A consumer group's exact name: its state, members, committed offsets and lag per
    /// partition. Without it: the list of groups.
    #[serde(default)]
    pub group: Option<String>,
}

/// Parameters of kafka_consume.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsumeParams {
    /// The topic to read.
    pub topic: String,
    /// Read only this partition. Default: every partition of the topic.
    #[serde(default)]
    pub partition: Option<i32>,
    /// The most messages to return (capped by the link's maxRows). Default: the cap.
    #[serde(default)]
    pub max_messages: Option<u32>,
    /// Start at this offset in each partition read (use with `partition`). Default: the last
    /// `max_messages` messages of each partition.
    #[serde(default)]
    pub offset: Option<i64>,
    /// Start at the first message at or after this time (milliseconds since the Unix epoch).
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
}

/// Parameters of kafka_produce.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProduceParams {
    /// The topic to write to; it must exist.
    pub topic: String,
    /// The message value, as UTF-8 text.
    pub value: String,
    /// The message key (decides the partition when `partition` is not given).
    #[serde(default)]
    pub key: Option<String>,
    /// Message headers, name to UTF-8 value.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Write to this partition. Default: chosen from the key (or spread without one).
    #[serde(default)]
    pub partition: Option<i32>,
}

/// One topic in a listing.
#[derive(Debug, Serialize)]
struct TopicSummary {
    name: String,
    partitions: usize,
    replication_factor: usize,
}

/// One partition of a described topic.
#[derive(Debug, Serialize)]
struct PartitionInfo {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    low_watermark: Option<i64>,
    high_watermark: Option<i64>,
    messages: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One message read by kafka_consume.
#[derive(Debug, Serialize)]
pub(super) struct PeekedMessage {
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch, when the message has a timestamp.
    pub timestamp_ms: Option<i64>,
    /// `create_time` or `log_append_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_type: Option<&'static str>,
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encoding: Option<&'static str>,
    pub headers: Vec<HeaderOut>,
    pub value: Option<String>,
    /// `utf-8` or `base64` (of the bytes shown).
    pub value_encoding: &'static str,
    /// The value's full size in bytes.
    pub value_bytes: usize,
    /// Whether the value was cut to the first bytes shown.
    pub value_truncated: bool,
}

/// One header of a message.
#[derive(Debug, Serialize)]
pub(super) struct HeaderOut {
    pub key: String,
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
}

/// Bytes as text when they are UTF-8, else as base64; cut to `max` bytes first (at a character
/// boundary for text). Returns the text, its encoding and whether it was cut.
pub(super) fn render_bytes(bytes: &[u8], max: usize) -> (String, &'static str, bool) {
    let cut = bytes.len() > max;
    let shown = &bytes[..bytes.len().min(max)];
    match std::str::from_utf8(shown) {
        Ok(text) => (text.to_owned(), "utf-8", cut),
        // A character split by the cut: keep the text before it.
        Err(e) if cut && e.error_len().is_none() => {
            let text = std::str::from_utf8(&shown[..e.valid_up_to()]).unwrap_or_default();
            (text.to_owned(), "utf-8", cut)
        }
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(shown),
            "base64",
            cut,
        ),
    }
}

/// Why a blocking Kafka step failed: a message for the model, already phrased.
type Step<T> = Result<T, String>;

/// Runs `f` on the blocking pool and flattens a panic into an error message.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Step<T> + Send + 'static) -> Step<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("the kafka call failed unexpectedly: {e}")))
}

/// The cluster's metadata, or a message saying why it could not be read.
fn metadata(kafka: &Kafka, consumer: &Consumer, timeout: Duration) -> Step<Metadata> {
    let started = Instant::now();
    consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| kafka.describe(&e, Kafka::last_error(consumer), started.elapsed()))
}

/// Low and high watermark of one partition.
fn watermarks(
    kafka: &Kafka,
    consumer: &Consumer,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Step<(i64, i64)> {
    let started = Instant::now();
    consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|e| kafka.describe(&e, Kafka::last_error(consumer), started.elapsed()))
}

/// One partition's place in the cluster, from the metadata.
struct Layout {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// The partition's error, when the metadata reports one.
    error: Option<String>,
}

/// A topic's partitions and replica layout from `meta`, sorted by id, or why it cannot be used.
fn topic_partitions(topics: &AllowList, meta: &Metadata, topic: &str) -> Step<Vec<Layout>> {
    let Some(found) = meta.topics().iter().find(|t| t.name() == topic) else {
        let mut names: Vec<&str> = meta
            .topics()
            .iter()
            .map(|t| t.name())
            .filter(|n| topics.allowed(n) && !n.starts_with("__"))
            .collect();
        names.sort_unstable();
        let shown = names.len().min(50);
        let more = if names.len() > shown {
            format!(" and {} more", names.len() - shown)
        } else {
            String::new()
        };
        return Err(format!(
            "topic `{topic}` does not exist; topics are: {}{more}",
            if names.is_empty() {
                "(none)".to_owned()
            } else {
                names[..shown].join(", ")
            }
        ));
    };
    if let Some(err) = found.error() {
        return Err(format!(
            "kafka reports topic `{topic}` as unusable: {:?}",
            rdkafka::error::RDKafkaErrorCode::from(err)
        ));
    }
    let mut partitions: Vec<_> = found
        .partitions()
        .iter()
        .map(|p| Layout {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            error: p
                .error()
                .map(|e| format!("{:?}", rdkafka::error::RDKafkaErrorCode::from(e))),
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    Ok(partitions)
}

/// The result with `text` capped to the call's output limit.
fn finish<T: Serialize>(value: &T, text: &str, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(text, ctx.max_output_bytes);
    output::ok_json(value, text)
}

impl KafkaToolset {
    /// The time one call may spend on the cluster: the call's limit and the link's, whichever is
    /// shorter, less a margin to answer in.
    fn budget(&self, ctx: &CallContext) -> Duration {
        let limit = ctx.timeout.min(self.timeout);
        limit
            .saturating_sub(Duration::from_millis(250))
            .max(Duration::from_millis(500))
    }

    /// Refuses a topic outside the link's allow-list.
    fn check_topic(&self, topic: &str) -> Result<(), CallToolResult> {
        if topic.is_empty() {
            return Err(output::error("`topic` is empty; name a topic"));
        }
        if self.topics.allowed(topic) {
            Ok(())
        } else {
            Err(output::error(format!(
                "topic `{topic}` is outside this link, which may only use topics matching: {}",
                self.topics.patterns.join(", ")
            )))
        }
    }

    /// The most messages a call returns: what it asked for, within the link's maxRows.
    fn limit(&self, asked: Option<u32>) -> usize {
        asked.map_or(self.max_rows, |n| {
            usize::try_from(n).map_or(self.max_rows, |n| n.clamp(1, self.max_rows))
        })
    }

    pub(super) async fn list_topics(
        &self,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let p: ListTopicsParams = parse_args(args)?;
        let pattern = match &p.pattern {
            Some(glob) => Some(
                globset::Glob::new(glob)
                    .map_err(|e| output::error(format!("invalid argument `pattern`: {e}")))?
                    .compile_matcher(),
            ),
            None => None,
        };
        let consumer = self.kafka.meta().map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let meta = blocking(move || metadata(&kafka, &consumer, timeout))
            .await
            .map_err(output::error)?;
        let mut topics: Vec<TopicSummary> = meta
            .topics()
            .iter()
            .filter(|t| self.topics.allowed(t.name()))
            .filter(|t| p.include_internal || !t.name().starts_with("__"))
            .filter(|t| pattern.as_ref().is_none_or(|m| m.is_match(t.name())))
            .map(|t| TopicSummary {
                name: t.name().to_owned(),
                partitions: t.partitions().len(),
                replication_factor: t.partitions().first().map_or(0, |p| p.replicas().len()),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let total = topics.len();
        let truncated = total > self.max_rows;
        topics.truncate(self.max_rows);
        let mut text = format!("{total} topics on {}", self.kafka.bootstrap);
        if !self.topics.patterns.is_empty() {
            text.push_str(&format!(
                " (this link sees only {})",
                self.topics.patterns.join(", ")
            ));
        }
        text.push('\n');
        for t in &topics {
            text.push_str(&format!(
                "{}  partitions={} replication={}\n",
                t.name, t.partitions, t.replication_factor
            ));
        }
        if truncated {
            text.push_str(&format!(
                "truncated: {} of {total} topics shown; narrow with `pattern`\n",
                topics.len()
            ));
        }
        Ok(finish(
            &serde_json::json!({
                "bootstrap_servers": self.kafka.bootstrap,
                "total": total,
                "truncated": truncated,
                "topics": topics,
            }),
            &text,
            ctx,
        ))
    }

    pub(super) async fn describe_topic(
        &self,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let p: DescribeTopicParams = parse_args(args)?;
        self.check_topic(&p.topic)?;
        let consumer = self.kafka.meta().map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let max_rows = self.max_rows;
        let this_topic = p.topic.clone();
        let topics = self.topics.clone();
        let (partitions, total) = blocking(move || {
            let deadline = Instant::now() + timeout;
            let meta = metadata(&kafka, &consumer, timeout)?;
            let layout = topic_partitions(&topics, &meta, &this_topic)?;
            let total = layout.len();
            let mut out = Vec::new();
            for Layout {
                id,
                leader,
                replicas,
                isr,
                error,
            } in layout.into_iter().take(max_rows)
            {
                let left = deadline.saturating_duration_since(Instant::now());
                let marks = if error.is_none() && !left.is_zero() {
                    watermarks(&kafka, &consumer, &this_topic, id, left).ok()
                } else {
                    None
                };
                out.push(PartitionInfo {
                    partition: id,
                    leader,
                    replicas,
                    isr,
                    low_watermark: marks.map(|m| m.0),
                    high_watermark: marks.map(|m| m.1),
                    messages: marks.map(|m| m.1 - m.0),
                    error,
                });
            }
            Ok((out, total))
        })
        .await
        .map_err(output::error)?;
        let truncated = total > partitions.len();
        let mut text = format!("topic {}: {total} partitions\n", p.topic);
        for part in &partitions {
            let marks = match (part.low_watermark, part.high_watermark) {
                (Some(low), Some(high)) => format!("offsets {low}..{high}"),
                _ => "watermarks unavailable".to_owned(),
            };
            text.push_str(&format!(
                "partition {} leader={} replicas={:?} isr={:?} {marks}{}\n",
                part.partition,
                part.leader,
                part.replicas,
                part.isr,
                part.error
                    .as_deref()
                    .map(|e| format!(" error={e}"))
                    .unwrap_or_default()
            ));
        }
        if truncated {
            text.push_str(&format!(
                "truncated: {} of {total} partitions shown (the link's maxRows)\n",
                partitions.len()
            ));
        }
        Ok(finish(
            &serde_json::json!({
                "topic": p.topic,
                "partition_count": total,
                "truncated": truncated,
                "partitions": partitions,
            }),
            &text,
            ctx,
        ))
    }

    pub(super) async fn consumer_groups(
        &self,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let p: ConsumerGroupsParams = parse_args(args)?;
        match p.group {
            None => self.list_groups(ctx).await,
            Some(group) if group.is_empty() => {
                Err(output::error("`group` is empty; name a consumer group"))
            }
            Some(group) => self.group_offsets(group, ctx).await,
        }
    }

    async fn list_groups(&self, ctx: &CallContext) -> Result<CallToolResult, CallToolResult> {
        let consumer = self.kafka.meta().map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let mut groups = blocking(move || {
            let started = Instant::now();
            let list = consumer
                .fetch_group_list(None, timeout)
                .map_err(|e| kafka.describe(&e, Kafka::last_error(&consumer), started.elapsed()))?;
            Ok(list
                .groups()
                .iter()
                .map(|g| {
                    serde_json::json!({
                        "group": g.name(),
                        "state": g.state(),
                        "protocol_type": g.protocol_type(),
                        "members": g.members().len(),
                    })
                })
                .collect::<Vec<_>>())
        })
        .await
        .map_err(output::error)?;
        groups.sort_by(|a, b| a["group"].as_str().cmp(&b["group"].as_str()));
        let total = groups.len();
        let truncated = total > self.max_rows;
        groups.truncate(self.max_rows);
        let mut text = format!("{total} consumer groups\n");
        for g in &groups {
            text.push_str(&format!(
                "{} state={} members={}\n",
                g["group"].as_str().unwrap_or_default(),
                g["state"].as_str().unwrap_or_default(),
                g["members"]
            ));
        }
        if truncated {
            text.push_str(&format!(
                "truncated: {} of {total} groups shown; name one with `group`\n",
                groups.len()
            ));
        }
        Ok(finish(
            &serde_json::json!({"total": total, "truncated": truncated, "groups": groups}),
            &text,
            ctx,
        ))
    }

    async fn group_offsets(
        &self,
        group: String,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let meta_consumer = self.kafka.meta().map_err(output::error)?;
        let reader = self.kafka.group_reader(&group).map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let topics = self.topics.clone();
        let name = group.clone();
        let max_rows = self.max_rows;
        let (info, offsets, total) = blocking(move || {
            let deadline = Instant::now() + timeout;
            let meta = metadata(&kafka, &meta_consumer, timeout)?;
            // The group's state and members, where the cluster answers ListGroups; its
            // committed offsets below do not depend on it.
            let left = deadline.saturating_duration_since(Instant::now());
            let info = meta_consumer
                .fetch_group_list(Some(&name), left.min(Duration::from_secs(5)))
                .ok()
                .and_then(|list| {
                    list.groups().iter().find(|g| g.name() == name).map(|g| {
                        serde_json::json!({
                            "state": g.state(),
                            "protocol_type": g.protocol_type(),
                            "protocol": g.protocol(),
                            "members": g.members().iter().map(|m| serde_json::json!({
                                "member_id": m.id(),
                                "client_id": m.client_id(),
                                "client_host": m.client_host(),
                            })).collect::<Vec<_>>(),
                        })
                    })
                });
            let mut tpl = TopicPartitionList::new();
            for topic in meta.topics() {
                if topics.allowed(topic.name()) && !topic.name().starts_with("__") {
                    for part in topic.partitions() {
                        tpl.add_partition(topic.name(), part.id());
                    }
                }
            }
            let mut offsets = Vec::new();
            if tpl.count() > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                let started = Instant::now();
                let committed = reader.committed_offsets(tpl, left).map_err(|e| {
                    kafka.describe(&e, Kafka::last_error(&reader), started.elapsed())
                })?;
                for elem in committed.elements() {
                    if let Offset::Offset(committed) = elem.offset() {
                        offsets.push((elem.topic().to_owned(), elem.partition(), committed));
                    }
                }
            }
            offsets.sort();
            let total = offsets.len();
            let mut rows = Vec::new();
            for (topic, partition, committed) in offsets.into_iter().take(max_rows) {
                let left = deadline.saturating_duration_since(Instant::now());
                let high = if left.is_zero() {
                    None
                } else {
                    watermarks(&kafka, &meta_consumer, &topic, partition, left)
                        .ok()
                        .map(|m| m.1)
                };
                rows.push(serde_json::json!({
                    "topic": topic,
                    "partition": partition,
                    "committed_offset": committed,
                    "high_watermark": high,
                    "lag": high.map(|h| (h - committed).max(0)),
                }));
            }
            drop(reader);
            Ok((info, rows, total))
        })
        .await
        .map_err(output::error)?;
        if info.is_none() && offsets.is_empty() {
            return Err(output::error(format!(
                "consumer group `{group}` does not exist or has no committed offsets on topics \
                 this link may see; call kafka_consumer_groups without `group` to list groups"
            )));
        }
        let truncated = total > offsets.len();
        let total_lag: i64 = offsets.iter().filter_map(|r| r["lag"].as_i64()).sum();
        let mut text = format!("consumer group {group}");
        if let Some(info) = &info {
            text.push_str(&format!(
                ": state={} members={}",
                info["state"].as_str().unwrap_or_default(),
                info["members"].as_array().map_or(0, Vec::len)
            ));
        }
        text.push_str(&format!(
            "\n{total} partitions with committed offsets, total lag {total_lag}\n"
        ));
        for r in &offsets {
            text.push_str(&format!(
                "{}[{}] committed={} high={} lag={}\n",
                r["topic"].as_str().unwrap_or_default(),
                r["partition"],
                r["committed_offset"],
                r["high_watermark"],
                r["lag"]
            ));
        }
        if truncated {
            text.push_str(&format!(
                "truncated: {} of {total} partitions shown (the link's maxRows)\n",
                offsets.len()
            ));
        }
        Ok(finish(
            &serde_json::json!({
                "group": group,
                "info": info,
                "total_lag": total_lag,
                "partitions_with_offsets": total,
                "truncated": truncated,
                "offsets": offsets,
            }),
            &text,
            ctx,
        ))
    }

    pub(super) async fn consume(
        &self,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let p: ConsumeParams = parse_args(args)?;
        self.check_topic(&p.topic)?;
        if p.offset.is_some() && p.timestamp_ms.is_some() {
            return Err(output::error(
                "give either `offset` or `timestamp_ms`, not both",
            ));
        }
        if p.offset.is_some_and(|o| o < 0) {
            return Err(output::error(
                "invalid argument `offset`: an offset is 0 or more",
            ));
        }
        let limit = self.limit(p.max_messages);
        let meta_consumer = self.kafka.meta().map_err(output::error)?;
        let (consumer, _group) = self.kafka.peek_consumer().map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let topics = self.topics.clone();
        let topic = p.topic.clone();
        let start = match (p.offset, p.timestamp_ms) {
            (Some(o), _) => Start::Offset(o),
            (_, Some(t)) => Start::Time(t),
            _ => Start::Last,
        };
        let partition = p.partition;
        ctx.client
            .progress(
                0.0,
                None,
                format!("reading up to {limit} messages of `{topic}`"),
            )
            .await;
        let peek = blocking(move || {
            let deadline = Instant::now() + timeout;
            let meta = metadata(&kafka, &meta_consumer, timeout)?;
            let layout = topic_partitions(&topics, &meta, &topic)?;
            let mut ids: Vec<i32> = layout.iter().map(|l| l.id).collect();
            if let Some(wanted) = partition {
                if !ids.contains(&wanted) {
                    return Err(format!(
                        "topic `{topic}` has no partition {wanted}; its partitions are 0..{}",
                        ids.len().saturating_sub(1)
                    ));
                }
                ids = vec![wanted];
            }
            peek(&kafka, &consumer, &topic, &ids, start, limit, deadline)
        })
        .await
        .map_err(output::error)?;
        let read = peek.messages.len();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        ctx.client
            .progress(read as f64, None, format!("{read} messages read"))
            .await;
        Ok(self.render_peek(&p.topic, peek, limit, ctx))
    }

    fn render_peek(
        &self,
        topic: &str,
        peek: Peek,
        limit: usize,
        ctx: &CallContext,
    ) -> CallToolResult {
        let Peek {
            mut messages,
            more,
            timed_out,
        } = peek;
        let mut notes = Vec::new();
        if more {
            notes.push(format!(
                "truncated: more messages exist than the {limit} shown; narrow with \
                 `partition`, `offset` or `timestamp_ms`"
            ));
        }
        if timed_out {
            notes.push(
                "partial: the time limit ran out before every partition was read to its end"
                    .to_owned(),
            );
        }
        let cut_values = messages.iter().filter(|m| m.value_truncated).count();
        if cut_values > 0 {
            notes.push(format!(
                "truncated: {cut_values} values longer than {VALUE_BYTES} bytes are cut"
            ));
        }
        // Keep the structured list within the output cap too, dropping the last messages.
        let budget = ctx
            .max_output_bytes
            .saturating_sub(512.min(ctx.max_output_bytes / 4));
        let mut used = 0;
        let mut keep = 0;
        for m in &messages {
            used += serde_json::to_string(m).map_or(0, |s| s.len() + 1);
            if used > budget {
                break;
            }
            keep += 1;
        }
        if keep < messages.len() {
            notes.push(format!(
                "truncated: {} messages did not fit the output limit; ask for fewer with \
                 `max_messages`",
                messages.len() - keep
            ));
            messages.truncate(keep);
        }
        let mut text = format!(
            "{} messages from topic {topic} (peek: nothing committed)\n",
            messages.len()
        );
        for m in &messages {
            text.push_str(&serde_json::to_string(m).unwrap_or_default());
            text.push('\n');
        }
        for note in &notes {
            text.push_str(note);
            text.push('\n');
        }
        let truncated = more || cut_values > 0 || notes.iter().any(|n| n.starts_with("trunc"));
        finish(
            &serde_json::json!({
                "topic": topic,
                "count": messages.len(),
                "truncated": truncated,
                "timed_out": timed_out,
                "notes": notes,
                "messages": messages,
            }),
            &text,
            ctx,
        )
    }

    pub(super) async fn produce(
        &self,
        args: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallToolResult> {
        let p: ProduceParams = parse_args(args)?;
        self.check_topic(&p.topic)?;
        let consumer = self.kafka.meta().map_err(output::error)?;
        let kafka = self.kafka.clone();
        let timeout = self.budget(ctx);
        let started = Instant::now();
        let topics = self.topics.clone();
        let topic = p.topic.clone();
        let partition = p.partition;
        blocking(move || {
            let meta = metadata(&kafka, &consumer, timeout)?;
            let layout = topic_partitions(&topics, &meta, &topic)?;
            if let Some(wanted) = partition
                && !layout.iter().any(|l| l.id == wanted)
            {
                return Err(format!(
                    "topic `{topic}` has no partition {wanted}; its partitions are 0..{}",
                    layout.len().saturating_sub(1)
                ));
            }
            Ok(())
        })
        .await
        .map_err(output::error)?;
        let (producer, context) = self.kafka.producer().map_err(output::error)?;
        let mut headers = OwnedHeaders::new();
        for (key, value) in p.headers.iter().flatten() {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(&p.topic)
            .payload(p.value.as_str())
            .headers(headers);
        if let Some(key) = &p.key {
            record = record.key(key.as_str());
        }
        if let Some(partition) = p.partition {
            record = record.partition(partition);
        }
        let left = timeout.saturating_sub(started.elapsed());
        let delivery = tokio::time::timeout(left, producer.send(record, left)).await;
        let delivered = match delivery {
            Ok(Ok(delivered)) => delivered,
            Ok(Err((err, _))) => {
                return Err(output::error(self.kafka.describe(
                    &err,
                    context.last_error(),
                    started.elapsed(),
                )));
            }
            Err(_) => {
                return Err(output::error(format!(
                    "{}; the message may still be delivered once kafka answers",
                    self.kafka.describe(
                        &KafkaError::MessageProduction(
                            rdkafka::error::RDKafkaErrorCode::MessageTimedOut
                        ),
                        context.last_error(),
                        started.elapsed(),
                    )
                )));
            }
        };
        let text = format!(
            "produced to {}[{}] at offset {}",
            p.topic, delivered.partition, delivered.offset
        );
        Ok(finish(
            &serde_json::json!({
                "topic": p.topic,
                "partition": delivered.partition,
                "offset": delivered.offset,
                "value_bytes": p.value.len(),
            }),
            &text,
            ctx,
        ))
    }
}

/// Where a peek starts in each partition.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The last `limit` messages.
    Last,
    /// This offset.
    Offset(i64),
    /// The first message at or after this time (ms since the epoch).
    Time(i64),
}

/// What a peek read.
pub(super) struct Peek {
    messages: Vec<PeekedMessage>,
    /// More messages were in range than the limit.
    more: bool,
    /// The deadline passed before every partition reached its end.
    timed_out: bool,
}

/// Reads messages of `topic`'s `partitions` from `start` to the high watermark seen when the
/// peek began, at most `limit` overall. Partitions are assigned explicitly with their start
/// offsets (never subscribed), and nothing is committed or stored.
fn peek(
    kafka: &Kafka,
    consumer: &Consumer,
    topic: &str,
    partitions: &[i32],
    start: Start,
    limit: usize,
    deadline: Instant,
) -> Step<Peek> {
    let left = || deadline.saturating_duration_since(Instant::now());
    // Per partition: next offset to read and the end (exclusive) to stop at.
    let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut starts_at_time = BTreeMap::new();
    if let Start::Time(ts) = start {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(ts))
                .map_err(|e| format!("cannot look up offsets by time: {e}"))?;
        }
        let started = Instant::now();
        let found = consumer
            .offsets_for_times(tpl, left())
            .map_err(|e| kafka.describe(&e, Kafka::last_error(consumer), started.elapsed()))?;
        for elem in found.elements() {
            starts_at_time.insert(elem.partition(), elem.offset());
        }
    }
    let mut more = false;
    for &p in partitions {
        let (low, high) = watermarks(kafka, consumer, topic, p, left())?;
        let from = match start {
            Start::Last => {
                let from = (high - i64::try_from(limit).unwrap_or(i64::MAX)).max(low);
                more |= from > low;
                from
            }
            Start::Offset(o) => o.max(low),
            Start::Time(_) => match starts_at_time.get(&p) {
                Some(Offset::Offset(o)) => (*o).max(low),
                _ => high,
            },
        };
        if from < high {
            ranges.insert(p, (from, high));
        }
    }
    let mut messages = Vec::new();
    let mut timed_out = false;
    if !ranges.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for (&p, &(from, _)) in &ranges {
            tpl.add_partition_offset(topic, p, Offset::Offset(from))
                .map_err(|e| format!("cannot assign partition {p}: {e}"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka.describe(&e, Kafka::last_error(consumer), Duration::ZERO))?;
        // Per partition, stop at its end or at `limit` messages (forward reads stop overall at
        // `limit` once sorted by time, below).
        let mut pending: BTreeMap<i32, (i64, usize)> =
            ranges.iter().map(|(&p, &(_, end))| (p, (end, 0))).collect();
        while !pending.is_empty() {
            let wait = left();
            if wait.is_zero() {
                timed_out = true;
                break;
            }
            match consumer.poll(wait.min(Duration::from_millis(200))) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    pending.remove(&p);
                }
                Some(Err(e)) => {
                    return Err(kafka.describe(&e, Kafka::last_error(consumer), Duration::ZERO));
                }
                Some(Ok(msg)) => {
                    let p = msg.partition();
                    let Some((end, count)) = pending.get_mut(&p) else {
                        continue;
                    };
                    if msg.offset() >= *end {
                        pending.remove(&p);
                        continue;
                    }
                    let done = msg.offset() + 1 >= *end;
                    // A broker may answer a time lookup with an earlier offset: messages
                    // before the asked time are skipped, not shown.
                    let early = match (start, msg.timestamp().to_millis()) {
                        (Start::Time(ts), Some(at)) => at < ts,
                        _ => false,
                    };
                    if early {
                        if done {
                            pending.remove(&p);
                        }
                        continue;
                    }
                    *count += 1;
                    messages.push(to_peeked(&msg));
                    if *count >= limit {
                        more |= !done;
                        pending.remove(&p);
                    } else if done {
                        pending.remove(&p);
                    }
                }
            }
        }
        // Explicitly drop the assignment; nothing was stored, so nothing can be committed.
        let _ = consumer.unassign();
    }
    // Across partitions: the newest `limit` for a tail read, else the first `limit` in time.
    messages.sort_by_key(|m| (m.timestamp_ms.unwrap_or(0), m.partition, m.offset));
    if messages.len() > limit {
        more = true;
        if matches!(start, Start::Last) {
            messages.drain(..messages.len() - limit);
        } else {
            messages.truncate(limit);
        }
    }
    Ok(Peek {
        messages,
        more,
        timed_out,
    })
}

fn to_peeked(msg: &rdkafka::message::BorrowedMessage<'_>) -> PeekedMessage {
    let (timestamp_ms, timestamp_type) = match msg.timestamp() {
        Timestamp::NotAvailable => (None, None),
        Timestamp::CreateTime(t) => (Some(t), Some("create_time")),
        Timestamp::LogAppendTime(t) => (Some(t), Some("log_append_time")),
    };
    let (key, key_encoding) = match msg.key() {
        None => (None, None),
        Some(bytes) => {
            let (text, encoding, _) = render_bytes(bytes, VALUE_BYTES);
            (Some(text), (encoding != "utf-8").then_some(encoding))
        }
    };
    let headers = msg
        .headers()
        .map(|h| {
            h.iter()
                .map(|header| {
                    let (value, encoding) = match header.value {
                        None => (None, None),
                        Some(bytes) => {
                            let (text, encoding, _) = render_bytes(bytes, VALUE_BYTES);
                            (Some(text), (encoding != "utf-8").then_some(encoding))
                        }
                    };
                    HeaderOut {
                        key: header.key.to_owned(),
                        value,
                        encoding,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let payload = msg.payload();
    let (value, value_encoding, value_truncated) = match payload {
        None => (None, "utf-8", false),
        Some(bytes) => {
            let (text, encoding, cut) = render_bytes(bytes, VALUE_BYTES);
            (Some(text), encoding, cut)
        }
    };
    PeekedMessage {
        partition: msg.partition(),
        offset: msg.offset(),
        timestamp_ms,
        timestamp_type,
        key,
        key_encoding,
        headers,
        value,
        value_encoding,
        value_bytes: payload.map_or(0, <[u8]>::len),
        value_truncated,
    }
}
