//! The factory as the server embeds it: live tasks and agents in, runs, chains, retries,
//! run-now, notifications and reports out; against the scripted model server.

#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use linkmcp_api::{names::annotation, task::TaskPhase};
use linkmcp_factory::{
    Factory, FactoryConfig, FactoryDeps, NoKnowledge, SystemClock, schedule::Blocked,
};
use serde_json::json;
use support::{
    ChannelReporter, FakeHost, Receiver, Reported, Scripted, ScriptedModel, Secrets, agent,
    anthropic, fast_retry, next_report, openai, task,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

struct Running {
    factory: Factory,
    reports: UnboundedReceiver<Reported>,
    host: Arc<FakeHost>,
    cancel: CancellationToken,
    driver: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.driver)
            .await
            .unwrap()
            .unwrap();
    }
}

fn start(secrets: Secrets) -> Running {
    let host = Arc::new(FakeHost::new());
    let (reporter, reports) = ChannelReporter::new();
    let mut config = FactoryConfig::new("data");
    config.retry = fast_retry();
    config.notification_timeout = Duration::from_secs(5);
    let factory = Factory::new(
        config,
        FactoryDeps {
            host: host.clone(),
            knowledge: Arc::new(NoKnowledge),
            secrets: Arc::new(secrets),
            reporter: Arc::new(reporter),
            clock: Arc::new(SystemClock),
        },
    );
    let cancel = CancellationToken::new();
    let driver = tokio::spawn({
        let factory = factory.clone();
        let cancel = cancel.clone();
        async move { factory.run(cancel).await }
    });
    Running {
        factory,
        reports,
        host,
        cancel,
        driver,
    }
}

#[tokio::test]
async fn a_chain_passes_its_output_on_and_the_last_task_is_notified() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[("tu_1", "pg_table_stats", json!({}))],
            800,
            40,
        )),
        Scripted::ok(anthropic::text(
            "FINDINGS: orders has 42% dead tuples.",
            900,
            60,
        )),
        Scripted::ok(anthropic::text("REPORT: vacuum orders tonight.", 700, 60)),
    ])
    .await;
    let hook = Receiver::start(204).await;
    let secrets = Secrets(BTreeMap::from([(
        "hook/token".to_owned(),
        "Bearer hook-secret".to_owned(),
    )]));
    let mut running = start(secrets);
    let sre = agent("sre", json!({"baseUrl": model.anthropic_base()}));
    let collect = task(
        "collect",
        json!({"description": "Check the postgres database for dead tuples.", "next": ["report"]}),
    );
    let report = task(
        "report",
        json!({
            "description": "Turn the findings you are given into a short report.",
            "notify": {"webhook": {"url": hook.url("/hooks/linkmcp"),
                                   "authorizationSecretRef": {"name": "hook", "key": "token"}}}
        }),
    );
    running.factory.update(vec![collect, report], vec![sre]);

    let first = next_report(&mut running.reports).await;
    assert_eq!(
        (first.task.as_str(), first.trigger.as_str()),
        ("collect", "once")
    );
    assert_eq!(first.outcome.phase, TaskPhase::Succeeded);
    assert_eq!(first.followup.chained, ["report"]);
    assert_eq!(
        first.notification,
        Default::default(),
        "collect has no notify"
    );
    let second = next_report(&mut running.reports).await;
    assert_eq!(
        (second.task.as_str(), second.trigger.as_str()),
        ("report", "chain:collect")
    );
    assert_eq!(second.outcome.output, "REPORT: vacuum orders tonight.");
    assert_eq!(second.agent, "sre");
    assert_eq!(second.record.trigger, "chain:collect");
    assert_eq!(second.recent_runs.len(), 1);
    assert_eq!(second.task_totals.runs, 1);
    assert_eq!(second.agent_totals.runs, 2);
    assert_eq!(second.agent_totals.tokens, 800 + 40 + 900 + 60 + 700 + 60);
    assert_eq!(
        second.notification.error(),
        None,
        "{:?}",
        second.notification
    );

    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    let system = requests[2].body["system"].as_str().unwrap();
    assert!(
        system.contains("Output of the previous task \"collect\""),
        "{system}"
    );
    assert!(
        system.contains("FINDINGS: orders has 42% dead tuples."),
        "{system}"
    );
    assert!(
        !requests[0].body["system"]
            .as_str()
            .unwrap()
            .contains("previous task")
    );
    assert_eq!(running.host.calls()[0].identity, "agent:sre");

    let received = hook.received();
    assert_eq!(received.len(), 1, "only the task with notify reports");
    let call = &received[0];
    assert_eq!(call.path, "/hooks/linkmcp");
    assert_eq!(call.headers["authorization"], "Bearer hook-secret");
    let body = &call.body;
    assert_eq!(body["task"], "report");
    assert_eq!(body["agent"], "sre");
    assert_eq!(body["server"], "data");
    assert_eq!(body["status"], "Succeeded");
    assert_eq!(body["trigger"], "chain:collect");
    assert_eq!(body["summary"], "REPORT: vacuum orders tonight.");
    assert_eq!(body["output"], "REPORT: vacuum orders tonight.");
    assert_eq!(
        body["tokens"],
        json!({"input": 700, "output": 60, "total": 760})
    );
    assert_eq!(body["cost"]["display"], "$0.0010");
    assert!(body["startedAt"].as_str().unwrap().ends_with('Z'));
    assert!(body["finishedAt"].as_str().unwrap() >= body["startedAt"].as_str().unwrap());

    assert_eq!(running.factory.history("report").len(), 1);
    let (tasks, agents) = running.factory.totals();
    assert_eq!(tasks.len(), 2);
    assert!((agents["sre"].cost_usd - (2400.0 + 160.0 * 5.0) / 1e6).abs() < 1e-12);
    running.stop().await;
}

