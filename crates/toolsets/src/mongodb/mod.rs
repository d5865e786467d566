//! The `mongodb` link type: one MongoDB database through the official driver, served as five
//! tools (mongo_list_collections, mongo_find, mongo_aggregate, mongo_count; mongo_insert with
//! writeAccess).
//!
//! Reads: a pipeline holding a `$out` or `$merge` stage (at any depth) is refused before
//! anything is sent, so mongo_aggregate cannot write; read tools route with the
//! `secondaryPreferred` read preference and carry `maxTimeMS` from the call's timeout.
//! Bounded: at most the link's row limit of documents is read, the cursor is closed (killed on
//! the server) without being drained, string values are cut at 4 KiB, and the output is
//! capped. Documents are returned as relaxed Extended JSON.
//!
//! The client is built on the first call (building it does not connect either): an unreachable
//! server never blocks registration, and a call says which host:port to check.

pub mod params;

use crate::client::Ticker;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ::mongodb::bson::{Bson, Document};
use ::mongodb::error::{Error as MongoError, ErrorKind};
use ::mongodb::options::{
    ClientOptions, Credential, DatabaseOptions, ReadPreference, SelectionCriteria, ServerAddress,
    Tls, TlsOptions,
};
use ::mongodb::{Client, Cursor};
use futures::TryStreamExt as _;
use futures::future::BoxFuture;
use linkmcp_api::link::MongodbBackend;
use rmcp::model::{CallToolResult, JsonObject};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::link::{BuildError, Component, LinkContext};
use crate::{CallContext, ToolDef, Toolset, output, parse_args};

/// Documents a call returns when the link sets no `limits.maxRows`.
pub const DEFAULT_MAX_ROWS: usize = 100;
/// The longest string value kept in a result; longer ones are cut and marked.
pub const MAX_FIELD_BYTES: usize = 4096;
/// How long the driver looks for a server before a call fails, when the link sets no timeout.
const SELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Collection names listed in an error that says a collection does not exist.
const HINT_NAMES: usize = 30;

/// The tools, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    ListCollections,
    Find,
    Aggregate,
    Count,
    Insert,
}

impl Tool {
    const ALL: [Tool; 5] = [
        Tool::ListCollections,
        Tool::Find,
        Tool::Aggregate,
        Tool::Count,
        Tool::Insert,
    ];

    fn name(self) -> &'static str {
        match self {
            Tool::ListCollections => "mongo_list_collections",
            Tool::Find => "mongo_find",
            Tool::Aggregate => "mongo_aggregate",
            Tool::Count => "mongo_count",
            Tool::Insert => "mongo_insert",
        }
    }
}

/// The toolset of a `mongodb` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &MongodbBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let port = u16::try_from(block.port)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            BuildError::Invalid(format!("mongodb.port {} is not a TCP port", block.port))
        })?;
    let max_rows = link.max_rows();
    let selection_timeout = link
        .spec
        .limits
        .timeout_seconds
        .and_then(|s| u64::try_from(s).ok())
        .filter(|&s| s > 0)
        .map_or(SELECTION_TIMEOUT, |s| {
            Duration::from_secs(s).min(SELECTION_TIMEOUT)
        });
    let auth_source = block
        .auth_source
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "admin".to_owned());
    let mut options = ClientOptions::default();
    options.hosts = vec![ServerAddress::Tcp {
        host: block.host.clone(),
        port: Some(port),
    }];
    options.app_name = Some("linkmcp".to_owned());
    options.connect_timeout = Some(selection_timeout);
    options.server_selection_timeout = Some(selection_timeout);
    match &block.replica_set {
        Some(set) if !set.is_empty() => options.repl_set_name = Some(set.clone()),
        _ => options.direct_connection = Some(true),
    }
    if block.tls {
        options.tls = Some(Tls::Enabled(TlsOptions::default()));
    }
    let user = link.credentials.get("username").map(str::to_owned);
    if let Some(username) = &user {
        let mut credential = Credential::default();
        credential.username = Some(username.clone());
        credential.password = link.credentials.get("password").map(str::to_owned);
        credential.source = Some(auth_source.clone());
        options.credential = Some(credential);
    }
    let endpoint = format!("{}:{port}", block.host);
    let what = format!("MongoDB database `{}` at {endpoint}", block.database);
    let defs = Tool::ALL
        .iter()
        .map(|&tool| definition(tool, &what, max_rows))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    Ok(Arc::new(MongoToolset {
        options,
        client: OnceCell::new(),
        link: link.name.to_owned(),
        endpoint,
        database: block.database.clone(),
        user,
        auth_source,
        max_rows,
        defs,
        secrets: link
            .credentials
            .names()
            .filter(|name| *name != "username")
            .filter_map(|name| link.credentials.get(name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect(),
    }))
}

/// The link as a component of the stack topology: host, port, database, replica set and
/// whether it uses TLS. `spec.component` overrides name, type and group.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.mongodb {
        endpoint.insert("host".to_owned(), block.host.clone());
        endpoint.insert("port".to_owned(), block.port.to_string());
        endpoint.insert("database".to_owned(), block.database.clone());
        if let Some(set) = block.replica_set.as_ref().filter(|s| !s.is_empty()) {
            endpoint.insert("replicaSet".to_owned(), set.clone());
        }
        endpoint.insert("tls".to_owned(), block.tls.to_string());
    }
    Component::of_link(link, "mongodb", "database", endpoint)
}

