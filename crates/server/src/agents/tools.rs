//! The `dark_factory_*` tools: what the scheduler is doing, what it did, what it cost, and the
//! two levers an operator (or a client acting for one) needs — run a task now, pause an agent.
//!
//! Pausing writes the `linkmcp.io/paused` annotation on the Agent, not `spec.enabled`: it
//! survives restarts (the watch reads it back) and GitOps tools that are told to ignore the
//! annotation see no drift. Standalone, the manifests are the user's files, so the tool says
//! which annotation to add instead of editing them.
//!
//! `dark_factory_run_now` answers at once when nobody follows the call; a client that asked
//! for progress or log messages sees the run's steps as they happen, and the outcome in the
//! result, for as long as the call may last.

use futures::future::BoxFuture;
use kube::api::{Api, Patch, PatchParams};
use linkmcp_api::Agent;
use linkmcp_api::names::{annotation, manager};
use linkmcp_factory::Factory;
use linkmcp_factory::history::format_duration;
use linkmcp_factory::pricing::format_usd;
use linkmcp_toolsets::{CallContext, LogLevel, NoArgs, ToolDef, Toolset, output, parse_args};
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::registry::RegistryError;

/// How long `dark_factory_run_now` waits for a run's first step before it answers that the
/// run is queued.
const FIRST_STEP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The Dark Factory tools of one server.
pub struct DarkFactoryTools {
    factory: Factory,
    agents: Option<Api<Agent>>,
    defs: Vec<ToolDef>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HistoryArgs {
    /// The AiTask whose runs to show.
    task: String,
    /// Most runs to show, newest first (default 10, at most 50).
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunNowArgs {
    /// The AiTask to run now.
    task: String,
    /// Also run its `next` tasks when it succeeds (default true).
    #[serde(default)]
    follow_chain: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ToggleArgs {
    /// The Agent to pause or resume.
    agent: String,
    /// true pauses the agent (its tasks stop starting), false resumes it.
    paused: bool,
}

impl DarkFactoryTools {
    /// The tools over `factory`; `agents` (in a cluster) lets the toggle write the annotation.
    pub fn new(factory: Factory) -> Result<Self, RegistryError> {
        Ok(Self {
            factory,
            agents: None,
            defs: vec![
                ToolDef::read::<NoArgs>(
                    "dark_factory_status",
                    "Show the scheduled AI tasks of this server: for each task its agent, whether \
                     it is running, its next run, why it is held back (suspended, agent paused or \
                     disabled), and its run totals.",
                )?
                .open_world(false),
                ToolDef::read::<HistoryArgs>(
                    "dark_factory_history",
                    "Show the most recent runs of one AI task (up to 50, newest first): start, \
                     trigger, outcome, duration, tokens, cost and a summary of the answer or error.",
                )?
                .open_world(false),
                ToolDef::read::<NoArgs>(
                    "dark_factory_cost",
                    "Show tokens and cost in USD of the AI task runs, per task and per agent, \
                     since the server started (seeded from the tasks' status).",
                )?
                .open_world(false),
                ToolDef::write::<RunNowArgs>(
                    "dark_factory_run_now",
                    "Run one AI task now, outside its schedule (a run already in progress is not \
                     duplicated). Optionally runs its chained `next` tasks on success.",
                )?
                .destructive(false)
                .open_world(false),
                ToolDef::write::<ToggleArgs>(
                    "dark_factory_toggle_agent",
                    "Pause or resume an agent at run time: a paused agent's tasks stop starting \
                     (runs in progress finish). Written as the linkmcp.io/paused annotation.",
                )?
                .destructive(false)
                .idempotent(true)
                .open_world(false),
            ],
        })
    }

    /// Lets `dark_factory_toggle_agent` annotate Agents through `agents`.
    pub fn with_agents_api(mut self, agents: Api<Agent>) -> Self {
        self.agents = Some(agents);
        self
    }

    /// Queues a run; with a client following, streams its steps until it ends (or the call's
    /// time is nearly up) and answers with its outcome.
    async fn run_now(&self, args: RunNowArgs, ctx: &CallContext) -> CallToolResult {
        let client = &ctx.client;
        let followed = client.wants_progress() || client.wants_log(LogLevel::Info);
        // Subscribed before queuing: the first steps may come at once.
        let mut steps = followed.then(|| self.factory.follow());
        if let Err(why) =
            self.factory
                .run_now(&args.task, &ctx.identity, args.follow_chain.unwrap_or(true))
        {
            return output::error(why);
        }
        let queued = format!(
            "task {} is queued to run now; follow it with dark_factory_status",
            args.task
        );
        let Some(steps) = steps.as_mut() else {
            return output::ok_text(queued);
        };
        // Leave time to answer before the call's own limit; give up early when no step comes
        // at all (another replica holds the scheduler Lease, or the task waits for a run).
        let deadline = tokio::time::Instant::now() + ctx.timeout.mul_f32(0.9);
        let mut seen = 0u32;
        loop {
            let wait = if seen == 0 {
                FIRST_STEP_WAIT.min(deadline - tokio::time::Instant::now())
            } else {
                deadline - tokio::time::Instant::now()
            };
            let step = match tokio::time::timeout(wait, steps.recv()).await {
                Ok(Ok(step)) => step,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                    let note = if seen == 0 {
                        "no step was seen from this replica (it may not run the scheduler)"
                    } else {
                        "it is still running"
                    };
                    return output::ok_text(format!("{queued}; {note}"));
                }
            };
            if step.task != args.task {
                continue;
            }
            seen += 1;
            client
                .progress(f64::from(seen), None, step.message.clone())
                .await;
            client.log(LogLevel::Info, step.message.clone()).await;
            if step.last {
                return output::ok_text(step.message);
            }
        }
    }

    fn status(&self) -> CallToolResult {
        let (tasks, _) = self.factory.totals();
        let views: Vec<_> = self
            .factory
            .views()
            .into_iter()
            .map(|v| {
                let totals = tasks.get(&v.name).cloned().unwrap_or_default();
                json!({
                    "task": v.name,
                    "agent": v.agent,
                    "running": v.running,
                    "nextRun": v.next_run.map(|t| t.to_string()),
                    "blocked": v.blocked.map(|b| b.to_string()),
                    "queued": v.queued,
                    "runs": totals.runs,
                    "failures": totals.failures,
                    "cost": format_usd(totals.cost_usd),
                })
            })
            .collect();
        let text = views
            .iter()
            .map(|v| {
                format!(
                    "{}: agent {}, {}, next run {}{}",
                    v["task"].as_str().unwrap_or_default(),
                    v["agent"].as_str().unwrap_or("none"),
                    if v["running"] == true {
                        "running"
                    } else {
                        "idle"
                    },
                    v["nextRun"].as_str().unwrap_or("none"),
                    v["blocked"]
                        .as_str()
                        .map(|b| format!(" (held back: {b})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        output::ok_json(
            &json!({ "tasks": views }),
            if text.is_empty() {
                "no tasks".into()
            } else {
                text
            },
        )
    }

    fn history(&self, args: HistoryArgs) -> CallToolResult {
        if self.factory.view(&args.task).is_none() {
            let names: Vec<String> = self.factory.views().into_iter().map(|v| v.name).collect();
            return output::error(format!(
                "task {} is not a task of this server; tasks are: {}",
                args.task,
                names.join(", ")
            ));
        }
        let limit = args.limit.unwrap_or(10).clamp(1, 50) as usize;
        let runs: Vec<_> = self
            .factory
            .history(&args.task)
            .into_iter()
            .take(limit)
            .collect();
        let text = runs
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} ({}, {}): {}",
                    r.started_at,
                    r.phase,
                    r.trigger,
                    format_duration(r.duration),
                    r.summary
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        output::ok_json(
            &json!({ "task": args.task, "runs": runs }),
            if text.is_empty() {
                "no runs yet".into()
            } else {
                text
            },
        )
    }

    fn cost(&self) -> CallToolResult {
        let (tasks, agents) = self.factory.totals();
        let total: f64 = tasks.values().map(|t| t.cost_usd).sum();
        let text = format!(
            "total {} over {} runs\n{}",
            format_usd(total),
            tasks.values().map(|t| t.runs).sum::<u64>(),
            tasks
                .iter()
                .map(|(name, t)| format!("{name}: {} tokens, {}", t.tokens, format_usd(t.cost_usd)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        output::ok_json(
            &json!({ "tasks": tasks, "agents": agents, "totalUsd": total }),
            text,
        )
    }

    async fn toggle(&self, args: ToggleArgs) -> CallToolResult {
        let Some(agents) = &self.agents else {
            return output::error(format!(
                "this server reads its agents from manifest files, which it does not edit: add the \
                 annotation `{}: \"{}\"` to Agent {} in its file (the server picks it up within a \
                 second)",
                annotation::PAUSED,
                args.paused,
                args.agent
            ));
        };
        let patch = json!({
            "apiVersion": "linkmcp.io/v1alpha1",
            "kind": "Agent",
            "metadata": { "annotations": { annotation::PAUSED: args.paused.to_string() } },
        });
        let params = PatchParams::apply(manager::SERVER);
        match agents
            .patch(&args.agent, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => output::ok_text(format!(
                "agent {} is now {}",
                args.agent,
                if args.paused { "paused" } else { "resumed" }
            )),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                output::error(format!("agent {} does not exist", args.agent))
            }
            Err(err) => output::error(format!("cannot annotate agent {}: {err}", args.agent)),
        }
    }
}

impl Toolset for DarkFactoryTools {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            match name {
                "dark_factory_status" => match parse_args::<NoArgs>(args) {
                    Ok(_) => self.status(),
                    Err(bad) => bad,
                },
                "dark_factory_cost" => match parse_args::<NoArgs>(args) {
                    Ok(_) => self.cost(),
                    Err(bad) => bad,
                },
                "dark_factory_history" => match parse_args::<HistoryArgs>(args) {
                    Ok(a) => self.history(a),
                    Err(bad) => bad,
                },
                "dark_factory_run_now" => match parse_args::<RunNowArgs>(args) {
                    Ok(a) => self.run_now(a, ctx).await,
                    Err(bad) => bad,
                },
                "dark_factory_toggle_agent" => match parse_args::<ToggleArgs>(args) {
                    Ok(a) => self.toggle(a).await,
                    Err(bad) => bad,
                },
                other => output::error(format!("unknown tool {other}")),
            }
        })
    }
}
