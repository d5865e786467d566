//! The RabbitMQ tools: their typed parameters, the requests each makes, and bounded results.
//!
//! Each tool returns structured content (queues with their counts; messages with payload,
//! properties, routing key and redelivered flag) and a short text rendering of it; both stay
//! within the call's output cap and say what was cut and how to narrow the request.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::amqp::{Message, Published};
use super::management::Failure;
use super::{FIELD_BYTES, RabbitmqToolset};
use crate::{CallContext, output, parse_args};

/// A tool's answer: the result to send, or the error result to send instead.
type Outcome = Result<CallToolResult, CallToolResult>;

/// The most queues one management API page holds.
const MAX_PAGE_SIZE: usize = 500;

/// Messages a peek returns when the call does not say.
const DEFAULT_PEEK: usize = 10;

/// The largest payload `rmq_publish` sends.
const MAX_PUBLISH_BYTES: usize = 1024 * 1024;

/// Room kept in the output cap for the parts of a result that are not items.
const ENVELOPE_BYTES: usize = 1024;

/// Queue fields `rmq_list_queues` asks the management API for.
const LIST_COLUMNS: &str = "name,type,state,durable,auto_delete,exclusive,messages,\
                            messages_ready,messages_unacknowledged,consumers";

/// Queue fields `rmq_queue_stats` returns, when the broker reports them.
const STATS_FIELDS: [&str; 22] = [
    "name",
    "vhost",
    "type",
    "state",
    "node",
    "durable",
    "auto_delete",
    "exclusive",
    "arguments",
    "policy",
    "consumers",
    "consumer_utilisation",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
    "message_bytes",
    "message_bytes_ready",
    "message_bytes_unacknowledged",
    "memory",
    "idle_since",
    "head_message_timestamp",
    "single_active_consumer_tag",
];

/// Parameters of `rmq_list_queues`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQueuesParams {
    /// Only queues whose name contains this text (a regular expression with `use_regex`).
    /// Empty: every queue.
    #[serde(default)]
    name: String,
    /// Treat `name` as a regular expression, e.g. `^orders\.`.
    #[serde(default)]
    use_regex: Option<bool>,
    /// Page to return, from 1 (default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    page: Option<u32>,
    /// Queues per page (default and maximum: the link's maxRows, at most 500).
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    page_size: Option<u32>,
}

/// Parameters of `rmq_queue_stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct QueueStatsParams {
    /// The queue's exact name.
    queue: String,
}

/// Parameters of `rmq_peek_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PeekParams {
    /// The queue's exact name.
    queue: String,
    /// How many messages to look at, from the head of the queue (default 10, at most the
    /// link's maxRows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    count: Option<u32>,
}

/// Parameters of `rmq_publish`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishParams {
    /// The exchange to publish to. Empty (the default): the default exchange, which delivers
    /// to the queue named by the routing key.
    #[serde(default)]
    exchange: String,
    /// The routing key; with the default exchange, the name of the target queue.
    routing_key: String,
    /// The message body, as text.
    payload: String,
    /// MIME type of the payload, e.g. `application/json`. Empty: none.
    #[serde(default)]
    content_type: String,
    /// Application headers: names to strings, numbers or booleans.
    #[serde(default)]
    headers: Option<BTreeMap<String, Value>>,
    /// Store the message on disk in durable queues (delivery mode 2). Default false.
    #[serde(default)]
    persistent: Option<bool>,
    /// Application message id. Empty: none.
    #[serde(default)]
    message_id: String,
    /// Correlation id, e.g. of the request this message answers. Empty: none.
    #[serde(default)]
    correlation_id: String,
    /// Fail when no queue receives the message (default true). False lets the broker drop
    /// an unroutable message silently.
    #[serde(default)]
    mandatory: Option<bool>,
}

