//! What each link of one McpServer amounts to: its credentials, and the tools it contributes.
//!
//! One pure function over the server's links and the Secrets they reference, used for the
//! links' status, the server's tool count and the credentials Secret alike. Tool names come
//! from the toolsets crate — [`link::prefixes`] over all the server's links, then
//! [`link::build`] per link — the same code the server registers tools with, so
//! `status.tools` lists exactly what clients see. Builds are lazy: nothing here touches the
//! network.

use std::collections::BTreeMap;

use linkmcp_api::McpLink;
use linkmcp_api::link::CnpgService;
use linkmcp_api::names::{credentials_secret_name, reason};
use linkmcp_api::server::OnDuplicateTools;
use linkmcp_api::{Backend, LinkType};
use linkmcp_toolsets::Access;
use linkmcp_toolsets::credentials::Credentials;
use linkmcp_toolsets::link::{self, BuildError, LinkContext, LinkNaming};

use crate::secrets::{Problem, Secrets};

/// Reason of a link whose type has no toolset in this version.
pub const UNSUPPORTED_LINK_TYPE: &str = "UnsupportedLinkType";

/// A link's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsEval {
    /// The link names no credentials Secret.
    None,
    /// Found: the Secret's name and the values by credential name.
    Resolved {
        secret: String,
        values: BTreeMap<String, String>,
    },
    /// The Secret or a mapped key is missing.
    Problem(Problem),
}

/// Why a link contributes no tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotServed {
    pub reason: &'static str,
    pub message: String,
}

/// The tools a link contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// Served names, in the toolset's order.
    pub names: Vec<String>,
    /// Whether any is a write tool.
    pub write: bool,
}

/// One link, evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEval {
    /// The link's name.
    pub name: String,
    /// Its type, when exactly one backend block is set.
    pub link_type: Option<LinkType>,
    /// Its credentials.
    pub credentials: CredentialsEval,
    /// Its tools, or why it has none.
    pub tools: Result<Tools, NotServed>,
}

/// Evaluates the links of one McpServer (all in one namespace), sorted by name.
pub fn evaluate(links: &[McpLink], secrets: &Secrets, policy: OnDuplicateTools) -> Vec<LinkEval> {
    let mut links: Vec<&McpLink> = links.iter().collect();
    links.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    let naming: Vec<LinkNaming<'_>> = links
        .iter()
        .filter_map(|l| {
            Some(LinkNaming {
                name: l.metadata.name.as_deref()?,
                link_type: l.spec.backend().ok()?.link_type(),
                tool_prefix: l.spec.tool_prefix.as_deref(),
                created: l.metadata.creation_timestamp.as_ref(),
            })
        })
        .collect();
    let prefixes = link::prefixes(&naming);

    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    links
        .into_iter()
        .map(|l| {
            let name = l.metadata.name.clone().unwrap_or_default();
            let prefix = prefixes.get(&name).map(String::as_str).unwrap_or_default();
            let mut eval = evaluate_one(l, &name, prefix, secrets);
            if policy == OnDuplicateTools::Error
                && let Ok(tools) = &eval.tools
            {
                let clash = tools
                    .names
                    .iter()
                    .find_map(|tool| Some((tool, owners.get(tool)?)));
                if let Some((tool, owner)) = clash {
                    eval.tools = Err(NotServed {
                        reason: reason::DUPLICATE_TOOL,
                        message: format!(
                            "tool {tool} is also served by link {owner}; set spec.toolPrefix on \
                             one of the two links (the server's onDuplicateTools is error)"
                        ),
                    });
                } else {
                    for tool in &tools.names {
                        owners.insert(tool.clone(), name.clone());
                    }
                }
            }
            eval
        })
        .collect()
}

fn evaluate_one(link: &McpLink, name: &str, prefix: &str, secrets: &Secrets) -> LinkEval {
    let backend = link.spec.backend();
    let credentials = match link.spec.credentials_secret() {
        None => CredentialsEval::None,
        Some(reference) => match secrets.resolve(&reference) {
            Ok(values) => CredentialsEval::Resolved {
                secret: reference.name,
                values,
            },
            Err(problem) => CredentialsEval::Problem(problem),
        },
    };
    let link_type = backend.as_ref().ok().map(Backend::link_type);
    let tools = match (&backend, &credentials) {
        (Err(err), _) => Err(NotServed {
            reason: reason::INVALID_SPEC,
            message: err.to_string(),
        }),
        (Ok(_), CredentialsEval::Problem(problem)) => Err(NotServed {
            reason: problem.reason,
            message: problem.message.clone(),
        }),
        (Ok(_), resolved) => {
            let values = match resolved {
                CredentialsEval::Resolved { values, .. } => values.clone(),
                _ => BTreeMap::new(),
            };
            let credentials = Credentials::new(values);
            let ctx = LinkContext {
                name,
                namespace: link.metadata.namespace.as_deref().unwrap_or("default"),
                spec: &link.spec,
                credentials: &credentials,
            };
            match link::build(&ctx, prefix) {
                Ok(toolset) => Ok(Tools {
                    names: toolset
                        .tools()
                        .iter()
                        .map(|d| d.name().to_owned())
                        .collect(),
                    write: toolset.tools().iter().any(|d| d.access() == Access::Write),
                }),
                Err(err @ BuildError::Unsupported(_)) => Err(NotServed {
                    reason: UNSUPPORTED_LINK_TYPE,
                    message: format!("{err}: check the server image version"),
                }),
                Err(err) => Err(NotServed {
                    reason: reason::INVALID_SPEC,
                    message: err.to_string(),
                }),
            }
        }
    };
    LinkEval {
        name: name.to_owned(),
        link_type,
        credentials,
        tools,
    }
}

