//! The cluster source against the in-process fake API: what the watches request, and that
//! changes seen on them reach the published state.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

use super::fake_api::FakeApi;
use super::*;
use crate::source::LinkState;

const NS: &str = "team";
const WAIT: Duration = Duration::from_secs(10);

fn server(name: &str) -> McpServer {
    serde_json::from_value(json!({
        "apiVersion": "linkmcp.io/v1alpha1", "kind": "McpServer",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"auth": {"allowUnauthenticated": true}},
    }))
    .unwrap()
}

fn link(name: &str, server: &str, backend: serde_json::Value) -> McpLink {
    let mut spec = json!({"serverRef": {"name": server}});
    for (key, value) in backend.as_object().unwrap() {
        spec[key] = value.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "linkmcp.io/v1alpha1", "kind": "McpLink",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }))
    .unwrap()
}

fn prometheus(name: &str, server: &str) -> McpLink {
    link(
        name,
        server,
        json!({"prometheus": {"url": "http://p:9090"}}),
    )
}

fn credentials(server: &str, data: &[(&str, &str)]) -> Secret {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{server}-credentials"), "namespace": NS},
        "stringData": data,
    }))
    .unwrap()
}

fn names(state: &DesiredState) -> Vec<&str> {
    state.links.iter().map(LinkState::name).collect()
}

async fn until(
    rx: &mut StateReceiver,
    what: &str,
    mut check: impl FnMut(&DesiredState) -> bool,
) -> Arc<DesiredState> {
    let found = tokio::time::timeout(WAIT, async {
        rx.wait_for(|state| check(state))
            .await
            .map(|state| state.clone())
    })
    .await;
    match found {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the source stopped while waiting for {what}"),
        Err(_) => panic!(
            "timed out waiting for {what}; last state: {:?}",
            *rx.borrow()
        ),
    }
}

/// Shows the source's log lines in a failing test's output.
fn show_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("linkmcp_server=debug")
        .with_test_writer()
        .try_init();
}

async fn ready(signal: &ReadySignal) {
    tokio::time::timeout(WAIT, signal.wait())
        .await
        .expect("the source did not become ready")
        .unwrap();
}

