//! The agent loop against a scripted model server speaking the Anthropic and OpenAI APIs.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use linkmcp_api::task::TaskPhase;
use linkmcp_factory::{
    NoKnowledge, RunInput,
    provider::{ApiKey, ModelClient},
    run::{self, CallOutcome, RunDeps, RunOutcome},
};
use serde_json::{Value, json};
use support::{
    API_KEY, FakeHost, Scripted, ScriptedModel, agent, anthropic, fast_retry, openai, task,
};

/// Runs the task `task_spec` with the agent `agent_spec` (pointed at a scripted model).
async fn run_task(host: &FakeHost, agent_spec: Value, task_spec: Value) -> RunOutcome {
    let agent = agent("sre", agent_spec);
    let task = task("db-health", task_spec);
    let client = ModelClient::for_agent(
        reqwest::Client::new(),
        &agent.spec,
        Some(ApiKey::new(API_KEY)),
        fast_retry(),
    );
    let input = RunInput::new(&task, &agent);
    run::run(
        &input,
        RunDeps {
            steps: &(),
            model: &client,
            host,
            knowledge: &NoKnowledge,
        },
    )
    .await
}

fn anthropic_agent(model: &ScriptedModel) -> Value {
    json!({"provider": "anthropic", "model": "claude-haiku-4-5-20251001", "baseUrl": model.anthropic_base()})
}

fn openai_agent(model: &ScriptedModel) -> Value {
    json!({"provider": "openai-compatible", "model": "gpt-4o-mini", "baseUrl": model.openai_base()})
}

const DB_TASK: &str = "Check the orders PostgreSQL database: list the tables, their dead tuples and the number of orders.";

#[tokio::test]
async fn anthropic_multi_step_tool_use_runs_tools_through_the_host() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_1", "pg_list_tables", json!({}))],
            1200,
            40,
        )),
        Scripted::ok(anthropic::tool_use(
            &[("tu_2", "pg_table_stats", json!({"table": "orders"}))],
            1500,
            30,
        )),
        Scripted::ok(anthropic::text(
            "orders has 42% dead tuples: run VACUUM (ANALYZE) orders.\nDetails follow.",
            1800,
            120,
        )),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": DB_TASK, "mode": "monitor"}),
    )
    .await;

    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(
        outcome.summary,
        "orders has 42% dead tuples: run VACUUM (ANALYZE) orders."
    );
    assert_eq!(outcome.iterations, 3);
    assert_eq!(
        (outcome.usage.input_tokens, outcome.usage.output_tokens),
        (4500, 190)
    );
    // claude-haiku-4-5: $1 / $5 per million tokens.
    assert!(
        (outcome.cost.usd - (4500.0 + 190.0 * 5.0) / 1e6).abs() < 1e-12,
        "{:?}",
        outcome.cost
    );

    let calls = host.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "pg_list_tables");
    assert_eq!(calls[1].name, "pg_table_stats");
    assert_eq!(calls[1].args["table"], "orders");
    assert!(calls.iter().all(|c| c.identity == "agent:sre"));

    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.headers["x-api-key"], API_KEY);
    assert_eq!(first.headers["anthropic-version"], "2023-06-01");
    assert_eq!(first.body["model"], "claude-haiku-4-5-20251001");
    assert_eq!(first.body["max_tokens"], 4096);
    assert!(first.body["system"].as_str().unwrap().contains(DB_TASK));
    let offered: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        offered.contains(&"pg_list_tables") && offered.contains(&"ping"),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"pg_execute"),
        "monitor mode offers no write tool"
    );
    assert!(
        !offered.contains(&"s3_list_buckets"),
        "unrelated tools are not offered"
    );
    assert!(first.body["tools"][0]["input_schema"].is_object());

    // The second round trip carries the first tool's result, the third both.
    let messages = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["content"][1]["type"], "tool_use");
    assert_eq!(
        messages[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "tu_1",
               "content": "orders 1.2 GB\ncustomers 80 MB", "is_error": false})
    );
    let last = requests[2].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["content"][0]["tool_use_id"], "tu_2");
    assert!(
        last["content"][0]["content"]
            .as_str()
            .unwrap()
            .contains("42% dead tuples")
    );
}

