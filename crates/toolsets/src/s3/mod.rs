//! S3 and S3-compatible stores (SeaweedFS, MinIO) as tools: list buckets and objects, read an
//! object's metadata and text, count a bucket, and, with writeAccess, upload a text object.
//!
//! Read tools only send requests that read (ListBuckets, HeadBucket, ListObjectsV2,
//! HeadObject, GetObject); only `s3_upload_text` sends PutObject. A link with `bucket` confines
//! every tool to that bucket. A custom `endpoint` with `pathStyle` serves SeaweedFS and MinIO.
//!
//! Every call is bounded: at most `limits.maxRows` objects or buckets (default 100), object
//! text fetched with a ranged GET so a large object is never downloaded whole, bucket counts
//! over a bounded number of listing pages, and the answer within the call's output cap; the
//! result says what was cut and how to continue.
//!
//! The client is built with the toolset from explicit settings and a static credentials
//! provider and connects on the first call, so an unreachable store never blocks registration:
//! the tools are listed and a call says what to check.

mod client;
mod tools;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::S3Backend;
use rmcp::model::{CallToolResult, JsonObject};

use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, ToolDefError, Toolset, output};

use client::S3;
use tools::{
    BucketStatsParams, GetObjectParams, ListBucketsParams, ListObjectsParams, ReadTextParams,
    UploadTextParams,
};

/// The toolset of one S3 link.
pub struct S3Toolset {
    defs: Vec<ToolDef>,
    s3: S3,
    /// `spec.s3.bucket`: the only bucket the tools may use.
    bucket: Option<String>,
    /// The most objects or buckets one call returns.
    max_rows: usize,
}

/// The toolset of an S3 link. Builds the client without connecting.
pub fn toolset(link: &LinkContext<'_>, block: &S3Backend) -> Result<Arc<dyn Toolset>, BuildError> {
    let timeout = link.timeout();
    let max_rows = link.max_rows();
    let bucket = block.bucket.clone().filter(|b| !b.is_empty());
    Ok(Arc::new(S3Toolset {
        defs: tool_defs(bucket.as_deref())
            .map_err(|e| BuildError::Invalid(format!("s3 tools: {e}")))?,
        s3: S3::new(link, block, timeout)?,
        bucket,
        max_rows,
    }))
}

/// The link as a component of the stack topology: where the store is, never a credential.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.s3 {
        let url = block
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", block.region));
        endpoint.insert("url".to_owned(), strip_userinfo(&url));
        endpoint.insert("region".to_owned(), block.region.clone());
        endpoint.insert("pathStyle".to_owned(), block.path_style.to_string());
        if let Some(bucket) = &block.bucket {
            endpoint.insert("bucket".to_owned(), bucket.clone());
        }
    }
    Component::of_link(link, "s3", "object-store", endpoint)
}

/// `url` without a `user:password@` part.
fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn tool_defs(bucket: Option<&str>) -> Result<Vec<ToolDef>, ToolDefError> {
    let scope = match bucket {
        Some(bucket) => format!(
            " This link only serves bucket `{bucket}`; `bucket` may be omitted and any other \
             bucket is refused."
        ),
        None => " `bucket` is required; s3_list_buckets lists them.".to_owned(),
    };
    Ok(vec![
        ToolDef::read::<ListBucketsParams>(
            "s3_list_buckets",
            "List the buckets the link can use, with their creation dates. Start here to find \
             a bucket name for the other s3 tools.",
        )?,
        ToolDef::read::<ListObjectsParams>(
            "s3_list_objects",
            format!(
                "List objects of a bucket (key, size, etag, lastModified). Narrow with `prefix` \
                 (e.g. `logs/2024/`); with `delimiter` `/` the keys below the next `/` are \
                 grouped into `commonPrefixes` (folders). A page holds at most the link's row \
                 limit; pass `continuation_token` (or `start_after`) from the result to get \
                 the next page.{scope}"
            ),
        )?,
        ToolDef::read::<GetObjectParams>(
            "s3_get_object",
            format!(
                "An object's metadata (size, etag, lastModified, contentType, user metadata) \
                 and a preview of its first bytes, as text when they are UTF-8 and as base64 \
                 otherwise. Use s3_read_text to read more of a text object.{scope}"
            ),
        )?,
        ToolDef::read::<ReadTextParams>(
            "s3_read_text",
            format!(
                "Read a text object (UTF-8: logs, CSV, JSON, config). Only the requested byte \
                 range is downloaded; long objects are cut at the output limit and the result \
                 says which `offset` continues.{scope}"
            ),
        )?,
        ToolDef::read::<BucketStatsParams>(
            "s3_bucket_stats",
            format!(
                "Count the objects of a bucket (or of a `prefix`) and their total size, plus \
                 the largest and the most recently modified object. Large buckets are counted \
                 up to `max_pages` listing pages of 1000 objects; the result says when the \
                 figures are partial.{scope}"
            ),
        )?,
        ToolDef::write::<UploadTextParams>(
            "s3_upload_text",
            format!(
                "Upload text as an object, replacing any object with the same key. Returns \
                 the new object's size and etag.{scope}"
            ),
        )?
        .idempotent(true),
    ])
}

impl Toolset for S3Toolset {
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
                "s3_list_buckets" => self.list_buckets(args, ctx).await,
                "s3_list_objects" => self.list_objects(args, ctx).await,
                "s3_get_object" => self.get_object(args, ctx).await,
                "s3_read_text" => self.read_text(args, ctx).await,
                "s3_bucket_stats" => self.bucket_stats(args, ctx).await,
                "s3_upload_text" => self.upload_text(args, ctx).await,
                other => Err(output::error(format!("tool `{other}` is not an s3 tool"))),
            };
            result.unwrap_or_else(|error| error)
        })
    }
}
