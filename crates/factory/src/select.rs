//! Which tools a run offers the model, chosen locally from the task's words: zero API calls.
//!
//! Every tool schema sent to the model costs input tokens on every round trip, and a long list
//! of irrelevant tools makes the model pick worse. So a run offers only:
//!
//! 1. the core tools (`ping`, `server_info`), always;
//! 2. the tools of each family the request names through the keyword table (e.g. "cpu" ->
//!    Prometheus) — directly, or through what its words imply ([`IMPLIED`]: "disk filling
//!    up" implies metrics, "bounce" implies restart). Of a named family it keeps the tools
//!    whose names and descriptions match the request, its discovery tool (a read tool that
//!    needs no argument), and in an act run that asks for a change its write tools. A tool
//!    belongs to a family by its link type when the host knows it, else by its name prefix,
//!    else (a custom `toolPrefix`) by its description naming the backend;
//! 3. the other tools ranked by BM25 over the terms of their names (split on `_`) and
//!    descriptions, keeping only those close to the best match: a few when the keyword table
//!    already matched, more when it did not; and in an act run asking for a change, the best
//!    ranked write tools.
//!
//! The total is capped by the Agent's `maxTools` (core tools always stay). A monitor-mode run
//! never sees a write tool, and no run sees the Dark Factory's own tools (a task that starts
//! or pauses tasks would make runs trigger runs). What selection leaves out, the model can
//! still ask for with `find_tools` ([`crate::find_tools`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use linkmcp_api::{LinkType, task::TaskMode};
use linkmcp_toolsets::{Access, link::default_prefix};

use crate::host::HostTool;

/// Tools offered to every run, whatever the task says.
pub const CORE_TOOLS: [&str; 2] = ["ping", "server_info"];

/// Tools no agent run is offered: the Dark Factory's own controls.
pub const EXCLUDED_PREFIX: &str = "dark_factory_";

/// A family of tools the keyword table can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// A short name, shown as the reason a tool was selected.
    pub name: &'static str,
    /// Words of a task description that select the family.
    pub keywords: &'static [&'static str],
    /// Tool name prefixes of the family.
    pub prefixes: &'static [&'static str],
    /// Exact tool names of the family (built-in tools without a common prefix).
    pub names: &'static [&'static str],
    /// Link types whose tools belong to the family.
    pub link_types: &'static [LinkType],
    /// Words that identify the backend in a tool description, for tools whose name carries a
    /// custom prefix and whose link type the host did not give.
    pub markers: &'static [&'static str],
}

/// The keyword table (the seed's, with CloudNativePG tools beside plain PostgreSQL ones).
pub const FAMILIES: [Family; 16] = [
    Family {
        name: "prometheus",
        keywords: &["prometheus", "metric", "alert", "cpu", "memory"],
        prefixes: &["prom_"],
        names: &[],
        link_types: &[LinkType::Prometheus],
        markers: &["prometheus", "promql"],
    },
    Family {
        name: "postgres",
        keywords: &["postgresql", "postgres", "sql", "database"],
        prefixes: &["pg_", "cnpg_"],
        names: &[],
        link_types: &[LinkType::Postgres, LinkType::Cnpg],
        markers: &["postgresql", "postgres", "cloudnativepg"],
    },
    Family {
        name: "mongodb",
        keywords: &["mongodb", "mongo", "collection"],
        prefixes: &["mongo_"],
        names: &[],
        link_types: &[LinkType::Mongodb],
        markers: &["mongodb"],
    },
    Family {
        name: "clickhouse",
        keywords: &["clickhouse", "olap", "analytics"],
        prefixes: &["ch_"],
        names: &[],
        link_types: &[LinkType::Clickhouse],
        markers: &["clickhouse"],
    },
    Family {
        name: "kafka",
        keywords: &["kafka", "topic", "consumer", "producer"],
        prefixes: &["kafka_"],
        names: &[],
        link_types: &[LinkType::Kafka],
        markers: &["kafka"],
    },
    Family {
        name: "rabbitmq",
        keywords: &["rabbitmq", "rabbit", "amqp", "queue"],
        prefixes: &["rmq_"],
        names: &[],
        link_types: &[LinkType::Rabbitmq],
        markers: &["rabbitmq"],
    },
    Family {
        name: "loki",
        keywords: &["loki", "log", "logs", "logging"],
        prefixes: &["loki_"],
        names: &[],
        link_types: &[LinkType::Loki],
        markers: &["loki", "logql"],
    },
    Family {
        name: "grafana",
        keywords: &["grafana", "dashboard", "panel", "annotation"],
        prefixes: &["grafana_"],
        names: &[],
        link_types: &[LinkType::Grafana],
        markers: &["grafana"],
    },
    Family {
        name: "argocd",
        keywords: &["argocd", "argo", "gitops", "rollback", "sync"],
        prefixes: &["argocd_"],
        names: &[],
        link_types: &[LinkType::Argocd],
        markers: &["argocd", "argo"],
    },
    Family {
        name: "kubectl",
        keywords: &["pod", "deploy", "namespace", "kubectl"],
        prefixes: &["kubectl_"],
        names: &[],
        link_types: &[],
        markers: &[],
    },
    Family {
        name: "topology",
        keywords: &["topology", "stack_agent", "test", "validate"],
        prefixes: &[],
        names: &["query_topology", "list_components", "run_test"],
        link_types: &[],
        markers: &[],
    },
    Family {
        name: "valkey",
        keywords: &["valkey", "redis", "cache"],
        prefixes: &["valkey_"],
        names: &[],
        link_types: &[LinkType::Valkey],
        markers: &["valkey", "redis"],
    },
    Family {
        name: "git",
        keywords: &[
            "git",
            "repo",
            "repository",
            "code",
            "commit",
            "branch",
            "tag",
        ],
        prefixes: &["git_"],
        names: &["clone_repo", "list_files", "read_file", "search_code"],
        link_types: &[LinkType::Git],
        markers: &["git", "repository"],
    },
    Family {
        name: "fastapi",
        keywords: &["api", "endpoint", "openapi", "fastapi"],
        prefixes: &["fastapi_"],
        names: &[],
        link_types: &[LinkType::Fastapi],
        markers: &["openapi", "fastapi"],
    },
    Family {
        name: "knowledge",
        keywords: &["knowledge", "runbook", "playbook", "documentation", "docs"],
        prefixes: &["knowledge_"],
        names: &[],
        link_types: &[],
        markers: &[],
    },
    Family {
        name: "s3",
        keywords: &["s3", "bucket", "minio", "seaweedfs"],
        prefixes: &["s3_"],
        names: &[],
        link_types: &[LinkType::S3],
        markers: &["s3"],
    },
];

