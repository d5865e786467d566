//! The S3 tools: their typed parameters, the requests each sends, and bounded results.
//!
//! Each tool returns structured content (objects with key, size, etag and lastModified) and a
//! short text rendering of it; both stay within the call's output cap and say what was cut and
//! how to continue. Failures name what to do next: a missing bucket lists the buckets that
//! exist, a missing key points at s3_list_objects with a prefix.

use crate::client::{Client, Ticker};
use std::fmt::Write as _;

use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use base64::Engine as _;
use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::S3Toolset;
use super::client::Failure;
use crate::{CallContext, NoArgs, output, parse_args};

/// A tool's answer: the result to send, or the error result to send instead.
type Outcome = Result<CallToolResult, CallToolResult>;

/// Room kept in the output cap for the parts of a result that are not listed items or text.
const ENVELOPE_BYTES: usize = 512;

/// Objects per ListObjectsV2 page when counting a bucket (the S3 maximum).
const STATS_PAGE_KEYS: i32 = 1000;

/// Listing pages s3_bucket_stats reads when the call does not say.
const DEFAULT_STATS_PAGES: u32 = 10;

/// Most listing pages s3_bucket_stats may read in one call.
const MAX_STATS_PAGES: u32 = 100;

/// Bytes of an object s3_get_object previews when the call does not say.
const DEFAULT_PREVIEW_BYTES: u32 = 1024;

/// Most bytes s3_get_object may preview.
const MAX_PREVIEW_BYTES: u32 = 64 * 1024;

/// Largest text s3_upload_text accepts.
const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Most bucket names listed in a "bucket does not exist" message.
const BUCKETS_IN_MESSAGE: usize = 50;

/// Parameters of `s3_list_buckets`: none.
pub(super) type ListBucketsParams = NoArgs;

/// Parameters of `s3_list_objects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListObjectsParams {
    /// The bucket (optional when the link is restricted to one bucket).
    #[serde(default)]
    bucket: Option<String>,
    /// Only keys starting with this, e.g. `logs/2024/`.
    #[serde(default)]
    prefix: Option<String>,
    /// Groups keys by the part after `prefix` up to this character into `commonPrefixes`;
    /// `/` lists one "folder" level.
    #[serde(default)]
    delimiter: Option<String>,
    /// `nextContinuationToken` of the previous page, to get the next one.
    #[serde(default)]
    continuation_token: Option<String>,
    /// Only keys after this one (the `nextStartAfter` of a page cut by the output limit).
    #[serde(default)]
    start_after: Option<String>,
    /// Most objects to return (default and maximum: the link's maxRows, at most 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    max_keys: Option<u32>,
}

/// Parameters of `s3_get_object`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GetObjectParams {
    /// The object's key, e.g. `reports/2024-05.csv`.
    key: String,
    /// The bucket (optional when the link is restricted to one bucket).
    #[serde(default)]
    bucket: Option<String>,
    /// How many of the first bytes to return (default 1024, at most 65536; 0 for metadata
    /// only).
    #[serde(default)]
    #[schemars(range(max = 65536))]
    preview_bytes: Option<u32>,
}

/// Parameters of `s3_read_text`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadTextParams {
    /// The object's key, e.g. `logs/app.log`.
    key: String,
    /// The bucket (optional when the link is restricted to one bucket).
    #[serde(default)]
    bucket: Option<String>,
    /// Byte offset to start reading at (default 0); the `nextOffset` of a cut result
    /// continues it.
    #[serde(default)]
    offset: Option<u64>,
    /// Most bytes to read (default and maximum: the output limit of the call).
    #[serde(default)]
    #[schemars(range(min = 1))]
    max_bytes: Option<u64>,
}

/// Parameters of `s3_bucket_stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BucketStatsParams {
    /// The bucket (optional when the link is restricted to one bucket).
    #[serde(default)]
    bucket: Option<String>,
    /// Only count keys starting with this, e.g. `logs/`.
    #[serde(default)]
    prefix: Option<String>,
    /// Most listing pages (1000 objects each) to read (default 10, at most 100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    max_pages: Option<u32>,
}

/// Parameters of `s3_upload_text`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadTextParams {
    /// The key to write, e.g. `notes/summary.md`. An existing object with it is replaced.
    key: String,
    /// The object's content (at most 16 MiB).
    text: String,
    /// The bucket (optional when the link is restricted to one bucket).
    #[serde(default)]
    bucket: Option<String>,
    /// Content type (default `text/plain; charset=utf-8`).
    #[serde(default)]
    content_type: Option<String>,
}

