//! The `dark_factory_*` tools over MCP, against the server binary in standalone mode: a
//! manifests folder with an Agent calling a scripted model (Anthropic Messages API) and an
//! AiTask on a schedule that does not come due during the test, so every run is one the test
//! asks for. Status, history, cost, run-now and the pause toggle are called by a real MCP
//! client, and what they report is checked against what the model was asked and answered.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use linkmcp_e2e::model::ScriptedModel;
use std::sync::{Arc, Mutex};

use rmcp::model::{CallToolRequestParams, CallToolResult, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

mod support;
use support::{ServerProcess, args};

/// What the scripted model answers once it has the result of its `ping` call.
const ANSWER: &str = "The server answered ping: all quiet tonight.";

fn manifests(model_url: &str) -> String {
    format!(
        "apiVersion: linkmcp.io/v1alpha1
kind: McpServer
metadata: {{name: df}}
spec:
  auth: {{allowUnauthenticated: true}}
---
apiVersion: v1
kind: Secret
metadata: {{name: model-key}}
stringData: {{api-key: sk-scripted-df}}
---
apiVersion: linkmcp.io/v1alpha1
kind: Agent
metadata: {{name: scripted}}
spec:
  serverRef: {{name: df}}
  provider: anthropic
  model: claude-haiku-4-5-20251001
  baseUrl: {model_url}
  apiKeySecretRef: {{name: model-key, key: api-key}}
---
apiVersion: linkmcp.io/v1alpha1
kind: AiTask
metadata: {{name: nightly}}
spec:
  serverRef: {{name: df}}
  agentRef: {{name: scripted}}
  description: Ping the server and say whether it answers.
  schedule: \"0 3 1 1 *\"
  mode: monitor
"
    )
}

/// A client that keeps the progress messages it is sent (rmcp's client asks for progress on
/// every request).
#[derive(Clone, Default)]
struct Following {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Following {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        self.progress.lock().unwrap().push(message);
    }
}

async fn call(
    client: &RunningService<RoleClient, Following>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{}", text(result));
    result
        .structured_content
        .clone()
        .expect("structured content")
}

#[tokio::test]
async fn the_dark_factory_tools_report_and_steer_the_scheduled_tasks() {
    let model = ScriptedModel::start("ping", json!({}), ANSWER)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("linkmcp-dark-factory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stack.yaml");
    let written = manifests(&model.base_url());
    std::fs::write(&file, &written).unwrap();
    let server = ServerProcess::start(&dir, &[]).await;
    let url = server.url.clone();
    let following = Following::default();
    let client = following
        .clone()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{url}/mcp"
        )))
        .await
        .unwrap();

    // The tools are served while the server has agents.
    let listed: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for tool in [
        "dark_factory_status",
        "dark_factory_history",
        "dark_factory_cost",
        "dark_factory_run_now",
        "dark_factory_toggle_agent",
    ] {
        assert!(
            listed.contains(&tool.to_owned()),
            "{tool} not in {listed:?}"
        );
    }

    // Status: the task, its agent, idle, the next run of its schedule, no runs yet.
    let status = structured(&call(&client, "dark_factory_status", json!({})).await);
    let task = &status["tasks"][0];
    assert_eq!(task["task"], "nightly", "{status}");
    assert_eq!(task["agent"], "scripted", "{status}");
    assert_eq!(task["running"], false, "{status}");
    assert_eq!(task["runs"], 0, "{status}");
    let next = task["nextRun"].as_str().unwrap();
    assert!(next.contains("-01-01T03:00:00"), "next run {next}");
    let history = call(&client, "dark_factory_history", json!({"task": "nightly"})).await;
    assert_eq!(text(&history), "no runs yet");
    assert!(model.requests().is_empty(), "nothing ran on its own");

    // Run now, followed: the run's steps arrive as progress while it runs, and the result is
    // its outcome: one run that called ping and answered.
    let ran = call(&client, "dark_factory_run_now", json!({"task": "nightly"})).await;
    assert_ne!(ran.is_error, Some(true), "{}", text(&ran));
    assert!(
        text(&ran).starts_with("run of nightly succeeded: ") && text(&ran).contains("all quiet"),
        "{}",
        text(&ran)
    );
    let steps = following.progress.lock().unwrap().clone();
    assert_eq!(
        steps,
        [
            "run of nightly started: agent scripted, model claude-haiku-4-5-20251001, 2 tools \
             offered",
            "turn 1: the model calls ping",
            "ping: ok",
            "turn 2: the model answers",
            &text(&ran),
        ]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let history =
            structured(&call(&client, "dark_factory_history", json!({"task": "nightly"})).await);
        let runs = history["runs"].as_array().cloned().unwrap_or_default();
        if !runs.is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "no run recorded: {history}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = serde_json::to_string(&runs[0]).unwrap();
    assert!(run.contains("Succeeded"), "{run}");
    assert!(run.contains("all quiet tonight"), "{run}");
    let results = model.tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(!results[0].is_error, "{:?}", results[0]);
    assert!(results[0].content.contains("pong"), "{:?}", results[0]);
    assert_eq!(
        model.requests()[0].api_key.as_deref(),
        Some("sk-scripted-df"),
        "the agent's key from its Secret"
    );

    // Cost: two model calls of 120 input and 30 output tokens at Haiku 4.5 prices
    // ($1 / $5 per million): 300 tokens, $0.00054.
    let cost = structured(&call(&client, "dark_factory_cost", json!({})).await);
    let total = cost["totalUsd"].as_f64().unwrap();
    assert!((total - 0.00054).abs() < 1e-9, "{cost}");
    assert_eq!(cost["tasks"]["nightly"]["tokens"], 300, "{cost}");
    assert_eq!(cost["tasks"]["nightly"]["runs"], 1, "{cost}");
    let status = structured(&call(&client, "dark_factory_status", json!({})).await);
    assert_eq!(status["tasks"][0]["runs"], 1, "{status}");

    // Toggle: standalone the server does not edit the user's files; it says what to write.
    let toggled = call(
        &client,
        "dark_factory_toggle_agent",
        json!({"agent": "scripted", "paused": true}),
    )
    .await;
    assert_eq!(toggled.is_error, Some(true), "{}", text(&toggled));
    assert!(
        text(&toggled).contains("linkmcp.io/paused: \"true\"")
            && text(&toggled).contains("scripted"),
        "{}",
        text(&toggled)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        written,
        "the file is untouched"
    );

    // Bad input: an unknown task is named with the tasks that exist; bad arguments are named.
    let unknown = call(&client, "dark_factory_history", json!({"task": "nope"})).await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(
        text(&unknown).contains("tasks are: nightly"),
        "{}",
        text(&unknown)
    );
    let unknown = call(&client, "dark_factory_run_now", json!({"task": "nope"})).await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(text(&unknown).contains("nope"), "{}", text(&unknown));
    let bad = call(
        &client,
        "dark_factory_toggle_agent",
        json!({"agent": "scripted"}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("paused"), "{}", text(&bad));
    assert_eq!(model.requests().len(), 2, "no further run happened");

    client.cancel().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
