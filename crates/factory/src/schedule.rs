//! The scheduler core: which task runs when, as a pure state machine over an injected clock.
//!
//! The server hands it the live Agents and AiTasks ([`Scheduler::update`]); the driver asks what
//! is due ([`Scheduler::take_due`]), runs it, and reports the end ([`Scheduler::finished`]).
//! Time is always a parameter, so every rule is testable without sleeping:
//!
//! - a 5-field cron (or `@daily`-style macro) read in UTC or the task's IANA `timeZone`;
//! - no schedule: one run when the task first appears, unless its status says it already ran,
//!   and not for a task that is only ever started by another task's `next`;
//! - after downtime a missed schedule runs once, not once per missed slot; the baseline is the
//!   task's last run from status (else its creation), and slots that pass during a run, while
//!   suspended or while its agent is stopped are skipped, not made up later;
//! - `linkmcp.io/run-now` with a value not yet handled (status `handledRunNow`) runs it once,
//!   even when suspended; while its agent is stopped the value is marked handled without a
//!   run, so re-enabling the agent does not fire old requests;
//! - one run per task at a time; retries per the task's `retry`; on success each `next` task
//!   runs with the output as context; on failure the chain stops;
//! - an Agent with `enabled: false` or annotated `linkmcp.io/paused=true` stops its tasks.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
};

use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use linkmcp_api::{Agent, AiTask, names::annotation};

use crate::run::PreviousOutput;

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The task's cron schedule.
    Schedule,
    /// A task without a schedule, run once when it first appeared.
    Once,
    /// The `linkmcp.io/run-now` annotation.
    RunNow,
    /// A previous task of a chain succeeded.
    Chain {
        /// That task.
        from: String,
    },
    /// A caller of the factory (the `dark_factory_run_now` tool).
    Tool {
        /// The caller's identity.
        identity: String,
    },
}

impl fmt::Display for Trigger {
    /// As status records it: `schedule`, `once`, `run-now`, `chain:<task>`, `tool:<identity>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Schedule => f.write_str("schedule"),
            Trigger::Once => f.write_str("once"),
            Trigger::RunNow => f.write_str("run-now"),
            Trigger::Chain { from } => write!(f, "chain:{from}"),
            Trigger::Tool { identity } => write!(f, "tool:{identity}"),
        }
    }
}

/// A run to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The task.
    pub task: String,
    /// What started it (a retry keeps its first attempt's trigger).
    pub trigger: Trigger,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// The previous task's output, for a chained run.
    pub context: Option<PreviousOutput>,
    /// Whether success starts the task's `next` tasks.
    pub follow_chain: bool,
    /// The tasks of the chain that led here, oldest first (cycle guard).
    pub chain: Vec<String>,
    /// Not before this time (retries wait their delay).
    pub not_before: Option<Timestamp>,
}

impl RunRequest {
    fn new(task: &str, trigger: Trigger) -> Self {
        Self {
            task: task.to_owned(),
            trigger,
            attempt: 1,
            context: None,
            follow_chain: true,
            chain: Vec::new(),
            not_before: None,
        }
    }

    fn is_retry(&self) -> bool {
        self.attempt > 1
    }
}

/// A run to start now, with the objects it runs as they are at this moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DueRun {
    /// The request.
    pub request: RunRequest,
    /// The task.
    pub task: AiTask,
    /// The agent that runs it.
    pub agent: Agent,
}

/// Why a task does not run on its own now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// `spec.suspend` is true (run-now still works).
    Suspended,
    /// The schedule or time zone cannot be read.
    InvalidSchedule(String),
    /// The task's `agentRef` names no Agent of this server.
    AgentMissing(String),
    /// The agent has `enabled: false`.
    AgentDisabled(String),
    /// The agent is annotated `linkmcp.io/paused=true`.
    AgentPaused(String),
    /// No `agentRef`, and the server has no enabled, unpaused Agent.
    NoAgent,
}

impl Blocked {
    /// Whether only scheduled runs are held back (a run-now may still run).
    fn allows_run_now(&self) -> bool {
        matches!(self, Blocked::Suspended | Blocked::InvalidSchedule(_))
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocked::Suspended => f.write_str("the task is suspended (spec.suspend)"),
            Blocked::InvalidSchedule(e) => write!(f, "the schedule cannot be used: {e}"),
            Blocked::AgentMissing(a) => write!(f, "agent {a} does not exist on this server"),
            Blocked::AgentDisabled(a) => write!(f, "agent {a} is disabled (spec.enabled: false)"),
            Blocked::AgentPaused(a) => {
                write!(f, "agent {a} is paused ({}=true)", annotation::PAUSED)
            }
            Blocked::NoAgent => {
                f.write_str("the task names no agent and the server has no enabled, unpaused Agent")
            }
        }
    }
}

/// What the scheduler knows of one task, for status and the `dark_factory_status` tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The task.
    pub name: String,
    /// The agent that would run it now.
    pub agent: Option<String>,
    /// Whether a run is in progress.
    pub running: bool,
    /// When the schedule next fires (none without a schedule, or while held back).
    pub next_run: Option<Timestamp>,
    /// Why it does not run on its own now.
    pub blocked: Option<Blocked>,
    /// The last run-now value acted on (status `handledRunNow`).
    pub handled_run_now: Option<String>,
    /// Runs waiting (retries, chained runs, tool requests).
    pub queued: usize,
}

