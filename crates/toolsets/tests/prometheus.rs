//! The prometheus toolset against a real Prometheus (Debian's `prometheus` 2.42, installed by
//! scripts/test-services.sh), started once per test run on a free port with a config and a
//! rules file written here: it scrapes itself, a small exporter served by this test, and a
//! target where nothing listens (so one target is down); its rules hold an always-firing
//! alert, an alert that stays pending and a recording rule. A second Prometheus serves HTTPS
//! (a CA and certificate made with openssl) behind basic auth, for TLS and credentials.
//! Both stop when the test process exits.
#![cfg(feature = "prometheus")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use linkmcp_api::McpLinkSpec;
use linkmcp_toolsets::compliance::{
    Caller, check_annotations, check_bad_arguments, check_output_capped, check_write_gating,
    result_text,
};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::{self, LinkContext};
use linkmcp_toolsets::{Toolset, prometheus};
use rmcp::model::ContentBlock;
use serde_json::{Value, json};

/// The basic-auth password of the HTTPS server; no output may show it.
const PASSWORD: &str = "linkmcp-prom-pw";
/// Its bcrypt hash, as Prometheus's web config takes it (cost 4: tests need no strength).
const PASSWORD_BCRYPT: &str = "$2b$04$ZeLyOtxWpF0m.5XovhatZeeuPcTqIWlFLnOeQMetc4xsFawEyeq9a";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(binary: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    found.unwrap_or_else(|| {
        panic!(
            "{binary} is not installed: run scripts/test-services.sh (make test does; it \
             installs Debian's {binary}) and run the tests again"
        )
    })
}

/// Starts `binary args...` under a watchdog shell that stops it when this process exits and
/// then removes `dir`, its data.
fn spawn_watched(binary: &Path, args: &[String], dir: &Path) {
    let script = format!(
        "( \"$0\" \"$@\" >{dir}/server.log 2>&1 & srv=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; \
         kill $srv 2>/dev/null; wait $srv; rm -rf {dir} ) >/dev/null 2>&1 &",
        dir = dir.display(),
        pid = std::process::id()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(binary)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "cannot start {}", binary.display());
}

