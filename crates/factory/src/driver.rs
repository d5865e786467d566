//! The factory the server embeds: the scheduler driven in real time, runs, history, reports.
//!
//! The server builds one [`Factory`] per McpServer with its [`ToolHost`], [`KnowledgeSource`],
//! [`SecretSource`] and [`RunReporter`], feeds it the live Agents and AiTasks
//! ([`Factory::update`]), and runs [`Factory::run`] while it holds the scheduler Lease
//! (cancelling it when the Lease is lost, which stops new runs and aborts running ones). Each
//! due run is started on its own task: the model client is built from the Agent, the agent loop
//! runs, history records it, the final attempt is notified, the reporter gets everything status
//! needs, and only then does the scheduler queue its retry or its `next` tasks. Status writing and
//! Events stay in the server.

use std::{
    collections::{BTreeMap, BTreeSet},
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use jiff::Timestamp;
use linkmcp_api::{
    Agent, AiTask,
    notify::NotificationSpec,
    task::{RunRecord, TaskPhase},
};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::steps::{RunStep, Steps};
use crate::{
    history::{History, RunEntry, Totals},
    host::{KnowledgeSource, SecretSource, ToolHost},
    notify::{self, Delivery, Notice, Notifier},
    provider::{ApiKey, ModelClient, RetryPolicy},
    run::{self, RunDeps, RunInput, RunLimits, RunOutcome},
    schedule::{DueRun, Followup, Scheduler, TaskView},
};
use tokio::sync::broadcast;

/// The time source of the scheduler.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A run that has started, for status (phase Running, lastRunTime).
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The task.
    pub task: String,
    /// The agent.
    pub agent: String,
    /// What started it (`schedule`, `once`, `run-now`, `chain:<task>`, `tool:<identity>`).
    pub trigger: String,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// The scheduler's view of the task (handledRunNow, next run, ...).
    pub view: Option<TaskView>,
}

/// A finished run with everything status, Events and history tools need.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The task.
    pub task: String,
    /// The agent.
    pub agent: String,
    /// What started it.
    pub trigger: String,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// How it went.
    pub outcome: RunOutcome,
    /// The run as status keeps it.
    pub record: RunRecord,
    /// The task's most recent runs, newest first (status `recentRuns`).
    pub recent_runs: Vec<RunRecord>,
    /// The task's totals (status runs, failures, tokens, cost).
    pub task_totals: Totals,
    /// The agent's totals (Agent status).
    pub agent_totals: Totals,
    /// How the report was delivered (status `notificationError` from [`Delivery::error`]);
    /// empty when this was not the final attempt or nothing is configured.
    pub notification: Delivery,
    /// Its retry or the `next` tasks it queued.
    pub followup: Followup,
    /// The scheduler's view of the task after the run (next run, handledRunNow, ...).
    pub view: Option<TaskView>,
}

/// Where runs are reported: the server writes status (only as the leader, only on change) and
/// one Kubernetes Event per run from these.
pub trait RunReporter: Send + Sync {
    /// A run started.
    fn started<'a>(&'a self, start: &'a RunStart) -> BoxFuture<'a, ()>;

    /// A run finished.
    fn report<'a>(&'a self, report: &'a RunReport) -> BoxFuture<'a, ()>;
}

/// Settings of a factory.
#[derive(Debug, Clone, PartialEq)]
pub struct FactoryConfig {
    /// The McpServer whose tasks it runs.
    pub server: String,
    /// Retries of model requests.
    pub retry: RetryPolicy,
    /// Context size limits of runs.
    pub limits: RunLimits,
    /// Most time one notification delivery may take.
    pub notification_timeout: Duration,
    /// Longest sleep of the driver between checks, whatever the schedule says.
    pub max_sleep: Duration,
}

impl FactoryConfig {
    /// Default settings for McpServer `server`.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            retry: RetryPolicy::default(),
            limits: RunLimits::default(),
            notification_timeout: Duration::from_secs(15),
            max_sleep: Duration::from_secs(30),
        }
    }
}

