//! The scheduler through its public API, on tasks written as an operator writes them (YAML),
//! with the clock as a parameter.

#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use linkmcp_api::{Agent, AiTask};
use linkmcp_factory::{Scheduler, Trigger, schedule::next_run};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const AGENT: &str = r#"
apiVersion: linkmcp.io/v1alpha1
kind: Agent
metadata: {name: sre, namespace: platform}
spec:
  serverRef: {name: data}
  provider: anthropic
"#;

/// The sample task: weekday mornings at 07:00 in Paris, last run on Friday.
const DB_HEALTH: &str = r#"
apiVersion: linkmcp.io/v1alpha1
kind: AiTask
metadata:
  name: db-health
  namespace: platform
  creationTimestamp: "2026-01-05T09:00:00Z"
spec:
  serverRef: {name: data}
  agentRef: {name: sre}
  description: Check the orders PostgreSQL database.
  schedule: "0 7 * * 1-5"
  timeZone: Europe/Paris
status:
  lastRunTime: "2026-02-27T06:00:03Z"
  runs: 40
"#;

fn objects() -> (AiTask, Agent) {
    (
        serde_yaml::from_str(DB_HEALTH).unwrap(),
        serde_yaml::from_str(AGENT).unwrap(),
    )
}

#[test]
fn the_next_run_is_computed_in_the_task_time_zone() {
    // Friday 27 February 2026, 08:00 UTC: the next weekday 07:00 in Paris is Monday 06:00 UTC.
    assert_eq!(
        next_run(
            "0 7 * * 1-5",
            Some("Europe/Paris"),
            ts("2026-02-27T08:00:00Z")
        )
        .unwrap(),
        Some(ts("2026-03-02T06:00:00Z"))
    );
    // The same cron in UTC, and in a zone west of UTC.
    assert_eq!(
        next_run("0 7 * * 1-5", None, ts("2026-02-27T08:00:00Z")).unwrap(),
        Some(ts("2026-03-02T07:00:00Z"))
    );
    assert_eq!(
        next_run(
            "0 7 * * 1-5",
            Some("America/Los_Angeles"),
            ts("2026-02-27T08:00:00Z")
        )
        .unwrap(),
        Some(ts("2026-02-27T15:00:00Z"))
    );

    let (task, agent) = objects();
    let mut s = Scheduler::new("data");
    s.update(vec![task], vec![agent], ts("2026-02-27T08:00:00Z"));
    let view = s.view("db-health", ts("2026-02-27T08:00:00Z")).unwrap();
    assert_eq!(view.next_run, Some(ts("2026-03-02T06:00:00Z")));
    assert_eq!(view.agent.as_deref(), Some("sre"));
    assert_eq!(view.blocked, None);
}

#[test]
fn after_a_weekend_of_downtime_the_missed_morning_runs_once() {
    let (task, agent) = objects();
    let mut s = Scheduler::new("data");
    // The server comes back on Wednesday at 10:00 UTC: Monday, Tuesday and Wednesday mornings
    // were missed.
    let back = ts("2026-03-04T10:00:00Z");
    s.update(vec![task], vec![agent], back);
    let due = s.take_due(back);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].request.trigger, Trigger::Schedule);
    s.finished(&due[0].request, true, "fine", back);
    assert!(
        s.take_due(ts("2026-03-04T12:00:00Z")).is_empty(),
        "one run, not three"
    );
    assert_eq!(s.next_wakeup(back), Some(ts("2026-03-05T06:00:00Z")));
    assert_eq!(s.take_due(ts("2026-03-05T06:00:00Z")).len(), 1);
}

#[test]
fn run_now_triggers_one_run_per_annotation_value() {
    let (task, agent) = objects();
    let annotated: AiTask = {
        let mut t = task.clone();
        t.metadata.annotations =
            Some([("linkmcp.io/run-now".to_owned(), "1772445600".to_owned())].into());
        t
    };
    let now = ts("2026-02-27T08:00:00Z");
    let mut s = Scheduler::new("data");
    s.update(vec![task], vec![agent.clone()], now);
    assert!(s.take_due(now).is_empty());
    s.update(vec![annotated.clone()], vec![agent.clone()], now);
    let due = s.take_due(now);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].request.trigger.to_string(), "run-now");
    s.finished(&due[0].request, true, "ok", now);
    s.update(vec![annotated], vec![agent], now);
    assert!(s.take_due(now).is_empty());
    assert_eq!(
        s.view("db-health", now).unwrap().handled_run_now.as_deref(),
        Some("1772445600")
    );
}
