//! The valkey toolset against the Redis 7 server on 127.0.0.1:6379 (no auth), which CI starts.
//! Each test works under its own key prefix, unique per run, and deletes its keys at the end.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fred::prelude::{Builder, ClientLike, Config, Value};
use fred::types::{ClusterHash, CustomCommand};
use linkmcp_api::McpLinkSpec;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::json;

use super::client::Read;
use crate::compliance::{self, result_text};
use crate::credentials::Credentials;
use crate::link::{self, LinkContext};
use crate::{Access, CallContext, Toolset};

const HOST: &str = "127.0.0.1";

/// A key prefix no other test or run uses.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("linkmcp-test:{}:{nanos}:{name}:", std::process::id())
}

fn spec(valkey: serde_json::Value, write: bool, max_rows: Option<i32>) -> McpLinkSpec {
    let mut spec = json!({
        "serverRef": {"name": "main"},
        "valkey": valkey,
        "writeAccess": write,
    });
    if let Some(n) = max_rows {
        spec["limits"] = json!({"maxRows": n});
    }
    serde_json::from_value(spec).unwrap()
}

fn local(key_prefix: Option<&str>) -> serde_json::Value {
    let mut block = json!({"host": HOST, "port": 6379});
    if let Some(prefix) = key_prefix {
        block["keyPrefix"] = json!(prefix);
    }
    block
}

/// The link's served toolset, through the same dispatch and governance as the server uses.
fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "cache",
        namespace: "shop",
        spec,
        credentials,
    };
    link::build(&ctx, "valkey").unwrap()
}

/// The backend toolset itself (all tools, no governance), for the compliance harness.
fn backend(spec: &McpLinkSpec) -> Arc<dyn Toolset> {
    let credentials = Credentials::default();
    let ctx = LinkContext {
        name: "cache",
        namespace: "shop",
        spec,
        credentials: &credentials,
    };
    super::toolset(&ctx, spec.valkey.as_ref().unwrap()).unwrap()
}