#[tokio::test]
async fn openai_compatible_multi_step_tool_use() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(openai::tool_calls(
            &[
                ("call_a", "pg_list_tables", json!({})),
                (
                    "call_b",
                    "pg_query",
                    json!({"sql": "select count(*) from orders"}),
                ),
            ],
            900,
            50,
        )),
        Scripted::ok(openai::text("Two tables; orders has 1234 rows.", 1100, 20)),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        openai_agent(&model),
        json!({"description": DB_TASK, "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.output, "Two tables; orders has 1234 rows.");
    assert_eq!(outcome.usage.total(), 2070);
    // gpt-4o-mini: $0.15 / $0.60 per million tokens.
    assert!((outcome.cost.usd - (2000.0 * 0.15 + 70.0 * 0.6) / 1e6).abs() < 1e-12);
    assert_eq!(host.calls()[1].args["sql"], "select count(*) from orders");

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(
        requests[0].body["max_tokens"], 4096,
        "compatible servers read max_tokens"
    );
    assert_eq!(requests[0].body["messages"][0]["role"], "system");
    let tool = &requests[0].body["tools"][0];
    assert_eq!(tool["type"], "function");
    assert!(tool["function"]["parameters"].is_object());
    let messages = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(messages[2]["tool_calls"][1]["function"]["name"], "pg_query");
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "orders 1.2 GB\ncustomers 80 MB"})
    );
    assert_eq!(messages[4]["tool_call_id"], "call_b");
    assert_eq!(messages[4]["content"], "count\n1234");
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_the_time_the_provider_asks() {
    let model = ScriptedModel::start(vec![
        Scripted::status(
            429,
            anthropic::error("rate_limit_error", "Number of requests exceeded"),
        )
        .header("retry-after", "1"),
        Scripted::ok(anthropic::text("All fine.", 100, 10)),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "Say whether the server answers.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "and not much more: {waited:?}"
    );
    assert_eq!(
        outcome.usage.total(),
        110,
        "the refused attempt costs nothing"
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_attempts_run_out() {
    let leaky = format!("upstream failed for key {API_KEY}");
    let model = ScriptedModel::start(vec![
        Scripted::status(500, anthropic::error("api_error", &leaky)),
        Scripted::status(503, anthropic::error("overloaded_error", "Overloaded")),
        Scripted::status(500, anthropic::error("api_error", &leaky)),
        Scripted::ok(anthropic::text("never reached", 1, 1)),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "Check the database.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Failed);
    assert_eq!(model.requests().len(), 3, "fast_retry allows 3 attempts");
    assert_eq!(model.remaining(), 1);
    let error = outcome.error.unwrap();
    assert!(error.contains("HTTP 500 through 3 attempts"), "{error}");
    assert!(error.contains("api_error: upstream failed"), "{error}");
    assert!(
        !error.contains(API_KEY),
        "the key never reaches an error: {error}"
    );
    assert!(error.contains("<redacted>"), "{error}");
    assert!(
        error.starts_with(outcome.summary.trim_end_matches('…')),
        "{}",
        outcome.summary
    );
    assert!(host.calls().is_empty());
}

#[tokio::test]
async fn a_rejected_request_is_not_retried_and_says_what_to_check() {
    let model = ScriptedModel::start(vec![Scripted::status(
        404,
        json!({"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error"}}),
    )])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        openai_agent(&model),
        json!({"description": "Check the database.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(model.requests().len(), 1);
    let error = outcome.error.unwrap();
    assert!(error.contains("rejected the request (HTTP 404)"), "{error}");
    assert!(
        error.contains("check the Agent's model and baseUrl"),
        "{error}"
    );
}

#[tokio::test]
async fn the_run_fails_when_max_iterations_are_spent() {
    let replies = (0..4)
        .map(|i| {
            Scripted::ok(anthropic::tool_use(
                &[(&format!("tu_{i}"), "pg_query", json!({"sql": "select 1"}))],
                100,
                10,
            ))
        })
        .collect();
    let model = ScriptedModel::start(replies).await;
    let host = FakeHost::new();
    let mut spec = anthropic_agent(&model);
    spec["maxIterations"] = json!(3);
    let outcome = run_task(
        &host,
        spec,
        json!({"description": "Query the postgres database forever.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Failed);
    assert_eq!(outcome.iterations, 3);
    assert_eq!(model.requests().len(), 3);
    assert_eq!(host.calls().len(), 3);
    let error = outcome.error.unwrap();
    assert!(
        error.contains("no final answer after 3 model round trips"),
        "{error}"
    );
    assert!(error.contains("maxIterations"), "{error}");
    assert_eq!(
        outcome.usage.total(),
        330,
        "tokens of a failed run still count"
    );
    assert!(outcome.cost.usd > 0.0);
}

#[tokio::test]
async fn a_monitor_run_refuses_a_write_tool_and_goes_on() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_w", "pg_execute", json!({"sql": "VACUUM orders"}))],
            500,
            20,
        )),
        Scripted::ok(anthropic::tool_use(
            &[("tu_r", "pg_table_stats", json!({}))],
            600,
            20,
        )),
        Scripted::ok(anthropic::text(
            "orders needs VACUUM; not run in monitor mode.",
            700,
            30,
        )),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "Vacuum the bloated tables of the postgres database.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    let calls = host.calls();
    assert_eq!(calls.len(), 1, "the write tool never reached the host");
    assert_eq!(calls[0].name, "pg_table_stats");
    assert_eq!(outcome.tool_calls[0].name, "pg_execute");
    assert_eq!(outcome.tool_calls[0].outcome, CallOutcome::Refused);
    assert_eq!(outcome.tool_calls[1].outcome, CallOutcome::Ok);

    let requests = model.requests();
    let refused = &requests[1].body["messages"][2]["content"][0];
    assert_eq!(refused["tool_use_id"], "tu_w");
    assert_eq!(refused["is_error"], true);
    assert!(
        refused["content"]
            .as_str()
            .unwrap()
            .contains("monitor mode"),
        "{refused}"
    );
    assert!(
        requests[0].body["system"]
            .as_str()
            .unwrap()
            .contains("Mode: monitor")
    );
}

#[tokio::test]
async fn an_act_run_may_call_the_write_tool() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_w", "pg_execute", json!({"sql": "VACUUM orders"}))],
            500,
            20,
        )),
        Scripted::ok(anthropic::text("Vacuumed orders.", 600, 10)),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "Vacuum the bloated tables of the postgres database.", "mode": "act"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(host.calls()[0].name, "pg_execute");
    assert!(outcome.tools_offered.contains(&"pg_execute".to_owned()));
}

#[tokio::test]
async fn a_run_past_its_timeout_fails_and_keeps_its_tokens() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_1", "pg_list_tables", json!({}))],
            100,
            10,
        )),
        Scripted::ok(anthropic::text("late", 100, 10)).delayed(Duration::from_secs(3)),
    ])
    .await;
    let host = FakeHost::new();
    let agent = agent("sre", anthropic_agent(&model));
    let task = task(
        "db-health",
        json!({"description": "Check the postgres database.", "mode": "monitor"}),
    );
    let client = ModelClient::for_agent(
        reqwest::Client::new(),
        &agent.spec,
        Some(ApiKey::new(API_KEY)),
        fast_retry(),
    );
    let mut input = RunInput::new(&task, &agent);
    assert_eq!(input.timeout, Duration::from_secs(600), "the CRD default");
    input.timeout = Duration::from_millis(800);
    let started = std::time::Instant::now();
    let outcome = run::run(
        &input,
        RunDeps {
            steps: &(),
            model: &client,
            host: &host,
            knowledge: &NoKnowledge,
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(outcome.phase, TaskPhase::Failed);
    let error = outcome.error.unwrap();
    assert!(
        error.contains("did not finish within its timeout"),
        "{error}"
    );
    assert_eq!(
        outcome.usage.total(),
        110,
        "the first round trip's tokens are kept"
    );
}

#[tokio::test]
async fn an_unknown_model_costs_nothing_and_says_so() {
    let model = ScriptedModel::start(vec![Scripted::ok(openai::text("ok", 1000, 1000))]).await;
    let host = FakeHost::new();
    let mut spec = openai_agent(&model);
    spec["model"] = json!("llama3.1:8b");
    let outcome = run_task(&host, spec.clone(), json!({"description": "Say ok."})).await;
    assert_eq!(outcome.cost.usd, 0.0);
    assert!(outcome.cost_note.unwrap().contains("llama3.1:8b"));

    model.push(vec![Scripted::ok(openai::text("ok", 1000, 1000))]);
    spec["pricing"] = json!({"inputPerMillion": 2.0, "outputPerMillion": 4.0});
    let outcome = run_task(&host, spec, json!({"description": "Say ok."})).await;
    assert!((outcome.cost.usd - 0.006).abs() < 1e-12);
    assert!(outcome.cost_note.is_none());
}

fn offered_names(request: &support::Recorded) -> Vec<String> {
    request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tool_selection_left_out_is_fetched_with_find_tools_and_used_in_the_same_run() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[(
                "tu_1",
                "find_tools",
                json!({"query": "run a SQL query on PostgreSQL"}),
            )],
            900,
            30,
        )),
        Scripted::ok(anthropic::tool_use(
            &[(
                "tu_2",
                "pg_query",
                json!({"sql": "select count(*) from orders"}),
            )],
            1100,
            30,
        )),
        Scripted::ok(anthropic::text(
            "There are 1234 orders and the buckets are listed.",
            1300,
            40,
        )),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "List the S3 buckets.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.tool_searches, 1);
    assert_eq!(outcome.iterations, 3, "one extra round trip for the search");

    let requests = model.requests();
    let first = offered_names(&requests[0]);
    assert!(first.contains(&"s3_list_buckets".to_owned()), "{first:?}");
    assert!(!first.contains(&"pg_query".to_owned()), "{first:?}");
    assert_eq!(first.last().map(String::as_str), Some("find_tools"));
    let second = offered_names(&requests[1]);
    assert!(second.contains(&"pg_query".to_owned()), "{second:?}");
    assert!(
        !second.contains(&"pg_execute".to_owned()),
        "a monitor run never finds a write tool: {second:?}"
    );
    let answer = requests[1].body["messages"].to_string();
    assert!(answer.contains("pg_query"), "{answer}");

    let calls = host.calls();
    assert_eq!(
        calls.len(),
        1,
        "find_tools is answered by the loop, not the host"
    );
    assert_eq!(calls[0].name, "pg_query");
    assert!(outcome.tools_offered.contains(&"pg_query".to_owned()));
    assert_eq!(outcome.tool_calls[0].name, "find_tools");
    assert_eq!(outcome.tool_calls[0].outcome, CallOutcome::Ok);

    // History and status count the search.
    let entry =
        linkmcp_factory::history::RunEntry::from_outcome("db-health", "sre", "schedule", &outcome);
    assert_eq!(entry.tool_searches, 1);
    assert_eq!(entry.record().tool_searches, Some(1));
}

#[tokio::test]
async fn a_find_tools_call_with_bad_arguments_says_what_to_pass() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_1", "find_tools", json!({"what": "sql"}))],
            900,
            30,
        )),
        Scripted::ok(anthropic::text("Nothing more needed.", 1000, 10)),
    ])
    .await;
    let host = FakeHost::new();
    let outcome = run_task(
        &host,
        anthropic_agent(&model),
        json!({"description": "List the S3 buckets.", "mode": "monitor"}),
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.tool_calls[0].outcome, CallOutcome::Error);
    let result = model.requests()[1].body["messages"].to_string();
    assert!(result.contains("query"), "{result}");
    assert!(result.contains("is_error"), "{result}");
}
