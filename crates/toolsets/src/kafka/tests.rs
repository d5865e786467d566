//! The kafka toolset against librdkafka's in-process mock cluster (each test its own cluster),
//! and, in the `kafka_real_` tests that `make test-integration` runs, against a real
//! Kafka-compatible broker (Tansu) at `LINKMCP_KAFKA_BROKER`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use linkmcp_api::McpLinkSpec;
use rdkafka::ClientConfig;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{Value, json};

use super::VALUE_BYTES;
use crate::compliance::{self, result_text};
use crate::credentials::Credentials;
use crate::link::{self, LinkContext};
use crate::{Access, CallContext, Toolset};

const SECRET: &str = "hunter2-kafka-secret-pw";

fn spec(kafka: Value, write: bool, max_rows: Option<i32>) -> McpLinkSpec {
    let mut spec = json!({
        "serverRef": {"name": "main"},
        "kafka": kafka,
        "writeAccess": write,
    });
    if let Some(n) = max_rows {
        spec["limits"] = json!({"maxRows": n});
    }
    serde_json::from_value(spec).unwrap()
}

fn block(bootstrap: &str, topics: &[&str]) -> Value {
    let mut block = json!({"bootstrapServers": [bootstrap]});
    if !topics.is_empty() {
        block["topics"] = json!(topics);
    }
    block
}

/// The link's served toolset, through the same dispatch and governance as the server uses.
fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec,
        credentials,
    };
    link::build(&ctx, "kafka").unwrap()
}

/// The backend toolset itself (all tools, no governance), for the compliance harness.
fn backend(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec,
        credentials,
    };
    super::toolset(&ctx, spec.kafka.as_ref().unwrap()).unwrap()
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

fn ctx() -> CallContext {
    CallContext::new("test").with_timeout(Duration::from_secs(10))
}

async fn call(toolset: &dyn Toolset, tool: &str, value: Value) -> CallToolResult {
    toolset.call(tool, args(value), &ctx()).await
}

/// A call that must succeed; returns its structured content.
async fn ok(toolset: &dyn Toolset, tool: &str, value: Value) -> Value {
    let result = call(toolset, tool, value).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool} failed: {}",
        result_text(&result)
    );
    result.structured_content.unwrap()
}

/// A call that must fail; returns its message.
async fn fails(toolset: &dyn Toolset, tool: &str, value: Value) -> String {
    let result = call(toolset, tool, value).await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{tool} succeeded: {text}");
    text
}

fn mock(topics: &[(&str, i32)]) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    for (topic, partitions) in topics {
        cluster.create_topic(topic, *partitions, 1).unwrap();
    }
    cluster
}