/// The tools of one MongoDB link over its own (lazily built) client.
pub struct MongoToolset {
    options: ClientOptions,
    client: OnceCell<Client>,
    link: String,
    endpoint: String,
    database: String,
    user: Option<String>,
    auth_source: String,
    max_rows: usize,
    defs: Vec<ToolDef>,
    /// Credential values, scrubbed from every message as a second line of defence.
    secrets: Vec<String>,
}

/// Which bound stopped a result early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum Cut {
    /// More documents exist than the limit allows.
    MaxRows,
    /// The documents would exceed the call's output limit.
    OutputBytes,
}

/// Documents read from a cursor within the bounds.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Documents {
    documents: Vec<Value>,
    count: usize,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_by: Option<Cut>,
    /// How many string values longer than [`MAX_FIELD_BYTES`] were cut.
    #[serde(skip_serializing_if = "is_zero")]
    cut_values: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl MongoToolset {
    async fn db(&self) -> Result<::mongodb::Database, String> {
        let client = self
            .client
            .get_or_try_init(|| async { Client::with_options(self.options.clone()) })
            .await
            .map_err(|e| self.explain(&e, Duration::ZERO))?;
        // Reads go to a secondary where there is one; writes always go to the primary.
        let mut options = DatabaseOptions::default();
        options.selection_criteria = Some(SelectionCriteria::ReadPreference(
            ReadPreference::SecondaryPreferred { options: None },
        ));
        Ok(client.database_with_options(&self.database, options))
    }

    fn limit(&self, requested: Option<u32>) -> usize {
        requested.map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows))
    }

    async fn list_collections(
        &self,
        p: params::ListCollections,
        ctx: &CallContext,
    ) -> Result<CallToolResult, String> {
        let db = self.db().await?;
        let mut names = db
            .list_collection_names()
            .await
            .map_err(|e| self.explain(&e, ctx.timeout))?;
        let needle = p.name_contains.to_lowercase();
        names.retain(|n| n.to_lowercase().contains(&needle));
        names.sort();
        let total = names.len();
        let limit = self.limit(p.limit);
        let offset = p.offset.unwrap_or(0) as usize;
        let page: Vec<String> = names.into_iter().skip(offset).take(limit).collect();
        let end = offset + page.len();
        let more = end < total;
        let mut text = format!(
            "{} of {total} collections in {} (offset {offset})",
            page.len(),
            self.database
        );
        if more {
            let _ = write!(
                text,
                "; truncated: more exist, pass offset {end} for the next page"
            );
        }
        text.push('.');
        for name in &page {
            let _ = write!(text, "\n{name}");
        }
        let mut value = json!({
            "database": self.database,
            "collections": page,
            "page": {"offset": offset, "count": end - offset, "total": total, "truncated": more},
        });
        if more {
            value["page"]["nextOffset"] = json!(end);
        }
        Ok(self.finish(&value, text, ctx))
    }

    async fn find(&self, p: params::Find, ctx: &CallContext) -> Result<CallToolResult, String> {
        let collection = checked_collection(&p.collection)?;
        let filter = to_document("filter", p.filter)?;
        let projection = to_document("projection", p.projection)?;
        let sort = to_document("sort", p.sort)?;
        let limit = self.limit(p.limit);
        let db = self.db().await?;
        let coll = db.collection::<Document>(collection);
        let mut find = coll
            .find(filter)
            .limit(limit as i64 + 1)
            .batch_size((limit as u32 + 1).min(1000))
            .max_time(max_time(ctx.timeout));
        if !projection.is_empty() {
            find = find.projection(projection);
        }
        if !sort.is_empty() {
            find = find.sort(sort);
        }
        if let Some(skip) = p.skip.filter(|&s| s > 0) {
            find = find.skip(u64::from(skip));
        }
        let cursor = find.await.map_err(|e| self.explain(&e, ctx.timeout))?;
        let docs = self.collect(cursor, limit, ctx).await?;
        self.documents_result(collection, docs, limit, ctx).await
    }

    async fn aggregate(
        &self,
        p: params::Aggregate,
        ctx: &CallContext,
    ) -> Result<CallToolResult, String> {
        let collection = checked_collection(&p.collection)?;
        if let Some(stage) = p
            .pipeline
            .iter()
            .find_map(|s| writing_stage(&Value::Object(s.clone())))
        {
            return Err(format!(
                "the pipeline has a `{stage}` stage, which writes its results to a collection; \
                 mongo_aggregate only reads, so the pipeline was not sent and nothing was \
                 changed. Remove the `{stage}` stage to get the results back instead"
            ));
        }
        let limit = self.limit(p.limit);
        let mut pipeline = Vec::with_capacity(p.pipeline.len() + 1);
        for (i, stage) in p.pipeline.into_iter().enumerate() {
            pipeline.push(to_document(&format!("pipeline[{i}]"), stage)?);
        }
        // The server stops producing documents one past the limit (enough to know there are
        // more).
        let mut stage = Document::new();
        stage.insert("$limit", limit as i64 + 1);
        pipeline.push(stage);
        let db = self.db().await?;
        if let Some(message) = self.missing_collection(&db, collection).await {
            return Err(message);
        }
        let cursor = db
            .collection::<Document>(collection)
            .aggregate(pipeline)
            .batch_size((limit as u32 + 1).min(1000))
            .max_time(max_time(ctx.timeout))
            .await
            .map_err(|e| self.explain(&e, ctx.timeout))?;
        let docs = self.collect(cursor, limit, ctx).await?;
        self.documents_result(collection, docs, limit, ctx).await
    }

    async fn count(&self, p: params::Count, ctx: &CallContext) -> Result<CallToolResult, String> {
        let collection = checked_collection(&p.collection)?;
        let filter = to_document("filter", p.filter)?;
        let db = self.db().await?;
        // Checked first: counting a missing collection is not an error for MongoDB (and some
        // wire-compatible servers create it).
        if let Some(message) = self.missing_collection(&db, collection).await {
            return Err(message);
        }
        let n = db
            .collection::<Document>(collection)
            .count_documents(filter)
            .max_time(max_time(ctx.timeout))
            .await
            .map_err(|e| self.explain(&e, ctx.timeout))?;
        let text = format!("{n} document(s) in {collection} match the filter.");
        Ok(self.finish(&json!({"collection": collection, "count": n}), text, ctx))
    }

    async fn insert(&self, p: params::Insert, ctx: &CallContext) -> Result<CallToolResult, String> {
        let collection = checked_collection(&p.collection)?;
        if p.documents.is_empty() {
            return Err(
                "invalid argument `documents`: it is empty; pass at least one document".to_owned(),
            );
        }
        let mut documents = Vec::with_capacity(p.documents.len());
        for (i, doc) in p.documents.into_iter().enumerate() {
            documents.push(to_document(&format!("documents[{i}]"), doc)?);
        }
        let db = self.db().await?;
        let result = db
            .collection::<Document>(collection)
            .insert_many(documents)
            .await
            .map_err(|e| self.explain(&e, ctx.timeout))?;
        let mut ids: Vec<(usize, Bson)> = result.inserted_ids.into_iter().collect();
        ids.sort_by_key(|(i, _)| *i);
        let ids: Vec<Value> = ids
            .into_iter()
            .map(|(_, id)| id.into_relaxed_extjson())
            .collect();
        let mut text = format!("Inserted {} document(s) into {collection}; ids:", ids.len());
        for id in &ids {
            let _ = write!(text, "\n{id}");
        }
        Ok(self.finish(
            &json!({"collection": collection, "insertedCount": ids.len(), "insertedIds": ids}),
            text,
            ctx,
        ))
    }

    /// Reads at most `limit` documents (and one more to know whether more exist), never more
    /// than the output limit; the cursor is dropped (and killed on the server) undrained.
    async fn collect(
        &self,
        mut cursor: Cursor<Document>,
        limit: usize,
        ctx: &CallContext,
    ) -> Result<Documents, String> {
        let mut docs = Documents::default();
        let mut bytes = 0usize;
        let mut ticker = Ticker::new(&ctx.client, "documents read");
        loop {
            ticker.tick(docs.documents.len() as u64, None).await;
            let next = cursor
                .try_next()
                .await
                .map_err(|e| self.explain(&e, ctx.timeout))?;
            let Some(doc) = next else { break };
            if docs.documents.len() >= limit {
                docs.truncated = true;
                docs.truncated_by = Some(Cut::MaxRows);
                break;
            }
            let mut value = Bson::Document(doc).into_relaxed_extjson();
            docs.cut_values += cut_strings(&mut value);
            let size = value.to_string().len() + 1;
            if bytes + size > ctx.max_output_bytes && !docs.documents.is_empty() {
                docs.truncated = true;
                docs.truncated_by = Some(Cut::OutputBytes);
                break;
            }
            bytes += size;
            docs.documents.push(value);
        }
        docs.count = docs.documents.len();
        ticker.finish(docs.count as u64, None).await;
        Ok(docs)
    }

    async fn documents_result(
        &self,
        collection: &str,
        docs: Documents,
        limit: usize,
        ctx: &CallContext,
    ) -> Result<CallToolResult, String> {
        if docs.count == 0 {
            let db = self.db().await?;
            if let Some(message) = self.missing_collection(&db, collection).await {
                return Err(message);
            }
        }
        let mut text = format!("{} document(s) from {collection}", docs.count);
        match docs.truncated_by {
            Some(Cut::MaxRows) => {
                let _ = write!(
                    text,
                    " (truncated at the limit of {limit}; more exist: narrow the filter, \
                     project fewer fields, or page with `skip`)"
                );
            }
            Some(Cut::OutputBytes) => text.push_str(
                " (truncated: the output limit was reached; project fewer fields or \
                 lower `limit`)",
            ),
            None => {}
        }
        if docs.cut_values > 0 {
            let _ = write!(
                text,
                "; {} string value(s) longer than {MAX_FIELD_BYTES} bytes were cut",
                docs.cut_values
            );
        }
        for doc in &docs.documents {
            let _ = write!(text, "\n{doc}");
        }
        Ok(self.finish(&docs, text, ctx))
    }

    /// The message for a collection that does not exist (listing those that do), or `None`.
    async fn missing_collection(
        &self,
        db: &::mongodb::Database,
        collection: &str,
    ) -> Option<String> {
        let mut names = db.list_collection_names().await.ok()?;
        if names.iter().any(|n| n == collection) {
            return None;
        }
        names.sort();
        let needle = collection.to_lowercase();
        names.sort_by_key(|n| !n.to_lowercase().contains(&needle));
        let mut message = format!(
            "collection {collection} does not exist in database {}",
            self.database
        );
        if names.is_empty() {
            message.push_str("; the database has no collections");
        } else {
            let more = names.len() > HINT_NAMES;
            names.truncate(HINT_NAMES);
            let _ = write!(message, "; collections are: {}", names.join(", "));
            if more {
                message.push_str(" (and more; mongo_list_collections shows them all)");
            }
        }
        Some(message)
    }

    fn finish<T: Serialize + ?Sized>(
        &self,
        value: &T,
        text: String,
        ctx: &CallContext,
    ) -> CallToolResult {
        let (text, _) = output::cap_text(&self.scrub(text), ctx.max_output_bytes);
        output::ok_json(value, text)
    }

    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }

    /// What went wrong, with what a model can do about it; never a credential.
    fn explain(&self, err: &MongoError, timeout: Duration) -> String {
        let message = match err.kind.as_ref() {
            ErrorKind::Authentication { .. } => format!(
                "MongoDB at {} refused the credentials of link `{}` (user `{}`, authSource \
                 `{}`): check the link's `username` and `password` credentials and the \
                 user's authSource",
                self.endpoint,
                self.link,
                self.user.as_deref().unwrap_or(""),
                self.auth_source
            ),
            ErrorKind::ServerSelection { .. } => format!(
                "cannot reach MongoDB at {} for link `{}`: no usable server answered. Check \
                 that the server runs, the link's host, port, replicaSet and tls settings, and \
                 that the network allows the connection",
                self.endpoint, self.link
            ),
            ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => format!(
                "the connection to MongoDB at {} for link `{}` failed; check that the server \
                 runs and the network allows the connection",
                self.endpoint, self.link
            ),
            ErrorKind::Command(c) if c.code == 50 => format!(
                "the operation ran longer than its time limit ({} s) and MongoDB stopped it; \
                 narrow the filter (use indexed fields) or lower `limit`",
                timeout.as_secs_f32()
            ),
            ErrorKind::Command(c) if c.code == 13 || c.code == 18 => format!(
                "MongoDB refused the operation for link `{}` (user `{}`): {}. Check the \
                 credentials and the roles granted to the user",
                self.link,
                self.user.as_deref().unwrap_or(""),
                c.message
            ),
            ErrorKind::Command(c) => {
                format!("MongoDB error {} ({}): {}", c.code, c.code_name, c.message)
            }
            ErrorKind::Write(::mongodb::error::WriteFailure::WriteError(w)) => {
                format!("MongoDB refused the write (code {}): {}", w.code, w.message)
            }
            ErrorKind::InsertMany(e) => {
                let mut text = "MongoDB refused part of the insert".to_owned();
                if let Some(errors) = &e.write_errors {
                    for w in errors.iter().take(5) {
                        let _ = write!(
                            text,
                            "; document {}: {} (code {})",
                            w.index, w.message, w.code
                        );
                    }
                }
                text.push_str(
                    ". Documents before the first failing one were inserted (ordered insert)",
                );
                text
            }
            ErrorKind::InvalidArgument { message, .. } => format!("invalid argument: {message}"),
            _ => format!("MongoDB error: {err}"),
        };
        self.scrub(message)
    }
}