/// The exporter Prometheus scrapes: a counter that grows with every scrape, a gauge.
fn exporter_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                static SCRAPES: AtomicU64 = AtomicU64::new(0);
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(|| async {
                        let n = SCRAPES.fetch_add(1, Ordering::Relaxed) + 1;
                        format!(
                            "# HELP linkmcp_test_requests_total Requests served by the test exporter.\n\
                             # TYPE linkmcp_test_requests_total counter\n\
                             linkmcp_test_requests_total{{path=\"/orders\",code=\"200\"}} {}\n\
                             linkmcp_test_requests_total{{path=\"/orders\",code=\"500\"}} 3\n\
                             # HELP linkmcp_test_temperature_celsius Temperature of the test lab.\n\
                             # TYPE linkmcp_test_temperature_celsius gauge\n\
                             linkmcp_test_temperature_celsius{{room=\"lab\"}} 21.5\n",
                            n * 10
                        )
                    }),
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        port
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts a Prometheus on a free port with `web_config` (may be empty) and waits until it is
/// ready; returns its port and its directory.
fn start_prometheus(tag: &str, web_config: Option<&str>) -> (u16, PathBuf) {
    let binary = require("prometheus");
    let port = free_port();
    let dir =
        std::env::temp_dir().join(format!("linkmcp-prom-{tag}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "rules.yml",
        r#"groups:
  - name: linkmcp-test
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: warning}
        annotations:
          summary: This alert always fires
          description: It exists so that the tests see a firing alert.
      - alert: MissingTargetDown
        expr: up{job="missing"} == 0
        for: 1h
        labels: {severity: critical}
        annotations: {summary: "The missing target is down"}
      - record: job:up:sum
        expr: sum by (job) (up)
"#,
    );
    let scheme = if web_config.is_some() {
        "https"
    } else {
        "http"
    };
    let config = format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: prometheus
    scheme: {scheme}
    tls_config: {{insecure_skip_verify: true}}
    basic_auth: {{username: linkmcp, password: {PASSWORD}}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: exporter
    static_configs: [{{targets: ["127.0.0.1:{exporter}"]}}]
  - job_name: missing
    static_configs: [{{targets: ["127.0.0.1:{closed}"]}}]
"#,
        exporter = exporter_port(),
        closed = free_port(),
    );
    let config = write(&dir, "prometheus.yml", &config);
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    if let Some(web) = web_config {
        let web = write(&dir, "web.yml", web);
        args.push(format!("--web.config.file={}", web.display()));
    }
    spawn_watched(&binary, &args, &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not listen on {port} within 60 s: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (port, dir)
}

/// The plain-HTTP Prometheus, once its first scrapes and rule evaluations are in.
async fn plain() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    let url = URL
        .get_or_init(|| format!("http://127.0.0.1:{}", start_prometheus("plain", None).0))
        .clone();
    // Ready when every target was scraped, the exporter a few times, and both alerts are in.
    let toolset = served(&spec(json!({"url": url}), None), &Credentials::default());
    let mut caller = Caller::new(toolset);
    let deadline = Instant::now() + Duration::from_secs(60);
    let value = |result: &rmcp::model::CallToolResult| {
        result
            .structured_content
            .as_ref()
            .and_then(|v| v["series"][0]["points"][0][1].as_f64())
            .unwrap_or_default()
    };
    loop {
        let targets = caller
            .call("prom_query", json!({"query": "count(up)"}))
            .await;
        let samples = caller
            .call(
                "prom_query",
                json!({"query": "count_over_time(up{job=\"exporter\"}[1m])"}),
            )
            .await;
        let alerts = caller.call("prom_alerts", json!({})).await;
        let ready = value(&targets) == 3.0
            && value(&samples) >= 4.0
            && alerts
                .structured_content
                .as_ref()
                .is_some_and(|v| v["total"] == 2);
        if ready {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus at {url} never scraped its targets: {}",
            result_text(&targets)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn spec(block: Value, secret: Option<&str>) -> McpLinkSpec {
    let mut spec = json!({"serverRef": {"name": "main"}, "prometheus": block});
    if let Some(secret) = secret {
        spec["credentialsSecretRef"] = json!({"name": secret});
    }
    serde_json::from_value(spec).unwrap()
}

fn served(spec: &McpLinkSpec, credentials: &Credentials) -> Arc<dyn Toolset> {
    let link = LinkContext {
        name: "metrics",
        namespace: "ops",
        spec,
        credentials,
    };
    link::build(&link, "prom").unwrap()
}

async fn caller() -> Caller {
    let url = plain().await;
    Caller::new(served(
        &spec(json!({"url": url}), None),
        &Credentials::default(),
    ))
}

#[tokio::test]
async fn instant_queries_show_labels_once_and_values() {
    let mut c = caller().await;
    let v = c.ok("prom_query", json!({"query": "up"})).await;
    assert_eq!(v["resultType"], "vector");
    assert_eq!(v["seriesCount"], 3);
    let by_job: BTreeMap<String, Value> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["labels"]["job"].as_str().unwrap().to_owned(),
                s["points"][0][1].clone(),
            )
        })
        .collect();
    assert_eq!(by_job["exporter"], json!(1.0));
    assert_eq!(by_job["missing"], json!(0.0));
    let result = c.call("prom_query", json!({"query": "up"})).await;
    let text = result.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("all series share up\n"), "{text}");
    assert!(text.contains("{instance=\"127.0.0.1:"), "{text}");
    assert!(!text.contains("__name__"), "{text}");

    let v = c
        .ok("prom_query", json!({"query": "1 + 1", "time": "now-5m"}))
        .await;
    assert_eq!(v["resultType"], "scalar");
    assert_eq!(v["value"], json!(2.0));

    let v = c
        .ok(
            "prom_query",
            json!({"query": "linkmcp_test_temperature_celsius"}),
        )
        .await;
    assert_eq!(v["series"][0]["points"][0][1], json!(21.5));
    assert_eq!(v["series"][0]["labels"]["room"], "lab");

    let v = c
        .ok("prom_query", json!({"query": "up{job=\"nope\"}"}))
        .await;
    assert_eq!(v["seriesCount"], 0);
}