/// What a request's words imply beyond themselves: people describe a symptom ("disk filling
/// up", "p99 latency", "bounce it") rather than the system or tool that answers it. Each row
/// maps symptom words to the words of the tools that answer them — family keywords of the
/// table above or words of the tools' own names and descriptions — which are added to the
/// request's terms for family matching and ranking. Rows are concepts (saturation, latency,
/// time ranges, schemas, counts, ...), not tasks: a word belongs here when any request using
/// it in an operations context points at the same kind of tool.
#[rustfmt::skip]
const IMPLIED: &[(&[&str], &[&str])] = &[
    // Saturation, latency, traffic and error rates are metrics.
    (&["cpu", "memory", "load", "disk", "filesystem", "saturation", "saturated", "utilization", "utilisation", "usage",
       "capacity", "latency", "p99", "p95", "p90", "p50", "percentile", "slow", "slower",
       "slowness", "throughput", "rps", "qps", "traffic", "5xx", "uptime", "scrape", "exporter",
       "spike", "spiking", "oom", "rate", "error_rate"],
     &["prometheus", "promql"]),
    // Time ranges: a series over a range, not one instant.
    (&["hour", "yesterday", "overnight", "trend", "week", "past", "since", "after", "day",
       "daily", "hourly", "minute", "over_time", "history"],
     &["range"]),
    // What printed what: logs.
    (&["printed", "exception", "stacktrace", "traceback", "panic", "crash", "crashed", "grep",
       "said"],
     &["log"]),
    // The shape of a table.
    (&["column", "index", "schema", "constraint", "ddl"],
     &["describe", "table"]),
    // Counting and aggregating rows.
    (&["many", "number", "count", "total", "average", "avg", "sum", "split", "breakdown",
       "group", "top", "distribution", "compute", "compare", "frequent", "often", "popular",
       "common", "busiest"],
     &["query", "count", "aggregate"]),
    // Messages and their payloads.
    (&["message", "payload", "newest", "latest", "dlq", "dead_letter", "poison"],
     &["consume", "peek", "message"]),
    // Readers of a stream falling behind: consumer groups and their lag.
    (&["lag", "lagging", "behind", "reading", "reader", "offset", "caught", "catch"],
     &["consumer", "group", "lag"]),
    // A workload that keeps restarting: its pods' description, events and logs.
    (&["restarting", "restarts", "restarted", "oomkilled", "killed", "flapping"],
     &["kubectl", "describe", "event", "log"]),
    // Where something is set in the code.
    (&["define", "defined", "implement", "implemented", "implementation", "function",
       "hardcoded", "source"],
     &["code", "search"]),
    // What something holds: read its value.
    (&["stored", "holds", "hold", "contents", "content", "value", "inside", "quote", "open"],
     &["read", "value", "get"]),
    // Keys that expire: the cache.
    (&["ttl", "expire", "expiry", "expires", "evict", "eviction", "session", "key"],
     &["valkey", "key"]),
    // Deploys and GitOps.
    (&["deployed", "release", "rollout", "rolled", "roll", "degraded", "outofsync", "drift",
       "forward"],
     &["argocd", "sync", "history"]),
    // Graphs and dashboards.
    (&["graph", "chart", "marker", "visualization"],
     &["grafana", "dashboard", "annotation"]),
    // Cluster guardrails.
    (&["guardrail", "policy", "compliance", "admission", "rego", "opa", "pass"],
     &["policy", "check"]),
    // Something stuck or failing: its description and events say why.
    (&["stuck", "pending", "failing", "crashloop", "crashloopbackoff", "evicted",
       "unschedulable", "backoff"],
     &["describe", "event"]),
    // Whether things answer and connect.
    (&["validate", "verify", "connectivity", "reachable", "reach"], &["test", "run"]),
    // What depends on what.
    (&["depend", "dependency", "dependent", "impact", "downstream", "upstream", "break",
       "affected", "blast"],
     &["topology", "component", "link"]),
    // Objects in buckets.
    (&["file", "object", "upload", "export", "backup"],
     &["s3", "bucket", "object"]),
    // Write verbs people use for the tools' own verbs.
    (&["bounce", "reboot", "kick", "recycle"], &["restart"]),
    (&["emit", "resend", "replay", "republish", "enqueue"], &["produce", "publish"]),
    (&["annotate", "note", "marker"], &["annotation", "create"]),
    (&["insert", "record", "log_entry"], &["execute", "insert"]),
    (&["wipe", "purge", "evict", "flush", "clear", "remove"], &["delete"]),
    (&["pause", "resume", "disable", "enable"], &["toggle"]),
];

