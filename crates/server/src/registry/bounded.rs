//! Running a toolset's future so that it cannot hang or take the server down: a time limit,
//! and a panic (while building the future or polling it) caught and logged.
//!
//! Tool calls, resource reads and prompt requests all go through [`bounded`]; each turns the
//! two ways of being stopped into its own kind of answer (an `isError` result, a JSON-RPC
//! error).

use std::{any::Any, panic::AssertUnwindSafe, time::Duration};

use futures::{FutureExt, future::BoxFuture};

/// Why a toolset's future gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It did not finish within the limit and was dropped.
    TimedOut(Duration),
    /// It panicked; the details were logged, not returned.
    Panicked,
}

/// Runs the future `start` builds, bounded by `timeout`. `what` names it in the log
/// (`tool pg_query`, `resource pg://...`).
pub async fn bounded<'a, T>(
    what: &str,
    timeout: Duration,
    start: impl FnOnce() -> BoxFuture<'a, T>,
) -> Result<T, Stopped> {
    // Building the future may panic as well as polling it.
    let future = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(future) => future,
        Err(panic) => return Err(panicked(what, panic.as_ref())),
    };
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(panicked(what, panic.as_ref())),
        Err(_elapsed) => Err(Stopped::TimedOut(timeout)),
    }
}

fn panicked(what: &str, panic: &(dyn Any + Send)) -> Stopped {
    let detail = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload");
    tracing::error!(what, panic = detail, "toolset panicked");
    Stopped::Panicked
}