#[tokio::test]
async fn promql_errors_carry_prometheuss_message_and_position() {
    let mut c = caller().await;
    let text = c
        .err("prom_query", json!({"query": "sum(rate(up[5m])))"}))
        .await;
    assert!(text.starts_with("PromQL error: "), "{text}");
    assert!(text.contains("parse error"), "{text}");
    // Prometheus places this error at column 19, after the stray parenthesis.
    assert!(
        text.contains("1:19: parse error: unexpected right parenthesis"),
        "{text}"
    );
    assert!(
        text.ends_with("\n  sum(rate(up[5m])))\n                    ^"),
        "{text}"
    );
    let text = c
        .err("prom_query_range", json!({"query": "rate(up)"}))
        .await;
    assert!(text.contains("expected type range vector"), "{text}");
    let text = c
        .err("prom_query", json!({"query": "up", "time": "yesterday"}))
        .await;
    assert!(text.contains("invalid argument `time`"), "{text}");
    let text = c
        .err("prom_query_range", json!({"query": "up", "step": "5x"}))
        .await;
    assert!(text.contains("invalid argument `step`"), "{text}");
    let text = c
        .err(
            "prom_query_range",
            json!({"query": "up", "start": "now", "end": "now-1h"}),
        )
        .await;
    assert!(text.contains("the range is empty"), "{text}");
}

#[tokio::test]
async fn range_queries_summarise_raise_the_step_and_chart() {
    let mut c = caller().await;
    let v = c
        .ok(
            "prom_query_range",
            json!({"query": "linkmcp_test_requests_total{code=\"200\"}", "start": "-40s", "step": "1s"}),
        )
        .await;
    assert_eq!(v["resultType"], "matrix");
    assert_eq!(v["step"], "1s");
    let points = v["series"][0]["points"].as_array().unwrap();
    assert!(points.len() >= 2, "{v}");
    let summary = &v["series"][0]["summary"];
    assert!(
        summary["max"].as_f64().unwrap() > summary["min"].as_f64().unwrap(),
        "{v}"
    );

    // A long series is summarised in the text, with its newest value in the tail.
    let result = c
        .call(
            "prom_query_range",
            json!({"query": "vector(7)", "start": "-10m", "step": "5s"}),
        )
        .await;
    let text = result_text(&result);
    assert!(
        text.contains("121 points, min 7, max 7, avg 7, last 7"),
        "{text}"
    );
    assert!(text.contains("tail: "), "{text}");
    let v = result.structured_content.unwrap();
    assert_eq!(v["series"][0]["points"].as_array().unwrap().len(), 121);

    // A week at 1 s would be 604,801 points: the step is raised to fit 10 points.
    let v = c
        .ok(
            "prom_query_range",
            json!({"query": "vector(1)", "start": "now-1w", "step": "1s", "max_points": 10}),
        )
        .await;
    assert_eq!(v["stepRaisedFrom"], "1s");
    assert_eq!(v["step"], "1d");
    assert!(
        v["series"][0]["points"].as_array().unwrap().len() <= 10,
        "{v}"
    );

    let result = c
        .call(
            "prom_query_range",
            json!({"query": "linkmcp_test_requests_total", "start": "-1m", "chart": true}),
        )
        .await;
    assert_ne!(result.is_error, Some(true), "{}", result_text(&result));
    let image = result
        .content
        .iter()
        .find_map(|c| match c {
            ContentBlock::Image(image) => Some(image.clone()),
            _ => None,
        })
        .expect("a chart");
    assert_eq!(image.mime_type, "image/png");
    let png = base64::engine::general_purpose::STANDARD
        .decode(&image.data)
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 2_000 && png.len() < 400_000,
        "{} bytes",
        png.len()
    );
    if let Ok(path) = std::env::var("LINKMCP_SAVE_CHART") {
        std::fs::write(path, &png).unwrap();
    }
}

