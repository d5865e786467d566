//! The server under test as a child process: spawned from the release binary on a free
//! loopback port, timed until its first ready answer, sampled for memory and CPU time (from
//! `/proc`), killed at the end.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long the server may take to report ready before the run is abandoned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `linkmcp-server`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    ready_in: Duration,
}

/// What to start.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub manifests: &'a Path,
    pub stateless: bool,
    /// Where the server's log goes; discarded when `None`.
    pub log: Option<&'a PathBuf>,
    /// `--max-sessions`, when the server's default is not enough.
    pub max_sessions: Option<usize>,
}

impl ServerProcess {
    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(launch: &Launch<'_>) -> anyhow::Result<Self> {
        let addr = free_port().context("finding a free port")?;
        let mut command = Command::new(launch.binary);
        command
            .arg("--manifests")
            .arg(launch.manifests)
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null());
        if launch.stateless {
            command.arg("--stateless");
        }
        if let Some(max) = launch.max_sessions {
            command.arg("--max-sessions").arg(max.to_string());
        }
        match launch.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                command
                    .stdout(file.try_clone().context("duplicating the log file")?)
                    .stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        let mut server = Self {
            child,
            addr,
            ready_in: Duration::ZERO,
        };
        server.ready_in = server.wait_ready(spawned).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<Duration> {
        loop {
            if readyz_ok(self.addr).await {
                return Ok(spawned.elapsed());
            }
            if let Some(status) = self.child.try_wait().context("checking the server")? {
                bail!("the server exited before it was ready ({status}); rerun with --server-log");
            }
            if spawned.elapsed() > READY_TIMEOUT {
                bail!("the server was not ready within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From spawn to the first 200 on `/readyz`.
    pub fn ready_in(&self) -> Duration {
        self.ready_in
    }

    /// The process id, for [`rss_kib`] and [`cpu_time`].
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Whether `GET /readyz` answers 200 on a fresh connection.
async fn readyz_ok(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(connection);
    let Ok(request) = Request::get("/readyz")
        .header(header::HOST, addr.to_string())
        .body(Empty::new())
    else {
        return false;
    };
    matches!(sender.send_request(request).await, Ok(r) if r.status() == StatusCode::OK)
}

/// The resident set size of process `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))
}

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

/// The CPU time (user and system, all threads) process `pid` has used so far, from fields 14
/// and 15 of `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("no CPU times in {path}"))?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// utime + stime of a `/proc/<pid>/stat` line.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: count
    // the fields after its last `)`, where field 3 comes first.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194304 99 0 0 0 721 3216 0 0 20 0 8 0";
        assert_eq!(cpu_ticks(stat), Some(721 + 3216));
        assert_eq!(cpu_ticks("42 (short"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        cpu_time(pid).unwrap();
    }
}
