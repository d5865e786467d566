//! The Valkey tools: their typed parameters, the commands each sends, and bounded results.
//!
//! Each tool returns structured content (keys with type and TTL, values with their full size)
//! and a short text rendering of it; both stay within the call's output cap and say what was
//! cut and how to narrow the request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use fred::bytes::Bytes;
use fred::prelude::Value;
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::client::{Read, Write};
use super::{FIELD_BYTES, ValkeyToolset};
use crate::{CallContext, NoArgs, output, parse_args};

/// A tool's answer: the result to send, or the error result to send instead.
type Outcome = Result<CallToolResult, CallToolResult>;

/// Most SCAN/HSCAN/SSCAN steps one call takes before handing the cursor back.
const MAX_SCAN_STEPS: usize = 1000;

/// Most times a SCAN step that found too many keys is repeated with a smaller COUNT.
const MAX_SHRINKS: usize = 16;

/// Room kept in the output cap for the parts of a result that are not items.
const ENVELOPE_BYTES: usize = 1024;

/// Parameters of `valkey_info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InfoParams {
    /// One INFO section to return instead of the default set: `server` (version, uptime),
    /// `clients`, `memory`, `persistence`, `stats`, `replication`, `cpu`, `modules`,
    /// `errorstats`, `commandstats`, `keyspace` (keys per database), or `all`.
    #[serde(default)]
    section: Option<InfoSection>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum InfoSection {
    Server,
    Clients,
    Memory,
    Persistence,
    Stats,
    Replication,
    Cpu,
    Modules,
    Errorstats,
    Commandstats,
    Keyspace,
    All,
}

impl InfoSection {
    fn as_str(self) -> &'static str {
        match self {
            InfoSection::Server => "server",
            InfoSection::Clients => "clients",
            InfoSection::Memory => "memory",
            InfoSection::Persistence => "persistence",
            InfoSection::Stats => "stats",
            InfoSection::Replication => "replication",
            InfoSection::Cpu => "cpu",
            InfoSection::Modules => "modules",
            InfoSection::Errorstats => "errorstats",
            InfoSection::Commandstats => "commandstats",
            InfoSection::Keyspace => "keyspace",
            InfoSection::All => "all",
        }
    }
}

/// Parameters of `valkey_dbsize`: none.
pub(super) type DbSizeParams = NoArgs;

/// Parameters of `valkey_scan_keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ScanParams {
    /// Glob pattern the keys must match: `*` any characters, `?` one character, `[abc]` one of
    /// a set, e.g. `session:*`. Default: every key (of the link's key prefix, if it has one;
    /// a pattern must then start with that prefix).
    #[serde(default)]
    pattern: Option<String>,
    /// The `cursor` a previous call returned, to continue that scan. Absent or `0` starts a
    /// new scan.
    #[serde(default)]
    cursor: Option<String>,
    /// Only keys of this type.
    #[serde(default, rename = "type")]
    key_type: Option<KeyType>,
    /// How many keys the server examines per SCAN step (a hint; default 100). Raise it when
    /// a narrow pattern finds few keys per call.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    count: Option<u32>,
    /// Most keys to return (default and maximum: the link's maxRows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u32>,
    /// Also return each key's type and TTL (default true).
    #[serde(default)]
    details: Option<bool>,
}

/// A Valkey data type.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum KeyType {
    String,
    List,
    Set,
    Zset,
    Hash,
    Stream,
}

impl KeyType {
    fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::Zset => "zset",
            KeyType::Hash => "hash",
            KeyType::Stream => "stream",
        }
    }
}

/// Parameters of `valkey_get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GetParams {
    /// The exact key to read (no pattern).
    key: String,
    /// Most elements to return for a list, set, sorted set, hash or stream (default and
    /// maximum: the link's maxRows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u32>,
}

/// Parameters of `valkey_type_and_ttl`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TypeTtlParams {
    /// The exact key to describe.
    key: String,
}

/// Parameters of `valkey_hgetall`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HgetallParams {
    /// The exact key of the hash.
    key: String,
    /// Only fields whose name matches this glob pattern, e.g. `addr*`.
    #[serde(default)]
    pattern: Option<String>,
    /// Most fields to return (default and maximum: the link's maxRows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u32>,
}