#[tokio::test]
async fn alerts_targets_and_rules_are_the_servers() {
    let mut c = caller().await;
    let v = c.ok("prom_alerts", json!({})).await;
    let names: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "AlwaysFiring", "{v}");
    let text = result_text(&c.call("prom_alerts", json!({"state": "firing"})).await);
    assert!(text.contains("[firing] AlwaysFiring since"), "{text}");
    assert!(text.contains("summary: This alert always fires"), "{text}");
    let v = c.ok("prom_alerts", json!({"state": "pending"})).await;
    assert_eq!(
        v["alerts"][0]["labels"]["alertname"], "MissingTargetDown",
        "{v}"
    );

    let v = c.ok("prom_targets", json!({})).await;
    assert_eq!(v["activeCount"], 3);
    assert_eq!(v["upCount"], 2);
    assert_eq!(v["activeTargets"][0]["health"], "down", "down first: {v}");
    assert_eq!(v["activeTargets"][0]["scrapePool"], "missing");
    let text = result_text(&c.call("prom_targets", json!({"health": "down"})).await);
    assert!(text.contains("error: "), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    let v = c
        .ok("prom_targets", json!({"scrape_pool": "exporter"}))
        .await;
    assert_eq!(v["activeCount"], 1);

    let v = c.ok("prom_rules", json!({})).await;
    assert_eq!(v["total"], 3);
    assert_eq!(v["groups"][0]["name"], "linkmcp-test");
    let text = result_text(&c.call("prom_rules", json!({})).await);
    assert!(text.contains("alert AlwaysFiring [firing]"), "{text}");
    assert!(
        text.contains("record job:up:sum: sum by (job) (up)"),
        "{text}"
    );
    let v = c.ok("prom_rules", json!({"kind": "record"})).await;
    assert_eq!(v["total"], 1);
    let v = c
        .ok("prom_rules", json!({"name_contains": "missing"}))
        .await;
    assert_eq!(v["total"], 1);
}

#[tokio::test]
async fn labels_series_and_metadata() {
    let mut c = caller().await;
    let v = c.ok("prom_label_values", json!({"label": "job"})).await;
    assert_eq!(v["values"], json!(["exporter", "missing", "prometheus"]));
    let v = c
        .ok(
            "prom_label_values",
            json!({"label": "code", "match": ["linkmcp_test_requests_total"]}),
        )
        .await;
    assert_eq!(v["values"], json!(["200", "500"]));
    let v = c.ok("prom_label_values", json!({})).await;
    let names = v["labels"].as_array().unwrap();
    assert!(
        names.contains(&json!("job")) && names.contains(&json!("__name__")),
        "{v}"
    );

    let v = c
        .ok(
            "prom_series",
            json!({"match": ["linkmcp_test_requests_total"]}),
        )
        .await;
    assert_eq!(v["total"], 2);
    let text = result_text(
        &c.call(
            "prom_series",
            json!({"match": ["linkmcp_test_requests_total"]}),
        )
        .await,
    );
    assert!(
        text.contains("all share linkmcp_test_requests_total{"),
        "{text}"
    );
    let text = c.err("prom_series", json!({"match": []})).await;
    assert!(text.contains("at least one series selector"), "{text}");
    let text = c.err("prom_series", json!({"match": ["up{"]})).await;
    assert!(text.contains("PromQL error"), "{text}");

    let v = c
        .ok(
            "prom_metadata",
            json!({"metric": "linkmcp_test_temperature_celsius"}),
        )
        .await;
    assert_eq!(v["metrics"][0]["type"], "gauge");
    assert_eq!(v["metrics"][0]["help"], "Temperature of the test lab.");
    let v = c
        .ok("prom_metadata", json!({"name_contains": "LINKMCP_TEST"}))
        .await;
    assert_eq!(v["total"], 2);
}

