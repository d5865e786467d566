//! The s3 toolset against a real S3 server (moto's, `moto_server`) that the tests start on a
//! free loopback port. `scripts/test-services.sh` installs it; without it the tests fail and say
//! so. Each test works in buckets of its own, named uniquely per run.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials as AwsCredentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use linkmcp_api::McpLinkSpec;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::json;

use crate::compliance::{self, result_text};
use crate::credentials::Credentials;
use crate::link::{self, LinkContext};
use crate::{CallContext, Toolset};

const ACCESS_KEY: &str = "AKIALINKMCPTEST00001";
const SECRET_KEY: &str = "linkmcp-test-secret-Zq8vW2xK9pLm4Rt7";

/// A running `moto_server`, stopped by a watchdog when the test process exits.
struct Server {
    endpoint: String,
}

/// Where the server binary is: on PATH, or where `scripts/test-services.sh` installs it.
fn moto_binary() -> PathBuf {
    let name = "moto_server";
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/linkmcp/bin").join(name);
    assert!(
        cached.is_file(),
        "the s3 tests need a real S3 server and `moto_server` was found neither on PATH nor \
         in ~/.cache/linkmcp/bin: run scripts/test-services.sh (it installs PyPI `moto[server]`)"
    );
    cached
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `moto_server` with `env` and waits until it answers.
fn start(env: &[(&str, &str)]) -> Server {
    let binary = moto_binary();
    let port = free_port();
    // The watchdog shell stops the server when this process is gone, so no server outlives
    // the test run.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & srv=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; \
         kill $srv 2>/dev/null",
        pid = std::process::id()
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(&binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut watchdog = command.spawn().unwrap();
    // Reaped when it ends, at the latest with the test process.
    std::thread::spawn(move || watchdog.wait());
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&url).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not start listening on {url} within 60 s",
            binary.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        endpoint: format!("http://{url}"),
    }
}

/// The shared server (no signature checks).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start(&[]))
}

/// A server that checks every request's signature against the access keys it knows.
fn checking_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]))
}

/// A bucket name no other test or run uses.
fn unique(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t{}-{nanos}-{n}-{name}", std::process::id())
}

fn credentials() -> Credentials {
    Credentials::new(BTreeMap::from([
        ("accessKeyId".to_owned(), ACCESS_KEY.to_owned()),
        ("secretAccessKey".to_owned(), SECRET_KEY.to_owned()),
    ]))
}

fn spec(endpoint: &str, bucket: Option<&str>, write: bool, max_rows: Option<i32>) -> McpLinkSpec {
    let mut block = json!({"endpoint": endpoint, "region": "us-east-1", "pathStyle": true});
    if let Some(bucket) = bucket {
        block["bucket"] = json!(bucket);
    }
    let mut spec = json!({"serverRef": {"name": "main"}, "s3": block, "writeAccess": write});
    if let Some(n) = max_rows {
        spec["limits"] = json!({"maxRows": n, "timeoutSeconds": 10});
    }
    serde_json::from_value(spec).unwrap()
}

/// The link's served toolset, through the same dispatch and governance as the server uses.
fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "objects",
        namespace: "shop",
        spec,
        credentials,
    };
    link::build(&ctx, "s3").unwrap()
}

/// The backend toolset itself (all tools, no governance), for the compliance harness.
fn backend(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let ctx = LinkContext {
        name: "objects",
        namespace: "shop",
        spec,
        credentials,
    };
    super::toolset(&ctx, spec.s3.as_ref().unwrap()).unwrap()
}