/// One object of a listing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectEntry {
    key: String,
    size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class: Option<String>,
}

/// A timestamp as RFC 3339.
fn timestamp(t: Option<&DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// An etag without the quotes S3 wraps it in.
fn etag(e: Option<&str>) -> Option<String> {
    e.map(|e| e.trim_matches('"').to_owned())
}

/// A byte count for people: `1536` -> `1.5 KiB`.
fn human(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Reads at most `limit` bytes of `body`, after skipping `skip` bytes, and stops there (the
/// rest is never downloaded). Returns the bytes and whether the body had more.
async fn read_limited(
    mut body: ByteStream,
    mut skip: u64,
    limit: usize,
    client: &Client,
) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::with_capacity(limit.min(64 * 1024));
    let mut ticker = Ticker::new(client, "bytes read");
    while let Some(chunk) = body.try_next().await.map_err(|e| e.to_string())? {
        ticker.tick(out.len() as u64, Some(limit as u64)).await;
        let mut chunk: &[u8] = &chunk;
        if skip > 0 {
            let dropped = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
            chunk = &chunk[dropped..];
            skip -= dropped as u64;
        }
        let room = limit - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(chunk);
        if out.len() == limit {
            // Whether anything follows is only known by asking for it.
            let more = body.try_next().await.map_err(|e| e.to_string())?;
            return Ok((out, more.is_some_and(|c| !c.is_empty())));
        }
    }
    Ok((out, false))
}

/// The total size from a `Content-Range: bytes 0-99/12345` header.
fn range_total(content_range: Option<&str>) -> Option<u64> {
    content_range?.rsplit('/').next()?.trim().parse().ok()
}

/// The text in `bytes`, which may start or end in the middle of a UTF-8 character: returns
/// the leading bytes skipped and the text; `None` when the bytes are not text.
fn utf8_slice(bytes: &[u8], at_start: bool, at_end: bool) -> Option<(usize, &str)> {
    let lead = if at_start {
        0
    } else {
        bytes
            .iter()
            .take(3)
            .take_while(|b| (0x80..0xC0).contains(*b))
            .count()
    };
    let body = &bytes[lead..];
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // A character cut by the end of the range: keep what is before it.
        Err(e) if e.error_len().is_none() && !at_end => {
            std::str::from_utf8(&body[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    if text.contains('\0') {
        return None;
    }
    Some((lead, text))
}

impl S3Toolset {
    /// The bucket a call uses: the one it names, within the link's restriction.
    fn bucket(&self, given: Option<String>) -> Result<String, CallToolResult> {
        let given = given.filter(|b| !b.is_empty());
        match (&self.bucket, given) {
            (Some(only), Some(given)) if *only != given => Err(output::error(format!(
                "this link only serves bucket `{only}`; bucket `{given}` is not available \
                 through it (omit `bucket` to use `{only}`)"
            ))),
            (Some(only), _) => Ok(only.clone()),
            (None, Some(given)) => Ok(given),
            (None, None) => Err(output::error(
                "`bucket` is required: this link is not restricted to one bucket; \
                 s3_list_buckets lists the buckets",
            )),
        }
    }

    /// The error result for `failure` of a request on `bucket` (and `key`).
    async fn fail(&self, failure: Failure, bucket: &str, key: Option<&str>) -> CallToolResult {
        let message = match (failure, key) {
            (Failure::Message(message), _) => message,
            (Failure::NoSuchBucket, _) => self.no_such_bucket(bucket).await,
            (Failure::NoSuchKey, Some(key)) => no_such_key(bucket, key),
            // A HEAD 404 does not say which is missing: ask about the bucket.
            (Failure::NotFound, Some(key)) => {
                match self.s3.client.head_bucket().bucket(bucket).send().await {
                    Err(e)
                        if matches!(
                            self.s3.classify(&e, "HeadBucket"),
                            Failure::NotFound | Failure::NoSuchBucket
                        ) =>
                    {
                        self.no_such_bucket(bucket).await
                    }
                    _ => no_such_key(bucket, key),
                }
            }
            (Failure::NoSuchKey | Failure::NotFound, None) => self.no_such_bucket(bucket).await,
            (Failure::InvalidRange, _) => format!(
                "the requested byte range is not in the object (bucket `{bucket}`); \
                 s3_get_object shows its size"
            ),
        };
        output::error(self.s3.scrub(&message))
    }

    /// "Bucket does not exist", with the buckets that do.
    async fn no_such_bucket(&self, bucket: &str) -> String {
        let endpoint = &self.s3.endpoint;
        if self.bucket.is_some() {
            return format!(
                "bucket `{bucket}`, the only bucket of this link (spec.s3.bucket), does not \
                 exist at {endpoint}; check the link's bucket name and endpoint"
            );
        }
        match self.s3.client.list_buckets().send().await {
            Ok(out) => {
                let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
                if names.is_empty() {
                    format!("bucket `{bucket}` does not exist at {endpoint}; there are no buckets")
                } else {
                    let more = names.len().saturating_sub(BUCKETS_IN_MESSAGE);
                    let mut shown = names
                        .iter()
                        .take(BUCKETS_IN_MESSAGE)
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    if more > 0 {
                        let _ = write!(shown, " and {more} more");
                    }
                    format!("bucket `{bucket}` does not exist at {endpoint}; buckets are: {shown}")
                }
            }
            Err(_) => format!(
                "bucket `{bucket}` does not exist at {endpoint}; s3_list_buckets lists the \
                 buckets the link can see"
            ),
        }
    }

    pub(super) async fn list_buckets(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let _: ListBucketsParams = parse_args(args)?;
        if let Some(only) = &self.bucket {
            if let Err(e) = self.s3.client.head_bucket().bucket(only).send().await {
                let failure = match self.s3.classify(&e, &format!("HeadBucket on `{only}`")) {
                    Failure::NotFound => Failure::NoSuchBucket,
                    other => other,
                };
                return Err(self.fail(failure, only, None).await);
            }
            let value = serde_json::json!({
                "buckets": [{"name": only}],
                "count": 1,
                "restricted": true,
            });
            let text = format!("1 bucket (this link only serves it): {only}");
            return Ok(output::ok_json(&value, text));
        }
        let out = match self.s3.client.list_buckets().send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(output::error(match self.s3.classify(&e, "ListBuckets") {
                    Failure::Message(m) => m,
                    other => format!("ListBuckets failed: {other:?}"),
                }));
            }
        };
        let all = out.buckets();
        let budget = ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES);
        let mut buckets = Vec::new();
        let mut lines = String::new();
        for b in all.iter().take(self.max_rows) {
            let name = b.name().unwrap_or_default();
            let created = timestamp(b.creation_date());
            let line = format!("{name}\t{}\n", created.as_deref().unwrap_or("-"));
            if lines.len() + line.len() > budget {
                break;
            }
            lines.push_str(&line);
            buckets.push(serde_json::json!({"name": name, "creationDate": created}));
        }
        let truncated = buckets.len() < all.len();
        let mut text = format!(
            "{} of {} buckets (name, created):\n",
            buckets.len(),
            all.len()
        );
        text.push_str(&lines);
        if truncated {
            let _ = write!(
                text,
                "[truncated: {} of {} buckets shown]",
                buckets.len(),
                all.len()
            );
        }
        let value = serde_json::json!({
            "buckets": buckets,
            "count": all.len(),
            "truncated": truncated,
        });
        Ok(output::ok_json(
            &value,
            output::cap_text(&text, ctx.max_output_bytes).0,
        ))
    }

    pub(super) async fn list_objects(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: ListObjectsParams = parse_args(args)?;
        let bucket = self.bucket(params.bucket)?;
        let max_keys = params
            .max_keys
            .map_or(self.max_rows, |n| n as usize)
            .clamp(1, self.max_rows.min(1000));
        let mut request = self
            .s3
            .client
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(i32::try_from(max_keys).unwrap_or(1000));
        if let Some(prefix) = &params.prefix {
            request = request.prefix(prefix);
        }
        if let Some(delimiter) = params.delimiter.as_deref().filter(|d| !d.is_empty()) {
            request = request.delimiter(delimiter);
        }
        if let Some(token) = params
            .continuation_token
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            request = request.continuation_token(token);
        }
        if let Some(after) = params.start_after.as_deref().filter(|a| !a.is_empty()) {
            request = request.start_after(after);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let failure = self
                    .s3
                    .classify(&e, &format!("ListObjectsV2 on bucket `{bucket}`"));
                return Err(self.fail(failure, &bucket, None).await);
            }
        };

        let budget = ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES);
        let mut lines = String::new();
        let folders: Vec<String> = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_owned))
            .collect();
        for folder in &folders {
            let _ = writeln!(lines, "{folder}\t(folder)");
        }
        let mut objects = Vec::new();
        let mut cut = false;
        for object in out.contents() {
            let entry = ObjectEntry {
                key: object.key().unwrap_or_default().to_owned(),
                size: object.size().unwrap_or(0),
                etag: etag(object.e_tag()),
                last_modified: timestamp(object.last_modified()),
                storage_class: object.storage_class().map(|c| c.as_str().to_owned()),
            };
            let line = format!(
                "{}\t{}\t{}\n",
                entry.key,
                human(entry.size),
                entry.last_modified.as_deref().unwrap_or("-")
            );
            // The structured copy counts too: keep both within the budget.
            if !objects.is_empty() && 2 * (lines.len() + line.len()) > budget {
                cut = true;
                break;
            }
            lines.push_str(&line);
            objects.push(entry);
        }
        let more = out.is_truncated().unwrap_or(false);
        // A page cut by the output limit continues after its last shown key; the store's own
        // token would skip the objects left out.
        let next_start_after = cut.then(|| objects.last().map(|o| o.key.clone())).flatten();
        let next_token = if cut {
            None
        } else {
            out.next_continuation_token().map(str::to_owned)
        };
        let scope = match &params.prefix {
            Some(prefix) if !prefix.is_empty() => format!("`{bucket}` under `{prefix}`"),
            _ => format!("`{bucket}`"),
        };
        let mut text = format!(
            "{} objects and {} folders in {scope} (key, size, last modified):\n",
            objects.len(),
            folders.len()
        );
        text.push_str(&lines);
        if cut {
            let _ = write!(
                text,
                "[truncated at the output limit: call again with start_after `{}` for the rest]",
                next_start_after.as_deref().unwrap_or_default()
            );
        } else if more {
            text.push_str(
                "[more objects: call again with the nextContinuationToken of this result, or \
                 narrow `prefix`]",
            );
        }
        let value = serde_json::json!({
            "bucket": bucket,
            "prefix": params.prefix,
            "delimiter": params.delimiter,
            "objects": objects,
            "commonPrefixes": folders,
            "isTruncated": more || cut,
            "nextContinuationToken": next_token,
            "nextStartAfter": next_start_after,
        });
        Ok(output::ok_json(
            &value,
            output::cap_text(&text, ctx.max_output_bytes).0,
        ))
    }

    pub(super) async fn get_object(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: GetObjectParams = parse_args(args)?;
        let bucket = self.bucket(params.bucket)?;
        let key = params.key;
        let head = match self
            .s3
            .client
            .head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) => {
                let failure = self
                    .s3
                    .classify(&e, &format!("HeadObject on `{bucket}/{key}`"));
                return Err(self.fail(failure, &bucket, Some(&key)).await);
            }
        };
        let size = head.content_length().unwrap_or(0);
        let preview_limit = params
            .preview_bytes
            .unwrap_or(DEFAULT_PREVIEW_BYTES)
            .min(MAX_PREVIEW_BYTES) as usize;
        // Base64 grows by a third, and the preview appears in both renderings.
        let preview_limit =
            preview_limit.min(ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES) / 3);
        let mut preview = serde_json::Value::Null;
        let mut preview_text = String::new();
        if size > 0 && preview_limit > 0 {
            let want = preview_limit.min(usize::try_from(size).unwrap_or(usize::MAX));
            let got = self
                .s3
                .client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .range(format!("bytes=0-{}", want - 1))
                .send()
                .await;
            let out = match got {
                Ok(out) => out,
                Err(e) => {
                    let failure = self
                        .s3
                        .classify(&e, &format!("GetObject on `{bucket}/{key}`"));
                    return Err(self.fail(failure, &bucket, Some(&key)).await);
                }
            };
            let (bytes, _) = read_limited(out.body, 0, want, &ctx.client)
                .await
                .map_err(|e| {
                    output::error(self.s3.scrub(&format!(
                        "reading `{bucket}/{key}` from S3 at {} failed: {e}",
                        self.s3.endpoint
                    )))
                })?;
            let complete = bytes.len() as u64 >= size.unsigned_abs();
            let shown = bytes.len();
            match utf8_slice(&bytes, true, complete) {
                Some((_, text)) => {
                    preview_text = format!(
                        "first {shown} bytes as text{}:\n{text}",
                        if complete { " (the whole object)" } else { "" }
                    );
                    preview = serde_json::json!({
                        "encoding": "text", "bytes": shown, "complete": complete, "data": text,
                    });
                }
                None => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    preview_text = format!(
                        "first {shown} bytes (binary, base64){}:\n{data}",
                        if complete { " (the whole object)" } else { "" }
                    );
                    preview = serde_json::json!({
                        "encoding": "base64", "bytes": shown, "complete": complete, "data": data,
                    });
                }
            }
        }
        let metadata = head.metadata().cloned().unwrap_or_default();
        let mut text = format!(
            "`{bucket}/{key}`: {} ({size} bytes), etag {}, last modified {}, content type {}",
            human(size),
            etag(head.e_tag()).unwrap_or_else(|| "-".into()),
            timestamp(head.last_modified()).unwrap_or_else(|| "-".into()),
            head.content_type().unwrap_or("-"),
        );
        if !metadata.is_empty() {
            let mut pairs: Vec<_> = metadata.iter().collect();
            pairs.sort();
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(text, "\nuser metadata: {}", shown.join(", "));
        }
        if !preview_text.is_empty() {
            let _ = write!(text, "\n{preview_text}");
            if preview["complete"] == false {
                let _ = write!(
                    text,
                    "\n[truncated: {} of {size} bytes previewed; s3_read_text reads a text \
                     object from any offset]",
                    preview["bytes"]
                );
            }
        }
        let value = serde_json::json!({
            "bucket": bucket,
            "key": key,
            "size": size,
            "etag": etag(head.e_tag()),
            "lastModified": timestamp(head.last_modified()),
            "contentType": head.content_type(),
            "contentEncoding": head.content_encoding(),
            "storageClass": head.storage_class().map(|c| c.as_str()),
            "metadata": metadata,
            "preview": preview,
        });
        Ok(output::ok_json(
            &value,
            output::cap_text(&text, ctx.max_output_bytes).0,
        ))
    }

    pub(super) async fn read_text(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: ReadTextParams = parse_args(args)?;
        let bucket = self.bucket(params.bucket)?;
        let key = params.key;
        let offset = params.offset.unwrap_or(0);
        let budget = ctx.max_output_bytes.saturating_sub(ENVELOPE_BYTES).max(64);
        let limit = params
            .max_bytes
            .map_or(budget, |m| usize::try_from(m).unwrap_or(usize::MAX))
            .clamp(1, budget);
        let end = offset.saturating_add(limit as u64 - 1);
        let got = self
            .s3
            .client
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .range(format!("bytes={offset}-{end}"))
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) => {
                let failure = self
                    .s3
                    .classify(&e, &format!("GetObject on `{bucket}/{key}`"));
                if failure == Failure::InvalidRange {
                    return self.past_the_end(&bucket, &key, offset).await;
                }
                return Err(self.fail(failure, &bucket, Some(&key)).await);
            }
        };
        let content_type = out.content_type().map(str::to_owned);
        let ranged = out.content_range().is_some();
        let total = range_total(out.content_range())
            .or_else(|| out.content_length().map(i64::unsigned_abs))
            .unwrap_or(0);
        // A store that ignored the range sends the whole object: skip to the offset and stop
        // after the range all the same.
        let skip = if ranged { 0 } else { offset };
        let (bytes, _) = read_limited(out.body, skip, limit, &ctx.client)
            .await
            .map_err(|e| {
                output::error(self.s3.scrub(&format!(
                    "reading `{bucket}/{key}` from S3 at {} failed: {e}",
                    self.s3.endpoint
                )))
            })?;
        let reaches_end = offset + bytes.len() as u64 >= total;
        let Some((lead, text)) = utf8_slice(&bytes, offset == 0, reaches_end) else {
            return Err(output::error(format!(
                "`{bucket}/{key}` is not UTF-8 text (content type {}); s3_get_object shows its \
                 metadata and a base64 preview",
                content_type.as_deref().unwrap_or("unknown")
            )));
        };
        let start = offset + lead as u64;
        let next_offset = start + text.len() as u64;
        let truncated = next_offset < total;
        let mut rendered = format!(
            "`{bucket}/{key}` bytes {start}-{} of {total}:\n{text}",
            next_offset.saturating_sub(1)
        );
        if truncated {
            if !rendered.ends_with('\n') {
                rendered.push('\n');
            }
            let _ = write!(
                rendered,
                "[truncated: {} of {total} bytes shown; continue with offset {next_offset}]",
                text.len()
            );
        }
        let value = serde_json::json!({
            "bucket": bucket,
            "key": key,
            "size": total,
            "offset": start,
            "bytes": text.len(),
            "contentType": content_type,
            "truncated": truncated,
            "nextOffset": truncated.then_some(next_offset),
            "text": text,
        });
        Ok(output::ok_json(
            &value,
            output::cap_text(&rendered, ctx.max_output_bytes).0,
        ))
    }

    /// A read at or past the end of an object: empty text for an empty object read from the
    /// start, otherwise an error with the object's size.
    async fn past_the_end(&self, bucket: &str, key: &str, offset: u64) -> Outcome {
        let head = match self
            .s3
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => head,
            Err(e) => {
                let failure = self
                    .s3
                    .classify(&e, &format!("HeadObject on `{bucket}/{key}`"));
                return Err(self.fail(failure, bucket, Some(key)).await);
            }
        };
        let size = head.content_length().unwrap_or(0).unsigned_abs();
        if size == 0 && offset == 0 {
            let value = serde_json::json!({
                "bucket": bucket, "key": key, "size": 0, "offset": 0, "bytes": 0,
                "contentType": head.content_type(), "truncated": false, "nextOffset": null,
                "text": "",
            });
            return Ok(output::ok_json(
                &value,
                format!("`{bucket}/{key}` is empty"),
            ));
        }
        Err(output::error(format!(
            "offset {offset} is past the end of `{bucket}/{key}`, which has {size} bytes; \
             read from an offset below {size}"
        )))
    }

    pub(super) async fn bucket_stats(&self, args: JsonObject, _ctx: &CallContext) -> Outcome {
        let params: BucketStatsParams = parse_args(args)?;
        let bucket = self.bucket(params.bucket)?;
        let max_pages = params
            .max_pages
            .unwrap_or(DEFAULT_STATS_PAGES)
            .clamp(1, MAX_STATS_PAGES);
        let mut token: Option<String> = None;
        let (mut objects, mut bytes, mut pages) = (0u64, 0i64, 0u32);
        let mut largest: Option<(String, i64)> = None;
        let mut newest: Option<(String, DateTime)> = None;
        let complete = loop {
            let mut request = self
                .s3
                .client
                .list_objects_v2()
                .bucket(&bucket)
                .max_keys(STATS_PAGE_KEYS);
            if let Some(prefix) = &params.prefix {
                request = request.prefix(prefix);
            }
            if let Some(t) = &token {
                request = request.continuation_token(t);
            }
            let out = match request.send().await {
                Ok(out) => out,
                Err(e) => {
                    let failure = self
                        .s3
                        .classify(&e, &format!("ListObjectsV2 on bucket `{bucket}`"));
                    return Err(self.fail(failure, &bucket, None).await);
                }
            };
            pages += 1;
            for object in out.contents() {
                let size = object.size().unwrap_or(0);
                let key = object.key().unwrap_or_default();
                objects += 1;
                bytes += size;
                if largest.as_ref().is_none_or(|(_, s)| size > *s) {
                    largest = Some((key.to_owned(), size));
                }
                if let Some(modified) = object.last_modified()
                    && newest.as_ref().is_none_or(|(_, t)| modified > t)
                {
                    newest = Some((key.to_owned(), *modified));
                }
            }
            token = out.next_continuation_token().map(str::to_owned);
            if !out.is_truncated().unwrap_or(false) || token.is_none() {
                break true;
            }
            if pages >= max_pages {
                break false;
            }
        };
        let scope = match &params.prefix {
            Some(prefix) if !prefix.is_empty() => format!("`{bucket}` under `{prefix}`"),
            _ => format!("`{bucket}`"),
        };
        let mut text = format!(
            "{scope}: {}{objects} objects, {} ({bytes} bytes) in {pages} listing pages",
            if complete { "" } else { "at least " },
            human(bytes)
        );
        if let Some((key, size)) = &largest {
            let _ = write!(text, "\nlargest: {key} ({})", human(*size));
        }
        if let Some((key, t)) = &newest {
            let _ = write!(
                text,
                "\nmost recently modified: {key} ({})",
                timestamp(Some(t)).unwrap_or_default()
            );
        }
        if !complete {
            let _ = write!(
                text,
                "\n[partial: counted the first {objects} objects ({max_pages} pages) only; raise \
                 max_pages (at most {MAX_STATS_PAGES}) or count a narrower prefix]"
            );
        }
        let value = serde_json::json!({
            "bucket": bucket,
            "prefix": params.prefix,
            "objects": objects,
            "totalBytes": bytes,
            "pages": pages,
            "complete": complete,
            "largest": largest.map(|(key, size)| serde_json::json!({"key": key, "size": size})),
            "newest": newest.map(|(key, t)| serde_json::json!({
                "key": key, "lastModified": timestamp(Some(&t)),
            })),
        });
        Ok(output::ok_json(&value, text))
    }

    pub(super) async fn upload_text(&self, args: JsonObject, ctx: &CallContext) -> Outcome {
        let params: UploadTextParams = parse_args(args)?;
        let bucket = self.bucket(params.bucket)?;
        let key = params.key;
        if key.is_empty() {
            return Err(output::error("`key` must not be empty"));
        }
        let size = params.text.len();
        if size > MAX_UPLOAD_BYTES {
            return Err(output::error(format!(
                "the text has {size} bytes; s3_upload_text uploads at most {MAX_UPLOAD_BYTES}"
            )));
        }
        let content_type = params
            .content_type
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "text/plain; charset=utf-8".to_owned());
        let put = self
            .s3
            .client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type(&content_type)
            .body(ByteStream::from(params.text.into_bytes()))
            .send()
            .await;
        let out = match put {
            Ok(out) => out,
            Err(e) => {
                let failure = self
                    .s3
                    .classify(&e, &format!("PutObject on `{bucket}/{key}`"));
                return Err(self.fail(failure, &bucket, None).await);
            }
        };
        let value = serde_json::json!({
            "bucket": bucket,
            "key": key,
            "size": size,
            "etag": etag(out.e_tag()),
            "contentType": content_type,
        });
        let text = format!(
            "uploaded `{bucket}/{key}`: {size} bytes, etag {}",
            etag(out.e_tag()).unwrap_or_else(|| "-".into())
        );
        Ok(output::ok_json(
            &value,
            output::cap_text(&text, ctx.max_output_bytes).0,
        ))
    }
}

