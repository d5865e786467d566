//! The clickhouse toolset against a real ClickHouse server: Debian's `clickhouse-server`,
//! started once per test run by `scripts/clickhouse.sh` on a free port with a temporary config
//! and data directory (it stops when the test process exits). Each test works in a database of
//! its own. Without the binary the tests fail and say how to install it.
#![cfg(feature = "clickhouse")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use linkmcp_api::McpLinkSpec;
use linkmcp_api::link::{ClickhouseBackend, LinkLimits};
use linkmcp_toolsets::compliance::{
    Caller, check_annotations, check_bad_arguments, check_no_secrets, check_output_capped,
    check_write_gating, result_text,
};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::LinkContext;
use linkmcp_toolsets::{CallContext, Toolset, clickhouse};
use rmcp::model::JsonObject;
use serde_json::{Value, json};

/// The password of the `linkmcp` user of the test server; no output may show it.
const PASSWORD: &str = "ch-pw-must-never-show-9Kd3";

/// The test server's HTTP port, started on first use.
fn server_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let installed = Command::new("sh")
            .args(["-c", "command -v clickhouse-server"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            installed,
            "clickhouse-server is not installed: run scripts/test-services.sh (make test does; \
             it installs Debian's clickhouse-server) and run the tests again"
        );
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("linkmcp-ch-{}-{port}", std::process::id()));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .env("LINKMCP_TEST_CH_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/clickhouse.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// Runs a statement as the server's `default` user (the test's administrator).
async fn admin(sql: &str) -> String {
    let port = server_port();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .body(sql.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "{sql}: {body}");
    body
}

/// A database of the test's own, with a MergeTree table `events` of three rows and a Memory
/// table `notes`.
async fn test_db(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let db = format!("linkmcp_ch_{tag}_{}_{nanos}", std::process::id());
    admin(&format!("CREATE DATABASE {db}")).await;
    admin(&format!(
        "CREATE TABLE {db}.events (day Date, id UInt64, kind String, amount Nullable(Float64)) \
         ENGINE = MergeTree(day, (kind, id), 8192)"
    ))
    .await;
    admin(&format!(
        "INSERT INTO {db}.events VALUES ('2024-01-01', 1, 'click', 1.5), \
         ('2024-01-01', 2, 'view', NULL), ('2024-01-02', 3, 'tab\\there', 2)"
    ))
    .await;
    admin(&format!(
        "CREATE TABLE {db}.notes (id UInt32, body String) ENGINE = Memory"
    ))
    .await;
    db
}

async fn count(db: &str, table: &str) -> u64 {
    admin(&format!("SELECT count() FROM {db}.{table}"))
        .await
        .trim()
        .parse()
        .unwrap()
}

fn link_spec(url: &str, database: &str, max_rows: Option<i32>) -> (McpLinkSpec, ClickhouseBackend) {
    let block = ClickhouseBackend {
        url: url.to_owned(),
        database: database.to_owned(),
    };
    let mut spec: McpLinkSpec =
        serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap();
    spec.clickhouse = Some(block.clone());
    spec.write_access = true;
    spec.limits = LinkLimits {
        max_rows,
        ..LinkLimits::default()
    };
    (spec, block)
}

fn credentials(password: &str) -> Credentials {
    Credentials::new(BTreeMap::from([
        ("username".to_owned(), "linkmcp".to_owned()),
        ("password".to_owned(), password.to_owned()),
    ]))
}

/// The secret part of the credentials (the user name is shown in messages on purpose).
fn password_only(password: &str) -> Credentials {
    Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        password.to_owned(),
    )]))
}

