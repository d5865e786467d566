//! The suite's fixtures that talk back to the client during a call: progress, log messages,
//! elicitation, sampling, roots, and the 2026-07-28 input requests (SEP-2322).
//!
//! They use the call context's [`Client`](linkmcp_toolsets::Client) exactly as a link's
//! toolset does; whether a question goes out as a request in the session or comes back as an
//! `InputRequiredResult` is the server's business, not theirs.

// Roots are deprecated by SEP-2577 in rmcp, yet part of the revisions the suite checks.
#![allow(deprecated)]

use std::time::Duration;

use futures::future::BoxFuture;
use linkmcp_toolsets::{
    CallContext, ClientError, LogLevel, NoArgs, ToolDef, Toolset, output, parse_args,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptError, PromptMessage},
    toolset::ToolDefError,
};
use rmcp::model::{
    CallToolResult, CreateMessageRequestParams, ElicitationSchema, JsonObject, Role,
    SamplingMessage,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// The pause between the steps of the progress and logging fixtures.
const STEP: Duration = Duration::from_millis(50);

#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the client's model.
    prompt: String,
}

#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

/// The fixtures; see the module docs.
pub struct TalkBack {
    defs: Vec<ToolDef>,
    prompts: Vec<Prompt>,
}

impl TalkBack {
    pub fn new() -> Result<Self, ToolDefError> {
        let plain = |name: &'static str, description: &'static str| {
            ToolDef::read::<NoArgs>(name, description).map(|d| d.open_world(false))
        };
        let defs = vec![
            plain(
                "test_tool_with_logging",
                "Send three info log messages during the call.",
            )?,
            plain(
                "test_tool_with_progress",
                "Report progress 0, 50 and 100 of 100.",
            )?,
            ToolDef::read::<SamplingArgs>("test_sampling", "Ask the client's model.")?
                .open_world(false),
            ToolDef::read::<ElicitationArgs>("test_elicitation", "Ask the user for details.")?
                .open_world(false),
            plain(
                "test_elicitation_sep1034_defaults",
                "Elicit a form whose fields have defaults.",
            )?,
            plain(
                "test_elicitation_sep1330_enums",
                "Elicit a form with every enum variant.",
            )?,
            plain(
                "test_missing_capability",
                "Needs sampling: refused when the client lacks it.",
            )?,
            plain(
                "test_streaming_elicitation",
                "Report progress, then ask the user.",
            )?,
            plain(
                "test_logging_tool",
                "Log at info: sent only when the request sets a log level.",
            )?,
            plain(
                "test_input_required_result_elicitation",
                "Ask the user's name.",
            )?,
            plain(
                "test_input_required_result_sampling",
                "Ask the client's model a question.",
            )?,
            plain(
                "test_input_required_result_list_roots",
                "Ask for the client's roots.",
            )?,
            plain(
                "test_input_required_result_request_state",
                "Ask for a confirmation carried over rounds.",
            )?,
            plain(
                "test_input_required_result_multi_round",
                "Ask two questions, one per round.",
            )?,
            plain(
                "test_input_required_result_multiple_inputs",
                "Ask three questions at once.",
            )?,
            plain(
                "test_input_required_result_tampered_state",
                "Ask once; a tampered requestState is refused.",
            )?,
            plain(
                "test_input_required_result_capabilities",
                "Ask only what the client declared it can answer.",
            )?,
        ];
        let prompts = vec![Prompt::new(
            "test_input_required_result_prompt",
            Some("A prompt that asks the user for its context first."),
            None,
        )];
        Ok(Self { defs, prompts })
    }
}

fn schema(value: Value) -> ElicitationSchema {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("fixture schema: {e}"))
}

fn one_string(field: &str) -> ElicitationSchema {
    schema(json!({
        "type": "object",
        "properties": { field: { "type": "string" } },
        "required": [field],
    }))
}

fn question(text: &str, max_tokens: u32) -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(text)], max_tokens)
}

