//! The generated CRDs: checked-in YAML matches the types, every schema is structural, the CEL
//! rules are where the design promises them, and one full CRD is a reviewed snapshot.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn checked_in_yaml_matches_the_types() {
    for dir in ["config/crd", "charts/linkmcp/crds"] {
        for (file, crd) in linkmcp_api::crds::all() {
            let path = repo_root().join(dir).join(file);
            let expected = linkmcp_api::crds::to_yaml(&crd).unwrap();
            let actual = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{} is missing ({e}); run `make crds`", path.display()));
            assert!(
                actual == expected,
                "{dir}/{file} differs from what the types in crates/api generate; run `make crds` and commit the result"
            );
        }
    }
}

/// Walks a schema node and collects what makes it non-structural, as the API server
/// defines it: every node typed (or int-or-string / preserve-unknown-fields), no
/// `$ref`, no anyOf/oneOf/allOf/not at all (the derive never needs them), no
/// `additionalProperties` beside `properties`, and preserve-unknown-fields only where listed.
fn structural_problems(node: &Value, path: &str, allowed_preserve: &[&str], out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: schema is not an object"));
        return;
    };
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if preserve && !allowed_preserve.contains(&path) {
        out.push(format!(
            "{path}: x-kubernetes-preserve-unknown-fields is not expected here"
        ));
    }
    if !obj.contains_key("type") && !int_or_string && !preserve {
        out.push(format!("{path}: no type"));
    }
    for key in ["$ref", "anyOf", "oneOf", "allOf", "not"] {
        if obj.contains_key(key) {
            out.push(format!("{path}: uses {key}"));
        }
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, child) in props {
            structural_problems(child, &format!("{path}.{name}"), allowed_preserve, out);
        }
    }
    if let Some(items) = obj.get("items") {
        structural_problems(items, &format!("{path}[]"), allowed_preserve, out);
    }
    if let Some(additional @ Value::Object(_)) = obj.get("additionalProperties") {
        structural_problems(additional, &format!("{path}{{}}"), allowed_preserve, out);
    }
}

#[test]
fn every_schema_is_structural() {
    for (file, crd) in linkmcp_api::crds::all() {
        let mut problems = Vec::new();
        // No field preserves unknown content today; a new one must be added here on purpose.
        structural_problems(&schema_of(&crd), "", &[], &mut problems);
        assert!(
            problems.is_empty(),
            "{file} is not structural:\n{}",
            problems.join("\n")
        );
    }
}

/// The rules (by a distinctive fragment) found at a schema path such as `.spec.schedule`.
fn rules_at(schema: &Value, path: &str) -> Vec<String> {
    let mut node = schema;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        node = if let Some(list_part) = part.strip_suffix("[]") {
            &node["properties"][list_part]["items"]
        } else {
            &node["properties"][part]
        };
        assert!(!node.is_null(), "no schema at {path}");
    }
    node["x-kubernetes-validations"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["rule"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cel_rules_are_where_promised() {
    use kube::CustomResourceExt;
    use linkmcp_api::{Agent, AiTask, McpLink, McpServer};

    let link = schema_of(&McpLink::crd());
    assert!(
        rules_at(&link, ".spec")
            .iter()
            .any(|r| r.contains("filter(x, x).size() == 1"))
    );
    assert!(
        rules_at(&link, ".spec.serverRef.name")
            .iter()
            .any(|r| r.contains("[a-z0-9]"))
    );
    assert!(
        rules_at(&link, ".spec.toolPrefix")
            .iter()
            .any(|r| r.contains("matches"))
    );
    assert_eq!(
        link["properties"]["spec"]["properties"]["writeAccess"]["type"],
        "boolean"
    );

    let task = schema_of(&AiTask::crd());
    assert!(
        rules_at(&task, ".spec.schedule")
            .iter()
            .any(|r| r.contains("self == ''"))
    );
    assert!(
        rules_at(&task, ".spec.next")
            .iter()
            .any(|r| r.contains("self.all"))
    );
    assert!(
        rules_at(&task, "")
            .iter()
            .any(|r| r.contains("self.metadata.name"))
    );
    assert_eq!(
        task["properties"]["spec"]["properties"]["mode"]["enum"],
        serde_json::json!(["monitor", "act"])
    );

    let server = schema_of(&McpServer::crd());
    assert!(
        rules_at(&server, ".spec.auth")
            .iter()
            .any(|r| r.contains("allowUnauthenticated"))
    );
    let port = &server["properties"]["spec"]["properties"]["port"];
    assert_eq!(
        (port["minimum"].as_f64(), port["maximum"].as_f64()),
        (Some(1.0), Some(65535.0))
    );

    let agent = schema_of(&Agent::crd());
    assert!(
        rules_at(&agent, ".spec.serverRef.name")
            .iter()
            .any(|r| r.contains("[a-z0-9]"))
    );
    assert!(
        rules_at(&agent, ".spec.baseUrl")
            .iter()
            .any(|r| r.contains("https://"))
    );
}

#[test]
fn every_rule_compiles() {
    use kube::core::cel::CompiledSchema;
    fn errors(node: &CompiledSchema, path: &str, out: &mut Vec<String>) {
        out.extend(
            node.compilation_errors()
                .iter()
                .map(|e| format!("{path}: {e:?}")),
        );
        for (name, child) in &node.properties {
            errors(child, &format!("{path}.{name}"), out);
        }
        if let Some(items) = &node.items {
            errors(items, &format!("{path}[]"), out);
        }
        if let Some(additional) = &node.additional_properties {
            errors(additional, &format!("{path}{{}}"), out);
        }
    }
    for (file, crd) in linkmcp_api::crds::all() {
        let mut out = Vec::new();
        errors(
            &kube::core::cel::compile_schema(&schema_of(&crd)),
            "",
            &mut out,
        );
        assert!(
            out.is_empty(),
            "{file}: CEL rules that do not compile: {out:?}"
        );
    }
}

#[test]
fn conditions_are_map_lists_keyed_by_type() {
    for (file, crd) in linkmcp_api::crds::all() {
        let conditions = &schema_of(&crd)["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{file}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{file}"
        );
    }
}

#[test]
fn every_field_has_a_description() {
    fn walk(node: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(Value::Object(props)) = node.get("properties") {
            for (name, child) in props {
                let child_path = format!("{path}.{name}");
                let inherited = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                if !inherited && child.get("description").is_none() {
                    out.push(child_path.clone());
                }
                walk(child, &child_path, out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, &format!("{path}[]"), out);
        }
    }
    for (file, crd) in linkmcp_api::crds::all() {
        let mut missing = Vec::new();
        walk(&schema_of(&crd), "", &mut missing);
        assert!(
            missing.is_empty(),
            "{file}: fields without a description: {missing:?}"
        );
    }
}

#[test]
fn mcplink_crd_snapshot() {
    use kube::CustomResourceExt;
    insta::assert_snapshot!(linkmcp_api::crds::to_yaml(&linkmcp_api::McpLink::crd()).unwrap());
}
