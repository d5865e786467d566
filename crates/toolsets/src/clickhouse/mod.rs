//! The `clickhouse` link type: ClickHouse over its HTTP interface, served as six tools
//! (ch_list_databases, ch_list_tables, ch_describe_table, ch_table_stats, ch_query; ch_execute
//! with writeAccess).
//!
//! What is enforced by ClickHouse, not by inspecting SQL: every read carries the `readonly=1`
//! setting, so the server refuses INSERT, ALTER, DROP, CREATE and setting changes; every
//! statement carries `max_execution_time`; reads carry `max_result_rows` with
//! `result_overflow_mode=break`; the HTTP interface runs one statement per request. Results are
//! read line by line from `TabSeparatedWithNamesAndTypes` (the streaming format with types that
//! ClickHouse 18.16 already has) and reading stops at the row limit, so a large result is never
//! loaded whole; values are cut at 4 KiB and the text is capped.

mod http;
pub mod params;
mod rows;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::link::ClickhouseBackend;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::{Map, Value, json};

use crate::link::{BuildError, Component, LinkContext};
use crate::sql_locks::{self, Dialect};
use crate::{CallContext, ToolDef, Toolset, output, with_args};

use http::{Client, Failure, Mode, quote};
use rows::RowSet;

/// Rows a call returns when the link sets no `limits.maxRows`.
pub const DEFAULT_MAX_ROWS: usize = 100;
/// Names listed in an error that says a table or database does not exist.
const HINT_NAMES: usize = 30;

/// The tools, by their name after the `ch_` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    ListDatabases,
    ListTables,
    DescribeTable,
    TableStats,
    Query,
    Execute,
}

impl Tool {
    const ALL: [Tool; 6] = [
        Tool::ListDatabases,
        Tool::ListTables,
        Tool::DescribeTable,
        Tool::TableStats,
        Tool::Query,
        Tool::Execute,
    ];

    fn name(self) -> &'static str {
        match self {
            Tool::ListDatabases => "ch_list_databases",
            Tool::ListTables => "ch_list_tables",
            Tool::DescribeTable => "ch_describe_table",
            Tool::TableStats => "ch_table_stats",
            Tool::Query => "ch_query",
            Tool::Execute => "ch_execute",
        }
    }
}

/// The toolset of a `clickhouse` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &ClickhouseBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let client = Client::new(link.name, &block.url, &block.database, link.credentials)
        .map_err(BuildError::Invalid)?;
    let max_rows = link.max_rows();
    let what = format!(
        "ClickHouse database `{}` at {}",
        block.database, client.endpoint
    );
    let defs = Tool::ALL
        .iter()
        .map(|&tool| definition(tool, &what, max_rows))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let secrets = link
        .credentials
        .names()
        .filter(|name| *name != "username")
        .filter_map(|name| link.credentials.get(name))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Arc::new(ChToolset {
        client,
        max_rows,
        defs,
        secrets,
    }))
}

/// The link as a component of the stack topology: URL (without query or credentials), host,
/// port and database. `spec.component` overrides name, type and group.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    if let Some(block) = &link.spec.clickhouse {
        if let Ok(mut url) = reqwest::Url::parse(&block.url) {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            if let Some(host) = url.host_str() {
                endpoint.insert("host".to_owned(), host.to_owned());
            }
            if let Some(port) = url.port_or_known_default() {
                endpoint.insert("port".to_owned(), port.to_string());
            }
            endpoint.insert("url".to_owned(), url.to_string());
        }
        endpoint.insert("database".to_owned(), block.database.clone());
    }
    Component::of_link(link, "clickhouse", "database", endpoint)
}

/// The tools of one ClickHouse link over its own HTTP client.
pub struct ChToolset {
    client: Client,
    max_rows: usize,
    defs: Vec<ToolDef>,
    /// Credential values, scrubbed from every message as a second line of defence.
    secrets: Vec<String>,
}

type Object = Map<String, Value>;

