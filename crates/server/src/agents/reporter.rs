//! Where run outcomes go: the AiTask and Agent status (server-side apply under the server's
//! own field manager, so the controller's conditions are left alone) and one Kubernetes Event
//! per run — or, standalone, the log.
//!
//! Only the scheduler Lease holder runs tasks, so only it reports: replicas never race on
//! status. Each report changes the task's fields (a run happened), so there is no empty write.

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use linkmcp_api::names::manager;
use linkmcp_api::task::TaskPhase;
use linkmcp_api::{Agent, AiTask};
use linkmcp_factory::history::format_duration;
use linkmcp_factory::pricing::format_usd;
use linkmcp_factory::{RunReport, RunReporter, RunStart};
use serde_json::{Value, json};

/// Reports runs to the API server, or to the log when there is none.
pub enum StatusReporter {
    /// Standalone: one log line per run start and end.
    Log,
    /// In a cluster: status and Events in the server's namespace.
    Kubernetes(Box<ClusterReporter>),
}

/// What reporting to the API server needs.
pub struct ClusterReporter {
    client: Client,
    namespace: String,
    recorder: Recorder,
}

impl StatusReporter {
    /// A reporter writing to the API server as `instance` (the pod).
    pub fn kubernetes(client: Client, namespace: &str, instance: String) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: manager::SERVER.to_owned(),
                instance: Some(instance),
            },
        );
        Self::Kubernetes(Box::new(ClusterReporter {
            client,
            namespace: namespace.to_owned(),
            recorder,
        }))
    }
}

fn time(ts: k8s_openapi::jiff::Timestamp) -> Time {
    Time(ts)
}

fn phase_name(phase: TaskPhase) -> &'static str {
    match phase {
        TaskPhase::Pending => "Pending",
        TaskPhase::Running => "Running",
        TaskPhase::Succeeded => "Succeeded",
        TaskPhase::Failed => "Failed",
        TaskPhase::Suspended => "Suspended",
    }
}

/// The status fields the server owns after a run.
fn task_status(report: &RunReport) -> Value {
    let totals = &report.task_totals;
    let view = report.view.as_ref();
    json!({
        "phase": phase_name(report.outcome.phase),
        "lastRunTime": time(report.outcome.started_at),
        "nextRunTime": view.and_then(|v| v.next_run).map(time),
        "lastResult": report.outcome.summary,
        "lastDuration": format_duration(report.outcome.duration),
        "runs": totals.runs,
        "failures": totals.failures,
        "tokens": totals.tokens,
        "cost": format_usd(totals.cost_usd),
        "recentRuns": report.recent_runs,
        "handledRunNow": view.and_then(|v| v.handled_run_now.clone()),
        "notificationError": report.notification.error(),
    })
}

fn agent_status(report: &RunReport) -> Value {
    let totals = &report.agent_totals;
    json!({
        "runs": totals.runs,
        "inputTokens": totals.input_tokens,
        "outputTokens": totals.output_tokens,
        "cost": format_usd(totals.cost_usd),
    })
}

/// Drops null fields, so an absent value is not written (and not owned) by this manager.
fn without_nulls(mut status: Value) -> Value {
    if let Value::Object(map) = &mut status {
        map.retain(|_, v| !v.is_null());
    }
    status
}

async fn apply_status<K>(api: &Api<K>, kind: &str, name: &str, status: Value)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "apiVersion": "linkmcp.io/v1alpha1",
        "kind": kind,
        "status": without_nulls(status),
    });
    let params = PatchParams::apply(manager::SERVER).force();
    if let Err(err) = api.patch_status(name, &params, &Patch::Apply(&patch)).await {
        tracing::warn!(kind, name, error = %err, "cannot write the run to status");
    }
}

impl RunReporter for StatusReporter {
    fn started<'a>(&'a self, start: &'a RunStart) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            tracing::info!(
                task = %start.task, agent = %start.agent, trigger = %start.trigger,
                attempt = start.attempt, "run started"
            );
            let Self::Kubernetes(cluster) = self else {
                return;
            };
            let ClusterReporter {
                client, namespace, ..
            } = cluster.as_ref();
            let tasks: Api<AiTask> = Api::namespaced(client.clone(), namespace);
            let status = json!({
                "phase": "Running",
                "lastRunTime": time(start.started_at),
                "handledRunNow": start.view.as_ref().and_then(|v| v.handled_run_now.clone()),
            });
            apply_status(&tasks, "AiTask", &start.task, status).await;
        })
    }

    fn report<'a>(&'a self, report: &'a RunReport) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            tracing::info!(
                task = %report.task, agent = %report.agent,
                phase = phase_name(report.outcome.phase),
                duration = %format_duration(report.outcome.duration),
                tokens = report.outcome.usage.input_tokens + report.outcome.usage.output_tokens,
                summary = %report.outcome.summary,
                "run finished"
            );
            let Self::Kubernetes(cluster) = self else {
                return;
            };
            let ClusterReporter {
                client,
                namespace,
                recorder,
            } = cluster.as_ref();
            let tasks: Api<AiTask> = Api::namespaced(client.clone(), namespace);
            apply_status(&tasks, "AiTask", &report.task, task_status(report)).await;
            let agents: Api<Agent> = Api::namespaced(client.clone(), namespace);
            apply_status(&agents, "Agent", &report.agent, agent_status(report)).await;

            let succeeded = report.outcome.phase == TaskPhase::Succeeded;
            let event = Event {
                type_: if succeeded {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: if succeeded {
                    "RunSucceeded"
                } else {
                    "RunFailed"
                }
                .to_owned(),
                note: Some(report.outcome.summary.chars().take(1000).collect()),
                action: "Run".to_owned(),
                secondary: None,
            };
            let reference = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("linkmcp.io/v1alpha1".to_owned()),
                kind: Some("AiTask".to_owned()),
                name: Some(report.task.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            };
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::warn!(task = %report.task, error = %err, "cannot publish the run Event");
            }
        })
    }
}