fn args(value: serde_json::Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

async fn call_with(
    toolset: &dyn Toolset,
    tool: &str,
    value: serde_json::Value,
    ctx: &CallContext,
) -> CallToolResult {
    toolset.call(tool, args(value), ctx).await
}

async fn call(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> CallToolResult {
    call_with(toolset, tool, value, &CallContext::new("test")).await
}

/// A call that must succeed; returns its structured content and text.
async fn ok(
    toolset: &dyn Toolset,
    tool: &str,
    value: serde_json::Value,
) -> (serde_json::Value, String) {
    let result = call(toolset, tool, value).await;
    let text = result_text(&result);
    assert_ne!(result.is_error, Some(true), "{tool} failed: {text}");
    let content = result.content[0].as_text().unwrap().text.clone();
    (result.structured_content.unwrap(), content)
}

/// A call that must fail; returns its message.
async fn fails(toolset: &dyn Toolset, tool: &str, value: serde_json::Value) -> String {
    let result = call(toolset, tool, value).await;
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{tool} succeeded: {text}");
    text
}

/// A plain client for setting up and checking data behind the tools' back.
fn admin(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(AwsCredentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    client.create_bucket().bucket(bucket).send().await.unwrap();
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

/// Every key of `bucket`, listed behind the tools' back.
async fn all_keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, i64)> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(
            out.contents()
                .iter()
                .map(|o| (o.key().unwrap().to_owned(), o.size().unwrap())),
        );
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

#[tokio::test]
async fn lists_buckets_and_objects_by_prefix_folder_and_page() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("list");
    create_bucket(&client, &bucket).await;
    for key in [
        "a.txt",
        "logs/1.log",
        "logs/2.log",
        "logs/3.log",
        "data/x/y.csv",
    ] {
        put(&client, &bucket, key, b"hello".to_vec()).await;
    }
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, None, false, Some(2)), &creds);

    let (buckets, text) = ok(tools.as_ref(), "s3_list_buckets", json!({})).await;
    let names: Vec<&str> = buckets["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    // maxRows 2 caps the listing; the total is still reported.
    assert!(names.len() <= 2, "{text}");
    assert!(buckets["count"].as_u64().unwrap() >= 1);

    // Folders: one level under the root.
    let wide = served(&spec(&s3.endpoint, None, false, None), &creds);
    let (page, text) = ok(
        wide.as_ref(),
        "s3_list_objects",
        json!({"bucket": bucket, "delimiter": "/"}),
    )
    .await;
    assert_eq!(page["commonPrefixes"], json!(["data/", "logs/"]), "{text}");
    assert_eq!(page["objects"][0]["key"], "a.txt");
    assert_eq!(page["objects"][0]["size"], 5);
    assert!(page["objects"][0]["etag"].as_str().unwrap().len() >= 32);
    assert!(page["objects"][0]["lastModified"].is_string());
    assert!(text.contains("logs/\t(folder)"), "{text}");

    // A prefix, paged by the link's maxRows (2) with the continuation token.
    let (first, text) = ok(
        tools.as_ref(),
        "s3_list_objects",
        json!({"bucket": bucket, "prefix": "logs/"}),
    )
    .await;
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&first), ["logs/1.log", "logs/2.log"]);
    assert_eq!(first["isTruncated"], true);
    assert!(text.contains("nextContinuationToken"), "{text}");
    let token = first["nextContinuationToken"].as_str().unwrap();
    let (second, _) = ok(
        tools.as_ref(),
        "s3_list_objects",
        json!({"bucket": bucket, "prefix": "logs/", "continuation_token": token}),
    )
    .await;
    assert_eq!(keys(&second), ["logs/3.log"]);
    assert_eq!(second["isTruncated"], false);
    assert!(second["nextContinuationToken"].is_null());

    // max_keys cannot exceed the link's maxRows.
    let (capped, _) = ok(
        tools.as_ref(),
        "s3_list_objects",
        json!({"bucket": bucket, "max_keys": 1000}),
    )
    .await;
    assert_eq!(capped["objects"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_page_cut_by_the_output_limit_continues_after_its_last_key() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("cut");
    create_bucket(&client, &bucket).await;
    let long = "k".repeat(200);
    for i in 0..20 {
        put(&client, &bucket, &format!("{long}{i:02}"), b"x".to_vec()).await;
    }
    let creds = credentials();
    let tools = backend(&spec(&s3.endpoint, None, false, None), &creds);
    let ctx = CallContext::new("test").with_max_output_bytes(2048);
    let mut seen = Vec::new();
    let mut start_after: Option<String> = None;
    for _ in 0..20 {
        let mut request = json!({"bucket": bucket});
        if let Some(after) = &start_after {
            request["start_after"] = json!(after);
        }
        let result = call_with(tools.as_ref(), "s3_list_objects", request, &ctx).await;
        let text = result.content[0].as_text().unwrap().text.clone();
        assert!(text.len() <= 2048, "{} bytes", text.len());
        let page = result.structured_content.unwrap();
        for o in page["objects"].as_array().unwrap() {
            seen.push(o["key"].as_str().unwrap().to_owned());
        }
        match page["nextStartAfter"].as_str() {
            Some(after) => {
                assert!(text.contains("truncated"), "{text}");
                start_after = Some(after.to_owned());
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("{long}{i:02}")).collect();
    assert_eq!(seen, expected, "every key exactly once, in order");
}

#[tokio::test]
async fn gets_object_metadata_and_a_bounded_preview() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("get");
    create_bucket(&client, &bucket).await;
    client
        .put_object()
        .bucket(&bucket)
        .key("docs/readme.md")
        .content_type("text/markdown")
        .metadata("owner", "team-a")
        .body(ByteStream::from("# Title\n".repeat(1000).into_bytes()))
        .send()
        .await
        .unwrap();
    put(
        &client,
        &bucket,
        "bin/blob",
        vec![0, 159, 146, 150, 255, 1, 2],
    )
    .await;
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, None, false, None), &creds);

    let (meta, text) = ok(
        tools.as_ref(),
        "s3_get_object",
        json!({"bucket": bucket, "key": "docs/readme.md", "preview_bytes": 16}),
    )
    .await;
    assert_eq!(meta["size"], 8000);
    assert_eq!(meta["contentType"], "text/markdown");
    assert_eq!(meta["metadata"], json!({"owner": "team-a"}));
    assert!(meta["etag"].as_str().unwrap().len() >= 32);
    assert!(meta["lastModified"].is_string());
    assert_eq!(meta["preview"]["encoding"], "text");
    assert_eq!(meta["preview"]["data"], "# Title\n# Title\n");
    assert_eq!(meta["preview"]["complete"], false);
    assert!(text.contains("owner=team-a"), "{text}");

    let (blob, _) = ok(
        tools.as_ref(),
        "s3_get_object",
        json!({"bucket": bucket, "key": "bin/blob"}),
    )
    .await;
    assert_eq!(blob["preview"]["encoding"], "base64");
    assert_eq!(blob["preview"]["data"], "AJ+Slv8BAg==");
    assert_eq!(blob["preview"]["complete"], true);
}

