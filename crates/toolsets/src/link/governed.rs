//! The link's governance applied to a backend's toolset: names, filters and write access.
//!
//! Write tools of a link without `writeAccess` are not merely hidden: they are absent from the
//! wrapper, so no client, agent or REST call can reach them by name.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use globset::{Glob, GlobSet, GlobSetBuilder};
use linkmcp_api::link::{LinkLimits, ToolFilter};
use rmcp::model::{CallToolResult, JsonObject};

use super::BuildError;
use super::naming::served_name;
use crate::{Access, CallContext, ToolDef, Toolset, ToolsetLimits, output};

/// A backend toolset as one link serves it.
pub struct Governed {
    inner: Arc<dyn Toolset>,
    defs: Vec<ToolDef>,
    /// Served name -> the name the backend declared.
    declared: HashMap<String, String>,
    /// The link's own bounds (`spec.limits`).
    limits: ToolsetLimits,
}

impl Governed {
    /// Serves `inner` (whose tools are declared under `default_prefix`) with `prefix`, keeping
    /// the tools `filter` admits and, without `write_access`, only read tools.
    pub fn new(
        inner: Arc<dyn Toolset>,
        default_prefix: &str,
        prefix: &str,
        filter: &ToolFilter,
        write_access: bool,
    ) -> Result<Self, BuildError> {
        let include = glob_set("tools.include", &filter.include)?;
        let exclude = glob_set("tools.exclude", &filter.exclude)?;
        let mut defs = Vec::new();
        let mut declared = HashMap::new();
        for def in inner.tools() {
            if def.access() == Access::Write && !write_access {
                continue;
            }
            let name = served_name(def.name(), default_prefix, prefix);
            if !filter.include.is_empty() && !include.is_match(&name) {
                continue;
            }
            if exclude.is_match(&name) {
                continue;
            }
            let served = def
                .renamed(name.clone())
                .map_err(|e| BuildError::Invalid(format!("toolPrefix {prefix:?}: {e}")))?;
            declared.insert(name, def.name().to_owned());
            defs.push(served);
        }
        Ok(Self {
            inner,
            defs,
            declared,
            limits: ToolsetLimits::default(),
        })
    }

    /// Applies the link's `spec.limits` (timeout, max bytes) to every call instead of the
    /// server's. `maxRows` is the backend's to apply.
    pub fn with_limits(mut self, limits: &LinkLimits) -> Self {
        let positive = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        self.limits = ToolsetLimits {
            timeout: positive(limits.timeout_seconds).map(std::time::Duration::from_secs),
            max_output_bytes: positive(limits.max_bytes).and_then(|v| usize::try_from(v).ok()),
        };
        self
    }
}

fn glob_set(field: &str, patterns: &[String]) -> Result<GlobSet, BuildError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|e| {
            BuildError::Invalid(format!("{field}: invalid pattern {pattern:?}: {e}"))
        })?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| BuildError::Invalid(format!("{field}: {e}")))
}

impl Toolset for Governed {
    fn tools(&self) -> &[ToolDef] {
        &self.defs
    }

    fn limits(&self) -> ToolsetLimits {
        self.limits
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        args: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, CallToolResult> {
        match self.declared.get(name) {
            Some(declared) => self.inner.call(declared, args, ctx),
            None => Box::pin(async move {
                output::error(format!("tool `{name}` is not served by this link"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::NoArgs;

    /// A backend echoing which declared tool was called.
    struct Echo(Vec<ToolDef>);

    impl Toolset for Echo {
        fn tools(&self) -> &[ToolDef] {
            &self.0
        }
        fn call<'a>(
            &'a self,
            name: &'a str,
            _args: JsonObject,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, CallToolResult> {
            Box::pin(async move { output::ok_text(name.to_owned()) })
        }
    }

    fn echo() -> Arc<dyn Toolset> {
        Arc::new(Echo(vec![
            ToolDef::read::<NoArgs>("pg_query", "q").unwrap(),
            ToolDef::read::<NoArgs>("pg_list_tables", "l").unwrap(),
            ToolDef::write::<NoArgs>("pg_execute", "e").unwrap(),
        ]))
    }

    fn names(g: &Governed) -> Vec<&str> {
        g.tools().iter().map(ToolDef::name).collect()
    }

    #[test]
    fn write_tools_exist_only_with_write_access() {
        let read_only = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), false).unwrap();
        assert_eq!(names(&read_only), ["pg_query", "pg_list_tables"]);
        let writable = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), true).unwrap();
        assert_eq!(
            names(&writable),
            ["pg_query", "pg_list_tables", "pg_execute"]
        );
    }

    #[tokio::test]
    async fn a_hidden_write_tool_cannot_be_called_by_name() {
        let g = Governed::new(echo(), "pg", "pg", &ToolFilter::default(), false).unwrap();
        let result = g
            .call("pg_execute", JsonObject::new(), &CallContext::new("t"))
            .await;
        assert_eq!(result.is_error, Some(true));
    }

    #[tokio::test]
    async fn prefixed_names_route_to_the_declared_tool() {
        let g = Governed::new(echo(), "pg", "orders", &ToolFilter::default(), false).unwrap();
        assert_eq!(names(&g), ["orders_query", "orders_list_tables"]);
        let result = g
            .call("orders_query", JsonObject::new(), &CallContext::new("t"))
            .await;
        let text = result.content[0].as_text().unwrap().text.clone();
        assert_eq!(text, "pg_query");
    }

    #[test]
    fn include_and_exclude_filter_served_names() {
        let filter = ToolFilter {
            include: vec!["orders_*".into()],
            exclude: vec!["*_list_*".into()],
        };
        let g = Governed::new(echo(), "pg", "orders", &filter, true).unwrap();
        assert_eq!(names(&g), ["orders_query", "orders_execute"]);
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let filter = ToolFilter {
            include: vec!["pg_[".into()],
            exclude: vec![],
        };
        let err = Governed::new(echo(), "pg", "pg", &filter, false)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("tools.include: invalid pattern \"pg_[\""),
            "{err}"
        );
    }
}