/// Offsets of the messages in a consume result.
fn offsets(result: &Value) -> Vec<(i64, i64)> {
    result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["partition"].as_i64().unwrap(),
                m["offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A test's own consumer in `group`, committing and reading offsets behind the tools' back.
fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> Vec<Offset> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range(topic, 0, partitions - 1);
    let found = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(|p| found.find_partition(topic, p).unwrap().offset())
        .collect()
}

/// Produces `n` messages to `topic`'s partition 0 through the tool.
async fn produce_n(toolset: &dyn Toolset, topic: &str, n: usize) {
    for i in 0..n {
        let r = ok(
            toolset,
            "kafka_produce",
            json!({
                "topic": topic,
                "partition": 0,
                "key": format!("k{i}"),
                "value": format!("{{\"n\":{i}}}"),
                "headers": {"trace": format!("t{i}")},
            }),
        )
        .await;
        assert_eq!(r["partition"], 0);
        assert_eq!(r["offset"].as_i64().unwrap(), i64::try_from(i).unwrap());
    }
}

#[tokio::test]
async fn lists_and_describes_topics() {
    let cluster = mock(&[("orders", 3), ("payments", 1)]);
    let spec = spec(block(&cluster.bootstrap_servers(), &[]), true, None);
    let kafka = served(&spec, &Credentials::default());

    let listed = ok(kafka.as_ref(), "kafka_list_topics", json!({})).await;
    let names: Vec<&str> = listed["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "payments"]);
    assert_eq!(listed["topics"][0]["partitions"], 3);
    assert_eq!(listed["topics"][0]["replication_factor"], 1);
    let only = ok(
        kafka.as_ref(),
        "kafka_list_topics",
        json!({"pattern": "pay*"}),
    )
    .await;
    assert_eq!(only["total"], 1);

    produce_n(kafka.as_ref(), "orders", 2).await;
    let described = ok(
        kafka.as_ref(),
        "kafka_describe_topic",
        json!({"topic": "orders"}),
    )
    .await;
    assert_eq!(described["partition_count"], 3);
    let parts = described["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0]["partition"], 0);
    assert_eq!(parts[0]["low_watermark"], 0);
    assert_eq!(parts[0]["high_watermark"], 2);
    assert_eq!(parts[0]["messages"], 2);
    assert_eq!(parts[1]["high_watermark"], 0);
    assert!(parts[0]["leader"].as_i64().unwrap() >= 0);
    assert_eq!(parts[0]["replicas"].as_array().unwrap().len(), 1);
    assert_eq!(parts[0]["isr"].as_array().unwrap().len(), 1);

    let msg = fails(
        kafka.as_ref(),
        "kafka_describe_topic",
        json!({"topic": "ordrs"}),
    )
    .await;
    assert!(
        msg.contains("topic `ordrs` does not exist; topics are: orders, payments"),
        "{msg}"
    );
}

#[tokio::test]
async fn produce_then_peek_returns_the_same_messages_every_time() {
    let cluster = mock(&[("orders", 2)]);
    let spec = spec(block(&cluster.bootstrap_servers(), &[]), true, None);
    let kafka = served(&spec, &Credentials::default());
    produce_n(kafka.as_ref(), "orders", 5).await;

    let first = ok(kafka.as_ref(), "kafka_consume", json!({"topic": "orders"})).await;
    assert_eq!(first["count"], 5);
    assert_eq!(first["truncated"], false);
    assert_eq!(offsets(&first), [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]);
    let m = &first["messages"][3];
    assert_eq!(m["key"], "k3");
    assert_eq!(m["value"], "{\"n\":3}");
    assert_eq!(m["value_encoding"], "utf-8");
    assert_eq!(m["headers"], json!([{"key": "trace", "value": "t3"}]));
    assert!(m["timestamp_ms"].as_i64().unwrap() > 1_600_000_000_000);

    // Nothing was committed or moved: the same peek returns the same messages.
    let second = ok(kafka.as_ref(), "kafka_consume", json!({"topic": "orders"})).await;
    assert_eq!(first["messages"], second["messages"]);

    // The last two; from an offset; from a time after every message.
    let last = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "max_messages": 2}),
    )
    .await;
    assert_eq!(offsets(&last), [(0, 3), (0, 4)]);
    assert_eq!(last["truncated"], true);
    let from = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "partition": 0, "offset": 1, "max_messages": 2}),
    )
    .await;
    assert_eq!(offsets(&from), [(0, 1), (0, 2)]);
    let empty = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "partition": 1}),
    )
    .await;
    assert_eq!(empty["count"], 0);
}