#[tokio::test]
async fn reads_text_by_range_and_says_where_to_continue() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("read");
    create_bucket(&client, &bucket).await;
    // 400 KB of numbered lines, much more than one call may return.
    let body: String = (0..20_000).map(|i| format!("line {i:06} é\n")).collect();
    put(&client, &bucket, "big.log", body.clone().into_bytes()).await;
    put(&client, &bucket, "small.txt", b"just this".to_vec()).await;
    put(&client, &bucket, "empty.txt", Vec::new()).await;
    put(
        &client,
        &bucket,
        "image.bin",
        vec![0x89, b'P', b'N', b'G', 0, 0, 0],
    )
    .await;
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, Some(&bucket), false, None), &creds);

    let (small, text) = ok(tools.as_ref(), "s3_read_text", json!({"key": "small.txt"})).await;
    assert_eq!(small["text"], "just this");
    assert_eq!(small["truncated"], false);
    assert!(!text.contains("truncated"), "{text}");

    let ctx = CallContext::new("test").with_max_output_bytes(4096);
    let mut offset = 0u64;
    let mut read = String::new();
    let mut calls = 0;
    // Read a stretch of the big object in pieces, each within the cap.
    while read.len() < 12_000 {
        let result = call_with(
            tools.as_ref(),
            "s3_read_text",
            json!({"key": "big.log", "offset": offset}),
            &ctx,
        )
        .await;
        let text = result.content[0].as_text().unwrap().text.clone();
        assert!(text.len() <= 4096, "{} bytes of text", text.len());
        assert!(text.contains("[truncated:"), "{text}");
        let part = result.structured_content.unwrap();
        assert_eq!(part["size"], body.len());
        assert_eq!(part["offset"], offset);
        read.push_str(part["text"].as_str().unwrap());
        offset = part["nextOffset"].as_u64().unwrap();
        calls += 1;
    }
    assert!(calls >= 3);
    assert_eq!(read, body[..read.len()]);

    // An offset inside a two-byte character starts at the next whole one.
    let inside = body.find('é').unwrap() + 1;
    let (part, _) = ok(
        tools.as_ref(),
        "s3_read_text",
        json!({"key": "big.log", "offset": inside, "max_bytes": 30}),
    )
    .await;
    assert_eq!(part["offset"], inside + 1);
    assert!(part["text"].as_str().unwrap().starts_with("\nline 000001"));

    let (end, _) = ok(
        tools.as_ref(),
        "s3_read_text",
        json!({"key": "big.log", "offset": body.len() - 4}),
    )
    .await;
    assert_eq!(end["text"], " é\n");
    assert_eq!(end["truncated"], false);

    let (empty, _) = ok(tools.as_ref(), "s3_read_text", json!({"key": "empty.txt"})).await;
    assert_eq!(empty["text"], "");
    let past = fails(
        tools.as_ref(),
        "s3_read_text",
        json!({"key": "small.txt", "offset": 100}),
    )
    .await;
    assert!(
        past.contains("past the end") && past.contains("9 bytes"),
        "{past}"
    );
    let binary = fails(tools.as_ref(), "s3_read_text", json!({"key": "image.bin"})).await;
    assert!(
        binary.contains("not UTF-8 text") && binary.contains("s3_get_object"),
        "{binary}"
    );
}

