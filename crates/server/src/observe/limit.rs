//! The per-tool rate limit: at most N calls per minute to each tool, all clients together.
//!
//! A backend behind a link is usually shared with other applications; a model stuck in a loop
//! must not hammer it. Each tool name has its own token bucket (GCRA, from the `governor`
//! crate) holding N calls and refilling at N per minute, so a burst of N passes and a steady
//! rate of N per minute never waits. A refused call gets an `isError` result that says the
//! limit and when to try again, which a model can act on.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::HashMapStateStore,
};
use linkmcp_toolsets::output;
use rmcp::model::CallToolResult;

/// Token buckets by tool name, all with the same rate.
pub struct ToolRateLimit<C: Clock = DefaultClock> {
    per_minute: NonZeroU32,
    buckets: RateLimiter<String, HashMapStateStore<String>, C, NoOpMiddleware<C::Instant>>,
}

impl ToolRateLimit {
    /// At most `per_minute` calls per minute to each tool.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock> ToolRateLimit<C> {
    /// The same limit measured on `clock` (tests advance a fake one).
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        Self {
            per_minute,
            buckets: RateLimiter::hashmap_with_clock(Quota::per_minute(per_minute), clock),
        }
    }

    /// The calls allowed per minute and tool.
    pub fn calls_per_minute(&self) -> NonZeroU32 {
        self.per_minute
    }

    /// Takes one call from `tool`'s bucket, or says how long until one is available.
    pub fn check(&self, tool: &str) -> Result<(), Duration> {
        self.buckets
            .check_key(&tool.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.buckets.clock().now()))
    }

    /// The result a refused call gets.
    pub fn refusal(&self, tool: &str, retry_after: Duration) -> CallToolResult {
        // Whole seconds, rounded up: "0 seconds" would invite an immediate retry.
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let unit = if seconds == 1 { "second" } else { "seconds" };
        output::error(format!(
            "rate limit reached: tool `{tool}` may be called at most {} times per minute on this \
             server; try again in {seconds} {unit}",
            self.per_minute
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(per_minute: u32) -> (ToolRateLimit<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limit = ToolRateLimit::with_clock(NonZeroU32::new(per_minute).unwrap(), clock.clone());
        (limit, clock)
    }

    #[test]
    fn the_n_plus_first_call_in_a_minute_is_refused() {
        let (limit, _clock) = limit(3);
        for call in 1..=3 {
            assert_eq!(limit.check("pg_query"), Ok(()), "call {call}");
        }
        let wait = limit.check("pg_query").unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "one call refills every 20 s: {wait:?}"
        );
    }

    #[test]
    fn each_tool_has_its_own_bucket() {
        let (limit, _clock) = limit(1);
        assert_eq!(limit.check("a"), Ok(()));
        assert!(limit.check("a").is_err());
        assert_eq!(limit.check("b"), Ok(()));
    }

    #[test]
    fn the_bucket_refills_over_time() {
        let (limit, clock) = limit(2);
        assert!(limit.check("t").is_ok() && limit.check("t").is_ok());
        assert!(limit.check("t").is_err());
        clock.advance(Duration::from_secs(29));
        assert!(limit.check("t").is_err(), "half a minute refills one call");
        clock.advance(Duration::from_secs(1));
        assert_eq!(limit.check("t"), Ok(()));
        assert!(limit.check("t").is_err());
        clock.advance(Duration::from_secs(60));
        assert!(limit.check("t").is_ok() && limit.check("t").is_ok());
    }

    #[test]
    fn the_refusal_says_the_limit_and_when_to_retry() {
        let (limit, _clock) = limit(30);
        let refused = limit.refusal("pg_query", Duration::from_millis(1500));
        assert_eq!(refused.is_error, Some(true));
        assert_eq!(
            refused.content[0].as_text().unwrap().text,
            "rate limit reached: tool `pg_query` may be called at most 30 times per minute on \
             this server; try again in 2 seconds"
        );
        let soon = limit.refusal("pg_query", Duration::from_millis(10));
        assert!(
            soon.content[0]
                .as_text()
                .unwrap()
                .text
                .ends_with("try again in 1 second")
        );
    }
}