/// "Key does not exist", pointing at the listing that finds the right one.
fn no_such_key(bucket: &str, key: &str) -> String {
    let prefix = match key.rfind('/') {
        Some(slash) => &key[..=slash],
        None => {
            let end = key.char_indices().nth(3).map_or(key.len(), |(i, _)| i);
            &key[..end]
        }
    };
    format!(
        "object `{key}` does not exist in bucket `{bucket}`; call s3_list_objects with prefix \
         `{prefix}` to see the keys there"
    )
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn content_range_gives_the_total() {
        assert_eq!(range_total(Some("bytes 0-99/12345")), Some(12345));
        assert_eq!(range_total(Some("bytes */12345")), Some(12345));
        assert_eq!(range_total(Some("bytes 0-99/*")), None);
        assert_eq!(range_total(None), None);
    }

    #[test]
    fn text_cut_inside_a_character_keeps_whole_characters() {
        let bytes = "aé€".as_bytes();
        // Cut after the first byte of `€`.
        assert_eq!(utf8_slice(&bytes[..4], true, false), Some((0, "aé")));
        // Started inside `é`: its continuation byte is skipped.
        assert_eq!(utf8_slice(&bytes[2..], false, true), Some((1, "€")));
        // At the real end of the object a cut character means it is not text.
        assert_eq!(utf8_slice(&bytes[..4], true, true), None);
        assert_eq!(utf8_slice(b"a\0b", true, true), None);
        assert_eq!(utf8_slice(&[0xff, 0xfe, 0x00], true, true), None);
    }

    #[test]
    fn a_missing_key_points_at_its_folder() {
        let msg = no_such_key("b", "logs/2024/app.log");
        assert!(msg.contains("prefix `logs/2024/`"), "{msg}");
        assert!(no_such_key("b", "report").contains("prefix `rep`"));
    }
}
