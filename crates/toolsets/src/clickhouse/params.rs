//! The typed parameters of the ClickHouse tools; their doc comments are the descriptions a
//! model reads in each tool's input schema.

use schemars::JsonSchema;
use serde::Deserialize;

/// Parameters of the list_databases tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListDatabases {
    /// Most databases to return; defaults to (and cannot exceed) the link's row limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Databases to skip, to read the next page: pass the `nextOffset` of the previous result.
    #[serde(default)]
    pub offset: Option<u32>,
}

/// Parameters of the list_tables tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListTables {
    /// The database whose tables to list. Empty: the link's database.
    #[serde(default)]
    pub database: String,
    /// Only tables whose name contains this text, case-insensitively. Empty: every table.
    #[serde(default)]
    pub name_contains: String,
    /// Most tables to return; defaults to (and cannot exceed) the link's row limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Tables to skip, to read the next page: pass the `nextOffset` of the previous result.
    #[serde(default)]
    pub offset: Option<u32>,
}

/// Parameters naming one table (describe_table, table_stats).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableRef {
    /// The table: `events`, or `analytics.events` with its database.
    pub table: String,
    /// Its database. Empty: the database in `table`, else the link's database.
    #[serde(default)]
    pub database: String,
}

/// Parameters of the query tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Query {
    /// One ClickHouse SQL statement that reads: SELECT, WITH ... SELECT, SHOW, DESCRIBE,
    /// EXISTS. Do not add a FORMAT clause. It runs with `readonly=1`, so ClickHouse refuses
    /// any statement that changes data or settings.
    pub sql: String,
    /// Return at most this many rows (never more than the link's row limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_rows: Option<u32>,
}

/// Parameters of the execute tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Execute {
    /// One ClickHouse SQL statement that changes data or schema: INSERT INTO ... VALUES,
    /// CREATE TABLE, ALTER TABLE, DROP TABLE, TRUNCATE, OPTIMIZE. One statement per call.
    pub sql: String,
}