impl ChToolset {
    fn page(&self, limit: Option<u32>, offset: Option<u32>) -> (usize, usize) {
        let limit = limit.map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows));
        (limit, offset.unwrap_or(0) as usize)
    }

    /// Runs a catalog query (read-only) and returns its rows as objects keyed by column.
    async fn objects(
        &self,
        sql: &str,
        max_rows: usize,
        ctx: &CallContext,
    ) -> Result<(Vec<Object>, bool), Failure> {
        let set = self
            .client
            .rows(
                sql,
                Mode::Read,
                ctx.timeout,
                max_rows,
                usize::MAX,
                &ctx.client,
            )
            .await?;
        let objects = set
            .rows
            .iter()
            .map(|row| {
                set.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.name.clone(), v.clone()))
                    .collect()
            })
            .collect();
        Ok((objects, set.truncated))
    }

    async fn list_databases(&self, p: params::ListDatabases, ctx: &CallContext) -> CallToolResult {
        let (limit, offset) = self.page(p.limit, p.offset);
        let sql = format!(
            "SELECT name, engine FROM system.databases ORDER BY name LIMIT {offset}, {}",
            limit + 1
        );
        let (mut items, _) = match self.objects(&sql, limit + 1, ctx).await {
            Ok(found) => found,
            Err(f) => return self.fail(f, ctx).await,
        };
        let more = items.len() > limit;
        items.truncate(limit);
        for db in &mut items {
            let current = db.get("name").and_then(Value::as_str) == Some(&self.client.database);
            db.insert("current".to_owned(), json!(current));
        }
        let page = page(offset, items.len(), more);
        let mut text = summary(&page, "databases");
        text.push_str("\nname\tengine\tcurrent");
        for db in &items {
            let _ = write!(text, "\n{}", tsv(db, &["name", "engine", "current"]));
        }
        text.push_str(
            "\nTools work in the database marked current unless given another `database`.",
        );
        self.finish(json!({"databases": items, "page": page}), text, ctx)
    }

    async fn list_tables(&self, p: params::ListTables, ctx: &CallContext) -> CallToolResult {
        let (limit, offset) = self.page(p.limit, p.offset);
        let database = if p.database.trim().is_empty() {
            self.client.database.clone()
        } else {
            p.database.trim().to_owned()
        };
        let sql = format!(
            "SELECT t.database AS database, t.name AS name, t.engine AS engine, \
             p.rows AS rows, p.bytes AS bytesOnDisk, p.parts AS parts \
             FROM system.tables AS t ANY LEFT JOIN (SELECT database, table AS name, \
             sum(rows) AS rows, sum(bytes_on_disk) AS bytes, count() AS parts \
             FROM system.parts WHERE active GROUP BY database, name) AS p \
             USING (database, name) \
             WHERE t.database = {} AND positionCaseInsensitive(t.name, {}) > 0 \
             ORDER BY name LIMIT {offset}, {}",
            quote(&database),
            quote(&p.name_contains),
            limit + 1
        );
        let (mut items, _) = match self.objects(&sql, limit + 1, ctx).await {
            Ok(found) => found,
            Err(f) => return self.fail(f, ctx).await,
        };
        if items.is_empty() && offset == 0 && !self.database_exists(&database, ctx).await {
            let mut message = format!("database {database} does not exist");
            self.append_databases(&mut message, ctx).await;
            return self.error(message);
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let page = page(offset, items.len(), more);
        let mut text = summary(&page, &format!("tables in {database}"));
        text.push_str("\nname\tengine\trows\tbytesOnDisk\tparts");
        for t in &items {
            let _ = write!(
                text,
                "\n{}",
                tsv(t, &["name", "engine", "rows", "bytesOnDisk", "parts"])
            );
        }
        text.push_str("\n(rows, bytes and parts are counted for MergeTree tables only)");
        self.finish(json!({"tables": items, "page": page}), text, ctx)
    }

    async fn database_exists(&self, database: &str, ctx: &CallContext) -> bool {
        let sql = format!(
            "SELECT name FROM system.databases WHERE name = {}",
            quote(database)
        );
        matches!(self.objects(&sql, 1, ctx).await, Ok((found, _)) if !found.is_empty())
    }

    /// The database and table a [`params::TableRef`] names.
    fn table_of(&self, p: &params::TableRef) -> (String, String) {
        let unquote = |s: &str| s.trim().trim_matches(['`', '"']).to_owned();
        if p.database.trim().is_empty()
            && let Some((db, table)) = p.table.split_once('.')
        {
            return (unquote(db), unquote(table));
        }
        let db = if p.database.trim().is_empty() {
            self.client.database.clone()
        } else {
            unquote(&p.database)
        };
        (db, unquote(&p.table))
    }

    /// The table's row of system.tables, or the message saying it does not exist.
    async fn find_table(
        &self,
        database: &str,
        table: &str,
        ctx: &CallContext,
    ) -> Result<Result<Object, String>, Failure> {
        let sql = format!(
            "SELECT engine, engine_full, partition_key, sorting_key, primary_key, \
             sampling_key, is_temporary FROM system.tables WHERE database = {} AND name = {}",
            quote(database),
            quote(table)
        );
        let (found, _) = self.objects(&sql, 1, ctx).await?;
        if let Some(row) = found.into_iter().next() {
            return Ok(Ok(row));
        }
        let message = if self.database_exists(database, ctx).await {
            let mut message = format!("table {database}.{table} does not exist");
            self.append_tables(&mut message, database, table, ctx).await;
            message
        } else {
            let mut message = format!("database {database} does not exist");
            self.append_databases(&mut message, ctx).await;
            message
        };
        Ok(Err(message))
    }

    async fn describe_table(&self, p: params::TableRef, ctx: &CallContext) -> CallToolResult {
        let (database, table) = self.table_of(&p);
        let info = match self.find_table(&database, &table, ctx).await {
            Ok(Ok(info)) => info,
            Ok(Err(message)) => return self.error(message),
            Err(f) => return self.fail(f, ctx).await,
        };
        let sql = format!(
            "SELECT name, type, default_kind AS defaultKind, default_expression AS \
             defaultExpression, comment, is_in_partition_key AS inPartitionKey, \
             is_in_sorting_key AS inSortingKey, is_in_primary_key AS inPrimaryKey \
             FROM system.columns WHERE database = {} AND table = {}",
            quote(&database),
            quote(&table)
        );
        let (columns, cut) = match self.objects(&sql, 10_000, ctx).await {
            Ok(found) => found,
            Err(f) => return self.fail(f, ctx).await,
        };
        let mut text = format!("{database}.{table} ({})", cell(&info, "engine_full"));
        text.push_str("\ncolumns:");
        for c in &columns {
            let _ = write!(text, "\n  {} {}", cell(c, "name"), cell(c, "type"));
            let kind = cell(c, "defaultKind");
            if !kind.is_empty() {
                let _ = write!(text, " {kind} {}", cell(c, "defaultExpression"));
            }
            let comment = cell(c, "comment");
            if !comment.is_empty() {
                let _ = write!(text, " -- {comment}");
            }
        }
        for (key, label) in [
            ("partition_key", "partition key"),
            ("sorting_key", "sorting key"),
            ("primary_key", "primary key"),
            ("sampling_key", "sampling key"),
        ] {
            let value = cell(&info, key);
            if !value.is_empty() {
                let _ = write!(text, "\n{label}: {value}");
            }
        }
        let mut value = json!({
            "database": database,
            "name": table,
            "engine": info.get("engine"),
            "engineFull": info.get("engine_full"),
            "partitionKey": info.get("partition_key"),
            "sortingKey": info.get("sorting_key"),
            "primaryKey": info.get("primary_key"),
            "samplingKey": info.get("sampling_key"),
            "columns": columns,
        });
        if cut {
            value["truncated"] = json!(true);
        }
        self.finish(value, text, ctx)
    }

    async fn table_stats(&self, p: params::TableRef, ctx: &CallContext) -> CallToolResult {
        let (database, table) = self.table_of(&p);
        let info = match self.find_table(&database, &table, ctx).await {
            Ok(Ok(info)) => info,
            Ok(Err(message)) => return self.error(message),
            Err(f) => return self.fail(f, ctx).await,
        };
        let parts = format!(
            "SELECT count() AS parts, sum(rows) AS partRows, sum(bytes_on_disk) AS bytesOnDisk, \
             sum(data_compressed_bytes) AS compressedBytes, \
             sum(data_uncompressed_bytes) AS uncompressedBytes, \
             toString(max(modification_time)) AS lastModified \
             FROM system.parts WHERE active AND database = {} AND table = {}",
            quote(&database),
            quote(&table)
        );
        let (found, _) = match self.objects(&parts, 1, ctx).await {
            Ok(found) => found,
            Err(f) => return self.fail(f, ctx).await,
        };
        let mut stats = found.into_iter().next().unwrap_or_default();
        let count = format!(
            "SELECT count() AS rows FROM {}.{}",
            ident(&database),
            ident(&table)
        );
        match self.objects(&count, 1, ctx).await {
            Ok((found, _)) => {
                if let Some(rows) = found
                    .into_iter()
                    .next()
                    .and_then(|r| r.get("rows").cloned())
                {
                    stats.insert("rows".to_owned(), rows);
                }
            }
            // A view that cannot be counted still has its engine and parts reported.
            Err(Failure::Server { message, .. }) => {
                stats.insert("rowsError".to_owned(), json!(self.scrub(message)));
            }
            Err(f) => return self.fail(f, ctx).await,
        }
        if stats.get("parts") == Some(&json!(0)) {
            stats.remove("lastModified");
        }
        let mut text = format!("{database}.{table} ({}):", cell(&info, "engine"));
        for key in [
            "rows",
            "parts",
            "partRows",
            "bytesOnDisk",
            "compressedBytes",
            "uncompressedBytes",
            "lastModified",
            "rowsError",
        ] {
            if let Some(v) = stats.get(key) {
                let _ = write!(text, "\n  {key}: {}", rows::cell_text(v));
            }
        }
        let mut value = json!({"database": database, "name": table, "engine": info.get("engine")});
        for (key, v) in stats {
            value[key] = v;
        }
        self.finish(value, text, ctx)
    }

    async fn query(&self, p: params::Query, ctx: &CallContext) -> CallToolResult {
        if p.sql.trim().is_empty() {
            return self.error("invalid argument `sql`: it is empty; pass one SQL statement");
        }
        if let Some(refusal) = sql_locks::refusal(&p.sql, Dialect::Clickhouse) {
            return self.error(refusal);
        }
        let max_rows = p
            .max_rows
            .map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows));
        match self
            .client
            .rows(
                &p.sql,
                Mode::Read,
                ctx.timeout,
                max_rows,
                ctx.max_output_bytes,
                &ctx.client,
            )
            .await
        {
            Ok(set) => self.rows_result(&set, max_rows, ctx),
            Err(f) => self.fail(f, ctx).await,
        }
    }

    async fn execute(&self, p: params::Execute, ctx: &CallContext) -> CallToolResult {
        if p.sql.trim().is_empty() {
            return self.error("invalid argument `sql`: it is empty; pass one SQL statement");
        }
        match self
            .client
            .execute(&p.sql, ctx.timeout, ctx.max_output_bytes)
            .await
        {
            Ok(body) => {
                let body = self.scrub(body);
                let mut text = "The statement ran.".to_owned();
                if !body.trim().is_empty() {
                    let _ = write!(text, "\n{}", body.trim_end());
                }
                self.finish(json!({"ok": true, "output": body}), text, ctx)
            }
            Err(f) => {
                let message = self.explain(f, ctx).await;
                self.error(format!(
                    "{message}\nClickHouse has no transactions: if the statement failed part \
                     way, check what it already applied."
                ))
            }
        }
    }

    fn rows_result(&self, set: &RowSet, max_rows: usize, ctx: &CallContext) -> CallToolResult {
        let text = rows::render(set, max_rows);
        let (text, _) = output::cap_text(&self.scrub(text), ctx.max_output_bytes);
        output::ok_json(set, text)
    }

    fn finish(&self, value: Value, text: String, ctx: &CallContext) -> CallToolResult {
        let (text, _) = output::cap_text(&self.scrub(text), ctx.max_output_bytes);
        output::ok_json(&value, text)
    }

    fn error(&self, message: impl Into<String>) -> CallToolResult {
        output::error(self.scrub(message.into()))
    }

    fn scrub(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }

    /// The error result for a failure.
    async fn fail(&self, failure: Failure, ctx: &CallContext) -> CallToolResult {
        let message = self.explain(failure, ctx).await;
        self.error(message)
    }

    /// What went wrong, with what a model can do about it.
    async fn explain(&self, failure: Failure, ctx: &CallContext) -> String {
        let c = &self.client;
        match failure {
            Failure::Timeout => format!(
                "ClickHouse at {} did not answer within {} s (the call's time limit); narrow \
                 the query (WHERE on the sorting key, LIMIT, sampling) or ask for less",
                c.endpoint,
                ctx.timeout.as_secs_f32()
            ),
            Failure::Unreachable(what) => format!(
                "cannot reach ClickHouse at {} for link `{}`: {what}. Check that the server \
                 runs, that the link's url is right, and that the network allows the \
                 connection",
                c.endpoint, c.link
            ),
            Failure::Server { code, message } => match code {
                Some(192..=194) | Some(516) => format!(
                    "ClickHouse at {} refused the credentials of link `{}` (user `{}`): \
                     {message}. Check the link's `username` and `password` credentials",
                    c.endpoint,
                    c.link,
                    c.user()
                ),
                Some(164) => format!(
                    "ClickHouse refused the statement: this tool is read-only (readonly=1) and \
                     nothing was changed ({message}). Changes go through ch_execute, which \
                     the link offers only with writeAccess"
                ),
                Some(159) => format!(
                    "the statement ran longer than its time limit and ClickHouse stopped it \
                     ({message}); narrow the query (WHERE on the sorting key, LIMIT, sampling)"
                ),
                Some(62) => format!("syntax error: {message}"),
                Some(60) => {
                    let mut text = message.clone();
                    if let Some((db, table)) = missing_table(&message) {
                        let db = db.unwrap_or_else(|| c.database.clone());
                        self.append_tables(&mut text, &db, &table, ctx).await;
                    }
                    text
                }
                Some(81) => {
                    let mut text = message;
                    self.append_databases(&mut text, ctx).await;
                    text
                }
                Some(code) => format!("ClickHouse error {code}: {message}"),
                None => format!("ClickHouse error: {message}"),
            },
        }
    }

    /// Adds `; tables in db are: a, b, ...`, those whose name contains `near` first.
    async fn append_tables(&self, message: &mut String, db: &str, near: &str, ctx: &CallContext) {
        let sql = format!(
            "SELECT name FROM system.tables WHERE database = {} \
             ORDER BY positionCaseInsensitive(name, {}) = 0, name LIMIT {}",
            quote(db),
            quote(near),
            HINT_NAMES + 1
        );
        if let Ok((found, _)) = self.objects(&sql, HINT_NAMES + 1, ctx).await {
            let names: Vec<String> = found.iter().map(|t| cell(t, "name")).collect();
            if names.is_empty() {
                let _ = write!(message, "; database {db} has no tables");
            } else {
                let _ = write!(message, "; tables in {db} are: {}", list(&names));
            }
        }
    }

    /// Adds `; databases are: ...`.
    async fn append_databases(&self, message: &mut String, ctx: &CallContext) {
        let sql = format!(
            "SELECT name FROM system.databases ORDER BY name LIMIT {}",
            HINT_NAMES + 1
        );
        if let Ok((found, _)) = self.objects(&sql, HINT_NAMES + 1, ctx).await {
            let names: Vec<String> = found.iter().map(|t| cell(t, "name")).collect();
            let _ = write!(message, "; databases are: {}", list(&names));
        }
    }
}

