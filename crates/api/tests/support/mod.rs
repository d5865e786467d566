//! What the API server checks of a value against a CRD schema, shared by the sample and the
//! schema-default tests.
#![allow(dead_code)]

use serde_json::Value;

/// Fields the schema does not declare (kubectl's strict field validation refuses them).
pub fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if let Some(child_schema) = props.and_then(|p| p.get(key)) {
                    unknown_fields(child_schema, child, &child_path, out);
                } else if let Some(additional @ Value::Object(_)) = additional {
                    unknown_fields(additional, child, &child_path, out);
                } else if path == ".metadata"
                    || (path.is_empty()
                        && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                    || schema.get("x-kubernetes-preserve-unknown-fields")
                        == Some(&Value::Bool(true))
                {
                    // The API server itself validates apiVersion, kind and ObjectMeta.
                } else {
                    out.push(format!("unknown field {child_path}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_fields(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}
