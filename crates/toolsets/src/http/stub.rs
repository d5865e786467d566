//! An in-process HTTP server for tests of HTTP toolsets: an axum router answering recorded
//! responses of a backend's documented API, on a free loopback port.

use axum::Router;

/// Serves `router` on 127.0.0.1 (a free port) until the test's runtime ends; returns the base
/// URL, e.g. `http://127.0.0.1:40123`.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

/// A port on which nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}