/// Words that ask for a change: in an act run they let the best-ranked write tools in even
/// when no family was named.
const WRITE_VERBS: &[&str] = &[
    "insert",
    "add",
    "put",
    "write",
    "delete",
    "remove",
    "drop",
    "restart",
    "bounce",
    "reboot",
    "scale",
    "sync",
    "roll",
    "rollback",
    "publish",
    "produce",
    "emit",
    "resend",
    "replay",
    "annotate",
    "mark",
    "marker",
    "upload",
    "purge",
    "clear",
    "flush",
    "create",
    "update",
    "set",
    "apply",
    "execute",
    "run",
    "wipe",
    "evict",
    "kick",
    "recycle",
    "enqueue",
    "republish",
    "vacuum",
    "fix",
    "clean",
    "cleanup",
    "reset",
    "kill",
    "cancel",
    "move",
    "archive",
    "migrate",
    "truncate",
    "rotate",
    "pause",
    "resume",
    "toggle",
];

/// Most tools of a named family kept for matching the request's terms.
const FAMILY_TOOLS: usize = 4;
/// A family's tool must score at least this share of the family's best to count as matching.
const MIN_SHARE_IN_FAMILY: f64 = 0.35;
/// Most discovery tools of a named family kept beside those.
const FAMILY_DISCOVERY: usize = 1;

/// Most write tools of a named family kept when the request asks for a change.
const FAMILY_WRITES: usize = 2;

/// Most write tools a write verb lets in beside the others.
const EXTRA_WRITES: usize = 2;

/// Most tools the ranking adds beside keyword-selected tools.
const EXTRA_WITH_KEYWORDS: usize = 2;
/// Most tools the ranking adds when the keyword table named no family.
const EXTRA_WITHOUT_KEYWORDS: usize = 4;
/// A ranked tool must score at least this share of the best score to be added.
const MIN_SHARE_OF_BEST: f64 = 0.5;
/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;
/// Name terms count this many times in a tool's document: a name is the densest description.
const NAME_WEIGHT: usize = 2;

/// Words too common to tell tools apart: English function words and the verbs people open a
/// request with ("check the ...", "tell me ...").
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "check", "give", "know", "look", "need", "see", "show", "tell", "want",
    "a", "about", "above", "after", "again", "all", "also", "an", "and", "any", "anything", "are",
    "as", "at", "be", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "done", "each", "else", "every", "few", "for", "from",
    "further", "had", "has", "have", "having", "here", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "let", "like", "may", "me", "might", "more", "most", "must", "my",
    "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other", "our",
    "out", "over", "own", "please", "same", "say", "should", "so", "some", "something", "such",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "us", "use", "very", "was", "we", "were",
    "what", "when", "where", "whether", "which", "while", "who", "why", "will", "with", "within",
    "would", "you", "your",
];

/// What a run is offered, and why each tool is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The tools, core tools first, then keyword-selected, then ranked.
    pub tools: Vec<SelectedTool>,
    /// The normalised terms of the description (also handed to the knowledge source).
    pub terms: Vec<String>,
}

impl Selection {
    /// The selected tools' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.tool.name()).collect()
    }
}

/// One selected tool.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedTool {
    /// The tool.
    pub tool: HostTool,
    /// Why it was selected.
    pub reason: Reason,
}

