//! Standalone source: the desired state read from a folder of YAML manifests.
//!
//! `linkmcp-server --manifests DIR` reads McpServer, McpLink, Agent, AiTask and Secret objects
//! from every `.yaml`/`.yml` file under DIR (multi-document files too), keeps those belonging
//! to one McpServer, resolves link credentials from the Secrets in the folder — as the
//! controller does in a cluster — and polls the folder for changes. A file that does not parse
//! is reported with its name and line, and the last good state stays served.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use linkmcp_api::{Agent, AiTask, McpLink, McpServer};
use linkmcp_toolsets::credentials::Credentials;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    DesiredState, LinkState, StateReceiver, namespace_of, resolve_link, secret_data, served_by,
};

/// Why a folder could not be turned into a desired state.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("no McpServer in {dir}: add one (see config/samples/local/mcpserver.yaml)")]
    NoServer { dir: PathBuf },
    #[error("{dir} holds several McpServers ({names}): choose one with --server")]
    SeveralServers { dir: PathBuf, names: String },
    #[error("McpServer {name} is not in {dir}; it holds: {names}")]
    ServerNotFound {
        dir: PathBuf,
        name: String,
        names: String,
    },
}

/// A folder of manifests, and which McpServer in it this server is.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    dir: PathBuf,
    server: Option<String>,
}

/// The objects found in the folder, before selection.
#[derive(Default)]
struct Objects {
    servers: Vec<McpServer>,
    links: Vec<McpLink>,
    agents: Vec<Agent>,
    tasks: Vec<AiTask>,
    secrets: Vec<Secret>,
}

impl ManifestSource {
    /// A source reading `dir`, serving the McpServer named `server` (or the only one there).
    pub fn new(dir: impl Into<PathBuf>, server: Option<String>) -> Self {
        Self {
            dir: dir.into(),
            server,
        }
    }

    /// Reads the folder once. The first load's error stops the server with a clear message;
    /// later ones are logged and the last good state stays (see [`ManifestSource::watch`]).
    pub fn load(&self) -> Result<DesiredState, LoadError> {
        let mut objects = Objects::default();
        for path in yaml_files(&self.dir)? {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            for (first_line, doc) in documents(&text) {
                parse_document(&path, first_line, doc, &mut objects)?;
            }
        }
        self.select(objects)
    }

    /// Loads the folder, then polls it every `interval` and publishes each new state until
    /// `shutdown`. Returns the first load's error instead of starting.
    pub fn watch(
        self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> Result<StateReceiver, LoadError> {
        let first = self.load()?;
        let (tx, rx) = watch::channel(Arc::new(first));
        let mut seen = fingerprint(&self.dir);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = fingerprint(&self.dir);
                if now == seen {
                    continue;
                }
                seen = now;
                match self.load() {
                    Ok(state) => {
                        tx.send_if_modified(|current| {
                            let changed = **current != state;
                            if changed {
                                tracing::info!(dir = %self.dir.display(), links = state.links.len(), "manifests changed");
                                *current = Arc::new(state);
                            }
                            changed
                        });
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "manifests not reloaded; still serving the last good state");
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Picks this server's objects and resolves credentials.
    fn select(&self, objects: Objects) -> Result<DesiredState, LoadError> {
        let names = || {
            let names: Vec<String> = objects.servers.iter().map(name_of).collect();
            names.join(", ")
        };
        let server = match (&self.server, objects.servers.len()) {
            (None, 0) => {
                return Err(LoadError::NoServer {
                    dir: self.dir.clone(),
                });
            }
            (None, 1) => objects.servers[0].clone(),
            (None, _) => {
                return Err(LoadError::SeveralServers {
                    dir: self.dir.clone(),
                    names: names(),
                });
            }
            (Some(wanted), _) => objects
                .servers
                .iter()
                .find(|s| &name_of(s) == wanted)
                .cloned()
                .ok_or_else(|| LoadError::ServerNotFound {
                    dir: self.dir.clone(),
                    name: wanted.clone(),
                    names: names(),
                })?,
        };
        let server_name = name_of(&server);
        let namespace = namespace_of(&server.metadata);
        let secrets: BTreeMap<String, BTreeMap<String, String>> = objects
            .secrets
            .iter()
            .filter(|s| namespace_of(&s.metadata) == namespace)
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), secret_data(s)))
            .collect();

        let links: Vec<LinkState> = served_by(objects.links, &server_name, namespace)
            .into_iter()
            .map(|link| {
                resolve_link(link, |link, reference| {
                    let data = secrets.get(&reference.name).ok_or_else(|| {
                        format!(
                            "Secret {} is not in {} (namespace {})",
                            reference.name,
                            self.dir.display(),
                            namespace_of(&link.metadata)
                        )
                    })?;
                    reference
                        .resolve(data)
                        .map(Credentials::new)
                        .map_err(|missing| missing.to_string())
                })
            })
            .collect();

        let api_keys = server
            .spec
            .auth
            .as_ref()
            .and_then(|auth| auth.api_keys.as_ref())
            .and_then(|keys| secrets.get(&keys.secret_name))
            .map(|data| Credentials::new(data.clone()))
            .unwrap_or_default();

        let agents = served_by(objects.agents, &server_name, namespace);
        let agent_api_keys = agents
            .iter()
            .filter_map(|agent| {
                let reference = agent.spec.api_key_secret_ref.as_ref()?;
                let value = secrets.get(&reference.name)?.get(&reference.key)?;
                Some((agent.metadata.name.clone()?, value.clone()))
            })
            .collect();
        let tasks = served_by(objects.tasks, &server_name, namespace);
        let notification_secrets = secrets
            .iter()
            .flat_map(|(name, data)| {
                data.iter().map(move |(key, value)| {
                    (
                        linkmcp_api::names::credentials_key::secret_ref(name, key),
                        value.clone(),
                    )
                })
            })
            .collect();

        Ok(DesiredState {
            notification_secrets: Credentials::new(notification_secrets),
            links,
            agents,
            agent_api_keys: Credentials::new(agent_api_keys),
            tasks,
            api_keys,
            server: Some(server),
        })
    }
}

