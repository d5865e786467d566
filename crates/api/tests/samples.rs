//! Every sample in config/samples is valid against the generated CRD schemas — types,
//! bounds, enums, unknown fields and the CEL rules, evaluated as the API server would — and
//! the samples cover every kind and every link type. Broken variants prove the checks bite.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::CustomResourceExt;
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use serde::Deserialize;
use serde_json::Value;

mod support;
use support::unknown_fields;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/samples")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            // A kustomization lists the samples; it is not one.
            && path.file_name().is_some_and(|n| n != "kustomization.yaml")
        {
            out.push(path);
        }
    }
}

/// Every document of every sample file, with the file it came from.
fn sample_documents() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    yaml_files(&samples_dir(), &mut files);
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if !value.is_null() {
                docs.push((file.clone(), serde_json::to_value(value).unwrap()));
            }
        }
    }
    docs
}

fn parse(yaml: &str) -> Value {
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(yaml).unwrap()).unwrap()
}

fn crd_schema(kind: &str) -> Option<Value> {
    let crd = match kind {
        "McpServer" => McpServer::crd(),
        "McpLink" => McpLink::crd(),
        "Agent" => Agent::crd(),
        "AiTask" => AiTask::crd(),
        _ => return None,
    };
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    Some(serde_json::to_value(schema).unwrap())
}

/// What the API server would refuse in this object, as readable messages.
fn problems(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    if api_version == "v1" && kind == "Secret" {
        return match serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(object.clone()) {
            Ok(_) => vec![],
            Err(e) => vec![format!("invalid Secret: {e}")],
        };
    }
    if api_version != "linkmcp.io/v1alpha1" {
        return vec![format!("unexpected apiVersion {api_version:?}")];
    }
    let Some(schema) = crd_schema(kind) else {
        return vec![format!("unknown kind {kind:?}")];
    };
    let mut out = Vec::new();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    out.extend(
        validator
            .iter_errors(object)
            .map(|e| format!("{}: {e}", e.instance_path())),
    );
    unknown_fields(&schema, object, "", &mut out);
    if let Err(errors) = kube::core::cel::Validator::new().validate(&schema, object, None) {
        out.extend(errors.into_vec().into_iter().map(|e| e.to_string()));
    }
    let typed = match kind {
        "McpServer" => serde_json::from_value::<McpServer>(object.clone()).err(),
        "McpLink" => serde_json::from_value::<McpLink>(object.clone()).err(),
        "Agent" => serde_json::from_value::<Agent>(object.clone()).err(),
        _ => serde_json::from_value::<AiTask>(object.clone()).err(),
    };
    out.extend(typed.map(|e| format!("does not parse as {kind}: {e}")));
    out
}

