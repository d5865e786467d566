//! `linkmcp-bench`: the server benchmark `make bench` runs.
//!
//! It starts the release `linkmcp-server` itself — once with `--stateless`, once with sessions —
//! and drives `tools/call ping` over real keep-alive HTTP connections for a fixed time per
//! phase: stateless at 1 and at 32 connections, then 8 MCP sessions. It reports calls/s,
//! latency percentiles (HDR histogram), errors, the server's RSS idle and under load, and how
//! long the server took from spawn to ready, next to the performance targets of the issue.
//! Targets are reported, never enforced: the figures depend on the machine.
//!
//! `linkmcp-bench soak` (`make soak`) holds many sessions open for a long time instead, with
//! calls flowing through all of them, and prints the server's RSS curve ([`soak`]).

mod load;
mod server;
mod soak;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::{
    load::{Mode, Phase, PhaseResult},
    server::{Launch, ServerProcess, rss_kib},
};

/// Targets from the issue.
const TARGET_CALLS_PER_SECOND: f64 = 40_000.0;
const TARGET_CALLS_CONNECTIONS: usize = 32;
const TARGET_P99_MS: f64 = 10.0;
const TARGET_RSS_IDLE_MIB: f64 = 15.0;
const TARGET_RSS_LOAD_MIB: f64 = 30.0;
const TARGET_READY_MS: f64 = 200.0;

/// How long the server is left alone after it is ready before its idle RSS is read.
const IDLE_SETTLE: Duration = Duration::from_millis(300);

/// linkmcp-bench: calls/s, latency, RSS and readiness of linkmcp-server.
#[derive(Debug, Parser)]
#[command(name = "linkmcp-bench", version, about)]
struct Args {
    /// The server binary; defaults to `linkmcp-server` beside this binary (both are built by
    /// `cargo build --release --workspace --bins`).
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,

    /// The manifests folder the server serves.
    #[arg(long, value_name = "DIR", default_value = "config/samples/local")]
    manifests: PathBuf,

    /// Measured time per phase (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load before each phase's measurement starts, not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Concurrent connections of the stateless phases, one phase each.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    connections: Vec<usize>,

    /// Concurrent MCP sessions of the session phase (one connection each).
    #[arg(long, default_value_t = 8)]
    sessions: usize,

    /// Threads of the load client (1 leaves the other cores to the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,

    /// Append the server's log to this file instead of discarding it.
    #[arg(long, value_name = "PATH")]
    server_log: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hold many MCP sessions open with calls flowing for a long time; print the RSS curve.
    Soak(SoakArgs),
}

#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// MCP sessions held open at once.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,

    /// Keep-alive connections carrying the calls of all sessions.
    #[arg(long, default_value_t = 32)]
    connections: usize,

    /// How long the calls flow once every session is open (`10m`, `30s`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,

    /// How often the server's RSS is sampled.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    sample_every: Duration,
}

/// Most RSS growth over the soak's curve that still counts as flat, in percent.
const TARGET_SOAK_GROWTH_PERCENT: f64 = 5.0;

/// Parses `10s`, `500ms`, `2m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 1m"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|err| format!("`{text}`: {err}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.client_threads == 0 || args.sessions == 0 || args.connections.contains(&0) {
        bail!("--client-threads, --sessions and --connections must be at least 1");
    }
    let runtime = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    }
    .context("starting the client runtime")?;
    match &args.command {
        None => runtime.block_on(bench(&args)),
        Some(Command::Soak(soak_args)) => runtime.block_on(run_soak(&args, soak_args)),
    }
}