fn args(value: serde_json::Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

async fn call(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> CallToolResult {
    toolset
        .call(tool, args(value), &CallContext::new("test"))
        .await
}

/// A call that must succeed; returns its structured content.
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

/// A call that must fail; returns its message.
async fn fails(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> String {
    let result = call(toolset, tool, value).await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{tool} succeeded: {text}");
    text
}

/// A plain client for setting up and checking data behind the tools' back.
struct Redis(fred::clients::Client);

impl Redis {
    async fn connect() -> Self {
        let client = Builder::from_config(Config::from_url("redis://127.0.0.1:6379").unwrap())
            .build()
            .unwrap();
        client.init().await.unwrap();
        Self(client)
    }

    async fn cmd(&self, name: &'static str, args: Vec<Value>) -> Value {
        self.0
            .custom(
                CustomCommand::new_static(name, ClusterHash::FirstKey, false),
                args,
            )
            .await
            .unwrap()
    }

    async fn exists(&self, key: &str) -> bool {
        self.cmd("EXISTS", vec![key.into()]).await.as_i64() == Some(1)
    }

    /// Deletes every key under `prefix`.
    async fn clean(&self, prefix: &str) {
        let mut cursor = "0".to_owned();
        loop {
            let reply = self
                .cmd(
                    "SCAN",
                    vec![
                        cursor.as_str().into(),
                        "MATCH".into(),
                        format!("{prefix}*").into(),
                        "COUNT".into(),
                        1000.into(),
                    ],
                )
                .await
                .into_array();
            cursor = reply[0].as_string().unwrap();
            let keys = reply[1].clone().into_array();
            if !keys.is_empty() {
                self.cmd("DEL", keys).await;
            }
            if cursor == "0" {
                break;
            }
        }
    }
}

/// Deletes a test's keys (and its ACL user) when the test ends, whether it passed or not.
struct Cleanup {
    prefixes: Vec<String>,
    acl_user: Option<String>,
}

impl Cleanup {
    fn keys(prefixes: &[&str]) -> Self {
        Self {
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            acl_user: None,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefixes = std::mem::take(&mut self.prefixes);
        let acl_user = self.acl_user.take();
        // The test's own runtime may be unwinding: clean up on a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let redis = Redis::connect().await;
                for prefix in &prefixes {
                    redis.clean(prefix).await;
                }
                if let Some(user) = acl_user {
                    redis.cmd("ACL", vec!["DELUSER".into(), user.into()]).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn valkey_tools_answer_against_a_real_server() {
    let prefix = unique("happy");
    let _cleanup = Cleanup::keys(&[&prefix]);
    let redis = Redis::connect().await;
    let k = |name: &str| format!("{prefix}{name}");
    redis
        .cmd("SET", vec![k("greeting").into(), "hello".into()])
        .await;
    redis
        .cmd(
            "RPUSH",
            vec![k("list").into(), "a".into(), "b".into(), "c".into()],
        )
        .await;
    redis
        .cmd("SADD", vec![k("set").into(), "x".into(), "y".into()])
        .await;
    redis
        .cmd(
            "ZADD",
            vec![
                k("zset").into(),
                "1.5".into(),
                "low".into(),
                "9".into(),
                "high".into(),
            ],
        )
        .await;
    redis
        .cmd(
            "HSET",
            vec![
                k("hash").into(),
                "name".into(),
                "ada".into(),
                "lang".into(),
                "rust".into(),
            ],
        )
        .await;
    redis
        .cmd(
            "XADD",
            vec![
                k("stream").into(),
                "*".into(),
                "event".into(),
                "login".into(),
            ],
        )
        .await;
    let spec = spec(local(None), true, None);
    let valkey = served(&spec, &Credentials::default());
    let v = valkey.as_ref();

    let info = ok(v, "valkey_info", json!({"section": "server"})).await;
    assert!(
        info["sections"]["server"]["redis_version"].is_string(),
        "{info}"
    );
    let dbsize = ok(v, "valkey_dbsize", json!({})).await;
    assert!(dbsize["keys"].as_i64().unwrap() >= 6, "{dbsize}");

    let string = ok(v, "valkey_get", json!({"key": k("greeting")})).await;
    assert_eq!(string["type"], "string");
    assert_eq!(string["value"], "hello");
    assert_eq!(string["length"], 5);
    assert_eq!(string["truncated"], false);

    let list = ok(v, "valkey_get", json!({"key": k("list")})).await;
    assert_eq!(list["elements"], json!(["a", "b", "c"]));
    assert_eq!(list["length"], 3);
    let set = ok(v, "valkey_get", json!({"key": k("set")})).await;
    let members: BTreeSet<&str> = set["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(members, BTreeSet::from(["x", "y"]));
    let zset = ok(v, "valkey_get", json!({"key": k("zset")})).await;
    assert_eq!(
        zset["elements"],
        json!([{"member": "low", "score": 1.5}, {"member": "high", "score": 9.0}])
    );
    let stream = ok(v, "valkey_get", json!({"key": k("stream")})).await;
    assert_eq!(stream["elements"][0]["fields"], json!({"event": "login"}));
    let hash_by_get = ok(v, "valkey_get", json!({"key": k("hash")})).await;
    assert_eq!(hash_by_get["length"], 2);

    let hash = ok(v, "valkey_hgetall", json!({"key": k("hash")})).await;
    assert_eq!(hash["fields"], json!({"lang": "rust", "name": "ada"}));
    assert_eq!(hash["field_count"], 2);
    let narrowed = ok(
        v,
        "valkey_hgetall",
        json!({"key": k("hash"), "pattern": "na*"}),
    )
    .await;
    assert_eq!(narrowed["fields"], json!({"name": "ada"}));
    let not_hash = fails(v, "valkey_hgetall", json!({"key": k("list")})).await;
    assert!(not_hash.contains("is a list, not a hash"), "{not_hash}");
    let missing = fails(v, "valkey_get", json!({"key": k("nope")})).await;
    assert!(missing.contains("does not exist"), "{missing}");

    let described = ok(v, "valkey_type_and_ttl", json!({"key": k("list")})).await;
    assert_eq!(
        described,
        json!({"key": k("list"), "exists": true, "type": "list", "ttl_seconds": null, "length": 3})
    );
    let absent = ok(v, "valkey_type_and_ttl", json!({"key": k("nope")})).await;
    assert_eq!(absent["exists"], false);

    // Writes, with and without a TTL.
    ok(
        v,
        "valkey_set",
        json!({"key": k("session"), "value": "token", "ttl_seconds": 120}),
    )
    .await;
    let session = ok(v, "valkey_type_and_ttl", json!({"key": k("session")})).await;
    let ttl = session["ttl_seconds"].as_i64().unwrap();
    assert!((1..=120).contains(&ttl), "{session}");
    let raw_ttl = redis
        .cmd("TTL", vec![k("session").into()])
        .await
        .as_i64()
        .unwrap();
    assert!((1..=120).contains(&raw_ttl));
    ok(
        v,
        "valkey_set",
        json!({"key": k("session"), "value": "renewed"}),
    )
    .await;
    let session = ok(v, "valkey_type_and_ttl", json!({"key": k("session")})).await;
    assert_eq!(session["ttl_seconds"], serde_json::Value::Null);
    assert_eq!(
        redis
            .cmd("GET", vec![k("session").into()])
            .await
            .as_string(),
        Some("renewed".to_owned())
    );
    let bad_ttl = fails(
        v,
        "valkey_set",
        json!({"key": k("x"), "value": "v", "ttl_seconds": 0}),
    )
    .await;
    assert!(bad_ttl.contains("ttl_seconds"), "{bad_ttl}");

    let deleted = ok(
        v,
        "valkey_delete",
        json!({"keys": [k("session"), k("greeting"), k("nope")]}),
    )
    .await;
    assert_eq!(deleted, json!({"requested": 3, "deleted": 2}));
    assert!(!redis.exists(&k("session")).await);
    assert!(!redis.exists(&k("greeting")).await);
}

#[tokio::test]
async fn scan_paginates_with_a_cursor() {
    let prefix = unique("scan");
    let _cleanup = Cleanup::keys(&[&prefix]);
    let redis = Redis::connect().await;
    for i in 0..25 {
        redis
            .cmd("SET", vec![format!("{prefix}{i:02}").into(), i.into()])
            .await;
    }
    redis
        .cmd("EXPIRE", vec![format!("{prefix}07").into(), 300.into()])
        .await;
    let spec = spec(local(None), false, Some(10));
    let valkey = served(&spec, &Credentials::default());
    let pattern = format!("{prefix}*");

    let mut cursor = "0".to_owned();
    let mut seen = BTreeMap::new();
    let mut calls = 0;
    loop {
        let page = ok(
            valkey.as_ref(),
            "valkey_scan_keys",
            json!({"pattern": pattern, "cursor": cursor, "count": 1000}),
        )
        .await;
        calls += 1;
        let keys = page["keys"].as_array().unwrap();
        assert!(keys.len() <= 10, "maxRows is 10: {page}");
        for key in keys {
            seen.insert(
                key["key"].as_str().unwrap().to_owned(),
                (key["type"].clone(), key["ttl_seconds"].clone()),
            );
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["complete"] == true {
            assert_eq!(cursor, "0");
            break;
        }
        assert!(
            page["note"].as_str().unwrap().contains(&cursor),
            "the note says how to continue: {page}"
        );
        assert!(calls < 50, "the scan does not finish");
    }
    assert!(calls >= 3, "25 keys at 10 per call take several calls");
    assert_eq!(
        seen.len(),
        25,
        "every key is returned once the scan completes"
    );
    let (key_type, ttl) = &seen[&format!("{prefix}07")];
    assert_eq!(key_type, "string");
    assert!((1..=300).contains(&ttl.as_i64().unwrap()));
    assert_eq!(seen[&format!("{prefix}08")].1, serde_json::Value::Null);

    // Without details only the names come back; a bad cursor is named.
    let bare = ok(
        valkey.as_ref(),
        "valkey_scan_keys",
        json!({"pattern": pattern, "details": false, "limit": 3}),
    )
    .await;
    assert!(bare["keys"].as_array().unwrap().len() <= 3);
    assert!(bare["keys"][0].get("type").is_none(), "{bare}");
    let bad = fails(
        valkey.as_ref(),
        "valkey_scan_keys",
        json!({"cursor": "abc"}),
    )
    .await;
    assert!(bad.contains("`cursor`"), "{bad}");
}

#[tokio::test]
async fn key_prefix_confines_every_tool() {
    let inside = unique("inside");
    let outside = unique("outside");
    let _cleanup = Cleanup::keys(&[&inside, &outside]);
    let redis = Redis::connect().await;
    for i in 0..3 {
        redis
            .cmd("SET", vec![format!("{inside}{i}").into(), "in".into()])
            .await;
    }
    redis
        .cmd("SET", vec![format!("{outside}secret").into(), "out".into()])
        .await;
    redis
        .cmd(
            "HSET",
            vec![format!("{outside}hash").into(), "f".into(), "v".into()],
        )
        .await;
    let spec = spec(local(Some(&inside)), true, None);
    let valkey = served(&spec, &Credentials::default());
    let v = valkey.as_ref();

    // A scan without a pattern sees only the prefix, to the end of the database.
    let mut cursor = "0".to_owned();
    let mut keys = BTreeSet::new();
    loop {
        let page = ok(
            v,
            "valkey_scan_keys",
            json!({"cursor": cursor, "count": 10000}),
        )
        .await;
        for key in page["keys"].as_array().unwrap() {
            keys.insert(key["key"].as_str().unwrap().to_owned());
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["complete"] == true {
            break;
        }
    }
    let expected: BTreeSet<String> = (0..3).map(|i| format!("{inside}{i}")).collect();
    assert_eq!(keys, expected);
    let narrowed = ok(
        v,
        "valkey_scan_keys",
        json!({"pattern": format!("{inside}1*")}),
    )
    .await;
    assert!(
        narrowed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["key"] == format!("{inside}1"))
    );

    let secret = format!("{outside}secret");
    for (tool, call_args) in [
        (
            "valkey_scan_keys",
            json!({"pattern": format!("{outside}*")}),
        ),
        ("valkey_scan_keys", json!({"pattern": "*"})),
        ("valkey_get", json!({"key": secret})),
        ("valkey_type_and_ttl", json!({"key": secret})),
        ("valkey_hgetall", json!({"key": format!("{outside}hash")})),
        ("valkey_set", json!({"key": secret, "value": "overwritten"})),
        (
            "valkey_delete",
            json!({"keys": [format!("{inside}0"), secret]}),
        ),
    ] {
        let message = fails(v, tool, call_args).await;
        assert!(
            message.contains("outside this link") && message.contains(&inside),
            "{tool}: {message}"
        );
        assert!(
            !message.contains("\"out\""),
            "{tool} leaked a value: {message}"
        );
    }
    // Nothing outside was changed, and the refused delete deleted nothing inside either.
    assert_eq!(
        redis
            .cmd("GET", vec![secret.as_str().into()])
            .await
            .as_string(),
        Some("out".to_owned())
    );
    assert!(redis.exists(&format!("{inside}0")).await);
    // Inside the prefix the tools work.
    ok(
        v,
        "valkey_set",
        json!({"key": format!("{inside}new"), "value": "v"}),
    )
    .await;
    ok(v, "valkey_get", json!({"key": format!("{inside}new")})).await;
}

#[tokio::test]
async fn long_values_and_many_elements_are_truncated() {
    let prefix = unique("trunc");
    let _cleanup = Cleanup::keys(&[&prefix]);
    let redis = Redis::connect().await;
    let big = "é".repeat(5000); // 10,000 bytes of two-byte characters
    redis
        .cmd(
            "SET",
            vec![format!("{prefix}big").into(), big.as_str().into()],
        )
        .await;
    let mut hset: Vec<Value> = vec![format!("{prefix}wide").into()];
    for i in 0..30 {
        hset.push(format!("field{i:02}").into());
        hset.push(format!("value{i}").into());
    }
    redis.cmd("HSET", hset).await;
    let mut rpush: Vec<Value> = vec![format!("{prefix}long").into()];
    rpush.extend((0..40).map(|i| Value::from(format!("item{i}"))));
    redis.cmd("RPUSH", rpush).await;
    let spec = spec(local(None), false, Some(10));
    let valkey = served(&spec, &Credentials::default());
    let v = valkey.as_ref();

    let value = ok(v, "valkey_get", json!({"key": format!("{prefix}big")})).await;
    let shown = value["value"].as_str().unwrap();
    assert!(shown.len() <= super::FIELD_BYTES, "{}", shown.len());
    assert!(
        shown.chars().all(|c| c == 'é'),
        "cut at a character boundary"
    );
    assert_eq!(value["length"], 10_000);
    assert_eq!(value["truncated"], true);
    assert!(value["note"].as_str().unwrap().contains("10000 bytes"));

    let hash = ok(v, "valkey_hgetall", json!({"key": format!("{prefix}wide")})).await;
    assert_eq!(hash["fields"].as_object().unwrap().len(), 10);
    assert_eq!(hash["field_count"], 30);
    assert_eq!(hash["truncated"], true);
    assert!(hash["note"].as_str().unwrap().contains("pattern"), "{hash}");

    let list = ok(
        v,
        "valkey_get",
        json!({"key": format!("{prefix}long"), "limit": 5}),
    )
    .await;
    assert_eq!(list["elements"].as_array().unwrap().len(), 5);
    assert_eq!(list["length"], 40);
    assert_eq!(list["truncated"], true);

    compliance::check_output_capped(
        v,
        "valkey_get",
        args(json!({"key": format!("{prefix}big")})),
        1024,
    )
    .await;
    compliance::check_output_capped(
        v,
        "valkey_hgetall",
        args(json!({"key": format!("{prefix}wide")})),
        64,
    )
    .await;
}

#[tokio::test]
async fn valkey_passes_the_compliance_harness() {
    let spec = spec(local(None), true, None);
    let toolset = backend(&spec);
    compliance::check_annotations(toolset.as_ref());
    compliance::check_write_gating(toolset.clone(), "valkey").await;
    compliance::check_bad_arguments(toolset.as_ref()).await;

    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "valkey_info",
            "valkey_dbsize",
            "valkey_scan_keys",
            "valkey_get",
            "valkey_type_and_ttl",
            "valkey_hgetall",
            "valkey_set",
            "valkey_delete",
        ]
    );
    assert!(names.iter().all(|n| !n.contains("flush")), "{names:?}");
    let writes: Vec<&str> = toolset
        .tools()
        .iter()
        .filter(|d| d.access() == Access::Write)
        .map(|d| d.name())
        .collect();
    assert_eq!(writes, ["valkey_set", "valkey_delete"]);
}

#[tokio::test]
async fn read_tools_send_only_commands_the_server_flags_as_not_writing() {
    let redis = Redis::connect().await;
    for cmd in Read::ALL {
        let info = redis
            .cmd("COMMAND", vec!["INFO".into(), cmd.name().into()])
            .await
            .into_array();
        let entry = info[0].clone().into_array();
        assert!(
            !entry.is_empty(),
            "{} is not a command of this server",
            cmd.name()
        );
        let flags: Vec<String> = entry[2]
            .clone()
            .into_array()
            .iter()
            .filter_map(Value::as_string)
            .collect();
        assert!(
            !flags.iter().any(|f| f == "write"),
            "{} writes: {flags:?}",
            cmd.name()
        );
    }
}

#[tokio::test]
async fn an_unreachable_server_is_listed_and_explained() {
    let spec = spec(json!({"host": HOST, "port": 1}), true, None);
    let valkey = served(&spec, &Credentials::default());
    assert_eq!(
        valkey.tools().len(),
        8,
        "tools are listed without a connection"
    );
    for _ in 0..2 {
        let message = fails(valkey.as_ref(), "valkey_dbsize", json!({})).await;
        assert!(
            message.starts_with("cannot reach valkey at 127.0.0.1:1: ")
                && message.ends_with("check host, port and NetworkPolicy"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_tls_link_builds_offline_and_explains_a_failed_handshake() {
    // The TLS configuration names its crypto provider itself, so no process-level provider is
    // needed; the server on 6379 speaks plain RESP, so the handshake fails.
    let spec = spec(
        json!({"host": HOST, "port": 6379, "tls": true}),
        false,
        None,
    );
    let valkey = served(&spec, &Credentials::default());
    assert_eq!(valkey.tools().len(), 6);
    let message = fails(valkey.as_ref(), "valkey_dbsize", json!({})).await;
    assert!(message.contains("valkey at 127.0.0.1:6379"), "{message}");
}

#[tokio::test]
async fn wrong_credentials_are_named_and_never_shown() {
    // An ACL user of its own, so the server's default user (and every other test) is
    // untouched.
    let prefix = unique("acl");
    let user = prefix.trim_end_matches(':').replace(':', "-");
    let right = "r1ght-Pa55-for-valkey-test";
    let wrong = "wr0ng-Pa55-for-valkey-test";
    let _cleanup = Cleanup {
        prefixes: vec![prefix.clone()],
        acl_user: Some(user.clone()),
    };
    let redis = Redis::connect().await;
    redis
        .cmd(
            "ACL",
            vec![
                "SETUSER".into(),
                user.as_str().into(),
                "on".into(),
                format!(">{right}").into(),
                format!("~{prefix}*").into(),
                "+@all".into(),
            ],
        )
        .await;
    let with = |password: &str| {
        Credentials::new(BTreeMap::from([
            ("username".to_owned(), user.clone()),
            ("password".to_owned(), password.to_owned()),
        ]))
    };
    let spec = spec(local(Some(&prefix)), true, None);

    let refused = with(wrong);
    let valkey = served(&spec, &refused);
    let mut results = Vec::new();
    for (tool, call_args) in [
        ("valkey_dbsize", json!({})),
        ("valkey_get", json!({"key": format!("{prefix}k")})),
        (
            "valkey_set",
            json!({"key": format!("{prefix}k"), "value": "v"}),
        ),
        ("valkey_info", json!({})),
    ] {
        let result = call(valkey.as_ref(), tool, call_args).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(
            text.contains("refused the credentials of link shop/cache")
                && text.contains("`username` and `password`"),
            "{tool}: {text}"
        );
        results.push(result);
    }
    compliance::check_no_secrets(&results, &refused);

    // The right password works, and its results do not show it either.
    let accepted = with(right);
    let valkey = served(&spec, &accepted);
    let set = call(
        valkey.as_ref(),
        "valkey_set",
        json!({"key": format!("{prefix}k"), "value": "v"}),
    )
    .await;
    assert_ne!(set.is_error, Some(true), "{}", result_text(&set));
    let scan = call(valkey.as_ref(), "valkey_scan_keys", json!({})).await;
    assert_ne!(scan.is_error, Some(true), "{}", result_text(&scan));
    compliance::check_no_secrets(&[set, scan], &accepted);

    // A password for a server whose default user has none: whatever the server makes of it,
    // no text shows it.
    let stray = Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        "stray-Pa55-for-valkey-test".to_owned(),
    )]));
    let valkey = served(&self::spec(local(None), false, None), &stray);
    let results = vec![
        call(valkey.as_ref(), "valkey_dbsize", json!({})).await,
        call(
            valkey.as_ref(),
            "valkey_info",
            json!({"section": "clients"}),
        )
        .await,
    ];
    compliance::check_no_secrets(&results, &stray);
}

#[tokio::test]
async fn a_dropped_connection_is_reopened() {
    let redis = Redis::connect().await;
    let spec = spec(local(None), false, None);
    let credentials = Credentials::default();
    let namespace = format!("reconnect-{}", std::process::id());
    let ctx = LinkContext {
        name: "reconnect",
        namespace: &namespace,
        spec: &spec,
        credentials: &credentials,
    };
    let valkey = link::build(&ctx, "valkey").unwrap();
    ok(valkey.as_ref(), "valkey_dbsize", json!({})).await;

    let name = format!("linkmcp:{}:{}", ctx.namespace, ctx.name);
    let clients = redis.cmd("CLIENT", vec!["LIST".into()]).await;
    let id = clients
        .as_string()
        .unwrap()
        .lines()
        .find(|line| line.contains(&format!(" name={name} ")))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .expect("the toolset's connection is named in CLIENT LIST");
    let killed = redis
        .cmd(
            "CLIENT",
            vec!["KILL".into(), "ID".into(), id.as_str().into()],
        )
        .await;
    assert_eq!(killed.as_i64(), Some(1));

    let again = ok(valkey.as_ref(), "valkey_dbsize", json!({})).await;
    assert!(again["keys"].is_i64());
}

#[test]
fn the_component_shows_where_not_how_to_log_in() {
    let spec = spec(local(Some("app:")), false, None);
    let credentials = Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        "hunter2-valkey".to_owned(),
    )]));
    let ctx = LinkContext {
        name: "cache",
        namespace: "shop",
        spec: &spec,
        credentials: &credentials,
    };
    let component = super::component(&ctx);
    assert_eq!(component.name, "cache");
    assert_eq!(component.link_type, "valkey");
    assert_eq!(component.kind, "cache");
    assert_eq!(component.endpoint["host"], HOST);
    assert_eq!(component.endpoint["port"], "6379");
    assert_eq!(component.endpoint["keyPrefix"], "app:");
    assert!(
        !serde_json::to_string(&component)
            .unwrap()
            .contains("hunter2")
    );
}