/// The host a CloudNativePG link connects to: the cluster's `-rw` (or `-ro`) Service.
pub fn cnpg_host(link: &McpLink) -> Option<String> {
    let cnpg = link.spec.cnpg.as_ref()?;
    let suffix = match cnpg.service {
        CnpgService::Rw => "rw",
        CnpgService::Ro => "ro",
    };
    Some(format!("{}-{suffix}", cnpg.cluster))
}

/// The CredentialsResolved message of a link whose credentials resolved.
pub fn resolved_message(link: &McpLink, server: &str, secret: &str, names: &[&str]) -> String {
    let mut message = format!(
        "credentials {} from Secret {secret} are copied into Secret {}",
        names.join(", "),
        credentials_secret_name(server)
    );
    if let (Some(host), Some(cnpg)) = (cnpg_host(link), &link.spec.cnpg) {
        message.push_str(&format!(
            " (CloudNativePG cluster {}: host {host})",
            cnpg.cluster
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::{Value, json};

    use super::*;

    fn link(name: &str, spec: Value) -> McpLink {
        McpLink {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            spec: serde_json::from_value(spec).unwrap(),
            status: None,
        }
    }

    fn postgres(name: &str, extra: Value) -> McpLink {
        let mut spec = json!({"serverRef": {"name": "data"},
            "postgres": {"host": "db", "database": "app"}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        link(name, spec)
    }

    #[test]
    fn tools_are_named_as_the_server_names_them() {
        let links = [
            postgres("b-db", json!({"writeAccess": true})),
            postgres("a-db", json!({})),
        ];
        let evals = evaluate(&links, &Secrets::default(), OnDuplicateTools::Error);
        let names: Vec<&str> = evals.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a-db", "b-db"]);
        let first = evals[0].tools.as_ref().unwrap();
        let second = evals[1].tools.as_ref().unwrap();
        assert!(first.names.iter().all(|t| t.starts_with("pg_")));
        assert!(!first.write);
        assert!(second.names.iter().all(|t| t.starts_with("pg_b_db_")));
        assert!(second.write, "writeAccess adds the write tools");
        assert!(second.names.len() > first.names.len());
        assert_eq!(evals[0].link_type, Some(LinkType::Postgres));
        assert_eq!(evals[0].credentials, CredentialsEval::None);
    }

    #[test]
    fn a_clashing_prefix_is_explained_under_the_error_policy() {
        let links = [
            postgres("a-db", json!({})),
            postgres("b-db", json!({"toolPrefix": "pg"})),
        ];
        let evals = evaluate(&links, &Secrets::default(), OnDuplicateTools::Error);
        assert!(evals[0].tools.is_ok());
        let clash = evals[1].tools.as_ref().unwrap_err();
        assert_eq!(clash.reason, reason::DUPLICATE_TOOL);
        assert!(
            clash.message.contains("is also served by link a-db"),
            "{}",
            clash.message
        );

        let warned = evaluate(&links, &Secrets::default(), OnDuplicateTools::Warn);
        assert!(warned.iter().all(|e| e.tools.is_ok()));
    }

    #[test]
    fn a_cnpg_link_reads_the_clusters_app_secret() {
        let links = [link(
            "orders",
            json!({"serverRef": {"name": "data"}, "cnpg": {"cluster": "orders-pg"}}),
        )];
        let evals = evaluate(&links, &Secrets::new("team", []), OnDuplicateTools::Error);
        match &evals[0].credentials {
            CredentialsEval::Problem(problem) => assert_eq!(
                problem.message,
                "Secret orders-pg-app not found in namespace team"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            evals[0].tools.as_ref().unwrap_err().reason,
            reason::SECRET_NOT_FOUND
        );
        assert_eq!(cnpg_host(&links[0]).as_deref(), Some("orders-pg-rw"));
        let message = resolved_message(&links[0], "data", "orders-pg-app", &["password"]);
        assert_eq!(
            message,
            "credentials password from Secret orders-pg-app are copied into Secret \
             data-credentials (CloudNativePG cluster orders-pg: host orders-pg-rw)"
        );
    }
}
