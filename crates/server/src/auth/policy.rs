//! What an authenticated identity may do: `requiredScopes` and `toolScopes` of
//! `McpServer.spec.auth`.
//!
//! Kept apart from authentication so that the HTTP layer (which refuses a request), the
//! `tools/list` filter and the `tools/call` check all decide by the same rules: a caller needs
//! every required scope, and for a tool also every scope of every `toolScopes` entry whose
//! glob matches the tool's name.

use globset::{GlobBuilder, GlobMatcher};
use linkmcp_api::server::AuthSpec;

use super::Identity;

/// The scope rules of one configuration.
#[derive(Debug, Default)]
pub struct Policy {
    required: Vec<String>,
    tools: Vec<ToolRule>,
}

#[derive(Debug)]
struct ToolRule {
    /// `None` when the pattern is not a valid glob: the rule then applies to every tool, so a
    /// typo cannot expose a tool its author meant to protect.
    matcher: Option<GlobMatcher>,
    scopes: Vec<String>,
}

impl ToolRule {
    fn matches(&self, tool: &str) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.is_match(tool))
    }
}

impl Policy {
    /// The rules of `spec`.
    pub fn new(spec: &AuthSpec) -> Self {
        let tools = spec
            .tool_scopes
            .iter()
            .map(|rule| {
                let matcher = match GlobBuilder::new(&rule.tools).build() {
                    Ok(glob) => Some(glob.compile_matcher()),
                    Err(err) => {
                        tracing::error!(
                            pattern = %rule.tools,
                            scopes = %rule.scopes.join(" "),
                            error = %err,
                            "toolScopes pattern is not a valid glob; until it is fixed its \
                             scopes are required for every tool"
                        );
                        None
                    }
                };
                ToolRule {
                    matcher,
                    scopes: rule.scopes.clone(),
                }
            })
            .collect();
        Self {
            required: spec.required_scopes.clone(),
            tools,
        }
    }

    /// Whether some tools need scopes beyond the required ones.
    pub fn restricts_tools(&self) -> bool {
        self.tools.iter().any(|rule| !rule.scopes.is_empty())
    }

    /// The required scopes `identity` lacks, in declaration order.
    pub fn missing_required(&self, identity: &Identity) -> Vec<String> {
        missing(identity, self.required.iter())
    }

    /// The scopes `identity` lacks to call `tool`: required ones first, then those of every
    /// matching `toolScopes` entry, each once.
    pub fn missing_for_tool(&self, identity: &Identity, tool: &str) -> Vec<String> {
        let needed = self.required.iter().chain(
            self.tools
                .iter()
                .filter(|rule| rule.matches(tool))
                .flat_map(|rule| rule.scopes.iter()),
        );
        missing(identity, needed)
    }
}

fn missing<'a>(identity: &Identity, needed: impl Iterator<Item = &'a String>) -> Vec<String> {
    if identity.all_scopes {
        return Vec::new();
    }
    let mut lacking: Vec<String> = Vec::new();
    for scope in needed {
        if !identity.has_scope(scope) && !lacking.contains(scope) {
            lacking.push(scope.clone());
        }
    }
    lacking
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use linkmcp_api::server::ToolScope;

    use super::*;

    fn policy(required: &[&str], rules: &[(&str, &[&str])]) -> Policy {
        Policy::new(&AuthSpec {
            required_scopes: required.iter().map(|s| (*s).to_owned()).collect(),
            tool_scopes: rules
                .iter()
                .map(|(tools, scopes)| ToolScope {
                    tools: (*tools).to_owned(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                })
                .collect(),
            ..AuthSpec::default()
        })
    }

    fn jwt(scopes: &[&str]) -> Identity {
        Identity::jwt(
            "u",
            scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>(),
        )
    }

    #[test]
    fn required_scopes_are_needed_by_every_caller_but_api_keys() {
        let p = policy(&["mcp:tools", "mcp:read"], &[]);
        assert_eq!(p.missing_required(&jwt(&["mcp:read"])), ["mcp:tools"]);
        assert!(
            p.missing_required(&jwt(&["mcp:tools", "mcp:read"]))
                .is_empty()
        );
        assert!(p.missing_required(&Identity::api_key("ci")).is_empty());
        assert_eq!(
            p.missing_required(&Identity::anonymous()),
            ["mcp:tools", "mcp:read"]
        );
        assert!(!p.restricts_tools());
    }

    #[test]
    fn every_matching_rule_adds_its_scopes() {
        let p = policy(
            &["mcp"],
            &[
                ("*_execute", &["db:write"]),
                ("pg_*", &["pg", "db:write"]),
                ("kafka_produce", &["kafka:write"]),
            ],
        );
        assert!(p.restricts_tools());
        assert_eq!(
            p.missing_for_tool(&jwt(&[]), "pg_execute"),
            ["mcp", "db:write", "pg"]
        );
        assert_eq!(
            p.missing_for_tool(&jwt(&["mcp", "pg"]), "pg_query"),
            ["db:write"],
            "every `pg_*` tool needs db:write too"
        );
        assert!(
            p.missing_for_tool(&jwt(&["mcp", "pg", "db:write"]), "pg_execute")
                .is_empty()
        );
        assert_eq!(
            p.missing_for_tool(&jwt(&["mcp", "pg"]), "pg_execute"),
            ["db:write"]
        );
        assert_eq!(
            p.missing_for_tool(&jwt(&["mcp"]), "ch_execute"),
            ["db:write"]
        );
        assert!(
            p.missing_for_tool(&jwt(&["mcp"]), "kafka_consume")
                .is_empty()
        );
        assert!(p.missing_for_tool(&jwt(&["mcp"]), "ping").is_empty());
        assert!(
            p.missing_for_tool(&Identity::api_key("ci"), "pg_execute")
                .is_empty(),
            "API keys carry every scope"
        );
    }

    #[test]
    fn globs_match_whole_names_case_sensitively() {
        let p = policy(
            &[],
            &[
                ("pg_?xecute", &["w"]),
                ("grafana_{create,delete}_*", &["g"]),
            ],
        );
        let nobody = jwt(&[]);
        assert_eq!(p.missing_for_tool(&nobody, "pg_execute"), ["w"]);
        assert!(p.missing_for_tool(&nobody, "pg_execute_more").is_empty());
        assert!(p.missing_for_tool(&nobody, "PG_EXECUTE").is_empty());
        assert_eq!(
            p.missing_for_tool(&nobody, "grafana_create_annotation"),
            ["g"]
        );
        assert!(
            p.missing_for_tool(&nobody, "grafana_list_folders")
                .is_empty()
        );
    }

    #[test]
    fn an_invalid_glob_protects_every_tool() {
        let p = policy(&[], &[("pg_[execute", &["admin"])]);
        assert_eq!(p.missing_for_tool(&jwt(&[]), "ping"), ["admin"]);
        assert!(p.missing_for_tool(&jwt(&["admin"]), "ping").is_empty());
    }
}
