//! Unit tests of the ClickHouse toolset's pure parts: the tab-separated reader, error parsing,
//! quoting, naming and the topology component. Behaviour against a real server is tested in
//! `tests/clickhouse.rs`.

#![allow(clippy::unwrap_used)]

use linkmcp_api::McpLinkSpec;

use super::http::{execution_seconds, parse_failure};
use super::rows::{Collector, Cut, Kind, Line, MAX_CELL_BYTES, unescape};
use super::*;
use crate::credentials::Credentials;

fn link_spec(url: &str) -> (McpLinkSpec, ClickhouseBackend) {
    let block = ClickhouseBackend {
        url: url.to_owned(),
        database: "analytics".to_owned(),
    };
    let mut spec: McpLinkSpec =
        serde_json::from_value(json!({"serverRef": {"name": "mcp"}})).unwrap();
    spec.clickhouse = Some(block.clone());
    (spec, block)
}

#[test]
fn rows_are_typed_by_their_column_types() {
    let mut c = Collector::new(10, usize::MAX);
    assert_eq!(c.line("n\tf\ts\tmaybe\tbig\tarr"), Line::More);
    assert_eq!(
        c.line("UInt8\tFloat64\tString\tNullable(Int32)\tUInt64\tArray(UInt8)"),
        Line::More
    );
    assert_eq!(
        c.line("7\t1.5\ta\\tb\\\\c\\nd\t\\N\t18446744073709551615\t[1,2]"),
        Line::More
    );
    let set = c.finish();
    assert_eq!(set.columns[3].type_name, "Nullable(Int32)");
    assert_eq!(
        set.rows,
        vec![vec![
            json!(7),
            json!(1.5),
            json!("a\tb\\c\nd"),
            Value::Null,
            json!(18446744073709551615u64),
            json!("[1,2]")
        ]]
    );
    assert!(!set.truncated);
}

#[test]
fn reading_stops_at_the_row_limit() {
    let mut c = Collector::new(2, usize::MAX);
    c.line("n");
    c.line("UInt64");
    assert_eq!(c.line("1"), Line::More);
    assert_eq!(c.line("2"), Line::More);
    assert_eq!(c.line("3"), Line::Full);
    let set = c.finish();
    assert_eq!(set.row_count, 2);
    assert_eq!(set.truncated_by, Some(Cut::MaxRows));
    assert!(rows::render(&set, 2).contains("truncated at the limit of 2 rows"));
}

#[test]
fn reading_stops_at_the_output_limit_and_cuts_long_values() {
    let mut c = Collector::new(100, 3 * MAX_CELL_BYTES);
    c.line("s");
    c.line("String");
    let long = "x".repeat(MAX_CELL_BYTES * 2);
    let mut full = false;
    for _ in 0..10 {
        if c.line(&long) == Line::Full {
            full = true;
            break;
        }
    }
    assert!(full);
    let set = c.finish();
    assert_eq!(set.truncated_by, Some(Cut::OutputBytes));
    assert!(set.cut_values >= 1);
    let first = set.rows[0][0].as_str().unwrap();
    assert!(first.len() < MAX_CELL_BYTES + 64, "{}", first.len());
    assert!(first.ends_with("bytes]"), "{first}");
}

#[test]
fn an_error_inside_the_rows_is_reported() {
    let mut c = Collector::new(10, usize::MAX);
    c.line("a\tb");
    c.line("UInt8\tUInt8");
    c.line("1\t2");
    let line = "Code: 241, e.displayText() = DB::Exception: Memory limit exceeded, e.what() = \
                DB::Exception";
    match c.line(line) {
        Line::Error(message) => assert!(message.starts_with("Code: 241"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kinds_see_through_nullable_and_low_cardinality() {
    assert_eq!(Kind::of("Nullable(UInt32)"), Kind::Int);
    assert_eq!(Kind::of("LowCardinality(Nullable(Float32))"), Kind::Float);
    assert_eq!(Kind::of("Decimal(9, 2)"), Kind::Text);
    assert_eq!(Kind::Float.value("nan"), (json!("nan"), false));
    assert_eq!(unescape("a\\'b\\0"), "a'b\0");
}

#[test]
fn failures_are_parsed_in_old_and_new_formats() {
    let old = "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., \
               e.what() = DB::Exception\n";
    assert_eq!(
        parse_failure(old),
        Some(Failure::Server {
            code: Some(60),
            message: "Table default.nope doesn't exist.".into()
        })
    );
    let new = "Code: 62. DB::Exception: Syntax error: failed at position 1 ('SELEC'). \
               (SYNTAX_ERROR) (version 23.8.1.1)";
    assert_eq!(
        parse_failure(new),
        Some(Failure::Server {
            code: Some(62),
            message: "Syntax error: failed at position 1 ('SELEC'). (SYNTAX_ERROR)".into()
        })
    );
    assert_eq!(parse_failure("no code here"), None);
    assert_eq!(
        missing_table("Table default.nope doesn't exist."),
        Some((Some("default".into()), "nope".into()))
    );
}

#[test]
fn literals_and_identifiers_are_escaped() {
    assert_eq!(quote("a'b\\c"), "'a\\'b\\\\c'");
    assert_eq!(ident("we`ird"), "`we\\`ird`");
    assert_eq!(execution_seconds(std::time::Duration::from_secs(30)), 28);
    assert_eq!(execution_seconds(std::time::Duration::from_millis(300)), 1);
}

#[tokio::test]
async fn tools_are_named_and_credentials_stay_out_of_urls() {
    let (spec, block) = link_spec("http://ch.data:8123");
    let creds = Credentials::default();
    let link = LinkContext {
        name: "events",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    let toolset = toolset(&link, &block).unwrap();
    let names: Vec<&str> = toolset.tools().iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "ch_list_databases",
            "ch_list_tables",
            "ch_describe_table",
            "ch_table_stats",
            "ch_query",
            "ch_execute"
        ]
    );

    let (spec, block) = link_spec("http://user:pw@ch.data:8123");
    let link = LinkContext {
        spec: &spec,
        ..link
    };
    let err = toolset_err(&link, &block);
    assert!(err.contains("must not carry credentials"), "{err}");
    assert!(!err.contains("pw@"), "{err}");
}

fn toolset_err(link: &LinkContext<'_>, block: &ClickhouseBackend) -> String {
    match toolset(link, block) {
        Ok(_) => panic!("the toolset was built"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_component_shows_where_without_credentials() {
    let (spec, _) = link_spec("https://ch.data:8443/?user=x");
    let creds = Credentials::default();
    let link = LinkContext {
        name: "events",
        namespace: "data",
        spec: &spec,
        credentials: &creds,
    };
    let c = component(&link);
    assert_eq!(c.link_type, "clickhouse");
    assert_eq!(c.kind, "database");
    assert_eq!(c.endpoint["host"], "ch.data");
    assert_eq!(c.endpoint["port"], "8443");
    assert_eq!(c.endpoint["url"], "https://ch.data:8443/");
    assert_eq!(c.endpoint["database"], "analytics");
}