/// Parameters of `valkey_set`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetParams {
    /// The key to set.
    key: String,
    /// The string value to store.
    value: String,
    /// Seconds until the key expires. Absent: it never expires (any earlier TTL is removed).
    #[serde(default)]
    #[schemars(range(min = 1))]
    ttl_seconds: Option<u64>,
}

/// Parameters of `valkey_delete`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteParams {
    /// The exact keys to delete (no patterns), at most the link's maxRows.
    #[schemars(length(min = 1))]
    keys: Vec<String>,
}

/// One key of a scan.
#[derive(Debug, Serialize)]
struct KeyEntry {
    key: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    key_type: Option<String>,
    /// Absent without details; null when the key never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<Option<i64>>,
}

#[derive(Debug, Serialize)]
struct ScanResult {
    pattern: String,
    keys: Vec<KeyEntry>,
    /// Pass back to continue; `0` when the scan is complete.
    cursor: String,
    complete: bool,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct GetResult {
    key: String,
    #[serde(rename = "type")]
    key_type: String,
    /// Bytes of a string; elements of any other type.
    length: i64,
    /// A string's value, cut at the field limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// The first elements of a list, set, sorted set, hash or stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    elements: Option<Vec<serde_json::Value>>,
    /// Whether the value is not valid UTF-8 (shown with replacement characters).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    binary: bool,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct HashResult {
    key: String,
    /// Fields in the hash.
    field_count: i64,
    fields: BTreeMap<String, String>,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct TypeTtlResult {
    key: String,
    exists: bool,
    #[serde(rename = "type")]
    key_type: String,
    /// Null when the key never expires (or does not exist).
    ttl_seconds: Option<i64>,
    /// Bytes of a string; elements of any other type.
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<i64>,
}

/// A value as text, cut at [`FIELD_BYTES`].
struct Text {
    text: String,
    /// Bytes of the value shown.
    kept: usize,
    cut: bool,
    binary: bool,
}

fn clip(bytes: &[u8]) -> Text {
    let cut = bytes.len() > FIELD_BYTES;
    let mut head = &bytes[..bytes.len().min(FIELD_BYTES)];
    if cut
        && let Err(e) = std::str::from_utf8(head)
        && e.error_len().is_none()
    {
        // The cut fell inside a character: end before it.
        head = &head[..e.valid_up_to()];
    }
    match std::str::from_utf8(head) {
        Ok(text) => Text {
            text: text.to_owned(),
            kept: head.len(),
            cut,
            binary: false,
        },
        Err(_) => Text {
            text: String::from_utf8_lossy(head).into_owned(),
            kept: head.len(),
            cut,
            binary: true,
        },
    }
}

/// The bytes of a bulk-string reply (numbers as their decimal text; nil as empty).
fn bytes_of(value: &Value) -> Vec<u8> {
    match value.as_bytes() {
        Some(bytes) => bytes.to_vec(),
        None => value.as_string().unwrap_or_default().into_bytes(),
    }
}

fn text_of(value: &Value) -> String {
    String::from_utf8_lossy(&bytes_of(value)).into_owned()
}

fn int_of(value: &Value) -> Result<i64, CallToolResult> {
    value.as_i64().ok_or_else(|| {
        output::error(format!(
            "valkey answered {value:?} where a number was expected"
        ))
    })
}

fn key_arg(key: &str) -> Value {
    Value::from(key)
}

fn raw_arg(bytes: &[u8]) -> Value {
    Value::Bytes(Bytes::copy_from_slice(bytes))
}

/// A reply of SCAN, HSCAN or SSCAN: the next cursor and the items.
fn scan_reply(reply: Value) -> Result<(String, Vec<Value>), CallToolResult> {
    let mut parts = reply.into_array().into_iter();
    match (parts.next(), parts.next()) {
        (Some(cursor), Some(items)) => Ok((text_of(&cursor), items.into_array())),
        _ => Err(output::error(
            "valkey answered a scan with an unexpected reply",
        )),
    }
}

/// Seconds left from a PTTL reply: `None` for no expiry (or a missing key).
fn ttl_seconds(pttl: i64) -> Option<i64> {
    (pttl >= 0).then(|| (pttl + 999) / 1000)
}

/// `literal` with the glob characters escaped, so a MATCH pattern matches it as written.
fn glob_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keeps the leading items whose JSON fits in `budget` bytes, and always the first (each item
/// is already bounded by the field limit); returns how many were dropped.
fn fit<T: Serialize>(items: &mut Vec<T>, budget: usize) -> usize {
    let mut used = 0;
    let mut keep = 0;
    for item in items.iter() {
        let size = serde_json::to_string(item).map_or(0, |s| s.len()) + 1;
        if keep > 0 && used + size > budget {
            break;
        }
        used += size;
        keep += 1;
    }
    let dropped = items.len() - keep;
    items.truncate(keep);
    dropped
}

/// The result with `text` capped to the call's output limit.
fn finish<T: Serialize>(value: &T, text: &str, ctx: &CallContext) -> CallToolResult {
    let (text, _) = output::cap_text(text, ctx.max_output_bytes);
    output::ok_json(value, text)
}

fn item_budget(ctx: &CallContext) -> usize {
    ctx.max_output_bytes
        .saturating_sub(ENVELOPE_BYTES.min(ctx.max_output_bytes / 4))
}

impl ValkeyToolset {
    /// The number of items a call may return: what it asked for, within the link's maxRows.
    fn limit(&self, asked: Option<u32>) -> usize {
        asked.map_or(self.max_rows, |n| {
            usize::try_from(n).map_or(self.max_rows, |n| n.clamp(1, self.max_rows))
        })
    }

    /// Refuses a key outside the link's key prefix.
    fn check_key(&self, key: &str) -> Result<(), CallToolResult> {
        match &self.key_prefix {
            Some(prefix) if !key.starts_with(prefix.as_str()) => Err(output::error(format!(
                "key `{key}` is outside this link, which only reads and writes keys starting \
                 with `{prefix}`"
            ))),
            _ => Ok(()),
        }
    }

    /// The MATCH argument for a scan with the model's `pattern`, confined to the key prefix.
    fn scan_pattern(&self, pattern: Option<&str>) -> Result<String, CallToolResult> {
        match (&self.key_prefix, pattern) {
            (None, None) => Ok("*".to_owned()),
            (None, Some(pattern)) => Ok(pattern.to_owned()),
            (Some(prefix), None) => Ok(format!("{}*", glob_escape(prefix))),
            (Some(prefix), Some(pattern)) => match pattern.strip_prefix(prefix.as_str()) {
                Some(rest) => Ok(format!("{}{rest}", glob_escape(prefix))),
                None => Err(output::error(format!(
                    "pattern `{pattern}` is outside this link, which only sees keys starting \
                     with `{prefix}`; start the pattern with it, e.g. `{prefix}*`"
                ))),
            },
        }
    }

    async fn read(&self, cmd: Read, args: Vec<Value>) -> Result<Value, CallToolResult> {
        self.valkey.read(cmd, args).await.map_err(output::error)
    }

    /// The type of `key` (`none` when it does not exist).
    async fn key_type(&self, key: &str) -> Result<String, CallToolResult> {
        Ok(text_of(&self.read(Read::Type, vec![key_arg(key)]).await?))
    }

    pub(super) async fn info(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: InfoParams = parse_args(args)?;
        let section = params.section.map(InfoSection::as_str);
        let reply = self
            .read(Read::Info, section.map(Value::from).into_iter().collect())
            .await?;
        let raw = text_of(&reply).replace("\r\n", "\n");
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current = String::from("info");
        for line in raw.lines() {
            if let Some(name) = line.strip_prefix("# ") {
                current = name.trim().to_ascii_lowercase();
            } else if let Some((key, value)) = line.split_once(':') {
                sections
                    .entry(current.clone())
                    .or_default()
                    .insert(key.to_owned(), value.to_owned());
            }
        }
        #[derive(Serialize)]
        struct InfoResult {
            section: String,
            sections: BTreeMap<String, BTreeMap<String, String>>,
            truncated: bool,
        }
        let mut list: Vec<(String, BTreeMap<String, String>)> = sections.into_iter().collect();
        let dropped = fit(&mut list, item_budget(ctx));
        let result = InfoResult {
            section: section.unwrap_or("default").to_owned(),
            sections: list.into_iter().collect(),
            truncated: dropped > 0,
        };
        Ok(finish(&result, &raw, ctx))
    }

    pub(super) async fn dbsize(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let _: DbSizeParams = parse_args(args)?;
        let keys = int_of(&self.read(Read::DbSize, Vec::new()).await?)?;
        #[derive(Serialize)]
        struct DbSize {
            db: i32,
            keys: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            note: Option<String>,
        }
        let note = self.key_prefix.as_ref().map(|prefix| {
            format!(
                "this counts the whole database; this link only sees keys starting with \
                 `{prefix}`: list those with valkey_scan_keys"
            )
        });
        let mut text = format!("database {} holds {keys} keys", self.db);
        if let Some(note) = &note {
            let _ = write!(text, " ({note})");
        }
        let result = DbSize {
            db: self.db,
            keys,
            note,
        };
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn scan_keys(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: ScanParams = parse_args(args)?;
        let limit = self.limit(params.limit);
        let start = params.cursor.clone().unwrap_or_else(|| "0".to_owned());
        if start.is_empty() || !start.bytes().all(|b| b.is_ascii_digit()) {
            return Err(output::error(
                "invalid argument `cursor`: not a cursor; pass the `cursor` a previous call \
                 returned, or 0 to start",
            ));
        }
        let matcher = self.scan_pattern(params.pattern.as_deref())?;
        // Without a filter every examined key is returned, so asking for no more than are
        // still wanted keeps each step within the limit.
        let filtered =
            params.pattern.is_some() || self.key_prefix.is_some() || params.key_type.is_some();
        let mut hint = params.count.map_or(100, |c| c.clamp(1, 10_000)) as usize;
        let deadline = Instant::now() + ctx.timeout / 2;

        let mut cursor = start.clone();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut left_out = 0;
        let mut steps = 0;
        let mut shrinks = 0;
        loop {
            let wanted = limit - keys.len();
            let count = if filtered { hint } else { hint.min(wanted) };
            let mut args: Vec<Value> = vec![
                cursor.as_str().into(),
                "MATCH".into(),
                matcher.as_str().into(),
                "COUNT".into(),
                i64::try_from(count).unwrap_or(i64::MAX).into(),
            ];
            if let Some(key_type) = params.key_type {
                args.push("TYPE".into());
                args.push(key_type.as_str().into());
            }
            let (next, batch) = scan_reply(self.read(Read::Scan, args).await?)?;
            steps += 1;
            if batch.len() > wanted {
                if keys.is_empty() && count > 1 && shrinks < MAX_SHRINKS {
                    // The first step found more keys than may be returned. SCAN allows any
                    // COUNT from any cursor, so repeat it examining fewer keys.
                    hint = (count * wanted / batch.len() / 2).max(1);
                    shrinks += 1;
                    continue;
                }
                if keys.is_empty() {
                    // Even the smallest step found too many: keep the first keys and say how
                    // many of this step were left out.
                    left_out = batch.len() - wanted;
                    keys.extend(batch.iter().take(wanted).map(bytes_of));
                    cursor = next;
                }
                // Otherwise the step is dropped whole and the cursor stays where it began, so
                // the next call returns these keys.
                break;
            }
            keys.extend(batch.iter().map(bytes_of));
            cursor = next;
            if cursor == "0"
                || keys.len() == limit
                || steps >= MAX_SCAN_STEPS
                || Instant::now() >= deadline
            {
                break;
            }
        }
        if let Some(prefix) = &self.key_prefix {
            keys.retain(|k| k.starts_with(prefix.as_bytes()));
        }

        let mut entries: Vec<KeyEntry> = keys
            .iter()
            .map(|k| KeyEntry {
                key: clip(k).text,
                key_type: None,
                ttl_seconds: None,
            })
            .collect();
        if params.details.unwrap_or(true) && !keys.is_empty() {
            let cmds = keys
                .iter()
                .flat_map(|k| {
                    [
                        (Read::Type, vec![raw_arg(k)]),
                        (Read::Pttl, vec![raw_arg(k)]),
                    ]
                })
                .collect();
            let replies = self
                .valkey
                .read_pipeline(cmds)
                .await
                .map_err(output::error)?;
            for (entry, pair) in entries.iter_mut().zip(replies.chunks(2)) {
                if let [Ok(key_type), Ok(pttl)] = pair {
                    entry.key_type = Some(text_of(key_type));
                    entry.ttl_seconds = Some(pttl.as_i64().and_then(ttl_seconds));
                }
            }
        }
        let dropped = fit(&mut entries, item_budget(ctx));

        let complete = cursor == "0";
        let mut notes = Vec::new();
        if left_out > 0 {
            notes.push(format!(
                "truncated: one SCAN step found {} keys and {left_out} of them are not shown; \
                 to see them, repeat with cursor {start} and a narrower pattern",
                left_out + limit
            ));
        }
        if dropped > 0 {
            notes.push(format!(
                "truncated: {dropped} keys found by this call are not shown to stay within the \
                 output limit; repeat with cursor {start} and a smaller limit"
            ));
        }
        if !complete {
            notes.push(format!(
                "more keys may match: call again with cursor {cursor} to continue{}",
                if params.pattern.is_none() {
                    ", or narrow with pattern or type"
                } else {
                    ""
                }
            ));
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));

        let mut text = format!("{} keys", entries.len());
        if entries.is_empty() {
            text = "no keys".to_owned();
        }
        let _ = write!(
            text,
            " matching `{}`",
            params
                .pattern
                .as_deref()
                .unwrap_or(if self.key_prefix.is_some() {
                    "the link's prefix"
                } else {
                    "*"
                })
        );
        text.push_str(if complete {
            " (scan complete)\n"
        } else {
            " (scan not complete)\n"
        });
        for entry in &entries {
            text.push_str(&entry.key);
            if let Some(key_type) = &entry.key_type {
                let _ = write!(text, "  {key_type}");
            }
            match entry.ttl_seconds {
                Some(Some(ttl)) => {
                    let _ = write!(text, "  ttl {ttl} s");
                }
                Some(None) => text.push_str("  no expiry"),
                None => {}
            }
            text.push('\n');
        }
        if let Some(note) = &note {
            text.push_str(note);
            text.push('\n');
        }
        let result = ScanResult {
            pattern: params.pattern.unwrap_or_else(|| matcher.clone()),
            keys: entries,
            cursor,
            complete,
            truncated: left_out > 0 || dropped > 0,
            note,
        };
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn get(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: GetParams = parse_args(args)?;
        self.check_key(&params.key)?;
        let limit = self.limit(params.limit);
        let key = params.key;
        let key_type = self.key_type(&key).await?;
        let last = i64::try_from(limit).unwrap_or(i64::MAX) - 1;
        let mut result = GetResult {
            key: key.clone(),
            key_type: key_type.clone(),
            length: 0,
            value: None,
            elements: None,
            binary: false,
            truncated: false,
            note: None,
        };
        let mut elements: Vec<serde_json::Value> = Vec::new();
        match key_type.as_str() {
            "none" => return Err(not_found(&key)),
            "string" => {
                let end = i64::try_from(FIELD_BYTES).unwrap_or(i64::MAX) - 1;
                let value = self
                    .read(Read::GetRange, vec![key_arg(&key), 0.into(), end.into()])
                    .await?;
                result.length = int_of(&self.read(Read::Strlen, vec![key_arg(&key)]).await?)?;
                let text = clip(&bytes_of(&value));
                let shown = text.kept;
                result.binary = text.binary;
                result.value = Some(text.text);
                if usize::try_from(result.length).is_ok_and(|len| len > shown) {
                    result.truncated = true;
                    result.note = Some(format!(
                        "truncated: the value has {} bytes; the first {shown} are shown",
                        result.length
                    ));
                }
            }
            "list" => {
                result.length = int_of(&self.read(Read::Llen, vec![key_arg(&key)]).await?)?;
                let reply = self
                    .read(Read::Lrange, vec![key_arg(&key), 0.into(), last.into()])
                    .await?;
                elements = reply
                    .into_array()
                    .iter()
                    .map(|v| self.element(v, &mut result))
                    .collect();
            }
            "set" => {
                result.length = int_of(&self.read(Read::Scard, vec![key_arg(&key)]).await?)?;
                let members = self.scan_members(Read::Sscan, &key, "*", limit).await?;
                elements = members
                    .iter()
                    .map(|v| self.element(v, &mut result))
                    .collect();
            }
            "zset" => {
                result.length = int_of(&self.read(Read::Zcard, vec![key_arg(&key)]).await?)?;
                let reply = self
                    .read(
                        Read::Zrange,
                        vec![key_arg(&key), 0.into(), last.into(), "WITHSCORES".into()],
                    )
                    .await?;
                for pair in reply.into_array().chunks(2) {
                    if let [member, score] = pair {
                        let member = self.element(member, &mut result);
                        elements.push(serde_json::json!({
                            "member": member,
                            "score": text_of(score).parse::<f64>().ok(),
                        }));
                    }
                }
            }
            "hash" => {
                let hash = self.read_hash(&key, None, limit).await?;
                result.length = hash.field_count;
                result.truncated = hash.truncated;
                result.note = hash.note;
                elements = hash
                    .fields
                    .into_iter()
                    .map(|(field, value)| serde_json::json!({"field": field, "value": value}))
                    .collect();
            }
            "stream" => {
                result.length = int_of(&self.read(Read::Xlen, vec![key_arg(&key)]).await?)?;
                let count = i64::try_from(limit).unwrap_or(i64::MAX);
                let reply = self
                    .read(
                        Read::Xrange,
                        vec![
                            key_arg(&key),
                            "-".into(),
                            "+".into(),
                            "COUNT".into(),
                            count.into(),
                        ],
                    )
                    .await?;
                for entry in reply.into_array() {
                    let mut parts = entry.into_array().into_iter();
                    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let mut map = serde_json::Map::new();
                    for pair in fields.into_array().chunks(2) {
                        if let [field, value] = pair {
                            let value = self.element(value, &mut result);
                            map.insert(text_of(field), value);
                        }
                    }
                    elements.push(serde_json::json!({"id": text_of(&id), "fields": map}));
                }
            }
            other => {
                return Err(output::error(format!(
                    "key `{key}` is a {other}, which valkey_get cannot read; \
                     valkey_type_and_ttl describes it"
                )));
            }
        }
        if key_type != "string" {
            let dropped = fit(&mut elements, item_budget(ctx));
            let shown = elements.len();
            if usize::try_from(result.length).is_ok_and(|len| len > shown) || dropped > 0 {
                result.truncated = true;
                let more = if dropped > 0 {
                    "; the rest did not fit the output limit, ask for a smaller limit"
                } else {
                    ""
                };
                result.note.get_or_insert_with(|| {
                    format!(
                        "truncated: the {key_type} has {} elements; the first {shown} are \
                         shown{more}",
                        result.length
                    )
                });
            }
            result.elements = Some(elements);
        }
        let text = render_get(&result);
        Ok(finish(&result, &text, ctx))
    }

    /// An element's text, cut at the field limit; records the cut in `result`.
    fn element(&self, value: &Value, result: &mut GetResult) -> serde_json::Value {
        let text = clip(&bytes_of(value));
        if text.cut {
            result.truncated = true;
            result.note.get_or_insert_with(|| {
                format!("truncated: elements longer than {FIELD_BYTES} bytes are cut")
            });
        }
        result.binary |= text.binary;
        serde_json::Value::String(text.text)
    }

    /// Up to `limit` members of a set (SSCAN) or field/value pairs of a hash (HSCAN).
    async fn scan_members(
        &self,
        cmd: Read,
        key: &str,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<Value>, CallToolResult> {
        let per_item = if cmd == Read::Hscan { 2 } else { 1 };
        let mut cursor = "0".to_owned();
        let mut items = Vec::new();
        for _ in 0..MAX_SCAN_STEPS {
            let args = vec![
                key_arg(key),
                cursor.as_str().into(),
                "MATCH".into(),
                pattern.into(),
                "COUNT".into(),
                i64::try_from(limit.max(10)).unwrap_or(i64::MAX).into(),
            ];
            let (next, batch) = scan_reply(self.read(cmd, args).await?)?;
            items.extend(batch);
            cursor = next;
            if cursor == "0" || items.len() >= limit * per_item {
                break;
            }
        }
        Ok(items)
    }

    /// Up to `limit` fields of the hash `key`, with field values cut at the field limit.
    async fn read_hash(
        &self,
        key: &str,
        pattern: Option<&str>,
        limit: usize,
    ) -> Result<HashResult, CallToolResult> {
        let field_count = int_of(&self.read(Read::Hlen, vec![key_arg(key)]).await?)?;
        let whole = pattern.is_none() && usize::try_from(field_count).is_ok_and(|n| n <= limit);
        let items = if whole {
            self.read(Read::Hgetall, vec![key_arg(key)])
                .await?
                .into_array()
        } else {
            self.scan_members(Read::Hscan, key, pattern.unwrap_or("*"), limit)
                .await?
        };
        let mut fields = BTreeMap::new();
        let mut cut_values = 0;
        for pair in items.chunks(2) {
            if let [field, value] = pair {
                let value = clip(&bytes_of(value));
                cut_values += usize::from(value.cut);
                fields.insert(clip(&bytes_of(field)).text, value.text);
            }
        }
        let mut notes = Vec::new();
        let mut truncated = false;
        if fields.len() > limit {
            fields = fields.into_iter().take(limit).collect();
        }
        if pattern.is_none() && usize::try_from(field_count).is_ok_and(|n| n > fields.len()) {
            truncated = true;
            notes.push(format!(
                "truncated: the hash has {field_count} fields; {} are shown, narrow with a \
                 field pattern",
                fields.len()
            ));
        } else if pattern.is_some() && fields.len() == limit {
            truncated = true;
            notes.push(format!(
                "truncated: {limit} matching fields are shown; more may match, narrow the \
                 pattern"
            ));
        }
        if cut_values > 0 {
            truncated = true;
            notes.push(format!(
                "truncated: {cut_values} values longer than {FIELD_BYTES} bytes are cut"
            ));
        }
        Ok(HashResult {
            key: key.to_owned(),
            field_count,
            fields,
            truncated,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }

    pub(super) async fn type_and_ttl(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: TypeTtlParams = parse_args(args)?;
        self.check_key(&params.key)?;
        let key = params.key;
        let replies = self
            .valkey
            .read_pipeline(vec![
                (Read::Type, vec![key_arg(&key)]),
                (Read::Pttl, vec![key_arg(&key)]),
            ])
            .await
            .map_err(output::error)?;
        let mut replies = replies.into_iter();
        let key_type = match replies.next() {
            Some(reply) => text_of(&reply.map_err(output::error)?),
            None => String::from("none"),
        };
        let pttl = match replies.next() {
            Some(reply) => int_of(&reply.map_err(output::error)?)?,
            None => -2,
        };
        let length_cmd = match key_type.as_str() {
            "string" => Some(Read::Strlen),
            "list" => Some(Read::Llen),
            "set" => Some(Read::Scard),
            "zset" => Some(Read::Zcard),
            "hash" => Some(Read::Hlen),
            "stream" => Some(Read::Xlen),
            _ => None,
        };
        let length = match length_cmd {
            Some(cmd) => Some(int_of(&self.read(cmd, vec![key_arg(&key)]).await?)?),
            None => None,
        };
        let result = TypeTtlResult {
            exists: key_type != "none",
            ttl_seconds: ttl_seconds(pttl),
            key,
            key_type,
            length,
        };
        let text = if result.exists {
            let size = match (result.key_type.as_str(), result.length) {
                ("string", Some(n)) => format!(", {n} bytes"),
                (_, Some(n)) => format!(", {n} elements"),
                (_, None) => String::new(),
            };
            let ttl = match result.ttl_seconds {
                Some(s) => format!("expires in {s} s"),
                None => "never expires".to_owned(),
            };
            format!("`{}`: {}{size}, {ttl}", result.key, result.key_type)
        } else {
            format!("`{}` does not exist", result.key)
        };
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn hgetall(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: HgetallParams = parse_args(args)?;
        self.check_key(&params.key)?;
        let limit = self.limit(params.limit);
        match self.key_type(&params.key).await?.as_str() {
            "hash" => {}
            "none" => return Err(not_found(&params.key)),
            other => {
                return Err(output::error(format!(
                    "key `{}` is a {other}, not a hash; read it with valkey_get",
                    params.key
                )));
            }
        }
        let mut hash = self
            .read_hash(&params.key, params.pattern.as_deref(), limit)
            .await?;
        let mut pairs: Vec<(String, String)> =
            std::mem::take(&mut hash.fields).into_iter().collect();
        let dropped = fit(&mut pairs, item_budget(ctx));
        if dropped > 0 {
            hash.truncated = true;
            let note = format!(
                "truncated: {dropped} fields did not fit the output limit; ask for a smaller \
                 limit or a field pattern"
            );
            hash.note = Some(match hash.note.take() {
                Some(earlier) => format!("{earlier}; {note}"),
                None => note,
            });
        }
        hash.fields = pairs.into_iter().collect();
        let mut text = format!(
            "hash `{}`: {} of {} fields\n",
            hash.key,
            hash.fields.len(),
            hash.field_count
        );
        for (field, value) in &hash.fields {
            let _ = writeln!(text, "{field}: {value}");
        }
        if let Some(note) = &hash.note {
            let _ = writeln!(text, "{note}");
        }
        Ok(finish(&hash, &text, ctx))
    }

    pub(super) async fn set(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: SetParams = parse_args(args)?;
        self.check_key(&params.key)?;
        let mut args = vec![key_arg(&params.key), Value::from(params.value.as_str())];
        if let Some(ttl) = params.ttl_seconds {
            let ttl = i64::try_from(ttl).ok().filter(|t| *t > 0).ok_or_else(|| {
                output::error(format!(
                    "invalid argument `ttl_seconds`: {ttl} is not a number of seconds from 1"
                ))
            })?;
            args.push("EX".into());
            args.push(ttl.into());
        }
        self.valkey
            .write(Write::Set, args)
            .await
            .map_err(output::error)?;
        #[derive(Serialize)]
        struct SetResult<'a> {
            key: &'a str,
            bytes: usize,
            ttl_seconds: Option<u64>,
        }
        let result = SetResult {
            key: &params.key,
            bytes: params.value.len(),
            ttl_seconds: params.ttl_seconds,
        };
        let text = match params.ttl_seconds {
            Some(ttl) => format!(
                "set `{}` ({} bytes), expiring in {ttl} s",
                params.key,
                params.value.len()
            ),
            None => format!(
                "set `{}` ({} bytes), no expiry",
                params.key,
                params.value.len()
            ),
        };
        Ok(finish(&result, &text, ctx))
    }

    pub(super) async fn delete(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: DeleteParams = parse_args(args)?;
        if params.keys.is_empty() {
            return Err(output::error(
                "invalid argument `keys`: name at least one key to delete",
            ));
        }
        if params.keys.len() > self.max_rows {
            return Err(output::error(format!(
                "invalid argument `keys`: at most {} keys per call, {} given",
                self.max_rows,
                params.keys.len()
            )));
        }
        for key in &params.keys {
            self.check_key(key)?;
        }
        let args = params.keys.iter().map(|k| key_arg(k)).collect();
        let deleted = int_of(
            &self
                .valkey
                .write(Write::Del, args)
                .await
                .map_err(output::error)?,
        )?;
        #[derive(Serialize)]
        struct DeleteResult {
            requested: usize,
            deleted: i64,
        }
        let result = DeleteResult {
            requested: params.keys.len(),
            deleted,
        };
        let mut text = format!("deleted {deleted} of {} keys", params.keys.len());
        if usize::try_from(deleted).is_ok_and(|d| d < params.keys.len()) {
            text.push_str(" (the others did not exist)");
        }
        Ok(finish(&result, &text, ctx))
    }
}

fn not_found(key: &str) -> CallToolResult {
    output::error(format!(
        "key `{key}` does not exist; find keys with valkey_scan_keys"
    ))
}

fn render_get(result: &GetResult) -> String {
    let mut text = format!("`{}` ({}", result.key, result.key_type);
    if result.key_type == "string" {
        let _ = write!(text, ", {} bytes)", result.length);
    } else {
        let _ = write!(text, ", {} elements)", result.length);
    }
    if result.binary {
        text.push_str(" [binary, shown lossily]");
    }
    text.push('\n');
    if let Some(value) = &result.value {
        text.push_str(value);
        text.push('\n');
    }
    for element in result.elements.iter().flatten() {
        match element {
            serde_json::Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
        text.push('\n');
    }
    if let Some(note) = &result.note {
        text.push_str(note);
        text.push('\n');
    }
    text
}
