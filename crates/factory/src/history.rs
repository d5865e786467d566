//! Run history and cost totals, in memory.
//!
//! The last [`RUNS_KEPT`] runs of each task, newest first, for the `dark_factory_history` tool
//! and the status' recent runs; totals (runs, failures, tokens, USD) per task and per agent for
//! `dark_factory_cost` and status. After a restart, [`History::restore_task`] and
//! [`History::restore_agent`] seed them from what status kept, so totals keep counting up.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use linkmcp_api::{
    Agent, AiTask,
    task::{RECENT_RUNS_IN_STATUS, RunRecord, TaskPhase},
};
use serde::Serialize;

use crate::{
    pricing::{format_usd, parse_usd},
    run::RunOutcome,
};

/// Runs kept per task.
pub const RUNS_KEPT: usize = 50;

/// One run as history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEntry {
    /// The task.
    pub task: String,
    /// The agent (empty for runs restored from status, which does not keep it).
    pub agent: String,
    /// What started it: `schedule`, `once`, `run-now`, `chain:<task>`, `retry`, `tool:<identity>`.
    pub trigger: String,
    /// Succeeded or Failed.
    pub phase: TaskPhase,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took.
    #[serde(serialize_with = "as_seconds")]
    pub duration: Duration,
    /// Short summary of the answer or error.
    pub summary: String,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Input tokens (0 when restored from status).
    pub input_tokens: u64,
    /// Output tokens (0 when restored from status).
    pub output_tokens: u64,
    /// USD.
    pub cost_usd: f64,
    /// The model (empty when restored from status).
    pub model: String,
    /// Tool calls the model made.
    pub tool_calls: usize,
    /// `find_tools` searches: extra round trips for tools selection left out.
    pub tool_searches: u32,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 10.0).round() / 10.0)
}

impl RunEntry {
    /// The entry of a finished run.
    pub fn from_outcome(task: &str, agent: &str, trigger: &str, outcome: &RunOutcome) -> Self {
        Self {
            task: task.to_owned(),
            agent: agent.to_owned(),
            trigger: trigger.to_owned(),
            phase: outcome.phase,
            started_at: outcome.started_at,
            duration: outcome.duration,
            summary: outcome.summary.clone(),
            tokens: outcome.usage.total(),
            input_tokens: outcome.usage.input_tokens,
            output_tokens: outcome.usage.output_tokens,
            cost_usd: outcome.cost.usd,
            model: outcome.model.clone(),
            tool_calls: outcome.tool_calls.len(),
            tool_searches: outcome.tool_searches,
            error: outcome.error.clone(),
        }
    }

    /// The run as status keeps it.
    pub fn record(&self) -> RunRecord {
        RunRecord {
            start_time: Time(self.started_at),
            phase: self.phase,
            trigger: self.trigger.clone(),
            duration: format_duration(self.duration),
            summary: self.summary.clone(),
            tokens: i64::try_from(self.tokens).unwrap_or(i64::MAX),
            cost: format_usd(self.cost_usd),
            tool_searches: (self.tool_searches > 0).then_some(i64::from(self.tool_searches)),
        }
    }

    fn from_record(task: &str, record: &RunRecord) -> Self {
        Self {
            task: task.to_owned(),
            agent: String::new(),
            trigger: record.trigger.clone(),
            phase: record.phase,
            started_at: record.start_time.0,
            duration: parse_duration(&record.duration).unwrap_or_default(),
            summary: record.summary.clone(),
            tokens: u64::try_from(record.tokens).unwrap_or(0),
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: parse_usd(&record.cost).unwrap_or(0.0),
            model: String::new(),
            tool_calls: 0,
            tool_searches: record
                .tool_searches
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            error: None,
        }
    }
}

/// Totals of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Runs.
    pub runs: u64,
    /// Failed runs.
    pub failures: u64,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Input tokens (of the runs whose split is known).
    pub input_tokens: u64,
    /// Output tokens (of the runs whose split is known).
    pub output_tokens: u64,
    /// USD.
    pub cost_usd: f64,
}

impl Totals {
    fn add(&mut self, entry: &RunEntry) {
        self.runs += 1;
        if entry.phase == TaskPhase::Failed {
            self.failures += 1;
        }
        self.tokens += entry.tokens;
        self.input_tokens += entry.input_tokens;
        self.output_tokens += entry.output_tokens;
        self.cost_usd += entry.cost_usd;
    }

    /// The cost as status shows it.
    pub fn cost(&self) -> String {
        format_usd(self.cost_usd)
    }
}