#[tokio::test]
async fn peeking_and_reading_a_group_leave_its_offsets_untouched() {
    let cluster = mock(&[("orders", 2)]);
    let bootstrap = cluster.bootstrap_servers();
    let spec = spec(block(&bootstrap, &[]), true, None);
    let kafka = served(&spec, &Credentials::default());
    produce_n(kafka.as_ref(), "orders", 5).await;

    // A real group with committed offsets: 3 on partition 0, 0 on partition 1.
    let billing = group_consumer(&bootstrap, "billing");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Offset(3))
        .unwrap();
    tpl.add_partition_offset("orders", 1, Offset::Offset(0))
        .unwrap();
    billing.commit(&tpl, CommitMode::Sync).unwrap();
    let before = committed(&billing, "orders", 2);
    assert_eq!(before, [Offset::Offset(3), Offset::Offset(0)]);

    ok(kafka.as_ref(), "kafka_consume", json!({"topic": "orders"})).await;
    ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "partition": 0, "offset": 0}),
    )
    .await;
    let group = ok(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": "billing"}),
    )
    .await;
    assert_eq!(group["total_lag"], 2);
    assert_eq!(
        group["offsets"],
        json!([
            {"topic": "orders", "partition": 0, "committed_offset": 3, "high_watermark": 5, "lag": 2},
            {"topic": "orders", "partition": 1, "committed_offset": 0, "high_watermark": 0, "lag": 0},
        ])
    );

    // The group's offsets are what the test committed, read by a fresh consumer.
    let check = group_consumer(&bootstrap, "billing");
    assert_eq!(committed(&check, "orders", 2), before);

    let msg = fails(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": "nobody"}),
    )
    .await;
    assert!(
        msg.contains("consumer group `nobody` does not exist"),
        "{msg}"
    );
}

#[tokio::test]
async fn the_topic_allow_list_confines_every_tool() {
    let cluster = mock(&[("orders", 1), ("orders-dlq", 1), ("payments", 1)]);
    let bootstrap = cluster.bootstrap_servers();
    let spec = spec(block(&bootstrap, &["orders*"]), true, None);
    let kafka = served(&spec, &Credentials::default());
    for tool in kafka.tools() {
        assert!(
            tool.tool()
                .description
                .as_deref()
                .unwrap()
                .contains("orders*"),
            "{}",
            tool.name()
        );
    }

    let listed = ok(kafka.as_ref(), "kafka_list_topics", json!({})).await;
    assert_eq!(listed["total"], 2);
    let all_names = listed.to_string();
    assert!(!all_names.contains("payments"), "{all_names}");

    for (tool, args) in [
        ("kafka_describe_topic", json!({"topic": "payments"})),
        ("kafka_consume", json!({"topic": "payments"})),
        ("kafka_produce", json!({"topic": "payments", "value": "x"})),
    ] {
        let msg = fails(kafka.as_ref(), tool, args).await;
        assert!(
            msg.contains("topic `payments` is outside this link") && msg.contains("orders*"),
            "{tool}: {msg}"
        );
    }
    // A missing allowed topic lists only the topics the link may see.
    let msg = fails(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "orders-x"}),
    )
    .await;
    assert!(
        msg.contains("does not exist; topics are: orders, orders-dlq"),
        "{msg}"
    );

    // Committed offsets of a group on a topic outside the link are not shown.
    let billing = group_consumer(&bootstrap, "billing");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("payments", 0, Offset::Offset(0))
        .unwrap();
    billing.commit(&tpl, CommitMode::Sync).unwrap();
    let msg = fails(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": "billing"}),
    )
    .await;
    assert!(msg.contains("no committed offsets on topics"), "{msg}");
}

