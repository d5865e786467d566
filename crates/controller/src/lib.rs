//! linkmcp-controller: the cluster side of linkmcp. It owns Kubernetes objects — it reconciles
//! McpServers into a least-privileged server Deployment with its Service, RBAC, settings and
//! credentials Secret, validates McpLinks, Agents and AiTasks, and writes their status. It never
//! serves tools or runs tasks: the server does, and the two meet only in the API server.
//!
//! Each reconciler is a pipeline of small steps: fetch what the object references, validate
//! it (no client), render the desired objects (pure, [`server::build`]), apply them
//! ([`server::apply`]) and write the status only when it changed ([`status`]). Condition
//! transitions become Events in one place ([`events`]).

pub mod agent;
pub mod conditions;
pub mod context;
pub mod controllers;
pub mod error;
pub mod events;
pub mod http;
pub mod leader;
pub mod link;
pub mod metrics;
pub mod secrets;
pub mod server;
pub mod status;
pub mod task;
pub mod watch;

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod scenarios;

pub use context::{Context, Settings};
pub use error::{Error, ErrorClass};