/// Why a tool was selected.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A core tool: always offered.
    Core,
    /// Its family was named by a keyword of the description.
    Keyword {
        /// The family's name.
        family: &'static str,
        /// The description word that named it.
        keyword: &'static str,
    },
    /// Ranked by term overlap with the description.
    Ranked {
        /// Its BM25 score.
        score: f64,
    },
}

/// What selection needs to know of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectOptions {
    /// Most tools offered (the Agent's `maxTools`); core tools are kept even beyond it.
    pub max_tools: usize,
    /// Monitor runs never see write tools.
    pub mode: TaskMode,
}

/// The tools a run in `mode` may use at all: a monitor run only read tools, no run the Dark
/// Factory's own tools, and no host tool named like the loop's built-in `find_tools`.
pub fn eligible(tools: &[HostTool], mode: TaskMode) -> Vec<&HostTool> {
    tools
        .iter()
        .filter(|t| !t.name().starts_with(EXCLUDED_PREFIX))
        .filter(|t| t.name() != crate::find_tools::FIND_TOOLS)
        .filter(|t| mode == TaskMode::Act || t.access == Access::Read)
        .collect()
}

/// Selects the tools offered to a run whose task reads `description`.
pub fn select(description: &str, tools: &[HostTool], options: &SelectOptions) -> Selection {
    let terms = normalize_terms(description);
    // Words inside identifiers do not name a family, yet imply what they say: `crash-looping`
    // is a symptom and `invoices.dlq` a dead-letter queue.
    let naming = free_terms(description, &terms, &['-', '.', ':', '/']);
    let query = with_implied(&terms);
    let eligible = eligible(tools, options.mode);

    let docs: Vec<Vec<String>> = eligible.iter().map(|t| tool_terms(t)).collect();
    let scores = bm25(&query, &docs);
    let implied_naming: Vec<String> = query
        .iter()
        .filter(|w| naming.contains(w) || !terms.contains(w))
        .cloned()
        .collect();
    let mut named = named_families(&naming, &implied_naming);
    let request_named_family = !named.is_empty();
    if named.is_empty() {
        // A request naming no family ("zero stock in the catalog") is most likely about the
        // family of the tool that matches it best: its matching and discovery tools come in.
        let best = eligible
            .iter()
            .zip(&scores)
            .filter(|(t, score)| **score > 0.0 && !CORE_TOOLS.contains(&t.name()))
            .max_by(|a, b| a.1.total_cmp(b.1));
        if let Some(family) =
            best.and_then(|(tool, _)| FAMILIES.iter().find(|f| belongs_to(tool, f)))
        {
            named.push((family, family.name));
        }
    }
    let asks_for_change =
        options.mode == TaskMode::Act && terms.iter().any(|t| WRITE_VERBS.contains(&t.as_str()));

    let mut core = Vec::new();
    let mut keyword = Vec::new();
    let mut ranked = Vec::new();
    for (tool, &score) in eligible.iter().zip(&scores) {
        let tool = (*tool).clone();
        if CORE_TOOLS.contains(&tool.name()) {
            core.push(SelectedTool {
                tool,
                reason: Reason::Core,
            });
        } else if let Some(&(family, word)) = named.iter().find(|(f, _)| belongs_to(&tool, f)) {
            let reason = Reason::Keyword {
                family: family.name,
                keyword: word,
            };
            keyword.push((score, SelectedTool { tool, reason }));
        } else if score > 0.0 {
            let reason = Reason::Ranked { score };
            ranked.push((score, SelectedTool { tool, reason }));
        }
    }
    keyword.sort_by(best_first);
    let keyword = per_family(keyword, asks_for_change);
    ranked.sort_by(best_first);

    let best = scores.iter().copied().fold(0.0_f64, f64::max);
    let extra_limit = if !request_named_family {
        EXTRA_WITHOUT_KEYWORDS
    } else {
        EXTRA_WITH_KEYWORDS
    };
    let (extras, rest): (Vec<_>, Vec<_>) = ranked
        .into_iter()
        .enumerate()
        .partition(|(i, (score, _))| *i < extra_limit && *score >= best * MIN_SHARE_OF_BEST);
    // A request for a change gets the best-ranked write tools even when read tools outrank
    // them ("bounce search-api" ranks kubectl_get beside kubectl_restart).
    let writes: Vec<(f64, SelectedTool)> = if asks_for_change {
        rest.into_iter()
            .map(|(_, scored)| scored)
            .filter(|(_, t)| t.tool.access == Access::Write)
            .take(EXTRA_WRITES)
            .collect()
    } else {
        Vec::new()
    };
    let extras = extras.into_iter().map(|(_, scored)| scored).chain(writes);

    let cap = options.max_tools.max(core.len());
    let mut selected = core;
    selected.extend(keyword.into_iter().chain(extras).map(|(_, t)| t));
    selected.truncate(cap);
    Selection {
        tools: selected,
        terms,
    }
}

