//! Prompts a toolset serves beside its tools: message templates a client fills in and hands to
//! its model (for a link: a worked procedure that uses the link's tools).
//!
//! A toolset lists rmcp [`Prompt`]s and answers
//! [`Toolset::get_prompt`](crate::Toolset::get_prompt). The registry checks the arguments
//! against the listed prompt first ([`check_prompt_args`]), so a toolset receives exactly the
//! declared arguments as strings, every required one present.

use std::collections::BTreeMap;

use rmcp::model::JsonObject;
pub use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage};

/// A prompt's arguments by name, as checked against its declaration.
pub type PromptArgs = BTreeMap<String, String>;

/// Why a prompt could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// No prompt has this name (a JSON-RPC `-32602`).
    #[error("prompt `{0}` not found")]
    NotFound(String),
    /// The arguments do not fit the prompt (a JSON-RPC `-32602` naming the argument).
    #[error("{0}")]
    InvalidArguments(String),
    /// Producing the messages failed; the message says what a person can do.
    #[error("{0}")]
    Failed(String),
}

/// `args` checked against `prompt`'s declared arguments: every value a string, no unknown
/// name, every required one present.
pub fn check_prompt_args(
    prompt: &Prompt,
    args: Option<JsonObject>,
) -> Result<PromptArgs, PromptError> {
    let declared = prompt.arguments.as_deref().unwrap_or_default();
    let mut checked = PromptArgs::new();
    for (name, value) in args.unwrap_or_default() {
        if !declared.iter().any(|a| a.name == name) {
            let known = declared
                .iter()
                .map(|a| format!("`{}`", a.name))
                .collect::<Vec<_>>();
            let known = if known.is_empty() {
                "it takes no arguments".to_owned()
            } else {
                format!("its arguments are {}", known.join(", "))
            };
            return Err(PromptError::InvalidArguments(format!(
                "prompt `{}` has no argument `{name}`; {known}",
                prompt.name
            )));
        }
        let serde_json::Value::String(value) = value else {
            return Err(PromptError::InvalidArguments(format!(
                "argument `{name}` of prompt `{}` must be a string",
                prompt.name
            )));
        };
        checked.insert(name, value);
    }
    for argument in declared {
        if argument.required == Some(true) && !checked.contains_key(&argument.name) {
            return Err(PromptError::InvalidArguments(format!(
                "prompt `{}` needs the argument `{}`",
                prompt.name, argument.name
            )));
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn prompt() -> Prompt {
        Prompt::new(
            "explore",
            Some("Explore a table."),
            Some(vec![
                PromptArgument::new("table").with_required(true),
                PromptArgument::new("focus").with_required(false),
            ]),
        )
    }

    fn args(value: serde_json::Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    #[test]
    fn declared_string_arguments_pass() {
        let checked = check_prompt_args(&prompt(), args(json!({"table": "orders"}))).unwrap();
        assert_eq!(checked.get("table").map(String::as_str), Some("orders"));
        assert!(!checked.contains_key("focus"));
    }

    #[test]
    fn missing_unknown_and_non_string_arguments_are_named() {
        let err = check_prompt_args(&prompt(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt `explore` needs the argument `table`"
        );
        let err = check_prompt_args(&prompt(), args(json!({"table": "t", "x": "y"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "prompt `explore` has no argument `x`; its arguments are `table`, `focus`"
        );
        let err = check_prompt_args(&prompt(), args(json!({"table": 3}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument `table` of prompt `explore` must be a string"
        );
    }
}
