//! Valkey (and Redis) as tools: look at a cache or key-value store, and, with writeAccess,
//! set and delete keys.
//!
//! Reads are reads because of what is sent, not because of a check on what was asked: read
//! tools can only name commands from a closed set of read commands (SCAN, never KEYS; GET by
//! range, TYPE, PTTL, INFO, DBSIZE, ...). Commands that wipe data (FLUSHALL, FLUSHDB) are not
//! tools at all. A link with `keyPrefix` confines every tool to keys starting with it.
//!
//! Every call is bounded: at most `limits.maxRows` keys, fields or elements (default 100),
//! each value cut at [`FIELD_BYTES`], the whole answer within the call's output cap, and the
//! result says what was cut and how to narrow the request. Keys are scanned with a cursor the
//! model passes back to continue.
//!
//! The client is built with the toolset and connects on the first call, so an unreachable
//! server never blocks registration: the tools are listed and a call says what to check.

mod client;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::ValkeyBackend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output};

use client::Valkey;
use tools::{
    DbSizeParams, DeleteParams, GetParams, HgetallParams, InfoParams, ScanParams, SetParams,
    TypeTtlParams,
};

/// The most bytes of one value (a string, a field, a list element) a result carries.
pub const FIELD_BYTES: usize = 4096;

/// The toolset of one Valkey link.
pub struct ValkeyToolset {
    defs: Vec<ToolDef>,
    valkey: Valkey,
    /// `spec.valkey.keyPrefix`: every key a tool touches starts with it.
    key_prefix: Option<String>,
    /// The most keys, fields or elements one call returns.
    max_rows: usize,
    /// The logical database, as reported in results.
    db: i32,
}

/// The toolset of a Valkey link. Builds the client without connecting.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &ValkeyBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let timeout = link.timeout();
    let max_rows = link.max_rows();
    let key_prefix = block.key_prefix.clone().filter(|p| !p.is_empty());
    Ok(Arc::new(ValkeyToolset {
        defs: tool_defs(key_prefix.as_deref())
            .map_err(|e| BuildError::Invalid(format!("valkey tools: {e}")))?,
        valkey: Valkey::new(link, block, timeout)?,
        key_prefix,
        max_rows,
        db: block.db,
    }))
}

/// The link as a component of the stack topology: where the server is, never a credential.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.valkey {
        endpoint.insert("host".to_owned(), block.host.clone());
        endpoint.insert("port".to_owned(), block.port.to_string());
        endpoint.insert("db".to_owned(), block.db.to_string());
        endpoint.insert("tls".to_owned(), block.tls.to_string());
        if let Some(prefix) = &block.key_prefix {
            endpoint.insert("keyPrefix".to_owned(), prefix.clone());
        }
    }
    Component::of_link(link, "valkey", "cache", endpoint)
}

fn tool_defs(key_prefix: Option<&str>) -> Result<Vec<ToolDef>, ToolDefError> {
    let scope = match key_prefix {
        Some(prefix) => format!(" This link only sees keys starting with `{prefix}`."),
        None => String::new(),
    };
    Ok(vec![
        ToolDef::read::<InfoParams>(
            "valkey_info",
            "Server information from INFO: version, uptime, memory use, clients, persistence, \
             replication and per-database key counts. Pick one `section` to keep the answer \
             short (e.g. `memory` or `keyspace`).",
        )?,
        ToolDef::read::<DbSizeParams>(
            "valkey_dbsize",
            "Number of keys in the link's database (DBSIZE). A cheap first look at how big the \
             store is before scanning it.",
        )?,
        ToolDef::read::<ScanParams>(
            "valkey_scan_keys",
            format!(
                "List keys matching a glob `pattern` with SCAN (never KEYS, so the server is \
                 not blocked), with each key's type and TTL. Returns a page of keys and a \
                 `cursor`: pass it back to continue, until `complete` is true. Narrow with \
                 `pattern` or `type`.{scope}"
            ),
        )?,
        ToolDef::read::<GetParams>(
            "valkey_get",
            format!(
                "Read the value of a key. Strings are returned as text (long values cut, with \
                 their full size); lists, sets, sorted sets, hashes and streams return their \
                 first elements and their length.{scope}"
            ),
        )?,
        ToolDef::read::<TypeTtlParams>(
            "valkey_type_and_ttl",
            format!(
                "Whether a key exists, its type, its length (bytes or elements) and its time \
                 to live in seconds (null when it never expires).{scope}"
            ),
        )?,
        ToolDef::read::<HgetallParams>(
            "valkey_hgetall",
            format!(
                "Read the fields and values of a hash key; large hashes return their first \
                 fields and the total count. Narrow with a field-name `pattern`.{scope}"
            ),
        )?,
        ToolDef::write::<SetParams>(
            "valkey_set",
            format!(
                "Set a string key to a value, replacing any previous value and type. With \
                 `ttl_seconds` the key expires after that many seconds; without it, it never \
                 expires.{scope}"
            ),
        )?
        .idempotent(true),
        ToolDef::write::<DeleteParams>(
            "valkey_delete",
            format!(
                "Delete one or more keys and say how many existed. Deletion cannot be \
                 undone.{scope}"
            ),
        )?
        .idempotent(true),
    ])
}

impl Toolset for ValkeyToolset {
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
            let result = match name {
                "valkey_info" => self.info(args, ctx).await,
                "valkey_dbsize" => self.dbsize(args, ctx).await,
                "valkey_scan_keys" => self.scan_keys(args, ctx).await,
                "valkey_get" => self.get(args, ctx).await,
                "valkey_type_and_ttl" => self.type_and_ttl(args, ctx).await,
                "valkey_hgetall" => self.hgetall(args, ctx).await,
                "valkey_set" => self.set(args, ctx).await,
                "valkey_delete" => self.delete(args, ctx).await,
                other => Err(output::error(format!(
                    "tool `{other}` is not a valkey tool"
                ))),
            };
            result.unwrap_or_else(|error| error)
        })
    }
}
