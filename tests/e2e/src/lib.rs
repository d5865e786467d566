//! The end-to-end harness: a fresh namespace in the cluster named by `KUBECONFIG`, the
//! linkmcp CRDs installed, and the controller (and, when a test asks, the server) running as
//! local processes of this build — no image registry, no kubelet: no test waits for a pod.
//!
//! Everything a test starts is stopped, and its namespace deleted, when its [`Harness`] is
//! dropped. The controller is cluster-wide, so tests run one at a time (`make e2e` passes
//! `--test-threads=1`) and no other linkmcp controller may run in the cluster meanwhile.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

pub mod model;

/// Field manager of what the tests apply, standing for a user.
pub const USER: &str = "e2e-user";

/// The folder holding the workspace's binaries: `LINKMCP_BIN_DIR`, else the folder of this
/// test executable's parent (`target/debug/deps/..`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("LINKMCP_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("cannot find the target folder from {}", exe.display()))
}

/// The workspace root (this crate is `tests/e2e` in it).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A client of the cluster in `KUBECONFIG`, once its API server answers.
pub async fn connect() -> anyhow::Result<Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.context(
        "KUBECONFIG reaches no cluster: point it at a cluster (e.g. `kind create cluster`)",
    )?;
    client
        .apiserver_version()
        .await
        .context("KUBECONFIG reaches no cluster: the API server does not answer")?;
    Ok(client)
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Prints one figure of the run (a latency, a count of writes) and, when `make e2e` names a
/// report file in `LINKMCP_E2E_REPORT`, appends it there: cargo shows a passing test's output
/// only with `--nocapture`, and `make e2e` prints the report at the end of every run.
pub fn report(line: &str) {
    eprintln!("e2e: {line}");
    if let Some(path) = std::env::var_os("LINKMCP_E2E_REPORT") {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(err) = written {
            eprintln!("e2e: cannot append to {}: {err}", path.to_string_lossy());
        }
    }
}

/// The `q`-quantile (0..=1) of `samples`, nearest rank; zero for no samples.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `objects` as one YAML stream (documents separated by `---`) for `kubectl apply -f -`.
///
/// kubectl reads a stream that starts with `{` as JSON, so JSON objects joined with `---`
/// are refused ("invalid character '-' in numeric literal"): every multi-object manifest of
/// the suite goes through here.
pub fn yaml_stream(objects: &[serde_json::Value]) -> anyhow::Result<String> {
    let documents = objects
        .iter()
        .map(serde_yaml::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(documents.join("---\n"))
}

/// Runs `kubectl` with `args` (and `stdin`), returning (success, stdout, stderr).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> anyhow::Result<(bool, String, String)> {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl (the suite needs kubectl on PATH)")?;
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A local process killed on drop, its output in a log file.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &str, program: PathBuf, args: &[String], log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run `cargo build --workspace` first)",
                    program.display()
                )
            })?;
        eprintln!("e2e: started {name}; log: {}", log.display());
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// Whether the process still runs (its log says why not).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; see {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test's world: a client, a fresh namespace, the controller.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub controller: Process,
    /// The controller's `/metrics` address.
    pub metrics: String,
    server: Option<Process>,
    /// The folder of the processes' logs.
    pub logs: PathBuf,
}

