//! The postgres toolset against a real PostgreSQL (127.0.0.1:5432 unless `LINKMCP_TEST_PG_HOST`
//! / `LINKMCP_TEST_PG_PORT` / `LINKMCP_TEST_PG_USER` say otherwise; trust or the user's own
//! authentication). Each test works in a database of its own, created for it and dropped after
//! it, so tests neither see each other nor depend on their order.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linkmcp_api::McpLinkSpec;
use linkmcp_api::link::{LinkLimits, PostgresBackend, SslMode};
use linkmcp_toolsets::compliance::{
    Caller, check_annotations, check_bad_arguments, check_output_capped,
    check_resources_and_prompts, check_write_gating, result_text,
};
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::LinkContext;
use linkmcp_toolsets::prompt::PromptArgs;
use linkmcp_toolsets::resource::{ResourceContents, ResourceError};
use linkmcp_toolsets::{CallContext, Toolset, postgres};
use rmcp::model::{JsonObject, Role};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection, Row as _};

/// The password every test link carries: trust authentication ignores it, and no output may
/// show it.
const PASSWORD: &str = "pw-must-never-show-7Qx2";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn server() -> (String, u16, String) {
    (
        env("LINKMCP_TEST_PG_HOST", "127.0.0.1"),
        env("LINKMCP_TEST_PG_PORT", "5432").parse().unwrap(),
        env("LINKMCP_TEST_PG_USER", "postgres"),
    )
}

async fn admin(database: &str) -> PgConnection {
    let (host, port, user) = server();
    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .username(&user)
        .database(database)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    PgConnection::connect_with(&options).await.unwrap()
}

/// A database of the test's own, dropped (with its connections) when the test ends, even when
/// it fails.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("linkmcp_pg_{tag}_{}_{nanos}", std::process::id());
        let mut conn = admin("postgres").await;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        Self { name }
    }

    /// Runs setup SQL (several statements allowed) as the administrator.
    async fn setup(&self, sql: &str) {
        let mut conn = admin(&self.name).await;
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())))
            .await
            .unwrap();
    }

    async fn count(&self, table: &str) -> i64 {
        let mut conn = admin(&self.name).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0)
    }

    async fn exists(&self, table: &str) -> bool {
        let mut conn = admin(&self.name).await;
        sqlx::query("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin("postgres").await;
                let _ = conn
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            });
        })
        .join();
    }
}

/// A link to `database` and the credentials it carries.
struct Link {
    spec: McpLinkSpec,
    block: PostgresBackend,
    credentials: Credentials,
}

impl Link {
    fn new(database: &str, max_rows: Option<i32>) -> Self {
        let (host, port, user) = server();
        Self::to(&host, i32::from(port), database, &user, max_rows)
    }

    fn to(host: &str, port: i32, database: &str, user: &str, max_rows: Option<i32>) -> Self {
        let block = PostgresBackend {
            host: host.to_owned(),
            port,
            database: database.to_owned(),
            ssl_mode: SslMode::Prefer,
            schemas: Vec::new(),
        };
        let mut spec: McpLinkSpec =
            serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap();
        spec.postgres = Some(block.clone());
        spec.write_access = true;
        spec.limits = LinkLimits {
            max_rows,
            ..LinkLimits::default()
        };
        let credentials = Credentials::new(BTreeMap::from([
            ("username".to_owned(), user.to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
        ]));
        Self {
            spec,
            block,
            credentials,
        }
    }

    fn toolset(&self) -> Arc<dyn Toolset> {
        let ctx = LinkContext {
            name: "shop-db",
            namespace: "data",
            spec: &self.spec,
            credentials: &self.credentials,
        };
        postgres::toolset(&ctx, &self.block).unwrap()
    }
}

/// The secret part of the credentials: the password (the user name is shown as the owner of
/// databases, as PostgreSQL reports it).
fn secrets() -> Credentials {
    Credentials::new(BTreeMap::from([(
        "password".to_owned(),
        PASSWORD.to_owned(),
    )]))
}

fn args(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

/// Calls a tool, keeping every result for the final no-secrets check.
const SHOP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
    CREATE TABLE orders (
        id serial PRIMARY KEY,
        customer int NOT NULL REFERENCES customers (id),
        amount numeric(10, 2) DEFAULT 0,
        placed timestamptz NOT NULL DEFAULT now()
    );
    COMMENT ON TABLE orders IS 'one row per order';
    COMMENT ON COLUMN orders.amount IS 'total in EUR';
    CREATE INDEX orders_customer ON orders (customer);
    CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 100;
    CREATE SCHEMA audit;
    CREATE TABLE audit.events (id bigint, what text);
    INSERT INTO customers VALUES (1, 'ada'), (2, 'bob');
    INSERT INTO orders (customer, amount) VALUES (1, 10.50), (1, 250), (2, 99.99);
    ANALYZE;
";

#[tokio::test]
async fn pg_tools_follow_the_compliance_rules() {
    let db = TestDb::new("compliance").await;
    let link = Link::new(&db.name, Some(100_000));
    let toolset = link.toolset();
    check_annotations(toolset.as_ref());
    check_resources_and_prompts(toolset.as_ref());
    check_write_gating(toolset.clone(), "pg").await;
    check_bad_arguments(toolset.as_ref()).await;
    check_output_capped(
        toolset.as_ref(),
        "pg_query",
        args(json!({"sql": "SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g"})),
        2048,
    )
    .await;
    let capped = toolset
        .call(
            "pg_query",
            args(json!({"sql": "SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g"})),
            &CallContext::new("t").with_max_output_bytes(2048),
        )
        .await;
    // The structured rows respect the output limit too, and say which bound cut them.
    let structured = capped.structured_content.unwrap();
    assert!(structured.to_string().len() < 4096, "{structured}");
    assert_eq!(structured["truncatedBy"], "outputBytes");

    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "pg_list_databases",
            "pg_list_tables",
            "pg_describe_table",
            "pg_table_stats",
            "pg_query",
            "pg_execute"
        ]
    );
}