#[tokio::test]
async fn counts_a_bucket_and_says_when_the_count_is_partial() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("stats");
    create_bucket(&client, &bucket).await;
    // 1005 objects: more than one listing page of 1000.
    futures::stream::iter(0..1005)
        .map(|i| {
            let client = client.clone();
            let bucket = bucket.clone();
            async move {
                let size = if i == 77 { 5000 } else { 10 };
                put(&client, &bucket, &format!("o/{i:05}"), vec![b'a'; size]).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    put(&client, &bucket, "other/x", vec![b'b'; 3]).await;
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, None, false, None), &creds);

    let (all, text) = ok(tools.as_ref(), "s3_bucket_stats", json!({"bucket": bucket})).await;
    assert_eq!(all["objects"], 1006, "{text}");
    assert_eq!(all["totalBytes"], 1004 * 10 + 5000 + 3);
    assert_eq!(all["pages"], 2);
    assert_eq!(all["complete"], true);
    assert_eq!(all["largest"]["key"], "o/00077");
    assert!(!text.contains("partial"), "{text}");

    let (partial, text) = ok(
        tools.as_ref(),
        "s3_bucket_stats",
        json!({"bucket": bucket, "max_pages": 1}),
    )
    .await;
    assert_eq!(partial["objects"], 1000);
    assert_eq!(partial["complete"], false);
    assert!(
        text.contains("partial") && text.contains("at least 1000"),
        "{text}"
    );

    let (prefixed, _) = ok(
        tools.as_ref(),
        "s3_bucket_stats",
        json!({"bucket": bucket, "prefix": "other/"}),
    )
    .await;
    assert_eq!(prefixed["objects"], 1);
    assert_eq!(prefixed["totalBytes"], 3);
}

#[tokio::test]
async fn uploads_text_that_reads_back_and_reads_never_write() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("upload");
    create_bucket(&client, &bucket).await;
    put(&client, &bucket, "seed.txt", b"seed".to_vec()).await;
    let creds = credentials();
    let read_only = served(&spec(&s3.endpoint, None, false, None), &creds);
    let writable = served(&spec(&s3.endpoint, None, true, None), &creds);

    // Every read tool, then the bucket is as it was.
    let before = all_keys(&client, &bucket).await;
    for (tool, args) in [
        ("s3_list_buckets", json!({})),
        ("s3_list_objects", json!({"bucket": bucket})),
        (
            "s3_get_object",
            json!({"bucket": bucket, "key": "seed.txt"}),
        ),
        ("s3_read_text", json!({"bucket": bucket, "key": "seed.txt"})),
        ("s3_bucket_stats", json!({"bucket": bucket})),
    ] {
        ok(read_only.as_ref(), tool, args).await;
    }
    assert_eq!(all_keys(&client, &bucket).await, before);
    let refused = fails(
        read_only.as_ref(),
        "s3_upload_text",
        json!({"bucket": bucket, "key": "new.txt", "text": "no"}),
    )
    .await;
    assert!(!refused.is_empty());
    assert_eq!(all_keys(&client, &bucket).await, before);

    let text = "résumé: ok\n";
    let (put, message) = ok(
        writable.as_ref(),
        "s3_upload_text",
        json!({"bucket": bucket, "key": "notes/new.md", "text": text, "content_type": "text/markdown"}),
    )
    .await;
    assert_eq!(put["size"], text.len());
    assert!(message.starts_with("uploaded"), "{message}");
    let (back, _) = ok(
        writable.as_ref(),
        "s3_read_text",
        json!({"bucket": bucket, "key": "notes/new.md"}),
    )
    .await;
    assert_eq!(back["text"], text);
    assert_eq!(back["contentType"], "text/markdown");
    let (meta, _) = ok(
        writable.as_ref(),
        "s3_get_object",
        json!({"bucket": bucket, "key": "notes/new.md", "preview_bytes": 0}),
    )
    .await;
    assert_eq!(meta["etag"], put["etag"]);
    assert!(meta["preview"].is_null());
}

