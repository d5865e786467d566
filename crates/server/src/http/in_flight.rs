//! Counting MCP requests whose response is not fully sent yet, so that shutdown can let them
//! finish.
//!
//! On SIGTERM the server stops taking connections and waits until [`InFlight::idle`] (bounded
//! by the drain timeout) before it closes the MCP sessions; closing them earlier would cut off
//! a tool call, or its response still on its way to the client. A request counts until the
//! last byte of its response body is handed to the connection, not merely until the handler
//! returns.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// The number of requests in progress, with a way to wait until there are none.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts one request as in progress until dropped.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    /// Counts a request as in progress until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    /// The number of requests in progress now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Resolves once no request is in progress.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            // Register before checking, so a guard dropped in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that keeps its request counted until it is finished or dropped.
pub struct TrackedBody {
    inner: Body,
    _guard: InFlightGuard,
}

impl TrackedBody {
    /// Wraps `inner`, holding `guard` for as long as the body lives.
    pub fn new(inner: Body, guard: InFlightGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;

    use super::*;

    #[tokio::test]
    async fn idle_waits_for_the_last_guard() {
        let in_flight = Arc::new(InFlight::default());
        tokio::time::timeout(Duration::from_secs(1), in_flight.idle())
            .await
            .expect("idle at once when nothing runs");

        let a = in_flight.enter();
        let b = in_flight.enter();
        assert_eq!(in_flight.count(), 2);
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "two requests still run");
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one request still runs");
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("idle after the last guard drops")
            .expect("waiter task");
    }

    #[tokio::test]
    async fn a_tracked_body_counts_until_consumed() {
        let in_flight = Arc::new(InFlight::default());
        let body = TrackedBody::new(Body::from("hello"), in_flight.enter());
        assert_eq!(body.size_hint().exact(), Some(5), "the length is kept");
        assert_eq!(in_flight.count(), 1);
        let bytes = to_bytes(Body::new(body), 1024).await.expect("body reads");
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(in_flight.count(), 0);
    }
}