/// What a factory is plugged into.
#[derive(Clone)]
pub struct FactoryDeps {
    /// The server's tools.
    pub host: Arc<dyn ToolHost>,
    /// The knowledge base.
    pub knowledge: Arc<dyn KnowledgeSource>,
    /// API keys and notification credentials.
    pub secrets: Arc<dyn SecretSource>,
    /// Where runs are reported.
    pub reporter: Arc<dyn RunReporter>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
}

/// The Dark Factory of one McpServer.
#[derive(Clone)]
pub struct Factory {
    inner: Arc<Inner>,
}

struct Inner {
    config: FactoryConfig,
    deps: FactoryDeps,
    http: reqwest::Client,
    notifier: Notifier,
    state: Mutex<State>,
    wake: Notify,
    /// The steps of the runs, for live followers.
    steps: Steps,
}

struct State {
    scheduler: Scheduler,
    history: History,
    notification_defaults: Option<NotificationSpec>,
}

impl Factory {
    /// A factory with `config`, plugged into `deps`.
    pub fn new(config: FactoryConfig, deps: FactoryDeps) -> Self {
        let http = reqwest::Client::new();
        let notifier = Notifier::new(http.clone(), config.notification_timeout);
        let state = State {
            scheduler: Scheduler::new(config.server.clone()),
            history: History::new(),
            notification_defaults: None,
        };
        Self {
            inner: Arc::new(Inner {
                config,
                deps,
                http,
                notifier,
                state: Mutex::new(state),
                wake: Notify::new(),
                steps: Steps::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// Replaces the known Agents and AiTasks (the server's watch calls this on every change).
    /// History totals of objects seen for the first time are seeded from their status.
    pub fn update(&self, tasks: Vec<AiTask>, agents: Vec<Agent>) {
        let now = self.inner.deps.clock.now();
        {
            let mut state = self.state();
            for task in &tasks {
                state.history.restore_task(task);
            }
            for agent in &agents {
                state.history.restore_agent(agent);
            }
            let gone = state.scheduler.update(tasks, agents, now);
            for task in gone {
                state.history.forget_task(&task);
            }
        }
        self.inner.wake.notify_one();
    }

    /// Sets the McpServer's notification defaults (`spec.notifications`).
    pub fn set_notification_defaults(&self, defaults: Option<NotificationSpec>) {
        self.state().notification_defaults = defaults;
    }

    /// Queues a run of `task` for `identity` (the `dark_factory_run_now` tool), following its
    /// `next` chain when `follow_chain`. It starts as soon as the task is not running.
    pub fn run_now(&self, task: &str, identity: &str, follow_chain: bool) -> Result<(), String> {
        self.state()
            .scheduler
            .request_run(task, identity, follow_chain)?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The steps of runs from now on (every task's; a [`RunStep`] names its task).
    pub fn follow(&self) -> broadcast::Receiver<RunStep> {
        self.inner.steps.follow()
    }

    /// The scheduler's view of every task.
    pub fn views(&self) -> Vec<TaskView> {
        let now = self.inner.deps.clock.now();
        self.state().scheduler.views(now)
    }

    /// The scheduler's view of `task`.
    pub fn view(&self, task: &str) -> Option<TaskView> {
        let now = self.inner.deps.clock.now();
        self.state().scheduler.view(task, now)
    }

    /// The last runs of `task`, newest first.
    pub fn history(&self, task: &str) -> Vec<RunEntry> {
        self.state().history.runs(task)
    }

    /// Totals per task and per agent.
    pub fn totals(&self) -> (BTreeMap<String, Totals>, BTreeMap<String, Totals>) {
        let state = self.state();
        (
            state.history.tasks().clone(),
            state.history.agents().clone(),
        )
    }

    /// Schedules and runs tasks until `cancel` fires. Call it while this replica holds the
    /// scheduler Lease; on cancellation no run starts any more and running ones are aborted
    /// (the next leader sees their start in status).
    pub async fn run(&self, cancel: CancellationToken) {
        let inner = &self.inner;
        {
            // Another replica may have led since these totals were seeded: start from what
            // status says now.
            let mut state = inner.state();
            let mut history = History::new();
            for task in state.scheduler.tasks() {
                history.restore_task(task);
            }
            for agent in state.scheduler.agents() {
                history.restore_agent(agent);
            }
            state.history = history;
        }
        let mut runs = JoinSet::new();
        let leader_since = inner.deps.clock.now();
        let mut interrupted = BTreeSet::new();
        tracing::info!(server = %inner.config.server, "Dark Factory scheduler started");
        loop {
            for report in interrupted_runs(inner, leader_since, &mut interrupted) {
                inner.deps.reporter.report(&report).await;
            }
            let now = inner.deps.clock.now();
            let (due, wake_at) = {
                let mut state = inner.state();
                let due = state.scheduler.take_due(now);
                (due, state.scheduler.next_wakeup(now))
            };
            for run in due {
                runs.spawn(execute(Arc::clone(inner), run));
            }
            let sleep = wake_at
                .map(|at| {
                    Duration::try_from(at.duration_since(inner.deps.clock.now()))
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(inner.config.max_sleep)
                .min(inner.config.max_sleep);
            tokio::select! {
                () = cancel.cancelled() => break,
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                Some(joined) = runs.join_next(), if !runs.is_empty() => {
                    if let Err(err) = joined {
                        tracing::error!(error = %err, "a run task ended abnormally");
                    }
                }
            }
        }
        runs.abort_all();
        while runs.join_next().await.is_some() {}
        inner.state().scheduler.abandon_running();
        tracing::info!(server = %inner.config.server, "Dark Factory scheduler stopped");
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the state half-written in a way that
        // matters more than stopping the factory would: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The runs that status says are running but that no replica runs any more: a task whose
/// phase is Running with a start before this replica began to lead (a run started here is
/// never older than that) was started by a server that stopped — a restart, a lost Lease, a
/// crash — before it could report the end. Each is reported once as a failed run saying so,
/// so it is not silently forgotten; the task's schedule goes on as usual.
fn interrupted_runs(
    inner: &Inner,
    leader_since: Timestamp,
    reported: &mut BTreeSet<(String, Timestamp)>,
) -> Vec<RunReport> {
    let mut state = inner.state();
    let now = inner.deps.clock.now();
    let found: Vec<(String, Timestamp)> = state
        .scheduler
        .tasks()
        .filter_map(|task| {
            let status = task.status.as_ref()?;
            let started = status.last_run_time.as_ref()?.0;
            let name = task.metadata.name.clone()?;
            (status.phase == Some(TaskPhase::Running) && started < leader_since)
                .then_some((name, started))
        })
        .collect();
    let mut reports = Vec::new();
    for (task, started) in found {
        let view = state.scheduler.view(&task, now);
        if view.as_ref().is_some_and(|v| v.running) || !reported.insert((task.clone(), started)) {
            continue;
        }
        let agent = view
            .as_ref()
            .and_then(|v| v.agent.clone())
            .unwrap_or_default();
        let model = state
            .scheduler
            .agents()
            .find(|a| a.metadata.name.as_deref() == Some(agent.as_str()))
            .map(|a| a.spec.model.clone())
            .unwrap_or_default();
        let outcome = RunOutcome::interrupted(&model, started);
        tracing::warn!(task = %task, %started, "a run was interrupted by a server stop; reported as failed");
        let entry = RunEntry::from_outcome(&task, &agent, INTERRUPTED_TRIGGER, &outcome);
        state.history.record(entry.clone());
        reports.push(RunReport {
            task: task.clone(),
            agent: agent.clone(),
            trigger: INTERRUPTED_TRIGGER.to_owned(),
            attempt: 1,
            record: entry.record(),
            recent_runs: state.history.recent_records(&task),
            task_totals: state.history.task_totals(&task),
            agent_totals: state.history.agent_totals(&agent),
            notification: Delivery::default(),
            followup: Followup::default(),
            view,
            outcome,
        });
    }
    reports
}

/// The trigger recorded for a run found interrupted (what started it is not in status).
pub const INTERRUPTED_TRIGGER: &str = "interrupted";

/// Runs one due run to its end and reports it.
async fn execute(inner: Arc<Inner>, due: DueRun) {
    let DueRun {
        request,
        task,
        agent,
    } = due;
    let task_name = request.task.clone();
    let agent_name = agent.metadata.name.clone().unwrap_or_default();
    let trigger = request.trigger.to_string();
    let view = inner
        .state()
        .scheduler
        .view(&task_name, inner.deps.clock.now());
    inner
        .deps
        .reporter
        .started(&RunStart {
            task: task_name.clone(),
            agent: agent_name.clone(),
            trigger: trigger.clone(),
            attempt: request.attempt,
            started_at: inner.deps.clock.now(),
            view,
        })
        .await;

    let mut input = RunInput::new(&task, &agent);
    input.previous = request.context.clone();
    input.limits = inner.config.limits;
    let outcome = AssertUnwindSafe(run_once(&inner, &input, &agent))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            RunOutcome::not_started(
                &agent.spec.model,
                "the run stopped on an internal error; the details were logged for the operator"
                    .to_owned(),
            )
        });

    inner.steps.of(&task_name).finish(match &outcome.error {
        Some(error) => format!("run of {task_name} failed: {error}"),
        None => format!("run of {task_name} succeeded: {}", outcome.summary),
    });
    let now = inner.deps.clock.now();
    let entry = RunEntry::from_outcome(&task_name, &agent_name, &trigger, &outcome);
    let (planned, notification_spec) = {
        let mut state = inner.state();
        state.history.record(entry.clone());
        let planned = state
            .scheduler
            .plan(&request, outcome.succeeded(), &outcome.output, now);
        let spec = notify::effective(
            task.spec.notify.as_ref(),
            state.notification_defaults.as_ref(),
        );
        (planned, spec)
    };
    let followup = planned.followup.clone();

    let last_attempt = outcome.succeeded() || followup.retry_at.is_none();
    let notification = match notification_spec {
        Some(spec) if last_attempt => {
            let notice = Notice {
                server: &inner.config.server,
                task: &task_name,
                agent: &agent_name,
                trigger: &trigger,
                outcome: &outcome,
            };
            inner
                .notifier
                .notify(&spec, &notice, inner.deps.secrets.as_ref())
                .await
        }
        _ => Delivery::default(),
    };
    for (next, reason) in &followup.skipped {
        tracing::warn!(task = %task_name, next = %next, %reason, "next task not started");
    }

    let report = {
        let state = inner.state();
        let mut view = state.scheduler.view(&task_name, inner.deps.clock.now());
        if let Some(view) = view.as_mut() {
            view.running = false;
        }
        RunReport {
            task: task_name.clone(),
            agent: agent_name.clone(),
            trigger,
            attempt: request.attempt,
            record: entry.record(),
            recent_runs: state.history.recent_records(&task_name),
            task_totals: state.history.task_totals(&task_name),
            agent_totals: state.history.agent_totals(&agent_name),
            notification,
            followup,
            view,
            outcome,
        }
    };
    inner.deps.reporter.report(&report).await;
    // Only now may the task run again (a retry, a queued request), so that its next start is
    // never reported before this end; the `next` tasks start now too.
    inner.state().scheduler.complete(&request, planned);
    inner.wake.notify_one();
}

/// Builds the agent's model client and runs the loop.
async fn run_once(inner: &Inner, input: &RunInput, agent: &Agent) -> RunOutcome {
    let api_key = match &agent.spec.api_key_secret_ref {
        Some(r) => match inner.deps.secrets.agent_api_key(agent) {
            Some(key) => Some(ApiKey::new(key)),
            None => {
                return RunOutcome::not_started(
                    &agent.spec.model,
                    format!(
                        "the API key of agent {} was not found (Secret {} key {}); create the \
                         Secret or fix spec.apiKeySecretRef",
                        input.agent, r.name, r.key
                    ),
                );
            }
        },
        None => None,
    };
    let model =
        ModelClient::for_agent(inner.http.clone(), &agent.spec, api_key, inner.config.retry);
    run::run(
        input,
        RunDeps {
            model: &model,
            host: inner.deps.host.as_ref(),
            knowledge: inner.deps.knowledge.as_ref(),
            steps: &inner.steps.of(&input.task),
        },
    )
    .await
}