#[tokio::test]
async fn values_are_truncated_and_binary_is_base64() {
    let cluster = mock(&[("blobs", 1)]);
    let bootstrap = cluster.bootstrap_servers();
    let spec = spec(block(&bootstrap, &[]), true, Some(20));
    let kafka = served(&spec, &Credentials::default());

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let big = "é".repeat(5000);
    let binary: Vec<u8> = vec![0xff, 0x00, 0xfe, 0x01];
    producer
        .send(
            FutureRecord::<str, str>::to("blobs").payload(big.as_str()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    producer
        .send(
            FutureRecord::<[u8], [u8]>::to("blobs")
                .payload(&binary)
                .key(&binary[..2]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();

    let peeked = ok(kafka.as_ref(), "kafka_consume", json!({"topic": "blobs"})).await;
    let long = &peeked["messages"][0];
    assert_eq!(long["value_truncated"], true);
    assert_eq!(long["value_bytes"], 10_000);
    let shown = long["value"].as_str().unwrap();
    assert!(shown.len() <= VALUE_BYTES && shown.len() > VALUE_BYTES - 4);
    assert!(shown.chars().all(|c| c == 'é'));
    assert_eq!(peeked["truncated"], true);
    let bin = &peeked["messages"][1];
    assert_eq!(bin["value_encoding"], "base64");
    assert_eq!(bin["value"], "/wD+AQ==");
    assert_eq!(bin["key_encoding"], "base64");
    assert_eq!(bin["key"], "/wA=");
    assert_eq!(bin["value_truncated"], false);

    // More messages than maxRows: the cap applies, and the result says so.
    produce_n_to_partition(&producer, "blobs", 30).await;
    let capped = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": "blobs", "max_messages": 1000}),
    )
    .await;
    assert_eq!(capped["count"], 20);
    assert_eq!(capped["truncated"], true);

    // The whole answer is capped by the call's output limit.
    compliance::check_output_capped(
        kafka.as_ref(),
        "kafka_consume",
        args(json!({"topic": "blobs"})),
        2048,
    )
    .await;
}

async fn produce_n_to_partition(producer: &FutureProducer, topic: &str, n: usize) {
    for i in 0..n {
        let value = format!("message number {i} with some padding to make it longer");
        producer
            .send(
                FutureRecord::<str, str>::to(topic).payload(value.as_str()),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn bad_arguments_are_named() {
    let cluster = mock(&[("orders", 2)]);
    let spec = spec(block(&cluster.bootstrap_servers(), &[]), true, None);
    let tools = backend(&spec, &Credentials::default());
    compliance::check_bad_arguments(tools.as_ref()).await;

    let msg = fails(
        tools.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "offset": 1, "timestamp_ms": 5}),
    )
    .await;
    assert!(msg.contains("either `offset` or `timestamp_ms`"), "{msg}");
    let msg = fails(
        tools.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "offset": -1}),
    )
    .await;
    assert!(msg.contains("`offset`"), "{msg}");
    let msg = fails(
        tools.as_ref(),
        "kafka_consume",
        json!({"topic": "orders", "partition": 7}),
    )
    .await;
    assert!(
        msg.contains("has no partition 7; its partitions are 0..1"),
        "{msg}"
    );
    let msg = fails(
        tools.as_ref(),
        "kafka_produce",
        json!({"topic": "orders", "value": "x", "partition": 9}),
    )
    .await;
    assert!(msg.contains("has no partition 9"), "{msg}");
    let msg = fails(
        tools.as_ref(),
        "kafka_list_topics",
        json!({"pattern": "[oops"}),
    )
    .await;
    assert!(msg.contains("invalid argument `pattern`"), "{msg}");
    let msg = fails(tools.as_ref(), "kafka_consume", json!({"topik": "orders"})).await;
    assert!(msg.contains("unknown field `topik`"), "{msg}");
}

#[tokio::test]
async fn compliance_annotations_and_write_gating() {
    let spec = spec(block("127.0.0.1:1", &[]), false, None);
    let tools = backend(&spec, &Credentials::default());
    compliance::check_annotations(tools.as_ref());
    compliance::check_write_gating(tools.clone(), "kafka").await;
    let names: Vec<(&str, Access)> = tools
        .tools()
        .iter()
        .map(|d| (d.name(), d.access()))
        .collect();
    assert_eq!(
        names,
        [
            ("kafka_list_topics", Access::Read),
            ("kafka_describe_topic", Access::Read),
            ("kafka_consumer_groups", Access::Read),
            ("kafka_consume", Access::Read),
            ("kafka_produce", Access::Write),
        ]
    );
    // Served without writeAccess: no produce.
    let served_tools = served(&spec, &Credentials::default());
    assert!(
        served_tools
            .tools()
            .iter()
            .all(|d| d.name() != "kafka_produce")
    );
}

#[tokio::test]
async fn an_unreachable_broker_still_lists_its_tools_and_says_what_to_check() {
    let started = Instant::now();
    let spec = spec(block("127.0.0.1:1", &[]), true, None);
    let kafka = served(&spec, &Credentials::default());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "building waited on the network"
    );
    assert_eq!(kafka.tools().len(), 5);

    let short = CallContext::new("test").with_timeout(Duration::from_secs(3));
    for (tool, value) in [
        ("kafka_list_topics", json!({})),
        ("kafka_consume", json!({"topic": "orders"})),
        ("kafka_produce", json!({"topic": "orders", "value": "x"})),
    ] {
        let started = Instant::now();
        let result = kafka.call(tool, args(value), &short).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(
            text.starts_with("cannot reach kafka at 127.0.0.1:1: ")
                && text.contains("check bootstrapServers"),
            "{tool}: {text}"
        );
        assert!(started.elapsed() < Duration::from_secs(4), "{tool} overran");
    }
}

#[tokio::test]
async fn no_credential_reaches_any_output() {
    let cluster = mock(&[("orders", 1)]);
    let credentials = Credentials::new(BTreeMap::from([
        ("username".to_owned(), "svc-linkmcp".to_owned()),
        ("password".to_owned(), SECRET.to_owned()),
    ]));
    let short = CallContext::new("test").with_timeout(Duration::from_secs(2));
    let mut results = Vec::new();
    // SASL against a broker that does not speak it, an unreachable one, and a SASL link without
    // credentials; plus the TLS protocols against a port that does not speak TLS.
    for (bootstrap, protocol, creds) in [
        (
            cluster.bootstrap_servers(),
            "sasl_plaintext",
            credentials.clone(),
        ),
        (
            "127.0.0.1:1".to_owned(),
            "sasl_plaintext",
            credentials.clone(),
        ),
        ("127.0.0.1:1".to_owned(), "sasl_ssl", credentials.clone()),
        ("127.0.0.1:1".to_owned(), "ssl", credentials.clone()),
        (
            cluster.bootstrap_servers(),
            "sasl_plaintext",
            Credentials::default(),
        ),
    ] {
        let mut kafka_block = block(&bootstrap, &[]);
        kafka_block["securityProtocol"] = json!(protocol);
        let spec = spec(kafka_block, true, None);
        let kafka = served(&spec, &creds);
        for def in kafka.tools() {
            let value = match def.name() {
                "kafka_list_topics" | "kafka_consumer_groups" => json!({}),
                "kafka_produce" => json!({"topic": "orders", "value": "v"}),
                _ => json!({"topic": "orders"}),
            };
            let result = kafka.call(def.name(), args(value), &short).await;
            assert_eq!(
                result.is_error,
                Some(true),
                "{protocol} {}: {}",
                def.name(),
                result_text(&result)
            );
            results.push(result);
        }
        let component = super::component(&LinkContext {
            name: "events",
            namespace: "shop",
            spec: &spec,
            credentials: &creds,
        });
        let shown = serde_json::to_string(&component).unwrap();
        assert!(!shown.contains(SECRET), "{shown}");
        assert_eq!(component.link_type, "kafka");
        assert_eq!(component.endpoint["securityProtocol"], protocol);
    }
    compliance::check_no_secrets(&results, &credentials);
    let without = result_text(results.last().unwrap());
    assert!(
        without.contains("lack `username` and `password`"),
        "{without}"
    );
}

#[test]
fn the_component_says_where_the_brokers_are() {
    let spec = spec(
        block("kafka-0.kafka:9092", &["orders*", "payments"]),
        false,
        None,
    );
    let component = super::component(&LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &Credentials::default(),
    });
    assert_eq!(component.name, "events");
    assert_eq!(component.kind, "queue");
    assert_eq!(component.endpoint["host"], "kafka-0.kafka");
    assert_eq!(component.endpoint["port"], "9092");
    assert_eq!(component.endpoint["topics"], "orders*,payments");
    assert_eq!(component.endpoint["namespace"], "shop");
}

