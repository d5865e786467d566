//! The Dark Factory: scheduled AI agent tasks run by the server with its own governed tools.
//!
//! It will hold the scheduler (cron, run-now, one run per task, Lease-elected leader), the
//! local tool selection (keyword table plus ranking, zero API calls), the model providers
//! (Anthropic Messages, OpenAI-compatible chat completions), the agent loop that executes tool
//! calls through the server's registry, run history, cost accounting and notifications.
//! The server owns the registry and hands the factory a way to call tools, so this crate
//! never depends on the server.