#[derive(Debug, Serialize)]
struct QueueList {
    vhost: String,
    page: u64,
    page_count: u64,
    page_size: u64,
    /// Queues in the virtual host.
    total_count: u64,
    /// Queues matching the name filter.
    filtered_count: u64,
    queues: Vec<Value>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct PeekedMessage {
    payload: String,
    /// `string`, or `base64` for a payload that is not valid UTF-8.
    payload_encoding: String,
    /// The payload's full size.
    payload_bytes: u64,
    payload_truncated: bool,
    exchange: String,
    routing_key: String,
    /// Whether the message had been delivered before this peek.
    redelivered: bool,
    properties: Value,
}

#[derive(Debug, Serialize)]
struct Peek {
    queue: String,
    vhost: String,
    messages: Vec<PeekedMessage>,
    /// The peeked messages are back in the queue, in place.
    requeued: bool,
    truncated: bool,
    note: String,
}

/// Keeps the leading items whose JSON fits in `budget` bytes, and always the first (each item
/// is already bounded by the field limit); returns how many were dropped.
fn fit<T: Serialize>(items: &mut Vec<T>, budget: usize) -> usize {
    let mut used = 0;
    let mut keep = 0;
    for item in items.iter() {
        let size = serde_json::to_string(item).map_or(0, |s| s.len()) + 1;
        if keep > 0 && used + size > budget {
            break;
        }
        used += size;
        keep += 1;
    }
    let dropped = items.len() - keep;
    items.truncate(keep);
    dropped
}

/// The result with `text` capped to the call's output limit.
fn finish<T: Serialize>(value: &T, text: &str, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(text, ctx.max_output_bytes);
    output::ok_json(value, text)
}

fn item_budget(ctx: &CallContext) -> usize {
    ctx.max_output_bytes
        .saturating_sub(ENVELOPE_BYTES.min(ctx.max_output_bytes / 4))
}

fn u64_of(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn count_text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_u64)
        .map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// An AMQP short string (at most 255 bytes) from an argument.
fn short(field: &str, value: &str) -> Result<ShortString, CallToolResult> {
    ShortString::try_new(value).map_err(|_| {
        output::error(format!(
            "invalid argument `{field}`: at most 255 bytes, {} given",
            value.len()
        ))
    })
}

fn header_value(name: &str, value: &Value) -> Result<AMQPValue, CallToolResult> {
    match value {
        Value::String(s) => Ok(AMQPValue::LongString(LongString::from(s.as_str()))),
        Value::Bool(b) => Ok(AMQPValue::Boolean(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(AMQPValue::LongLongInt(i)),
            (None, Some(f)) => Ok(AMQPValue::Double(f)),
            (None, None) => Err(output::error(format!(
                "invalid argument `headers.{name}`: {n} is not a number AMQP can carry"
            ))),
        },
        _ => Err(output::error(format!(
            "invalid argument `headers.{name}`: a header value is a string, a number or a \
             boolean"
        ))),
    }
}

impl RabbitmqToolset {
    /// A failed management request, with not-found explained for `queue`.
    async fn queue_failure(&self, failure: Failure, queue: &str) -> CallToolResult {
        match failure {
            Failure::Message(message) => output::error(message),
            Failure::NotFound => output::error(self.missing_queue(queue).await),
        }
    }

    /// Says that `queue` does not exist, naming some queues that do.
    async fn missing_queue(&self, queue: &str) -> String {
        let vhost = &self.vhost;
        let mut url = self.management.url(&["queues", vhost]);
        url.query_pairs_mut()
            .append_pair("page", "1")
            .append_pair("page_size", "20")
            .append_pair("columns", "name");
        match self.management.get(url).await {
            Ok(list) => {
                let names: Vec<&str> = list
                    .get("items")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|q| q.get("name").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                let total = u64_of(&list, "total_count");
                if names.is_empty() {
                    format!("queue `{queue}` does not exist: virtual host `{vhost}` has no queues")
                } else {
                    let more = if total > names.len() as u64 {
                        format!(
                            " (and {} more; see rmq_list_queues)",
                            total - names.len() as u64
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "queue `{queue}` does not exist in virtual host `{vhost}`; queues are: \
                         {}{more}",
                        names.join(", ")
                    )
                }
            }
            Err(Failure::NotFound) => format!(
                "virtual host `{vhost}` does not exist on this broker; check the link's vhost"
            ),
            Err(Failure::Message(message)) => {
                format!("queue `{queue}` was not found, and listing queues failed: {message}")
            }
        }
    }

    pub(super) async fn list_queues(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: ListQueuesParams = parse_args(args)?;
        let page = params.page.unwrap_or(1).max(1);
        let cap = self.max_rows.min(MAX_PAGE_SIZE);
        let page_size = params
            .page_size
            .map_or(cap, |n| usize::try_from(n).map_or(cap, |n| n.clamp(1, cap)));
        let mut url = self.management.url(&["queues", &self.vhost]);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("page", &page.to_string())
                .append_pair("page_size", &page_size.to_string())
                .append_pair("columns", LIST_COLUMNS)
                .append_pair("sort", "name");
            if !params.name.is_empty() {
                query.append_pair("name", &params.name).append_pair(
                    "use_regex",
                    if params.use_regex.unwrap_or(false) {
                        "true"
                    } else {
                        "false"
                    },
                );
            }
        }
        let list = match self.management.get(url).await {
            Ok(list) => list,
            Err(Failure::NotFound) => {
                return Err(output::error(format!(
                    "virtual host `{}` does not exist on this broker; check the link's vhost",
                    self.vhost
                )));
            }
            Err(Failure::Message(message)) if message.contains("out of range") => {
                return Err(output::error(format!(
                    "page {page} is past the last page of queues; start again at page 1 \
                     ({message})"
                )));
            }
            Err(Failure::Message(message)) if params.use_regex.unwrap_or(false) => {
                return Err(output::error(format!(
                    "{message}; check the `name` regular expression"
                )));
            }
            Err(Failure::Message(message)) => return Err(output::error(message)),
        };
        let mut queues: Vec<Value> = list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let dropped = fit(&mut queues, item_budget(ctx));
        let page_count = u64_of(&list, "page_count");
        let mut notes = Vec::new();
        if dropped > 0 {
            notes.push(format!(
                "truncated: {dropped} queues of this page did not fit the output limit; ask \
                 for a smaller page_size"
            ));
        }
        if u64::from(page) < page_count {
            notes.push(format!(
                "page {page} of {page_count}: call again with page {} for more, or filter by \
                 name",
                page + 1
            ));
        }
        let result = QueueList {
            vhost: self.vhost.clone(),
            page: u64::from(page),
            page_count,
            page_size: page_size as u64,
            total_count: u64_of(&list, "total_count"),
            filtered_count: u64_of(&list, "filtered_count"),
            queues,
            truncated: dropped > 0,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        };
        let mut text = format!(
            "{} queues in virtual host `{}` (page {} of {}, {} match of {} in total)\n",
            result.queues.len(),
            result.vhost,
            result.page,
            result.page_count.max(1),
            result.filtered_count,
            result.total_count
        );
        for queue in &result.queues {
            let _ = writeln!(
                text,
                "{}  {}  {}  messages {} (ready {}, unacked {})  consumers {}",
                queue.get("name").and_then(Value::as_str).unwrap_or("?"),
                queue.get("type").and_then(Value::as_str).unwrap_or("?"),
                queue.get("state").and_then(Value::as_str).unwrap_or("?"),
                count_text(queue, "messages"),
                count_text(queue, "messages_ready"),
                count_text(queue, "messages_unacknowledged"),
                count_text(queue, "consumers"),
            );
        }
        if let Some(note) = &result.note {
            let _ = writeln!(text, "{note}");
        }
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn queue_stats(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: QueueStatsParams = parse_args(args)?;
        let url = self.management.url(&["queues", &self.vhost, &params.queue]);
        let queue = match self.management.get(url).await {
            Ok(queue) => queue,
            Err(failure) => return Err(self.queue_failure(failure, &params.queue).await),
        };
        let mut stats = Map::new();
        for field in STATS_FIELDS {
            if let Some(value) = queue.get(field).filter(|v| !v.is_null()) {
                stats.insert(field.to_owned(), value.clone());
            }
        }
        // Counters since the queue started, with their current rate per second.
        if let Some(message_stats) = queue.get("message_stats").and_then(Value::as_object) {
            let mut counters = Map::new();
            for (name, value) in message_stats {
                if name.ends_with("_details") {
                    continue;
                }
                let rate = message_stats
                    .get(&format!("{name}_details"))
                    .and_then(|d| d.get("rate"))
                    .cloned()
                    .unwrap_or(Value::Null);
                counters.insert(name.clone(), json!({"count": value, "rate": rate}));
            }
            stats.insert("message_stats".to_owned(), Value::Object(counters));
        }
        if !stats.contains_key("messages") {
            stats.insert(
                "note".to_owned(),
                Value::from(
                    "the broker has not sampled this queue's statistics yet (it does every few \
                     seconds); call again shortly for message counts",
                ),
            );
        }
        let stats = Value::Object(stats);
        let mut text = format!(
            "queue `{}` ({}, {}): messages {} (ready {}, unacked {}), consumers {}, {} bytes \
             of messages, {} bytes of memory\n",
            params.queue,
            stats.get("type").and_then(Value::as_str).unwrap_or("?"),
            stats.get("state").and_then(Value::as_str).unwrap_or("?"),
            count_text(&stats, "messages"),
            count_text(&stats, "messages_ready"),
            count_text(&stats, "messages_unacknowledged"),
            count_text(&stats, "consumers"),
            count_text(&stats, "message_bytes"),
            count_text(&stats, "memory"),
        );
        if let Some(note) = stats.get("note").and_then(Value::as_str) {
            let _ = writeln!(text, "{note}");
        }
        if let Some(counters) = stats.get("message_stats").and_then(Value::as_object) {
            for (name, counter) in counters {
                let _ = writeln!(
                    text,
                    "{name}: {} ({}/s)",
                    counter.get("count").unwrap_or(&Value::Null),
                    counter.get("rate").unwrap_or(&Value::Null)
                );
            }
        }
        Ok(finish(&stats, &text, ctx))
    }

    pub(super) async fn peek_messages(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: PeekParams = parse_args(args)?;
        let count = params.count.map_or(DEFAULT_PEEK.min(self.max_rows), |n| {
            usize::try_from(n).map_or(self.max_rows, |n| n.clamp(1, self.max_rows))
        });
        let url = self
            .management
            .url(&["queues", &self.vhost, &params.queue, "get"]);
        let body = json!({
            "count": count,
            "ackmode": "ack_requeue_true",
            "encoding": "auto",
            "truncate": FIELD_BYTES,
        });
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let total = Some(count as f64);
        ctx.client
            .progress(0.0, total, format!("peeking up to {count} messages"))
            .await;
        let reply = match self.management.post(url, &body).await {
            Ok(reply) => reply,
            Err(failure) => return Err(self.queue_failure(failure, &params.queue).await),
        };
        let mut messages: Vec<PeekedMessage> = reply
            .as_array()
            .map(|list| list.iter().map(peeked).collect())
            .unwrap_or_default();
        let peeked_count = messages.len();
        #[allow(clippy::cast_precision_loss)]
        ctx.client
            .progress(
                peeked_count as f64,
                total,
                format!("{peeked_count} messages peeked"),
            )
            .await;
        let dropped = fit(&mut messages, item_budget(ctx));
        let cut_payloads = messages.iter().filter(|m| m.payload_truncated).count();
        let mut note = if peeked_count == 0 {
            format!("queue `{}` has no ready messages", params.queue)
        } else {
            format!(
                "peeked {peeked_count} messages; they were requeued in place and are now \
                 marked redelivered (their consumers will see redelivered=true)"
            )
        };
        if cut_payloads > 0 {
            let _ = write!(
                note,
                "; truncated: {cut_payloads} payloads longer than {FIELD_BYTES} bytes are cut"
            );
        }
        if dropped > 0 {
            let _ = write!(
                note,
                "; truncated: {dropped} messages did not fit the output limit, ask for a \
                 smaller count"
            );
        }
        let result = Peek {
            queue: params.queue,
            vhost: self.vhost.clone(),
            messages,
            requeued: true,
            truncated: cut_payloads > 0 || dropped > 0,
            note,
        };
        let mut text = format!("{}\n", result.note);
        for (i, message) in result.messages.iter().enumerate() {
            let _ = writeln!(
                text,
                "#{} exchange `{}` routing key `{}` redelivered {} ({} bytes{})\n{}",
                i + 1,
                message.exchange,
                message.routing_key,
                message.redelivered,
                message.payload_bytes,
                if message.payload_encoding == "base64" {
                    ", base64"
                } else {
                    ""
                },
                message.payload
            );
        }
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn publish(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: PublishParams = parse_args(args)?;
        if params.payload.len() > MAX_PUBLISH_BYTES {
            return Err(output::error(format!(
                "invalid argument `payload`: at most {MAX_PUBLISH_BYTES} bytes, {} given",
                params.payload.len()
            )));
        }
        let exchange = params.exchange.clone();
        let mut properties = BasicProperties::default();
        if !params.content_type.is_empty() {
            properties = properties.with_content_type(short("content_type", &params.content_type)?);
        }
        if !params.message_id.is_empty() {
            properties = properties.with_message_id(short("message_id", &params.message_id)?);
        }
        if !params.correlation_id.is_empty() {
            properties =
                properties.with_correlation_id(short("correlation_id", &params.correlation_id)?);
        }
        if params.persistent.unwrap_or(false) {
            properties = properties.with_delivery_mode(2);
        }
        if let Some(headers) = &params.headers {
            let mut table = FieldTable::default();
            for (name, value) in headers {
                table.insert(short("headers", name)?, header_value(name, value)?);
            }
            properties = properties.with_headers(table);
        }
        let published = self
            .publisher
            .publish(Message {
                exchange: short("exchange", &exchange)?,
                routing_key: short("routing_key", &params.routing_key)?,
                payload: params.payload.as_bytes(),
                properties,
                mandatory: params.mandatory.unwrap_or(true),
            })
            .await
            .map_err(output::error)?;
        let shown_exchange = if exchange.is_empty() {
            "the default exchange".to_owned()
        } else {
            format!("exchange `{exchange}`")
        };
        match published {
            Published::Confirmed => {}
            Published::Unroutable { reply } => {
                return Err(output::error(format!(
                    "no queue received the message: {shown_exchange} has no binding for \
                     routing key `{}` ({reply}), so the broker returned it; check the routing \
                     key (with the default exchange it is the queue name; see \
                     rmq_list_queues)",
                    params.routing_key
                )));
            }
            Published::Refused => {
                return Err(output::error(format!(
                    "the broker refused the message published to {shown_exchange} (nack); \
                     check the queue's limits and the broker's alarms with rmq_queue_stats"
                )));
            }
        }
        #[derive(Serialize)]
        struct PublishResult<'a> {
            exchange: &'a str,
            routing_key: &'a str,
            bytes: usize,
            confirmed: bool,
        }
        let result = PublishResult {
            exchange: &exchange,
            routing_key: &params.routing_key,
            bytes: params.payload.len(),
            confirmed: true,
        };
        let text = format!(
            "published {} bytes to {shown_exchange} with routing key `{}`; the broker \
             confirmed it",
            params.payload.len(),
            params.routing_key
        );
        Ok(finish(&result, &text, ctx))
    }
}

/// A message from the management API's `get` reply.
fn peeked(message: &Value) -> PeekedMessage {
    let text = |field: &str| {
        message
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let payload_bytes = u64_of(message, "payload_bytes");
    PeekedMessage {
        payload: text("payload"),
        payload_encoding: text("payload_encoding"),
        payload_bytes,
        payload_truncated: payload_bytes > FIELD_BYTES as u64,
        exchange: text("exchange"),
        routing_key: text("routing_key"),
        redelivered: message
            .get("redelivered")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        properties: message
            .get("properties")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    }
}
