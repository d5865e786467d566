//! A call talking back to its client over Streamable HTTP, with rmcp's client and a real
//! PostgreSQL (127.0.0.1:5432, database `test`, user `postgres` unless `LINKMCP_TEST_PG_*`
//! say otherwise): progress and log messages while a query streams its rows, a destructive
//! call confirmed or declined by elicitation (`confirmDestructive`), and a call cancelled by
//! the client, whose query must be gone from PostgreSQL — not left running on a closed socket.
#![allow(clippy::unwrap_used)]
// Logging is deprecated by SEP-2577 in rmcp, yet part of the revision these sessions speak.
#![allow(deprecated)]

mod support;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use linkmcp_api::McpLinkSpec;
use linkmcp_toolsets::{
    credentials::Credentials,
    link::{self, LinkContext},
};
use rmcp::{
    ClientHandler, ErrorData, RoleClient, ServiceExt,
    model::{
        CallToolRequest, CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest,
        ElicitRequestParams, ElicitResult, ElicitationAction, Implementation,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
        SetLevelRequestParams,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt, NotificationContext, PeerRequestOptions,
        RequestContext, RunningService,
    },
    transport::StreamableHttpClientTransport,
};
use serde_json::json;
use sqlx::{Connection as _, Executor as _, PgConnection, Row as _};
use support::{TestServer, args, text};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn pg_options() -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(&env("LINKMCP_TEST_PG_HOST", "127.0.0.1"))
        .port(env("LINKMCP_TEST_PG_PORT", "5432").parse().unwrap())
        .username(&env("LINKMCP_TEST_PG_USER", "postgres"))
        .database("test")
        .ssl_mode(sqlx::postgres::PgSslMode::Disable)
}

async fn admin() -> PgConnection {
    PgConnection::connect_with(&pg_options()).await.unwrap()
}

/// A name no other test run uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("linkmcp_{tag}_{}_{nanos}", std::process::id())
}

/// A server with one PostgreSQL link (tools `pg_*`, writes enabled), asking for confirmation
/// of destructive calls.
async fn server() -> TestServer {
    server_with(false).await
}

/// [`server`], with or without sessions.
async fn server_with(stateless: bool) -> TestServer {
    let mut spec: McpLinkSpec = serde_json::from_value(json!({
        "serverRef": {"name": "mcp"},
        "writeAccess": true,
        "postgres": {
            "host": env("LINKMCP_TEST_PG_HOST", "127.0.0.1"),
            "port": env("LINKMCP_TEST_PG_PORT", "5432").parse::<i32>().unwrap(),
            "database": "test",
            "sslMode": "disable",
        },
    }))
    .unwrap();
    spec.tool_prefix = Some("pg".into());
    let credentials = Credentials::new(BTreeMap::from([(
        "username".to_owned(),
        env("LINKMCP_TEST_PG_USER", "postgres"),
    )]));
    let ctx = LinkContext {
        name: "app-db",
        namespace: "data",
        spec: &spec,
        credentials: &credentials,
    };
    let toolset = link::build(&ctx, "pg").unwrap();
    TestServer::builder()
        .settings(|s| {
            s.confirm_destructive = true;
            s.stateless = stateless;
        })
        .toolset("data/app-db", toolset)
        .start()
        .await
}

/// What the client saw during its calls, and how it answers elicitations.
#[derive(Clone)]
struct Recorder {
    answer: ElicitationAction,
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(answer: ElicitationAction) -> Self {
        Self {
            answer,
            progress: Arc::default(),
            logs: Arc::default(),
            asked: Arc::default(),
        }
    }
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(Default::default());
        ClientConfig::new(capabilities, Implementation::new("talk-back-test", "1.0.0"))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        let mut result = ElicitResult::new(self.answer.clone());
        if self.answer == ElicitationAction::Accept {
            result = result.with_content(json!({"confirm": true}));
        }
        Ok(result)
    }
}

/// A 2026-07-28 client (no session): rmcp's client answers input requests through the
/// handler and calls again, round by round.
async fn connect_2026(
    server: &TestServer,
    recorder: &Recorder,
) -> RunningService<RoleClient, Recorder> {
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    let client = recorder
        .clone()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    client
}

async fn connect(server: &TestServer, recorder: &Recorder) -> RunningService<RoleClient, Recorder> {
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    recorder.clone().serve(transport).await.unwrap()
}

