//! The agent loop with a real toolset: a scripted model asks for PostgreSQL tools, and the
//! calls run against the PostgreSQL on this machine (127.0.0.1:5432, database `test`) through
//! the same governed toolset the server registers for a link — including its read-only guard.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use futures::future::BoxFuture;
use linkmcp_api::McpLink;
use linkmcp_api::task::TaskPhase;
use linkmcp_factory::{
    HostTool, NoKnowledge, RunInput, ToolHost,
    provider::{ApiKey, ModelClient},
    run::{self, RunDeps},
};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::{self, LinkContext};
use linkmcp_toolsets::{CallContext, Toolset};
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::json;
use support::{API_KEY, Scripted, ScriptedModel, agent, anthropic, fast_retry, task};

/// A host serving one link's toolset, as the server's registry would.
struct LinkHost(Arc<dyn Toolset>);

impl ToolHost for LinkHost {
    fn tools(&self) -> Vec<HostTool> {
        self.0.tools().iter().map(HostTool::from).collect()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        identity: &'a str,
    ) -> BoxFuture<'a, CallToolResult> {
        Box::pin(async move { self.0.call(name, args, &CallContext::new(identity)).await })
    }
}

fn postgres_host(write_access: bool) -> LinkHost {
    let host = std::env::var("LINKMCP_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let link: McpLink = serde_yaml::from_str(&format!(
        "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: local-pg}}\nspec:\n  serverRef: {{name: s}}\n  postgres: {{host: '{host}', database: test, sslMode: disable}}\n  writeAccess: {write_access}\n"
    ))
    .unwrap();
    let credentials = Credentials::new([("username".to_owned(), "postgres".to_owned())].into());
    let ctx = LinkContext {
        name: "local-pg",
        namespace: "default",
        spec: &link.spec,
        credentials: &credentials,
    };
    LinkHost(link::build(&ctx, "pg").unwrap())
}

#[tokio::test]
async fn a_model_queries_the_real_database_through_the_toolset() {
    let model = ScriptedModel::start(vec![
        Scripted::ok(anthropic::tool_use(
            &[(
                "tu_1",
                "pg_query",
                json!({"sql": "select 41 + 1 as answer"}),
            )],
            900,
            30,
        )),
        Scripted::ok(anthropic::tool_use(
            &[(
                "tu_2",
                "pg_query",
                json!({"sql": "delete from pg_catalog.pg_class"}),
            )],
            1000,
            30,
        )),
        Scripted::ok(anthropic::text(
            "The answer is 42; deletes are refused.",
            1100,
            20,
        )),
    ])
    .await;
    let agent = agent(
        "sre",
        json!({"provider": "anthropic", "baseUrl": format!("http://{}", model.addr)}),
    );
    let task = task(
        "db-check",
        json!({"description": "Query the postgres database for the answer.", "mode": "monitor"}),
    );
    let client = ModelClient::for_agent(
        reqwest::Client::new(),
        &agent.spec,
        Some(ApiKey::new(API_KEY)),
        fast_retry(),
    );
    let host = postgres_host(true);
    let outcome = run::run(
        &RunInput::new(&task, &agent),
        RunDeps {
            steps: &(),
            model: &client,
            host: &host,
            knowledge: &NoKnowledge,
        },
    )
    .await;
    assert_eq!(outcome.phase, TaskPhase::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.iterations, 3);

    // What the model was told after each tool call: the real row, then PostgreSQL's refusal.
    let requests = model.requests();
    let second = requests[1].body.to_string();
    assert!(
        second.contains("42"),
        "the query result did not reach the model: {second}"
    );
    let third = requests[2].body.to_string();
    assert!(
        third.contains("read-only transaction"),
        "the delete was not refused by PostgreSQL: {third}"
    );
    // Monitor mode offered no write tool even though the link could have one.
    let offered = requests[0].body["tools"].to_string();
    assert!(offered.contains("pg_query"));
    assert!(!offered.contains("pg_execute"));
}
