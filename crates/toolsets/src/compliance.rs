//! The compliance harness every backend's tests call, so each toolset is held to the same
//! rules (DESIGN §5) by the same checks: annotations on every tool, write tools gated by
//! writeAccess, bad arguments named in an isError result, output capped and marked, resources
//! and prompts described for a model, and no credential value in any text a client could see —
//! error paths included.
//!
//! The checks panic with a message saying which tool broke which rule; they are meant for
//! tests, and live here (not under `cfg(test)`) so every backend's tests can use them.

use std::collections::HashSet;
use std::sync::Arc;

use linkmcp_api::link::ToolFilter;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::Value;

use crate::credentials::Credentials;
use crate::link::Governed;
use crate::{Access, CallContext, Toolset};

/// Calls one toolset's tools as a backend's tests do, keeping every result so that a last
/// [`Caller::no_secrets`] checks all of them, error paths included.
pub struct Caller {
    /// The toolset called, for what a test does beside tool calls (resources, prompts).
    pub toolset: Arc<dyn Toolset>,
    /// The context of every call; a test may replace it (a shorter timeout).
    pub ctx: CallContext,
    results: Vec<CallToolResult>,
}

impl Caller {
    /// A caller of `toolset` with the default call context (identity `test`).
    pub fn new(toolset: Arc<dyn Toolset>) -> Self {
        Self {
            toolset,
            ctx: CallContext::new("test"),
            results: Vec::new(),
        }
    }

    /// Calls `tool` with `args` (a JSON object, or null for none) and keeps the result.
    pub async fn call(&mut self, tool: &str, args: Value) -> CallToolResult {
        let args = match args {
            Value::Object(args) => args,
            Value::Null => JsonObject::new(),
            other => panic!("the arguments of {tool} must be a JSON object, not {other}"),
        };
        let result = self.toolset.call(tool, args, &self.ctx).await;
        self.results.push(result.clone());
        result
    }

    /// Calls `tool`, which must succeed; returns its structured content.
    pub async fn ok(&mut self, tool: &str, args: Value) -> Value {
        let result = self.call(tool, args).await;
        assert_ne!(
            result.is_error,
            Some(true),
            "{tool} failed: {}",
            result_text(&result)
        );
        result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool} returned no structured content"))
    }

    /// Calls `tool`, which must fail; returns the error text.
    pub async fn err(&mut self, tool: &str, args: Value) -> String {
        let result = self.call(tool, args).await;
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{tool} succeeded: {text}");
        text
    }

    /// Checks that no result so far carries a value of `credentials`.
    pub fn no_secrets(&self, credentials: &Credentials) {
        assert!(!self.results.is_empty(), "no call was made");
        check_no_secrets(&self.results, credentials);
    }
}

/// All the text a client would see of a result: text content and structured content.
pub fn result_text(result: &CallToolResult) -> String {
    let mut text: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if let Some(structured) = &result.structured_content {
        text.push(structured.to_string());
    }
    text.join("\n")
}

/// Every tool carries all four MCP hints, consistent with its access.
pub fn check_annotations(toolset: &dyn Toolset) {
    assert!(!toolset.tools().is_empty(), "the toolset declares no tools");
    for def in toolset.tools() {
        let name = def.name();
        let a = def
            .tool()
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no annotations"));
        for (hint, value) in [
            ("readOnlyHint", a.read_only_hint),
            ("destructiveHint", a.destructive_hint),
            ("idempotentHint", a.idempotent_hint),
            ("openWorldHint", a.open_world_hint),
        ] {
            assert!(value.is_some(), "{name}: {hint} is not set");
        }
        assert_eq!(
            a.read_only_hint,
            Some(def.access() == Access::Read),
            "{name}: readOnlyHint disagrees with its access"
        );
        assert!(
            def.tool()
                .description
                .as_ref()
                .is_some_and(|d| d.len() >= 20),
            "{name}: a model needs a real description"
        );
    }
}

