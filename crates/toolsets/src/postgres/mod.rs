//! The `postgres` and `cnpg` link types: PostgreSQL, reached directly or as a CloudNativePG
//! cluster, served as the same six tools (list_databases, list_tables, describe_table,
//! table_stats, query; execute with writeAccess) under the `pg_` or `cnpg_` prefix, with a
//! resource template for one table's description and an explore-a-table prompt ([`explore`]).
//!
//! One implementation, two configurations: a cnpg link only derives its host
//! (`<cluster>-rw.<namespace>.svc`, or `-ro`), port and defaults, and its credentials come from
//! the cluster's `<cluster>-app` Secret, resolved by the server like any other.
//!
//! What is enforced here, not by inspecting SQL: reads run in a READ ONLY transaction with a
//! statement timeout, so PostgreSQL refuses writes and stops slow statements; a statement
//! string holding several commands is refused by PostgreSQL's extended protocol; results are
//! streamed and stop at the row limit, values are cut at 4 KiB, and the output is capped.

mod catalog;
mod conn;
mod decode;
mod explore;
pub mod params;
mod query;
mod rows;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use linkmcp_api::link::{CnpgBackend, CnpgService, PostgresBackend};
use rmcp::model::{CallToolResult, JsonObject};
use serde::Serialize;
use serde_json::{Value, json};

use crate::link::{BuildError, Component, LinkContext};
use crate::prompt::{GetPromptResult, Prompt, PromptArgs, PromptError};
use crate::resource::{ResourceContents, ResourceError, ResourceTemplateDef, text_contents};
use crate::sql_locks::{self, Dialect};
use crate::{CallContext, ToolDef, Toolset, output, with_args};

use catalog::Object;
use conn::{Mode, Pool, Target};
use explore::Explore;
use query::Bounds;
use rows::RowSet;

/// Rows a call returns when the link sets no `limits.maxRows`.
pub const DEFAULT_MAX_ROWS: usize = 100;
/// The port of every CloudNativePG Service.
pub const CNPG_PORT: u16 = 5432;

/// Which link type a toolset serves: the same tools, named and described for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Postgres,
    Cnpg,
}

impl Flavor {
    fn prefix(self) -> &'static str {
        match self {
            Flavor::Postgres => "pg",
            Flavor::Cnpg => "cnpg",
        }
    }

    /// The URI scheme of the link's resources: its link type.
    fn scheme(self) -> &'static str {
        match self {
            Flavor::Postgres => "postgres",
            Flavor::Cnpg => "cnpg",
        }
    }
}

/// The tools, by their name after the prefix.
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

    fn suffix(self) -> &'static str {
        match self {
            Tool::ListDatabases => "list_databases",
            Tool::ListTables => "list_tables",
            Tool::DescribeTable => "describe_table",
            Tool::TableStats => "table_stats",
            Tool::Query => "query",
            Tool::Execute => "execute",
        }
    }

    /// The tool's name under the link type's default prefix.
    fn name(self, flavor: Flavor) -> String {
        format!("{}_{}", flavor.prefix(), self.suffix())
    }
}

/// The host of a CloudNativePG cluster's Service: `<cluster>-rw.<namespace>.svc` for the
/// primary, `<cluster>-ro...` for the replicas.
pub fn cnpg_host(cluster: &str, service: CnpgService, namespace: &str) -> String {
    let suffix = match service {
        CnpgService::Rw => "rw",
        CnpgService::Ro => "ro",
    };
    format!("{cluster}-{suffix}.{namespace}.svc")
}

/// The toolset of a `postgres` link. Opens no connection.
pub fn toolset(
    link: &LinkContext<'_>,
    block: &PostgresBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let port = u16::try_from(block.port)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            BuildError::Invalid(format!("postgres.port {} is not a TCP port", block.port))
        })?;
    let target = Target {
        link: link.name.to_owned(),
        host: block.host.clone(),
        port,
        database: block.database.clone(),
        ssl_mode: block.ssl_mode,
    };
    let description = format!("PostgreSQL database `{}` at {}", block.database, block.host);
    Ok(Arc::new(PgToolset::new(
        Flavor::Postgres,
        link,
        target,
        block.schemas.clone(),
        &description,
        true,
    )?))
}