/// How a run's end changed the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Followup {
    /// When the failed run is retried.
    pub retry_at: Option<Timestamp>,
    /// The `next` tasks queued with this run's output.
    pub chained: Vec<String>,
    /// `next` tasks not queued, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// What the end of a run queues: its retry or its `next` tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// The summary for the report.
    pub followup: Followup,
    requests: Vec<RunRequest>,
}

/// A parsed schedule.
#[derive(Debug, Clone)]
enum Schedule {
    /// No schedule: run once.
    Once,
    /// A cron in a zone.
    Cron { cron: Box<Cron>, zone: TimeZone },
}

/// A task and what the scheduler remembers of it.
#[derive(Debug, Clone)]
struct Entry {
    task: AiTask,
    schedule: Result<Schedule, String>,
    /// Schedule slots at or before this are not due.
    baseline: Timestamp,
    /// A run started (in this process, or status says one did).
    ran: bool,
    /// The last run-now value this replica acted on (status may know a newer one).
    handled_run_now: Option<String>,
    running: bool,
    queue: VecDeque<RunRequest>,
    /// Whether the task could run on its own at the last update.
    runnable: bool,
}

/// The scheduler of one McpServer's tasks.
#[derive(Debug, Clone)]
pub struct Scheduler {
    server: String,
    tasks: BTreeMap<String, Entry>,
    agents: BTreeMap<String, Agent>,
}

