//! Command-line flags, each also settable by environment variable (how the Deployment the
//! controller renders configures the server).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum, builder::BoolishValueParser};

use linkmcp_api::McpServerSpec;

use crate::{Settings, SourceKind, auth::AuthConfig, mcp::CallLimits};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// linkmcp-server: serves the links of one McpServer as MCP tools over Streamable HTTP.
#[derive(Debug, Clone, Parser)]
#[command(name = "linkmcp-server", version, about)]
pub struct Args {
    /// Address to listen on (`/mcp`, `/healthz`, `/readyz`, `/startupz`).
    #[arg(long, env = "LINKMCP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder of McpServer, McpLink, Agent, AiTask and Secret YAML to serve without a cluster
    /// (standalone mode); the manifest source reads and watches it.
    #[arg(long, env = "LINKMCP_MANIFESTS", value_name = "DIR")]
    pub manifests: Option<PathBuf>,

    /// Serve without MCP sessions, so any replica can answer any request. Clients of protocol
    /// versions up to 2025-11-25 then receive no tools/list_changed notifications.
    #[arg(
        long,
        env = "LINKMCP_STATELESS",
        value_parser = BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub stateless: bool,

    /// Host name accepted in the Host header of /mcp requests, besides localhost, 127.0.0.1
    /// and ::1 (repeatable; the variable takes a comma-separated list).
    #[arg(
        long = "allowed-host",
        env = "LINKMCP_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Server name reported to MCP clients. Defaults to the McpServer's `spec.serverName`, else
    /// its name, else `linkmcp`.
    #[arg(long, env = "LINKMCP_SERVER_NAME")]
    pub server_name: Option<String>,

    /// The McpServer to serve: in a cluster (no `--manifests`) its name, required; standalone,
    /// which one of the manifests folder, when it holds several.
    #[arg(long = "server", env = "LINKMCP_SERVER", value_name = "NAME")]
    pub server: Option<String>,

    /// Namespace of the McpServer and its links, agents, tasks and credentials Secret (cluster
    /// mode). Defaults to the pod's own namespace, else the kubeconfig context's.
    #[arg(long, env = "LINKMCP_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Seconds a tool call may run before it is stopped.
    #[arg(
        long,
        env = "LINKMCP_TOOL_TIMEOUT_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub tool_timeout_seconds: u64,

    /// Largest text a tool result may carry, in bytes; longer output is cut and says so.
    #[arg(
        long,
        env = "LINKMCP_MAX_OUTPUT_BYTES",
        default_value_t = 64 * 1024,
        value_parser = clap::value_parser!(u64).range(1024..=16 * 1024 * 1024)
    )]
    pub max_output_bytes: u64,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Hide the text of failed tool calls from clients: they get "the tool failed; reference
    /// <id>", and the real message is logged with that id.
    #[arg(
        long,
        env = "LINKMCP_MASK_ERROR_DETAILS",
        value_parser = BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub mask_error_details: bool,

    /// Calls per minute allowed for each tool, all clients together (a burst of that many
    /// passes at once); unlimited when not set.
    #[arg(
        long,
        env = "LINKMCP_CALLS_PER_MINUTE_PER_TOOL",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub calls_per_minute_per_tool: Option<u32>,

    /// Most MCP sessions open at once; an `initialize` beyond it is refused with 503.
    #[arg(
        long,
        env = "LINKMCP_MAX_SESSIONS",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_sessions: Option<u32>,

    /// Serve the built-in `find_tools` tool: the tools matching a description, among those
    /// the caller may call.
    #[arg(
        long,
        env = "LINKMCP_FIND_TOOLS",
        value_parser = BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub find_tools: bool,

    /// Ask an interactive client's user to confirm each destructive tool call first (when the
    /// client can be asked: it declares elicitation).
    #[arg(
        long,
        env = "LINKMCP_CONFIRM_DESTRUCTIVE",
        value_parser = BoolishValueParser::new(),
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub confirm_destructive: bool,
}

/// Where Kubernetes mounts the pod's namespace with its ServiceAccount token.
pub const SERVICE_ACCOUNT_NAMESPACE_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl Args {
    /// `--namespace`, else the pod's namespace when running in a pod.
    pub fn namespace(&self) -> Option<String> {
        self.namespace.clone().or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE_FILE)
                .ok()
                .map(|namespace| namespace.trim().to_owned())
                .filter(|namespace| !namespace.is_empty())
        })
    }

    /// The serving settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            listen: self.listen,
            stateless: self.stateless,
            allowed_hosts: self.allowed_hosts.clone(),
            server_name: self
                .server_name
                .clone()
                .unwrap_or_else(|| Settings::default().server_name),
            limits: CallLimits {
                timeout: Duration::from_secs(self.tool_timeout_seconds),
                max_output_bytes: usize::try_from(self.max_output_bytes).unwrap_or(usize::MAX),
            },
            mask_error_details: self.mask_error_details,
            calls_per_minute_per_tool: self.calls_per_minute_per_tool,
            max_sessions: self
                .max_sessions
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(linkmcp_api::server::ServerLimits::DEFAULT_MAX_SESSIONS),
            find_tools: self.find_tools,
            confirm_destructive: self.confirm_destructive,
            source: if self.manifests.is_some() {
                SourceKind::Manifests
            } else {
                SourceKind::Kubernetes
            },
            // Admit no one until the McpServer's `spec.auth` is known (`main` sets it): unlike
            // `Settings::default()`, the binary never serves without auth by accident.
            auth: AuthConfig::default(),
            ..Settings::default()
        }
    }
}

