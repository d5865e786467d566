//! Turning a call's JSON arguments into a tool's typed parameters.
//!
//! A model that sends a wrong argument needs to know which one and why, or it repeats the
//! mistake; [`parse_args`] answers with an `isError` result naming the field.

use rmcp::model::{CallToolResult, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, de::DeserializeOwned};

use crate::output;

/// Parameters of a tool that takes no arguments; any argument given is refused by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Deserializes `args` into `P`, or returns the `isError` result to send back.
///
/// The message names the offending field by its path (`invalid argument `limit`: ...`,
/// `invalid argument `filter.name`: ...`); a missing or unknown field is named by serde's own
/// message (`missing field `sql``, `unknown field `x`, expected ...`).
pub fn parse_args<P: DeserializeOwned>(args: JsonObject) -> Result<P, CallToolResult> {
    serde_path_to_error::deserialize(serde_json::Value::Object(args))
        .map_err(|err| output::error(describe(&err)))
}

/// Parses `args` as `P` and runs `run` with them: a toolset's dispatch in one line per tool.
/// Bad arguments are the answer, naming the field, and `run` is not called.
pub async fn with_args<P, F, Fut>(args: JsonObject, run: F) -> CallToolResult
where
    P: DeserializeOwned,
    F: FnOnce(P) -> Fut,
    Fut: std::future::Future<Output = CallToolResult>,
{
    match parse_args(args) {
        Ok(parsed) => run(parsed).await,
        Err(bad) => bad,
    }
}

fn describe(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = err.path().to_string();
    let inner = err.inner();
    if path.is_empty() || path == "." {
        format!("invalid arguments: {inner}")
    } else {
        format!("invalid argument `{path}`: {inner}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        sql: String,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        filter: Option<Filter>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        name: String,
    }

    fn args(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    fn message(result: &CallToolResult) -> String {
        assert_eq!(result.is_error, Some(true));
        result.content[0].as_text().unwrap().text.clone()
    }

    #[test]
    fn valid_arguments_parse() {
        let q: Query = parse_args(args(
            json!({"sql": "select 1", "limit": 5, "filter": {"name": "users"}}),
        ))
        .unwrap();
        assert_eq!(q.sql, "select 1");
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.filter.map(|f| f.name).as_deref(), Some("users"));
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = parse_args::<Query>(args(json!({"sql": "select 1", "limit": "x"}))).unwrap_err();
        assert_eq!(
            message(&err),
            "invalid argument `limit`: invalid type: string \"x\", expected u32"
        );
    }

    #[test]
    fn a_nested_bad_field_is_named_by_path() {
        let err =
            parse_args::<Query>(args(json!({"sql": "s", "filter": {"name": 3}}))).unwrap_err();
        let msg = message(&err);
        assert!(
            msg.starts_with("invalid argument `filter.name`: invalid type: integer `3`"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = parse_args::<Query>(args(json!({"limit": 1}))).unwrap_err();
        assert_eq!(message(&err), "invalid arguments: missing field `sql`");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = parse_args::<Query>(args(json!({"sql": "s", "limt": 1}))).unwrap_err();
        let msg = message(&err);
        assert!(msg.contains("unknown field `limt`"), "{msg}");
        assert!(
            msg.contains("`limit`"),
            "the accepted fields are listed: {msg}"
        );
    }

    #[test]
    fn no_args_accepts_empty_and_refuses_extras() {
        let _: NoArgs = parse_args(JsonObject::new()).unwrap();
        let err = parse_args::<NoArgs>(args(json!({"x": 1}))).unwrap_err();
        assert!(message(&err).contains("unknown field `x`"));
    }

    #[tokio::test]
    async fn with_args_runs_only_on_good_arguments() {
        #[derive(serde::Deserialize)]
        struct Limit {
            limit: u32,
        }
        let good: JsonObject = serde_json::from_str(r#"{"limit": 3}"#).unwrap();
        let result = with_args(good, |l: Limit| async move {
            crate::output::ok_text(l.limit.to_string())
        })
        .await;
        assert_eq!(result.is_error, Some(false));
        let bad: JsonObject = serde_json::from_str(r#"{"limit": "x"}"#).unwrap();
        let result = with_args(bad, |_: Limit| async { panic!("must not run") }).await;
        assert_eq!(result.is_error, Some(true));
    }
}
