//! Tool names of links: each link type's default prefix, and which prefix each link gets.
//!
//! A pure function of the set of links, so the server (registering tools) and the controller
//! (writing `status.tools`) compute the same names.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use linkmcp_api::LinkType;

/// The prefix of a type's tools as DESIGN §4 names them (`pg_query`, `rmq_publish`, ...).
/// Git tools carry none (`clone_repo`, `read_file`).
pub fn default_prefix(link_type: LinkType) -> &'static str {
    match link_type {
        LinkType::Postgres => "pg",
        LinkType::Cnpg => "cnpg",
        LinkType::Mongodb => "mongo",
        LinkType::Clickhouse => "ch",
        LinkType::S3 => "s3",
        LinkType::Kafka => "kafka",
        LinkType::Rabbitmq => "rmq",
        LinkType::Prometheus => "prom",
        LinkType::Loki => "loki",
        LinkType::Grafana => "grafana",
        LinkType::Valkey => "valkey",
        LinkType::Argocd => "argocd",
        LinkType::Fastapi => "fastapi",
        LinkType::Git => "",
    }
}

/// What naming needs to know of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkNaming<'a> {
    /// The link's name.
    pub name: &'a str,
    /// Its type.
    pub link_type: LinkType,
    /// Its `spec.toolPrefix`.
    pub tool_prefix: Option<&'a str>,
    /// Its creation time (absent in standalone manifests).
    pub created: Option<&'a Time>,
}

/// The prefix of each link, by link name.
///
/// A link with a `toolPrefix` uses it. Among the others, the oldest link of each type (by
/// creation time, then name) gets the type's default prefix and every later one a derived
/// prefix, `<default>_<link name>` (`pg_analytics_query`), so adding a second link of a type
/// never renames the tools clients already use from the first.
pub fn prefixes(links: &[LinkNaming<'_>]) -> BTreeMap<String, String> {
    let mut ordered: Vec<&LinkNaming<'_>> = links.iter().collect();
    ordered.sort_by(|a, b| {
        let a_time = a.created.map(|t| t.0);
        let b_time = b.created.map(|t| t.0);
        a_time.cmp(&b_time).then(a.name.cmp(b.name))
    });
    let mut default_taken = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    for link in ordered {
        let prefix = match link.tool_prefix {
            Some(prefix) => prefix.to_owned(),
            None if default_taken.insert(link.link_type) => {
                default_prefix(link.link_type).to_owned()
            }
            None => derived_prefix(link.link_type, link.name),
        };
        out.insert(link.name.to_owned(), prefix);
    }
    out
}

fn derived_prefix(link_type: LinkType, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    match default_prefix(link_type) {
        "" => format!("{}_{name}", link_type.as_str()),
        base => format!("{base}_{name}"),
    }
}

/// The served name of a tool declared as `declared` by a backend whose default prefix is
/// `default`, for a link using `prefix`.
pub(crate) fn served_name(declared: &str, default: &str, prefix: &str) -> String {
    if prefix == default {
        return declared.to_owned();
    }
    let rest = if default.is_empty() {
        declared
    } else {
        declared
            .strip_prefix(default)
            .and_then(|r| r.strip_prefix('_'))
            .unwrap_or(declared)
    };
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}_{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link<'a>(name: &'a str, t: LinkType, prefix: Option<&'a str>) -> LinkNaming<'a> {
        LinkNaming {
            name,
            link_type: t,
            tool_prefix: prefix,
            created: None,
        }
    }

    #[test]
    fn the_first_link_of_a_type_keeps_the_default() {
        let p = prefixes(&[
            link("b-db", LinkType::Postgres, None),
            link("a-db", LinkType::Postgres, None),
            link("orders", LinkType::Postgres, Some("orders")),
            link("cache", LinkType::Valkey, None),
            link("repo", LinkType::Git, None),
            link("repo2", LinkType::Git, None),
        ]);
        assert_eq!(p["a-db"], "pg");
        assert_eq!(p["b-db"], "pg_b_db");
        assert_eq!(p["orders"], "orders");
        assert_eq!(p["cache"], "valkey");
        assert_eq!(p["repo"], "");
        assert_eq!(p["repo2"], "git_repo2");
    }

    #[test]
    fn creation_time_decides_before_the_name() {
        use k8s_openapi::jiff::Timestamp;
        let old = Time(Timestamp::from_second(1_000).expect("valid"));
        let new = Time(Timestamp::from_second(2_000).expect("valid"));
        let mut a = link("a-db", LinkType::Postgres, None);
        a.created = Some(&new);
        let mut z = link("z-db", LinkType::Postgres, None);
        z.created = Some(&old);
        let p = prefixes(&[a, z]);
        assert_eq!(p["z-db"], "pg");
        assert_eq!(p["a-db"], "pg_a_db");
    }

    #[test]
    fn served_names() {
        assert_eq!(served_name("pg_query", "pg", "pg"), "pg_query");
        assert_eq!(served_name("pg_query", "pg", "orders"), "orders_query");
        assert_eq!(served_name("pg_query", "pg", "pg_b_db"), "pg_b_db_query");
        assert_eq!(served_name("read_file", "", "docs"), "docs_read_file");
        assert_eq!(served_name("read_file", "", ""), "read_file");
    }
}
