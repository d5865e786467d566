//! The mongodb toolset against a MongoDB wire-protocol server: `nx-27017` (NeoSQLite, from
//! PyPI; not MongoDB itself, which cannot be installed here), started once per test run on a
//! free port with an in-memory store, or the server at `LINKMCP_TEST_MONGO_PORT` when set. Each
//! test works in a database of its own. Without `nx-27017` the tests fail and say how to
//! install it.
//!
//! nx-27017 speaks the wire protocol without authentication, so the wrong-password test checks
//! what the client sees when the authentication handshake fails, not MongoDB's own refusal.
#![cfg(feature = "mongodb")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use linkmcp_api::McpLinkSpec;
use linkmcp_api::link::{LinkLimits, MongodbBackend};
use linkmcp_toolsets::compliance::{
    Caller, check_annotations, check_bad_arguments, check_no_secrets, check_output_capped,
    check_write_gating, result_text,
};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::LinkContext;
use linkmcp_toolsets::{CallContext, Toolset, mongodb};
use rmcp::model::JsonObject;
use serde_json::{Value, json};

/// The password a link carries in the wrong-password test; no output may show it.
const PASSWORD: &str = "mongo-pw-never-shown-5Tq8";

/// The port of the test server, started on first use. A watchdog shell stops it when the test
/// process exits.
fn server_port() -> u16 {
    if let Ok(port) = std::env::var("LINKMCP_TEST_MONGO_PORT") {
        return port.parse().unwrap();
    }
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let installed = Command::new("sh")
            .args(["-c", "command -v nx-27017"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            installed,
            "nx-27017 (a MongoDB wire-protocol server) is not installed: run \
             scripts/test-services.sh (make test does) and run the tests again"
        );
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("linkmcp-nx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "( nx-27017 --host 127.0.0.1 -p {port} --db memory --log-file '{dir}/server.log' \
             --pid-file '{dir}/server.pid' & server=$!; \
             while kill -0 {parent} && kill -0 $server; do sleep 1; done; \
             kill $server ) >/dev/null 2>&1 &",
            dir = dir.display(),
            parent = std::process::id()
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "nx-27017 could not be started");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nx-27017 did not open port {port}; see {}/server.log",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        port
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("linkmcp_{tag}_{}_{nanos}", std::process::id())
}

struct Link {
    spec: McpLinkSpec,
    block: MongodbBackend,
    credentials: Credentials,
}

impl Link {
    fn new(port: u16, database: &str, max_rows: Option<i32>) -> Self {
        let block = MongodbBackend {
            host: "127.0.0.1".to_owned(),
            port: i32::from(port),
            database: database.to_owned(),
            auth_source: None,
            replica_set: None,
            tls: false,
        };
        let mut spec: McpLinkSpec =
            serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap();
        spec.mongodb = Some(block.clone());
        spec.write_access = true;
        spec.limits = LinkLimits {
            max_rows,
            timeout_seconds: Some(3),
            ..LinkLimits::default()
        };
        Self {
            spec,
            block,
            credentials: Credentials::default(),
        }
    }

    fn with_password(mut self) -> Self {
        self.credentials = Credentials::new(BTreeMap::from([
            ("username".to_owned(), "shop-reader".to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
        ]));
        self
    }

    fn toolset(&self) -> Arc<dyn Toolset> {
        let ctx = LinkContext {
            name: "shop-mongo",
            namespace: "data",
            spec: &self.spec,
            credentials: &self.credentials,
        };
        mongodb::toolset(&ctx, &self.block).unwrap()
    }
}

fn secrets() -> Credentials {
    Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        PASSWORD.to_owned(),
    )]))
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