async fn set_level_info(client: &RunningService<RoleClient, Recorder>) {
    client
        .peer()
        .set_level(SetLevelRequestParams::new(rmcp::model::LoggingLevel::Info))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_streaming_query_reports_rows_read_and_logs() {
    let server = server().await;
    let recorder = Recorder::new(ElicitationAction::Accept);
    let client = connect(&server, &recorder).await;
    set_level_info(&client).await;

    // Rows wider than PostgreSQL's 8 KiB send buffer leave the server one by one, 60 ms
    // apart, so the rows read grow while the call runs (and stay under the output cap).
    let sql = "SELECT g, repeat('x', 9000) AS pad, pg_sleep(0.06) FROM generate_series(1, 6) g";
    let result = client
        .call_tool(CallToolRequestParams::new("pg_query").with_arguments(args(json!({"sql": sql}))))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));

    let progress = recorder.progress.lock().unwrap().clone();
    assert!(progress.len() >= 3, "progress: {progress:?}");
    let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert_eq!(values.last(), Some(&6.0), "{values:?}");
    assert_eq!(
        progress.last().unwrap().message.as_deref(),
        Some("6 rows read")
    );
    // One token for the whole call.
    assert!(
        progress
            .iter()
            .all(|p| p.progress_token == progress[0].progress_token)
    );

    let logs = recorder.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].data, json!("query read 6 rows"));
    assert_eq!(logs[0].logger.as_deref(), Some("pg_query"));

    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn no_log_messages_before_the_session_sets_a_level() {
    let server = server().await;
    let recorder = Recorder::new(ElicitationAction::Accept);
    let client = connect(&server, &recorder).await;
    let result = client
        .call_tool(
            CallToolRequestParams::new("pg_query").with_arguments(args(json!({"sql": "SELECT 1"}))),
        )
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert!(recorder.logs.lock().unwrap().is_empty());
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_destructive_call_runs_only_when_the_user_confirms() {
    let table = unique("confirm");
    admin()
        .await
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {table} (id int)"
        )))
        .await
        .unwrap();
    let server = server().await;
    let insert = args(json!({"sql": format!("INSERT INTO {table} VALUES (1)")}));

    let declining = Recorder::new(ElicitationAction::Decline);
    let client = connect(&server, &declining).await;
    let result = client
        .call_tool(CallToolRequestParams::new("pg_execute").with_arguments(insert.clone()))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("was not run: the user did not confirm it"),
        "{}",
        text(&result)
    );
    let asked = declining.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].starts_with("Allow `pg_execute`?"), "{}", asked[0]);
    assert!(asked[0].contains(&table), "{}", asked[0]);
    client.cancel().await.unwrap();

    let count = |table: String| async move {
        let row = admin()
            .await
            .fetch_one(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .await
            .unwrap();
        row.get::<i64, _>(0)
    };
    assert_eq!(
        count(table.clone()).await,
        0,
        "a declined call must not run"
    );

    let accepting = Recorder::new(ElicitationAction::Accept);
    let client = connect(&server, &accepting).await;
    let result = client
        .call_tool(CallToolRequestParams::new("pg_execute").with_arguments(insert))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(count(table.clone()).await, 1);
    // A read is never confirmed.
    let result = client
        .call_tool(
            CallToolRequestParams::new("pg_query").with_arguments(args(json!({"sql": "SELECT 1"}))),
        )
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(accepting.asked.lock().unwrap().len(), 1);
    client.cancel().await.unwrap();
    server.stop().await;

    admin()
        .await
        .execute(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .await
        .unwrap();
}

/// The backends running a statement that contains `tag`.
async fn running(tag: &str) -> i64 {
    let row = sqlx::query(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
    )
    .bind(tag)
    .fetch_one(&mut admin().await)
    .await
    .unwrap();
    row.get(0)
}

#[tokio::test]
async fn a_cancelled_call_stops_its_query_in_postgresql() {
    let server = server().await;
    let recorder = Recorder::new(ElicitationAction::Accept);
    let client = connect(&server, &recorder).await;
    let tag = unique("cancel");
    let sql = format!("SELECT pg_sleep(20) AS {tag}");
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("pg_query").with_arguments(args(json!({"sql": sql}))),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();

    let started = Instant::now();
    while running(&tag).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the query never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.cancel(Some("test cancels".into())).await.unwrap();

    let cancelled = Instant::now();
    while running(&tag).await > 0 {
        assert!(
            cancelled.elapsed() < Duration::from_secs(5),
            "the query still runs in PostgreSQL after the call was cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.unwrap();
    server.stop().await;
}

/// At 2026-07-28 the confirmation is an input request: the call ends with an
/// `InputRequiredResult`, the client answers and calls again, and only then does the statement
/// run — on a stateless server too, since the answer travels in the sealed `requestState`.
#[tokio::test]
async fn a_confirmation_takes_a_round_at_2026_07_28() {
    for stateless in [false, true] {
        let table = unique("rounds");
        admin()
            .await
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id int)"
            )))
            .await
            .unwrap();
        let server = server_with(stateless).await;
        let insert = args(json!({"sql": format!("INSERT INTO {table} VALUES (1)")}));
        let count = || async {
            let row = admin()
                .await
                .fetch_one(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .await
                .unwrap();
            row.get::<i64, _>(0)
        };

        let declining = Recorder::new(ElicitationAction::Decline);
        let client = connect_2026(&server, &declining).await;
        let result = client
            .call_tool(CallToolRequestParams::new("pg_execute").with_arguments(insert.clone()))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true), "stateless {stateless}");
        assert!(
            text(&result).contains("did not confirm"),
            "{}",
            text(&result)
        );
        assert_eq!(declining.asked.lock().unwrap().len(), 1);
        assert_eq!(count().await, 0, "stateless {stateless}: declined, not run");

        let accepting = Recorder::new(ElicitationAction::Accept);
        let client = connect_2026(&server, &accepting).await;
        let result = client
            .call_tool(CallToolRequestParams::new("pg_execute").with_arguments(insert))
            .await
            .unwrap();
        assert_ne!(result.is_error, Some(true), "{}", text(&result));
        assert_eq!(accepting.asked.lock().unwrap().len(), 1);
        assert_eq!(
            count().await,
            1,
            "stateless {stateless}: confirmed, run once"
        );
        server.stop().await;
        admin()
            .await
            .execute(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .await
            .unwrap();
    }
}
