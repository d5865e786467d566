//! The typed parameters of the PostgreSQL tools; their doc comments are the descriptions a
//! model reads in each tool's input schema.
//!
//! Optional text filters default to the empty string rather than null, so every property has
//! one JSON type and a wrong one is refused by name.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

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
    /// Most tables to return; defaults to (and cannot exceed) the link's row limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Only tables whose name contains this text, case-insensitively (e.g. `order`). Empty:
    /// every table.
    #[serde(default)]
    pub name_contains: String,
    /// Tables to skip, to read the next page: pass the `nextOffset` of the previous result.
    #[serde(default)]
    pub offset: Option<u32>,
    /// Only tables of this schema (e.g. `public`). Empty: every schema the link shows.
    #[serde(default)]
    pub schema: String,
}

/// Parameters naming one table (describe_table, table_stats).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableRef {
    /// The table, view or materialized view: `orders`, or `sales.orders` with its schema.
    pub table: String,
    /// Its schema, when the name alone is ambiguous. Empty: found through the search path.
    #[serde(default)]
    pub schema: String,
}

/// Parameters of the query tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Query {
    /// One SQL statement that reads: SELECT, WITH ... SELECT, VALUES, TABLE, SHOW or EXPLAIN.
    /// It runs in a READ ONLY transaction, so statements that change data are refused.
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
    /// One SQL statement that changes data or schema (INSERT, UPDATE, DELETE, MERGE, CREATE,
    /// ALTER, ...). Use placeholders `$1`, `$2`, ... for values and pass them in `params`.
    pub sql: String,
    /// Values of the placeholders, in order. Strings are sent as text, whole numbers as bigint,
    /// other numbers as double precision, booleans as boolean, objects and arrays as jsonb, and
    /// null as NULL. Cast in the SQL where a column needs another type: `$1::uuid`,
    /// `$2::timestamptz`, `$3::numeric`.
    #[serde(default)]
    pub params: Vec<Value>,
}