#[tokio::test]
async fn a_disabled_or_paused_agent_runs_nothing() {
    let model =
        ScriptedModel::start(vec![Scripted::ok(openai::text("should not run", 1, 1))]).await;
    let mut running = start(Secrets::default());
    let base = json!({"provider": "openai-compatible", "model": "gpt-4o-mini", "baseUrl": model.openai_base()});
    let mut disabled = base.clone();
    disabled["enabled"] = json!(false);
    let once = task("once", json!({"description": "Say hello."}));
    running
        .factory
        .update(vec![once.clone()], vec![agent("sre", disabled)]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(running.reports.try_recv().is_err(), "nothing started");
    assert!(model.requests().is_empty());
    let view = running.factory.view("once").unwrap();
    assert_eq!(view.blocked, Some(Blocked::AgentDisabled("sre".into())));
    let refused = running
        .factory
        .run_now("once", "user:alice", false)
        .unwrap_err();
    assert!(refused.contains("disabled"), "{refused}");

    let mut paused = agent("sre", base.clone());
    paused.metadata.annotations = Some(BTreeMap::from([(
        annotation::PAUSED.to_owned(),
        "true".to_owned(),
    )]));
    running.factory.update(vec![once.clone()], vec![paused]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(model.requests().is_empty());
    assert_eq!(
        running.factory.view("once").unwrap().blocked,
        Some(Blocked::AgentPaused("sre".into()))
    );

    // Enabled again: the run-once task runs.
    running.factory.update(vec![once], vec![agent("sre", base)]);
    let report = next_report(&mut running.reports).await;
    assert_eq!(report.trigger, "once");
    assert_eq!(model.requests().len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn run_now_by_annotation_runs_once_per_new_value() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::text("first", 10, 1)),
        Scripted::ok(anthropic::text("second", 10, 1)),
    ])
    .await;
    let mut running = start(Secrets::default());
    let sre = agent("sre", json!({"baseUrl": model.anthropic_base()}));
    // A yearly schedule that already ran: nothing is due on its own.
    let mut yearly = task(
        "yearly",
        json!({"description": "Say hello.", "schedule": "0 0 1 1 *"}),
    );
    yearly.status = Some(linkmcp_api::AiTaskStatus {
        last_run_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        )),
        runs: Some(1),
        ..Default::default()
    });
    running
        .factory
        .update(vec![yearly.clone()], vec![sre.clone()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(model.requests().is_empty());
    assert!(running.factory.view("yearly").unwrap().next_run.is_some());

    let annotated = |value: &str| {
        let mut t = yearly.clone();
        t.metadata.annotations = Some(BTreeMap::from([(
            annotation::RUN_NOW.to_owned(),
            value.to_owned(),
        )]));
        t
    };
    running
        .factory
        .update(vec![annotated("1700000000")], vec![sre.clone()]);
    let report = next_report(&mut running.reports).await;
    assert_eq!(report.trigger, "run-now");
    assert_eq!(
        report.view.unwrap().handled_run_now.as_deref(),
        Some("1700000000")
    );
    // The same value again (the watch sends the object back after status changes): no run.
    running
        .factory
        .update(vec![annotated("1700000000")], vec![sre.clone()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(model.requests().len(), 1);
    running
        .factory
        .update(vec![annotated("1700000060")], vec![sre]);
    let report = next_report(&mut running.reports).await;
    assert_eq!(report.outcome.output, "second");
    running.stop().await;
}

#[tokio::test]
async fn a_failed_run_is_retried_and_only_the_final_attempt_is_notified() {
    let model = ScriptedModel::start(vec![
        Scripted::status(
            400,
            anthropic::error("invalid_request_error", "prompt is too long"),
        ),
        Scripted::ok(anthropic::text("Recovered.", 10, 1)),
    ])
    .await;
    let hook = Receiver::start(200).await;
    let mut running = start(Secrets::default());
    let sre = agent("sre", json!({"baseUrl": model.anthropic_base()}));
    let flaky = task(
        "flaky",
        json!({"description": "Say hello.", "retry": {"count": 2, "delaySeconds": 0},
               "notify": {"webhook": {"url": hook.url("/hook")}}}),
    );
    running.factory.update(vec![flaky], vec![sre]);
    // Each attempt is reported as started and finished before the next one starts.
    let mut events = Vec::new();
    while events.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(10), running.reports.recv())
            .await
            .unwrap()
            .unwrap();
        events.push(event);
    }
    let order: Vec<String> = events
        .iter()
        .map(|e| match e {
            Reported::Started(s) => format!("started {}", s.attempt),
            Reported::Finished(r) => format!("finished {}", r.attempt),
        })
        .collect();
    assert_eq!(
        order,
        ["started 1", "finished 1", "started 2", "finished 2"]
    );
    let (Reported::Finished(first), Reported::Finished(second)) = (&events[1], &events[3]) else {
        unreachable!()
    };
    assert_eq!(first.outcome.phase, TaskPhase::Failed);
    assert_eq!(first.attempt, 1);
    assert!(first.followup.retry_at.is_some());
    assert!(
        first
            .outcome
            .error
            .as_deref()
            .unwrap()
            .contains("prompt is too long")
    );
    assert_eq!(second.outcome.phase, TaskPhase::Succeeded);
    assert_eq!(second.attempt, 2);
    assert_eq!(second.trigger, "once", "a retry keeps its trigger");
    assert_eq!(second.task_totals.runs, 2);
    assert_eq!(second.task_totals.failures, 1);
    let received = hook.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body["status"], "Succeeded");
    running.stop().await;
}

