//! One SQL statement from a model, run and streamed into a bounded [`RowSet`].
//!
//! Statements go through the extended protocol (a prepared statement), so PostgreSQL itself
//! refuses a string holding several commands. Reads stop reading at the row limit and tell the
//! caller to close the connection rather than drain the rest; writes read to the end (the
//! statement must complete before its commit) but keep only the first rows. A read reports
//! the rows read so far to a client that asked for progress.

use futures::TryStreamExt as _;
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgTypeInfo, Postgres};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Either, Executor as _, SqlSafeStr as _, Statement as _};

use super::conn::Session;
use super::decode::Decoder;
use super::rows::{Collector, Column, RowSet};
use crate::client::{Client, LogLevel, Ticker};

/// The bounds of one result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub max_rows: usize,
    pub max_bytes: usize,
}

/// Runs one read statement in `session` (a READ ONLY transaction). Returns the rows and
/// whether the result was read to its end; when it was not, the session must be abandoned.
pub(crate) async fn read(
    session: &mut Session,
    sql: &str,
    bounds: Bounds,
    client: &Client,
) -> Result<(RowSet, bool), sqlx::Error> {
    let conn = session.conn();
    let statement = conn
        .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await?;
    let (columns, mut decoders): (Vec<Column>, Vec<Option<Decoder>>) =
        statement.columns().iter().map(Column::describe).unzip();
    if columns.is_empty() {
        let done = statement.query().execute(&mut *conn).await?;
        let set = Collector::new(columns, decoders, bounds.max_rows, bounds.max_bytes)
            .finish(Some(done.rows_affected()));
        return Ok((set, true));
    }
    let mut statement = statement;
    if decoders.iter().any(Option::is_none)
        && let Some(wrapped) = cast_fallback(conn, sql, &decoders).await?
    {
        statement = wrapped;
        for decoder in &mut decoders {
            decoder.get_or_insert(Decoder::Text);
        }
    }
    let mut collector = Collector::new(columns, decoders, bounds.max_rows, bounds.max_bytes);
    let mut ticker = Ticker::new(client, "rows read");
    ticker.tick(0, None).await;
    let mut stream = statement.query().fetch(&mut *conn);
    let mut complete = true;
    let mut rows = 0u64;
    while let Some(row) = stream.try_next().await? {
        rows += 1;
        if !collector.push(&row) {
            complete = false;
            break;
        }
        ticker.tick(rows, None).await;
    }
    ticker.finish(rows, None).await;
    let stop = if complete {
        ""
    } else {
        ", stopped at the bounds"
    };
    client
        .log(LogLevel::Info, format!("query read {rows} rows{stop}"))
        .await;
    Ok((collector.finish(None), complete))
}

/// The statement rewritten so that PostgreSQL renders the columns this module cannot decode
/// as text: `SELECT q.c1, q.c2::text FROM (<sql>) AS q(c1, c2)`. `None` when the statement
/// cannot be a subquery (SHOW, EXPLAIN, FETCH, ...): the caller then shows those values as
/// text or hex as they come. A savepoint keeps the failed attempt from aborting the
/// transaction.
async fn cast_fallback(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    decoders: &[Option<Decoder>],
) -> Result<Option<sqlx::postgres::PgStatement>, sqlx::Error> {
    let body = sql
        .trim_end()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    let aliases: Vec<String> = (1..=decoders.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = decoders
        .iter()
        .zip(&aliases)
        .map(|(decoder, alias)| match decoder {
            Some(_) => format!("q.{alias}"),
            None => format!("q.{alias}::text"),
        })
        .collect();
    let wrapped = format!(
        "SELECT {} FROM (\n{body}\n) AS q({})",
        select.join(", "),
        aliases.join(", ")
    );
    conn.execute("SAVEPOINT linkmcp_cast").await?;
    match conn.prepare(AssertSqlSafe(wrapped).into_sql_str()).await {
        Ok(statement) => {
            conn.execute("RELEASE SAVEPOINT linkmcp_cast").await?;
            Ok(Some(statement))
        }
        Err(sqlx::Error::Database(_)) => {
            conn.execute("ROLLBACK TO SAVEPOINT linkmcp_cast").await?;
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// Runs one statement with bound `params` in `session` (a read-write transaction the caller
/// commits). Reads the whole result, so the rows affected are known, keeping the first rows
/// a RETURNING clause gives within the bounds.
pub(crate) async fn execute(
    session: &mut Session,
    sql: &str,
    params: &[Value],
    bounds: Bounds,
) -> Result<RowSet, sqlx::Error> {
    let mut query = sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(false);
    for param in params {
        query = bind(query, param);
    }
    let mut collector = Collector::undescribed(bounds.max_rows, bounds.max_bytes);
    let mut affected = 0u64;
    let mut stream = session.conn().fetch_many(query);
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Left(done) => affected += done.rows_affected(),
            Either::Right(row) => {
                if !collector.is_full() {
                    collector.push(&row);
                }
            }
        }
    }
    Ok(collector.finish(Some(affected)))
}

fn bind<'q>(
    query: Query<'q, Postgres, PgArguments>,
    param: &Value,
) -> Query<'q, Postgres, PgArguments> {
    match param {
        Value::Null => query.bind(UntypedNull),
        Value::Bool(b) => query.bind(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => query.bind(i),
            // Integers beyond bigint keep every digit as text.
            (None, _) if n.is_u64() => query.bind(n.to_string()),
            (None, Some(f)) => query.bind(f),
            (None, None) => query.bind(n.to_string()),
        },
        Value::String(s) => query.bind(s.clone()),
        Value::Array(_) | Value::Object(_) => query.bind(sqlx::types::Json(param.clone())),
    }
}

/// A NULL parameter whose type PostgreSQL infers from the statement (OID 0, "unspecified"),
/// so `null` fits a column of any type.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Ok(IsNull::Yes)
    }
}