impl Harness {
    /// Connects to the cluster, installs the CRDs, creates namespace `linkmcp-e2e-<test>-…`
    /// and starts the controller.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let client = connect().await?;
        let bin = bin_dir()?;
        let crds = Command::new(bin.join("linkmcp-controller"))
            .arg("crds")
            .output()
            .context("running linkmcp-controller crds")?;
        let (ok, _, err) = kubectl(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&String::from_utf8_lossy(&crds.stdout)),
        )?;
        if !ok {
            bail!("installing the CRDs failed: {err}");
        }
        let (ok, _, err) = kubectl(
            &[
                "wait",
                "--for",
                "condition=established",
                "--timeout=60s",
                "crd/mcpservers.linkmcp.io",
                "crd/mcplinks.linkmcp.io",
                "crd/agents.linkmcp.io",
                "crd/aitasks.linkmcp.io",
            ],
            None,
        )?;
        if !ok {
            bail!("the CRDs were not established: {err}");
        }

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let suffix = format!("{:x}", std::process::id() ^ nanos);
        let namespace = format!("linkmcp-e2e-{test}-{suffix}");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace,
                    "labels": {"linkmcp.io/e2e": "true"}}}))?,
            )
            .await
            .with_context(|| format!("creating namespace {namespace}"))?;

        let logs = std::env::temp_dir().join(&namespace);
        std::fs::create_dir_all(&logs)?;
        let port = free_port()?;
        let metrics = format!("127.0.0.1:{port}");
        let controller = Process::spawn(
            "linkmcp-controller",
            bin.join("linkmcp-controller"),
            &[
                "run".into(),
                format!("--metrics-listen={metrics}"),
                "--leader-election=false".into(),
            ],
            logs.join("controller.log"),
        )?;
        let harness = Self {
            client,
            namespace,
            controller,
            metrics,
            server: None,
            logs,
        };
        harness
            .wait(
                "the controller's /healthz",
                Duration::from_secs(30),
                || async {
                    Ok(reqwest::get(format!("http://{}/healthz", harness.metrics))
                        .await
                        .is_ok_and(|r| r.status().is_success())
                        .then_some(()))
                },
            )
            .await?;
        Ok(harness)
    }

    /// Starts the server for McpServer `server` on a free port (stateless, so plain JSON-RPC
    /// POSTs reach it); returns its base URL once `/startupz` answers.
    pub async fn start_server(&mut self, server: &str) -> anyhow::Result<String> {
        let port = free_port()?;
        let process = Process::spawn(
            "linkmcp-server",
            bin_dir()?.join("linkmcp-server"),
            &[
                format!("--server={server}"),
                format!("--namespace={}", self.namespace),
                format!("--listen=127.0.0.1:{port}"),
                "--stateless".into(),
            ],
            self.logs.join("server.log"),
        )?;
        self.server = Some(process);
        let url = format!("http://127.0.0.1:{port}");
        self.wait(
            "the server's /startupz",
            Duration::from_secs(60),
            || async {
                Ok(reqwest::get(format!("{url}/startupz"))
                    .await
                    .is_ok_and(|r| r.status().is_success())
                    .then_some(()))
            },
        )
        .await?;
        Ok(url)
    }

    /// Whether the controller and, once started, the server still run (their logs say why
    /// not).
    pub fn check_processes(&mut self) -> anyhow::Result<()> {
        self.controller.check_running()?;
        if let Some(server) = &mut self.server {
            server.check_running()?;
        }
        Ok(())
    }

    /// Applies a manifest (YAML, one or more documents) with kubectl in the namespace.
    pub fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        let (ok, _, err) = kubectl(&["apply", "-n", &self.namespace, "-f", "-"], Some(yaml))?;
        if !ok {
            bail!("kubectl apply failed: {err}");
        }
        Ok(())
    }

    /// Server-side applies `object` (JSON) as the user.
    pub async fn apply_json<K>(&self, object: Value) -> anyhow::Result<K>
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let name = object["metadata"]["name"]
            .as_str()
            .ok_or_else(|| anyhow!("object without a name"))?
            .to_owned();
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(api
            .patch(&name, &PatchParams::apply(USER), &Patch::Apply(&object))
            .await?)
    }

    /// Calls `probe` every 250 ms until it yields a value, failing after `timeout`.
    pub async fn wait<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = probe().await? {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {timeout:?} waiting for {what}; logs in {}",
                    self.logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The controller's metric `name` summed over its labels.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// The names of the tools the server lists, with `api_key` as bearer.
    pub async fn list_tools(&self, url: &str, api_key: &str) -> anyhow::Result<Vec<String>> {
        let response: Value = reqwest::Client::new()
            .post(format!("{url}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth(api_key)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(response["result"]["tools"]
            .as_array()
            .ok_or_else(|| anyhow!("no tools in {response}"))?
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.take();
        // McpServers go first, while the controller runs: one with cluster-wide kubectl access
        // holds a finalizer that only the controller releases.
        let _ = kubectl(
            &[
                "delete",
                "mcpservers",
                "--all",
                "-n",
                &self.namespace,
                "--timeout=60s",
            ],
            None,
        );
        let _ = self.controller.child.kill();
        let _ = kubectl(
            &["delete", "namespace", &self.namespace, "--wait=false"],
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What kubectl does with the stream: YAML documents, none of them read as JSON.
    #[test]
    fn a_yaml_stream_is_yaml_documents_kubectl_can_read() {
        let objects = [
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"},
                               "stringData": {"password": "x: y"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
        ];
        let stream = yaml_stream(&objects).unwrap();
        assert!(!stream.trim_start().starts_with('{'), "{stream}");
        let parsed: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&stream)
            .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
            .collect();
        assert_eq!(parsed, objects);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |n| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=20).rev().map(ms).collect();
        assert_eq!(quantile(&samples, 0.5), ms(10));
        assert_eq!(quantile(&samples, 0.95), ms(19));
        assert_eq!(quantile(&samples, 1.0), ms(20));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