/// A database with `orders` (five documents) and `archive` (one document), inserted through
/// mongo_insert.
async fn seeded(c: &mut Caller) {
    let orders: Vec<Value> = (0..5)
        .map(|i| json!({"_id": i, "n": i, "status": if i % 2 == 0 { "paid" } else { "open" }, "tags": ["a", "b"]}))
        .collect();
    let inserted = c
        .ok(
            "mongo_insert",
            json!({"collection": "orders", "documents": orders}),
        )
        .await;
    assert_eq!(inserted["insertedCount"], json!(5));
    assert_eq!(inserted["insertedIds"], json!([0, 1, 2, 3, 4]));
    c.ok(
        "mongo_insert",
        json!({"collection": "archive", "documents": [{"_id": "keep", "note": "untouched"}]}),
    )
    .await;
}

#[tokio::test]
async fn mongo_tools_follow_the_compliance_rules() {
    let port = server_port();
    let db = unique("compliance");
    let link = Link::new(port, &db, Some(100_000));
    let toolset = link.toolset();
    check_annotations(toolset.as_ref());
    check_write_gating(toolset.clone(), "mongo").await;
    check_bad_arguments(toolset.as_ref()).await;
    let mut c = Caller::new(toolset.clone());
    let docs: Vec<Value> = (0..300)
        .map(|i| json!({"_id": i, "text": "x".repeat(100)}))
        .collect();
    c.ok(
        "mongo_insert",
        json!({"collection": "big", "documents": docs}),
    )
    .await;
    check_output_capped(
        toolset.as_ref(),
        "mongo_find",
        args(json!({"collection": "big"})),
        2048,
    )
    .await;
}

#[tokio::test]
async fn reads_are_bounded_and_typed() {
    let port = server_port();
    let db = unique("reads");
    let mut c = Caller::new(Link::new(port, &db, Some(3)).toolset());
    seeded(&mut c).await;

    let list = c.ok("mongo_list_collections", json!({})).await;
    assert_eq!(list["collections"], json!(["archive", "orders"]));
    let page = c.ok("mongo_list_collections", json!({"limit": 1})).await;
    assert_eq!(page["page"]["nextOffset"], json!(1));

    let found = c
        .ok(
            "mongo_find",
            json!({"collection": "orders", "filter": {"status": "paid"},
                   "projection": {"tags": 0}, "sort": {"n": -1}}),
        )
        .await;
    assert_eq!(
        found["documents"],
        json!([
            {"_id": 4, "n": 4, "status": "paid"},
            {"_id": 2, "n": 2, "status": "paid"},
            {"_id": 0, "n": 0, "status": "paid"}
        ])
    );
    assert_eq!(found["truncated"], json!(false));

    // Five documents, a limit of three: three come back, and the result says more exist.
    let all = c
        .call(
            "mongo_find",
            json!({"collection": "orders", "sort": {"n": 1}}),
        )
        .await;
    let text = result_text(&all);
    let all = all.structured_content.unwrap();
    assert_eq!(all["count"], json!(3));
    assert_eq!(all["truncated"], json!(true));
    assert_eq!(all["truncatedBy"], "maxRows");
    assert!(text.contains("truncated at the limit of 3"), "{text}");
    let next = c
        .ok(
            "mongo_find",
            json!({"collection": "orders", "sort": {"n": 1}, "skip": 3}),
        )
        .await;
    assert_eq!(next["documents"][0]["_id"], json!(3));

    let long = "y".repeat(10_000);
    c.ok(
        "mongo_insert",
        json!({"collection": "notes", "documents": [{"body": long}]}),
    )
    .await;
    let notes = c.ok("mongo_find", json!({"collection": "notes"})).await;
    assert_eq!(notes["cutValues"], json!(1));
    assert!(notes["documents"][0]["body"].as_str().unwrap().len() < 4200);
    // Generated ids come back as relaxed Extended JSON.
    assert!(notes["documents"][0]["_id"]["$oid"].is_string(), "{notes}");

    let counted = c
        .ok(
            "mongo_count",
            json!({"collection": "orders", "filter": {"n": {"$gte": 1}}}),
        )
        .await;
    assert_eq!(counted["count"], json!(4));

    let grouped = c
        .ok(
            "mongo_aggregate",
            json!({"collection": "orders", "pipeline": [
                {"$match": {"n": {"$gt": 0}}},
                {"$group": {"_id": "$status", "total": {"$sum": "$n"}}},
                {"$sort": {"_id": 1}}
            ]}),
        )
        .await;
    assert_eq!(
        grouped["documents"],
        json!([{"_id": "open", "total": 4}, {"_id": "paid", "total": 6}])
    );

    let missing = c.err("mongo_find", json!({"collection": "ordrs"})).await;
    assert!(
        missing.contains("collection ordrs does not exist"),
        "{missing}"
    );
    assert!(missing.contains("collections are: "), "{missing}");
    assert!(missing.contains("orders"), "{missing}");
    let missing = c.err("mongo_count", json!({"collection": "nope"})).await;
    assert!(
        missing.contains("collection nope does not exist"),
        "{missing}"
    );

    let bad = c
        .err(
            "mongo_find",
            json!({"collection": "orders", "filter": {"_id": {"$oid": "xyz"}}}),
        )
        .await;
    assert!(bad.starts_with("invalid argument `filter`"), "{bad}");
}