#[tokio::test]
async fn a_restricted_link_serves_only_its_bucket() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let mine = unique("mine");
    let other = unique("other");
    create_bucket(&client, &mine).await;
    create_bucket(&client, &other).await;
    put(&client, &mine, "m.txt", b"mine".to_vec()).await;
    put(&client, &other, "o.txt", b"other".to_vec()).await;
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, Some(&mine), true, None), &creds);

    let (buckets, _) = ok(tools.as_ref(), "s3_list_buckets", json!({})).await;
    assert_eq!(buckets["buckets"], json!([{"name": mine}]));
    let (page, _) = ok(tools.as_ref(), "s3_list_objects", json!({})).await;
    assert_eq!(page["objects"][0]["key"], "m.txt");
    for (tool, args) in [
        ("s3_list_objects", json!({"bucket": other})),
        ("s3_get_object", json!({"bucket": other, "key": "o.txt"})),
        ("s3_read_text", json!({"bucket": other, "key": "o.txt"})),
        ("s3_bucket_stats", json!({"bucket": other})),
        (
            "s3_upload_text",
            json!({"bucket": other, "key": "x.txt", "text": "x"}),
        ),
    ] {
        let message = fails(tools.as_ref(), tool, args).await;
        assert!(
            message.contains(&format!("only serves bucket `{mine}`")),
            "{tool}: {message}"
        );
    }
    assert_eq!(all_keys(&client, &other).await, [("o.txt".to_owned(), 5)]);

    // A link whose own bucket is gone says so.
    let gone = unique("gone");
    let tools = served(&spec(&s3.endpoint, Some(&gone), false, None), &creds);
    let message = fails(tools.as_ref(), "s3_list_buckets", json!({})).await;
    assert!(
        message.contains("does not exist") && message.contains(&gone),
        "{message}"
    );
}

#[tokio::test]
async fn missing_buckets_and_keys_say_what_exists() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("known");
    create_bucket(&client, &bucket).await;
    put(&client, &bucket, "reports/2024/may.csv", b"a,b".to_vec()).await;
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, None, false, None), &creds);
    let missing = unique("missing");

    for (tool, args) in [
        ("s3_list_objects", json!({"bucket": missing})),
        ("s3_get_object", json!({"bucket": missing, "key": "a"})),
        ("s3_read_text", json!({"bucket": missing, "key": "a"})),
        ("s3_bucket_stats", json!({"bucket": missing})),
    ] {
        let message = fails(tools.as_ref(), tool, args).await;
        assert!(
            message.contains(&format!("bucket `{missing}` does not exist"))
                && message.contains("buckets are:")
                && message.contains(&format!("`{bucket}`")),
            "{tool}: {message}"
        );
    }
    for tool in ["s3_get_object", "s3_read_text"] {
        let message = fails(
            tools.as_ref(),
            tool,
            json!({"bucket": bucket, "key": "reports/2024/june.csv"}),
        )
        .await;
        assert!(
            message.contains("`reports/2024/june.csv` does not exist")
                && message.contains("s3_list_objects with prefix `reports/2024/`"),
            "{tool}: {message}"
        );
    }
    let message = fails(tools.as_ref(), "s3_list_objects", json!({})).await;
    assert!(message.contains("`bucket` is required"), "{message}");
}

#[tokio::test]
async fn an_unreachable_endpoint_names_host_and_port() {
    let creds = credentials();
    let started = Instant::now();
    let tools = served(&spec("http://127.0.0.1:1", None, true, None), &creds);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "building waited on the network"
    );
    let mut results = Vec::new();
    for (tool, args) in [
        ("s3_list_buckets", json!({})),
        ("s3_list_objects", json!({"bucket": "b-unreachable"})),
        (
            "s3_read_text",
            json!({"bucket": "b-unreachable", "key": "k"}),
        ),
        (
            "s3_upload_text",
            json!({"bucket": "b-unreachable", "key": "k", "text": "t"}),
        ),
    ] {
        let result = call(tools.as_ref(), tool, args).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(
            text.contains("cannot reach S3 at 127.0.0.1:1") && text.contains("check"),
            "{tool}: {text}"
        );
        results.push(result);
    }
    compliance::check_no_secrets(&results, &creds);
}

