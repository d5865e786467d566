//! The pure half of the cluster source: watched objects in, [`DesiredState`] out.
//!
//! In a cluster the server reads no Secret but its own: the controller copies each link's
//! credentials, each Agent's provider key and the client API keys into `<server>-credentials`
//! under the keys [`credentials_key`] names, and this module splits that one Secret back into
//! per-link credentials and key maps. No I/O happens here, so every rule is tested without an
//! API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use linkmcp_api::names::{credentials_key, credentials_secret_name};
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use linkmcp_toolsets::credentials::Credentials;

use crate::source::{DesiredState, Served, namespace_of, resolve_link, secret_data, served_by};

/// What the watches hold, before selection. The watches are already narrowed (one namespace,
/// the server and its Secret by name); selecting again here keeps the function correct for any
/// input.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub servers: Vec<McpServer>,
    pub links: Vec<McpLink>,
    pub agents: Vec<Agent>,
    pub tasks: Vec<AiTask>,
    pub secrets: Vec<Secret>,
}

/// The desired state of McpServer `server` in `namespace`.
///
/// - links, agents and tasks: those whose `spec.serverRef` names `server` in `namespace`, by
///   name;
/// - a link's credentials: the `link.<link>.*` keys of the server's Secret, prefix stripped; a
///   link that names credentials but has none there yet gets a problem saying so;
/// - client API keys: the `apikey.*` keys, when the McpServer enables API keys;
/// - agent keys: `agent.<agent>.apiKey`, for each served Agent that names a key.
pub fn desired_state(server: &str, namespace: &str, objects: Objects) -> DesiredState {
    let in_namespace = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                        name: &str| {
        meta.name.as_deref() == Some(name) && namespace_of(meta) == namespace
    };
    let mcp_server = objects
        .servers
        .into_iter()
        .find(|s| in_namespace(&s.metadata, server));
    let secret_name = credentials_secret_name(server);
    let data = objects
        .secrets
        .iter()
        .find(|s| in_namespace(&s.metadata, &secret_name))
        .map(secret_data)
        .unwrap_or_default();

    let links = served_by(objects.links, server, namespace);
    let mut link_credentials = split_link_credentials(&data, links.iter().map(Served::name));
    let links = links
        .into_iter()
        .map(|link| {
            resolve_link(link, |link, _reference| {
                link_credentials
                    .remove(link.name())
                    .map(Credentials::new)
                    .ok_or_else(|| {
                        format!(
                            "credentials of link {} are not in Secret {secret_name} yet: the \
                             controller copies them; check the McpLink's CredentialsResolved \
                             condition",
                            link.name()
                        )
                    })
            })
        })
        .collect();

    let api_keys_enabled = mcp_server
        .as_ref()
        .is_some_and(|s| s.spec.auth.as_ref().is_some_and(|a| a.api_keys.is_some()));
    let api_keys = if api_keys_enabled {
        let prefix = credentials_key::api_key("");
        data.iter()
            .filter_map(|(key, value)| {
                let id = key.strip_prefix(&prefix)?;
                (!id.is_empty()).then(|| (id.to_owned(), value.clone()))
            })
            .collect()
    } else {
        BTreeMap::new()
    };

    let agents = served_by(objects.agents, server, namespace);
    let agent_api_keys = agents
        .iter()
        .filter(|agent| agent.spec.api_key_secret_ref.is_some())
        .filter_map(|agent| {
            let value = data.get(&credentials_key::agent_api_key(agent.name()))?;
            Some((agent.name().to_owned(), value.clone()))
        })
        .collect();

    DesiredState {
        server: mcp_server,
        links,
        agents,
        tasks: served_by(objects.tasks, server, namespace),
        api_keys: Credentials::new(api_keys),
        agent_api_keys: Credentials::new(agent_api_keys),
        notification_secrets: Credentials::new(
            data.iter()
                .filter(|(key, _)| key.starts_with("ref."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    }
}

/// The `link.<link>.<credential>` keys of `data`, grouped by link (credential -> value).
///
/// Object names may hold dots, and so may Secret keys (`ca.crt`): a key belongs to the served
/// link with the longest name it starts with, so `link.a.b.password` is `password` of link
/// `a.b` when both `a` and `a.b` are served, and `ca.crt` of link `a` when only `a` is.
fn split_link_credentials<'a>(
    data: &BTreeMap<String, String>,
    links: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let prefixes: Vec<(&str, String)> = links
        .map(|link| (link, credentials_key::link(link, "")))
        .collect();
    let mut split: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in data {
        let owner = prefixes
            .iter()
            .filter(|(_, prefix)| key.len() > prefix.len() && key.starts_with(prefix.as_str()))
            .max_by_key(|(_, prefix)| prefix.len());
        if let Some((link, prefix)) = owner {
            split
                .entry((*link).to_owned())
                .or_default()
                .insert(key[prefix.len()..].to_owned(), value.clone());
        }
    }
    split
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use linkmcp_api::common::{CredentialsSecretRef, SecretKeyRef, ServerRef};
    use linkmcp_api::server::ApiKeysSpec;
    use linkmcp_api::{AgentSpec, AiTaskSpec, McpLinkSpec, McpServerSpec};

    use super::*;
    use crate::source::LinkState;

    const NS: &str = "team";

    fn meta(name: &str, namespace: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        }
    }

    fn server(name: &str, api_keys: bool) -> McpServer {
        let mut spec: McpServerSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        if api_keys {
            spec.auth.get_or_insert_default().api_keys = Some(ApiKeysSpec {
                secret_name: "client-keys".to_owned(),
            });
        }
        McpServer {
            metadata: meta(name, NS),
            spec,
            status: None,
        }
    }

    fn link(name: &str, server: &str, namespace: &str, spec: serde_json::Value) -> McpLink {
        let mut spec: McpLinkSpec = serde_json::from_value(spec).unwrap();
        spec.server_ref = ServerRef {
            name: server.to_owned(),
        };
        McpLink {
            metadata: meta(name, namespace),
            spec,
            status: None,
        }
    }

    fn prometheus(name: &str, server: &str, namespace: &str) -> McpLink {
        let spec = serde_json::json!({"serverRef": {"name": server}, "prometheus": {"url": "http://p:9090"}});
        link(name, server, namespace, spec)
    }

    fn postgres_with_credentials(name: &str) -> McpLink {
        let mut link = link(
            name,
            "srv",
            NS,
            serde_json::json!({"serverRef": {"name": "srv"}, "postgres": {"host": "h", "database": "d"}}),
        );
        link.spec.credentials_secret_ref = Some(CredentialsSecretRef {
            name: format!("{name}-db"),
            keys: BTreeMap::new(),
        });
        link
    }

    fn agent(name: &str, server: &str, key: bool) -> Agent {
        let mut spec: AgentSpec =
            serde_json::from_value(serde_json::json!({"serverRef": {"name": server}})).unwrap();
        spec.api_key_secret_ref = key.then(|| SecretKeyRef {
            name: "provider".to_owned(),
            key: "key".to_owned(),
        });
        Agent {
            metadata: meta(name, NS),
            spec,
            status: None,
        }
    }

    fn task(name: &str, server: &str, namespace: &str) -> AiTask {
        let spec: AiTaskSpec = serde_json::from_value(serde_json::json!({
            "serverRef": {"name": server},
            "description": "look around",
        }))
        .unwrap();
        AiTask {
            metadata: meta(name, namespace),
            spec,
            status: None,
        }
    }

    fn secret(name: &str, namespace: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: meta(name, namespace),
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn names<T: Served>(objects: &[T]) -> Vec<&str> {
        objects.iter().map(Served::name).collect()
    }

    fn link_names(state: &DesiredState) -> Vec<&str> {
        state.links.iter().map(LinkState::name).collect()
    }

    #[test]
    fn keeps_only_what_this_server_serves_in_its_namespace() {
        let objects = Objects {
            servers: vec![server("other", false), server("srv", false)],
            links: vec![
                prometheus("zeta", "srv", NS),
                prometheus("theirs", "other", NS),
                prometheus("elsewhere", "srv", "prod"),
                prometheus("alpha", "srv", NS),
            ],
            agents: vec![
                agent("b", "srv", false),
                agent("x", "other", false),
                agent("a", "srv", false),
            ],
            tasks: vec![
                task("t2", "srv", NS),
                task("t1", "srv", NS),
                task("t3", "srv", "prod"),
                task("t4", "other", NS),
            ],
            secrets: vec![],
        };
        let state = desired_state("srv", NS, objects);
        assert_eq!(
            state.server.as_ref().unwrap().metadata.name.as_deref(),
            Some("srv")
        );
        assert_eq!(link_names(&state), ["alpha", "zeta"]);
        assert!(
            state
                .links
                .iter()
                .all(|l| l.problem.is_none() && l.credentials.is_empty())
        );
        assert_eq!(names(&state.agents), ["a", "b"]);
        assert_eq!(names(&state.tasks), ["t1", "t2"]);
    }

    #[test]
    fn a_server_of_the_same_name_elsewhere_is_not_this_one() {
        let mut elsewhere = server("srv", true);
        elsewhere.metadata.namespace = Some("prod".to_owned());
        let objects = Objects {
            servers: vec![elsewhere],
            secrets: vec![secret("srv-credentials", "prod", &[("apikey.ci", "k")])],
            ..Objects::default()
        };
        let state = desired_state("srv", NS, objects);
        assert_eq!(state.server, None);
        assert!(state.api_keys.is_empty());
    }

    #[test]
    fn link_credentials_are_split_per_link_with_the_prefix_stripped() {
        let objects = Objects {
            servers: vec![server("srv", false)],
            links: vec![
                postgres_with_credentials("orders"),
                postgres_with_credentials("orders.eu"),
                postgres_with_credentials("users"),
                prometheus("metrics", "srv", NS),
            ],
            secrets: vec![
                secret(
                    "srv-credentials",
                    NS,
                    &[
                        ("link.orders.username", "app"),
                        ("link.orders.password", "pw-orders"),
                        ("link.orders.ca.crt", "PEM"),
                        ("link.orders.eu.password", "pw-eu"),
                        ("link.users.password", "pw-users"),
                        ("link.metrics.token", "ignored: metrics names no Secret"),
                        ("link.gone.password", "a link that is not served"),
                    ],
                ),
                secret(
                    "other-credentials",
                    NS,
                    &[("link.metrics.token", "another server's")],
                ),
            ],
            ..Objects::default()
        };
        let state = desired_state("srv", NS, objects);
        assert_eq!(
            link_names(&state),
            ["metrics", "orders", "orders.eu", "users"]
        );
        let creds = |i: usize| -> Vec<(&str, &str)> {
            let c = &state.links[i].credentials;
            c.names().map(|n| (n, c.get(n).unwrap())).collect()
        };
        assert!(state.links[0].credentials.is_empty());
        assert_eq!(state.links[0].problem, None);
        assert_eq!(
            creds(1),
            [
                ("ca.crt", "PEM"),
                ("password", "pw-orders"),
                ("username", "app")
            ]
        );
        assert_eq!(creds(2), [("password", "pw-eu")]);
        assert_eq!(creds(3), [("password", "pw-users")]);
        assert!(state.links.iter().all(|l| l.problem.is_none()));
    }

    #[test]
    fn a_link_whose_credentials_are_not_copied_yet_says_so() {
        let cnpg = link(
            "cluster-db",
            "srv",
            NS,
            serde_json::json!({"serverRef": {"name": "srv"}, "cnpg": {"cluster": "pg"}}),
        );
        let objects = Objects {
            servers: vec![server("srv", false)],
            links: vec![cnpg, postgres_with_credentials("orders")],
            secrets: vec![secret(
                "srv-credentials",
                NS,
                &[("link.other.password", "x")],
            )],
            ..Objects::default()
        };
        let state = desired_state("srv", NS, objects);
        assert_eq!(
            state.links[0].problem.as_deref(),
            Some(
                "credentials of link cluster-db are not in Secret srv-credentials yet: the \
                 controller copies them; check the McpLink's CredentialsResolved condition"
            )
        );
        assert_eq!(
            state.links[1].problem.as_deref(),
            Some(
                "credentials of link orders are not in Secret srv-credentials yet: the \
                 controller copies them; check the McpLink's CredentialsResolved condition"
            )
        );

        // No Secret at all (the controller has not created it yet): the same problem.
        let state = desired_state(
            "srv",
            NS,
            Objects {
                links: vec![postgres_with_credentials("orders")],
                ..Objects::default()
            },
        );
        assert!(
            state.links[0]
                .problem
                .as_deref()
                .unwrap()
                .starts_with("credentials of link orders are not in Secret srv-credentials yet")
        );
    }

    #[test]
    fn an_invalid_backend_count_is_the_problem_as_in_the_manifest_source() {
        let none = link(
            "none",
            "srv",
            NS,
            serde_json::json!({"serverRef": {"name": "srv"}}),
        );
        let two = link(
            "two",
            "srv",
            NS,
            serde_json::json!({"serverRef": {"name": "srv"}, "postgres": {"host": "h", "database": "d"}, "valkey": {"host": "h"}}),
        );
        let state = desired_state(
            "srv",
            NS,
            Objects {
                links: vec![none, two],
                ..Objects::default()
            },
        );
        assert!(
            state.links[0]
                .problem
                .as_deref()
                .unwrap()
                .starts_with("no backend block is set; set exactly one of: postgres, cnpg")
        );
        assert_eq!(
            state.links[1].problem.as_deref(),
            Some("exactly one backend block may be set, found postgres and valkey")
        );
    }

    #[test]
    fn client_api_keys_come_from_apikey_keys_when_the_server_enables_them() {
        let data = [
            ("apikey.ci", "key-ci"),
            ("apikey.laptop", "key-laptop"),
            ("apikey.", "no id: ignored"),
            ("link.x.password", "not an api key"),
        ];
        let objects = |api_keys| Objects {
            servers: vec![server("srv", api_keys)],
            secrets: vec![secret("srv-credentials", NS, &data)],
            ..Objects::default()
        };
        let state = desired_state("srv", NS, objects(true));
        let ids: Vec<&str> = state.api_keys.names().collect();
        assert_eq!(ids, ["ci", "laptop"]);
        assert_eq!(state.api_keys.get("ci"), Some("key-ci"));

        // Left-over keys do not authenticate anyone once the server stops using API keys.
        let state = desired_state("srv", NS, objects(false));
        assert!(state.api_keys.is_empty());
    }

    #[test]
    fn agent_keys_are_those_of_served_agents_that_name_one() {
        let objects = Objects {
            servers: vec![server("srv", false)],
            agents: vec![
                agent("claude", "srv", true),
                agent("local", "srv", false),
                agent("pending", "srv", true),
                agent("theirs", "other", true),
            ],
            secrets: vec![secret(
                "srv-credentials",
                NS,
                &[
                    ("agent.claude.apiKey", "sk-claude"),
                    ("agent.local.apiKey", "named by no agent"),
                    ("agent.theirs.apiKey", "another server's agent"),
                ],
            )],
            ..Objects::default()
        };
        let state = desired_state("srv", NS, objects);
        let agents: Vec<&str> = state.agent_api_keys.names().collect();
        assert_eq!(agents, ["claude"]);
        assert_eq!(state.agent_api_keys.get("claude"), Some("sk-claude"));
    }

    #[test]
    fn the_same_objects_in_another_order_give_the_same_state() {
        let objects = Objects {
            servers: vec![server("srv", false)],
            links: vec![prometheus("b", "srv", NS), prometheus("a", "srv", NS)],
            agents: vec![agent("y", "srv", false), agent("x", "srv", false)],
            tasks: vec![task("q", "srv", NS), task("p", "srv", NS)],
            secrets: vec![],
        };
        let mut reversed = objects.clone();
        reversed.links.reverse();
        reversed.agents.reverse();
        reversed.tasks.reverse();
        assert_eq!(
            desired_state("srv", NS, objects),
            desired_state("srv", NS, reversed)
        );
    }
}