/// Without writeAccess no write tool is listed and none can be called by name; with it, every
/// write tool is listed.
pub async fn check_write_gating(backend: Arc<dyn Toolset>, default_prefix: &str) {
    let writes: Vec<String> = backend
        .tools()
        .iter()
        .filter(|d| d.access() == Access::Write)
        .map(|d| d.name().to_owned())
        .collect();
    let filter = ToolFilter::default();
    let read_only = Governed::new(
        backend.clone(),
        default_prefix,
        default_prefix,
        &filter,
        false,
    )
    .unwrap_or_else(|e| panic!("governing the toolset failed: {e}"));
    for def in read_only.tools() {
        assert_eq!(
            def.access(),
            Access::Read,
            "{} is listed without writeAccess",
            def.name()
        );
    }
    let ctx = CallContext::new("compliance");
    for name in &writes {
        let result = read_only.call(name, JsonObject::new(), &ctx).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{name} ran without writeAccess"
        );
    }
    let writable = Governed::new(backend, default_prefix, default_prefix, &filter, true)
        .unwrap_or_else(|e| panic!("governing the toolset failed: {e}"));
    for name in &writes {
        assert!(
            writable.tools().iter().any(|d| d.name() == name),
            "{name} is missing with writeAccess"
        );
    }
}

/// Arguments that break the tool's schema: a wrong type for its first property, or an
/// unknown field for a tool without properties. Returns the arguments and the field named.
fn bad_arguments(schema: &JsonObject) -> (JsonObject, String) {
    let properties = schema.get("properties").and_then(Value::as_object);
    // A required property first: an optional one may accept null-like input differently.
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let first = properties.and_then(|p| {
        p.iter()
            .find(|(name, _)| required.contains(&name.as_str()))
            .or_else(|| p.iter().next())
    });
    let mut args = JsonObject::new();
    match first {
        Some((field, property)) => {
            // `type` is "string" or, for an optional field, ["string", "null"].
            let is_string = match property.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let wrong = if is_string {
                Value::from(12345)
            } else {
                Value::from("not-the-right-type")
            };
            args.insert(field.clone(), wrong);
            (args, field.clone())
        }
        None => {
            args.insert("unexpected_field".into(), Value::from(1));
            (args, "unexpected_field".into())
        }
    }
}

/// Every tool answers arguments of the wrong shape with an isError result naming the field,
/// without touching the backend.
pub async fn check_bad_arguments(toolset: &dyn Toolset) {
    let ctx = CallContext::new("compliance");
    for def in toolset.tools() {
        let (args, field) = bad_arguments(&def.tool().input_schema);
        let result = toolset.call(def.name(), args, &ctx).await;
        let text = result_text(&result);
        assert_eq!(
            result.is_error,
            Some(true),
            "{}: bad arguments were accepted: {text}",
            def.name()
        );
        assert!(
            text.contains(&field),
            "{}: the error does not name `{field}`: {text}",
            def.name()
        );
    }
}

/// A call that produces more than `max_bytes` of text is cut to the cap and says so.
pub async fn check_output_capped(
    toolset: &dyn Toolset,
    tool: &str,
    args: JsonObject,
    max_bytes: usize,
) {
    let ctx = CallContext::new("compliance").with_max_output_bytes(max_bytes);
    let result = toolset.call(tool, args, &ctx).await;
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool}: the capped call failed: {text}"
    );
    assert!(
        text.len() <= max_bytes + 200,
        "{tool}: {} bytes of text exceed the cap of {max_bytes}",
        text.len()
    );
    assert!(
        text.contains("truncated"),
        "{tool}: the cut output does not say it was truncated"
    );
}

/// Every resource, resource template and prompt is described for a model and listed once; a
/// template also names its MIME type, and every prompt argument is described.
pub fn check_resources_and_prompts(toolset: &dyn Toolset) {
    let described = |d: Option<&String>| d.is_some_and(|d| d.len() >= 20);
    let mut uris = HashSet::new();
    for resource in toolset.resources() {
        let uri = &resource.uri;
        assert!(uris.insert(uri.clone()), "resource {uri} is listed twice");
        assert!(
            described(resource.description.as_ref()),
            "resource {uri}: a model needs a real description"
        );
    }
    for def in toolset.resource_templates() {
        let template = def.template();
        let uri = &template.uri_template;
        assert!(uris.insert(uri.clone()), "template {uri} is listed twice");
        assert!(
            described(template.description.as_ref()),
            "template {uri}: a model needs a real description"
        );
        assert!(template.mime_type.is_some(), "template {uri}: no mimeType");
    }
    let mut names = HashSet::new();
    for prompt in toolset.prompts() {
        let name = &prompt.name;
        assert!(names.insert(name.clone()), "prompt {name} is listed twice");
        assert!(
            described(prompt.description.as_ref()),
            "prompt {name}: a model needs a real description"
        );
        for argument in prompt.arguments.as_deref().unwrap_or_default() {
            assert!(
                argument.description.as_ref().is_some_and(|d| !d.is_empty()),
                "prompt {name}: argument `{}` is not described",
                argument.name
            );
        }
    }
}