/// The toolset of a `cnpg` link: the postgres tools against the cluster's Service in the
/// link's namespace. With `service: ro` (replicas) it has no execute tool.
pub fn cnpg_toolset(
    link: &LinkContext<'_>,
    block: &CnpgBackend,
) -> Result<Arc<dyn Toolset>, BuildError> {
    let target = Target {
        link: link.name.to_owned(),
        host: cnpg_host(&block.cluster, block.service, link.namespace),
        port: CNPG_PORT,
        database: block.database.clone(),
        ssl_mode: block.ssl_mode,
    };
    let description = format!(
        "PostgreSQL database `{}` of the CloudNativePG cluster `{}`{}",
        block.database,
        block.cluster,
        if block.service == CnpgService::Ro {
            " (read replicas)"
        } else {
            ""
        }
    );
    Ok(Arc::new(PgToolset::new(
        Flavor::Cnpg,
        link,
        target,
        Vec::new(),
        &description,
        block.service == CnpgService::Rw,
    )?))
}

/// The link as a component of the stack topology: host, port and database (and for cnpg the
/// cluster and service), never a credential. `spec.component` overrides name, type and group.
pub fn component(link: &LinkContext<'_>) -> Component {
    let mut endpoint = BTreeMap::new();
    let link_type = match (&link.spec.postgres, &link.spec.cnpg) {
        (Some(pg), _) => {
            endpoint.insert("host".to_owned(), pg.host.clone());
            endpoint.insert("port".to_owned(), pg.port.to_string());
            endpoint.insert("database".to_owned(), pg.database.clone());
            "postgres"
        }
        (None, Some(cnpg)) => {
            endpoint.insert(
                "host".to_owned(),
                cnpg_host(&cnpg.cluster, cnpg.service, link.namespace),
            );
            endpoint.insert("port".to_owned(), CNPG_PORT.to_string());
            endpoint.insert("database".to_owned(), cnpg.database.clone());
            endpoint.insert("cluster".to_owned(), cnpg.cluster.clone());
            let service = match cnpg.service {
                CnpgService::Rw => "rw",
                CnpgService::Ro => "ro",
            };
            endpoint.insert("service".to_owned(), service.to_owned());
            "cnpg"
        }
        (None, None) => "postgres",
    };
    Component::of_link(link, link_type, "database", endpoint)
}

/// Why a table a call names is not exactly one relation the link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unresolved {
    /// It does not exist (or its schema is not shown); the message lists tables that exist.
    Missing(String),
    /// Several relations match `name` (case-insensitively, or in several schemas), each given
    /// as `schema.name`.
    Ambiguous { name: String, places: Vec<String> },
}

impl Unresolved {
    /// The message of a tool's isError result.
    fn into_message(self) -> String {
        match self {
            Unresolved::Missing(message) => message,
            Unresolved::Ambiguous { name, places } => format!(
                "table {name} is ambiguous: {}; pass `schema`",
                places.join(", ")
            ),
        }
    }
}

/// The tools of one PostgreSQL link over its own connection pool.
pub struct PgToolset {
    flavor: Flavor,
    pool: Pool,
    schemas: Vec<String>,
    max_rows: usize,
    defs: Vec<ToolDef>,
    explore: Explore,
}

impl PgToolset {
    fn new(
        flavor: Flavor,
        link: &LinkContext<'_>,
        target: Target,
        schemas: Vec<String>,
        what: &str,
        with_execute: bool,
    ) -> Result<Self, BuildError> {
        let max_rows = link.max_rows();
        let defs = Tool::ALL
            .iter()
            .filter(|&&tool| with_execute || tool != Tool::Execute)
            .map(|&tool| definition(flavor, tool, what, max_rows))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
        Ok(Self {
            flavor,
            pool: Pool::new(target, link.credentials),
            schemas,
            max_rows,
            defs,
            explore: Explore::new(flavor, link.name, what)?,
        })
    }

    fn tool(&self, name: &str) -> Option<Tool> {
        let suffix = name
            .strip_prefix(self.flavor.prefix())
            .and_then(|rest| rest.strip_prefix('_'))?;
        Tool::ALL.into_iter().find(|t| t.suffix() == suffix)
    }