impl Toolset for MongoToolset {
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
            let Some(tool) = Tool::ALL.into_iter().find(|t| t.name() == name) else {
                return output::error(format!("tool `{name}` is not served by this link"));
            };
            let result = match tool {
                Tool::ListCollections => match parse_args(args) {
                    Ok(p) => self.list_collections(p, ctx).await,
                    Err(e) => return e,
                },
                Tool::Find => match parse_args(args) {
                    Ok(p) => self.find(p, ctx).await,
                    Err(e) => return e,
                },
                Tool::Aggregate => match parse_args(args) {
                    Ok(p) => self.aggregate(p, ctx).await,
                    Err(e) => return e,
                },
                Tool::Count => match parse_args(args) {
                    Ok(p) => self.count(p, ctx).await,
                    Err(e) => return e,
                },
                Tool::Insert => match parse_args(args) {
                    Ok(p) => self.insert(p, ctx).await,
                    Err(e) => return e,
                },
            };
            result.unwrap_or_else(|message| output::error(self.scrub(message)))
        })
    }
}

/// The tool's definition, described for `what` (the database the link reaches).
fn definition(tool: Tool, what: &str, max_rows: usize) -> Result<ToolDef, crate::ToolDefError> {
    let name = tool.name();
    match tool {
        Tool::ListCollections => ToolDef::read::<params::ListCollections>(
            name,
            format!(
                "List the collections of the {what}, sorted by name. Filter with \
                 `nameContains`; paginated with `limit` and `offset` (at most {max_rows} a page)."
            ),
        ),
        Tool::Find => ToolDef::read::<params::Find>(
            name,
            format!(
                "Find documents in a collection of the {what} with a MongoDB query filter, \
                 optional projection, sort, limit and skip. Documents come back as relaxed \
                 Extended JSON; at most {max_rows} per call, strings cut at 4 KiB; the result \
                 says when it was truncated."
            ),
        ),
        Tool::Aggregate => ToolDef::read::<params::Aggregate>(
            name,
            format!(
                "Run a read-only aggregation pipeline on a collection of the {what} \
                 ($match, $group, $sort, $project, $unwind, $lookup, ...). Pipelines with \
                 $out or $merge are refused without being sent. At most {max_rows} result \
                 documents, as relaxed Extended JSON."
            ),
        ),
        Tool::Count => ToolDef::read::<params::Count>(
            name,
            format!("Count the documents of a collection of the {what} that match a filter."),
        ),
        Tool::Insert => ToolDef::write::<params::Insert>(
            name,
            format!(
                "Insert one or more documents (Extended JSON) into a collection of the {what}; \
                 returns the inserted ids. Inserts in order and stops at the first failure."
            ),
        )
        .map(|def| def.destructive(false)),
    }
}

