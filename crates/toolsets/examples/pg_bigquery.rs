//! A measurement run by hand, not a test: pg_query over a 1,000,000-row table with a row limit
//! of 1000 must stream and stop early, so its time and memory do not grow with the table.
//! Also reports the p50 latency of one small read call.
//!
//! Needs a PostgreSQL on 127.0.0.1:5432 (or `LINKMCP_TEST_PG_HOST`/`_PORT`/`_USER`) where the
//! user may create a database; the database it creates is dropped at the end.
//!
//! ```sh
//! cargo run --release --example pg_bigquery
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use linkmcp_api::McpLinkSpec;
use linkmcp_api::link::{LinkLimits, PostgresBackend, SslMode};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::LinkContext;
use linkmcp_toolsets::{CallContext, postgres};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};

const ROWS: i64 = 1_000_000;
const MAX_ROWS: i32 = 1000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn admin(host: &str, port: u16, user: &str, database: &str) -> anyhow::Result<PgConnection> {
    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(host)
        .port(port)
        .username(user)
        .database(database)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    Ok(PgConnection::connect_with(&options).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let host = env("LINKMCP_TEST_PG_HOST", "127.0.0.1");
    let port: u16 = env("LINKMCP_TEST_PG_PORT", "5432").parse()?;
    let user = env("LINKMCP_TEST_PG_USER", "postgres");
    let database = format!("linkmcp_bench_{}", std::process::id());

    let mut conn = admin(&host, port, &user, "postgres").await?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .await?;
    let result = run(&host, port, &user, &database).await;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .await?;
    result
}

async fn run(host: &str, port: u16, user: &str, database: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut setup = admin(host, port, user, database).await?;
    setup
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v, now() AS t, g * 1.5 AS x \
             FROM generate_series(1, {ROWS}) g; ALTER TABLE big ADD PRIMARY KEY (id); ANALYZE big"
        )))
        .await?;
    println!(
        "setup: {ROWS} rows (id int, v text, t timestamptz, x numeric) in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let block = PostgresBackend {
        host: host.to_owned(),
        port: i32::from(port),
        database: database.to_owned(),
        ssl_mode: SslMode::Disable,
        schemas: Vec::new(),
    };
    let mut spec: McpLinkSpec = serde_json::from_value(json!({"serverRef": {"name": "bench"}}))?;
    spec.postgres = Some(block.clone());
    spec.limits = LinkLimits {
        max_rows: Some(MAX_ROWS),
        ..LinkLimits::default()
    };
    let credentials = Credentials::new(BTreeMap::from([("username".into(), user.to_owned())]));
    let link = LinkContext {
        name: "bench",
        namespace: "default",
        spec: &spec,
        credentials: &credentials,
    };
    let toolset = postgres::toolset(&link, &block)?;
    let ctx = CallContext::new("bench")
        .with_timeout(Duration::from_secs(60))
        .with_max_output_bytes(usize::MAX / 2);
    let args = |sql: &str| json!({"sql": sql}).as_object().cloned().unwrap_or_default();

    // Warm the pool so the first measurement is not a connection setup.
    toolset.call("pg_query", args("SELECT 1"), &ctx).await;
    let before = peak_rss_kib();
    for run in 1..=3 {
        let started = Instant::now();
        let result = toolset
            .call("pg_query", args("SELECT * FROM big"), &ctx)
            .await;
        let elapsed = started.elapsed();
        let structured = result.structured_content.unwrap_or(Value::Null);
        println!(
            "run {run}: SELECT * FROM big (maxRows {MAX_ROWS}): {} rows, truncated {}, {:.1} ms, \
             peak RSS {} KiB (before the query runs: {before} KiB)",
            structured["rowCount"],
            structured["truncated"],
            elapsed.as_secs_f64() * 1000.0,
            peak_rss_kib()
        );
    }

    let full = Instant::now();
    let count = toolset
        .call("pg_query", args("SELECT count(*) FROM big"), &ctx)
        .await;
    println!(
        "for scale, SELECT count(*) FROM big (the whole table, server side): {:.1} ms ({})",
        full.elapsed().as_secs_f64() * 1000.0,
        count.structured_content.unwrap_or(Value::Null)["rows"]
    );

    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let started = Instant::now();
        toolset
            .call(
                "pg_query",
                args("SELECT id, v FROM big WHERE id = 42"),
                &ctx,
            )
            .await;
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "pg_query by primary key, 500 calls: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
        at(0.5),
        at(0.9),
        at(0.99)
    );
    println!("final peak RSS: {} KiB", peak_rss_kib());
    Ok(())
}