/// Which flags were given on the command line or in the environment (as opposed to left at
/// their default).
pub struct Given(clap::ArgMatches);

impl Given {
    /// Parses the process arguments into flags and what was given.
    pub fn parse() -> (Args, Self) {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Args::command().get_matches();
        match Args::from_arg_matches(&matches) {
            Ok(args) => (args, Self(matches)),
            Err(err) => err.exit(),
        }
    }

    fn has(&self, id: &str) -> bool {
        !matches!(
            self.0.value_source(id),
            None | Some(clap::parser::ValueSource::DefaultValue)
        )
    }
}

impl Settings {
    /// Takes the McpServer's own settings for what the flags left at their default: the
    /// manifest is the configuration standalone, and in a cluster the controller passes the same
    /// values as environment variables (a change rolls the pods). Read once at start.
    pub fn apply_server_spec(&mut self, spec: &McpServerSpec, given: &Given) {
        let limits = &spec.limits;
        if !given.has("tool_timeout_seconds") {
            self.limits.timeout =
                Duration::from_secs(u64::try_from(limits.tool_timeout_seconds).unwrap_or(30));
        }
        if !given.has("max_output_bytes") {
            self.limits.max_output_bytes =
                usize::try_from(limits.max_output_bytes).unwrap_or(self.limits.max_output_bytes);
        }
        if !given.has("mask_error_details") {
            self.mask_error_details = spec.mask_error_details;
        }
        if !given.has("find_tools") {
            self.find_tools = spec.find_tools;
        }
        if !given.has("confirm_destructive") {
            self.confirm_destructive = spec.confirm_destructive;
        }
        if !given.has("calls_per_minute_per_tool") {
            self.calls_per_minute_per_tool = limits
                .calls_per_minute_per_tool
                .and_then(|n| u32::try_from(n).ok());
        }
        if !given.has("stateless") {
            self.stateless = spec.stateless;
        }
        if !given.has("max_sessions")
            && let Some(n) = limits.max_sessions.and_then(|n| usize::try_from(n).ok())
        {
            self.max_sessions = n;
        }
        for host in &spec.allowed_hosts {
            if !self.allowed_hosts.contains(host) {
                self.allowed_hosts.push(host.clone());
            }
        }
        self.max_request_body_bytes =
            usize::try_from(limits.max_request_bytes).unwrap_or(self.max_request_body_bytes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let args = Args::try_parse_from(["linkmcp-server"]).unwrap();
        let settings = args.settings();
        assert_eq!(settings.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!settings.stateless);
        assert!(settings.allowed_hosts.is_empty());
        assert_eq!(settings.server_name, "linkmcp");
        assert_eq!(settings.limits.timeout, Duration::from_secs(30));
        assert_eq!(args.log_format, LogFormat::Text);
        assert_eq!(args.manifests, None);
        assert!(!settings.mask_error_details);
        assert_eq!(settings.calls_per_minute_per_tool, None);
        assert_eq!(settings.source, SourceKind::Kubernetes);
        assert_eq!(settings.auth, AuthConfig::default());
        assert!(!settings.auth.spec.allow_unauthenticated);
    }

    #[test]
    fn guard_flags_are_parsed() {
        let args = Args::try_parse_from([
            "linkmcp-server",
            "--manifests=/tmp/m",
            "--mask-error-details",
            "--calls-per-minute-per-tool=120",
        ])
        .unwrap();
        let settings = args.settings();
        assert!(settings.mask_error_details);
        assert_eq!(settings.calls_per_minute_per_tool, Some(120));
        assert_eq!(settings.source, SourceKind::Manifests);
        assert!(
            Args::try_parse_from(["linkmcp-server", "--calls-per-minute-per-tool=0"]).is_err(),
            "zero calls per minute is refused, not read as unlimited"
        );
        let args = Args::try_parse_from(["linkmcp-server", "--mask-error-details=false"]).unwrap();
        assert!(!args.mask_error_details);
    }

    #[test]
    fn flags_are_parsed() {
        let args = Args::try_parse_from([
            "linkmcp-server",
            "--listen=0.0.0.0:9000",
            "--stateless",
            "--allowed-host=a.example",
            "--allowed-host=b.example,c.example",
            "--server-name=demo",
            "--manifests=/tmp/m",
            "--tool-timeout-seconds=5",
            "--log-format=json",
            "--server=srv",
            "--namespace=team",
        ])
        .unwrap();
        assert_eq!(args.server.as_deref(), Some("srv"));
        assert_eq!(args.namespace().as_deref(), Some("team"));
        let settings = args.settings();
        assert_eq!(settings.listen, "0.0.0.0:9000".parse().unwrap());
        assert!(settings.stateless);
        assert_eq!(
            settings.allowed_hosts,
            ["a.example", "b.example", "c.example"]
        );
        assert_eq!(settings.server_name, "demo");
        assert_eq!(settings.limits.timeout, Duration::from_secs(5));
        assert_eq!(args.manifests, Some(PathBuf::from("/tmp/m")));
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn stateless_takes_an_explicit_value() {
        let args = Args::try_parse_from(["linkmcp-server", "--stateless=false"]).unwrap();
        assert!(!args.stateless);
    }
}