/// The keyword-selected tools kept of each family, best first: a family's tools that match
/// the request's terms, at most [`FAMILY_TOOLS`] of them, and its discovery tools (read tools
/// whose schema requires nothing, e.g. list tables or list alerts) up to
/// [`FAMILY_DISCOVERY`], so the model can always find out what the backend holds; and when
/// the request asks for a change, its write tools up to [`FAMILY_WRITES`].
fn per_family(keyword: Vec<(f64, SelectedTool)>, writes: bool) -> Vec<(f64, SelectedTool)> {
    let mut kept: Vec<(f64, SelectedTool)> = Vec::with_capacity(keyword.len());
    let mut counts: BTreeMap<&'static str, [usize; 3]> = BTreeMap::new();
    // The tools come best first, so a family's first score is its best.
    let mut best: BTreeMap<&'static str, f64> = BTreeMap::new();
    for (score, selected) in keyword {
        let Reason::Keyword { family, .. } = selected.reason else {
            continue;
        };
        let best = *best.entry(family).or_insert(score);
        let [matched, discovery, written] = counts.entry(family).or_insert([0; 3]);
        // The discovery tool first, so that it does not take the place of a matching tool.
        if is_discovery(&selected.tool) && *discovery < FAMILY_DISCOVERY {
            *discovery += 1;
        } else if score > 0.0 && score >= best * MIN_SHARE_IN_FAMILY && *matched < FAMILY_TOOLS {
            *matched += 1;
        } else if writes && selected.tool.access == Access::Write && *written < FAMILY_WRITES {
            *written += 1;
        } else {
            continue;
        }
        kept.push((score, selected));
    }
    kept
}

/// A read tool that needs no argument: it lists or summarises what a backend holds.
fn is_discovery(tool: &HostTool) -> bool {
    tool.access == Access::Read
        && tool
            .tool
            .input_schema
            .get("required")
            .and_then(|r| r.as_array())
            .is_none_or(|r| r.is_empty())
}

/// Orders scored tools by descending score, then by name (a stable, reproducible order).
fn best_first(a: &(f64, SelectedTool), b: &(f64, SelectedTool)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0)
        .then_with(|| a.1.tool.name().cmp(b.1.tool.name()))
}

/// The normalised terms of a text, in order of first appearance, without repeats: lowercased
/// words (letters, digits and `_`), a word with `_` also split into its parts, stop words,
/// single characters and bare numbers dropped, plurals reduced to the singular.
///
/// Selection compares a description and tool documents through this function; a knowledge
/// source can normalise its entries with it to match the terms it is handed.
pub fn normalize_terms(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    words(text)
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// All normalised words of a text, repeats kept (term frequencies).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
    {
        let lower = raw.to_lowercase();
        let mut push = |w: &str| {
            let w = w.trim_matches('_');
            if w.chars().count() < 2
                || w.chars().all(|c| c.is_ascii_digit())
                || STOP_WORDS.contains(&w)
            {
                return;
            }
            out.push(stem(w));
        };
        push(&lower);
        if lower.contains('_') {
            for part in lower.split('_') {
                push(part);
            }
        }
    }
    out
}

/// A light stemmer: plural nouns to the singular, the same way on both sides of a match.
fn stem(word: &str) -> String {
    let n = word.len();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..n - 3]);
    }
    if n > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
    {
        return word[..n - 1].to_owned();
    }
    word.to_owned()
}

/// The words of a tool's document: its name's parts (weighted) and its description.
fn tool_terms(tool: &HostTool) -> Vec<String> {
    let name_words: Vec<String> = tool
        .name()
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .flat_map(words)
        .collect();
    let mut doc = Vec::with_capacity(name_words.len() * NAME_WEIGHT + 32);
    for _ in 0..NAME_WEIGHT {
        doc.extend(name_words.iter().cloned());
    }
    doc.extend(words(tool.description()));
    doc
}

/// The terms of a request that appear outside identifiers, an identifier being a token joined
/// by one of `joiners`. `search-api`, `orders.created`, `config:checkout` or `Chart.yaml` name
/// a service, a topic, a key or a file, not a backend: the `api` of `search-api` is no request
/// for the OpenAPI tools, nor the `chart` of `Chart.yaml` for Grafana. Such words still count
/// in ranking and in what the request implies.
fn free_terms(description: &str, terms: &[String], joiners: &[char]) -> Vec<String> {
    let mut free = BTreeSet::new();
    for token in description.split_whitespace() {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric());
        if !token.contains(joiners) {
            free.extend(words(token));
        }
    }
    terms
        .iter()
        .filter(|t| free.contains(*t))
        .cloned()
        .collect()
}

/// The request's terms followed by what they imply ([`IMPLIED`]), without repeats.
fn with_implied(terms: &[String]) -> Vec<String> {
    let mut query = terms.to_vec();
    for (symptoms, implied) in IMPLIED {
        if symptoms.iter().any(|s| terms.contains(&stem(s))) {
            for word in *implied {
                let word = stem(word);
                if !query.contains(&word) {
                    query.push(word);
                }
            }
        }
    }
    query
}

