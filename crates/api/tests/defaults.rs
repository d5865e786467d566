//! Every `default` in every generated schema is valid against the schema it defaults — types,
//! enums, bounds, unknown fields and the CEL rules — as the API server checks when a CRD is
//! applied. A default that breaks its own rule makes the whole CRD unapplicable (an McpServer
//! `auth` defaulted to "admit no one" once did), so this test keeps that class of bug out.
//!
//! Like the API server, the check first applies the defaults nested inside the defaulted
//! value (a default object gets its fields' own defaults), then validates the result.
#![allow(clippy::unwrap_used)]

use kube::CustomResourceExt;
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde_json::{Value, json};

mod support;
use support::unknown_fields;

fn schemas() -> Vec<(&'static str, Value)> {
    [
        ("McpServer", McpServer::crd()),
        ("McpLink", McpLink::crd()),
        ("Agent", Agent::crd()),
        ("AiTask", AiTask::crd()),
    ]
    .into_iter()
    .map(|(kind, crd)| {
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .unwrap()
            .open_api_v3_schema
            .unwrap();
        (kind, serde_json::to_value(schema).unwrap())
    })
    .collect()
}

/// `value` with the defaults of `schema`'s properties filled in where they are missing, down
/// the tree (structural defaulting, as the API server does before validating a default).
fn with_nested_defaults(schema: &Value, value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, prop) in props {
                    if let (false, Some(default)) = (map.contains_key(name), prop.get("default")) {
                        map.insert(name.clone(), default.clone());
                    }
                }
                for (name, child) in map.iter_mut() {
                    if let Some(prop) = props.get(name) {
                        *child = with_nested_defaults(prop, child.take());
                    }
                }
            }
            Value::Object(map)
        }
        Value::Array(items) => match schema.get("items") {
            Some(item_schema) => Value::Array(
                items
                    .into_iter()
                    .map(|item| with_nested_defaults(item_schema, item))
                    .collect(),
            ),
            None => Value::Array(items),
        },
        other => other,
    }
}

/// What the API server would refuse in `value` as the value of a node with `schema`.
fn problems(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    // The node's own schema, without its `default` (not part of what a value must satisfy).
    let mut node = schema.clone();
    node.as_object_mut().unwrap().remove("default");
    let validator = jsonschema::draft4::new(&node).unwrap();
    out.extend(
        validator
            .iter_errors(value)
            .map(|e| format!("{}: {e}", e.instance_path())),
    );
    unknown_fields(schema, value, "", &mut out);
    if let Err(errors) = kube::core::cel::Validator::new().validate(schema, value, None) {
        out.extend(errors.into_vec().into_iter().map(|e| e.to_string()));
    }
    out
}

/// Every default under `node`, each with the problems the API server would find in it.
fn check_defaults(node: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(default) = node.get("default") {
        let value = with_nested_defaults(node, default.clone());
        for problem in problems(node, &value) {
            out.push(format!("{path}: default {default}: {problem}"));
        }
    }
    if let Some(Value::Object(props)) = node.get("properties") {
        for (name, child) in props {
            check_defaults(child, &format!("{path}.{name}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        check_defaults(items, &format!("{path}[]"), out);
    }
    if let Some(additional @ Value::Object(_)) = node.get("additionalProperties") {
        check_defaults(additional, &format!("{path}{{}}"), out);
    }
}

fn count_defaults(node: &Value) -> usize {
    let own = usize::from(node.get("default").is_some());
    let props: usize = node
        .get("properties")
        .and_then(Value::as_object)
        .map_or(0, |p| p.values().map(count_defaults).sum());
    let items = node.get("items").map_or(0, count_defaults);
    own + props + items
}

#[test]
fn every_default_is_valid_against_its_schema() {
    let mut failures = Vec::new();
    let mut defaults = 0;
    for (kind, schema) in schemas() {
        defaults += count_defaults(&schema);
        check_defaults(&schema, kind, &mut failures);
    }
    // The CRDs default dozens of fields; a walk that finds none walked nothing.
    assert!(defaults >= 40, "only {defaults} defaults found");
    assert!(
        failures.is_empty(),
        "defaults the API server would refuse when the CRD is applied:\n{}",
        failures.join("\n")
    );
}

/// The check refuses what the API server refused: a default that breaks the node's own CEL
/// rule (McpServer `auth` as it once was), a default out of bounds or outside its enum, and a
/// nested default that only fails once the nested defaults are applied.
#[test]
fn the_check_catches_defaults_the_api_server_refuses() {
    let auth = json!({
        "type": "object",
        "default": {"allowUnauthenticated": false},
        "properties": {
            "allowUnauthenticated": {"type": "boolean", "default": false},
            "apiKeys": {"type": "object", "properties": {"secretName": {"type": "string"}}},
        },
        "x-kubernetes-validations": [{
            "rule": "has(self.apiKeys) || self.allowUnauthenticated",
            "message": "auth must configure apiKeys or set allowUnauthenticated: true",
        }],
    });
    let mut out = Vec::new();
    check_defaults(&auth, "auth", &mut out);
    assert!(
        out.iter()
            .any(|p| p.contains("auth must configure apiKeys")),
        "{out:?}"
    );

    for (schema, expected) in [
        (
            json!({"type": "integer", "minimum": 1, "maximum": 10, "default": 0}),
            "minimum",
        ),
        (
            json!({"type": "string", "enum": ["a", "b"], "default": "c"}),
            "\"c\"",
        ),
        (
            json!({"type": "object", "default": {"x": 1}, "properties": {"y": {"type": "string"}}}),
            "unknown field .x",
        ),
        (
            json!({
                "type": "object", "default": {},
                "properties": {"port": {"type": "integer", "maximum": 65535, "default": 70000}},
            }),
            "maximum",
        ),
    ] {
        let mut out = Vec::new();
        check_defaults(&schema, "x", &mut out);
        assert!(
            out.iter().any(|p| p.contains(expected)),
            "{schema}: expected a problem containing {expected:?}, got {out:?}"
        );
    }
}