impl Scheduler {
    /// A scheduler for the tasks and agents of McpServer `server`.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            tasks: BTreeMap::new(),
            agents: BTreeMap::new(),
        }
    }

    /// Replaces the known Agents and AiTasks with the current ones (those of other servers are
    /// ignored). Returns the names of tasks that disappeared.
    pub fn update(
        &mut self,
        tasks: Vec<AiTask>,
        agents: Vec<Agent>,
        now: Timestamp,
    ) -> Vec<String> {
        self.agents = agents
            .into_iter()
            .filter(|a| a.spec.server_ref.name == self.server)
            .filter_map(|a| Some((a.metadata.name.clone()?, a)))
            .collect();
        let mut seen = BTreeMap::new();
        for task in tasks {
            if task.spec.server_ref.name != self.server {
                continue;
            }
            let Some(name) = task.metadata.name.clone() else {
                continue;
            };
            seen.insert(name, task);
        }
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !seen.contains_key(*n))
            .cloned()
            .collect();
        for name in &gone {
            self.tasks.remove(name);
        }
        for (name, task) in seen {
            match self.tasks.get_mut(&name) {
                Some(entry) => {
                    let changed = entry.task.spec.schedule != task.spec.schedule
                        || entry.task.spec.time_zone != task.spec.time_zone;
                    if changed {
                        entry.schedule =
                            parse_schedule(&task.spec.schedule, task.spec.time_zone.as_deref());
                        entry.baseline = entry.baseline.max(now);
                    }
                    // Status is written by whichever replica leads: what it says ran is not
                    // due again here, should this replica lead next.
                    if let Some(last_run) = last_run_time(&task) {
                        entry.baseline = entry.baseline.max(last_run);
                    }
                    entry.ran |= status_says_it_ran(&task);
                    entry.task = task;
                }
                None => {
                    let entry = Entry::new(task, now);
                    self.tasks.insert(name, entry);
                }
            }
        }
        // A task that becomes runnable again starts from now: what it missed while held back
        // is not made up.
        let names: Vec<String> = self.tasks.keys().cloned().collect();
        for name in names {
            let runnable = self.blocked(&name).is_none();
            if let Some(entry) = self.tasks.get_mut(&name) {
                if runnable && !entry.runnable {
                    entry.baseline = entry.baseline.max(now);
                }
                entry.runnable = runnable;
            }
        }
        gone
    }

    /// The runs to start now, each marked as running. At most one per task; a task already
    /// running waits (schedule slots passing meanwhile are skipped).
    pub fn take_due(&mut self, now: Timestamp) -> Vec<DueRun> {
        let names: Vec<String> = self.tasks.keys().cloned().collect();
        let mut due = Vec::new();
        for name in names {
            if let Some(request) = self.next_request(&name, now)
                && let Some(run) = self.start(request)
            {
                due.push(run);
            }
        }
        due
    }

    /// Picks the request to start for `name`, updating what it consumes.
    fn next_request(&mut self, name: &str, now: Timestamp) -> Option<RunRequest> {
        let blocked = self.blocked(name);
        let chain_targets = self.chain_targets();
        let entry = self.tasks.get_mut(name)?;
        let last_slot = match &entry.schedule {
            Ok(Schedule::Cron { cron, zone }) => previous_slot(cron, zone, now),
            _ => None,
        };
        if entry.running {
            if let Some(slot) = last_slot
                && slot > entry.baseline
            {
                tracing::info!(task = name, %slot, "schedule slot skipped: the previous run is still going");
                entry.baseline = slot;
            }
            return None;
        }

        // Queued runs (retries, chained runs, tool requests) whose time has come.
        while let Some(position) = entry
            .queue
            .iter()
            .position(|r| r.not_before.is_none_or(|t| t <= now))
        {
            let request = entry.queue.remove(position)?;
            let held = match (&blocked, &request.trigger) {
                (None, _) => None,
                (Some(b), Trigger::Tool { .. }) if b.allows_run_now() => None,
                (Some(b), _) => Some(b),
            };
            match held {
                None => return Some(request),
                Some(reason) => {
                    tracing::info!(task = name, trigger = %request.trigger, %reason, "queued run dropped");
                }
            }
        }

        // The run-now annotation.
        let run_now = entry
            .task
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(annotation::RUN_NOW))
            .filter(|v| !v.is_empty())
            .cloned();
        let handled_in_status = entry
            .task
            .status
            .as_ref()
            .and_then(|s| s.handled_run_now.as_ref());
        if let Some(value) = run_now
            && entry.handled_run_now.as_ref() != Some(&value)
            && handled_in_status != Some(&value)
        {
            entry.handled_run_now = Some(value);
            match &blocked {
                Some(reason) if !reason.allows_run_now() => {
                    tracing::info!(task = name, %reason, "run-now not run");
                }
                _ => return Some(RunRequest::new(name, Trigger::RunNow)),
            }
        }

        if blocked.is_some() {
            return None;
        }
        match &entry.schedule {
            Ok(Schedule::Cron { .. }) => match last_slot {
                Some(slot) if slot > entry.baseline => {
                    entry.baseline = slot;
                    Some(RunRequest::new(name, Trigger::Schedule))
                }
                _ => None,
            },
            Ok(Schedule::Once) if !entry.ran && !chain_targets.contains(&name.to_owned()) => {
                Some(RunRequest::new(name, Trigger::Once))
            }
            _ => None,
        }
    }

    /// Marks `request` as running and returns it with its objects.
    fn start(&mut self, request: RunRequest) -> Option<DueRun> {
        let agent = self.agent_of(&request.task).ok()?.clone();
        let entry = self.tasks.get_mut(&request.task)?;
        entry.running = true;
        entry.ran = true;
        if !request.is_retry() && !matches!(request.trigger, Trigger::Chain { .. }) {
            // A new run supersedes a pending retry of an older one.
            entry.queue.retain(|r| !r.is_retry());
        }
        Some(DueRun {
            task: entry.task.clone(),
            agent,
            request,
        })
    }

    /// Records the end of a run started by `request`: queues its retry after a failure, or its
    /// `next` tasks with `output` as context after a success. [`Scheduler::plan`] followed by
    /// [`Scheduler::complete`].
    pub fn finished(
        &mut self,
        request: &RunRequest,
        succeeded: bool,
        output: &str,
        now: Timestamp,
    ) -> Followup {
        let planned = self.plan(request, succeeded, output, now);
        let followup = planned.followup.clone();
        self.complete(request, planned);
        followup
    }

    /// What the end of a run started by `request` will queue, without changing anything yet:
    /// the driver reports the run first, then [`Scheduler::complete`]s it, so that the next run
    /// of the same task is never reported before this one.
    pub fn plan(
        &self,
        request: &RunRequest,
        succeeded: bool,
        output: &str,
        now: Timestamp,
    ) -> Planned {
        let mut planned = Planned::default();
        let Some(entry) = self.tasks.get(&request.task) else {
            return planned;
        };
        if !succeeded {
            let retries = u32::try_from(entry.task.spec.retry.count.max(0)).unwrap_or(0);
            if request.attempt <= retries {
                let delay = SignedDuration::from_secs(i64::from(
                    entry.task.spec.retry.delay_seconds.max(0),
                ));
                let at = now.checked_add(delay).unwrap_or(now);
                let mut retry = request.clone();
                retry.attempt += 1;
                retry.not_before = Some(at);
                planned.requests.push(retry);
                planned.followup.retry_at = Some(at);
            }
            return planned;
        }
        if !request.follow_chain {
            return planned;
        }
        let mut chain = request.chain.clone();
        chain.push(request.task.clone());
        for target in &entry.task.spec.next {
            let skip = if chain.contains(target) {
                Some("it is already part of this chain (a cycle)")
            } else if !self.tasks.contains_key(target) {
                Some("no such AiTask on this server")
            } else {
                None
            };
            if let Some(reason) = skip {
                planned
                    .followup
                    .skipped
                    .push((target.clone(), reason.to_owned()));
                continue;
            }
            planned.requests.push(RunRequest {
                task: target.clone(),
                trigger: Trigger::Chain {
                    from: request.task.clone(),
                },
                attempt: 1,
                context: Some(PreviousOutput {
                    task: request.task.clone(),
                    output: output.to_owned(),
                }),
                follow_chain: true,
                chain: chain.clone(),
                not_before: None,
            });
            planned.followup.chained.push(target.clone());
        }
        planned
    }

    /// Ends the run started by `request` and queues what `planned` holds.
    pub fn complete(&mut self, request: &RunRequest, planned: Planned) {
        if let Some(entry) = self.tasks.get_mut(&request.task) {
            entry.running = false;
        }
        for queued in planned.requests {
            if let Some(entry) = self.tasks.get_mut(&queued.task) {
                entry.queue.push_back(queued);
            }
        }
    }

    /// Queues a run of `task` asked for by a caller (the `dark_factory_run_now` tool). It runs
    /// even when the task is suspended, not when its agent is stopped.
    pub fn request_run(
        &mut self,
        task: &str,
        identity: &str,
        follow_chain: bool,
    ) -> Result<(), String> {
        if !self.tasks.contains_key(task) {
            return Err(format!("no AiTask named {task} on server {}", self.server));
        }
        if let Some(reason) = self.blocked(task).filter(|b| !b.allows_run_now()) {
            return Err(format!("task {task} cannot run: {reason}"));
        }
        let entry = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| format!("no AiTask named {task}"))?;
        let mut request = RunRequest::new(
            task,
            Trigger::Tool {
                identity: identity.to_owned(),
            },
        );
        request.follow_chain = follow_chain;
        entry.queue.push_back(request);
        Ok(())
    }

    /// Forgets the runs in progress (their driver stopped): the tasks may be started again.
    pub fn abandon_running(&mut self) {
        for entry in self.tasks.values_mut() {
            entry.running = false;
        }
    }

    /// When [`Scheduler::take_due`] may next have something: the earliest schedule slot or
    /// queued run after `now`, or `now` itself when something is due already.
    pub fn next_wakeup(&self, now: Timestamp) -> Option<Timestamp> {
        let mut earliest: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        };
        for (name, entry) in &self.tasks {
            // A running task's queue waits for its end, which wakes the driver by itself.
            if !entry.running {
                for request in &entry.queue {
                    consider(request.not_before.unwrap_or(now).max(now));
                }
            }
            if self.blocked(name).is_some() {
                continue;
            }
            if let Ok(Schedule::Cron { cron, zone }) = &entry.schedule
                && let Some(slot) = next_slot(cron, zone, now)
            {
                consider(slot);
            }
        }
        earliest
    }

    /// What the scheduler knows of `task`.
    pub fn view(&self, task: &str, now: Timestamp) -> Option<TaskView> {
        let entry = self.tasks.get(task)?;
        let blocked = self.blocked(task);
        let next_run = match (&entry.schedule, &blocked) {
            (Ok(Schedule::Cron { cron, zone }), None) => next_slot(cron, zone, now),
            _ => None,
        };
        Some(TaskView {
            name: task.to_owned(),
            agent: self
                .agent_of(task)
                .ok()
                .and_then(|a| a.metadata.name.clone()),
            running: entry.running,
            next_run,
            blocked,
            handled_run_now: entry.handled_run_now.clone().or_else(|| {
                entry
                    .task
                    .status
                    .as_ref()
                    .and_then(|s| s.handled_run_now.clone())
            }),
            queued: entry.queue.len(),
        })
    }

    /// Views of every task, by name.
    pub fn views(&self, now: Timestamp) -> Vec<TaskView> {
        self.tasks
            .keys()
            .filter_map(|name| self.view(name, now))
            .collect()
    }

    /// The known tasks.
    pub fn tasks(&self) -> impl Iterator<Item = &AiTask> {
        self.tasks.values().map(|e| &e.task)
    }

    /// The known agents.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// Why `task` does not run on its own now, if it does not.
    pub fn blocked(&self, task: &str) -> Option<Blocked> {
        let entry = self.tasks.get(task)?;
        if let Err(reason) = self.agent_of(task) {
            return Some(reason);
        }
        if entry.task.spec.suspend {
            return Some(Blocked::Suspended);
        }
        if let Err(e) = &entry.schedule {
            return Some(Blocked::InvalidSchedule(e.clone()));
        }
        None
    }

    /// The agent that runs `task`: its `agentRef`, else the first enabled, unpaused Agent.
    fn agent_of(&self, task: &str) -> Result<&Agent, Blocked> {
        let entry = self.tasks.get(task).ok_or(Blocked::NoAgent)?;
        match &entry.task.spec.agent_ref {
            Some(r) => {
                let agent = self
                    .agents
                    .get(&r.name)
                    .ok_or_else(|| Blocked::AgentMissing(r.name.clone()))?;
                if !agent.spec.enabled {
                    return Err(Blocked::AgentDisabled(r.name.clone()));
                }
                if is_paused(agent) {
                    return Err(Blocked::AgentPaused(r.name.clone()));
                }
                Ok(agent)
            }
            None => self
                .agents
                .values()
                .find(|a| a.spec.enabled && !is_paused(a))
                .ok_or(Blocked::NoAgent),
        }
    }

    /// Tasks named in some task's `next`.
    fn chain_targets(&self) -> Vec<String> {
        self.tasks
            .values()
            .flat_map(|e| e.task.spec.next.iter().cloned())
            .collect()
    }
}