#[tokio::test]
async fn pg_catalog_tools_list_and_describe() {
    let db = TestDb::new("catalog").await;
    db.setup(SHOP).await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());

    let dbs = c.ok("pg_list_databases", json!({"limit": 1000})).await;
    let ours: Vec<&Value> = dbs["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"] == db.name.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{dbs}");
    assert_eq!(ours[0]["current"], true);
    assert!(ours[0]["sizeBytes"].as_i64().unwrap() > 0);

    let tables = c.ok("pg_list_tables", json!({})).await;
    let names: Vec<String> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["schema"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "audit.events",
            "public.big_orders",
            "public.customers",
            "public.orders"
        ]
    );
    assert_eq!(tables["page"]["total"], 4);
    let orders = &tables["tables"][3];
    assert_eq!(orders["kind"], "table");
    assert_eq!(orders["estimatedRows"], 3);
    assert_eq!(orders["comment"], "one row per order");
    assert_eq!(tables["tables"][1]["kind"], "view");

    // Pages, and filters by schema and name.
    let page = c.ok("pg_list_tables", json!({"limit": 3})).await;
    assert_eq!(page["page"]["nextOffset"], 3);
    assert_eq!(page["page"]["truncated"], true);
    let next = c
        .ok("pg_list_tables", json!({"limit": 3, "offset": 3}))
        .await;
    assert_eq!(next["tables"][0]["name"], "orders");
    assert!(next["page"].get("nextOffset").is_none());
    let audit = c.ok("pg_list_tables", json!({"schema": "audit"})).await;
    assert_eq!(audit["tables"].as_array().unwrap().len(), 1);
    let filtered = c
        .ok("pg_list_tables", json!({"nameContains": "ORDER"}))
        .await;
    assert_eq!(filtered["page"]["total"], 2);

    let result = c
        .call("pg_describe_table", json!({"table": "orders"}))
        .await;
    let text = result_text(&result);
    let d = result.structured_content.unwrap();
    assert_eq!(d["schema"], "public");
    assert_eq!(d["kind"], "table");
    let columns: Vec<(&str, &str)> = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "integer"),
            ("customer", "integer"),
            ("amount", "numeric(10,2)"),
            ("placed", "timestamp with time zone")
        ]
    );
    assert_eq!(d["columns"][0]["nullable"], false);
    assert_eq!(d["columns"][2]["comment"], "total in EUR");
    assert!(
        d["columns"][0]["default"]
            .as_str()
            .unwrap()
            .starts_with("nextval(")
    );
    let constraints = d["constraints"].to_string();
    assert!(constraints.contains("PRIMARY KEY (id)"), "{constraints}");
    assert!(
        constraints.contains("FOREIGN KEY (customer) REFERENCES customers(id)"),
        "{constraints}"
    );
    assert!(d["indexes"].to_string().contains("orders_customer"));
    assert!(text.contains("amount numeric(10,2) DEFAULT 0"), "{text}");

    let view = c
        .ok("pg_describe_table", json!({"table": "public.big_orders"}))
        .await;
    assert_eq!(view["kind"], "view");
    assert!(
        view["viewDefinition"]
            .as_str()
            .unwrap()
            .contains("amount > ")
    );
    let qualified = c
        .ok(
            "pg_describe_table",
            json!({"table": "events", "schema": "audit"}),
        )
        .await;
    assert_eq!(qualified["columns"].as_array().unwrap().len(), 2);

    let stats = c.ok("pg_table_stats", json!({"table": "orders"})).await;
    assert_eq!(stats["name"], "orders");
    assert_eq!(stats["estimatedRows"], 3);
    assert!(stats["totalBytes"].as_i64().unwrap() > 0);
    assert!(stats["indexBytes"].as_i64().unwrap() > 0);
    // ANALYZE ran in the setup: its time is an RFC 3339 timestamp.
    let analyzed = stats["lastAnalyze"].as_str().unwrap();
    assert!(
        analyzed.ends_with('Z') && analyzed.contains('T'),
        "{analyzed}"
    );
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_unknown_tables_are_answered_with_the_tables_that_exist() {
    let db = TestDb::new("unknown").await;
    db.setup(SHOP).await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let message = c.err("pg_describe_table", json!({"table": "ordrs"})).await;
    assert!(
        message.starts_with("table ordrs does not exist; tables are: "),
        "{message}"
    );
    for table in ["orders", "customers", "audit.events"] {
        assert!(message.contains(table), "{message}");
    }
    let message = c.err("pg_table_stats", json!({"table": "nope"})).await;
    assert!(
        message.contains("table nope does not exist; tables are:"),
        "{message}"
    );
    // Names containing the requested one come first.
    let message = c.err("pg_describe_table", json!({"table": "custom"})).await;
    assert!(
        message.starts_with("table custom does not exist; tables are: customers,"),
        "{message}"
    );
    let message = c
        .err("pg_query", json!({"sql": "SELECT * FROM ordrs"}))
        .await;
    assert!(
        message.contains("relation \"ordrs\" does not exist (SQLSTATE 42P01)"),
        "{message}"
    );
    assert!(message.contains("tables are: "), "{message}");
    assert!(message.contains("orders"), "{message}");
    c.no_secrets(&secrets());
}