/// No credential value appears in any of the results.
pub fn check_no_secrets(results: &[CallToolResult], credentials: &Credentials) {
    for result in results {
        let text = result_text(result);
        for secret in credentials.values().filter(|v| v.len() >= 4) {
            assert!(
                !text.contains(secret),
                "a credential value appears in a result: {text}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::future::BoxFuture;
    use std::collections::BTreeMap;

    use super::*;
    use crate::{NoArgs, ToolDef, output, parse_args};

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Query {
        /// SQL text.
        sql: String,
    }

    /// A well-behaved toolset: the harness must accept it.
    struct Good(Vec<ToolDef>);

    impl Toolset for Good {
        fn tools(&self) -> &[ToolDef] {
            &self.0
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            args: JsonObject,
            ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async move {
                if name == "x_query" {
                    if let Err(e) = parse_args::<Query>(args) {
                        return e;
                    }
                    let (text, _) = output::cap_text(&"row\n".repeat(10_000), ctx.max_output_bytes);
                    return output::ok_text(text);
                }
                match parse_args::<NoArgs>(args) {
                    Ok(_) => output::ok_text("done"),
                    Err(e) => e,
                }
            })
        }
    }

    fn good() -> Arc<dyn Toolset> {
        Arc::new(Good(vec![
            ToolDef::read::<Query>("x_query", "Run a read-only query and return rows.").unwrap(),
            ToolDef::write::<NoArgs>("x_write", "Write something to the backend store.").unwrap(),
        ]))
    }

    #[tokio::test]
    async fn a_compliant_toolset_passes() {
        let toolset = good();
        check_annotations(toolset.as_ref());
        check_write_gating(toolset.clone(), "x").await;
        check_bad_arguments(toolset.as_ref()).await;
        check_resources_and_prompts(toolset.as_ref());
        check_output_capped(
            toolset.as_ref(),
            "x_query",
            serde_json::from_str(r#"{"sql":"select"}"#).unwrap(),
            1024,
        )
        .await;
        let creds = Credentials::new(BTreeMap::from([("password".into(), "s3cr3t-value".into())]));
        check_no_secrets(&[output::ok_text("fine")], &creds);
    }

    #[test]
    #[should_panic(expected = "a credential value appears")]
    fn a_leaked_secret_is_caught() {
        let creds = Credentials::new(BTreeMap::from([("password".into(), "s3cr3t-value".into())]));
        check_no_secrets(&[output::error("login failed for s3cr3t-value")], &creds);
    }

    #[test]
    #[should_panic(expected = "prompt x_explore: argument `table` is not described")]
    fn an_undescribed_prompt_argument_is_caught() {
        use crate::prompt::{Prompt, PromptArgument};
        struct Vague(Vec<ToolDef>, Vec<Prompt>);
        impl Toolset for Vague {
            fn tools(&self) -> &[ToolDef] {
                &self.0
            }
            fn call<'a>(
                &'a self,
                _: &'a str,
                _: JsonObject,
                _: &'a CallContext,
            ) -> BoxFuture<'a, CallToolResult> {
                Box::pin(async { output::ok_text("done") })
            }
            fn prompts(&self) -> &[Prompt] {
                &self.1
            }
        }
        let vague = Vague(
            Vec::new(),
            vec![Prompt::new(
                "x_explore",
                Some("Explore one table of the store, step by step."),
                Some(vec![PromptArgument::new("table").with_required(true)]),
            )],
        );
        check_resources_and_prompts(&vague);
    }

    #[tokio::test]
    #[should_panic(expected = "exceed the cap")]
    async fn an_uncapped_result_is_caught() {
        struct Loud(Vec<ToolDef>);
        impl Toolset for Loud {
            fn tools(&self) -> &[ToolDef] {
                &self.0
            }
            fn call<'a>(
                &'a self,
                _: &'a str,
                _: JsonObject,
                _: &'a CallContext,
            ) -> BoxFuture<'a, CallToolResult> {
                Box::pin(async { output::ok_text("x".repeat(100_000)) })
            }
        }
        let loud = Loud(vec![
            ToolDef::read::<NoArgs>("x_dump", "Dump everything in the store.").unwrap(),
        ]);
        check_output_capped(&loud, "x_dump", JsonObject::new(), 1024).await;
    }
}