#[test]
fn every_sample_is_valid() {
    let docs = sample_documents();
    assert!(
        docs.len() >= 20,
        "expected the full sample set, found {} documents",
        docs.len()
    );
    let mut failures = Vec::new();
    for (file, doc) in &docs {
        for problem in problems(doc) {
            failures.push(format!("{}: {problem}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid samples:\n{}",
        failures.join("\n")
    );
}

#[test]
fn samples_cover_every_kind_and_link_type() {
    let docs = sample_documents();
    let kinds: BTreeSet<&str> = docs
        .iter()
        .filter_map(|(_, d)| d["kind"].as_str())
        .collect();
    for kind in ["McpServer", "McpLink", "Agent", "AiTask"] {
        assert!(kinds.contains(kind), "no sample of {kind}");
    }
    let link_types: BTreeSet<&'static str> = docs
        .iter()
        .filter(|(file, d)| d["kind"] == "McpLink" && file.parent().unwrap().ends_with("links"))
        .map(|(_, d)| {
            let link: McpLink = serde_json::from_value(d.clone()).unwrap();
            link.spec.backend().unwrap().link_type().as_str()
        })
        .collect();
    for t in linkmcp_api::LinkType::ALL {
        assert!(
            link_types.contains(t.as_str()),
            "config/samples/links has no {t} link"
        );
    }
}

#[test]
fn local_stack_is_complete() {
    let local: Vec<Value> = sample_documents()
        .into_iter()
        .filter(|(file, _)| file.parent().unwrap().ends_with("local"))
        .map(|(_, d)| d)
        .collect();
    let server = local
        .iter()
        .find(|d| d["kind"] == "McpServer")
        .expect("a local McpServer");
    assert_eq!(server["spec"]["auth"]["allowUnauthenticated"], true);
    let links: Vec<McpLink> = local
        .iter()
        .filter(|d| d["kind"] == "McpLink")
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .collect();
    assert!(links.iter().any(|l| {
        l.spec
            .postgres
            .as_ref()
            .is_some_and(|p| p.host == "127.0.0.1" && p.port == 5432)
    }));
    assert!(links.iter().any(|l| {
        l.spec
            .valkey
            .as_ref()
            .is_some_and(|v| v.host == "127.0.0.1" && v.port == 6379)
    }));
    assert!(local.iter().any(|d| d["kind"] == "Agent"));
    assert!(local.iter().any(|d| d["kind"] == "AiTask"));
    // Every Secret a local object references is in the folder.
    let secrets: BTreeSet<&str> = local
        .iter()
        .filter(|d| d["kind"] == "Secret")
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    for link in &links {
        if let Some(creds) = &link.spec.credentials_secret_ref {
            assert!(
                secrets.contains(creds.name.as_str()),
                "Secret {} is not in local/",
                creds.name
            );
        }
    }
}

const LINK: &str = r#"
apiVersion: linkmcp.io/v1alpha1
kind: McpLink
metadata: {name: orders, namespace: shop}
spec:
  serverRef: {name: data}
  postgres: {host: db, database: orders}
"#;

const TASK: &str = r#"
apiVersion: linkmcp.io/v1alpha1
kind: AiTask
metadata: {name: check, namespace: shop}
spec:
  serverRef: {name: data}
  description: Check the orders database.
  schedule: "*/5 * * * *"
"#;

fn with(base: &str, pointer: &str, value: Value) -> Value {
    let mut doc = parse(base);
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
    doc
}

fn assert_refused(doc: &Value, expected: &str) {
    let found = problems(doc);
    assert!(
        found.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got {found:?}"
    );
}

#[test]
fn the_base_fixtures_are_valid() {
    assert_eq!(problems(&parse(LINK)), Vec::<String>::new());
    assert_eq!(problems(&parse(TASK)), Vec::<String>::new());
}

#[test]
fn a_link_with_two_backend_blocks_is_refused() {
    let doc = with(LINK, "/spec/valkey", serde_json::json!({"host": "cache"}));
    assert_refused(&doc, "exactly one backend block must be set");
}

#[test]
fn a_link_with_no_backend_block_is_refused() {
    let mut doc = parse(LINK);
    doc["spec"].as_object_mut().unwrap().remove("postgres");
    assert_refused(&doc, "exactly one backend block must be set");
}

#[test]
fn invalid_cron_schedules_are_refused() {
    for schedule in [
        "every day",
        "* * * *",
        "* * * * * *",
        "*/5 * * * *;rm",
        "0 25h * * *",
    ] {
        let doc = with(TASK, "/spec/schedule", Value::String(schedule.into()));
        assert_refused(&doc, "schedule must be empty");
    }
    for schedule in ["", "@daily", "0 7 * * 1-5", "*/15 0-6 1,15 JAN-MAR MON-FRI"] {
        let doc = with(TASK, "/spec/schedule", Value::String(schedule.into()));
        assert_eq!(
            problems(&doc),
            Vec::<String>::new(),
            "{schedule:?} should be accepted"
        );
    }
}

#[test]
fn mode_is_monitor_or_act() {
    assert_refused(&with(TASK, "/spec/mode", "write".into()), "mode");
}

#[test]
fn a_task_cannot_chain_to_itself() {
    assert_refused(
        &with(TASK, "/spec/next", serde_json::json!(["check"])),
        "must not name the task itself",
    );
}

#[test]
fn write_access_must_be_a_boolean() {
    assert_refused(
        &with(LINK, "/spec/writeAccess", "yes".into()),
        "writeAccess",
    );
}

#[test]
fn ports_must_be_in_range() {
    assert_refused(&with(LINK, "/spec/postgres/port", 70000.into()), "port");
}

#[test]
fn server_refs_must_be_dns_labels() {
    assert_refused(
        &with(LINK, "/spec/serverRef/name", "Data_Server".into()),
        "must be a DNS label",
    );
}

#[test]
fn unknown_fields_are_refused() {
    assert_refused(
        &with(LINK, "/spec/postgres/password", "hunter2".into()),
        "unknown field .spec.postgres.password",
    );
}

#[test]
fn a_server_without_any_auth_is_refused() {
    let server = parse(
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s, namespace: n}\nspec: {}\n",
    );
    // Missing: the message says what to write (not the API server's bare "Required value").
    assert_refused(
        &server,
        "spec.auth is required: set auth.apiKeys.secretName",
    );
    // Present but naming no method.
    let empty = with(
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s, namespace: n}\nspec: {}\n",
        "/spec/auth",
        serde_json::json!({}),
    );
    assert_refused(&empty, "auth must configure apiKeys or oidc");
    let open = with(
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s, namespace: n}\nspec: {}\n",
        "/spec/auth",
        serde_json::json!({"allowUnauthenticated": true}),
    );
    assert_eq!(problems(&open), Vec::<String>::new());
}