#[tokio::test]
async fn refused_credentials_name_the_link_and_never_the_secret() {
    let s3 = checking_server();
    let creds = credentials();
    let tools = served(&spec(&s3.endpoint, None, true, None), &creds);
    let mut results = Vec::new();
    for (tool, args) in [
        ("s3_list_buckets", json!({})),
        ("s3_list_objects", json!({"bucket": "some-bucket"})),
        (
            "s3_get_object",
            json!({"bucket": "some-bucket", "key": "k"}),
        ),
        (
            "s3_upload_text",
            json!({"bucket": "some-bucket", "key": "k", "text": "t"}),
        ),
    ] {
        let result = call(tools.as_ref(), tool, args).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(
            text.contains("credentials of link shop/objects") && text.contains("Secret"),
            "{tool}: {text}"
        );
        results.push(result);
    }
    compliance::check_no_secrets(&results, &creds);
}

#[tokio::test]
async fn the_toolset_is_compliant() {
    let s3 = server();
    let client = admin(&s3.endpoint);
    let bucket = unique("compliance");
    create_bucket(&client, &bucket).await;
    put(
        &client,
        &bucket,
        "big.txt",
        "0123456789\n".repeat(10_000).into_bytes(),
    )
    .await;
    let creds = credentials();
    let spec = spec(&s3.endpoint, Some(&bucket), true, None);
    let tools = backend(&spec, &creds);

    compliance::check_annotations(tools.as_ref());
    compliance::check_write_gating(tools.clone(), "s3").await;
    compliance::check_bad_arguments(tools.as_ref()).await;
    compliance::check_output_capped(
        tools.as_ref(),
        "s3_read_text",
        args(json!({"key": "big.txt"})),
        1024,
    )
    .await;
    compliance::check_output_capped(
        tools.as_ref(),
        "s3_get_object",
        args(json!({"key": "big.txt", "preview_bytes": 65536})),
        1024,
    )
    .await;

    let mut results = Vec::new();
    for (tool, args) in [
        ("s3_list_buckets", json!({})),
        ("s3_list_objects", json!({})),
        ("s3_get_object", json!({"key": "big.txt"})),
        ("s3_get_object", json!({"key": "missing"})),
        ("s3_read_text", json!({"key": "big.txt"})),
        ("s3_bucket_stats", json!({})),
        ("s3_upload_text", json!({"key": "w.txt", "text": "w"})),
        ("s3_list_objects", json!({"bucket": "elsewhere"})),
    ] {
        results.push(call(tools.as_ref(), tool, args).await);
    }
    compliance::check_no_secrets(&results, &creds);

    let annotations = |name: &str| {
        tools
            .tools()
            .iter()
            .find(|d| d.name() == name)
            .unwrap()
            .tool()
            .annotations
            .clone()
            .unwrap()
    };
    let upload = annotations("s3_upload_text");
    assert_eq!(upload.destructive_hint, Some(true), "it replaces an object");
    assert_eq!(upload.idempotent_hint, Some(true));
}

#[test]
fn half_given_credentials_are_refused_and_the_component_has_none() {
    let spec = spec(
        "https://admin:pw@minio.storage:9000",
        Some("assets"),
        false,
        None,
    );
    let half = Credentials::new(BTreeMap::from([(
        "accessKeyId".to_owned(),
        ACCESS_KEY.to_owned(),
    )]));
    let ctx = LinkContext {
        name: "objects",
        namespace: "shop",
        spec: &spec,
        credentials: &half,
    };
    let err = link::build(&ctx, "s3").err().unwrap().to_string();
    assert!(
        err.contains("both `accessKeyId` and `secretAccessKey`"),
        "{err}"
    );

    let creds = credentials();
    let ctx = LinkContext {
        credentials: &creds,
        ..ctx
    };
    let component = super::component(&ctx);
    assert_eq!(component.link_type, "s3");
    assert_eq!(component.kind, "object-store");
    assert_eq!(component.endpoint["url"], "https://minio.storage:9000");
    assert_eq!(component.endpoint["bucket"], "assets");
    assert_eq!(component.endpoint["pathStyle"], "true");
    let shown = serde_json::to_string(&component).unwrap();
    for secret in [ACCESS_KEY, SECRET_KEY, "admin:pw"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
