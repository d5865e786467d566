//! Read-tool results kept for a while (`McpLink.spec.cache`), so repeated identical calls —
//! a dashboard refreshing, agents polling the same question — do not reach the backend each
//! time.
//!
//! A result is reused only for the same served tool, the same arguments and the same caller
//! identity (two callers never share a result: what one may see is not assumed to be what the
//! other may), while it is fresh. Only read tools marked idempotent are cached, only successful
//! results are kept, and the cache holds at most `maxEntries` results: expired ones are dropped
//! first, then the oldest. Each cached call says in its result's `_meta` whether it was a
//! `hit` or a `miss` ([`CACHE_META_KEY`]), which the server counts in its metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use globset::{Glob, GlobMatcher};
use linkmcp_api::link::ResultCache;
use rmcp::model::{CallToolResult, JsonObject, MetaObject};

use super::BuildError;
use crate::{Access, ToolDef};

/// The `_meta` key of a cached tool's result: `"hit"` or `"miss"`.
pub const CACHE_META_KEY: &str = "linkmcp.io/cache";

/// Fresh results of one link's cacheable tools.
pub struct Cache {
    /// Served tool name -> how long its results stay fresh; absent: not cached.
    ttls: HashMap<String, Duration>,
    max_entries: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    results: HashMap<Key, (Instant, CallToolResult)>,
    /// Keys in the order they were stored, oldest first (may hold keys already replaced).
    order: VecDeque<(Instant, Key)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    tool: String,
    identity: String,
    arguments: String,
}

impl Cache {
    /// The cache `spec` describes for the served tools `defs`.
    pub fn new(spec: &ResultCache, defs: &[ToolDef]) -> Result<Self, BuildError> {
        let matchers: Vec<(GlobMatcher, Duration)> = spec
            .tools
            .iter()
            .map(|t| {
                let glob = Glob::new(&t.name).map_err(|e| {
                    BuildError::Invalid(format!("cache.tools: invalid pattern {:?}: {e}", t.name))
                })?;
                Ok((glob.compile_matcher(), seconds(t.ttl_seconds)))
            })
            .collect::<Result<_, BuildError>>()?;
        let default_ttl = seconds(spec.ttl_seconds);
        let ttls = defs
            .iter()
            .filter(|d| d.access() == Access::Read && is_idempotent(d))
            .filter_map(|d| {
                let ttl = matchers
                    .iter()
                    .find(|(m, _)| m.is_match(d.name()))
                    .map_or(default_ttl, |(_, ttl)| *ttl);
                (!ttl.is_zero()).then(|| (d.name().to_owned(), ttl))
            })
            .collect();
        let max_entries = spec
            .max_entries
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(ResultCache::DEFAULT_MAX_ENTRIES);
        Ok(Self {
            ttls,
            max_entries,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// Whether calls of `tool` are cached.
    pub fn caches(&self, tool: &str) -> bool {
        self.ttls.contains_key(tool)
    }

    fn key(tool: &str, identity: &str, args: &JsonObject) -> Key {
        Key {
            tool: tool.to_owned(),
            identity: identity.to_owned(),
            arguments: canonical(args),
        }
    }

    /// A fresh result of `tool` for these arguments and caller, marked as a hit.
    pub fn get(&self, tool: &str, identity: &str, args: &JsonObject) -> Option<CallToolResult> {
        let ttl = *self.ttls.get(tool)?;
        let key = Self::key(tool, identity, args);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (stored, result) = entries.results.get(&key)?;
        (stored.elapsed() < ttl).then(|| marked(result.clone(), "hit"))
    }

    /// Keeps `result` if it succeeded; returns it marked as a miss.
    pub fn put(
        &self,
        tool: &str,
        identity: &str,
        args: &JsonObject,
        result: CallToolResult,
    ) -> CallToolResult {
        let Some(ttl) = self.ttls.get(tool).copied() else {
            return result;
        };
        if result.is_error != Some(true) {
            let key = Self::key(tool, identity, args);
            let now = Instant::now();
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.results.insert(key.clone(), (now, result.clone()));
            entries.order.push_back((now, key));
            self.evict(&mut entries, ttl);
        }
        marked(result, "miss")
    }

    /// Drops what no longer counts: entries replaced since, expired ones, then the oldest
    /// until at most `max_entries` remain.
    fn evict(&self, entries: &mut Entries, longest_ttl_hint: Duration) {
        let longest = self
            .ttls
            .values()
            .copied()
            .max()
            .unwrap_or(longest_ttl_hint);
        while let Some((stored, key)) = entries.order.front().cloned() {
            let current = entries.results.get(&key).map(|(at, _)| *at);
            let replaced = current != Some(stored);
            let expired = stored.elapsed() >= longest;
            let over = entries.results.len() > self.max_entries;
            if !(replaced || expired || over) {
                break;
            }
            entries.order.pop_front();
            if !replaced {
                entries.results.remove(&key);
            }
        }
    }

    /// Results held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .results
            .len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The arguments as JSON text with every object's keys sorted, so the same arguments sent in
/// another key order are the same call (serde_json keeps insertion order in this build).
fn canonical(args: &JsonObject) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(&serde_json::Value::Object(args.clone()), &mut out);
    out
}

fn seconds(n: i32) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

fn is_idempotent(def: &ToolDef) -> bool {
    def.tool()
        .annotations
        .as_ref()
        .and_then(|a| a.idempotent_hint)
        .unwrap_or(false)
}

fn marked(mut result: CallToolResult, how: &str) -> CallToolResult {
    let meta = result.meta.get_or_insert_with(MetaObject::new);
    meta.0
        .insert(CACHE_META_KEY.to_owned(), serde_json::Value::from(how));
    result
}

/// Whether a result came from a link's cache: `Some("hit")`, `Some("miss")`, or `None` for a
/// tool that is not cached.
pub fn cache_outcome(result: &CallToolResult) -> Option<&str> {
    result.meta.as_ref()?.0.get(CACHE_META_KEY)?.as_str()
}
