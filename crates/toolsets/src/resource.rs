//! Resources a toolset serves beside its tools: documents a client reads by URI.
//!
//! A toolset lists fixed resources (rmcp's [`Resource`], one URI each) and URI templates
//! ([`ResourceTemplateDef`], e.g. `pg://orders/tables/{table}`) and answers
//! [`Toolset::read_resource`](crate::Toolset::read_resource). The registry routes a read to the
//! toolset that lists the URI, or else to the one whose template matches it, so a toolset only
//! ever sees URIs it declared.

use std::collections::BTreeMap;

pub use rmcp::model::{Resource, ResourceContents, ResourceTemplate};

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// No resource has this URI (a JSON-RPC `-32602` carrying the URI, per SEP-2164).
    #[error("resource `{0}` not found")]
    NotFound(String),
    /// The resource exists but reading it failed; the message says what a person can do.
    #[error("{0}")]
    Failed(String),
}

/// A URI template that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("URI template `{template}` is invalid: {reason}")]
pub struct UriTemplateError {
    template: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A level-1 URI template (RFC 6570 simple string expansion, `{name}`), used only to match
/// the URIs clients read: a variable matches one or more characters other than `/`, `?` and
/// `#`, so it never spans a path segment.
///
/// Two variables must be separated by a literal; `{a}{b}` has no single reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    template: String,
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parses `template`.
    pub fn parse(template: &str) -> Result<Self, UriTemplateError> {
        let invalid = |reason| UriTemplateError {
            template: template.to_owned(),
            reason,
        };
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or(invalid("a `{` is never closed"))?;
                    let name = &rest[1..end];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(invalid(
                            "a variable is a non-empty name of A-Z, a-z, 0-9 and `_` (only \
                             level-1 templates are served)",
                        ));
                    }
                    if matches!(parts.last(), Some(Part::Variable(_))) {
                        return Err(invalid("two variables need a literal between them"));
                    }
                    parts.push(Part::Variable(name.to_owned()));
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if literal.contains('}') {
                        return Err(invalid("a `}` is never opened"));
                    }
                    parts.push(Part::Literal(literal.to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        if !parts.iter().any(|p| matches!(p, Part::Variable(_))) {
            return Err(invalid("a template has at least one `{variable}`"));
        }
        Ok(Self {
            template: template.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.template
    }

    /// The variables' values if `uri` is an expansion of this template.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Part::Variable(name) => {
                    let segment_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                    let end = match parts.peek() {
                        // The value ends where the next literal starts, within the segment.
                        Some(Part::Literal(next)) => {
                            rest[..segment_end].find(next.as_str()).or_else(|| {
                                rest[segment_end..]
                                    .starts_with(next.as_str())
                                    .then_some(segment_end)
                            })?
                        }
                        _ => segment_end,
                    };
                    if end == 0 {
                        return None;
                    }
                    values.insert(name.clone(), rest[..end].to_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }
}

/// One resource template a toolset serves: its MCP description and its matcher.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTemplateDef {
    template: ResourceTemplate,
    matcher: UriTemplate,
}

impl ResourceTemplateDef {
    /// A template listed as `template`, whose `uri_template` must be a level-1 template.
    pub fn new(template: ResourceTemplate) -> Result<Self, UriTemplateError> {
        let matcher = UriTemplate::parse(&template.uri_template)?;
        Ok(Self { template, matcher })
    }

    /// The template as listed to clients.
    pub fn template(&self) -> &ResourceTemplate {
        &self.template
    }

    /// The variables' values if `uri` is one of this template's resources.
    pub fn matches(&self, uri: &str) -> Option<BTreeMap<String, String>> {
        self.matcher.matches(uri)
    }
}

/// The contents of a text resource, as a read returns them.
pub fn text_contents(
    uri: impl Into<String>,
    mime_type: &str,
    text: impl Into<String>,
) -> ResourceContents {
    ResourceContents::TextResourceContents {
        uri: uri.into(),
        mime_type: Some(mime_type.to_owned()),
        text: text.into(),
        meta: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_match_one_segment() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(
            t.matches("test://template/123/data"),
            Some(vars(&[("id", "123")]))
        );
        assert_eq!(t.matches("test://template/1/2/data"), None);
        assert_eq!(t.matches("test://template//data"), None);
        assert_eq!(t.matches("test://template/123/data/more"), None);
        assert_eq!(t.matches("other://template/123/data"), None);
    }

    #[test]
    fn trailing_variables_and_inner_literals() {
        let t = UriTemplate::parse("pg://orders/tables/{schema}.{table}").unwrap();
        assert_eq!(
            t.matches("pg://orders/tables/public.items"),
            Some(vars(&[("schema", "public"), ("table", "items")]))
        );
        assert_eq!(t.matches("pg://orders/tables/items"), None);
        assert_eq!(t.matches("pg://orders/tables/a/b.c"), None);
        let t = UriTemplate::parse("linkmcp://links/{name}").unwrap();
        assert_eq!(
            t.matches("linkmcp://links/orders"),
            Some(vars(&[("name", "orders")]))
        );
        assert_eq!(t.matches("linkmcp://links/orders?x=1"), None);
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "no-variables://x",
            "x://{open",
            "x://close}",
            "x://{}",
            "x://{a}{b}",
            "x://{+reserved}",
        ] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
