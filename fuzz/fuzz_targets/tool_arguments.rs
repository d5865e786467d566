//! Arbitrary arguments for every tool of every toolset, with no backend behind them: the
//! toolsets are built from the sample links (`config/samples/links`, writes enabled) whose
//! hosts do not answer here. The first byte picks the tool, the rest is the JSON arguments.
//! A call may fail, never panic, and a failure always says why (an `isError` result with
//! text), as a model needs to correct itself.

#![no_main]

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use libfuzzer_sys::fuzz_target;
use linkmcp_api::McpLinkSpec;
use linkmcp_toolsets::{
    CallContext, Toolset,
    credentials::Credentials,
    link::{self, LinkContext, default_prefix},
};

/// How long one call may take: the sample hosts do not exist, so a call that gets past its
/// arguments only waits for a connection that never comes.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);

struct Tools {
    runtime: tokio::runtime::Runtime,
    /// Every tool name with its toolset.
    tools: Vec<(String, Arc<dyn Toolset>)>,
}

fn tools() -> &'static Tools {
    static TOOLS: std::sync::OnceLock<Tools> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/samples/links");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&samples)
            .expect("the sample links")
            .map(|entry| entry.expect("a sample").path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        let credentials = Credentials::new(BTreeMap::from(
            ["token", "username", "password", "accessKeyId", "secretAccessKey"]
                .map(|key| (key.to_owned(), "x".to_owned())),
        ));
        let mut tools = Vec::new();
        // Clients of some backends are made on the runtime (lazily, but inside it).
        let _entered = runtime.enter();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("reading a sample");
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("a YAML sample");
            let mut spec: McpLinkSpec =
                serde_yaml::from_value(doc["spec"].clone()).expect("an McpLink sample");
            spec.write_access = true;
            let Ok(backend) = spec.backend() else { continue };
            let context = LinkContext {
                name: "fuzz",
                namespace: "default",
                spec: &spec,
                credentials: &credentials,
            };
            let Ok(toolset) = link::build(&context, default_prefix(backend.link_type())) else {
                continue;
            };
            for tool in toolset.tools() {
                tools.push((tool.name().to_owned(), toolset.clone()));
            }
        }
        drop(_entered);
        assert!(tools.len() > 50, "only {} tools built from the samples", tools.len());
        Tools { runtime, tools }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else { return };
    let Ok(serde_json::Value::Object(args)) = serde_json::from_slice(json) else { return };
    let tools = tools();
    let (name, toolset) = &tools.tools[usize::from(pick) % tools.tools.len()];
    let ctx = CallContext::new("fuzz").with_timeout(CALL_TIMEOUT);
    // The timer is made inside the runtime: a Sleep needs its reactor from the start.
    let called = tools.runtime.block_on(async {
        tokio::time::timeout(CALL_TIMEOUT, toolset.call(name, args, &ctx)).await
    });
    let Ok(result) = called else { return };
    if result.is_error == Some(true) {
        let said = serde_json::to_string(&result.content).expect("content serialises");
        assert!(
            !result.content.is_empty() && said.len() > 20,
            "{name} failed without saying why: {said}"
        );
    }
});
