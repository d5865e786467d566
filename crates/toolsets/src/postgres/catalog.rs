//! What the catalog tools ask PostgreSQL: databases, tables, one table's definition and its
//! statistics — and, when a table is not found, the tables that do exist.
//!
//! Every query is fixed SQL with bound parameters, runs in the caller's READ ONLY transaction
//! and is bounded by a LIMIT; rows come back as JSON objects keyed by column alias, decoded
//! like any query result.

use serde_json::{Map, Value};
use sqlx::postgres::{PgArguments, PgConnection, Postgres};
use sqlx::query::Query;
use sqlx::{Column as _, Row as _};

use super::rows::{Column, decode_value};

/// One row as an object keyed by column name.
pub(crate) type Object = Map<String, Value>;

/// Runs a catalog query and returns its rows as objects, keeping no more than `max_bytes` of
/// JSON. Returns the objects and whether the byte budget cut them.
pub(crate) async fn objects(
    conn: &mut PgConnection,
    query: Query<'_, Postgres, PgArguments>,
    max_bytes: usize,
) -> Result<(Vec<Object>, bool), sqlx::Error> {
    let rows = query.fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut bytes = 0usize;
    for row in &rows {
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let (_, decoder) = Column::describe(column);
            let value = match row.try_get_raw(i) {
                Ok(raw) => decode_value(decoder.as_ref(), raw).0,
                Err(_) => Value::Null,
            };
            object.insert(column.name().to_owned(), value);
        }
        bytes += serde_json::to_string(&object).map_or(0, |s| s.len()) + 1;
        if bytes > max_bytes {
            return Ok((out, true));
        }
        out.push(object);
    }
    Ok((out, false))
}

/// Excludes PostgreSQL's own schemas (pg_catalog, pg_toast, temporary schemas,
/// information_schema) and keeps the link's schemas when it names some (`$1`, text[]).
const SCHEMA_FILTER: &str = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
     AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1::text[]))";

/// Tables, partitioned tables, views, materialized views and foreign tables; partitions are
/// listed through their parent.
const RELATION_FILTER: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition";

const KIND: &str = "CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' \
     WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END";

pub(crate) fn list_databases(limit: i64, offset: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "SELECT d.datname AS name, pg_catalog.pg_get_userbyid(d.datdba) AS owner, \
                pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, \
                CASE WHEN pg_catalog.has_database_privilege(d.oid, 'CONNECT') \
                     THEN pg_catalog.pg_database_size(d.oid) END AS \"sizeBytes\", \
                d.datname = pg_catalog.current_database() AS current, \
                count(*) OVER () AS total \
         FROM pg_catalog.pg_database d \
         WHERE NOT d.datistemplate AND d.datallowconn \
         ORDER BY d.datname LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
}

pub(crate) fn list_tables(
    schemas: &[String],
    schema: &str,
    name_contains: &str,
    limit: i64,
    offset: i64,
) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname AS schema, c.relname AS name, {KIND} AS kind, \
                CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END \
                    AS \"estimatedRows\", \
                pg_catalog.pg_total_relation_size(c.oid) AS \"totalBytes\", \
                pg_catalog.obj_description(c.oid, 'pg_class') AS comment, \
                count(*) OVER () AS total \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {RELATION_FILTER} AND {SCHEMA_FILTER} \
           AND ($2::text = '' OR n.nspname = $2::text) \
           AND ($3::text = '' OR strpos(lower(c.relname), lower($3::text)) > 0) \
         ORDER BY n.nspname, c.relname LIMIT $4 OFFSET $5"
    )))
    .bind(schemas.to_vec())
    .bind(schema.to_owned())
    .bind(name_contains.to_owned())
    .bind(limit)
    .bind(offset)
}

/// Relations named `name` (exactly, else case-insensitively) in `schema` (empty: any), the
/// exact and search-path ones first.
pub(crate) fn find_table(
    schemas: &[String],
    schema: &str,
    name: &str,
) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, {KIND} AS kind, \
                c.relname = $3::text AS exact, \
                n.nspname = ANY(pg_catalog.current_schemas(false)) AS \"inPath\" \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {SCHEMA_FILTER} \
           AND ($2::text = '' OR n.nspname = $2::text) \
           AND lower(c.relname) = lower($3::text) \
         ORDER BY exact DESC, \"inPath\" DESC, n.nspname LIMIT 20"
    )))
    .bind(schemas.to_vec())
    .bind(schema.to_owned())
    .bind(name.to_owned())
}