/// The one text a resource read returned, checked to be JSON for `uri`.
fn json_contents(contents: &[ResourceContents], uri: &str) -> Value {
    let [
        ResourceContents::TextResourceContents {
            uri: read,
            mime_type,
            text,
            ..
        },
    ] = contents
    else {
        panic!("not one text: {contents:?}")
    };
    assert_eq!(read, uri);
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    assert!(!text.contains(PASSWORD));
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn pg_tables_are_resources_described_like_describe_table() {
    let db = TestDb::new("resources").await;
    db.setup(SHOP).await;
    db.setup("CREATE TABLE \"Items\" (a int); CREATE TABLE \"ITEMS\" (b int);")
        .await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let templates: Vec<&str> = c
        .toolset
        .resource_templates()
        .iter()
        .map(|t| t.template().uri_template.as_str())
        .collect();
    assert_eq!(templates, ["postgres://shop-db/tables/{table}"]);

    // Exactly what the tool returns, as JSON.
    let uri = "postgres://shop-db/tables/orders";
    let read = c.toolset.read_resource(uri, &c.ctx).await.unwrap();
    let described = json_contents(&read, uri);
    let tool = c.ok("pg_describe_table", json!({"table": "orders"})).await;
    assert_eq!(described, tool);
    let columns: Vec<&str> = described["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["id", "customer", "amount", "placed"]);

    // `schema.table`, as the tool's argument.
    let uri = "postgres://shop-db/tables/audit.events";
    let read = c.toolset.read_resource(uri, &c.ctx).await.unwrap();
    let events = json_contents(&read, uri);
    assert_eq!(events["schema"], "audit");
    assert_eq!(events["columns"].as_array().unwrap().len(), 2);

    for missing in [
        "postgres://shop-db/tables/ordrs",
        "postgres://shop-db/tables/nowhere.orders",
        "postgres://other-link/tables/orders",
    ] {
        let err = c.toolset.read_resource(missing, &c.ctx).await.unwrap_err();
        assert_eq!(err, ResourceError::NotFound(missing.to_owned()));
    }

    // A name matching several tables says which URIs to read instead.
    let err = c
        .toolset
        .read_resource("postgres://shop-db/tables/items", &c.ctx)
        .await
        .unwrap_err();
    let ResourceError::Failed(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("table items is ambiguous: read one of postgres://shop-db/tables/"),
        "{message}"
    );
    for table in ["public.Items", "public.ITEMS"] {
        assert!(
            message.contains(&format!("postgres://shop-db/tables/{table}")),
            "{message}"
        );
    }
    let uri = "postgres://shop-db/tables/public.Items";
    let read = c.toolset.read_resource(uri, &c.ctx).await.unwrap();
    assert_eq!(json_contents(&read, uri)["columns"][0]["name"], "a");
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_explore_table_prompts_the_tools_in_order() {
    let c = Caller::new(Link::new("test", None).toolset());
    let names: Vec<&str> = c
        .toolset
        .prompts()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["pg_explore_table"]);
    let args = PromptArgs::from([
        ("table".to_owned(), "orders".to_owned()),
        (
            "question".to_owned(),
            "Which customer spends most?".to_owned(),
        ),
    ]);
    let result = c
        .toolset
        .get_prompt("pg_explore_table", args, &c.ctx)
        .await
        .unwrap();
    let [message] = result.messages.as_slice() else {
        panic!("one message: {result:?}")
    };
    assert_eq!(message.role, Role::User);
    let text = &message.content.as_text().unwrap().text;
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} is missing: {text}"))
    };
    assert!(at("`orders`") < at("pg_describe_table"));
    assert!(at("pg_describe_table") < at("pg_table_stats"));
    assert!(at("pg_table_stats") < at("pg_query"));
    assert!(at("pg_query") < at("LIMIT 5"));
    assert!(text.ends_with("Which customer spends most?"), "{text}");
}

