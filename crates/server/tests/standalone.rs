//! Standalone mode end to end: a folder of manifests, the live link sync and a real MCP client.
//! Writing an McpLink file makes its tools appear (with `tools/list_changed`), deleting it makes
//! them go.

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
    model::{CallToolResult, JsonObject},
    service::NotificationContext,
    transport::StreamableHttpClientTransport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SERVER: &str = "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s}\nspec:\n  auth: {allowUnauthenticated: true}\n";
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

fn builder() -> Builder {
    Arc::new(|ctx: &LinkContext<'_>, prefix: &str| {
        let base = linkmcp_toolsets::link::default_prefix(ctx.spec.backend()?.link_type());
        let fake = Arc::new(Fake(vec![
            ToolDef::read::<NoArgs>(format!("{base}_query"), "Query the linked database.").unwrap(),
        ]));
        Ok(
            Arc::new(Governed::new(fake, base, prefix, &ctx.spec.tools, false)?)
                as Arc<dyn Toolset>,
        )
    })
}

struct Notified(mpsc::UnboundedSender<()>);

impl ClientHandler for Notified {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
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
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("list_changed after the link was written");
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["pg_query", "ping", "server_info"]);
    assert!(statuses.get()["orders"].ready);

    std::fs::remove_file(dir.join("link.yaml")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("list_changed after the link was deleted");
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["ping", "server_info"]);

    client.cancel().await.unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
