//! Tools that linkmcp serves for links (PostgreSQL, Kafka, S3, ...).
//!
//! Every link type lives in its own module behind the small [`Toolset`] trait: it declares its
//! tools ([`ToolDef`]: name, description, JSON schema of its typed parameters, MCP annotations and
//! whether it reads or writes) and executes calls; it may also serve [`resource`]s and
//! [`prompt`]s. The server's registry knows nothing else about
//! a backend, so adding one touches one new module and one registration line.
//!
//! The shared helpers keep every toolset behaving the same way towards a model:
//! [`args::parse_args`] turns bad arguments into a tool error that names the field, and
//! [`output`] builds results and caps their size with an explicit truncation marker.

#[cfg(feature = "argocd")]
pub mod argocd;
pub mod args;
#[cfg(feature = "clickhouse")]
pub mod clickhouse;
pub mod client;
pub mod compliance;
pub mod credentials;
#[cfg(feature = "grafana")]
pub mod grafana;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod link;
#[cfg(feature = "loki")]
pub mod loki;
#[cfg(feature = "mongodb")]
pub mod mongodb;
pub mod output;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod prompt;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod resource;
#[cfg(any(feature = "postgres", feature = "clickhouse"))]
mod rowset;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(any(feature = "prometheus", feature = "loki"))]
pub mod series;
#[cfg(any(feature = "postgres", feature = "clickhouse"))]
mod sql_locks;
pub mod time;
pub mod toolset;
#[cfg(feature = "valkey")]
pub mod valkey;

pub use args::{NoArgs, parse_args, with_args};
pub use client::{Client, ClientError, Elicited, LogLevel};
pub use toolset::{
    Access, CallContext, ToolDef, ToolDefError, ToolVisibility, Toolset, ToolsetLimits,
};
