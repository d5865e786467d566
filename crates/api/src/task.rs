//! AiTask: what an agent does, when, and whether it may write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DNS_LABEL_MESSAGE, DNS_LABEL_RULE, LocalRef, ServerRef};
use crate::notify::NotificationSpec;

/// CEL: a schedule is empty, a cron macro, or five cron fields.
pub const SCHEDULE_RULE: &str = r"self == '' || self.matches('^@(yearly|annually|monthly|weekly|daily|hourly)$') || self.matches('^\\s*[0-9*/,-]+\\s+[0-9*/,-]+\\s+[0-9*/,?LW-]+\\s+[0-9A-Za-z*/,-]+\\s+[0-9A-Za-z*/,?L#-]+\\s*$')";

/// Number of recent runs kept in status.
pub const RECENT_RUNS_IN_STATUS: usize = 5;

/// A task for an agent: a description written as to a human operator, a schedule and a mode.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "linkmcp.io",
    version = "v1alpha1",
    kind = "AiTask",
    namespaced,
    derive = "PartialEq",
    status = "AiTaskStatus",
    shortname = "ait",
    category = "linkmcp",
    doc = "A task an Agent runs on a schedule (or once) with its server's governed tools.",
    printcolumn(name = "Agent", type_ = "string", json_path = ".spec.agentRef.name"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastRunTime"),
    printcolumn(name = "Next Run", type_ = "date", json_path = ".status.nextRunTime"),
    printcolumn(name = "Cost", type_ = "string", json_path = ".status.cost"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = kube::core::Rule::new("!has(self.spec.next) || !self.spec.next.exists(n, n == self.metadata.name)").message("spec.next must not name the task itself")
)]
#[serde(rename_all = "camelCase")]
pub struct AiTaskSpec {
    /// The McpServer (same namespace) that schedules and runs the task.
    pub server_ref: ServerRef,
    /// The Agent to run with. Absent: the first enabled Agent of the server, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_ref: Option<LocalRef>,
    /// What to do, in natural language, written as to a human operator. Its words also pick
    /// the tools offered to the model.
    #[schemars(length(min = 1, max = 16384))]
    pub description: String,
    /// Five-field cron (`minute hour day-of-month month day-of-week`) or a macro like
    /// `@daily`. Empty: run once when the task first appears. Only the first task of a
    /// `next` chain needs one.
    #[serde(default)]
    #[schemars(length(max = 128))]
    #[x_kube(validation = kube::core::Rule::new(SCHEDULE_RULE).message("schedule must be empty, a macro like @daily, or five cron fields like '*/15 * * * *'"))]
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `Europe/Paris`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// `monitor`: the model is offered read tools only, and a write tool cannot run even if
    /// it names one. `act`: read and write tools (of links with writeAccess).
    #[serde(default)]
    pub mode: TaskMode,
    /// Retries of a failed run.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Tasks run after a successful run, given its output as context (same namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 63)))]
    #[x_kube(validation = kube::core::Rule::new("self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))").message("each next task must be the name of an AiTask (a DNS label)"))]
    pub next: Vec<String>,
    /// Where the run report goes. Absent: the server's notification defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotificationSpec>,
    /// Most seconds one run may take before it is stopped as failed.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 10, max = 86400))]
    pub timeout_seconds: i32,
    /// Skip scheduled runs while true (run-now still works).
    #[serde(default)]
    pub suspend: bool,
}

fn default_timeout() -> i32 {
    600
}

// The DNS label rule is spelled inline in `next` (a list rule); keep it in step.
const _: &str = DNS_LABEL_RULE;
const _: &str = DNS_LABEL_MESSAGE;

/// Which tools a run may use.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TaskMode {
    /// Read tools only.
    #[default]
    Monitor,
    /// Read and write tools.
    Act,
}

/// Retries of a failed run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrySpec {
    /// Retries after the first failure.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub count: i32,
    /// Seconds between a failure and the retry.
    #[serde(default = "default_delay")]
    #[schemars(range(min = 0, max = 86400))]
    pub delay_seconds: i32,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            count: 0,
            delay_seconds: default_delay(),
        }
    }
}

fn default_delay() -> i32 {
    60
}

/// Phase of a task.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Suspended,
}

/// Observed state of an AiTask. The controller owns the validation conditions; the server
/// owns the run fields.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AiTaskStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and ReferencesResolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pending, Running, Succeeded, Failed or Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,
    /// Start of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,
    /// When the schedule next fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<Time>,
    /// Short summary of the last run's answer or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// Duration of the last run, e.g. `12.4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration: Option<String>,
    /// Runs since the task was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<i64>,
    /// Failed runs since the task was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,
    /// Input plus output tokens of all runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
    /// Total cost of all runs in USD, e.g. `$0.0123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// The value of the run-now annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_run_now: Option<String>,
    /// The last notification's outcome, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_error: Option<String>,
    /// The most recent runs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub recent_runs: Vec<RunRecord>,
}

/// One run, as kept in status.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// When the run started.
    pub start_time: Time,
    /// Succeeded or Failed.
    pub phase: TaskPhase,
    /// What started it: `schedule`, `once`, `run-now`, `chain:<task>` or `tool:<identity>`.
    pub trigger: String,
    /// Duration, e.g. `3.2s`.
    pub duration: String,
    /// Short summary of the answer or error.
    pub summary: String,
    /// Input plus output tokens.
    pub tokens: i64,
    /// Cost in USD, e.g. `$0.0012`.
    pub cost: String,
    /// `find_tools` searches the run made: extra round trips for tools its selection left
    /// out (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub tool_searches: Option<i64>,
}
