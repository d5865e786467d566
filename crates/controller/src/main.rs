//! linkmcp-controller: the cluster side of linkmcp. It owns Kubernetes objects — it reconciles
//! McpServers into a least-privileged server Deployment with its Service, RBAC, settings and
//! credentials Secret, validates McpLinks, Agents and AiTasks, and writes their status. It never
//! serves tools or runs tasks: the server does, and the two meet only in the API server.
//!
//! The reconcilers land with the controller's own work; today the binary installs the CRDs'
//! YAML (`linkmcp-controller crds | kubectl apply -f -`) and reports its version.

use std::io::Write;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "linkmcp-controller", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the four linkmcp kinds as one YAML stream.
    Crds,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Crds => {
            let mut out = std::io::stdout().lock();
            for (_, crd) in linkmcp_api::crds::all() {
                writeln!(out, "---\n{}", linkmcp_api::crds::to_yaml(&crd)?)?;
            }
        }
    }
    Ok(())
}