/// Runs and totals of every task and agent of one server.
#[derive(Debug, Clone, Default)]
pub struct History {
    runs: BTreeMap<String, VecDeque<RunEntry>>,
    tasks: BTreeMap<String, Totals>,
    agents: BTreeMap<String, Totals>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a finished run.
    pub fn record(&mut self, entry: RunEntry) {
        self.tasks
            .entry(entry.task.clone())
            .or_default()
            .add(&entry);
        if !entry.agent.is_empty() {
            self.agents
                .entry(entry.agent.clone())
                .or_default()
                .add(&entry);
        }
        let runs = self.runs.entry(entry.task.clone()).or_default();
        runs.push_front(entry);
        runs.truncate(RUNS_KEPT);
    }

    /// The runs kept for `task`, newest first.
    pub fn runs(&self, task: &str) -> Vec<RunEntry> {
        self.runs
            .get(task)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The most recent runs of `task` as status keeps them.
    pub fn recent_records(&self, task: &str) -> Vec<RunRecord> {
        self.runs
            .get(task)
            .map(|r| {
                r.iter()
                    .take(RECENT_RUNS_IN_STATUS)
                    .map(RunEntry::record)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Totals of `task`.
    pub fn task_totals(&self, task: &str) -> Totals {
        self.tasks.get(task).copied().unwrap_or_default()
    }

    /// Totals of `agent`.
    pub fn agent_totals(&self, agent: &str) -> Totals {
        self.agents.get(agent).copied().unwrap_or_default()
    }

    /// Totals of every task, by name.
    pub fn tasks(&self) -> &BTreeMap<String, Totals> {
        &self.tasks
    }

    /// Totals of every agent, by name.
    pub fn agents(&self) -> &BTreeMap<String, Totals> {
        &self.agents
    }

    /// Seeds a task's totals and runs from its status, unless the task is already known.
    pub fn restore_task(&mut self, task: &AiTask) {
        let Some(name) = task.metadata.name.as_deref() else {
            return;
        };
        let Some(status) = &task.status else {
            return;
        };
        if self.tasks.contains_key(name) {
            return;
        }
        let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        self.tasks.insert(
            name.to_owned(),
            Totals {
                runs: count(status.runs),
                failures: count(status.failures),
                tokens: count(status.tokens),
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: status.cost.as_deref().and_then(parse_usd).unwrap_or(0.0),
            },
        );
        let runs: VecDeque<RunEntry> = status
            .recent_runs
            .iter()
            .map(|r| RunEntry::from_record(name, r))
            .collect();
        if !runs.is_empty() {
            self.runs.insert(name.to_owned(), runs);
        }
    }

    /// Seeds an agent's totals from its status, unless the agent is already known.
    pub fn restore_agent(&mut self, agent: &Agent) {
        let (Some(name), Some(status)) = (agent.metadata.name.as_deref(), &agent.status) else {
            return;
        };
        if self.agents.contains_key(name) {
            return;
        }
        let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let input_tokens = count(status.input_tokens);
        let output_tokens = count(status.output_tokens);
        self.agents.insert(
            name.to_owned(),
            Totals {
                runs: count(status.runs),
                failures: 0,
                tokens: input_tokens + output_tokens,
                input_tokens,
                output_tokens,
                cost_usd: status.cost.as_deref().and_then(parse_usd).unwrap_or(0.0),
            },
        );
    }

    /// Drops a deleted task's runs and totals (its agent's totals keep its share).
    pub fn forget_task(&mut self, task: &str) {
        self.runs.remove(task);
        self.tasks.remove(task);
    }
}

/// A duration as status shows it: `12.4s`.
pub fn format_duration(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Reads back a duration written by [`format_duration`].
pub fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use linkmcp_api::{AiTaskStatus, agent::AgentStatus};

    use super::*;

    fn entry(task: &str, agent: &str, phase: TaskPhase, tokens: (u64, u64), usd: f64) -> RunEntry {
        RunEntry {
            task: task.into(),
            agent: agent.into(),
            trigger: "schedule".into(),
            phase,
            started_at: Timestamp::from_second(1_700_000_000).unwrap(),
            duration: Duration::from_millis(3250),
            summary: "ok".into(),
            tokens: tokens.0 + tokens.1,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            cost_usd: usd,
            model: "m".into(),
            tool_calls: 2,
            tool_searches: 0,
            error: None,
        }
    }

    #[test]
    fn history_keeps_the_last_fifty_runs_newest_first() {
        let mut h = History::new();
        for i in 0..60 {
            let mut e = entry("t", "a", TaskPhase::Succeeded, (1, 1), 0.0);
            e.summary = format!("run {i}");
            h.record(e);
        }
        let runs = h.runs("t");
        assert_eq!(runs.len(), RUNS_KEPT);
        assert_eq!(runs[0].summary, "run 59");
        assert_eq!(runs[49].summary, "run 10");
        assert_eq!(h.task_totals("t").runs, 60, "totals count every run");
        assert_eq!(h.recent_records("t").len(), RECENT_RUNS_IN_STATUS);
        assert!(h.runs("other").is_empty());
    }

    #[test]
    fn totals_add_up_per_task_and_per_agent() {
        let mut h = History::new();
        h.record(entry("a", "sre", TaskPhase::Succeeded, (100, 10), 0.01));
        h.record(entry("b", "sre", TaskPhase::Failed, (50, 5), 0.005));
        h.record(entry("b", "dba", TaskPhase::Succeeded, (10, 1), 0.001));
        let sre = h.agent_totals("sre");
        assert_eq!((sre.runs, sre.failures, sre.tokens), (2, 1, 165));
        assert_eq!((sre.input_tokens, sre.output_tokens), (150, 15));
        assert!((sre.cost_usd - 0.015).abs() < 1e-12);
        assert_eq!(sre.cost(), "$0.0150");
        let b = h.task_totals("b");
        assert_eq!((b.runs, b.failures, b.tokens), (2, 1, 66));
        assert_eq!(h.tasks().len(), 2);
        assert_eq!(h.agents().len(), 2);
        h.forget_task("b");
        assert_eq!(h.task_totals("b"), Totals::default());
        assert_eq!(h.agent_totals("dba").runs, 1);
    }

    #[test]
    fn a_run_entry_becomes_a_status_record() {
        let r = entry("t", "a", TaskPhase::Failed, (1200, 34), 0.01234).record();
        assert_eq!(r.duration, "3.2s");
        assert_eq!(r.tokens, 1234);
        assert_eq!(r.cost, "$0.0123");
        assert_eq!(r.phase, TaskPhase::Failed);
        assert_eq!(r.start_time.0.as_second(), 1_700_000_000);
    }

    #[test]
    fn status_seeds_totals_and_runs_once() {
        let mut task: AiTask = serde_json::from_value(serde_json::json!({
            "apiVersion": "linkmcp.io/v1alpha1", "kind": "AiTask",
            "metadata": {"name": "t"},
            "spec": {"serverRef": {"name": "s"}, "description": "d"}
        }))
        .unwrap();
        task.status = Some(AiTaskStatus {
            runs: Some(7),
            failures: Some(2),
            tokens: Some(9000),
            cost: Some("$0.0420".into()),
            recent_runs: vec![entry("t", "a", TaskPhase::Succeeded, (1, 2), 0.5).record()],
            ..AiTaskStatus::default()
        });
        let mut h = History::new();
        h.restore_task(&task);
        let t = h.task_totals("t");
        assert_eq!((t.runs, t.failures, t.tokens), (7, 2, 9000));
        assert!((t.cost_usd - 0.042).abs() < 1e-12);
        assert_eq!(h.runs("t")[0].tokens, 3);
        assert_eq!(h.runs("t")[0].duration, Duration::from_millis(3200));

        h.record(entry("t", "a", TaskPhase::Succeeded, (10, 0), 0.0));
        h.restore_task(&task);
        assert_eq!(h.task_totals("t").runs, 8, "a known task is not reset");

        let mut agent: Agent = serde_json::from_value(serde_json::json!({
            "apiVersion": "linkmcp.io/v1alpha1", "kind": "Agent",
            "metadata": {"name": "sre"},
            "spec": {"serverRef": {"name": "s"}}
        }))
        .unwrap();
        agent.status = Some(AgentStatus {
            runs: Some(3),
            input_tokens: Some(100),
            output_tokens: Some(20),
            cost: Some("$1.0000".into()),
            ..AgentStatus::default()
        });
        h.restore_agent(&agent);
        let a = h.agent_totals("sre");
        assert_eq!((a.runs, a.tokens, a.input_tokens), (3, 120, 100));
        assert!((a.cost_usd - 1.0).abs() < 1e-12);
    }

    #[test]
    fn durations_round_trip_through_status_text() {
        assert_eq!(format_duration(Duration::from_millis(12_440)), "12.4s");
        assert_eq!(parse_duration("12.4s"), Some(Duration::from_millis(12_400)));
        assert_eq!(parse_duration("12.4"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