#[tokio::test]
async fn the_toolset_complies_and_caps_its_output() {
    let url = plain().await;
    let toolset = served(&spec(json!({"url": url}), None), &Credentials::default());
    check_annotations(toolset.as_ref());
    check_bad_arguments(toolset.as_ref()).await;
    let backend = prometheus::toolset(
        &LinkContext {
            name: "metrics",
            namespace: "ops",
            spec: &spec(json!({"url": url}), None),
            credentials: &Credentials::default(),
        },
        &serde_json::from_value(json!({"url": url})).unwrap(),
    )
    .unwrap();
    check_write_gating(backend, "prom").await;
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "prom_query",
            "prom_query_range",
            "prom_alerts",
            "prom_targets",
            "prom_rules",
            "prom_label_values",
            "prom_series",
            "prom_metadata"
        ]
    );
    let args = json!({"match": ["{__name__=~\".+\"}"]})
        .as_object()
        .cloned()
        .unwrap();
    check_output_capped(toolset.as_ref(), "prom_series", args, 1024).await;
    // Structured content stays within the cap too: series that do not fit are counted.
    let mut c = Caller::new(toolset);
    c.ctx = c.ctx.clone().with_max_output_bytes(4096);
    let v = c
        .ok(
            "prom_query_range",
            json!({"query": "{__name__=~\"prometheus_.+\"}", "start": "-30s"}),
        )
        .await;
    assert_eq!(v["truncated"], true, "{v}");
    assert!(
        v.to_string().len() < 4096 + 2048,
        "{} bytes",
        v.to_string().len()
    );
}

#[tokio::test]
async fn tls_with_the_ca_from_the_secret_and_basic_auth_on_a_real_server() {
    let openssl = require("openssl");
    let dir = std::env::temp_dir().join(format!("linkmcp-prom-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {} && {} {args}",
                dir.display(),
                openssl.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run(&format!(
        "req -x509 {ec} -keyout ca.key -out ca.crt -days 2 -subj /CN=linkmcp-test-ca"
    ));
    run(&format!(
        "req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        "x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile san.ext",
    );
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  linkmcp: {PASSWORD_BCRYPT}\n",
        dir.join("srv.crt").display(),
        dir.join("srv.key").display()
    );
    let (port, _) = start_prometheus("tls", Some(&web));
    let url = format!("https://127.0.0.1:{port}");
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let creds = |password: &str, ca: Option<&str>| {
        let mut map = BTreeMap::from([
            ("username".to_owned(), "linkmcp".to_owned()),
            ("password".to_owned(), password.to_owned()),
        ]);
        if let Some(ca) = ca {
            map.insert("ca.crt".to_owned(), ca.to_owned());
        }
        Credentials::new(map)
    };

    let good = creds(PASSWORD, Some(&ca));
    let mut c = Caller::new(served(&spec(json!({"url": url}), Some("prom-auth")), &good));
    let v = c.ok("prom_query", json!({"query": "vector(42)"})).await;
    assert_eq!(v["series"][0]["points"][0][1], json!(42.0));

    let text = c_err(&url, creds(PASSWORD, None), json!({"url": url})).await;
    assert!(
        text.contains("the TLS connection to Prometheus at 127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("`ca.crt` in Secret prom-auth"), "{text}");

    let insecure = json!({"url": url, "tls": {"insecureSkipVerify": true}});
    let mut unverified = Caller::new(served(
        &spec(insecure, Some("prom-auth")),
        &creds(PASSWORD, None),
    ));
    unverified
        .ok("prom_query", json!({"query": "vector(1)"}))
        .await;

    let text = c_err(
        &url,
        creds("not-the-password", Some(&ca)),
        json!({"url": url}),
    )
    .await;
    assert!(
        text.contains("answered 401: the username and password in Secret prom-auth was refused")
            || text.contains("the username and password in Secret prom-auth"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
    c.no_secrets(&good);
    unverified.no_secrets(&good);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn c_err(_url: &str, credentials: Credentials, block: Value) -> String {
    let mut c = Caller::new(served(&spec(block, Some("prom-auth")), &credentials));
    let text = c.err("prom_query", json!({"query": "vector(1)"})).await;
    c.no_secrets(&credentials);
    text
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let port = free_port();
    let mut c = Caller::new(served(
        &spec(json!({"url": format!("http://127.0.0.1:{port}")}), None),
        &Credentials::default(),
    ));
    let text = c.err("prom_alerts", json!({})).await;
    assert!(
        text.contains(&format!("cannot reach Prometheus at 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("check prometheus.url"), "{text}");
}