impl Toolset for ChToolset {
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
            match tool {
                Tool::ListDatabases => with_args(args, |p| self.list_databases(p, ctx)).await,
                Tool::ListTables => with_args(args, |p| self.list_tables(p, ctx)).await,
                Tool::DescribeTable => with_args(args, |p| self.describe_table(p, ctx)).await,
                Tool::TableStats => with_args(args, |p| self.table_stats(p, ctx)).await,
                Tool::Query => with_args(args, |p| self.query(p, ctx)).await,
                Tool::Execute => with_args(args, |p| self.execute(p, ctx)).await,
            }
        })
    }
}

/// The tool's definition, described for `what` (the database the link reaches).
fn definition(tool: Tool, what: &str, max_rows: usize) -> Result<ToolDef, crate::ToolDefError> {
    let name = tool.name();
    match tool {
        Tool::ListDatabases => ToolDef::read::<params::ListDatabases>(
            name,
            format!(
                "List the databases on the ClickHouse server of the {what}, with their engine; \
                 the link's own is marked current. Paginated with `limit` and `offset`."
            ),
        ),
        Tool::ListTables => ToolDef::read::<params::ListTables>(
            name,
            format!(
                "List the tables of a database (default: the link's) on the {what}: name, \
                 engine, and for MergeTree tables rows, bytes on disk and active parts. Filter \
                 with `nameContains`; paginated with `limit` and `offset` (at most {max_rows} a \
                 page)."
            ),
        ),
        Tool::DescribeTable => ToolDef::read::<params::TableRef>(
            name,
            format!(
                "Describe one table of the {what}: engine, columns (type, default, comment), \
                 partition, sorting, primary and sampling keys. Use it before writing a query."
            ),
        ),
        Tool::TableStats => ToolDef::read::<params::TableRef>(
            name,
            format!(
                "Statistics of one table of the {what}: row count, active parts, bytes on \
                 disk, compressed and uncompressed bytes, and when a part last changed."
            ),
        ),
        Tool::Query => ToolDef::read::<params::Query>(
            name,
            format!(
                "Run one read-only ClickHouse SQL statement (SELECT, WITH, SHOW, DESCRIBE, \
                 EXISTS) on the {what} and get rows as JSON (columns with types; integers and \
                 floats as numbers, other values as text). It runs with readonly=1, so \
                 ClickHouse refuses any change. At most {max_rows} rows; values cut at 4 KiB; \
                 a result says when it was truncated: then narrow it with WHERE, LIMIT or an \
                 aggregate. Do not add a FORMAT clause."
            ),
        ),
        Tool::Execute => ToolDef::write::<params::Execute>(
            name,
            format!(
                "Run one ClickHouse SQL statement that changes the {what}: INSERT INTO ... \
                 VALUES, CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE. ClickHouse has no \
                 transactions: a statement is applied as it runs. One statement per call."
            ),
        ),
    }
}