#[tokio::test]
async fn aggregate_refuses_writing_stages_and_changes_nothing() {
    let port = server_port();
    let db = unique("guard");
    let mut c = Caller::new(Link::new(port, &db, None).toolset());
    seeded(&mut c).await;

    for pipeline in [
        json!([{"$match": {}}, {"$out": "archive"}]),
        json!([{"$merge": {"into": "archive", "whenMatched": "replace"}}]),
        json!([{"$facet": {"x": [{"$out": "archive"}]}}]),
    ] {
        let refused = c
            .err(
                "mongo_aggregate",
                json!({"collection": "orders", "pipeline": pipeline}),
            )
            .await;
        assert!(
            refused.contains("was not sent and nothing was changed"),
            "{refused}"
        );
    }
    let archive = c.ok("mongo_find", json!({"collection": "archive"})).await;
    assert_eq!(
        archive["documents"],
        json!([{"_id": "keep", "note": "untouched"}])
    );
    let counted = c.ok("mongo_count", json!({"collection": "orders"})).await;
    assert_eq!(counted["count"], json!(5));

    // A duplicate id: the error says which document, and the earlier ones stay inserted.
    let dup = c
        .err(
            "mongo_insert",
            json!({"collection": "archive", "documents": [{"_id": "new"}, {"_id": "keep"}]}),
        )
        .await;
    assert!(dup.contains("document 1"), "{dup}");
}

#[tokio::test]
async fn failures_name_what_to_check_without_secrets() {
    // Registration never waits on the network: a link to a closed port lists its tools, and a
    // call names host:port.
    let closed = free_port();
    let link = Link::new(closed, "shop", None).with_password();
    let toolset = link.toolset();
    assert_eq!(toolset.tools().len(), 5);
    let ctx = CallContext::new("test");
    let started = Instant::now();
    let unreachable = toolset
        .call("mongo_count", args(json!({"collection": "orders"})), &ctx)
        .await;
    let text = result_text(&unreachable);
    assert_eq!(unreachable.is_error, Some(true));
    assert!(
        text.contains(&format!(
            "cannot reach MongoDB at 127.0.0.1:{closed} for link `shop-mongo`"
        )),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Credentials the server cannot accept: the link's credentials are named, never shown.
    let port = server_port();
    let link = Link::new(port, &unique("auth"), None).with_password();
    let toolset = link.toolset();
    let refused = toolset
        .call("mongo_list_collections", JsonObject::new(), &ctx)
        .await;
    let text = result_text(&refused);
    assert_eq!(refused.is_error, Some(true), "{text}");
    assert!(text.contains("credentials of link `shop-mongo`"), "{text}");
    check_no_secrets(&[unreachable, refused], &secrets());
}
