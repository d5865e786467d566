//! The server the MCP conformance suite runs against (`scripts/conformance.sh`).
//!
//! Several scenarios of `@modelcontextprotocol/conformance` call fixture tools of the
//! reference server (`test_simple_text`, `test_image_content`, ...). They must never be part of
//! the product, so they live in this example — built by `cargo build --workspace
//! --all-targets`, never shipped — which starts the real [`linkmcp_server::Server`] with one
//! extra toolset, [`Fixtures`], registered beside the core tools. Everything else (routing,
//! sessions, stateless mode, Host validation, list-changed notifications) is the product's own
//! code path.
//!
//! The fixtures go through the same `Toolset` seam as every link, so they can only do what a
//! link's toolset can: return content, serve resources and prompts, and talk back to the
//! client through the call context ([`talk_back`]: progress, logging, elicitation, sampling,
//! roots, input requests). What the suite still reports is listed with its reason in
//! `tests/conformance/README.md`.
//!
//! Prints `listening on http://ADDR/mcp` on stdout once it serves; stops on SIGTERM or Ctrl-C.

mod talk_back;

use std::{
    borrow::Cow,
    io::Write as _,
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::Context as _;
use clap::Parser;
use futures::future::BoxFuture;
use linkmcp_server::{
    Server, Settings,
    registry::{Registry, RegistryError, ToolsetKey},
};
use linkmcp_toolsets::{
    CallContext, NoArgs, ToolDef, Toolset, output,
    prompt::{GetPromptResult, Prompt, PromptArgs, PromptArgument, PromptError, PromptMessage},
    resource::{
        Resource, ResourceError, ResourceTemplate, ResourceTemplateDef, UriTemplateError,
        text_contents,
    },
};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ResourceContents, Role};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use tokio_util::sync::CancellationToken;

/// Flags of the conformance server.
#[derive(Debug, Parser)]
#[command(name = "conformance_server", about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve without MCP sessions, as `linkmcp-server --stateless` does.
    #[arg(long)]
    stateless: bool,
}

/// A 1x1 red PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// One millisecond of 8 kHz, 8-bit mono silence as a WAV file.
const WAV_BASE64: &str = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

/// The tool whose presence `test_trigger_tool_change` toggles.
const TOGGLED_TOOL: &str = "test_toggled_tool";

/// The registry key of the toolset holding [`TOGGLED_TOOL`].
const TOGGLED_KEY: &str = "conformance/toggled";

/// The prompt whose presence `test_trigger_prompt_change` toggles.
const TOGGLED_PROMPT: &str = "test_toggled_prompt";

/// The registry key of the toolset holding [`TOGGLED_PROMPT`].
const TOGGLED_PROMPT_KEY: &str = "conformance/toggled-prompt";

/// The reference server's resource template.
const TEMPLATE: &str = "test://template/{id}/data";

/// The input schema the `json-schema-2020-12` scenario expects to find unchanged in
/// `tools/list`: `$schema`, `$defs` with an `$anchor`, composition and conditional keywords.
struct JsonSchema2020Args;

impl JsonSchema for JsonSchema2020Args {
    fn schema_name() -> Cow<'static, str> {
        "JsonSchema2020Args".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {
                        "street": { "type": "string" },
                        "city": { "type": "string" }
                    }
                }
            },
            "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" },
                "email": { "type": "string" }
            },
            "allOf": [
                { "anyOf": [ { "required": ["phone"] }, { "required": ["email"] } ] }
            ],
            "if": {
                "properties": { "contactMethod": { "const": "phone" } },
                "required": ["contactMethod"]
            },
            "then": { "required": ["phone"] },
            "else": { "required": ["email"] },
            "additionalProperties": false
        })
    }
}

/// The reference server's fixture tools, resources and prompts that a link-style toolset can
/// serve.
struct Fixtures {
    defs: Vec<ToolDef>,
    resources: Vec<Resource>,
    templates: Vec<ResourceTemplateDef>,
    prompts: Vec<Prompt>,
    registry: Weak<Registry>,
}

fn fixture_resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text")
            .with_description("A static text resource.")
            .with_mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary")
            .with_description("A static PNG image.")
            .with_mime_type("image/png"),
        Resource::new("test://watched-resource", "watched-resource")
            .with_description("A resource clients subscribe to.")
            .with_mime_type("text/plain"),
    ]
}

fn fixture_templates() -> Result<Vec<ResourceTemplateDef>, UriTemplateError> {
    Ok(vec![ResourceTemplateDef::new(
        ResourceTemplate::new(TEMPLATE, "template-data")
            .with_description("Data for one id.")
            .with_mime_type("application/json"),
    )?])
}