#[test]
fn invalid_topic_globs_are_refused_at_build() {
    let spec = spec(block("127.0.0.1:9092", &["[oops"]), false, None);
    let ctx = LinkContext {
        name: "events",
        namespace: "shop",
        spec: &spec,
        credentials: &Credentials::default(),
    };
    let err = link::build(&ctx, "kafka").err().unwrap();
    assert!(err.to_string().contains("kafka.topics"), "{err}");
}

/// The broker of the `kafka_real_` tests.
fn real_broker() -> String {
    std::env::var("LINKMCP_KAFKA_BROKER")
        .expect("LINKMCP_KAFKA_BROKER must name a Kafka-compatible broker (scripts/tansu.sh)")
}

#[tokio::test]
#[ignore = "needs a real broker at LINKMCP_KAFKA_BROKER (make test-integration)"]
async fn kafka_real_produce_peek_and_groups() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};

    let bootstrap = real_broker();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("linkmcp-test-{nanos}");
    let group = format!("linkmcp-test-group-{nanos}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    let spec = spec(block(&bootstrap, &["linkmcp-test-*"]), true, None);
    let kafka = served(&spec, &Credentials::default());
    let listed = ok(kafka.as_ref(), "kafka_list_topics", json!({})).await;
    assert!(listed.to_string().contains(&topic), "{listed}");
    let described = ok(
        kafka.as_ref(),
        "kafka_describe_topic",
        json!({"topic": topic}),
    )
    .await;
    assert_eq!(described["partition_count"], 2);

    produce_n(kafka.as_ref(), &topic, 4).await;
    let first = ok(kafka.as_ref(), "kafka_consume", json!({"topic": topic})).await;
    assert_eq!(offsets(&first), [(0, 0), (0, 1), (0, 2), (0, 3)]);
    assert_eq!(first["messages"][2]["key"], "k2");
    assert_eq!(first["messages"][2]["headers"][0]["value"], "t2");
    let second = ok(kafka.as_ref(), "kafka_consume", json!({"topic": topic})).await;
    assert_eq!(first["messages"], second["messages"]);
    let from = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": topic, "partition": 0, "offset": 2}),
    )
    .await;
    assert_eq!(offsets(&from), [(0, 2), (0, 3)]);
    // By time (the mock cluster cannot look offsets up by timestamp; a real broker can).
    let future = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000;
    let none = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": topic, "timestamp_ms": i64::try_from(future).unwrap()}),
    )
    .await;
    assert_eq!(none["count"], 0);
    let from_start = ok(
        kafka.as_ref(),
        "kafka_consume",
        json!({"topic": topic, "timestamp_ms": 0, "max_messages": 3}),
    )
    .await;
    assert_eq!(offsets(&from_start), [(0, 0), (0, 1), (0, 2)]);

    // A real group with a committed offset; peeks and the group tool leave it as it was.
    let consumer = group_consumer(&bootstrap, &group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(1))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let before = committed(&consumer, &topic, 2);
    ok(kafka.as_ref(), "kafka_consume", json!({"topic": topic})).await;
    let described = ok(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": group}),
    )
    .await;
    assert_eq!(described["total_lag"], 3, "{described}");
    assert_eq!(
        committed(&group_consumer(&bootstrap, &group), &topic, 2),
        before
    );
    let groups = ok(kafka.as_ref(), "kafka_consumer_groups", json!({})).await;
    let groups_text = groups.to_string();
    assert!(
        !groups_text.contains("linkmcp-peek-"),
        "a peek group reached the broker: {groups_text}"
    );
    assert_eq!(described["info"]["state"], "Empty", "{described}");
    assert_eq!(described["info"]["members"], json!([]), "{described}");
    assert!(groups_text.contains(&group), "{groups_text}");

    // A live member of the group keeps its assignment: reading the group and peeking neither
    // join it nor trigger a rebalance.
    let member = Rebalances::default();
    let live: BaseConsumer<Rebalances> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create_with_context(member.clone())
        .unwrap();
    live.subscribe(&[topic.as_str()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while live.assignment().unwrap().count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the live member got no assignment"
        );
        let _ = live.poll(Duration::from_millis(100));
    }
    let assigned = member.count();
    let with_member = ok(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": group}),
    )
    .await;
    assert_eq!(
        with_member["info"]["members"].as_array().unwrap().len(),
        1,
        "{with_member}"
    );
    ok(kafka.as_ref(), "kafka_consume", json!({"topic": topic})).await;
    for _ in 0..20 {
        let _ = live.poll(Duration::from_millis(100));
    }
    assert_eq!(member.count(), assigned, "the live member was rebalanced");
    assert_eq!(live.assignment().unwrap().count(), 2);
    let after = ok(
        kafka.as_ref(),
        "kafka_consumer_groups",
        json!({"group": group}),
    )
    .await;
    assert_eq!(after["info"]["members"], with_member["info"]["members"]);
    assert_eq!(after["offsets"], described["offsets"]);
}

