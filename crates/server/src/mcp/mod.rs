//! The MCP protocol layer: what a client sees of the registry.
//!
//! One [`McpHandler`] is shared by every session (rmcp asks its factory for a handler per
//! session and per stateless request; all of them are cheap clones over the same state), so a
//! change to the registry is visible to every client at once. Clients learn about a change
//! through `notifications/tools/list_changed`: sessions of protocol versions up to 2025-11-25
//! get it from [`Peers`], which keeps their connections, and 2026-07-28 clients get it on the
//! `subscriptions/listen` request they hold open, answered by [`McpHandler`] itself.

mod client_link;
mod handler;
mod peers;

pub use client_link::RoundState;
pub use handler::{CallLimits, McpHandler, TalkBack};
pub use peers::{Peers, forward_changes};