fn name_of(server: &McpServer) -> String {
    server.metadata.name.clone().unwrap_or_default()
}

/// The YAML files under `dir`, sorted, so loads are deterministic.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| LoadError::Io {
            path: current.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| LoadError::Io {
                    path: current.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Splits a multi-document YAML text at `---` lines, with each document's first line number
/// (1-based), so a parse error can name the line in the file.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (index, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            docs.push((first_line, std::mem::take(&mut current)));
            first_line = index + 2;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((first_line, current));
    docs.retain(|(_, doc)| {
        doc.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

fn parse_document(
    path: &Path,
    first_line: usize,
    doc: String,
    objects: &mut Objects,
) -> Result<(), LoadError> {
    let parse_error = |err: serde_yaml::Error| {
        let (line, column) = err
            .location()
            .map(|l| (first_line + l.line() - 1, l.column()))
            .unwrap_or((first_line, 1));
        LoadError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: err.to_string(),
        }
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TypeMeta {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
    }
    let meta: TypeMeta = serde_yaml::from_str(&doc).map_err(parse_error)?;
    fn typed<T: DeserializeOwned>(
        doc: &str,
        parse_error: impl Fn(serde_yaml::Error) -> LoadError,
    ) -> Result<T, LoadError> {
        serde_yaml::from_str(doc).map_err(parse_error)
    }
    match (meta.api_version.as_str(), meta.kind.as_str()) {
        ("linkmcp.io/v1alpha1", "McpServer") => objects.servers.push(typed(&doc, parse_error)?),
        ("linkmcp.io/v1alpha1", "McpLink") => objects.links.push(typed(&doc, parse_error)?),
        ("linkmcp.io/v1alpha1", "Agent") => objects.agents.push(typed(&doc, parse_error)?),
        ("linkmcp.io/v1alpha1", "AiTask") => objects.tasks.push(typed(&doc, parse_error)?),
        ("v1", "Secret") => objects.secrets.push(typed(&doc, parse_error)?),
        (api_version, kind) => {
            tracing::debug!(file = %path.display(), line = first_line, api_version, kind, "ignoring a manifest of another kind");
        }
    }
    Ok(())
}

/// What changes when a file is added, removed or written: names, sizes and mtimes.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    yaml_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const SERVER: &str = "apiVersion: linkmcp.io/v1alpha1\nkind: McpServer\nmetadata: {name: s}\nspec:\n  auth: {allowUnauthenticated: true}\n";

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("linkmcp-manifests-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_the_local_samples() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/samples/local");
        let state = ManifestSource::new(dir, None).load().unwrap();
        assert_eq!(name_of(state.server.as_ref().unwrap()), "local");
        let names: Vec<&str> = state.links.iter().map(LinkState::name).collect();
        assert_eq!(names, ["local-cache", "local-pg"]);
        let pg = &state.links[1];
        assert_eq!(pg.problem, None);
        assert_eq!(pg.credentials.get("username"), Some("postgres"));
        assert_eq!(state.agents.len(), 1);
        assert_eq!(
            state.agent_api_keys.get("local-agent"),
            Some("replace-with-a-real-key")
        );
        assert_eq!(state.tasks.len(), 1);
        // Notification settings look Secret keys up by the (secret, key) pair they name.
        let key = linkmcp_api::names::credentials_key::secret_ref("anthropic", "api-key");
        assert_eq!(
            state.notification_secrets.get(&key),
            Some("replace-with-a-real-key")
        );
    }

    #[test]
    fn a_parse_error_names_file_and_line() {
        let dir = temp_dir("parse");
        write(
            &dir,
            "a.yaml",
            &format!(
                "{SERVER}---\napiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: l}}\nspec:\n  serverRef: {{name: s}}\n  postgres: {{host: h, database: d, port: notanumber}}\n"
            ),
        );
        let err = ManifestSource::new(&dir, None).load().unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("a.yaml:12:"), "{shown}");
        assert!(shown.contains("port"), "{shown}");
    }

    #[test]
    fn links_of_other_servers_and_namespaces_are_left_out() {
        let dir = temp_dir("select");
        write(&dir, "s.yaml", SERVER);
        let link = |name: &str, server: &str, ns: &str| {
            format!(
                "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  serverRef: {{name: {server}}}\n  prometheus: {{url: 'http://p:9090'}}\n---\n"
            )
        };
        write(
            &dir,
            "l.yaml",
            &[
                link("mine", "s", "default"),
                link("other", "t", "default"),
                link("elsewhere", "s", "prod"),
            ]
            .concat(),
        );
        let state = ManifestSource::new(&dir, None).load().unwrap();
        let names: Vec<&str> = state.links.iter().map(LinkState::name).collect();
        assert_eq!(names, ["mine"]);
    }

    #[test]
    fn link_problems_say_what_to_fix() {
        let dir = temp_dir("problems");
        write(&dir, "s.yaml", SERVER);
        write(
            &dir,
            "l.yaml",
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: a}\nspec:\n  serverRef: {name: s}\n  postgres: {host: h, database: d}\n  credentialsSecretRef: {name: pg, keys: {password: pw}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: pg}\nstringData: {username: u}\n---\napiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: b}\nspec:\n  serverRef: {name: s}\n  postgres: {host: h, database: d}\n  valkey: {host: h}\n---\napiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: c}\nspec:\n  serverRef: {name: s}\n  grafana: {url: 'http://g'}\n  credentialsSecretRef: {name: missing}\n",
        );
        let state = ManifestSource::new(&dir, None).load().unwrap();
        let problems: Vec<String> = state
            .links
            .iter()
            .map(|l| l.problem.clone().unwrap())
            .collect();
        assert_eq!(
            problems[0],
            "Secret pg has no key 'pw' (mapped to the credential 'password')"
        );
        assert_eq!(
            problems[1],
            "exactly one backend block may be set, found postgres and valkey"
        );
        assert!(
            problems[2].starts_with("Secret missing is not in"),
            "{}",
            problems[2]
        );
    }

    #[test]
    fn server_selection_is_explicit_when_ambiguous() {
        let dir = temp_dir("servers");
        write(&dir, "a.yaml", SERVER);
        write(&dir, "b.yaml", &SERVER.replace("name: s", "name: t"));
        let err = ManifestSource::new(&dir, None).load().unwrap_err();
        assert!(
            err.to_string().contains("several McpServers (s, t)"),
            "{err}"
        );
        let state = ManifestSource::new(&dir, Some("t".into())).load().unwrap();
        assert_eq!(name_of(state.server.as_ref().unwrap()), "t");
        let err = ManifestSource::new(&dir, Some("u".into()))
            .load()
            .unwrap_err();
        assert!(err.to_string().contains("McpServer u is not in"), "{err}");
    }

    #[tokio::test]
    async fn a_change_is_published_and_a_bad_file_keeps_the_last_good_state() {
        let dir = temp_dir("watch");
        write(&dir, "s.yaml", SERVER);
        let shutdown = CancellationToken::new();
        let mut rx = ManifestSource::new(&dir, None)
            .watch(Duration::from_millis(20), shutdown.clone())
            .unwrap();
        assert!(rx.borrow().links.is_empty());
        write(
            &dir,
            "l.yaml",
            "apiVersion: linkmcp.io/v1alpha1\nkind: McpLink\nmetadata: {name: l}\nspec:\n  serverRef: {name: s}\n  prometheus: {url: 'http://p:9090'}\n",
        );
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow_and_update().links.len(), 1);
        write(&dir, "bad.yaml", "kind: [unclosed\n");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !rx.has_changed().unwrap(),
            "a bad file must not replace the served state"
        );
        assert_eq!(rx.borrow().links.len(), 1);
        shutdown.cancel();
    }
}