fn fixture_prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A prompt without arguments."),
            None,
        ),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with two required arguments."),
            Some(vec![
                PromptArgument::new("arg1")
                    .with_description("First test argument")
                    .with_required(true),
                PromptArgument::new("arg2")
                    .with_description("Second test argument")
                    .with_required(true),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt embedding a resource."),
            Some(vec![
                PromptArgument::new("resourceUri")
                    .with_description("URI of the resource to embed")
                    .with_required(true),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt with an image."),
            None,
        ),
    ]
}

impl Fixtures {
    fn new(registry: &Arc<Registry>) -> Result<Self, RegistryError> {
        let fixture = |name: &'static str, description: &'static str| {
            ToolDef::read::<NoArgs>(name, description).map(|d| d.open_world(false))
        };
        let defs = vec![
            fixture("test_simple_text", "Return one text block.")?,
            fixture("test_image_content", "Return one PNG image block.")?,
            fixture("test_audio_content", "Return one WAV audio block.")?,
            fixture(
                "test_embedded_resource",
                "Return one embedded text resource.",
            )?,
            fixture(
                "test_multiple_content_types",
                "Return a text, an image and an embedded JSON resource.",
            )?,
            fixture("test_error_handling", "Fail with an isError result.")?,
            ToolDef::write::<NoArgs>(
                "test_trigger_prompt_change",
                "Add or remove a prompt, so that clients are sent prompts/list_changed.",
            )?
            .destructive(false)
            .open_world(false),
            ToolDef::read::<JsonSchema2020Args>(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
            )?
            .open_world(false),
            ToolDef::write::<NoArgs>(
                "test_trigger_tool_change",
                "Add or remove a tool, so that clients are sent tools/list_changed.",
            )?
            .destructive(false)
            .open_world(false),
        ];
        Ok(Self {
            defs,
            resources: fixture_resources(),
            templates: fixture_templates()?,
            prompts: fixture_prompts(),
            registry: Arc::downgrade(registry),
        })
    }

    /// Registers [`ToggledPrompt`] if absent, removes it if present.
    fn toggle_prompt(&self) -> CallToolResult {
        let Some(registry) = self.registry.upgrade() else {
            return output::error("the server is shutting down");
        };
        let key = ToolsetKey::from(TOGGLED_PROMPT_KEY);
        if registry.remove(&key) {
            return output::ok_text(format!("removed {TOGGLED_PROMPT}"));
        }
        match registry.insert(key, Arc::new(ToggledPrompt::new())) {
            Ok(()) => output::ok_text(format!("added {TOGGLED_PROMPT}")),
            Err(err) => output::error(format!("could not add {TOGGLED_PROMPT}: {err}")),
        }
    }

    /// Registers [`Toggled`] if absent, removes it if present.
    fn toggle_tool(&self) -> CallToolResult {
        let Some(registry) = self.registry.upgrade() else {
            return output::error("the server is shutting down");
        };
        let key = ToolsetKey::from(TOGGLED_KEY);
        if registry.remove(&key) {
            return output::ok_text(format!("removed {TOGGLED_TOOL}"));
        }
        match Toggled::new().and_then(|t| registry.insert(key, Arc::new(t))) {
            Ok(()) => output::ok_text(format!("added {TOGGLED_TOOL}")),
            Err(err) => output::error(format!("could not add {TOGGLED_TOOL}: {err}")),
        }
    }
}

impl Toolset for Fixtures {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move {
            match name {
                "test_simple_text" => {
                    output::ok_text("This is a simple text response for testing.")
                }
                "test_image_content" => {
                    CallToolResult::success(vec![ContentBlock::image(PNG_BASE64, "image/png")])
                }
                "test_audio_content" => {
                    CallToolResult::success(vec![ContentBlock::audio(WAV_BASE64, "audio/wav")])
                }
                "test_embedded_resource" => {
                    CallToolResult::success(vec![ContentBlock::resource(ResourceContents::text(
                        "This is an embedded resource content.",
                        "test://embedded-resource",
                    ))])
                }
                "test_multiple_content_types" => CallToolResult::success(vec![
                    ContentBlock::text("Multiple content types test:"),
                    ContentBlock::image(PNG_BASE64, "image/png"),
                    ContentBlock::resource(
                        ResourceContents::text(
                            r#"{"test":"data","value":123}"#,
                            "test://mixed-content-resource",
                        )
                        .with_mime_type("application/json"),
                    ),
                ]),
                "test_error_handling" => {
                    output::error("This tool intentionally returns an error for testing")
                }
                "json_schema_2020_12_tool" => output::ok_text("accepted"),
                "test_trigger_tool_change" => self.toggle_tool(),
                "test_trigger_prompt_change" => self.toggle_prompt(),
                other => output::error(format!("no fixture tool `{other}`")),
            }
        })
    }

    fn resources(&self) -> &[Resource] {
        &self.resources
    }

    fn resource_templates(&self) -> &[ResourceTemplateDef] {
        &self.templates
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Vec<ResourceContents>, ResourceError>> {
        Box::pin(async move {
            let contents = match uri {
                "test://static-text" => text_contents(
                    uri,
                    "text/plain",
                    "This is the content of the static text resource.",
                ),
                "test://static-binary" => ResourceContents::BlobResourceContents {
                    uri: uri.to_owned(),
                    mime_type: Some("image/png".to_owned()),
                    blob: PNG_BASE64.to_owned(),
                    meta: None,
                },
                "test://watched-resource" => {
                    text_contents(uri, "text/plain", "Watched resource content.")
                }
                _ => {
                    let id = self
                        .templates
                        .iter()
                        .find_map(|t| t.matches(uri))
                        .and_then(|vars| vars.get("id").cloned())
                        .ok_or_else(|| ResourceError::NotFound(uri.to_owned()))?;
                    let data = serde_json::json!({
                        "id": id,
                        "templateTest": true,
                        "data": format!("Data for ID: {id}"),
                    });
                    text_contents(uri, "application/json", data.to_string())
                }
            };
            Ok(vec![contents])
        })
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async move {
            let arg = |n: &str| args.get(n).cloned().unwrap_or_default();
            let messages = match name {
                "test_simple_prompt" => vec![PromptMessage::new_text(
                    Role::User,
                    "This is a simple prompt for testing.",
                )],
                "test_prompt_with_arguments" => vec![PromptMessage::new_text(
                    Role::User,
                    format!(
                        "Prompt with arguments: arg1='{}', arg2='{}'",
                        arg("arg1"),
                        arg("arg2")
                    ),
                )],
                "test_prompt_with_embedded_resource" => vec![
                    PromptMessage::new(
                        Role::User,
                        ContentBlock::resource(text_contents(
                            arg("resourceUri"),
                            "text/plain",
                            "Embedded resource content for testing.",
                        )),
                    ),
                    PromptMessage::new_text(
                        Role::User,
                        "Please process the embedded resource above.",
                    ),
                ],
                "test_prompt_with_image" => vec![
                    PromptMessage::new(Role::User, ContentBlock::image(PNG_BASE64, "image/png")),
                    PromptMessage::new_text(Role::User, "Please analyze the image above."),
                ],
                other => return Err(PromptError::NotFound(other.to_owned())),
            };
            Ok(GetPromptResult::new(messages))
        })
    }
}

