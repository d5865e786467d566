//! The shape of a SQL backend's bounded result, shared by the postgres and clickhouse
//! toolsets so that a model reads the same `{columns, rows, rowCount, truncated, ...}` from
//! both. How rows are read, decoded, cut and rendered stays with each backend.

use serde::Serialize;
use serde_json::Value;

/// The longest text of one value in a result; longer values are cut and marked.
pub(crate) const MAX_CELL_BYTES: usize = 4096;

/// A result column: its name and the backend's type name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// Which bound stopped a result early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Cut {
    /// More rows exist than the row limit allows.
    MaxRows,
    /// The rows would exceed the call's output limit.
    OutputBytes,
}

/// The structured result of a statement: `{columns, rows, rowCount, truncated, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RowSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_by: Option<Cut>,
    /// How many values were longer than [`MAX_CELL_BYTES`] and cut.
    #[serde(skip_serializing_if = "is_zero")]
    pub cut_values: usize,
    /// Rows inserted, updated or deleted, for statements that change data (where the backend
    /// reports it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