/// The families the request names, each with the keyword that named it: a word of the
/// request itself when one is a keyword, else a word it implies.
fn named_families(terms: &[String], query: &[String]) -> Vec<(&'static Family, &'static str)> {
    let named_in = |words: &[String], family: &'static Family| {
        family
            .keywords
            .iter()
            .find(|k| words.contains(&stem(k)))
            .map(|k| (family, *k))
    };
    FAMILIES
        .iter()
        .filter_map(|family| named_in(terms, family).or_else(|| named_in(query, family)))
        .collect()
}

/// Whether `tool` belongs to `family`: by link type when known, else by name, else (a custom
/// prefix) by its description naming the backend.
fn belongs_to(tool: &HostTool, family: &Family) -> bool {
    if let Some(link_type) = tool.link_type {
        return family.link_types.contains(&link_type);
    }
    let name = tool.name();
    if family.names.contains(&name) || family.prefixes.iter().any(|p| name.starts_with(p)) {
        return true;
    }
    if has_known_prefix(name) || family.markers.is_empty() {
        return false;
    }
    let description = words(tool.description());
    family
        .markers
        .iter()
        .any(|m| description.contains(&stem(m)))
}

/// Whether a name starts with a prefix the keyword table or a link type gives its tools; such a
/// tool's family is known from its name, so its description is not searched for markers.
fn has_known_prefix(name: &str) -> bool {
    let family_prefix = FAMILIES
        .iter()
        .flat_map(|f| f.prefixes.iter())
        .any(|p| name.starts_with(p));
    let link_prefix = LinkType::ALL.iter().any(|t| {
        let prefix = default_prefix(*t);
        !prefix.is_empty()
            && name
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('_'))
    });
    family_prefix
        || link_prefix
        || FAMILIES.iter().any(|f| f.names.contains(&name))
        || name.starts_with(EXCLUDED_PREFIX)
}

