//! Standalone mode end to end: a folder of manifests, the live link sync and a real MCP client.
//! Writing an McpLink file makes its tools and its description resource `linkmcp://links/<name>`
//! appear (with `tools/list_changed` and `resources/list_changed`), deleting it makes them go.

#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use linkmcp_server::{
    Server, Settings,
    links::{self, Builder, LinkStatuses, LinkSync},
    registry::{Registry, ToolsetKey},
    source::manifests::ManifestSource,
};
use linkmcp_toolsets::{
    CallContext, NoArgs, ToolDef, Toolset,
    link::{Governed, LinkContext},
    output,
};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolResult, JsonObject, ReadResourceRequestParams, ResourceContents},
    service::NotificationContext,
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_util::sync::CancellationToken;

const SERVER: &str = "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s}\nspec:\n  auth: {allowUnauthenticated: true}\n";
/// The resource describing the link of [`LINK`].
const LINK_URI: &str = "linkmcp://links/orders";
const WAIT: Duration = Duration::from_secs(5);
const LINK: &str = "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: orders}\nspec:\n  serverRef: {name: s}\n  postgres: {host: 127.0.0.1, database: test}\n";

/// A backend standing in for a real one: one read tool named after the link type.
struct Fake(Vec<ToolDef>);

impl Toolset for Fake {
    fn tools(&self) -> &[ToolDef] {
        &self.0
    }
    fn call<'a>(
        &'a self,
        _: &'a str,
        _: JsonObject,
        _: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async { output::ok_text("rows") })
    }
}

/// Builds the link's toolset as `linkmcp_toolsets::link::build` does, over a [`Fake`] backend:
/// governed, and describing itself in `linkmcp://links/<name>`.
fn builder() -> Builder {
    Arc::new(|ctx: &LinkContext<'_>, prefix: &str| {
        let link_type = ctx.spec.backend()?.link_type();
        let base = linkmcp_toolsets::link::default_prefix(link_type);
        let fake = Arc::new(Fake(vec![
            ToolDef::read::<NoArgs>(format!("{base}_query"), "Query the linked database.").unwrap(),
        ]));
        let governed = Governed::new(fake, base, prefix, &ctx.spec.tools, false)?.describing(
            ctx.name,
            &link_type.to_string(),
            ctx.spec.write_access,
        );
        Ok(Arc::new(governed) as Arc<dyn Toolset>)
    })
}

/// A list_changed notification the client received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Note {
    Tools,
    Resources,
}

struct Notified(mpsc::UnboundedSender<Note>);

impl ClientHandler for Notified {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(Note::Tools);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(Note::Resources);
    }
}

/// Waits for both list_changed notifications (in any order), failing on a repeated one.
async fn expect_tools_and_resources(rx: &mut UnboundedReceiver<Note>, what: &str) {
    let mut missing = vec![Note::Tools, Note::Resources];
    while !missing.is_empty() {
        let note = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: still waiting for {missing:?}"))
            .expect("client alive");
        let at = missing
            .iter()
            .position(|n| *n == note)
            .unwrap_or_else(|| panic!("{what}: {note:?} twice"));
        missing.remove(at);
    }
}

async fn resource_uris(client: &rmcp::Peer<RoleClient>) -> Vec<String> {
    client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri.clone())
        .collect()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("linkmcp-standalone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_link_file_brings_its_tools_and_takes_them_away() {
    let dir = temp_dir();
    std::fs::write(dir.join("server.yaml"), SERVER).unwrap();
    let shutdown = CancellationToken::new();
    let state = ManifestSource::new(&dir, None)
        .watch(Duration::from_millis(50), shutdown.clone())
        .unwrap();
    let registry = Arc::new(Registry::new());
    let statuses = Arc::new(LinkStatuses::default());
    tokio::spawn(links::follow(
        LinkSync::new(registry.clone(), builder(), statuses.clone()),
        state,
    ));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    };
    let server = Server::bind(&settings, registry.clone(), shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/mcp", server.local_addr());
    let task = tokio::spawn(server.run());

    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = Notified(tx)
        .serve(StreamableHttpClientTransport::from_uri(url))
        .await
        .unwrap();
    // Wait until the client's notification stream is open (what is sent before is lost).
    let probe = ToolsetKey::from("probe");
    let mut open = false;
    for round in 0..50 {
        // Each round adds or removes the probe's tool: a change of the tool list.
        if round % 2 == 0 {
            registry
                .insert(
                    probe.clone(),
                    Arc::new(Fake(vec![
                        ToolDef::read::<NoArgs>("probe", "Provokes a change.").unwrap(),
                    ])),
                )
                .unwrap();
        } else {
            registry.remove(&probe);
        }
        if tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {
            open = true;
            break;
        }
    }
    assert!(open, "the notification stream never opened");
    registry.remove(&probe);
    tokio::time::sleep(Duration::from_millis(200)).await;
    while rx.try_recv().is_ok() {}

    std::fs::write(dir.join("link.yaml"), LINK).unwrap();
    expect_tools_and_resources(&mut rx, "after the link was written").await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["pg_query", "ping", "server_info"]);
    assert!(statuses.get()["orders"].ready);
    assert_eq!(
        resource_uris(&client).await,
        [LINK_URI, "linkmcp://server/info"]
    );
    let contents = client
        .read_resource(ReadResourceRequestParams::new(LINK_URI))
        .await
        .unwrap()
        .contents;
    let [ResourceContents::TextResourceContents { uri, text, .. }] = contents.as_slice() else {
        panic!("one text contents: {contents:?}");
    };
    assert_eq!(uri, LINK_URI);
    let description: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        description,
        json!({
            "name": "orders",
            "type": "postgres",
            "writeAccess": false,
            "tools": [{"name": "pg_query", "access": "read", "description": "Query the linked database."}],
        })
    );

    std::fs::remove_file(dir.join("link.yaml")).unwrap();
    expect_tools_and_resources(&mut rx, "after the link was deleted").await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["ping", "server_info"]);
    assert_eq!(resource_uris(&client).await, ["linkmcp://server/info"]);

    client.cancel().await.unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
