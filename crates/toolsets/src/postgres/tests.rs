//! Unit tests of the PostgreSQL toolset's pure parts: naming, host derivation, parameter
//! handling and the topology component. Behaviour against a real server is tested in
//! `tests/postgres.rs`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use linkmcp_api::McpLinkSpec;
use linkmcp_api::link::{ComponentMeta, LinkLimits};

use super::*;
use crate::credentials::Credentials;

fn spec() -> McpLinkSpec {
    serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap()
}

fn names(toolset: &dyn Toolset) -> Vec<String> {
    toolset
        .tools()
        .iter()
        .map(|d| d.name().to_owned())
        .collect()
}

#[test]
fn cnpg_hosts_follow_the_service() {
    assert_eq!(
        cnpg_host("orders", CnpgService::Rw, "shop"),
        "orders-rw.shop.svc"
    );
    assert_eq!(
        cnpg_host("orders", CnpgService::Ro, "shop"),
        "orders-ro.shop.svc"
    );
}

#[tokio::test]
async fn cnpg_tools_carry_the_cnpg_prefix() {
    let mut spec = spec();
    let block = CnpgBackend {
        cluster: "orders".into(),
        database: "app".into(),
        service: CnpgService::Rw,
        ssl_mode: linkmcp_api::link::SslMode::Require,
    };
    spec.cnpg = Some(block.clone());
    let creds = Credentials::default();
    let link = LinkContext {
        name: "orders",
        namespace: "shop",
        spec: &spec,
        credentials: &creds,
    };
    let toolset = cnpg_toolset(&link, &block).unwrap();
    assert_eq!(
        names(toolset.as_ref()),
        [
            "cnpg_list_databases",
            "cnpg_list_tables",
            "cnpg_describe_table",
            "cnpg_table_stats",
            "cnpg_query",
            "cnpg_execute"
        ]
    );
    let described = toolset
        .tools()
        .iter()
        .find(|d| d.name() == "cnpg_query")
        .unwrap();
    let description = described.tool().description.clone().unwrap();
    assert!(
        description.contains("CloudNativePG cluster `orders`"),
        "{description}"
    );

    // The replicas serve no write tool: a standby refuses writes anyway.
    let ro = CnpgBackend {
        service: CnpgService::Ro,
        ..block
    };
    let toolset = cnpg_toolset(&link, &ro).unwrap();
    assert!(
        !names(toolset.as_ref())
            .iter()
            .any(|n| n.ends_with("execute"))
    );
    let refused = toolset
        .call(
            "cnpg_execute",
            json!({"sql": "select 1"}).as_object().cloned().unwrap(),
            &CallContext::new("t"),
        )
        .await;
    assert_eq!(refused.is_error, Some(true));
}

#[tokio::test]
async fn cnpg_links_serve_a_table_template_and_an_explore_prompt() {
    let block = CnpgBackend {
        cluster: "orders".into(),
        database: "app".into(),
        service: CnpgService::Ro,
        ssl_mode: linkmcp_api::link::SslMode::Require,
    };
    let mut spec = spec();
    spec.cnpg = Some(block.clone());
    let creds = Credentials::default();
    let link = LinkContext {
        name: "orders-db",
        namespace: "shop",
        spec: &spec,
        credentials: &creds,
    };
    let toolset = cnpg_toolset(&link, &block).unwrap();

    let [template] = toolset.resource_templates() else {
        panic!("one template")
    };
    let listed = template.template();
    assert_eq!(listed.uri_template, "cnpg://orders-db/tables/{table}");
    assert_eq!(listed.name, "cnpg_table");
    assert_eq!(listed.mime_type.as_deref(), Some("application/json"));
    let description = listed.description.clone().unwrap();
    assert!(description.contains("cnpg_describe_table"), "{description}");
    assert_eq!(
        template.matches("cnpg://orders-db/tables/sales.orders"),
        Some(BTreeMap::from([("table".into(), "sales.orders".into())]))
    );
    assert_eq!(template.matches("postgres://orders-db/tables/orders"), None);

    let [prompt] = toolset.prompts() else {
        panic!("one prompt")
    };
    assert_eq!(prompt.name, "cnpg_explore_table");
    let arguments: Vec<(&str, Option<bool>)> = prompt
        .arguments
        .as_deref()
        .unwrap()
        .iter()
        .map(|a| (a.name.as_str(), a.required))
        .collect();
    assert_eq!(
        arguments,
        [("table", Some(true)), ("question", Some(false))]
    );

    let ctx = CallContext::new("t");
    let args = |pairs: &[(&str, &str)]| -> PromptArgs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let text = |result: GetPromptResult| {
        let [message] = result.messages.as_slice() else {
            panic!("one message")
        };
        assert_eq!(message.role, rmcp::model::Role::User);
        message.content.as_text().unwrap().text.clone()
    };
    let summary = text(
        toolset
            .get_prompt(
                "cnpg_explore_table",
                args(&[("table", "sales.orders")]),
                &ctx,
            )
            .await
            .unwrap(),
    );
    for expected in [
        "`sales.orders`",
        "cnpg_describe_table with {\"table\":\"sales.orders\"}",
        "cnpg_table_stats",
        "cnpg_query",
        "SELECT * FROM sales.orders LIMIT 5",
        "summarise what the table holds",
    ] {
        assert!(summary.contains(expected), "{expected}: {summary}");
    }
    let answer = text(
        toolset
            .get_prompt(
                "cnpg_explore_table",
                args(&[("table", "orders"), ("question", "Who orders most?")]),
                &ctx,
            )
            .await
            .unwrap(),
    );
    assert!(answer.ends_with("answer this question from what you found: Who orders most?"));
    assert!(!answer.contains("summarise"), "{answer}");

    let err = toolset
        .get_prompt("cnpg_explore_table", args(&[("table", " ")]), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, PromptError::InvalidArguments(_)), "{err}");
    let err = toolset
        .get_prompt("pg_explore_table", args(&[("table", "orders")]), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err, PromptError::NotFound("pg_explore_table".into()));
}

