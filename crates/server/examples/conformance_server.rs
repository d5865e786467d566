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
//! link's tools can: return content. Scenarios whose tools must talk back to the client during
//! a call (logging, progress, sampling, elicitation) are expected failures, listed with their
//! reasons in `tests/conformance/README.md`.
//!
//! Prints `listening on http://ADDR/mcp` on stdout once it serves; stops on SIGTERM or Ctrl-C.

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
use linkmcp_toolsets::{CallContext, NoArgs, ToolDef, Toolset, output};
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ResourceContents};
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

/// The reference server's fixture tools that a link-style toolset can serve.
struct Fixtures {
    defs: Vec<ToolDef>,
    registry: Weak<Registry>,
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
            registry: Arc::downgrade(registry),
        })
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
                other => output::error(format!("no fixture tool `{other}`")),
            }
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