/// BM25 scores of each document for the query terms.
fn bm25(query: &[String], docs: &[Vec<String>]) -> Vec<f64> {
    if docs.is_empty() {
        return Vec::new();
    }
    let n = docs.len() as f64;
    let avg_len = docs.iter().map(Vec::len).sum::<usize>() as f64 / n;
    let mut doc_freq: HashMap<&str, usize> = HashMap::new();
    let tfs: Vec<BTreeMap<&str, usize>> = docs
        .iter()
        .map(|doc| {
            let mut tf = BTreeMap::new();
            for w in doc {
                *tf.entry(w.as_str()).or_insert(0) += 1;
            }
            for w in tf.keys() {
                *doc_freq.entry(w).or_insert(0) += 1;
            }
            tf
        })
        .collect();
    tfs.iter()
        .zip(docs)
        .map(|(tf, doc)| {
            let len_norm = 1.0 - B + B * doc.len() as f64 / avg_len.max(1.0);
            query
                .iter()
                .filter_map(|q| {
                    let f = *tf.get(q.as_str())? as f64;
                    let df = doc_freq.get(q.as_str()).copied().unwrap_or(0) as f64;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    Some(idf * f * (K1 + 1.0) / (f + K1 * len_norm))
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use rmcp::model::Tool;

    use super::*;

    fn tool(name: &str, description: &str, access: Access) -> HostTool {
        let schema = serde_json::json!({"type": "object", "properties": {}});
        let schema = schema.as_object().unwrap().clone();
        HostTool::new(
            Tool::new(name.to_owned(), description.to_owned(), Arc::new(schema)),
            access,
        )
    }

    /// The tool with `argument` required: no longer a discovery tool.
    fn requiring(mut tool: HostTool, argument: &str) -> HostTool {
        let mut schema = (*tool.tool.input_schema).clone();
        schema.insert("required".into(), serde_json::json!([argument]));
        tool.tool.input_schema = Arc::new(schema);
        tool
    }

    fn catalogue() -> Vec<HostTool> {
        use Access::{Read, Write};
        vec![
            tool("ping", "Check that the server answers.", Read),
            tool(
                "server_info",
                "Describe this server and its toolsets.",
                Read,
            ),
            tool(
                "pg_list_tables",
                "List the tables of a PostgreSQL database with their sizes.",
                Read,
            ),
            tool(
                "pg_table_stats",
                "Dead tuples, vacuum and analyze times of PostgreSQL tables.",
                Read,
            ),
            tool("pg_query", "Run a read-only SQL query on PostgreSQL.", Read),
            tool(
                "pg_execute",
                "Execute a SQL statement that changes PostgreSQL data.",
                Write,
            ),
            tool(
                "prom_query",
                "Evaluate a PromQL expression at one instant.",
                Read,
            ),
            tool("prom_alerts", "List the alerts Prometheus is firing.", Read),
            tool(
                "kafka_list_topics",
                "List Kafka topics with partitions.",
                Read,
            ),
            tool(
                "kafka_produce",
                "Produce one message to a Kafka topic.",
                Write,
            ),
            tool(
                "rmq_list_queues",
                "List RabbitMQ queues with their message counts.",
                Read,
            ),
            tool(
                "valkey_info",
                "Server information of Valkey: memory, clients, keyspace.",
                Read,
            ),
            tool("s3_list_buckets", "List the S3 buckets.", Read),
            tool(
                "query_topology",
                "Query the declared topology of the stack.",
                Read,
            ),
            tool("list_components", "List the components of the stack.", Read),
            requiring(
                tool(
                    "run_test",
                    "Run a connectivity test against a component.",
                    Read,
                ),
                "source",
            ),
            tool("get_stack_structure", "The structure of the stack.", Read),
            tool(
                "grafana_list_dashboards",
                "List Grafana dashboards by title and folder.",
                Read,
            ),
            tool(
                "argocd_list_applications",
                "List Argo CD applications with sync and health status.",
                Read,
            ),
            tool(
                "kubectl_get",
                "Get Kubernetes resources of a kind in a namespace.",
                Read,
            ),
            tool("kubectl_scale", "Scale a Kubernetes deployment.", Write),
            tool("dark_factory_run_now", "Run an AI task now.", Write),
            tool("dark_factory_status", "Status of the AI tasks.", Read),
        ]
    }

    fn act(max_tools: usize) -> SelectOptions {
        SelectOptions {
            max_tools,
            mode: TaskMode::Act,
        }
    }

    fn monitor(max_tools: usize) -> SelectOptions {
        SelectOptions {
            max_tools,
            mode: TaskMode::Monitor,
        }
    }

    #[test]
    fn terms_are_lowercased_singular_and_free_of_stop_words() {
        assert_eq!(
            normalize_terms("Check the Metrics of all Databases, and the stack_agent's 20 queries"),
            [
                "metric",
                "database",
                "stack_agent",
                "stack",
                "agent",
                "query"
            ]
        );
        assert_eq!(
            normalize_terms("S3 buckets; redis"),
            ["s3", "bucket", "redis"]
        );
    }

    #[test]
    fn every_keyword_of_the_table_selects_its_family() {
        let cases: [(&str, &str); 11] = [
            ("how much memory is used", "prom_query"),
            ("postgres health", "pg_query"),
            ("count the documents of a collection", "mongo_find"),
            ("olap table sizes", "ch_query"),
            ("lag of each consumer", "kafka_list_topics"),
            ("amqp backlog", "rmq_list_queues"),
            ("errors in the logs", "loki_query"),
            ("restarting pods", "kubectl_get"),
            ("validate the stack", "run_test"),
            ("cache hit ratio", "valkey_info"),
            ("size of each bucket", "s3_list_buckets"),
        ];
        let mut tools = catalogue();
        tools.push(tool("mongo_find", "Find documents.", Access::Read));
        tools.push(tool("ch_query", "Run a query.", Access::Read));
        tools.push(tool("loki_query", "Run a LogQL query.", Access::Read));
        for (description, expected) in cases {
            let selection = select(description, &tools, &act(24));
            // The family is named: its tools that match the words, or its discovery tool.
            let family = FAMILIES
                .iter()
                .find(|f| belongs_to(tools.iter().find(|t| t.name() == expected).unwrap(), f))
                .unwrap();
            let hit = selection.tools.iter().find(|t| {
                matches!(t.reason, Reason::Keyword { family: named, .. } if named == family.name)
            });
            assert!(
                hit.is_some(),
                "{description:?} should name the family of {expected}: {:?}",
                selection.names()
            );
        }
    }

    #[test]
    fn a_keyword_selects_the_family_tools_that_match_and_core_tools_come_first() {
        let selection = select("Check the CPU load", &catalogue(), &act(24));
        let names = selection.names();
        assert_eq!(&names[..2], ["ping", "server_info"]);
        assert!(
            names.contains(&"prom_query") && names.contains(&"prom_alerts"),
            "{names:?}"
        );
        assert!(!names.contains(&"pg_query"), "{names:?}");
        let prom = selection
            .tools
            .iter()
            .find(|t| t.tool.name() == "prom_query")
            .unwrap();
        assert_eq!(
            prom.reason,
            Reason::Keyword {
                family: "prometheus",
                keyword: "cpu"
            }
        );
    }

    #[test]
    fn the_topology_keywords_select_named_tools_only() {
        let names = select("validate the deployment", &catalogue(), &act(24))
            .names()
            .join(",");
        assert!(names.contains("run_test"), "{names}");
        assert!(
            names.contains("list_components"),
            "its discovery tool: {names}"
        );
        assert!(!names.contains("get_stack_structure"), "{names}");
    }

    #[test]
    fn monitor_mode_removes_every_write_tool() {
        let all_write: Vec<HostTool> = catalogue()
            .into_iter()
            .filter(|t| t.access == Access::Write)
            .collect();
        assert!(all_write.len() >= 3);
        let description = "execute sql on postgres, produce to kafka, scale the kubectl deployment";
        let acting = select(description, &catalogue(), &act(24));
        let acting = acting.names();
        assert!(acting.contains(&"pg_execute") && acting.contains(&"kafka_produce"));
        let watching = select(description, &catalogue(), &monitor(24));
        for t in &watching.tools {
            assert_eq!(t.tool.access, Access::Read, "{}", t.tool.name());
        }
        assert!(watching.names().contains(&"pg_query"));
    }

    #[test]
    fn dark_factory_tools_are_never_offered() {
        let selection = select(
            "run the ai task now and report its status",
            &catalogue(),
            &act(24),
        );
        let names = selection.names();
        assert!(
            names.iter().all(|n| !n.starts_with("dark_factory_")),
            "{names:?}"
        );
    }

    #[test]
    fn ranking_finds_tools_the_table_does_not_name() {
        let selection = select(
            "Describe the structure of the stack",
            &catalogue(),
            &act(24),
        );
        let names = selection.names();
        assert_eq!(names[2], "get_stack_structure", "{names:?}");
        assert!(matches!(selection.tools[2].reason, Reason::Ranked { score } if score > 0.0));
        assert!(!names.contains(&"pg_query"), "{names:?}");
    }

    #[test]
    fn gitops_and_dashboard_requests_name_their_families() {
        let selection = select(
            "Which Argo CD applications are out of sync?",
            &catalogue(),
            &act(24),
        );
        let argocd = selection
            .tools
            .iter()
            .find(|t| t.tool.name() == "argocd_list_applications")
            .expect("argocd_list_applications selected");
        assert!(
            matches!(
                argocd.reason,
                Reason::Keyword {
                    family: "argocd",
                    ..
                }
            ),
            "{:?}",
            argocd.reason
        );
        let selection = select(
            "Find the dashboard of the checkout team",
            &catalogue(),
            &act(24),
        );
        let names = selection.names();
        assert!(names.contains(&"grafana_list_dashboards"), "{names:?}");
        assert!(!names.contains(&"argocd_list_applications"), "{names:?}");
    }

    #[test]
    fn unrelated_tools_are_not_ranked_in() {
        let selection = select("Say hello", &catalogue(), &act(24));
        let names = selection.names();
        assert_eq!(names, ["ping", "server_info"]);
    }

    #[test]
    fn the_cap_keeps_core_tools_and_the_best_keyword_matches() {
        let selection = select("dead tuples of postgres tables", &catalogue(), &act(3));
        assert_eq!(selection.names(), ["ping", "server_info", "pg_table_stats"]);
        let selection = select("dead tuples of postgres tables", &catalogue(), &act(1));
        assert_eq!(selection.names(), ["ping", "server_info"]);
    }

    #[test]
    fn custom_prefixes_are_matched_by_link_type_or_description() {
        let mut tools: Vec<HostTool> = catalogue()
            .into_iter()
            .filter(|t| CORE_TOOLS.contains(&t.name()))
            .collect();
        tools.push(tool(
            "orders_query",
            "Run a read-only SQL query on PostgreSQL.",
            Access::Read,
        ));
        tools.push(
            tool("billing_list_tables", "List the tables.", Access::Read)
                .with_link_type(LinkType::Cnpg),
        );
        tools.push(
            tool(
                "events_query",
                "Query PostgreSQL-compatible events.",
                Access::Read,
            )
            .with_link_type(LinkType::Clickhouse),
        );
        tools.push(tool(
            "grafana_query",
            "Query a PostgreSQL datasource.",
            Access::Read,
        ));
        let selection = select("postgres tables and queries", &tools, &act(24));
        let keyword: Vec<&str> = selection
            .tools
            .iter()
            .filter(|t| matches!(t.reason, Reason::Keyword { .. }))
            .map(|t| t.tool.name())
            .collect();
        assert!(keyword.contains(&"orders_query"), "{keyword:?}");
        assert!(keyword.contains(&"billing_list_tables"), "{keyword:?}");
        assert!(
            !keyword.contains(&"events_query"),
            "the link type wins: {keyword:?}"
        );
        assert!(
            !keyword.contains(&"grafana_query"),
            "a known prefix wins: {keyword:?}"
        );
    }

    #[test]
    fn bm25_prefers_rarer_terms_and_denser_documents() {
        let docs = vec![
            words("list tables database"),
            words("list buckets"),
            words("list queues"),
        ];
        let scores = bm25(&normalize_terms("tables"), &docs);
        assert!(scores[0] > 0.0 && scores[1] == 0.0 && scores[2] == 0.0);
        let scores = bm25(&normalize_terms("list tables"), &docs);
        assert!(scores[0] > scores[1] && scores[1] > 0.0 && scores[1] == scores[2]);
        assert!(bm25(&normalize_terms("x"), &[]).is_empty());
    }
}