/// The text of a sampling answer.
fn sampled_text(result: &rmcp::model::CreateMessageResult) -> String {
    serde_json::to_value(&result.message)
        .ok()
        .and_then(|m| m["content"]["text"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A question without an answer: the refusal a model (or the suite) reads.
fn unanswered(err: &ClientError) -> CallToolResult {
    output::error(err.to_string())
}

impl TalkBack {
    async fn run(&self, name: &str, args: JsonObject, ctx: &CallContext) -> CallToolResult {
        let client = &ctx.client;
        match name {
            "test_tool_with_logging" => {
                client.log(LogLevel::Info, "Tool execution started").await;
                tokio::time::sleep(STEP).await;
                client.log(LogLevel::Info, "Tool processing data").await;
                tokio::time::sleep(STEP).await;
                client.log(LogLevel::Info, "Tool execution completed").await;
                output::ok_text("Logging tool executed")
            }
            "test_tool_with_progress" => {
                for (i, done) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(STEP).await;
                    }
                    client
                        .progress(done, Some(100.0), format!("{done} of 100"))
                        .await;
                }
                output::ok_text("Progress tool executed")
            }
            "test_sampling" => {
                let args: SamplingArgs = match parse_args(args) {
                    Ok(a) => a,
                    Err(e) => return e,
                };
                match client.sample("sampling", question(&args.prompt, 100)).await {
                    Ok(answer) => {
                        output::ok_text(format!("LLM response: {}", sampled_text(&answer)))
                    }
                    Err(e) => unanswered(&e),
                }
            }
            "test_elicitation" => {
                let args: ElicitationArgs = match parse_args(args) {
                    Ok(a) => a,
                    Err(e) => return e,
                };
                let form = schema(json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "description": "User's response" },
                        "email": { "type": "string", "description": "User's email address" },
                    },
                    "required": ["username", "email"],
                }));
                match client.elicit("details", args.message, form).await {
                    Ok(answer) => output::ok_text(format!(
                        "User response: action={:?}, content={}",
                        answer.action,
                        answer.content.unwrap_or_default()
                    )),
                    Err(e) => unanswered(&e),
                }
            }
            "test_elicitation_sep1034_defaults" => {
                let form = schema(json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "default": "John Doe" },
                        "age": { "type": "integer", "default": 30 },
                        "score": { "type": "number", "default": 95.5 },
                        "status": {
                            "type": "string",
                            "enum": ["active", "inactive", "pending"],
                            "default": "active",
                        },
                        "verified": { "type": "boolean", "default": true },
                    },
                }));
                self.elicit_form(ctx, "defaults", "Please review the defaults", form)
                    .await
            }
            "test_elicitation_sep1330_enums" => {
                let form = schema(json!({
                    "type": "object",
                    "properties": {
                        "untitledSingle": {
                            "type": "string",
                            "enum": ["option1", "option2", "option3"],
                        },
                        "titledSingle": {
                            "type": "string",
                            "oneOf": [
                                { "const": "value1", "title": "First Option" },
                                { "const": "value2", "title": "Second Option" },
                                { "const": "value3", "title": "Third Option" },
                            ],
                        },
                        "legacyEnum": {
                            "type": "string",
                            "enum": ["opt1", "opt2", "opt3"],
                            "enumNames": ["Option One", "Option Two", "Option Three"],
                        },
                        "untitledMulti": {
                            "type": "array",
                            "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                        },
                        "titledMulti": {
                            "type": "array",
                            "items": {
                                "anyOf": [
                                    { "const": "value1", "title": "First Choice" },
                                    { "const": "value2", "title": "Second Choice" },
                                    { "const": "value3", "title": "Third Choice" },
                                ],
                            },
                        },
                    },
                }));
                self.elicit_form(ctx, "enums", "Please choose", form).await
            }
            "test_missing_capability" => {
                match client
                    .sample("needs_sampling", question("Say hello", 20))
                    .await
                {
                    Ok(answer) => output::ok_text(sampled_text(&answer)),
                    Err(e) => unanswered(&e),
                }
            }
            "test_streaming_elicitation" => {
                client.progress(0.0, Some(1.0), "asking the user").await;
                match client
                    .elicit("stream_name", "What is your name?", one_string("name"))
                    .await
                {
                    Ok(answer) => output::ok_text(format!(
                        "Hello, {}!",
                        answer.content.unwrap_or_default()["name"]
                            .as_str()
                            .unwrap_or("stranger")
                    )),
                    Err(e) => unanswered(&e),
                }
            }
            "test_logging_tool" => {
                client.log(LogLevel::Info, "logging tool ran").await;
                output::ok_text("logged")
            }
            "test_input_required_result_elicitation" => {
                match client
                    .elicit("user_name", "What is your name?", one_string("name"))
                    .await
                {
                    Ok(answer) => output::ok_text(format!(
                        "Hello, {}!",
                        answer.content.unwrap_or_default()["name"]
                            .as_str()
                            .unwrap_or("stranger")
                    )),
                    Err(e) => unanswered(&e),
                }
            }
            "test_input_required_result_sampling" => {
                match client
                    .sample(
                        "capital_question",
                        question("What is the capital of France?", 100),
                    )
                    .await
                {
                    Ok(answer) => {
                        output::ok_text(format!("The model said: {}", sampled_text(&answer)))
                    }
                    Err(e) => unanswered(&e),
                }
            }
            "test_input_required_result_list_roots" => match client.roots("client_roots").await {
                Ok(roots) => {
                    let uris: Vec<&str> = roots.roots.iter().map(|r| r.uri.as_str()).collect();
                    output::ok_text(format!("Roots: {}", uris.join(", ")))
                }
                Err(e) => unanswered(&e),
            },
            "test_input_required_result_request_state" => {
                let confirm = schema(json!({
                    "type": "object",
                    "properties": { "ok": { "type": "boolean" } },
                    "required": ["ok"],
                }));
                // Reached only with the answer, and a requestState the server verified.
                match client.elicit("confirm", "Please confirm", confirm).await {
                    Ok(answer) => output::ok_text(format!(
                        "state-ok: confirmed={}",
                        answer.content.unwrap_or_default()["ok"]
                    )),
                    Err(e) => unanswered(&e),
                }
            }
            "test_input_required_result_multi_round" => {
                let name = match client
                    .elicit("step1", "Step 1: What is your name?", one_string("name"))
                    .await
                {
                    Ok(answer) => answer.content.unwrap_or_default()["name"].clone(),
                    Err(e) => return unanswered(&e),
                };
                let color = match client
                    .elicit(
                        "step2",
                        "Step 2: What is your favorite color?",
                        one_string("color"),
                    )
                    .await
                {
                    Ok(answer) => answer.content.unwrap_or_default()["color"].clone(),
                    Err(e) => return unanswered(&e),
                };
                output::ok_text(format!("{name} likes {color}"))
            }
            "test_input_required_result_multiple_inputs" => {
                let (name, greeting, roots) = futures::join!(
                    client.elicit("user_name", "What is your name?", one_string("name")),
                    client.sample("greeting", question("Generate a greeting", 50)),
                    client.roots("client_roots"),
                );
                match (name, greeting, roots) {
                    (Ok(name), Ok(greeting), Ok(roots)) => output::ok_text(format!(
                        "{} {} ({} roots)",
                        sampled_text(&greeting),
                        name.content.unwrap_or_default()["name"],
                        roots.roots.len()
                    )),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => unanswered(&e),
                }
            }
            "test_input_required_result_tampered_state" => {
                match client
                    .elicit("user_name", "What is your name?", one_string("name"))
                    .await
                {
                    Ok(_) => output::ok_text("state verified"),
                    Err(e) => unanswered(&e),
                }
            }
            "test_input_required_result_capabilities" => {
                let (name, capital) = futures::join!(
                    client.elicit("user_name", "What is your name?", one_string("name")),
                    client.sample(
                        "capital_question",
                        question("What is the capital of France?", 100)
                    ),
                );
                let part = |answer: Result<String, ClientError>| match answer {
                    Ok(text) => text,
                    Err(e) => format!("({e})"),
                };
                output::ok_text(format!(
                    "name: {}; capital: {}",
                    part(name.map(|a| a.content.unwrap_or_default()["name"].to_string())),
                    part(capital.map(|a| sampled_text(&a)))
                ))
            }
            other => output::error(format!("no fixture tool `{other}`")),
        }
    }

    async fn elicit_form(
        &self,
        ctx: &CallContext,
        key: &str,
        message: &str,
        form: ElicitationSchema,
    ) -> CallToolResult {
        match ctx.client.elicit(key, message, form).await {
            Ok(answer) => output::ok_text(format!(
                "Elicitation completed: action={:?}, content={}",
                answer.action,
                answer.content.unwrap_or_default()
            )),
            Err(e) => unanswered(&e),
        }
    }
}

impl Toolset for TalkBack {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(self.run(name, args, ctx))
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        _args: PromptArgs,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move {
            if name != "test_input_required_result_prompt" {
                return Err(PromptError::NotFound(name.to_owned()));
            }
            let context = ctx
                .client
                .elicit(
                    "user_context",
                    "What context should the prompt use?",
                    one_string("context"),
                )
                .await
                .map_err(|e| PromptError::Failed(e.to_string()))?;
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!(
                    "Use this context: {}",
                    context.content.unwrap_or_default()["context"]
                ),
            )]))
        })
    }
}
