//! The rabbitmq toolset against the RabbitMQ broker on 127.0.0.1 (AMQP 5672, management API
//! 15672, user guest/guest), which CI starts. Each test declares its own queues, with names
//! unique per run, and deletes them at the end.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use linkmcp_api::McpLinkSpec;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::json;

use crate::compliance::{self, result_text};
use crate::credentials::Credentials;
use crate::link::{self, BuildError, LinkContext};
use crate::{Access, CallContext, Toolset};

/// A queue name no other test or run uses.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("linkmcp-test-{}-{nanos}-{name}", std::process::id())
}

fn spec(rabbitmq: serde_json::Value, write: bool, max_rows: Option<i32>) -> McpLinkSpec {
    let mut spec = json!({
        "serverRef": {"name": "main"},
        "rabbitmq": rabbitmq,
        "writeAccess": write,
    });
    if let Some(n) = max_rows {
        spec["limits"] = json!({"maxRows": n});
    }
    serde_json::from_value(spec).unwrap()
}

fn local() -> serde_json::Value {
    json!({"host": "127.0.0.1"})
}

/// The link's served toolset, through the same dispatch and governance as the server uses.
fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec,
        credentials,
    };
    link::build(&ctx, "rmq").unwrap()
}

fn args(value: serde_json::Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

async fn call(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> CallToolResult {
    toolset
        .call(tool, args(value), &CallContext::new("test"))
        .await
}

async fn ok(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> serde_json::Value {
    let result = call(toolset, tool, value).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool} failed: {}",
        result_text(&result)
    );
    result.structured_content.unwrap()
}

async fn fails(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> String {
    let result = call(toolset, tool, value).await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{tool} succeeded: {text}");
    text
}

/// A plain AMQP client for setting up queues and checking their depth behind the tools' back.
struct Broker {
    _connection: Connection,
    channel: Channel,
    queues: Vec<String>,
}

impl Broker {
    async fn connect() -> Self {
        let connection = Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            _connection: connection,
            channel,
            queues: Vec::new(),
        }
    }

    /// Declares a queue the broker deletes by itself two minutes after its last use, in case
    /// the test fails before [`Broker::clean`].
    async fn declare(&mut self, queue: &str) {
        let mut arguments = FieldTable::default();
        arguments.insert("x-expires".into(), AMQPValue::LongInt(120_000));
        self.channel
            .queue_declare(queue.into(), QueueDeclareOptions::default(), arguments)
            .await
            .unwrap();
        self.queues.push(queue.to_owned());
    }

    async fn publish(&self, queue: &str, payload: &[u8], properties: BasicProperties) {
        self.channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The exact number of messages in `queue` (a passive declare).
    async fn depth(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    async fn clean(&self) {
        for queue in &self.queues {
            self.channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_passes_the_compliance_harness() {
    let spec = spec(local(), true, None);
    let credentials = Credentials::default();
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &credentials,
    };
    let toolset = super::toolset(&ctx, spec.rabbitmq.as_ref().unwrap()).unwrap();
    compliance::check_annotations(toolset.as_ref());
    compliance::check_write_gating(toolset.clone(), "rmq").await;
    compliance::check_bad_arguments(toolset.as_ref()).await;
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "rmq_list_queues",
            "rmq_queue_stats",
            "rmq_peek_messages",
            "rmq_publish"
        ]
    );
    assert!(
        names
            .iter()
            .all(|n| !n.contains("purge") && !n.contains("delete"))
    );
    let writes: Vec<&str> = toolset
        .tools()
        .iter()
        .filter(|d| d.access() == Access::Write)
        .map(|d| d.name())
        .collect();
    assert_eq!(writes, ["rmq_publish"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queues_paginates_and_filters() {
    let stem = unique("page");
    let mut broker = Broker::connect().await;
    for i in 0..5 {
        broker.declare(&format!("{stem}-{i}")).await;
    }
    let spec = spec(local(), false, None);
    let rmq = served(&spec, &Credentials::default());
    let r = rmq.as_ref();

    let first = ok(r, "rmq_list_queues", json!({"name": stem, "page_size": 2})).await;
    assert_eq!(first["filtered_count"], 5);
    assert_eq!(first["page_count"], 3);
    let names: Vec<&str> = first["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("{stem}-0"), format!("{stem}-1")]);
    assert!(
        first["note"].as_str().unwrap().contains("page 2"),
        "{first}"
    );
    let last = ok(
        r,
        "rmq_list_queues",
        json!({"name": stem, "page_size": 2, "page": 3}),
    )
    .await;
    assert_eq!(last["queues"][0]["name"], format!("{stem}-4"));
    assert_eq!(last["queues"][0]["type"], "classic");
    let past = fails(
        r,
        "rmq_list_queues",
        json!({"name": stem, "page_size": 2, "page": 4}),
    )
    .await;
    assert!(past.contains("past the last page"), "{past}");
    let regex = ok(
        r,
        "rmq_list_queues",
        json!({"name": format!("^{stem}-[34]$"), "use_regex": true}),
    )
    .await;
    assert_eq!(regex["filtered_count"], 2);

    // The link's maxRows bounds a page whatever the call asks.
    let capped_spec = self::spec(local(), false, Some(3));
    let capped = served(&capped_spec, &Credentials::default());
    let page = ok(
        capped.as_ref(),
        "rmq_list_queues",
        json!({"name": stem, "page_size": 500}),
    )
    .await;
    assert_eq!(page["queues"].as_array().unwrap().len(), 3);
    assert_eq!(page["page_size"], 3);

    broker.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_stats_describe_a_queue_and_name_the_existing_ones() {
    let queue = unique("stats");
    let mut broker = Broker::connect().await;
    broker.declare(&queue).await;
    broker
        .publish(&queue, b"one", BasicProperties::default())
        .await;
    let spec = spec(local(), false, None);
    let rmq = served(&spec, &Credentials::default());

    // The broker samples queue statistics every few seconds: until the first sample the
    // counts are missing and the result says to call again; a sample may still predate the
    // publish.
    let mut stats = json!(null);
    for _ in 0..60 {
        stats = ok(rmq.as_ref(), "rmq_queue_stats", json!({"queue": queue})).await;
        if stats.get("messages").is_none() {
            let note = stats["note"].as_str().unwrap_or_default();
            assert!(note.contains("call again shortly"), "{stats}");
        } else if stats["messages"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(stats["name"], queue.as_str());
    assert_eq!(stats["vhost"], "/");
    assert_eq!(stats["type"], "classic");
    assert_eq!(stats["durable"], false);
    assert_eq!(stats["messages"], 1, "{stats}");
    assert_eq!(stats["messages_ready"], 1);
    assert_eq!(stats["consumers"], 0);
    assert_eq!(stats["message_stats"]["publish"]["count"], 1, "{stats}");

    let missing = fails(
        rmq.as_ref(),
        "rmq_queue_stats",
        json!({"queue": format!("{queue}-missing")}),
    )
    .await;
    assert!(
        missing.contains("does not exist in virtual host `/`; queues are: "),
        "{missing}"
    );

    broker.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_leaves_messages_in_the_queue_marked_redelivered() {
    let queue = unique("peek");
    let mut broker = Broker::connect().await;
    broker.declare(&queue).await;
    for i in 0..3 {
        broker
            .publish(
                &queue,
                format!("message {i}").as_bytes(),
                BasicProperties::default().with_content_type("text/plain".into()),
            )
            .await;
    }
    let spec = spec(local(), false, None);
    let rmq = served(&spec, &Credentials::default());
    assert_eq!(broker.depth(&queue).await, 3);

    let first = ok(
        rmq.as_ref(),
        "rmq_peek_messages",
        json!({"queue": queue, "count": 2}),
    )
    .await;
    assert_eq!(broker.depth(&queue).await, 3, "a peek consumes nothing");
    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["payload"], "message 0");
    assert_eq!(messages[1]["payload"], "message 1");
    assert_eq!(messages[0]["routing_key"], queue.as_str());
    assert_eq!(messages[0]["properties"]["content_type"], "text/plain");
    assert_eq!(first["requeued"], true);
    assert!(
        first["note"]
            .as_str()
            .unwrap()
            .contains("requeued in place and are now marked redelivered"),
        "{first}"
    );

    // The same messages, in place and now redelivered.
    let second = ok(
        rmq.as_ref(),
        "rmq_peek_messages",
        json!({"queue": queue, "count": 3}),
    )
    .await;
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["payload"], "message 0");
    assert_eq!(messages[0]["redelivered"], true);
    assert_eq!(messages[1]["redelivered"], true);
    assert_eq!(broker.depth(&queue).await, 3);

    let missing = fails(
        rmq.as_ref(),
        "rmq_peek_messages",
        json!({"queue": format!("{queue}-missing")}),
    )
    .await;
    assert!(missing.contains("does not exist"), "{missing}");

    broker.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_peek_the_same_message() {
    let queue = unique("publish");
    let mut broker = Broker::connect().await;
    broker.declare(&queue).await;
    let spec = spec(local(), true, None);
    let rmq = served(&spec, &Credentials::default());
    let r = rmq.as_ref();

    let published = ok(
        r,
        "rmq_publish",
        json!({
            "routing_key": queue,
            "payload": "{\"order\": 42}",
            "content_type": "application/json",
            "message_id": "m-42",
            "persistent": true,
            "headers": {"source": "test", "attempt": 2, "urgent": true},
        }),
    )
    .await;
    assert_eq!(published["confirmed"], true);
    assert_eq!(broker.depth(&queue).await, 1);

    let peek = ok(r, "rmq_peek_messages", json!({"queue": queue})).await;
    let message = &peek["messages"][0];
    assert_eq!(message["payload"], "{\"order\": 42}");
    assert_eq!(message["routing_key"], queue.as_str());
    assert_eq!(message["exchange"], "");
    let properties = &message["properties"];
    assert_eq!(properties["content_type"], "application/json");
    assert_eq!(properties["message_id"], "m-42");
    assert_eq!(properties["delivery_mode"], 2);
    assert_eq!(
        properties["headers"],
        json!({"source": "test", "attempt": 2, "urgent": true})
    );

    // A message no queue receives is reported, and so is a missing exchange; the connection
    // is usable again afterwards.
    let unroutable = fails(
        r,
        "rmq_publish",
        json!({"routing_key": format!("{queue}-nobody"), "payload": "x"}),
    )
    .await;
    assert!(
        unroutable.contains("no queue received the message"),
        "{unroutable}"
    );
    let no_exchange = fails(
        r,
        "rmq_publish",
        json!({"exchange": format!("{queue}-no-such-exchange"), "routing_key": queue, "payload": "x"}),
    )
    .await;
    assert!(no_exchange.contains("NOT_FOUND"), "{no_exchange}");
    ok(
        r,
        "rmq_publish",
        json!({"routing_key": queue, "payload": "again"}),
    )
    .await;
    assert_eq!(broker.depth(&queue).await, 2);

    broker.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payloads_and_outputs_are_truncated() {
    let queue = unique("large");
    let mut broker = Broker::connect().await;
    broker.declare(&queue).await;
    broker
        .publish(
            &queue,
            "x".repeat(10_000).as_bytes(),
            BasicProperties::default(),
        )
        .await;
    let mut headers = FieldTable::default();
    headers.insert("h".into(), AMQPValue::LongString(LongString::from("v")));
    broker
        .publish(
            &queue,
            &[0xff, 0xfe, 0x00, 0x01],
            BasicProperties::default().with_headers(headers),
        )
        .await;
    let spec = spec(local(), false, None);
    let rmq = served(&spec, &Credentials::default());

    let peek = ok(rmq.as_ref(), "rmq_peek_messages", json!({"queue": queue})).await;
    let big = &peek["messages"][0];
    assert_eq!(big["payload_bytes"], 10_000);
    assert_eq!(big["payload_truncated"], true);
    assert!(big["payload"].as_str().unwrap().len() <= super::FIELD_BYTES);
    assert_eq!(peek["truncated"], true);
    assert!(peek["note"].as_str().unwrap().contains("are cut"), "{peek}");
    let binary = &peek["messages"][1];
    assert_eq!(binary["payload_encoding"], "base64");
    assert_eq!(binary["payload"], "//4AAQ==");

    compliance::check_output_capped(
        rmq.as_ref(),
        "rmq_peek_messages",
        args(json!({"queue": queue})),
        1024,
    )
    .await;
    assert_eq!(broker.depth(&queue).await, 2);

    broker.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_listed_and_explained() {
    let spec = spec(
        json!({"host": "127.0.0.1", "port": 1, "managementUrl": "http://127.0.0.1:1"}),
        true,
        None,
    );
    let rmq = served(&spec, &Credentials::default());
    assert_eq!(
        rmq.tools().len(),
        4,
        "tools are listed without a connection"
    );
    let list = fails(rmq.as_ref(), "rmq_list_queues", json!({})).await;
    assert!(
        list.starts_with("cannot reach the RabbitMQ management API at http://127.0.0.1:1/: ")
            && list.contains("NetworkPolicy"),
        "{list}"
    );
    let peek = fails(rmq.as_ref(), "rmq_peek_messages", json!({"queue": "q"})).await;
    assert!(
        peek.starts_with("cannot reach the RabbitMQ management API"),
        "{peek}"
    );
    let publish = fails(
        rmq.as_ref(),
        "rmq_publish",
        json!({"routing_key": "q", "payload": "x"}),
    )
    .await;
    assert!(
        publish.starts_with("cannot reach rabbitmq at 127.0.0.1:1: ")
            && publish.ends_with("check host, port and NetworkPolicy"),
        "{publish}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqps_link_explains_a_failed_handshake() {
    // The broker's 5672 speaks plain AMQP, so a TLS connection to it cannot be set up.
    let spec = spec(json!({"host": "127.0.0.1", "tls": true}), true, None);
    let rmq = served(&spec, &Credentials::default());
    let message = fails(
        rmq.as_ref(),
        "rmq_publish",
        json!({"routing_key": "q", "payload": "x"}),
    )
    .await;
    assert!(message.contains("rabbitmq at 127.0.0.1:5672"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_named_and_never_shown() {
    let credentials = Credentials::new(BTreeMap::from([
        ("username".to_owned(), "guest".to_owned()),
        ("password".to_owned(), "wr0ng-Pa55-for-rabbitmq".to_owned()),
    ]));
    let spec = spec(local(), true, None);
    let rmq = served(&spec, &credentials);
    let mut results = Vec::new();
    for (tool, call_args) in [
        ("rmq_list_queues", json!({})),
        ("rmq_queue_stats", json!({"queue": "q"})),
        ("rmq_peek_messages", json!({"queue": "q"})),
        ("rmq_publish", json!({"routing_key": "q", "payload": "x"})),
    ] {
        let result = call(rmq.as_ref(), tool, call_args).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(
            text.contains("refused the credentials of link shop/events"),
            "{tool}: {text}"
        );
        results.push(result);
    }
    compliance::check_no_secrets(&results, &credentials);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_and_queue_names_are_url_encoded() {
    let spec = spec(
        json!({"host": "rabbit.mq", "vhost": "/", "managementUrl": "https://rabbit.mq/admin/"}),
        false,
        None,
    );
    let credentials = Credentials::default();
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &credentials,
    };
    let block = spec.rabbitmq.as_ref().unwrap();
    let management = super::management::Management::new(
        block,
        Arc::new(super::LinkInfo::new(&ctx)),
        crate::link::DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(
        management
            .url(&["queues", "/", "orders/eu", "get"])
            .as_str(),
        "https://rabbit.mq/admin/api/queues/%2F/orders%2Feu/get"
    );
    let default_spec = self::spec(json!({"host": "rabbit.mq"}), false, None);
    let default_url = super::management::shown_url(default_spec.rabbitmq.as_ref().unwrap());
    assert_eq!(default_url.as_deref(), Some("http://rabbit.mq:15672/"));
}

#[test]
fn a_management_url_with_a_password_is_refused_without_echoing_it() {
    let spec = spec(
        json!({"host": "rabbit.mq", "managementUrl": "http://admin:pa55word-in-url@rabbit.mq:15672"}),
        false,
        None,
    );
    let credentials = Credentials::default();
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &credentials,
    };
    let err = match link::build(&ctx, "rmq") {
        Err(BuildError::Invalid(message)) => message,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a managementUrl with credentials was accepted"),
    };
    assert!(err.contains("must not carry credentials"), "{err}");
    assert!(!err.contains("pa55word"), "{err}");
    assert!(!super::component(&ctx).endpoint["managementUrl"].contains("pa55word"));
}

#[test]
fn the_component_shows_where_not_how_to_log_in() {
    let spec = spec(json!({"host": "rabbit.mq", "vhost": "orders"}), false, None);
    let credentials = Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        "hunter2-rabbit".to_owned(),
    )]));
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &credentials,
    };
    let component = super::component(&ctx);
    assert_eq!(component.link_type, "rabbitmq");
    assert_eq!(component.kind, "queue");
    assert_eq!(component.endpoint["host"], "rabbit.mq");
    assert_eq!(component.endpoint["port"], "5672");
    assert_eq!(component.endpoint["vhost"], "orders");
    assert_eq!(
        component.endpoint["managementUrl"],
        "http://rabbit.mq:15672/"
    );
    assert!(
        !serde_json::to_string(&component)
            .unwrap()
            .contains("hunter2")
    );
}