#[tokio::test]
async fn links_added_and_deleted_on_the_watch_reach_the_published_state() {
    show_logs();
    let (api, client) = FakeApi::start();
    api.apply(&server("srv"));
    api.apply(&server("other"));
    api.apply(&prometheus("metrics", "srv"));
    api.apply(&prometheus("theirs", "other"));
    api.apply(&credentials("srv", &[("link.orders.password", "pw-1")]));
    api.apply(&credentials("other", &[("link.theirs.token", "not ours")]));

    let shutdown = CancellationToken::new();
    let (mut rx, signal) = start(client, NS, "srv", shutdown.clone()).unwrap();
    ready(&signal).await;
    assert!(signal.is_ready());
    let state = rx.borrow_and_update().clone();
    assert_eq!(
        state.server.as_ref().unwrap().metadata.name.as_deref(),
        Some("srv")
    );
    assert_eq!(names(&state), ["metrics"]);

    // A link appears on the watch, with its credentials from the server's Secret.
    api.apply(&link(
        "orders",
        "srv",
        json!({"postgres": {"host": "db", "database": "orders"}, "credentialsSecretRef": {"name": "orders-db"}}),
    ));
    let state = until(&mut rx, "the added link", |s| {
        names(s) == ["metrics", "orders"]
    })
    .await;
    assert_eq!(state.links[1].problem, None);
    assert_eq!(state.links[1].credentials.get("password"), Some("pw-1"));

    // The controller rotates the credential.
    api.apply(&credentials("srv", &[("link.orders.password", "pw-2")]));
    until(&mut rx, "the rotated credential", |s| {
        s.links.get(1).and_then(|l| l.credentials.get("password")) == Some("pw-2")
    })
    .await;

    // A deleted link disappears.
    api.delete::<McpLink>(NS, "metrics");
    until(&mut rx, "the deleted link to go", |s| {
        names(s) == ["orders"]
    })
    .await;

    // The credentials are taken away: the link says why it has none.
    api.delete::<Secret>(NS, "srv-credentials");
    let state = until(&mut rx, "the missing credentials problem", |s| {
        s.links.first().is_some_and(|l| l.problem.is_some())
    })
    .await;
    assert!(
        state.links[0]
            .problem
            .as_deref()
            .unwrap()
            .starts_with("credentials of link orders are not in Secret srv-credentials yet")
    );
    assert!(state.links[0].credentials.is_empty());

    // The McpServer and its Secret are listed and watched by name; the rest by namespace.
    let requests = api.requests();
    let to = |collection: &str, selector: Option<&str>, watch: bool| {
        requests.iter().any(|r| {
            r.starts_with(&format!("{collection}?"))
                && r.contains("watch=true") == watch
                && selector
                    .is_none_or(|s| r.contains(&format!("fieldSelector=metadata.name%3D{s}")))
                && (selector.is_some() || !r.contains("fieldSelector"))
        })
    };
    for watch in [false, true] {
        assert!(
            to(
                "/apis/linkmcp.io/v1alpha1/namespaces/team/mcpservers",
                Some("srv"),
                watch
            ),
            "{requests:#?}"
        );
        assert!(
            to(
                "/api/v1/namespaces/team/secrets",
                Some("srv-credentials"),
                watch
            ),
            "{requests:#?}"
        );
        for kind in ["mcplinks", "agents", "aitasks"] {
            let collection = format!("/apis/linkmcp.io/v1alpha1/namespaces/team/{kind}");
            assert!(to(&collection, None, watch), "{requests:#?}");
        }
    }
    assert!(
        requests.iter().all(|r| r.contains("/namespaces/team/")),
        "a request left the namespace: {requests:#?}"
    );

    // Shutdown stops the source: the channel closes.
    shutdown.cancel();
    let closed = tokio::time::timeout(WAIT, async { while rx.changed().await.is_ok() {} }).await;
    assert!(closed.is_ok(), "the source did not stop on shutdown");
}

#[tokio::test]
async fn not_ready_until_every_crd_is_installed_and_then_synced() {
    show_logs();
    let (api, client) = FakeApi::start();
    api.apply(&server("srv"));
    api.apply(&prometheus("metrics", "srv"));
    api.set_missing::<McpLink>(NS, true);

    let shutdown = CancellationToken::new();
    let (rx, signal) = start(client, NS, "srv", shutdown.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!signal.is_ready(), "ready while the McpLink CRD is missing");
    assert_eq!(**rx.borrow(), DesiredState::default());

    // Installing the CRD: the next retry lists it and the source becomes ready.
    api.set_missing::<McpLink>(NS, false);
    ready(&signal).await;
    assert_eq!(names(&rx.borrow()), ["metrics"]);
    shutdown.cancel();
}

