//! Command-line flags, each also settable by environment variable (how the Deployment the
//! controller renders configures the server).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum, builder::BoolishValueParser};

use crate::{Settings, mcp::CallLimits};

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

    /// Which McpServer of the manifests folder to serve, when it holds several.
    #[arg(long = "server", env = "LINKMCP_SERVER", value_name = "NAME")]
    pub server: Option<String>,

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
}

impl Args {
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
            ..Settings::default()
        }
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
        ])
        .unwrap();
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
