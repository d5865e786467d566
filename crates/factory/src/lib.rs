//! The Dark Factory: scheduled AI agent tasks run by the server with its own governed tools.
//!
//! The server embeds one [`Factory`] per McpServer and plugs in what it owns: its tool registry
//! ([`ToolHost`]), its knowledge base ([`KnowledgeSource`]), its Secrets ([`SecretSource`]) and
//! its status writer ([`RunReporter`]). This crate never depends on the server.
//!
//! - [`schedule`]: which task runs when (cron in a time zone, run-once, run-now, missed runs,
//!   retries, chains, paused agents), pure over an injected clock;
//! - [`select`]: which tools a run is offered, chosen locally with zero API calls;
//! - [`find_tools`]: the built-in tool a run asks for tools selection left out;
//! - [`provider`]: the Anthropic Messages API and OpenAI-compatible chat completions, with
//!   retries;
//! - [`run`]: the agent loop, executing tool calls through the host as `agent:<name>`;
//! - [`pricing`], [`history`]: cost per model, the last runs and totals per task and agent;
//! - [`notify`]: webhook and email reports;
//! - [`steps`]: a run's steps, live, for whoever follows it;
//! - [`driver`]: the factory that drives all of it in real time.

pub mod driver;
pub mod find_tools;
pub mod history;
pub mod host;
pub mod notify;
pub mod pricing;
pub mod provider;
pub mod run;
pub mod schedule;
pub mod select;
pub mod steps;

pub use driver::{
    Clock, Factory, FactoryConfig, FactoryDeps, RunReport, RunReporter, RunStart, SystemClock,
};
pub use host::{
    HostTool, KnowledgeSnippet, KnowledgeSource, NoKnowledge, NoSecrets, SecretSource, ToolHost,
};
pub use run::{RunInput, RunOutcome};
pub use schedule::{Scheduler, TaskView, Trigger};
