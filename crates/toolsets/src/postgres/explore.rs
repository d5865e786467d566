//! What a PostgreSQL link serves beside its tools: one resource template, a table's
//! description by URI (`postgres://<link>/tables/{table}`, `cnpg://...` for cnpg), and the
//! `pg_explore_table` prompt (`cnpg_explore_table`), a short procedure over the link's tools.
//!
//! Both are named under the type's default prefix, like the tools; the link's own prefix is
//! applied by the wrapper every link is served through. Reading a table's URI runs the
//! describe_table code path (see [`super::PgToolset`]); the prompt needs no database.

use rmcp::model::Role;
use serde_json::json;

use super::{Flavor, Tool};
use crate::link::BuildError;
use crate::prompt::{
    GetPromptResult, Prompt, PromptArgs, PromptArgument, PromptError, PromptMessage,
};
use crate::resource::{ResourceTemplate, ResourceTemplateDef};

/// The MIME type of a table's description.
pub(super) const JSON: &str = "application/json";

/// The resource template and the prompt of one link.
pub(super) struct Explore {
    /// The link type, naming the tools.
    flavor: Flavor,
    /// The database the link reaches, as the tool descriptions name it.
    what: String,
    /// `<scheme>://<link>/tables/`: a table's URI is this followed by the table.
    tables_uri: String,
    templates: Vec<ResourceTemplateDef>,
    prompts: Vec<Prompt>,
}

impl Explore {
    /// The template and prompt of the link `link` of type `flavor`, reaching `what`.
    pub(super) fn new(flavor: Flavor, link: &str, what: &str) -> Result<Self, BuildError> {
        let prefix = flavor.prefix();
        let tables_uri = format!("{}://{link}/tables/", flavor.scheme());
        let description = format!(
            "The columns, keys and indexes of one table of the {what}, as {} returns them \
             (JSON); {{table}} is `table` or `schema.table`.",
            Tool::DescribeTable.name(flavor)
        );
        let template =
            ResourceTemplate::new(format!("{tables_uri}{{table}}"), format!("{prefix}_table"))
                .with_title(format!("A table of link {link}"))
                .with_description(description)
                .with_mime_type(JSON);
        let template =
            ResourceTemplateDef::new(template).map_err(|e| BuildError::Invalid(e.to_string()))?;
        let prompt = Prompt::new(
            format!("{prefix}_explore_table"),
            Some(format!(
                "Explore one table of the {what}: describe it, read its statistics and a sample \
                 of its rows, then answer a question about it or summarise what it holds."
            )),
            Some(vec![
                PromptArgument::new("table")
                    .with_description("The table: `orders`, or `sales.orders` with its schema.")
                    .with_required(true),
                PromptArgument::new("question")
                    .with_description(
                        "What to find out about the table. Without it, the answer summarises \
                         what the table holds.",
                    )
                    .with_required(false),
            ]),
        );
        Ok(Self {
            flavor,
            what: what.to_owned(),
            tables_uri,
            templates: vec![template],
            prompts: vec![prompt],
        })
    }

    pub(super) fn templates(&self) -> &[ResourceTemplateDef] {
        &self.templates
    }

    pub(super) fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    /// The table `uri` names, if it is one of this link's table URIs.
    pub(super) fn table_of(&self, uri: &str) -> Option<String> {
        self.templates
            .iter()
            .find_map(|t| t.matches(uri))
            .and_then(|mut values| values.remove("table"))
    }

    /// The URI of `table` (`table` or `schema.table`).
    pub(super) fn table_uri(&self, table: &str) -> String {
        format!("{}{table}", self.tables_uri)
    }

    /// The messages of the prompt `name` for `args` (checked by the registry against the
    /// prompt's arguments).
    pub(super) fn prompt(
        &self,
        name: &str,
        args: &PromptArgs,
    ) -> Result<GetPromptResult, PromptError> {
        if !self.prompts.iter().any(|p| p.name == name) {
            return Err(PromptError::NotFound(name.to_owned()));
        }
        let table = args.get("table").map_or("", |t| t.trim());
        if table.is_empty() {
            return Err(PromptError::InvalidArguments(format!(
                "prompt `{name}` needs the argument `table`: a table name such as `orders` or \
                 `sales.orders`"
            )));
        }
        let question = args
            .get("question")
            .map(|q| q.trim())
            .filter(|q| !q.is_empty());
        let table_arg = json!({ "table": table });
        let sample = json!({ "sql": format!("SELECT * FROM {table} LIMIT 5") });
        let mut text = format!(
            "Explore the table `{table}` of the {what}.\n\
             1. Call {describe} with {table_arg}: its columns, keys and indexes.\n\
             2. Call {stats} with {table_arg}: its rows, size and activity.\n\
             3. Call {query} with {sample} for a small sample of its rows.\n",
            what = self.what,
            describe = Tool::DescribeTable.name(self.flavor),
            stats = Tool::TableStats.name(self.flavor),
            query = Tool::Query.name(self.flavor),
        );
        match question {
            Some(question) => {
                text.push_str("Then answer this question from what you found: ");
                text.push_str(question);
            }
            None => text.push_str(
                "Then summarise what the table holds: what one row stands for, its key columns, \
                 how it relates to other tables (its foreign keys) and how big it is.",
            ),
        }
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(format!("Explore the table `{table}` of the {}", self.what)),
        )
    }
}