/// `maxTimeMS` for a call: a little under its timeout, so MongoDB's own message comes first.
fn max_time(timeout: Duration) -> Duration {
    let margin = (timeout / 10).min(Duration::from_secs(2));
    timeout.saturating_sub(margin).max(Duration::from_millis(1))
}

/// A collection name MongoDB accepts, or the message saying why not.
fn checked_collection(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        return Err("invalid argument `collection`: it is empty; pass a collection name".into());
    }
    if name.contains('\0') || name.starts_with("system.") || name.contains('$') {
        return Err(format!(
            "invalid argument `collection`: `{name}` is not a collection these tools serve \
             (no `$`, NUL or `system.` prefix)"
        ));
    }
    Ok(name)
}

/// An Extended JSON object as a BSON document, or the message naming the argument.
fn to_document(arg: &str, object: Map<String, Value>) -> Result<Document, String> {
    match Bson::try_from(Value::Object(object)) {
        Ok(Bson::Document(doc)) => Ok(doc),
        Ok(other) => Err(format!(
            "invalid argument `{arg}`: it is Extended JSON for a {:?}, not a document",
            other.element_type()
        )),
        Err(e) => Err(format!(
            "invalid argument `{arg}`: not valid Extended JSON: {e}"
        )),
    }
}

/// The first `$out` or `$merge` stage anywhere in a pipeline stage (sub-pipelines of
/// `$lookup`, `$facet` and `$unionWith` included).
fn writing_stage(value: &Value) -> Option<&'static str> {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match key.as_str() {
                    "$out" => return Some("$out"),
                    "$merge" => return Some("$merge"),
                    _ => {}
                }
                if let Some(stage) = writing_stage(inner) {
                    return Some(stage);
                }
            }
            None
        }
        Value::Array(items) => items.iter().find_map(writing_stage),
        _ => None,
    }
}

/// Cuts every string longer than [`MAX_FIELD_BYTES`] in place; returns how many were cut.
fn cut_strings(value: &mut Value) -> usize {
    match value {
        Value::String(s) if s.len() > MAX_FIELD_BYTES => {
            let total = s.len();
            let mut end = MAX_FIELD_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            let _ = write!(s, "…[truncated: {end} of {total} bytes]");
            1
        }
        Value::Array(items) => items.iter_mut().map(cut_strings).sum(),
        Value::Object(map) => map.values_mut().map(cut_strings).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