#[tokio::test]
async fn a_burst_of_changes_is_published_as_one_state() {
    let (api, client) = FakeApi::start();
    api.apply(&server("srv"));
    let shutdown = CancellationToken::new();
    let (mut rx, signal) = start(client, NS, "srv", shutdown.clone()).unwrap();
    ready(&signal).await;
    rx.borrow_and_update();

    let burst = ["a", "b", "c", "d", "e"];
    for name in burst {
        api.apply(&prometheus(name, "srv"));
    }
    tokio::time::timeout(WAIT, rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        names(&rx.borrow_and_update()),
        burst,
        "the first state after the burst holds all of it"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn an_irrelevant_change_publishes_nothing() {
    let (api, client) = FakeApi::start();
    api.apply(&server("srv"));
    api.apply(&prometheus("metrics", "srv"));
    let shutdown = CancellationToken::new();
    let (mut rx, signal) = start(client, NS, "srv", shutdown.clone()).unwrap();
    ready(&signal).await;
    rx.borrow_and_update();

    api.apply(&server("other"));
    api.apply(&prometheus("theirs", "other"));
    api.apply(&credentials("other", &[("link.theirs.token", "t")]));
    tokio::time::sleep(DEBOUNCE * 4).await;
    assert!(
        !rx.has_changed().unwrap(),
        "another server's objects changed this server's state"
    );

    // While a relevant one does.
    api.apply(&prometheus("more", "srv"));
    until(&mut rx, "the new link", |s| names(s) == ["metrics", "more"]).await;
    shutdown.cancel();
}

#[tokio::test]
async fn names_that_would_break_a_field_selector_are_refused() {
    let (_api, client) = FakeApi::start();
    for (namespace, server) in [
        ("team", "srv,metadata.name=other"),
        ("team", ""),
        ("team", "Srv"),
        ("team.x", "srv"),
        ("", "srv"),
    ] {
        let err = start(client.clone(), namespace, server, CancellationToken::new()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. }),
            "{namespace}/{server}: {err}"
        );
    }
    assert!(start(client, "team", "srv.v2", CancellationToken::new()).is_ok());
}

#[test]
fn crd_missing_and_forbidden_are_told_apart() {
    let status = |code: u16| {
        ::kube::Error::Api(Box::new(::kube::core::Status {
            code,
            ..::kube::core::Status::default()
        }))
    };
    let list = |code| watcher::Error::InitialListFailed(status(code));
    assert_eq!(
        classify(Kind::McpLink, &list(404)),
        TroubleClass::CrdMissing
    );
    assert_eq!(classify(Kind::Secret, &list(404)), TroubleClass::Other);
    assert_eq!(classify(Kind::Secret, &list(403)), TroubleClass::Forbidden);
    assert_eq!(
        classify(Kind::Agent, &watcher::Error::WatchStartFailed(status(500))),
        TroubleClass::Other
    );
    let gone = watcher::Error::WatchError(Box::new(::kube::core::Status {
        code: 410,
        ..::kube::core::Status::default()
    }));
    assert_eq!(classify(Kind::AiTask, &gone), TroubleClass::Expired);
}

/// The API server ends the watches (a restart, a timeout) while a link is added: the source
/// watches again from where it was and sees the change. Then the history is gone (410 Gone
/// on resuming) while a link is deleted: the source lists again and sees that too.
#[tokio::test]
async fn a_cut_watch_resumes_and_an_expired_one_lists_again() {
    show_logs();
    let (api, client) = FakeApi::start();
    api.apply(&server("srv"));
    api.apply(&prometheus("metrics", "srv"));
    let shutdown = CancellationToken::new();
    let (mut rx, signal) = start(client, NS, "srv", shutdown.clone()).unwrap();
    ready(&signal).await;
    assert_eq!(names(&rx.borrow_and_update()), ["metrics"]);
    let links = collection_path::<McpLink>();
    let lists = |api: &FakeApi| {
        api.requests()
            .iter()
            .filter(|r| r.starts_with(&links) && !r.contains("watch=true"))
            .count()
    };
    let lists_before = lists(&api);

    api.cut_watches();
    api.apply(&prometheus("added", "srv"));
    until(&mut rx, "the link added while the watch was cut", |s| {
        names(s) == ["added", "metrics"]
    })
    .await;
    assert_eq!(
        lists(&api),
        lists_before,
        "a cut watch resumes without listing"
    );

    api.compact();
    api.cut_watches();
    api.delete::<McpLink>(NS, "metrics");
    until(&mut rx, "the deletion seen after 410 Gone", |s| {
        names(s) == ["added"]
    })
    .await;
    assert!(lists(&api) > lists_before, "an expired watch lists again");
    shutdown.cancel();
}

fn collection_path<K: ::kube::Resource<DynamicType = ()>>() -> String {
    K::url_path(&(), Some(NS))
}