    /// A page size: the requested one, at most the link's row limit.
    fn page(&self, limit: Option<u32>, offset: Option<u32>) -> (i64, i64) {
        let limit = limit.map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows));
        (limit as i64, i64::from(offset.unwrap_or(0)))
    }

    async fn read_session(&self, ctx: &CallContext) -> Result<conn::Session, String> {
        self.pool
            .begin(Mode::Read, ctx.timeout, statement_timeout(ctx.timeout))
            .await
    }

    async fn list_databases(&self, p: params::ListDatabases, ctx: &CallContext) -> CallToolResult {
        let (limit, offset) = self.page(p.limit, p.offset);
        let result = self
            .catalog(ctx, catalog::list_databases(limit, offset))
            .await;
        let (mut items, cut) = match result {
            Ok(found) => found,
            Err(message) => return output::error(message),
        };
        let page = Page::of(&mut items, offset, cut);
        let mut text = page.summary("databases");
        text.push_str("\nname\towner\tencoding\tsizeBytes\tcurrent");
        for db in &items {
            text.push('\n');
            text.push_str(&tsv(
                db,
                &["name", "owner", "encoding", "sizeBytes", "current"],
            ));
        }
        text.push_str("\nThe other tools work in the database marked current (the link's own).");
        self.finish(json!({"databases": items, "page": page}), text, ctx)
    }

    async fn list_tables(&self, p: params::ListTables, ctx: &CallContext) -> CallToolResult {
        if !p.schema.is_empty() && !self.schemas.is_empty() && !self.schemas.contains(&p.schema) {
            return output::error(format!(
                "schema {} is not shown by this link; its schemas are: {}",
                p.schema,
                self.schemas.join(", ")
            ));
        }
        let (limit, offset) = self.page(p.limit, p.offset);
        let query = catalog::list_tables(&self.schemas, &p.schema, &p.name_contains, limit, offset);
        let (mut items, cut) = match self.catalog(ctx, query).await {
            Ok(found) => found,
            Err(message) => return output::error(message),
        };
        let page = Page::of(&mut items, offset, cut);
        let mut text = page.summary("tables");
        text.push_str("\nschema\tname\tkind\testimatedRows\ttotalBytes\tcomment");
        for table in &items {
            text.push('\n');
            text.push_str(&tsv(
                table,
                &[
                    "schema",
                    "name",
                    "kind",
                    "estimatedRows",
                    "totalBytes",
                    "comment",
                ],
            ));
        }
        self.finish(json!({"tables": items, "page": page}), text, ctx)
    }

    /// Runs one catalog query in a read session.
    async fn catalog(
        &self,
        ctx: &CallContext,
        query: sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(Vec<Object>, bool), String> {
        let mut session = self.read_session(ctx).await?;
        match catalog::objects(session.conn(), query, ctx.max_output_bytes).await {
            Ok(found) => {
                let _ = session.end(false).await;
                Ok(found)
            }
            Err(err) => {
                let _ = session.end(false).await;
                Err(self.pool.explain(&err, ctx.timeout))
            }
        }
    }

    /// Finds one table for describe_table and table_stats: its oid, schema and name, or why
    /// there is not exactly one.
    async fn resolve(
        &self,
        session: &mut conn::Session,
        p: &params::TableRef,
        ctx: &CallContext,
    ) -> Result<Result<(i64, String, String), Unresolved>, sqlx::Error> {
        let (schema, name) = split_table(p);
        if !schema.is_empty() && !self.schemas.is_empty() && !self.schemas.contains(&schema) {
            return Ok(Err(Unresolved::Missing(format!(
                "schema {schema} is not shown by this link; its schemas are: {}",
                self.schemas.join(", ")
            ))));
        }
        let (found, _) = catalog::objects(
            session.conn(),
            catalog::find_table(&self.schemas, &schema, &name),
            usize::MAX,
        )
        .await?;
        let exact: Vec<&Object> = found.iter().filter(|t| t["exact"] == json!(true)).collect();
        let candidates: Vec<&Object> = if exact.is_empty() {
            found.iter().collect()
        } else {
            exact
        };
        let chosen = match candidates.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => {
                let in_path: Vec<&&Object> =
                    many.iter().filter(|t| t["inPath"] == json!(true)).collect();
                match in_path.as_slice() {
                    [one] if schema.is_empty() => Some(**one),
                    _ => {
                        let places = many
                            .iter()
                            .map(|t| format!("{}.{}", text(t, "schema"), text(t, "name")))
                            .collect();
                        return Ok(Err(Unresolved::Ambiguous { name, places }));
                    }
                }
            }
        };
        match chosen {
            Some(t) => Ok(Ok((
                t["oid"].as_i64().unwrap_or_default(),
                text(t, "schema"),
                text(t, "name"),
            ))),
            None => {
                let shown = if schema.is_empty() {
                    name.clone()
                } else {
                    format!("{schema}.{name}")
                };
                let tables = self.tables_hint(session, &name, ctx).await?;
                Ok(Err(Unresolved::Missing(format!(
                    "table {shown} does not exist; {tables}"
                ))))
            }
        }
    }

    /// `tables are: a, b, c (and N more ...)`, those whose name contains `near` first.
    async fn tables_hint(
        &self,
        session: &mut conn::Session,
        near: &str,
        ctx: &CallContext,
    ) -> Result<String, sqlx::Error> {
        let (found, _) = catalog::objects(
            session.conn(),
            catalog::some_tables(&self.schemas, near),
            ctx.max_output_bytes,
        )
        .await?;
        let total = found.first().and_then(|t| t["total"].as_i64()).unwrap_or(0);
        if found.is_empty() {
            return Ok("the database has no tables in the schemas this link shows".to_owned());
        }
        let names: Vec<String> = found.iter().map(|t| text(t, "name")).collect();
        let mut out = format!("tables are: {}", names.join(", "));
        let more = total - names.len() as i64;
        if more > 0 {
            let _ = write!(
                out,
                " (and {more} more; the list_tables tool shows them all)"
            );
        }
        Ok(out)
    }

    async fn describe_table(&self, p: params::TableRef, ctx: &CallContext) -> CallToolResult {
        match self.describe(&p, ctx).await {
            Ok(Ok((value, text))) => self.finish(value, text, ctx),
            Ok(Err(unresolved)) => output::error(unresolved.into_message()),
            Err(message) => output::error(message),
        }
    }

    /// One table's description, as describe_table returns it (its JSON value and its text),
    /// read in a read session of its own; the outer error is a backend failure, explained.
    async fn describe(
        &self,
        p: &params::TableRef,
        ctx: &CallContext,
    ) -> Result<Result<(Value, String), Unresolved>, String> {
        let mut session = self.read_session(ctx).await?;
        let result = self.describe_in(&mut session, p, ctx).await;
        let _ = session.end(false).await;
        result.map_err(|err| self.pool.explain(&err, ctx.timeout))
    }

    /// Reads a table's URI: describe_table's JSON for the table its `{table}` names, used as
    /// describe_table's `table` argument is.
    async fn read_table(
        &self,
        uri: &str,
        ctx: &CallContext,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        let table = self
            .explore
            .table_of(uri)
            .ok_or_else(|| ResourceError::NotFound(uri.to_owned()))?;
        let p = params::TableRef {
            table,
            schema: String::new(),
        };
        match self.describe(&p, ctx).await {
            Ok(Ok((value, _))) => Ok(vec![text_contents(uri, explore::JSON, value.to_string())]),
            Ok(Err(Unresolved::Missing(_))) => Err(ResourceError::NotFound(uri.to_owned())),
            Ok(Err(Unresolved::Ambiguous { name, places })) => {
                let uris: Vec<String> = places.iter().map(|t| self.explore.table_uri(t)).collect();
                Err(ResourceError::Failed(format!(
                    "table {name} is ambiguous: read one of {}",
                    uris.join(", ")
                )))
            }
            Err(message) => Err(ResourceError::Failed(message)),
        }
    }

    async fn describe_in(
        &self,
        session: &mut conn::Session,
        p: &params::TableRef,
        ctx: &CallContext,
    ) -> Result<Result<(Value, String), Unresolved>, sqlx::Error> {
        let (oid, schema, name) = match self.resolve(session, p, ctx).await? {
            Ok(found) => found,
            Err(message) => return Ok(Err(message)),
        };
        let budget = ctx.max_output_bytes;
        let (relation, _) =
            catalog::objects(session.conn(), catalog::relation(oid), budget).await?;
        let (columns, columns_cut) =
            catalog::objects(session.conn(), catalog::columns(oid), budget).await?;
        let (constraints, _) =
            catalog::objects(session.conn(), catalog::constraints(oid), budget).await?;
        let (indexes, _) = catalog::objects(session.conn(), catalog::indexes(oid), budget).await?;
        let relation = relation.into_iter().next().unwrap_or_default();

        let mut text = format!("{schema}.{name} ({}", text(&relation, "kind"));
        if let Some(rows) = relation.get("estimatedRows").and_then(Value::as_i64) {
            let _ = write!(text, ", about {rows} rows");
        }
        text.push(')');
        if let Some(comment) = relation.get("comment").and_then(Value::as_str) {
            let _ = write!(text, ": {comment}");
        }
        text.push_str("\ncolumns:");
        for c in &columns {
            let _ = write!(text, "\n  {} {}", text_of(c, "name"), text_of(c, "type"));
            if c["nullable"] == json!(false) {
                text.push_str(" NOT NULL");
            }
            if let Some(default) = c.get("default").and_then(Value::as_str) {
                let _ = write!(text, " DEFAULT {default}");
            }
            if let Some(identity) = c.get("identity").and_then(Value::as_str) {
                let _ = write!(text, " GENERATED {} AS IDENTITY", identity.to_uppercase());
            }
            if let Some(comment) = c.get("comment").and_then(Value::as_str) {
                let _ = write!(text, " -- {comment}");
            }
        }
        if columns_cut {
            text.push_str("\n  (more columns not shown: the output limit was reached; truncated)");
        }
        if !constraints.is_empty() {
            text.push_str("\nconstraints:");
            for c in &constraints {
                let _ = write!(
                    text,
                    "\n  {}: {}",
                    text_of(c, "name"),
                    text_of(c, "definition")
                );
            }
        }
        if !indexes.is_empty() {
            text.push_str("\nindexes:");
            for i in &indexes {
                let _ = write!(text, "\n  {}", text_of(i, "definition"));
            }
        }
        if let Some(definition) = relation.get("viewDefinition").and_then(Value::as_str) {
            let _ = write!(text, "\ndefinition:\n{definition}");
        }
        let mut value = json!({
            "schema": schema,
            "name": name,
            "columns": columns,
            "constraints": constraints,
            "indexes": indexes,
        });
        for key in ["kind", "estimatedRows", "comment", "viewDefinition"] {
            if let Some(v) = relation.get(key).filter(|v| !v.is_null()) {
                value[key] = v.clone();
            }
        }
        if columns_cut {
            value["truncated"] = json!(true);
        }
        Ok(Ok((value, text)))
    }

    async fn table_stats(&self, p: params::TableRef, ctx: &CallContext) -> CallToolResult {
        let mut session = match self.read_session(ctx).await {
            Ok(s) => s,
            Err(message) => return output::error(message),
        };
        let result = async {
            let (oid, schema, name) = match self.resolve(&mut session, &p, ctx).await? {
                Ok(found) => found,
                Err(message) => return Ok(Err(message)),
            };
            let (stats, _) = catalog::objects(
                session.conn(),
                catalog::table_stats(oid),
                ctx.max_output_bytes,
            )
            .await?;
            Ok::<_, sqlx::Error>(Ok((
                schema,
                name,
                stats.into_iter().next().unwrap_or_default(),
            )))
        }
        .await;
        let _ = session.end(false).await;
        match result {
            Ok(Ok((schema, name, stats))) => {
                let mut text = format!("{schema}.{name}:");
                for (key, value) in &stats {
                    if !value.is_null() {
                        let _ = write!(text, "\n  {key}: {}", cell(value));
                    }
                }
                let mut value = json!({"schema": schema, "name": name});
                for (key, v) in stats {
                    value[key] = v;
                }
                self.finish(value, text, ctx)
            }
            Ok(Err(unresolved)) => output::error(unresolved.into_message()),
            Err(err) => output::error(self.pool.explain(&err, ctx.timeout)),
        }
    }

    async fn query(&self, p: params::Query, ctx: &CallContext) -> CallToolResult {
        if p.sql.trim().is_empty() {
            return output::error("invalid argument `sql`: it is empty; pass one SQL statement");
        }
        if let Some(refusal) = sql_locks::refusal(&p.sql, Dialect::Postgres) {
            return output::error(refusal);
        }
        let max_rows = p
            .max_rows
            .map_or(self.max_rows, |n| (n as usize).clamp(1, self.max_rows));
        let bounds = Bounds {
            max_rows,
            max_bytes: ctx.max_output_bytes,
        };
        let mut session = match self.read_session(ctx).await {
            Ok(s) => s,
            Err(message) => return output::error(message),
        };
        match query::read(&mut session, &p.sql, bounds, &ctx.client).await {
            Ok((set, complete)) => {
                if complete {
                    let _ = session.end(false).await;
                } else {
                    session.abandon();
                }
                self.rows_result(&set, max_rows, ctx)
            }
            Err(err) => {
                let _ = session.end(false).await;
                let mut message = self.pool.explain(&err, ctx.timeout);
                if sqlstate(&err).as_deref() == Some("42P01") {
                    self.append_tables(&mut message, ctx).await;
                }
                output::error(message)
            }
        }
    }

    /// Adds `; tables are: ...` to an undefined-table error, from a fresh read session.
    async fn append_tables(&self, message: &mut String, ctx: &CallContext) {
        let Ok(mut session) = self.read_session(ctx).await else {
            return;
        };
        let near = undefined_relation(message).unwrap_or_default();
        if let Ok(tables) = self.tables_hint(&mut session, &near, ctx).await {
            let _ = write!(message, "; {tables}");
        }
        let _ = session.end(false).await;
    }

    async fn execute(&self, p: params::Execute, ctx: &CallContext) -> CallToolResult {
        if p.sql.trim().is_empty() {
            return output::error("invalid argument `sql`: it is empty; pass one SQL statement");
        }
        let bounds = Bounds {
            max_rows: self.max_rows,
            max_bytes: ctx.max_output_bytes,
        };
        let mut session = match self
            .pool
            .begin(Mode::Write, ctx.timeout, statement_timeout(ctx.timeout))
            .await
        {
            Ok(s) => s,
            Err(message) => return output::error(message),
        };
        match query::execute(&mut session, &p.sql, &p.params, bounds).await {
            Ok(set) => match session.end(true).await {
                Ok(()) => self.rows_result(&set, self.max_rows, ctx),
                Err(err) => output::error(format!(
                    "the statement ran but its commit failed, so nothing was changed: {}",
                    self.pool.explain(&err, ctx.timeout)
                )),
            },
            Err(err) => {
                let _ = session.end(false).await;
                let mut message = self.pool.explain(&err, ctx.timeout);
                message.push_str("\nNothing was changed (the transaction was rolled back).");
                output::error(message)
            }
        }
    }

    fn rows_result(&self, set: &RowSet, max_rows: usize, ctx: &CallContext) -> CallToolResult {
        let text = rows::render(set, max_rows, ctx.max_output_bytes);
        let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
        output::ok_json(set, text)
    }

    fn finish(&self, value: Value, text: String, ctx: &CallContext) -> CallToolResult {
        let (text, _) = output::cap_text(&text, ctx.max_output_bytes);
        output::ok_json(&value, text)
    }
}

