//! The linkmcp custom resources — McpServer, McpLink, Agent and AiTask (group `linkmcp.io`,
//! version `v1alpha1`) — and the names the controller, the server and the tests share.
//!
//! This crate has no runtime: it is types, schemas and constants. The CRD YAML in
//! `config/crd/` and the Helm chart is generated from these types by the `crdgen` binary
//! (`make crds`); a test fails when the checked-in YAML drifts from them.

// kube's `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a duplicate.
#![allow(clippy::duplicated_attributes)]

pub mod agent;
pub mod common;
pub mod crds;
pub mod link;
pub mod names;
pub mod notify;
pub mod server;
pub mod task;

pub use agent::{Agent, AgentSpec, AgentStatus};
pub use link::{Backend, LinkType, McpLink, McpLinkSpec, McpLinkStatus};
pub use server::{McpServer, McpServerSpec, McpServerStatus};
pub use task::{AiTask, AiTaskSpec, AiTaskStatus};

/// The CRDs' API group.
pub const GROUP: &str = "linkmcp.io";
/// The served and stored version of every kind.
pub const VERSION: &str = "v1alpha1";
