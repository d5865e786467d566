//! Arbitrary bodies posted to `/mcp` of a real server: the whole HTTP stack of
//! `linkmcp-server` (host check, auth, JSON guard, scope check, rmcp's JSON-RPC handling, the
//! registry and the core tools, `find_tools` included), stateless and in process, over one
//! keep-alive connection. Whatever the body, the server answers with a client error or a
//! JSON-RPC answer, never a 5xx, never a dropped connection, and keeps answering.

#![no_main]

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use linkmcp_server::{Server, Settings, registry::Registry};
use tokio_util::sync::CancellationToken;

struct Target {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    connection: std::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

fn target() -> &'static Target {
    static TARGET: std::sync::OnceLock<Target> = std::sync::OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let addr = runtime.block_on(async {
            let settings = Settings {
                listen: "127.0.0.1:0".parse().expect("an address"),
                stateless: true,
                find_tools: true,
                ..Settings::default()
            };
            let server = Server::bind(&settings, Arc::new(Registry::new()), CancellationToken::new())
                .await
                .expect("the server binds");
            let addr = server.local_addr();
            tokio::spawn(server.run());
            addr
        });
        Target {
            runtime,
            addr,
            connection: std::sync::Mutex::new(None),
        }
    })
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("the server accepts");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 handshake");
    tokio::spawn(connection);
    sender
}

fuzz_target!(|data: &[u8]| {
    let target = target();
    let mut slot = target.connection.lock().unwrap_or_else(|e| e.into_inner());
    target.runtime.block_on(async {
        let mut sender = match slot.take() {
            // A connection the server closed after an earlier answer (413, 431) is replaced.
            Some(sender) if !sender.is_closed() => sender,
            _ => connect(target.addr).await,
        };
        sender.ready().await.expect("the connection is ready");
        let request = Request::post("/mcp")
            .header(header::HOST, target.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::new(Bytes::copy_from_slice(data)))
            .expect("a request");
        let response = sender
            .send_request(request)
            .await
            .expect("the server answers every request");
        let status = response.status();
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole answer arrives")
            .to_bytes();
        assert!(
            !status.is_server_error(),
            "HTTP {status} for {:?}: {}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&body)
        );
        if json && !body.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_else(|err| {
                panic!("a JSON answer that is not JSON ({err}): {}", String::from_utf8_lossy(&body))
            });
        }
        if status == StatusCode::OK || status == StatusCode::ACCEPTED || !sender.is_closed() {
            *slot = Some(sender);
        }
    });
});
