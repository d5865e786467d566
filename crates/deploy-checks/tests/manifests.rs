//! Every kustomization under config/ renders, and every object it renders is a valid typed
//! Kubernetes or linkmcp object with no unknown field. The Helm chart's renderings get the same
//! check (ignored by default: Helm is fetched by scripts/chart-check.sh, which runs them with
//! LINKMCP_CHART_RENDERED pointing at its `helm template` outputs).

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use linkmcp_deploy_checks::{KUSTOMIZATIONS, describe, documents, kustomize, repo_root, validate};
use serde_json::Value;

fn rendered_kustomization(name: &str) -> Vec<Value> {
    let dir = repo_root().join("config").join(name);
    let yaml = kustomize(&dir).unwrap_or_else(|e| panic!("{e}"));
    documents(&yaml).unwrap_or_else(|e| panic!("config/{name}: {e}"))
}

fn kinds(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or("?").to_owned();
        *count.entry(kind).or_default() += 1;
    }
    count
}

#[test]
fn every_kustomization_renders_valid_objects() {
    let mut failures = Vec::new();
    for name in KUSTOMIZATIONS {
        let objects = rendered_kustomization(name);
        assert!(!objects.is_empty(), "config/{name} renders nothing");
        for object in &objects {
            if let Err(e) = validate(object) {
                failures.push(format!("config/{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn config_default_is_the_whole_operator_in_its_namespace() {
    let objects = rendered_kustomization("default");
    let count = kinds(&objects);
    for (kind, n) in [
        ("CustomResourceDefinition", 4),
        ("Namespace", 1),
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("Deployment", 1),
        ("Service", 1),
    ] {
        assert_eq!(count.get(kind).copied(), Some(n), "{kind} in {count:?}");
    }
    for object in &objects {
        let namespaced = !matches!(
            object["kind"].as_str(),
            Some("CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding")
        );
        if namespaced {
            assert_eq!(
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str),
                Some("linkmcp-system"),
                "{}",
                describe(object)
            );
        }
    }
    let binding = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRoleBinding")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        binding.pointer("/subjects/0/namespace"),
        Some(&Value::from("linkmcp-system"))
    );
}

#[test]
fn config_crd_lists_every_generated_crd() {
    let objects = rendered_kustomization("crd");
    let mut listed: Vec<String> = objects
        .iter()
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("config/crd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| f.starts_with("linkmcp.io_") && f.ends_with(".yaml"))
        .map(|f| {
            let plural = f
                .trim_start_matches("linkmcp.io_")
                .trim_end_matches(".yaml");
            format!("{plural}.linkmcp.io")
        })
        .collect();
    files.sort();
    assert_eq!(listed, files);
}

#[test]
fn samples_cover_the_four_kinds() {
    let count = kinds(&rendered_kustomization("samples"));
    for kind in ["McpServer", "McpLink", "Agent", "AiTask"] {
        assert!(count.contains_key(kind), "{kind} missing from {count:?}");
    }
}

fn chart_renderings() -> Vec<(PathBuf, Vec<Value>)> {
    let dir = std::env::var_os("LINKMCP_CHART_RENDERED").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "LINKMCP_CHART_RENDERED is not set: run scripts/chart-check.sh, which renders the chart \
             with Helm and runs these tests"
        )
    });
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let objects = documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((path, objects));
    }
    assert!(!out.is_empty(), "no renderings in {}", dir.display());
    out
}

#[test]
#[ignore = "needs the Helm renderings of scripts/chart-check.sh"]
fn chart_renders_valid_objects() {
    let mut failures = Vec::new();
    for (path, objects) in chart_renderings() {
        assert!(!objects.is_empty(), "{} is empty", path.display());
        for object in &objects {
            if let Err(e) = validate(object) {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn rules(objects: &[Value]) -> Vec<PolicyRule> {
    let role = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRole")
        .cloned()
        .unwrap_or_else(|| panic!("no ClusterRole rendered"));
    let role: ClusterRole = serde_json::from_value(role).unwrap_or_else(|e| panic!("{e}"));
    role.rules.unwrap_or_default()
}

#[test]
#[ignore = "needs the Helm renderings of scripts/chart-check.sh"]
fn chart_and_kustomize_grant_the_same_rules() {
    let kustomize_rules = rules(&rendered_kustomization("rbac"));
    let (path, defaults) = chart_renderings()
        .into_iter()
        .find(|(p, _)| p.file_name().is_some_and(|f| f == "defaults.yaml"))
        .unwrap_or_else(|| panic!("no defaults.yaml among the chart renderings"));
    assert_eq!(
        rules(&defaults),
        kustomize_rules,
        "{} and config/rbac/role.yaml differ",
        path.display()
    );
}
