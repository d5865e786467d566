//! What a run does, step by step, for whoever follows it live.
//!
//! The agent loop tells a [`StepSink`] each thing it does (a model turn, a tool call and how
//! it ended, the end of the run); the factory broadcasts them as [`RunStep`]s, and the
//! `dark_factory_run_now` tool streams the steps of the run it started to its client as
//! progress and log messages. Nobody listening costs a formatted line per step.

use tokio::sync::broadcast;

/// One step of a run of `task`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// The AiTask.
    pub task: String,
    /// What happened, in a line a person reads.
    pub message: String,
    /// Whether this is the run's last step (its outcome).
    pub last: bool,
}

/// Where the agent loop reports its steps.
pub trait StepSink: Send + Sync {
    /// One step happened.
    fn step(&self, message: String);
}

/// Nobody follows the run.
impl StepSink for () {
    fn step(&self, _message: String) {}
}

/// How many steps a slow follower may fall behind before it misses some.
const BACKLOG: usize = 256;

/// The steps of every run of one factory, to subscribe to.
#[derive(Debug, Clone)]
pub struct Steps(broadcast::Sender<RunStep>);

impl Default for Steps {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Steps {
    /// The steps from now on.
    pub fn follow(&self) -> broadcast::Receiver<RunStep> {
        self.0.subscribe()
    }

    /// The sink of one run of `task`.
    pub fn of<'a>(&'a self, task: &'a str) -> TaskSteps<'a> {
        TaskSteps { steps: self, task }
    }

    fn send(&self, task: &str, message: String, last: bool) {
        // No receiver is not an error: nobody follows.
        let _ = self.0.send(RunStep {
            task: task.to_owned(),
            message,
            last,
        });
    }
}

/// The sink of one run: its steps, tagged with its task.
pub struct TaskSteps<'a> {
    steps: &'a Steps,
    task: &'a str,
}

impl TaskSteps<'_> {
    /// The run's outcome, its last step.
    pub fn finish(&self, message: String) {
        self.steps.send(self.task, message, true);
    }
}

impl StepSink for TaskSteps<'_> {
    fn step(&self, message: String) {
        self.steps.send(self.task, message, false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn followers_see_the_steps_of_every_run_in_order() {
        let steps = Steps::default();
        let mut follower = steps.follow();
        let run = steps.of("nightly");
        run.step("turn 1: calls pg_query".into());
        run.finish("succeeded".into());
        let first = follower.recv().await.unwrap();
        assert_eq!(first.task, "nightly");
        assert!(!first.last);
        let last = follower.recv().await.unwrap();
        assert_eq!(last.message, "succeeded");
        assert!(last.last);
        // Steps without followers go nowhere, without error.
        drop(follower);
        steps.of("other").step("nobody listens".into());
    }
}