/// The toolset `test_trigger_prompt_change` adds and removes: one prompt, no tools.
struct ToggledPrompt {
    prompts: Vec<Prompt>,
}

impl ToggledPrompt {
    fn new() -> Self {
        Self {
            prompts: vec![Prompt::new(
                TOGGLED_PROMPT,
                Some("Present every other time test_trigger_prompt_change is called."),
                None,
            )],
        }
    }
}

impl Toolset for ToggledPrompt {
    fn tools(&self) -> &[ToolDef] {
        &[]
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move { output::error(format!("no tool `{name}`")) })
    }

    fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    fn get_prompt<'a>(
        &'a self,
        _name: &'a str,
        _args: PromptArgs,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<GetPromptResult, PromptError>> {
        Box::pin(async {
            Ok(GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "The toggled prompt.",
            )]))
        })
    }
}

/// The toolset `test_trigger_tool_change` adds and removes.
struct Toggled {
    defs: Vec<ToolDef>,
}

impl Toggled {
    fn new() -> Result<Self, RegistryError> {
        let def = ToolDef::read::<NoArgs>(
            TOGGLED_TOOL,
            "Present every other time test_trigger_tool_change is called.",
        )?
        .open_world(false);
        Ok(Self { defs: vec![def] })
    }
}

impl Toolset for Toggled {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn call<'a>(
        &'a self,
        _name: &'a str,
        _args: JsonObject,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async { output::ok_text("toggled tool called") })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let settings = Settings {
        listen: args.listen,
        stateless: args.stateless,
        server_name: "linkmcp-conformance".to_owned(),
        drain_timeout: Duration::from_secs(2),
        ..Settings::default()
    };
    let registry = Arc::new(Registry::new());
    registry
        .insert("conformance", Arc::new(Fixtures::new(&registry)?))
        .context("registering the fixture tools")?;
    registry
        .insert(
            "conformance/talk-back",
            Arc::new(talk_back::TalkBack::new()?),
        )
        .context("registering the talk-back fixtures")?;

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let server = Server::bind(&settings, registry, shutdown).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}/mcp", server.local_addr())?;
        stdout.flush()?;
    }
    server.run().await
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    shutdown.cancel();
}