impl Toolset for PgToolset {
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
            let Some(tool) = self
                .tool(name)
                .filter(|_| self.defs.iter().any(|d| d.name() == name))
            else {
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

    fn resource_templates(&self) -> &[ResourceTemplateDef] {
        self.explore.templates()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(self.read_table(uri, ctx))
    }

    fn prompts(&self) -> &[Prompt] {
        self.explore.prompts()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move { self.explore.prompt(name, &args) })
    }
}

/// The tool's definition, described for `what` (the database the link reaches).
fn definition(
    flavor: Flavor,
    tool: Tool,
    what: &str,
    max_rows: usize,
) -> Result<ToolDef, crate::ToolDefError> {
    let name = tool.name(flavor);
    match tool {
        Tool::ListDatabases => ToolDef::read::<params::ListDatabases>(
            name,
            format!(
                "List the databases on the server of the {what}: name, owner, encoding, size. \
                 The other tools work only in the link's own database (marked current). \
                 Paginated with `limit` and `offset`."
            ),
        ),
        Tool::ListTables => ToolDef::read::<params::ListTables>(
            name,
            format!(
                "List the tables, views and materialized views of the {what}: schema, name, \
                 kind, estimated rows, total size and comment. Filter with `schema` or \
                 `nameContains`; paginated with `limit` and `offset` (at most {max_rows} a page)."
            ),
        ),
        Tool::DescribeTable => ToolDef::read::<params::TableRef>(
            name,
            format!(
                "Describe one table or view of the {what}: its columns (type, nullable, \
                 default, comment), primary key, foreign keys and other constraints, indexes, \
                 and a view's definition. Use it before writing a query against the table."
            ),
        ),
        Tool::TableStats => ToolDef::read::<params::TableRef>(
            name,
            format!(
                "Statistics of one table of the {what}: live and dead rows, sequential and \
                 index scans, rows inserted/updated/deleted, last vacuum and analyze times, and \
                 table, index and total sizes in bytes."
            ),
        ),
        Tool::Query => ToolDef::read::<params::Query>(
            name,
            format!(
                "Run one read-only SQL statement (SELECT, WITH, VALUES, SHOW, EXPLAIN) on the \
                 {what} and get the rows as JSON (columns with types, rows as arrays). It runs \
                 in a READ ONLY transaction with a timeout, so PostgreSQL refuses any change. \
                 At most {max_rows} rows are returned and values are cut at 4 KiB; a result \
                 says when it was truncated: then narrow it with WHERE, LIMIT or an aggregate."
            ),
        ),
        Tool::Execute => ToolDef::write::<params::Execute>(
            name,
            format!(
                "Run one SQL statement that changes the {what} (INSERT, UPDATE, DELETE, MERGE, \
                 CREATE, ALTER, DROP, ...) in its own transaction, committed only if it \
                 succeeds; returns the rows affected (and the rows of a RETURNING clause). \
                 Pass values as `params` for placeholders $1, $2, ... rather than in the SQL. \
                 One statement per call; VACUUM and other commands that cannot run in a \
                 transaction are refused."
            ),
        ),
    }
}

