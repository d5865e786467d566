//! The typed parameters of the MongoDB tools; their doc comments are the descriptions a model
//! reads in each tool's input schema. Filters, projections, sorts, pipelines and documents
//! are MongoDB Extended JSON (`{"$oid": "..."}`, `{"$date": "..."}` for typed values).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Parameters of the list_collections tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListCollections {
    /// Only collections whose name contains this text, case-insensitively. Empty: all.
    #[serde(default)]
    pub name_contains: String,
    /// Most collections to return; defaults to (and cannot exceed) the link's row limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Collections to skip, to read the next page: pass the `nextOffset` of the previous
    /// result.
    #[serde(default)]
    pub offset: Option<u32>,
}

/// Parameters of the find tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Find {
    /// The collection to read.
    pub collection: String,
    /// Query filter, e.g. `{"status": "paid", "total": {"$gt": 100}}`. Empty: every document.
    #[serde(default)]
    pub filter: Map<String, Value>,
    /// Fields to return or leave out, e.g. `{"name": 1, "total": 1}` or `{"payload": 0}`.
    #[serde(default)]
    pub projection: Map<String, Value>,
    /// Sort order, e.g. `{"createdAt": -1}`.
    #[serde(default)]
    pub sort: Map<String, Value>,
    /// Most documents to return (never more than the link's row limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Documents to skip first, to read the next page.
    #[serde(default)]
    pub skip: Option<u32>,
}

/// Parameters of the aggregate tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Aggregate {
    /// The collection the pipeline starts from.
    pub collection: String,
    /// The pipeline: a list of stages such as `{"$match": {...}}`, `{"$group": {...}}`,
    /// `{"$sort": {...}}`, `{"$project": {...}}`. Stages that write (`$out`, `$merge`) are
    /// refused.
    pub pipeline: Vec<Map<String, Value>>,
    /// Most documents to return (never more than the link's row limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
}

/// Parameters of the count tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Count {
    /// The collection whose documents to count.
    pub collection: String,
    /// Count only documents matching this filter. Empty: every document.
    #[serde(default)]
    pub filter: Map<String, Value>,
}

/// Parameters of the insert tool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Insert {
    /// The collection to insert into (created if it does not exist).
    pub collection: String,
    /// The documents to insert, one or many. A document without `_id` gets an ObjectId.
    #[schemars(length(min = 1))]
    pub documents: Vec<Map<String, Value>>,
}