impl Entry {
    fn new(task: AiTask, now: Timestamp) -> Self {
        let last_run = last_run_time(&task);
        let created = task.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let baseline = match (last_run, created) {
            (Some(run), Some(created)) => run.max(created),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now,
        };
        Self {
            schedule: parse_schedule(&task.spec.schedule, task.spec.time_zone.as_deref()),
            baseline,
            ran: status_says_it_ran(&task),
            handled_run_now: None,
            running: false,
            queue: VecDeque::new(),
            runnable: true,
            task,
        }
    }
}

fn last_run_time(task: &AiTask) -> Option<Timestamp> {
    task.status
        .as_ref()
        .and_then(|s| s.last_run_time.as_ref())
        .map(|t| t.0)
}

fn status_says_it_ran(task: &AiTask) -> bool {
    task.status
        .as_ref()
        .is_some_and(|s| s.last_run_time.is_some() || s.runs.is_some_and(|r| r > 0))
}

/// Whether an Agent is paused by annotation.
pub fn is_paused(agent: &Agent) -> bool {
    agent
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation::PAUSED))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn parse_schedule(schedule: &str, zone: Option<&str>) -> Result<Schedule, String> {
    if schedule.trim().is_empty() {
        return Ok(Schedule::Once);
    }
    let zone = match zone {
        Some(name) => {
            TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))?
        }
        None => TimeZone::UTC,
    };
    let cron = cron_parser()
        .parse(schedule)
        .map_err(|e| format!("invalid schedule {schedule:?}: {e}"))?;
    Ok(Schedule::Cron {
        cron: Box::new(cron),
        zone,
    })
}