/// Counts the rebalances a consumer goes through.
#[derive(Clone, Default)]
struct Rebalances(Arc<std::sync::atomic::AtomicUsize>);

impl Rebalances {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl rdkafka::client::ClientContext for Rebalances {}

impl rdkafka::consumer::ConsumerContext for Rebalances {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        _: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn the_build_speaks_tls_and_scram() {
    // librdkafka builds SCRAM only with OpenSSL: a build without it would refuse these links.
    let native = ClientConfig::new().create_native_config().unwrap();
    let features = native.get("builtin.features").unwrap();
    for feature in ["ssl", "sasl_plain", "sasl_scram"] {
        assert!(
            features.split(',').any(|f| f == feature),
            "librdkafka lacks {feature}: {features}"
        );
    }
}

fn tls_block(bootstrap: &str, protocol: &str, mechanism: Option<&str>, insecure: bool) -> Value {
    let mut block = block(bootstrap, &[]);
    block["securityProtocol"] = json!(protocol);
    if let Some(mechanism) = mechanism {
        block["saslMechanism"] = json!(mechanism);
    }
    if insecure {
        block["tls"] = json!({"insecureSkipVerify": true});
    }
    block
}

#[tokio::test]
async fn unusable_tls_credentials_are_named_before_connecting() {
    for (credentials, says) in [
        (
            vec![("ca.crt", "not a certificate")],
            "`ca.crt` is not a PEM certificate bundle",
        ),
        (
            vec![("tls.crt", "-----BEGIN CERTIFICATE-----\n")],
            "needs both `tls.crt` and `tls.key`",
        ),
        (
            vec![("tls.crt", "garbage"), ("tls.key", "garbage")],
            "are not a PEM certificate and private key",
        ),
    ] {
        let credentials = Credentials::new(
            credentials
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let spec = spec(tls_block("127.0.0.1:1", "ssl", None, false), false, None);
        let kafka = served(&spec, &credentials);
        let started = Instant::now();
        let text = fails(kafka.as_ref(), "kafka_list_topics", json!({})).await;
        assert!(
            text.contains("link shop/events") && text.contains(says),
            "{text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it connected first"
        );
    }
}

/// A real broker behind a TLS listener, and the PEM file of the CA that signed its certificate
/// (scripts/tansu.sh: `socat` terminating TLS in front of Tansu).
fn real_tls_broker(var: &str) -> (String, Credentials) {
    let broker = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} must name a TLS listener (scripts/tansu.sh)"));
    let ca = std::env::var("LINKMCP_KAFKA_TLS_CA")
        .expect("LINKMCP_KAFKA_TLS_CA must name the listener's CA file (scripts/tansu.sh)");
    let pem = std::fs::read_to_string(ca).unwrap();
    (
        broker,
        Credentials::new(BTreeMap::from([("ca.crt".to_owned(), pem)])),
    )
}

#[tokio::test]
#[ignore = "needs a TLS listener at LINKMCP_KAFKA_TLS_BROKER (make test-integration)"]
async fn kafka_real_tls_verifies_the_broker_and_carries_calls() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};