/// The server binary: `--server`, else `linkmcp-server` beside this binary.
fn server_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let binary = match &args.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating this binary")?
            .with_file_name("linkmcp-server"),
    };
    if !binary.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release --workspace --bins` or pass --server",
            binary.display()
        );
    }
    Ok(binary)
}

async fn run_soak(args: &Args, soak: &SoakArgs) -> anyhow::Result<()> {
    if soak.sessions == 0 || soak.connections == 0 || soak.sample_every.is_zero() {
        bail!("--sessions, --connections and --sample-every must be more than 0");
    }
    let binary = server_binary(args)?;
    println!(
        "linkmcp-bench soak: {} on {}; {} sessions over {} connections for {}, RSS every {}",
        binary.display(),
        args.manifests.display(),
        soak.sessions,
        soak.connections,
        format_duration(soak.duration),
        format_duration(soak.sample_every),
    );
    let server = ServerProcess::start(&Launch {
        binary: &binary,
        manifests: &args.manifests,
        stateless: false,
        log: args.server_log.as_ref(),
        // The server's own limit is sized for its default memory limit, not for a soak.
        max_sessions: Some(soak.sessions),
    })
    .await
    .context("starting the server")?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let result = soak::run(
        server.addr(),
        server.pid(),
        soak::Soak {
            sessions: soak.sessions,
            connections: soak.connections,
            duration: soak.duration,
            sample_every: soak.sample_every,
        },
    )
    .await?;

    let rss_max = result.curve.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    println!();
    println!(
        "{} calls ({:.0}/s), p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; RSS {:.1} MiB idle, {:.1} \
         MiB with {} sessions open, {:.1} MiB at most while calling, {:.1} MiB after closing them",
        result.calls,
        result.calls as f64 / soak.duration.as_secs_f64(),
        result.latency_ms(0.50),
        result.latency_ms(0.99),
        result.latency_ms(0.999),
        mib(result.rss_before_kib),
        mib(result.rss_opened_kib),
        soak.sessions,
        mib(rss_max),
        mib(result.rss_closed_kib),
    );
    println!(
        "opening the {} sessions took {:.1} s",
        soak.sessions,
        result.opened_in.as_secs_f64()
    );
    if let Some(err) = &result.first_error {
        println!("first error: {err}");
    }
    println!();
    println!("targets (from the issue; reported, not enforced):");
    target("0 errors", &result.errors.to_string(), result.errors == 0);
    target(
        &format!("RSS flat (<= {TARGET_SOAK_GROWTH_PERCENT:.0} % growth, second half)"),
        &format!("{:+.1} %", result.growth_percent()),
        result.growth_percent() <= TARGET_SOAK_GROWTH_PERCENT,
    );
    target(
        "every session closed by DELETE",
        &format!("{} not closed", result.close_failures),
        result.close_failures == 0,
    );
    Ok(())
}

/// One server process and what was measured on it.
struct ServerRun {
    label: &'static str,
    ready_in: Duration,
    rss_idle_kib: u64,
    phases: Vec<(String, usize, PhaseResult)>,
}

async fn bench(args: &Args) -> anyhow::Result<()> {
    let binary = server_binary(args)?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "linkmcp-bench: {} on {}; {} per phase after {} warm-up; client on {} thread(s); {cpus} CPU(s)",
        binary.display(),
        args.manifests.display(),
        format_duration(args.duration),
        format_duration(args.warmup),
        args.client_threads,
    );

    let mut runs = Vec::new();
    let stateless = args
        .connections
        .iter()
        .map(|&n| {
            let label = if n == 1 {
                "stateless, 1 connection".to_owned()
            } else {
                format!("stateless, {n} connections")
            };
            (label, Mode::Stateless, n)
        })
        .collect();
    runs.push(measure(args, &binary, "stateless", true, stateless).await?);
    let sessions = vec![(
        format!("sessions, {} sessions", args.sessions),
        Mode::Session,
        args.sessions,
    )];
    runs.push(measure(args, &binary, "sessions", false, sessions).await?);

    report(&runs);
    Ok(())
}

/// Starts one server and runs `phases` against it.
async fn measure(
    args: &Args,
    binary: &std::path::Path,
    label: &'static str,
    stateless: bool,
    phases: Vec<(String, Mode, usize)>,
) -> anyhow::Result<ServerRun> {
    let server = ServerProcess::start(&Launch {
        binary,
        manifests: &args.manifests,
        stateless,
        log: args.server_log.as_ref(),
        max_sessions: None,
    })
    .await
    .with_context(|| format!("starting the server ({label})"))?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_idle_kib = rss_kib(server.pid())?;
    println!(
        "server ({label}): ready in {:.0} ms, RSS idle {:.1} MiB",
        ms(server.ready_in()),
        mib(rss_idle_kib)
    );
    let mut results = Vec::new();
    for (name, mode, connections) in phases {
        let phase = Phase {
            mode,
            connections,
            warmup: args.warmup,
            duration: args.duration,
        };
        let result = load::run(server.addr(), server.pid(), phase)
            .await
            .with_context(|| format!("phase {name}"))?;
        println!(
            "  {name}: {:.0} calls/s, p99 {:.2} ms",
            result.calls_per_second(),
            result.latency_ms(0.99)
        );
        results.push((name, connections, result));
    }
    Ok(ServerRun {
        label,
        ready_in: server.ready_in(),
        rss_idle_kib,
        phases: results,
    })
}

fn report(runs: &[ServerRun]) {
    println!();
    println!(
        "{:<28} {:>10} {:>8} {:>8} {:>9} {:>7} {:>12} {:>10} {:>10}",
        "phase",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "RSS max MiB",
        "srv cores",
        "cli cores"
    );
    let mut first_errors = Vec::new();
    for run in runs {
        for (name, _, r) in &run.phases {
            println!(
                "{:<28} {:>10} {:>8.3} {:>8.3} {:>9.3} {:>7} {:>12.1} {:>10.2} {:>10.2}",
                name,
                thousands(r.calls_per_second()),
                r.latency_ms(0.50),
                r.latency_ms(0.99),
                r.latency_ms(0.999),
                r.errors,
                mib(r.rss_max_kib),
                r.server_cores,
                r.client_cores,
            );
            if let Some(err) = &r.first_error {
                first_errors.push(format!("{name}: {err}"));
            }
        }
    }
    for err in &first_errors {
        println!("first error in {err}");
    }
    println!(
        "(srv/cli cores: CPU time of the server / of this client over the measured window, in \
         cores; their sum near the CPU count means the machine, not the server, is the limit)"
    );

    let phases = || runs.iter().flat_map(|r| r.phases.iter());
    println!();
    println!("targets (from the issue; reported, not enforced):");
    let ready = runs
        .iter()
        .map(|r| format!("{} {:.0} ms", r.label, ms(r.ready_in)))
        .collect::<Vec<_>>()
        .join(", ");
    let worst_ready = runs.iter().map(|r| ms(r.ready_in)).fold(0.0, f64::max);
    target(
        &format!("ready in < {TARGET_READY_MS:.0} ms"),
        &ready,
        worst_ready < TARGET_READY_MS,
    );
    let idle = runs
        .iter()
        .map(|r| format!("{} {:.1} MiB", r.label, mib(r.rss_idle_kib)))
        .collect::<Vec<_>>()
        .join(", ");
    let worst_idle = runs.iter().map(|r| mib(r.rss_idle_kib)).fold(0.0, f64::max);
    target(
        &format!("RSS idle <= {TARGET_RSS_IDLE_MIB:.0} MiB"),
        &idle,
        worst_idle <= TARGET_RSS_IDLE_MIB,
    );
    let throughput = runs
        .iter()
        .filter(|r| r.label == "stateless")
        .flat_map(|r| r.phases.iter())
        .find(|(_, connections, _)| *connections == TARGET_CALLS_CONNECTIONS);
    match throughput {
        Some((_, _, r)) => target(
            &format!(
                "calls/s >= {} (stateless, {TARGET_CALLS_CONNECTIONS} conns)",
                thousands(TARGET_CALLS_PER_SECOND)
            ),
            &thousands(r.calls_per_second()),
            r.calls_per_second() >= TARGET_CALLS_PER_SECOND,
        ),
        None => println!(
            "  calls/s target: not measured (no stateless phase at {TARGET_CALLS_CONNECTIONS} connections)"
        ),
    }
    let worst_p99 = phases()
        .map(|(_, _, r)| r.latency_ms(0.99))
        .fold(0.0, f64::max);
    target(
        &format!("p99 <= {TARGET_P99_MS:.0} ms (every phase)"),
        &format!("worst {worst_p99:.2} ms"),
        worst_p99 <= TARGET_P99_MS,
    );
    let worst_rss = phases()
        .map(|(_, _, r)| mib(r.rss_max_kib))
        .fold(0.0, f64::max);
    target(
        &format!("RSS under load <= {TARGET_RSS_LOAD_MIB:.0} MiB"),
        &format!("max {worst_rss:.1} MiB"),
        worst_rss <= TARGET_RSS_LOAD_MIB,
    );
    let errors: u64 = phases().map(|(_, _, r)| r.errors).sum();
    if errors > 0 {
        println!("  {errors} calls failed: the figures above are not trustworthy");
    }
}

fn target(what: &str, measured: &str, met: bool) {
    println!(
        "  {what:<42} {measured:<40} {}",
        if met { "met" } else { "MISSED" }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `41234.4` as `41,234`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(41234.4), "41,234");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }

    #[test]
    fn durations_print_compactly() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