/// The statement timeout of a call: a little under the call's own, so that PostgreSQL's
/// cancellation (and its clear message) comes before the server abandons the call.
fn statement_timeout(call: Duration) -> Duration {
    let margin = (call / 10).min(Duration::from_secs(2));
    call.saturating_sub(margin).max(Duration::from_millis(1))
}

/// The SQLSTATE of a database error.
fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The relation name in `relation "x" does not exist`.
fn undefined_relation(message: &str) -> Option<String> {
    let start = message.find("relation \"")? + "relation \"".len();
    let end = message[start..].find('"')? + start;
    let name = &message[start..end];
    Some(name.rsplit('.').next().unwrap_or(name).to_owned())
}

/// `schema.table` given as the table, with the schema parameter empty, is split; surrounding
/// double quotes are removed.
fn split_table(p: &params::TableRef) -> (String, String) {
    let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
    if p.schema.is_empty()
        && let Some((schema, table)) = p.table.split_once('.')
    {
        return (unquote(schema), unquote(table));
    }
    (unquote(&p.schema), unquote(&p.table))
}

fn text(object: &Object, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn text_of(object: &Object, key: &str) -> String {
    object.get(key).map(cell).unwrap_or_default()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.replace(['\t', '\n'], " "),
        other => other.to_string(),
    }
}

fn tsv(object: &Object, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| text_of(object, k))
        .collect::<Vec<_>>()
        .join("\t")
}

/// Where a page of a list stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    offset: i64,
    count: usize,
    total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<i64>,
    truncated: bool,
}

impl Page {
    /// The page of `items` (each carrying the window `total`, removed here).
    fn of(items: &mut [Object], offset: i64, cut: bool) -> Page {
        let total = items
            .first()
            .and_then(|i| i.get("total"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        for item in items.iter_mut() {
            item.remove("total");
        }
        let count = items.len();
        let end = offset + count as i64;
        let more = end < total;
        Page {
            offset,
            count,
            total,
            next_offset: more.then_some(end),
            truncated: more || cut,
        }
    }

    fn summary(&self, what: &str) -> String {
        let mut out = format!(
            "{} of {} {what} (offset {})",
            self.count, self.total, self.offset
        );
        if let Some(next) = self.next_offset {
            let _ = write!(
                out,
                "; truncated: more exist, pass offset {next} for the next page"
            );
        }
        out.push('.');
        out
    }
}

#[cfg(test)]
mod tests;