#[tokio::test]
async fn postgres_tools_are_named_and_limited_by_the_link() {
    let mut spec = spec();
    spec.limits = LinkLimits {
        max_rows: Some(7),
        ..LinkLimits::default()
    };
    let block = PostgresBackend {
        host: "db.data.svc".into(),
        port: 5432,
        database: "shop".into(),
        ..PostgresBackend::default()
    };
    let creds = Credentials::default();
    let link = LinkContext {
        name: "shop",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    let toolset = toolset(&link, &block).unwrap();
    assert_eq!(names(toolset.as_ref())[4], "pg_query");
    assert_eq!(
        toolset.resource_templates()[0].template().uri_template,
        "postgres://shop/tables/{table}"
    );
    assert_eq!(toolset.prompts()[0].name, "pg_explore_table");
    let query = toolset
        .tools()
        .iter()
        .find(|d| d.name() == "pg_query")
        .unwrap();
    assert!(
        query
            .tool()
            .description
            .as_ref()
            .unwrap()
            .contains("At most 7 rows")
    );

    let bad_port = PostgresBackend {
        port: 70_000,
        ..block
    };
    let err = toolset_error(&link, &bad_port);
    assert!(err.contains("postgres.port 70000"), "{err}");
}

fn toolset_error(link: &LinkContext<'_>, block: &PostgresBackend) -> String {
    match toolset(link, block) {
        Ok(_) => panic!("the toolset was built"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn statement_timeouts_leave_a_margin() {
    assert_eq!(
        statement_timeout(Duration::from_secs(1)),
        Duration::from_millis(900)
    );
    assert_eq!(
        statement_timeout(Duration::from_secs(60)),
        Duration::from_secs(58)
    );
    assert_eq!(statement_timeout(Duration::ZERO), Duration::from_millis(1));
}

#[test]
fn table_names_split_and_unquote() {
    let t = |table: &str, schema: &str| params::TableRef {
        table: table.into(),
        schema: schema.into(),
    };
    assert_eq!(
        split_table(&t("sales.orders", "")),
        ("sales".into(), "orders".into())
    );
    assert_eq!(
        split_table(&t("\"Orders\"", "")),
        (String::new(), "Orders".into())
    );
    assert_eq!(
        split_table(&t("orders", "sales")),
        ("sales".into(), "orders".into())
    );
}

#[test]
fn undefined_relations_are_found_in_messages() {
    assert_eq!(
        undefined_relation("relation \"public.nope\" does not exist (SQLSTATE 42P01)"),
        Some("nope".into())
    );
    assert_eq!(undefined_relation("syntax error"), None);
}

#[test]
fn components_describe_where_without_credentials() {
    let mut spec = spec();
    spec.cnpg = Some(CnpgBackend {
        cluster: "orders".into(),
        database: "app".into(),
        service: CnpgService::Ro,
        ssl_mode: linkmcp_api::link::SslMode::Require,
    });
    spec.component = Some(ComponentMeta {
        group: Some("shop".into()),
        depends_on: vec!["storage".into()],
        ..ComponentMeta::default()
    });
    let creds = Credentials::new(BTreeMap::from([("password".into(), "s3cret-pw".into())]));
    let link = LinkContext {
        name: "orders-db",
        namespace: "shop",
        spec: &spec,
        credentials: &creds,
    };
    let c = component(&link);
    assert_eq!(c.name, "orders-db");
    assert_eq!(c.link_type, "cnpg");
    assert_eq!(c.kind, "database");
    assert_eq!(c.group.as_deref(), Some("shop"));
    assert_eq!(c.endpoint["host"], "orders-ro.shop.svc");
    assert_eq!(c.endpoint["port"], "5432");
    assert_eq!(c.endpoint["database"], "app");
    assert_eq!(c.endpoint["namespace"], "shop");
    assert_eq!(c.depends_on, ["storage"]);
    assert!(!serde_json::to_string(&c).unwrap().contains("s3cret-pw"));
}