fn cron_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// The next time `schedule` (5-field cron or macro) fires strictly after `after`, read in
/// `zone` (IANA name; UTC when absent).
pub fn next_run(
    schedule: &str,
    zone: Option<&str>,
    after: Timestamp,
) -> Result<Option<Timestamp>, String> {
    match parse_schedule(schedule, zone)? {
        Schedule::Once => Ok(None),
        Schedule::Cron { cron, zone } => Ok(next_slot(&cron, &zone, after)),
    }
}

fn next_slot(cron: &Cron, zone: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&after.to_zoned(zone.clone()), false)
        .ok()
        .map(|z| z.timestamp())
}

fn previous_slot(cron: &Cron, zone: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    cron.find_previous_occurrence(&at.to_zoned(zone.clone()), true)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use linkmcp_api::AiTaskStatus;
    use serde_json::json;

    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn task(name: &str, spec: serde_json::Value) -> AiTask {
        let mut spec_value =
            json!({"serverRef": {"name": "s"}, "agentRef": {"name": "sre"}, "description": "d"});
        for (k, v) in spec.as_object().unwrap() {
            spec_value[k] = v.clone();
        }
        let mut t: AiTask = serde_json::from_value(json!({
            "apiVersion": "linkmcp.io/v1alpha1", "kind": "AiTask",
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec_value,
        }))
        .unwrap();
        t.metadata.annotations = None;
        t
    }

    fn agent(name: &str, enabled: bool) -> Agent {
        serde_json::from_value(json!({
            "apiVersion": "linkmcp.io/v1alpha1", "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"serverRef": {"name": "s"}, "enabled": enabled}
        }))
        .unwrap()
    }

    fn ran_at(mut t: AiTask, at: &str) -> AiTask {
        t.status = Some(AiTaskStatus {
            last_run_time: Some(Time(ts(at))),
            runs: Some(1),
            ..AiTaskStatus::default()
        });
        t
    }

    fn annotate(mut t: AiTask, key: &str, value: &str) -> AiTask {
        t.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        t
    }

    fn names(due: &[DueRun]) -> Vec<(String, String)> {
        due.iter()
            .map(|d| (d.request.task.clone(), d.request.trigger.to_string()))
            .collect()
    }

    fn finish(s: &mut Scheduler, due: &[DueRun], ok: bool, now: Timestamp) -> Followup {
        let mut last = Followup::default();
        for d in due {
            last = s.finished(&d.request, ok, "output", now);
        }
        last
    }

    #[test]
    fn next_run_reads_cron_in_utc_or_the_task_zone() {
        let after = ts("2026-03-02T06:30:00Z");
        assert_eq!(
            next_run("0 7 * * 1-5", None, after).unwrap(),
            Some(ts("2026-03-02T07:00:00Z"))
        );
        // 07:00 in Paris is 06:00 UTC in winter: already past on Monday, so Tuesday.
        assert_eq!(
            next_run("0 7 * * 1-5", Some("Europe/Paris"), after).unwrap(),
            Some(ts("2026-03-03T06:00:00Z"))
        );
        // After the spring change (29 March 2026), 07:00 Paris is 05:00 UTC.
        assert_eq!(
            next_run(
                "0 7 * * *",
                Some("Europe/Paris"),
                ts("2026-03-30T00:00:00Z")
            )
            .unwrap(),
            Some(ts("2026-03-30T05:00:00Z"))
        );
        assert_eq!(
            next_run("*/15 * * * *", None, ts("2026-03-02T06:31:10Z")).unwrap(),
            Some(ts("2026-03-02T06:45:00Z"))
        );
        assert_eq!(
            next_run("@daily", Some("America/New_York"), after).unwrap(),
            Some(ts("2026-03-03T05:00:00Z"))
        );
        // Vixie cron: a restricted day of month OR a restricted day of week.
        assert_eq!(
            next_run("0 0 13 * 5", None, ts("2026-03-01T00:00:00Z")).unwrap(),
            Some(ts("2026-03-06T00:00:00Z"))
        );
        assert_eq!(next_run("", None, after).unwrap(), None);
        assert!(
            next_run("0 7 * * 1-5", Some("Mars/Olympus"), after)
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(
            next_run("61 * * * *", None, after)
                .unwrap_err()
                .contains("invalid schedule")
        );
        assert!(
            next_run("0 0 7 * * 1", None, after).is_err(),
            "six fields are refused"
        );
    }

    #[test]
    fn slots_fire_on_time_and_only_once() {
        let mut s = Scheduler::new("s");
        let t = ran_at(
            task("hourly", json!({"schedule": "0 * * * *"})),
            "2026-03-02T10:00:00Z",
        );
        s.update(
            vec![t],
            vec![agent("sre", true)],
            ts("2026-03-02T10:05:00Z"),
        );
        assert!(s.take_due(ts("2026-03-02T10:59:59Z")).is_empty());
        assert_eq!(
            s.next_wakeup(ts("2026-03-02T10:30:00Z")),
            Some(ts("2026-03-02T11:00:00Z"))
        );
        let due = s.take_due(ts("2026-03-02T11:00:00Z"));
        assert_eq!(names(&due), [("hourly".into(), "schedule".into())]);
        assert_eq!(due[0].agent.metadata.name.as_deref(), Some("sre"));
        finish(&mut s, &due, true, ts("2026-03-02T11:00:30Z"));
        assert!(s.take_due(ts("2026-03-02T11:01:00Z")).is_empty());
        assert_eq!(s.take_due(ts("2026-03-02T12:00:01Z")).len(), 1);
    }

    #[test]
    fn after_downtime_a_missed_schedule_runs_once_not_a_backlog() {
        let mut s = Scheduler::new("s");
        // Last ran at 03:00; the server was down until 09:10: six hourly slots were missed.
        let t = ran_at(
            task("hourly", json!({"schedule": "0 * * * *"})),
            "2026-03-02T03:00:00Z",
        );
        s.update(
            vec![t],
            vec![agent("sre", true)],
            ts("2026-03-02T09:10:00Z"),
        );
        let due = s.take_due(ts("2026-03-02T09:10:00Z"));
        assert_eq!(names(&due), [("hourly".into(), "schedule".into())]);
        finish(&mut s, &due, true, ts("2026-03-02T09:11:00Z"));
        assert!(
            s.take_due(ts("2026-03-02T09:12:00Z")).is_empty(),
            "no backlog"
        );
        assert_eq!(s.take_due(ts("2026-03-02T10:00:00Z")).len(), 1);
    }

    #[test]
    fn a_new_task_does_not_make_up_slots_before_it_existed() {
        let mut s = Scheduler::new("s");
        let mut t = task("hourly", json!({"schedule": "0 * * * *"}));
        t.metadata.creation_timestamp = Some(Time(ts("2026-03-02T10:05:00Z")));
        s.update(
            vec![t.clone()],
            vec![agent("sre", true)],
            ts("2026-03-02T10:06:00Z"),
        );
        assert!(s.take_due(ts("2026-03-02T10:06:00Z")).is_empty());
        // Standalone manifests have no creation time: the baseline is when it was first seen.
        let mut s = Scheduler::new("s");
        t.metadata.creation_timestamp = None;
        s.update(
            vec![t],
            vec![agent("sre", true)],
            ts("2026-03-02T10:06:00Z"),
        );
        assert!(s.take_due(ts("2026-03-02T10:07:00Z")).is_empty());
        assert_eq!(s.take_due(ts("2026-03-02T11:00:00Z")).len(), 1);
    }

    #[test]
    fn no_schedule_runs_once_unless_status_says_it_ran_or_a_chain_starts_it() {
        let mut s = Scheduler::new("s");
        let once = task("once", json!({}));
        let done = ran_at(task("done", json!({})), "2026-02-01T00:00:00Z");
        let head = task("head", json!({"next": ["tail"]}));
        let tail = task("tail", json!({}));
        let now = ts("2026-03-02T10:00:00Z");
        s.update(
            vec![once.clone(), done, head, tail],
            vec![agent("sre", true)],
            now,
        );
        let due = s.take_due(now);
        assert_eq!(
            names(&due),
            [
                ("head".into(), "once".into()),
                ("once".into(), "once".into())
            ]
        );
        s.finished(&due[1].request, true, "x", now);
        // The head's success chains the tail, which never ran on its own.
        let follow = s.finished(&due[0].request, true, "head output", now);
        assert_eq!(follow.chained, ["tail"]);
        let due = s.take_due(now);
        assert_eq!(names(&due), [("tail".into(), "chain:head".into())]);
        assert_eq!(
            due[0].request.context.as_ref().unwrap().output,
            "head output"
        );
        s.finished(&due[0].request, true, "y", now);
        s.update(vec![once], vec![agent("sre", true)], now);
        assert!(s.take_due(now).is_empty(), "once means once");
    }

    #[test]
    fn run_now_runs_each_new_value_once_even_when_suspended() {
        let mut s = Scheduler::new("s");
        let now = ts("2026-03-02T10:00:00Z");
        let base = ran_at(
            task("t", json!({"schedule": "0 0 1 1 *", "suspend": true})),
            "2026-01-01T00:00:00Z",
        );
        s.update(vec![base.clone()], vec![agent("sre", true)], now);
        assert!(s.take_due(now).is_empty());

        s.update(
            vec![annotate(base.clone(), annotation::RUN_NOW, "1")],
            vec![agent("sre", true)],
            now,
        );
        let due = s.take_due(now);
        assert_eq!(names(&due), [("t".into(), "run-now".into())]);
        assert_eq!(
            s.view("t", now).unwrap().handled_run_now.as_deref(),
            Some("1")
        );
        finish(&mut s, &due, true, now);
        assert!(s.take_due(now).is_empty(), "the same value runs once");

        s.update(
            vec![annotate(base.clone(), annotation::RUN_NOW, "2")],
            vec![agent("sre", true)],
            now,
        );
        assert_eq!(s.take_due(now).len(), 1);

        // After a restart, status says which value was handled.
        let mut s = Scheduler::new("s");
        let mut handled = annotate(base, annotation::RUN_NOW, "2");
        handled.status.as_mut().unwrap().handled_run_now = Some("2".into());
        s.update(vec![handled], vec![agent("sre", true)], now);
        assert!(s.take_due(now).is_empty());
    }

    #[test]
    fn a_disabled_or_paused_agent_stops_its_tasks_and_nothing_is_made_up_later() {
        let mut s = Scheduler::new("s");
        let t = ran_at(
            task("t", json!({"schedule": "0 * * * *"})),
            "2026-03-02T09:00:00Z",
        );
        let once = task("once", json!({}));
        let with_run_now = annotate(once.clone(), annotation::RUN_NOW, "x");
        let now = ts("2026-03-02T10:30:00Z");
        s.update(
            vec![t.clone(), with_run_now],
            vec![agent("sre", false)],
            now,
        );
        assert!(s.take_due(now).is_empty());
        assert_eq!(s.blocked("t"), Some(Blocked::AgentDisabled("sre".into())));
        assert_eq!(s.view("t", now).unwrap().next_run, None);
        assert!(
            s.request_run("t", "agent:x", true)
                .unwrap_err()
                .contains("disabled")
        );

        let mut paused = agent("sre", true);
        paused.metadata.annotations = Some(BTreeMap::from([(
            annotation::PAUSED.to_owned(),
            "true".to_owned(),
        )]));
        s.update(vec![t.clone(), once.clone()], vec![paused], now);
        assert_eq!(s.blocked("t"), Some(Blocked::AgentPaused("sre".into())));
        assert!(s.take_due(ts("2026-03-02T11:00:00Z")).is_empty());

        // Enabled again at 11:20: the 10:00 and 11:00 slots are not made up; the once task runs.
        let later = ts("2026-03-02T11:20:00Z");
        s.update(vec![t, once], vec![agent("sre", true)], later);
        let due = s.take_due(later);
        assert_eq!(names(&due), [("once".into(), "once".into())]);
        assert_eq!(s.take_due(ts("2026-03-02T12:00:00Z")).len(), 1);
    }

    #[test]
    fn a_replica_taking_over_does_not_repeat_what_the_leader_ran() {
        // This replica saw the task at 09:00 and has not led since; the leader ran the 10:00
        // and 11:00 slots and handled run-now "2", and status says so.
        let mut s = Scheduler::new("s");
        let t = ran_at(
            task("t", json!({"schedule": "0 * * * *"})),
            "2026-03-02T08:00:02Z",
        );
        s.update(
            vec![t.clone()],
            vec![agent("sre", true)],
            ts("2026-03-02T09:00:00Z"),
        );
        let mut later = annotate(ran_at(t, "2026-03-02T11:00:02Z"), annotation::RUN_NOW, "2");
        later.status.as_mut().unwrap().handled_run_now = Some("2".into());
        s.update(
            vec![later],
            vec![agent("sre", true)],
            ts("2026-03-02T11:20:00Z"),
        );
        assert!(s.take_due(ts("2026-03-02T11:30:00Z")).is_empty());
        assert_eq!(
            s.view("t", ts("2026-03-02T11:30:00Z"))
                .unwrap()
                .handled_run_now
                .as_deref(),
            Some("2")
        );
        assert_eq!(s.take_due(ts("2026-03-02T12:00:00Z")).len(), 1);
    }

    #[test]
    fn a_task_without_agent_ref_takes_the_first_enabled_agent() {
        let mut s = Scheduler::new("s");
        let mut t = task("t", json!({}));
        t.spec.agent_ref = None;
        let now = ts("2026-03-02T10:00:00Z");
        s.update(
            vec![t.clone()],
            vec![agent("a", false), agent("b", true), agent("c", true)],
            now,
        );
        let due = s.take_due(now);
        assert_eq!(due[0].agent.metadata.name.as_deref(), Some("b"));
        let mut s = Scheduler::new("s");
        s.update(vec![t], vec![agent("a", false)], now);
        assert_eq!(s.blocked("t"), Some(Blocked::NoAgent));
    }

    #[test]
    fn one_run_per_task_and_slots_passing_during_a_run_are_skipped() {
        let mut s = Scheduler::new("s");
        let t = ran_at(
            task("t", json!({"schedule": "*/5 * * * *"})),
            "2026-03-02T10:00:00Z",
        );
        s.update(
            vec![t],
            vec![agent("sre", true)],
            ts("2026-03-02T10:01:00Z"),
        );
        let due = s.take_due(ts("2026-03-02T10:05:00Z"));
        assert_eq!(due.len(), 1);
        assert!(s.view("t", ts("2026-03-02T10:06:00Z")).unwrap().running);
        assert!(
            s.take_due(ts("2026-03-02T10:10:00Z")).is_empty(),
            "still running"
        );
        assert!(s.request_run("t", "agent:ops", false).is_ok());
        assert!(
            s.take_due(ts("2026-03-02T10:12:00Z")).is_empty(),
            "queued until the run ends"
        );
        assert_eq!(
            s.next_wakeup(ts("2026-03-02T10:12:00Z")),
            Some(ts("2026-03-02T10:15:00Z")),
            "a request queued behind a running run does not wake the driver early"
        );
        finish(&mut s, &due, true, ts("2026-03-02T10:12:00Z"));
        let due = s.take_due(ts("2026-03-02T10:12:00Z"));
        assert_eq!(names(&due), [("t".into(), "tool:agent:ops".into())]);
        assert!(!due[0].request.follow_chain);
        finish(&mut s, &due, true, ts("2026-03-02T10:13:00Z"));
        assert!(
            s.take_due(ts("2026-03-02T10:13:00Z")).is_empty(),
            "the 10:10 slot was skipped"
        );
        assert_eq!(s.take_due(ts("2026-03-02T10:15:00Z")).len(), 1);
    }

    #[test]
    fn failures_retry_after_the_delay_and_stop_the_chain() {
        let mut s = Scheduler::new("s");
        let t = task(
            "t",
            json!({"retry": {"count": 2, "delaySeconds": 60}, "next": ["n"]}),
        );
        let n = task("n", json!({"schedule": "0 0 1 1 *"}));
        let now = ts("2026-03-02T10:00:00Z");
        s.update(vec![t, n], vec![agent("sre", true)], now);
        let due = s.take_due(now);
        assert_eq!(names(&due), [("t".into(), "once".into())]);
        let follow = s.finished(&due[0].request, false, "", now);
        assert_eq!(follow.retry_at, Some(ts("2026-03-02T10:01:00Z")));
        assert!(follow.chained.is_empty());
        assert!(s.take_due(ts("2026-03-02T10:00:59Z")).is_empty());
        assert_eq!(
            s.next_wakeup(ts("2026-03-02T10:00:10Z")),
            Some(ts("2026-03-02T10:01:00Z"))
        );
        let due = s.take_due(ts("2026-03-02T10:01:00Z"));
        assert_eq!(due[0].request.attempt, 2);
        assert_eq!(due[0].request.trigger, Trigger::Once);
        let follow = s.finished(&due[0].request, false, "", ts("2026-03-02T10:01:10Z"));
        assert!(follow.retry_at.is_some());
        let due = s.take_due(ts("2026-03-02T10:02:10Z"));
        assert_eq!(due[0].request.attempt, 3);
        let follow = s.finished(&due[0].request, false, "", ts("2026-03-02T10:02:20Z"));
        assert_eq!(
            follow,
            Followup::default(),
            "retries used up; the chain stops"
        );
        assert!(s.take_due(ts("2026-03-02T11:00:00Z")).is_empty());
    }

    #[test]
    fn chains_pass_output_on_and_guard_against_cycles() {
        let mut s = Scheduler::new("s");
        let a = task("a", json!({"next": ["b", "missing"]}));
        let b = task("b", json!({"next": ["a"]}));
        let now = ts("2026-03-02T10:00:00Z");
        s.update(vec![a, b], vec![agent("sre", true)], now);
        assert!(
            s.take_due(now).is_empty(),
            "tasks started by a chain do not run once"
        );
        s.request_run("a", "agent:ops", true).unwrap();
        let due = s.take_due(now);
        assert_eq!(names(&due), [("a".into(), "tool:agent:ops".into())]);
        let follow = s.finished(&due[0].request, true, "from a", now);
        assert_eq!(follow.chained, ["b"]);
        assert_eq!(follow.skipped[0].0, "missing");
        let due = s.take_due(now);
        assert_eq!(due[0].request.chain, ["a"]);
        let follow = s.finished(&due[0].request, true, "from b", now);
        assert!(follow.chained.is_empty());
        assert!(follow.skipped[0].1.contains("cycle"));
    }

    #[test]
    fn suspended_tasks_and_bad_schedules_do_not_run_on_their_own() {
        let mut s = Scheduler::new("s");
        let now = ts("2026-03-02T10:00:00Z");
        let suspended = task("sus", json!({"suspend": true}));
        let bad = task(
            "bad",
            json!({"schedule": "0 7 * * *", "timeZone": "Nowhere/City"}),
        );
        let other_server = {
            let mut t = task("other", json!({}));
            t.spec.server_ref.name = "elsewhere".into();
            t
        };
        s.update(
            vec![suspended, bad, other_server],
            vec![agent("sre", true)],
            now,
        );
        assert!(s.take_due(now).is_empty());
        assert_eq!(s.blocked("sus"), Some(Blocked::Suspended));
        assert!(
            matches!(s.blocked("bad"), Some(Blocked::InvalidSchedule(e)) if e.contains("Nowhere/City"))
        );
        assert!(s.view("other", now).is_none());
        assert_eq!(s.views(now).len(), 2);
        assert!(s.request_run("sus", "agent:x", false).is_ok());
        assert_eq!(
            s.take_due(now).len(),
            1,
            "a tool request runs a suspended task"
        );
        assert!(s.request_run("nope", "agent:x", false).is_err());
    }

    #[test]
    fn deleted_tasks_are_forgotten() {
        let mut s = Scheduler::new("s");
        let now = ts("2026-03-02T10:00:00Z");
        s.update(vec![task("a", json!({}))], vec![agent("sre", true)], now);
        let gone = s.update(vec![], vec![agent("sre", true)], now);
        assert_eq!(gone, ["a"]);
        assert!(s.take_due(now).is_empty());
        assert_eq!(s.next_wakeup(now), None);
    }
}