/// `Table db.t doesn't exist.` → (Some(db), t); `Table t doesn't exist.` → (None, t).
fn missing_table(message: &str) -> Option<(Option<String>, String)> {
    let rest = message.strip_prefix("Table ")?;
    let name = rest.split(" doesn't exist").next()?.trim();
    let name = name.trim_matches('`');
    Some(match name.split_once('.') {
        Some((db, table)) => (Some(db.to_owned()), table.to_owned()),
        None => (None, name.to_owned()),
    })
}

/// A backquoted ClickHouse identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A list of names, with `and more` when the hint query found more than it shows.
fn list(names: &[String]) -> String {
    if names.len() > HINT_NAMES {
        format!(
            "{} (and more; the list tools show them all)",
            names[..HINT_NAMES].join(", ")
        )
    } else {
        names.join(", ")
    }
}

fn cell(object: &Object, key: &str) -> String {
    match object.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(v) => rows::cell_text(v),
    }
}

fn tsv(object: &Object, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| cell(object, k))
        .collect::<Vec<_>>()
        .join("\t")
}

fn page(offset: usize, count: usize, more: bool) -> Value {
    let mut page = json!({"offset": offset, "count": count, "truncated": more});
    if more {
        page["nextOffset"] = json!(offset + count);
    }
    page
}

fn summary(page: &Value, what: &str) -> String {
    let mut out = format!("{} {what} (offset {})", page["count"], page["offset"]);
    if let Some(next) = page.get("nextOffset") {
        let _ = write!(
            out,
            "; truncated: more exist, pass offset {next} for the next page"
        );
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests;
