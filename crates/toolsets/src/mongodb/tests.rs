//! Unit tests of the MongoDB toolset's pure parts: the write-stage guard, Extended JSON
//! arguments, value cutting, naming, lazy client construction and the topology component.
//! Behaviour against a MongoDB-wire server is tested in `tests/mongodb.rs`.

#![allow(clippy::unwrap_used)]

use linkmcp_api::McpLinkSpec;

use super::*;
use crate::credentials::Credentials;

fn link_spec(port: i32) -> (McpLinkSpec, MongodbBackend) {
    let block = MongodbBackend {
        host: "127.0.0.1".to_owned(),
        port,
        database: "shop".to_owned(),
        auth_source: None,
        replica_set: Some("rs0".to_owned()),
        tls: false,
    };
    let mut spec: McpLinkSpec =
        serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap();
    spec.mongodb = Some(block.clone());
    (spec, block)
}

#[test]
fn writing_stages_are_found_at_any_depth() {
    assert_eq!(writing_stage(&json!({"$out": "copy"})), Some("$out"));
    assert_eq!(
        writing_stage(&json!({"$merge": {"into": "copy"}})),
        Some("$merge")
    );
    assert_eq!(
        writing_stage(&json!({"$facet": {"a": [{"$match": {}}, {"$out": "x"}]}})),
        Some("$out")
    );
    assert_eq!(
        writing_stage(&json!({"$lookup": {"from": "b", "pipeline": [{"$merge": "x"}], "as": "y"}})),
        Some("$merge")
    );
    // $mergeObjects is an expression, not the $merge stage.
    assert_eq!(
        writing_stage(&json!({"$project": {"m": {"$mergeObjects": ["$a", "$b"]}}})),
        None
    );
}

#[test]
fn extended_json_arguments_become_typed_bson() {
    let filter = json!({"_id": {"$oid": "507f1f77bcf86cd799439011"}, "n": {"$gt": 1}});
    let doc = to_document("filter", filter.as_object().cloned().unwrap()).unwrap();
    assert!(matches!(doc.get("_id"), Some(Bson::ObjectId(_))));
    let bad = json!({"when": {"$date": "not a date"}});
    let err = to_document("filter", bad.as_object().cloned().unwrap()).unwrap_err();
    assert!(err.starts_with("invalid argument `filter`"), "{err}");
}

#[test]
fn long_strings_are_cut_everywhere() {
    let long = "é".repeat(MAX_FIELD_BYTES);
    let mut value = json!({"a": long, "b": [{"c": long}], "d": "short"});
    assert_eq!(cut_strings(&mut value), 2);
    let a = value["a"].as_str().unwrap();
    assert!(a.len() < MAX_FIELD_BYTES + 64);
    assert!(a.ends_with("bytes]"), "{a}");
    assert_eq!(value["d"], "short");
}

#[test]
fn collection_names_are_checked() {
    assert!(checked_collection("orders").is_ok());
    assert!(checked_collection("").is_err());
    assert!(checked_collection("system.users").is_err());
    assert!(checked_collection("a$b").is_err());
}

#[test]
fn max_time_leaves_a_margin() {
    assert_eq!(max_time(Duration::from_secs(30)), Duration::from_secs(28));
    assert_eq!(max_time(Duration::ZERO), Duration::from_millis(1));
}

#[tokio::test]
async fn tools_are_listed_without_a_server() {
    let (spec, block) = link_spec(1);
    let creds = Credentials::default();
    let link = LinkContext {
        name: "shop",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    let toolset = toolset(&link, &block).unwrap();
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "mongo_list_collections",
            "mongo_find",
            "mongo_aggregate",
            "mongo_count",
            "mongo_insert"
        ]
    );
    let insert = toolset.tools().last().unwrap().tool().annotations.clone();
    assert_eq!(insert.unwrap().destructive_hint, Some(false));

    let (spec, mut block) = link_spec(1);
    block.port = 70000;
    let link = LinkContext {
        spec: &spec,
        ..link
    };
    assert!(toolset_is_refused(&link, &block));
}

fn toolset_is_refused(link: &LinkContext<'_>, block: &MongodbBackend) -> bool {
    toolset(link, block).is_err()
}

#[test]
fn the_component_shows_where_without_credentials() {
    let (spec, _) = link_spec(27017);
    let creds = Credentials::new(std::collections::BTreeMap::from([(
        "password".to_owned(),
        "pw-secret".to_owned(),
    )]));
    let link = LinkContext {
        name: "shop",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    let c = component(&link);
    assert_eq!(c.link_type, "mongodb");
    assert_eq!(c.endpoint["host"], "127.0.0.1");
    assert_eq!(c.endpoint["port"], "27017");
    assert_eq!(c.endpoint["database"], "shop");
    assert_eq!(c.endpoint["replicaSet"], "rs0");
    assert!(!serde_json::to_string(&c).unwrap().contains("pw-secret"));
}