#[tokio::test]
async fn a_missing_api_key_fails_the_run_with_a_clear_error_and_a_failed_webhook_is_shown() {
    struct NoKey;
    impl linkmcp_factory::SecretSource for NoKey {
        fn agent_api_key(&self, _: &linkmcp_api::Agent) -> Option<String> {
            None
        }
        fn secret_value(&self, _: &linkmcp_api::common::SecretKeyRef) -> Option<String> {
            None
        }
    }
    let model = ScriptedModel::start(vec![]).await;
    let hook = Receiver::start(500).await;
    let host = Arc::new(FakeHost::new());
    let (reporter, mut reports) = ChannelReporter::new();
    let factory = Factory::new(
        FactoryConfig::new("data"),
        FactoryDeps {
            host,
            knowledge: Arc::new(NoKnowledge),
            secrets: Arc::new(NoKey),
            reporter: Arc::new(reporter),
            clock: Arc::new(SystemClock),
        },
    );
    let cancel = CancellationToken::new();
    let driver = tokio::spawn({
        let factory = factory.clone();
        let cancel = cancel.clone();
        async move { factory.run(cancel).await }
    });
    factory.update(
        vec![task(
            "t",
            json!({"description": "Say hello.", "notify": {"when": "failure", "webhook": {"url": hook.url("/h")}}}),
        )],
        vec![agent("sre", json!({"baseUrl": model.anthropic_base()}))],
    );
    let first = tokio::time::timeout(Duration::from_secs(10), reports.recv())
        .await
        .unwrap()
        .unwrap();
    let Reported::Started(started) = first else {
        panic!("a run is reported as started before it finishes")
    };
    assert_eq!((started.task.as_str(), started.attempt), ("t", 1));
    let report = next_report(&mut reports).await;
    assert_eq!(report.outcome.phase, TaskPhase::Failed);
    let error = report.outcome.error.as_deref().unwrap();
    assert!(
        error.contains("API key of agent sre was not found (Secret llm key apiKey)"),
        "{error}"
    );
    assert!(model.requests().is_empty());
    let notification_error = report.notification.error().unwrap();
    assert!(
        notification_error.contains("answered HTTP 500"),
        "{notification_error}"
    );
    assert!(
        !notification_error.contains("/h"),
        "the URL path is not shown"
    );
    assert_eq!(hook.received().len(), 1);
    cancel.cancel();
    driver.await.unwrap();
}