fn toolset_for(
    url: &str,
    database: &str,
    max_rows: Option<i32>,
    password: &str,
) -> Arc<dyn Toolset> {
    let (spec, block) = link_spec(url, database, max_rows);
    let creds = credentials(password);
    let ctx = LinkContext {
        name: "events-ch",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    clickhouse::toolset(&ctx, &block).unwrap()
}

fn toolset(database: &str, max_rows: Option<i32>) -> Arc<dyn Toolset> {
    let url = format!("http://127.0.0.1:{}", server_port());
    toolset_for(&url, database, max_rows, PASSWORD)
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

#[tokio::test]
async fn ch_tools_follow_the_compliance_rules() {
    let db = test_db("compliance").await;
    let toolset = toolset(&db, Some(100_000));
    check_annotations(toolset.as_ref());
    check_write_gating(toolset.clone(), "ch").await;
    check_bad_arguments(toolset.as_ref()).await;
    check_output_capped(
        toolset.as_ref(),
        "ch_query",
        args(
            json!({"sql": "SELECT number, toString(number) AS s FROM system.numbers LIMIT 50000"}),
        ),
        2048,
    )
    .await;
}

#[tokio::test]
async fn catalog_tools_describe_the_database() {
    let db = test_db("catalog").await;
    let mut c = Caller::new(toolset(&db, None));

    let dbs = c.ok("ch_list_databases", json!({})).await;
    let mine: Vec<&Value> = dbs["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == json!(db))
        .collect();
    assert_eq!(mine.len(), 1, "{dbs}");
    assert_eq!(mine[0]["current"], json!(true));

    let tables = c.ok("ch_list_tables", json!({})).await;
    let list = tables["tables"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{tables}");
    let events = list.iter().find(|t| t["name"] == "events").unwrap();
    assert_eq!(events["engine"], "MergeTree");
    assert_eq!(events["rows"], json!(3));
    assert!(events["parts"].as_u64().unwrap() >= 1);
    let page = c.ok("ch_list_tables", json!({"limit": 1})).await;
    assert_eq!(page["page"]["nextOffset"], json!(1), "{page}");
    let filtered = c.ok("ch_list_tables", json!({"nameContains": "NOT"})).await;
    assert_eq!(filtered["tables"][0]["name"], "notes");

    let described = c.ok("ch_describe_table", json!({"table": "events"})).await;
    let columns: Vec<&str> = described["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["day", "id", "kind", "amount"]);
    assert_eq!(described["columns"][3]["type"], "Nullable(Float64)");
    assert_eq!(described["sortingKey"], "kind, id");
    let qualified = c
        .ok("ch_describe_table", json!({"table": format!("{db}.notes")}))
        .await;
    assert_eq!(qualified["engine"], "Memory");

    let stats = c.ok("ch_table_stats", json!({"table": "events"})).await;
    assert_eq!(stats["rows"], json!(3), "{stats}");
    assert!(stats["bytesOnDisk"].as_u64().unwrap() > 0);
    let stats = c.ok("ch_table_stats", json!({"table": "notes"})).await;
    assert_eq!(stats["rows"], json!(0));
    assert_eq!(stats["parts"], json!(0));

    let missing = c.err("ch_describe_table", json!({"table": "evnts"})).await;
    assert!(
        missing.contains(&format!("table {db}.evnts does not exist")),
        "{missing}"
    );
    assert!(
        missing.contains("events") && missing.contains("notes"),
        "{missing}"
    );
    let no_db = c
        .err(
            "ch_table_stats",
            json!({"table": "events", "database": "nope_db"}),
        )
        .await;
    assert!(no_db.contains("database nope_db does not exist"), "{no_db}");
    assert!(no_db.contains(&db), "the databases are listed: {no_db}");
    c.no_secrets(&password_only(PASSWORD));
}

#[tokio::test]
async fn queries_return_typed_rows_and_stop_at_the_limit() {
    let db = test_db("query").await;
    let mut c = Caller::new(toolset(&db, Some(10)));

    let rows = c
        .ok(
            "ch_query",
            json!({"sql": "SELECT id, kind, amount FROM events ORDER BY id"}),
        )
        .await;
    assert_eq!(
        rows["columns"],
        json!([
            {"name": "id", "type": "UInt64"},
            {"name": "kind", "type": "String"},
            {"name": "amount", "type": "Nullable(Float64)"}
        ])
    );
    assert_eq!(
        rows["rows"],
        json!([[1, "click", 1.5], [2, "view", null], [3, "tab\there", 2.0]])
    );
    assert_eq!(rows["truncated"], json!(false));

    // A billion-row result: reading stops at the limit, long before the server would finish.
    let started = Instant::now();
    let big = c
        .call(
            "ch_query",
            json!({"sql": "SELECT number FROM system.numbers LIMIT 1000000000"}),
        )
        .await;
    let text = result_text(&big);
    let big = big.structured_content.unwrap();
    assert_eq!(big["rowCount"], json!(10));
    assert_eq!(big["truncated"], json!(true));
    assert_eq!(big["truncatedBy"], "maxRows");
    assert!(text.contains("truncated at the limit of 10 rows"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let fewer = c
        .ok(
            "ch_query",
            json!({"sql": "SELECT number FROM system.numbers LIMIT 100", "maxRows": 3}),
        )
        .await;
    assert_eq!(fewer["rows"], json!([[0], [1], [2]]));

    let long = c
        .ok(
            "ch_query",
            json!({"sql": "SELECT toString(range(5000)) AS s"}),
        )
        .await;
    assert_eq!(long["cutValues"], json!(1));
    assert!(long["rows"][0][0].as_str().unwrap().len() < 4200);

    let syntax = c.err("ch_query", json!({"sql": "SELEC 1"})).await;
    assert!(syntax.starts_with("syntax error:"), "{syntax}");
    assert!(
        syntax.contains("failed at position 1"),
        "ClickHouse's own message: {syntax}"
    );

    let missing = c
        .err("ch_query", json!({"sql": "SELECT * FROM evnts"}))
        .await;
    assert!(missing.contains("evnts doesn't exist"), "{missing}");
    assert!(
        missing.contains(&format!("tables in {db} are: events, notes")),
        "{missing}"
    );

    let two = c
        .err("ch_query", json!({"sql": "SELECT 1; SELECT 2"}))
        .await;
    assert!(two.contains("Multi-statements are not allowed"), "{two}");
    c.no_secrets(&password_only(PASSWORD));
}

#[tokio::test]
async fn reads_cannot_write_and_execute_can() {
    let db = test_db("guard").await;
    let mut c = Caller::new(toolset(&db, None));

    for sql in [
        "INSERT INTO events VALUES ('2024-02-01', 9, 'x', 1)".to_owned(),
        "DROP TABLE events".to_owned(),
        "TRUNCATE TABLE events".to_owned(),
        "ALTER TABLE events DELETE WHERE 1".to_owned(),
        "CREATE TABLE sneaky (x UInt8) ENGINE = Memory".to_owned(),
        "SET readonly = 0".to_owned(),
    ] {
        let refused = c.err("ch_query", json!({ "sql": sql })).await;
        assert!(
            refused.contains("readonly") || refused.contains("read-only"),
            "{sql}: {refused}"
        );
    }
    assert_eq!(count(&db, "events").await, 3);
    let tables = admin(&format!(
        "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name"
    ))
    .await;
    assert_eq!(tables, "events\nnotes\n");

    let done = c
        .ok(
            "ch_execute",
            json!({"sql": "INSERT INTO notes VALUES (1, 'first'), (2, 'second')"}),
        )
        .await;
    assert_eq!(done["ok"], json!(true));
    assert_eq!(count(&db, "notes").await, 2);
    c.ok(
        "ch_execute",
        json!({"sql": "CREATE TABLE made (x UInt8) ENGINE = Memory"}),
    )
    .await;
    assert_eq!(count(&db, "made").await, 0);
    let bad = c
        .err(
            "ch_execute",
            json!({"sql": "INSERT INTO nowhere VALUES (1)"}),
        )
        .await;
    assert!(bad.contains("nowhere doesn't exist"), "{bad}");
    c.no_secrets(&password_only(PASSWORD));
}

#[tokio::test]
async fn failures_name_what_to_check_without_secrets() {
    let db = test_db("failures").await;
    let port = server_port();
    let url = format!("http://127.0.0.1:{port}");

    // Wrong password: the link and its credentials are named, neither password is shown.
    let wrong = "wrong-pw-never-shown-3Hz";
    let toolset = toolset_for(&url, &db, None, wrong);
    let ctx = CallContext::new("test");
    let result = toolset
        .call("ch_query", args(json!({"sql": "SELECT 1"})), &ctx)
        .await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true));
    assert!(
        text.contains("credentials of link `events-ch` (user `linkmcp`)"),
        "{text}"
    );
    check_no_secrets(std::slice::from_ref(&result), &password_only(wrong));
    check_no_secrets(&[result], &password_only(PASSWORD));

    // Unreachable: host:port and what to check.
    let closed = free_port();
    let toolset = toolset_for(&format!("http://127.0.0.1:{closed}"), &db, None, PASSWORD);
    let result = toolset
        .call("ch_list_tables", JsonObject::new(), &ctx)
        .await;
    let text = result_text(&result);
    assert!(
        text.contains(&format!("cannot reach ClickHouse at 127.0.0.1:{closed}")),
        "{text}"
    );
    check_no_secrets(&[result], &password_only(PASSWORD));

    // A statement longer than the call's time limit is stopped by ClickHouse itself.
    let toolset = toolset_for(&url, &db, None, PASSWORD);
    let short = CallContext::new("test").with_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let result = toolset
        .call(
            "ch_query",
            args(json!({"sql": "SELECT count() FROM system.numbers"})),
            &short,
        )
        .await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.contains("time limit"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