/// A few table names for an error message, those containing `near` first, with the total.
pub(crate) fn some_tables(schemas: &[String], near: &str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN n.nspname = 'public' THEN c.relname \
                     ELSE n.nspname || '.' || c.relname END AS name, \
                count(*) OVER () AS total \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {RELATION_FILTER} AND {SCHEMA_FILTER} \
         ORDER BY strpos(lower(c.relname), lower($2::text)) = 0, n.nspname, c.relname LIMIT 20"
    )))
    .bind(schemas.to_vec())
    .bind(near.to_owned())
}

pub(crate) fn relation(oid: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname AS schema, c.relname AS name, {KIND} AS kind, \
                CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END \
                    AS \"estimatedRows\", \
                pg_catalog.obj_description(c.oid, 'pg_class') AS comment, \
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END \
                    AS \"viewDefinition\" \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = $1::bigint::oid"
    )))
    .bind(oid)
}

pub(crate) fn columns(oid: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, \
                NOT a.attnotnull AS nullable, \
                pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS \"default\", \
                CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END \
                    AS identity, \
                CASE a.attgenerated WHEN 's' THEN 'stored' END AS generated, \
                pg_catalog.col_description(a.attrelid, a.attnum) AS comment \
         FROM pg_catalog.pg_attribute a \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(oid)
}

pub(crate) fn constraints(oid: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "SELECT conname AS name, \
                CASE contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' \
                     WHEN 'u' THEN 'unique' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' \
                     ELSE contype::text END AS type, \
                pg_catalog.pg_get_constraintdef(oid, true) AS definition \
         FROM pg_catalog.pg_constraint WHERE conrelid = $1::bigint::oid \
         ORDER BY contype <> 'p', contype, conname",
    )
    .bind(oid)
}

pub(crate) fn indexes(oid: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "SELECT i.relname AS name, pg_catalog.pg_get_indexdef(x.indexrelid) AS definition, \
                x.indisprimary AS \"primary\", x.indisunique AS \"unique\", \
                pg_catalog.pg_relation_size(x.indexrelid) AS \"sizeBytes\" \
         FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
         WHERE x.indrelid = $1::bigint::oid ORDER BY x.indisprimary DESC, i.relname",
    )
    .bind(oid)
}

pub(crate) fn table_stats(oid: i64) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "SELECT s.n_live_tup AS \"liveRows\", s.n_dead_tup AS \"deadRows\", \
                CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END \
                    AS \"estimatedRows\", \
                s.n_mod_since_analyze AS \"modifiedSinceAnalyze\", \
                s.seq_scan AS \"seqScans\", s.seq_tup_read AS \"seqRowsRead\", \
                s.idx_scan AS \"indexScans\", s.idx_tup_fetch AS \"indexRowsFetched\", \
                s.n_tup_ins AS \"rowsInserted\", s.n_tup_upd AS \"rowsUpdated\", \
                s.n_tup_del AS \"rowsDeleted\", s.n_tup_hot_upd AS \"hotUpdates\", \
                s.last_vacuum AS \"lastVacuum\", s.last_autovacuum AS \"lastAutovacuum\", \
                s.last_analyze AS \"lastAnalyze\", s.last_autoanalyze AS \"lastAutoanalyze\", \
                s.vacuum_count AS \"vacuumCount\", s.autovacuum_count AS \"autovacuumCount\", \
                s.analyze_count AS \"analyzeCount\", s.autoanalyze_count AS \"autoanalyzeCount\", \
                pg_catalog.pg_table_size(c.oid) AS \"tableBytes\", \
                pg_catalog.pg_indexes_size(c.oid) AS \"indexBytes\", \
                pg_catalog.pg_total_relation_size(c.oid) AS \"totalBytes\" \
         FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid \
         WHERE c.oid = $1::bigint::oid",
    )
    .bind(oid)
}