#[tokio::test]
async fn pg_queries_return_typed_json() {
    let db = TestDb::new("types").await;
    db.setup("CREATE TYPE mood AS ENUM ('sad', 'happy');").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let r = c
        .ok(
            "pg_query",
            json!({"sql": "SELECT 1::int2 AS a, 2::int4 AS b, 3000000000::int8 AS c, 1.5::float8 AS d, \
                'NaN'::float8 AS e, 12345.678::numeric AS f, true AS g, 'txt'::text AS h, \
                '{\"k\": [1, null]}'::jsonb AS i, '2024-02-29 12:34:56.5+00'::timestamptz AS j, \
                '2024-02-29'::date AS k, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS l, \
                '\\xdead'::bytea AS m, ARRAY[1, 2, NULL]::int4[] AS n, '10.0.0.0/24'::cidr AS o, \
                '1 day 2 hours'::interval AS p, 'happy'::mood AS q, point(1, 2) AS r, \
                NULL::text AS s, '{{a,b},{c,d}}'::text[] AS t, '12:30'::time AS u, \
                ARRAY['sad', 'happy']::mood[] AS v"}),
        )
        .await;
    assert_eq!(
        r["rows"][0],
        json!([
            1,
            2,
            3_000_000_000i64,
            1.5,
            "NaN",
            "12345.678",
            true,
            "txt",
            {"k": [1, null]},
            "2024-02-29T12:34:56.5Z",
            "2024-02-29",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "\\xdead",
            [1, 2, null],
            "10.0.0.0/24",
            "P1DT2H",
            "happy",
            "(1,2)",
            null,
            [["a", "b"], ["c", "d"]],
            "12:30:00",
            ["sad", "happy"]
        ])
    );
    let types: Vec<&str> = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(&types[..4], ["int2", "int4", "int8", "float8"]);
    assert_eq!(types[16], "mood");
    assert_eq!(types[17], "point");
    assert_eq!(r["rowCount"], 1);
    assert_eq!(r["truncated"], false);

    // The binary decoders agree with PostgreSQL's own text for numeric and timestamps.
    let r = c
        .ok(
            "pg_query",
            json!({"sql": "SELECT x, x::text FROM (VALUES (0::numeric), (-0.0001), (123456789.000100), \
                (1e20), (0.00000123), (-98765.4321), ('NaN')) v(x)"}),
        )
        .await;
    for row in r["rows"].as_array().unwrap() {
        assert_eq!(row[0], row[1], "{row}");
    }
    let r = c
        .ok(
            "pg_query",
            json!({"sql": "SELECT x, to_json(x) #>> '{}' FROM (VALUES \
                ('2000-01-01 00:00:00'::timestamp), ('1999-12-31 23:59:59.999999'), \
                ('1970-01-01 00:00:00.1'), ('2100-02-28 13:14:15'), ('0001-01-01 00:00:00')) v(x)"}),
        )
        .await;
    for row in r["rows"].as_array().unwrap() {
        assert_eq!(row[0], row[1], "{row}");
    }
    let r = c.ok("pg_query", json!({"sql": "SHOW TimeZone"})).await;
    assert_eq!(r["columns"][0]["name"], "TimeZone");
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_reads_cannot_write_and_the_data_is_unchanged() {
    let db = TestDb::new("readonly").await;
    db.setup(SHOP).await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    for (sql, refused) in [
        (
            "DELETE FROM orders",
            "cannot execute DELETE in a read-only transaction",
        ),
        (
            "INSERT INTO orders (customer) VALUES (1)",
            "cannot execute INSERT in a read-only transaction",
        ),
        (
            "UPDATE orders SET amount = 0",
            "cannot execute UPDATE in a read-only transaction",
        ),
        (
            "CREATE TABLE intruder (i int)",
            "cannot execute CREATE TABLE in a read-only transaction",
        ),
        (
            "DROP TABLE orders",
            "cannot execute DROP TABLE in a read-only transaction",
        ),
        (
            "TRUNCATE orders",
            "cannot execute TRUNCATE TABLE in a read-only transaction",
        ),
        (
            // PostgreSQL names the top-level command of a data-modifying WITH.
            "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
            "cannot execute SELECT in a read-only transaction",
        ),
        (
            "SELECT 1; DELETE FROM orders",
            "cannot insert multiple commands into a prepared statement",
        ),
        (
            "SET TRANSACTION READ WRITE",
            "transaction read-write mode must be set before any query",
        ),
    ] {
        let message = c.err("pg_query", json!({"sql": sql})).await;
        assert!(message.contains(refused), "{sql}: {message}");
    }
    // A COMMIT inside a read ends nothing that could write.
    let _ = c.call("pg_query", json!({"sql": "COMMIT"})).await;
    let message = c
        .err("pg_query", json!({"sql": "DELETE FROM orders"}))
        .await;
    assert!(message.contains("read-only transaction"), "{message}");
    assert!(message.contains("writeAccess"), "{message}");

    assert_eq!(db.count("orders").await, 3);
    assert_eq!(db.count("customers").await, 2);
    assert!(!db.exists("intruder").await);
    c.no_secrets(&secrets());
}

/// A read tool never takes a lock: LOCK, row locks, advisory locks and DO blocks are refused
/// before anything runs, and a lock request the check cannot see (a function's own LOCK) gives
/// up after the reads' short lock_timeout, so a concurrent reader of the table is not held
/// behind it until the statement timeout.
#[tokio::test]
async fn pg_reads_never_lock_and_never_block_other_readers() {
    let db = TestDb::new("locks").await;
    db.setup(&format!(
        "{SHOP}
        CREATE FUNCTION grab() RETURNS void LANGUAGE plpgsql AS $$
          BEGIN LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; END $$;"
    ))
    .await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    for (sql, refused) in [
        ("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "refuses LOCK"),
        ("lock orders", "refuses LOCK"),
        ("SELECT * FROM orders FOR UPDATE", "FOR UPDATE"),
        (
            "SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED",
            "FOR NO KEY UPDATE",
        ),
        ("SELECT pg_advisory_lock(42)", "pg_advisory_lock()"),
        (
            "SELECT pg_try_advisory_xact_lock(42)",
            "pg_try_advisory_xact_lock()",
        ),
        ("DO $$ BEGIN LOCK TABLE orders; END $$", "DO blocks"),
    ] {
        let message = c.err("pg_query", json!({"sql": sql})).await;
        assert!(message.contains(refused), "{sql}: {message}");
        assert!(message.contains("writeAccess"), "{sql}: {message}");
    }
    // Nothing of that ran: no session of the test database holds a table or advisory lock.
    let mut probe = admin(&db.name).await;
    let held: i64 = sqlx::query(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE d.datname = current_database() AND l.pid <> pg_backend_pid() \
         AND (l.locktype = 'advisory' OR l.mode <> 'AccessShareLock')",
    )
    .fetch_one(&mut probe)
    .await
    .unwrap()
    .get(0);
    assert_eq!(held, 0, "a refused statement left a lock behind");

    // A long reader holds the table; the function's exclusive lock request queues behind it,
    // and so would every later reader — for at most the reads' lock_timeout.
    let mut holder = admin(&db.name).await;
    holder
        .execute("BEGIN; SELECT count(*) FROM orders")
        .await
        .unwrap();
    let reader = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut reader = admin(&db.name).await;
        let started = Instant::now();
        let _: i64 = sqlx::query("SELECT count(*) FROM orders")
            .fetch_one(&mut reader)
            .await
            .unwrap()
            .get(0);
        started.elapsed()
    };
    let (grab, waited) = tokio::join!(c.call("pg_query", json!({"sql": "SELECT grab()"})), reader);
    let message = result_text(&grab);
    assert_eq!(grab.is_error, Some(true), "{message}");
    assert!(message.contains("lock_timeout"), "{message}");
    // Without the lock_timeout the reader would wait for the call's whole statement timeout
    // (30 s here) behind the queued exclusive request.
    assert!(
        waited < Duration::from_secs(10),
        "a concurrent reader waited {waited:?} behind a read tool's lock request"
    );
    holder.execute("ROLLBACK").await.unwrap();
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_slow_reads_are_cancelled_by_the_statement_timeout() {
    let db = TestDb::new("timeout").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    c.ctx = CallContext::new("test").with_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let message = c
        .err("pg_query", json!({"sql": "SELECT pg_sleep(5)"}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("timeout of 1s"), "{message}");
    assert!(message.contains("statement_timeout"), "{message}");
    // The connection is usable afterwards.
    let r = c.ok("pg_query", json!({"sql": "SELECT 42"})).await;
    assert_eq!(r["rows"], json!([[42]]));
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_results_stop_at_the_row_limit_and_say_so() {
    let db = TestDb::new("maxrows").await;
    let mut c = Caller::new(Link::new(&db.name, Some(5)).toolset());
    let sql = "SELECT g FROM generate_series(1, 2000000) g";
    let started = Instant::now();
    let result = c.call("pg_query", json!({"sql": sql})).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let r = result.structured_content.clone().unwrap();
    assert_eq!(r["rows"], json!([[1], [2], [3], [4], [5]]));
    assert_eq!(r["rowCount"], 5);
    assert_eq!(r["truncated"], true);
    assert_eq!(r["truncatedBy"], "maxRows");
    let text = result_text(&result);
    assert!(
        text.starts_with("5 rows shown, truncated: more rows exist beyond the limit of 5 rows"),
        "{text}"
    );
    assert!(text.contains("WHERE") && text.contains("LIMIT"), "{text}");

    // A call may ask for fewer rows, never more.
    let r = c.ok("pg_query", json!({"sql": sql, "maxRows": 2})).await;
    assert_eq!(r["rowCount"], 2);
    let r = c.ok("pg_query", json!({"sql": sql, "maxRows": 50})).await;
    assert_eq!(r["rowCount"], 5);
    // Exactly the limit is not truncated.
    let r = c
        .ok(
            "pg_query",
            json!({"sql": "SELECT g FROM generate_series(1, 5) g"}),
        )
        .await;
    assert_eq!(r["truncated"], false);
    // Connections closed after a cut result are replaced: more calls than the pool holds work.
    for _ in 0..6 {
        c.ok("pg_query", json!({"sql": sql})).await;
    }
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_long_values_are_cut() {
    let db = TestDb::new("cells").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let result = c
        .call(
            "pg_query",
            json!({"sql": "SELECT repeat('é', 5000) AS t, decode(repeat('ab', 5000), 'hex') AS b, \
                    'short' AS s, (SELECT jsonb_agg(g) FROM generate_series(1, 3000) g) AS j"}),
        )
        .await;
    let r = result.structured_content.clone().unwrap();
    let row = r["rows"][0].as_array().unwrap();
    let t = row[0].as_str().unwrap();
    assert!(t.len() <= 4096 + 40, "{}", t.len());
    assert!(
        t.ends_with("…[cut: 10000 bytes in all]"),
        "{}",
        &t[t.len() - 40..]
    );
    let b = row[1].as_str().unwrap();
    assert!(
        b.starts_with("\\xabab") && b.ends_with("…[cut: 10002 bytes in all]"),
        "{b:.40}"
    );
    assert_eq!(row[2], "short");
    assert!(row[3].as_str().unwrap().starts_with("[1,2,3,"));
    assert_eq!(r["cutValues"], 3);
    let text = result_text(&result);
    assert!(
        text.contains("3 values longer than 4096 bytes cut"),
        "{text:.300}"
    );
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_syntax_errors_are_postgres_own_messages() {
    let db = TestDb::new("syntax").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let message = c.err("pg_query", json!({"sql": "SELEC 1"})).await;
    assert!(
        message.starts_with("syntax error at or near \"SELEC\" (SQLSTATE 42601) at character 1"),
        "{message}"
    );
    let message = c.err("pg_execute", json!({"sql": "INSERT INTO"})).await;
    assert!(
        message.contains("syntax error at end of input"),
        "{message}"
    );
    assert!(message.contains("Nothing was changed"), "{message}");
    let message = c.err("pg_query", json!({"sql": "  "})).await;
    assert!(message.contains("`sql`"), "{message}");
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_an_unreachable_server_is_explained() {
    let link = Link::to("127.0.0.1", 1, "app", "postgres", None);
    let toolset = link.toolset();
    // Built without touching the network: every tool is listed.
    assert_eq!(toolset.tools().len(), 6);
    let mut c = Caller::new(toolset);
    c.ctx = CallContext::new("test").with_timeout(Duration::from_secs(4));
    let started = Instant::now();
    let message = c.err("pg_query", json!({"sql": "SELECT 1"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        message.starts_with("cannot reach postgres at 127.0.0.1:1: "),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains("NetworkPolicy"), "{message}");
    let message = c.err("pg_list_tables", json!({})).await;
    assert!(
        message.starts_with("cannot reach postgres at 127.0.0.1:1"),
        "{message}"
    );
    let err = c
        .toolset
        .read_resource("postgres://shop-db/tables/orders", &c.ctx)
        .await
        .unwrap_err();
    let ResourceError::Failed(message) = err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("cannot reach postgres at 127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains(PASSWORD));
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_an_authentication_failure_names_the_link() {
    let (host, port, _) = server();
    let link = Link::to(&host, i32::from(port), "test", "linkmcp_no_such_role", None);
    let mut c = Caller::new(link.toolset());
    let message = c.err("pg_query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(
        message,
        "authentication failed for link shop-db: check the credentials in its Secret"
    );
    // The user name is not echoed either (PostgreSQL's own message would name it).
    assert!(!message.contains("linkmcp_no_such_role"));
    let db_missing = Link::new("linkmcp_no_such_database", None);
    let mut d = Caller::new(db_missing.toolset());
    let message = d.err("pg_list_tables", json!({})).await;
    assert!(
        message.starts_with("database linkmcp_no_such_database does not exist on postgres at "),
        "{message}"
    );
    c.no_secrets(&secrets());
    d.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_execute_binds_parameters_and_reports_rows_affected() {
    let db = TestDb::new("execute").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let r = c
        .ok(
            "pg_execute",
            json!({"sql": "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, \
                    meta jsonb, active bool, price numeric, seen timestamptz)"}),
        )
        .await;
    assert_eq!(r["rowsAffected"], 0);
    let sql = "INSERT INTO items (id, name, qty, meta, active, price, seen) \
               VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz)";
    let result = c
        .call(
            "pg_execute",
            json!({"sql": sql, "params": [1, "o'hara; DROP TABLE items", 5, {"tags": ["a"]}, true, 2.5, "2024-01-02T03:04:05Z"]}),
        )
        .await;
    assert_eq!(
        result.content[0].as_text().unwrap().text,
        "OK: 1 row affected."
    );
    c.ok(
        "pg_execute",
        json!({"sql": sql, "params": [2, "bob", null, null, false, null, null]}),
    )
    .await;
    let r = c
        .ok(
            "pg_execute",
            json!({"sql": "UPDATE items SET qty = coalesce(qty, 0) + $1 RETURNING id, qty", "params": [10]}),
        )
        .await;
    assert_eq!(r["rowsAffected"], 2);
    assert_eq!(r["rows"], json!([[1, 15], [2, 10]]));
    let r = c
        .ok(
            "pg_query",
            json!({"sql": "SELECT name, meta, active, price, seen FROM items ORDER BY id"}),
        )
        .await;
    assert_eq!(
        r["rows"],
        json!([
            ["o'hara; DROP TABLE items", {"tags": ["a"]}, true, "2.5", "2024-01-02T03:04:05Z"],
            ["bob", null, false, null, null]
        ])
    );
    let r = c
        .ok(
            "pg_execute",
            json!({"sql": "DELETE FROM items WHERE id = $1", "params": [2]}),
        )
        .await;
    assert_eq!(r["rowsAffected"], 1);
    assert_eq!(db.count("items").await, 1);

    // A wrong parameter type gets PostgreSQL's hint, and nothing changes.
    let message = c
        .err(
            "pg_execute",
            json!({"sql": "UPDATE items SET seen = $1", "params": ["2024-01-01"]}),
        )
        .await;
    assert!(
        message.contains("is of type timestamp with time zone"),
        "{message}"
    );
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_execute_runs_one_statement_and_commits_only_on_success() {
    let db = TestDb::new("atomic").await;
    db.setup("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1), (2, 2);")
        .await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let message = c
        .err(
            "pg_execute",
            json!({"sql": "INSERT INTO t VALUES (3, 3); DELETE FROM t"}),
        )
        .await;
    assert!(
        message.contains("cannot insert multiple commands into a prepared statement"),
        "{message}"
    );
    assert_eq!(db.count("t").await, 2);

    // A statement failing part-way leaves nothing behind.
    let message = c
        .err(
            "pg_execute",
            json!({"sql": "UPDATE t SET v = 10 / (id - 2)"}),
        )
        .await;
    assert!(message.contains("division by zero"), "{message}");
    let r = c
        .ok("pg_query", json!({"sql": "SELECT v FROM t ORDER BY id"}))
        .await;
    assert_eq!(r["rows"], json!([[1], [2]]));
    let message = c
        .err("pg_execute", json!({"sql": "INSERT INTO t VALUES (1, 9)"}))
        .await;
    assert!(
        message.contains("duplicate key value violates unique constraint"),
        "{message}"
    );
    assert!(
        message.contains("DETAIL: Key (id)=(1) already exists."),
        "{message}"
    );
    assert_eq!(db.count("t").await, 2);
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_no_session_state_leaks_between_calls() {
    let db = TestDb::new("session").await;
    let mut c = Caller::new(Link::new(&db.name, None).toolset());
    let default = c.ok("pg_query", json!({"sql": "SHOW search_path"})).await;
    // A committed session setting, a prepared statement and a temporary table.
    c.ok("pg_execute", json!({"sql": "SET search_path TO nowhere"}))
        .await;
    c.ok("pg_execute", json!({"sql": "PREPARE wipe AS SELECT 1"}))
        .await;
    c.ok(
        "pg_execute",
        json!({"sql": "CREATE TEMP TABLE scratch (i int)"}),
    )
    .await;
    // Each call may land on any pooled connection: try more calls than the pool holds.
    for _ in 0..8 {
        let r = c.ok("pg_query", json!({"sql": "SHOW search_path"})).await;
        assert_eq!(r["rows"], default["rows"]);
        let message = c.err("pg_query", json!({"sql": "EXECUTE wipe"})).await;
        assert!(
            message.contains("prepared statement \"wipe\" does not exist"),
            "{message}"
        );
        let message = c
            .err("pg_query", json!({"sql": "SELECT * FROM scratch"}))
            .await;
        assert!(message.contains("does not exist"), "{message}");
    }
    // A table whose columns change between two identical reads is read afresh.
    c.ok("pg_execute", json!({"sql": "CREATE TABLE shape (a int)"}))
        .await;
    c.ok("pg_query", json!({"sql": "SELECT * FROM shape"}))
        .await;
    c.ok(
        "pg_execute",
        json!({"sql": "ALTER TABLE shape ADD COLUMN b text"}),
    )
    .await;
    let r = c
        .ok("pg_query", json!({"sql": "SELECT * FROM shape"}))
        .await;
    assert_eq!(r["columns"].as_array().unwrap().len(), 2);
    c.no_secrets(&secrets());
}

#[tokio::test]
async fn pg_links_are_governed_through_the_registration_line() {
    let db = TestDb::new("governed").await;
    let mut link = Link::new(&db.name, None);
    link.spec.write_access = false;
    link.spec.tool_prefix = Some("shop".into());
    let ctx = LinkContext {
        name: "shop-db",
        namespace: "data",
        spec: &link.spec,
        credentials: &link.credentials,
    };
    let toolset = linkmcp_toolsets::link::build(&ctx, "shop").unwrap();
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "shop_list_databases",
            "shop_list_tables",
            "shop_describe_table",
            "shop_table_stats",
            "shop_query"
        ]
    );
    let r = toolset
        .call(
            "shop_query",
            args(json!({"sql": "SELECT 1 AS one"})),
            &CallContext::new("t"),
        )
        .await;
    assert_eq!(r.structured_content.unwrap()["rows"], json!([[1]]));

    // The prompt is served under the link's prefix and names the tools as served.
    let prompts: Vec<&str> = toolset.prompts().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(prompts, ["shop_explore_table"]);
    let args = PromptArgs::from([("table".to_owned(), "orders".to_owned())]);
    let result = toolset
        .get_prompt("shop_explore_table", args, &CallContext::new("t"))
        .await
        .unwrap();
    let text = &result.messages[0].content.as_text().unwrap().text;
    assert!(text.contains("shop_describe_table"), "{text}");
    for default_name in ["pg_describe_table", "pg_table_stats", "pg_query"] {
        assert!(!text.contains(default_name), "{text}");
    }
    // Table URIs keep the link's name and reach the backend.
    let uri = "postgres://shop-db/tables/orders";
    let err = toolset
        .read_resource(uri, &CallContext::new("t"))
        .await
        .unwrap_err();
    assert_eq!(err, ResourceError::NotFound(uri.to_owned()));
}