#[tokio::test]
async fn a_run_interrupted_by_a_server_stop_is_reported_failed_once() {
    let model = ScriptedModel::start(vec![]).await;
    let mut running = start(Secrets::default());
    let sre = agent(
        "sre",
        json!({"provider": "anthropic", "model": "claude-haiku-4-5-20251001", "baseUrl": model.anthropic_base()}),
    );
    // Status as the stopped server left it: Running since ten minutes ago.
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let mut nightly = task(
        "nightly",
        json!({"description": "Check the database.", "schedule": "0 3 1 1 *"}),
    );
    nightly.status = Some(
        serde_json::from_value(json!({"phase": "Running", "lastRunTime": started.to_string()}))
            .unwrap(),
    );
    running
        .factory
        .update(vec![nightly.clone()], vec![sre.clone()]);
    let report = next_report(&mut running.reports).await;
    assert_eq!(report.task, "nightly");
    assert_eq!(report.outcome.phase, TaskPhase::Failed);
    let error = report.outcome.error.clone().unwrap();
    assert!(error.contains("interrupted"), "{error}");
    assert_eq!(report.record.phase, TaskPhase::Failed);
    assert_eq!(report.record.trigger, "interrupted");
    assert_eq!(report.record.start_time.0, started);
    assert_eq!(report.task_totals.failures, 1);
    assert!(model.requests().is_empty(), "nothing was run again");

    // The same stale status seen again is not reported twice.
    running.factory.update(vec![nightly], vec![sre]);
    let again = tokio::time::timeout(Duration::from_millis(500), running.reports.recv()).await;
    assert!(again.is_err(), "reported twice: {again:?}");
    running.stop().await;
}