    let (broker, with_ca) = real_tls_broker("LINKMCP_KAFKA_TLS_BROKER");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("linkmcp-tls-{nanos}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .set("security.protocol", "ssl")
        .set(
            "ssl.ca.location",
            std::env::var("LINKMCP_KAFKA_TLS_CA").unwrap(),
        )
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");

    // Verified against the CA from the credentials: every tool works over TLS.
    let verified = spec(tls_block(&broker, "ssl", None, false), true, None);
    let kafka = served(&verified, &with_ca);
    let listed = ok(kafka.as_ref(), "kafka_list_topics", json!({})).await;
    assert!(listed.to_string().contains(&topic), "{listed}");
    produce_n(kafka.as_ref(), &topic, 2).await;
    let consumed = ok(kafka.as_ref(), "kafka_consume", json!({"topic": topic})).await;
    assert_eq!(offsets(&consumed), [(0, 0), (0, 1)]);

    // Without the CA the broker's certificate is refused, and the message says what to add.
    let spec_no_ca = spec(tls_block(&broker, "ssl", None, false), false, None);
    let untrusted = served(&spec_no_ca, &Credentials::default());
    let short = CallContext::new("test").with_timeout(Duration::from_secs(4));
    let result = untrusted
        .call("kafka_list_topics", args(json!({})), &short)
        .await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(
        text.contains("TLS handshake") && text.contains("`ca.crt`"),
        "{text}"
    );

    // insecureSkipVerify: the same broker without the CA.
    let spec_insecure = spec(tls_block(&broker, "ssl", None, true), false, None);
    let insecure = served(&spec_insecure, &Credentials::default());
    let listed = ok(insecure.as_ref(), "kafka_list_topics", json!({})).await;
    assert!(listed.to_string().contains(&topic), "{listed}");
}

#[tokio::test]
#[ignore = "needs a SASL listener at LINKMCP_KAFKA_SCRAM_BROKER (make test-integration)"]
async fn kafka_real_scram_over_tls_refusal_is_named() {
    // Tansu with --authentication keeps no SCRAM users in memory storage, so every login is
    // refused: this proves the SCRAM exchange runs over TLS and that a refusal is explained.
    let (broker, mut credentials) = real_tls_broker("LINKMCP_KAFKA_SCRAM_BROKER");
    let mut values = BTreeMap::from([
        ("username".to_owned(), "svc-linkmcp".to_owned()),
        ("password".to_owned(), SECRET.to_owned()),
    ]);
    values.insert(
        "ca.crt".to_owned(),
        credentials.get("ca.crt").unwrap().to_owned(),
    );
    credentials = Credentials::new(values);
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let spec = spec(
            tls_block(&broker, "sasl_ssl", Some(mechanism), false),
            false,
            None,
        );
        let kafka = served(&spec, &credentials);
        let short = CallContext::new("test").with_timeout(Duration::from_secs(5));
        let result = kafka
            .call("kafka_list_topics", args(json!({})), &short)
            .await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{mechanism}: {text}");
        assert!(
            text.contains("refused the credentials") && text.contains(mechanism),
            "{mechanism}: {text}"
        );
        assert!(!text.contains(SECRET), "{text}");
    }
}
