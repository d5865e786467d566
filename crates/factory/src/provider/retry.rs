//! Sending a model request with bounded retries.
//!
//! Rate limits (429), server errors (5xx, 408), timeouts and refused connections are passing
//! conditions at a model provider: they are retried with exponential backoff and jitter, waiting
//! what `Retry-After` (or `retry-after-ms`) asks when the provider says, up to a bound. Other
//! answers are final at once: a wrong key or a bad request does not get better by asking again.

use std::{
    hash::{BuildHasher, Hasher},
    time::Duration,
};

use reqwest::{RequestBuilder, StatusCode, header::HeaderMap};
use serde_json::Value;

use super::ProviderError;

/// How a model request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles for each further one.
    pub initial_backoff: Duration,
    /// The longest computed wait between attempts.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a provider asking for more ends the retries at once
    /// (the task's own retry, minutes later, is the better place to wait).
    pub max_retry_after: Duration,
    /// How long one attempt may take, response body included.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            request_timeout: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 for the first), without a `Retry-After`:
    /// exponential, capped, with "equal jitter" (half fixed, half random) so that many runs
    /// failing together do not retry together.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        let base = self
            .initial_backoff
            .saturating_mul(exp)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// What the retry loop needs to know of the provider.
pub(crate) struct Target<'a> {
    /// The provider's name for messages.
    pub provider: &'static str,
    /// The URL requests go to, for messages.
    pub endpoint: &'a str,
    /// Extracts the provider's error message from an error body.
    pub error_message: fn(&Value) -> Option<String>,
    /// Removes the API key from any text the provider sent back.
    pub scrub: &'a (dyn Fn(&str) -> String + Sync),
}

/// What one attempt came to.
enum Attempt {
    Done(Value),
    Final(ProviderError),
    Retry {
        error: ProviderError,
        wait: Option<Duration>,
    },
}

/// Sends the request `build` makes until it succeeds, fails for good, or the attempts run out.
pub(crate) async fn send(
    policy: &RetryPolicy,
    target: &Target<'_>,
    build: impl Fn() -> RequestBuilder,
) -> Result<Value, ProviderError> {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let outcome = match build().timeout(policy.request_timeout).send().await {
            Ok(response) => read_response(response, policy, target, attempt).await,
            Err(err) => transport_error(&err, policy, target, attempt),
        };
        match outcome {
            Attempt::Done(value) => return Ok(value),
            Attempt::Final(error) => return Err(error),
            Attempt::Retry { error, .. } if attempt >= max_attempts => return Err(error),
            Attempt::Retry { error, wait } => {
                let wait = match wait {
                    Some(asked) if asked > policy.max_retry_after => return Err(error),
                    Some(asked) => asked,
                    None => policy.backoff(attempt),
                };
                tracing::warn!(
                    provider = target.provider,
                    attempt,
                    max_attempts,
                    wait_ms = wait.as_millis() as u64,
                    error = %error,
                    "model request failed; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

async fn read_response(
    response: reqwest::Response,
    policy: &RetryPolicy,
    target: &Target<'_>,
    attempt: u32,
) -> Attempt {
    let status = response.status();
    let wait = retry_after(response.headers());
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return transport_error(&err, policy, target, attempt),
    };
    if status.is_success() {
        return match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Attempt::Done(value),
            Err(err) => Attempt::Final(ProviderError::InvalidResponse {
                provider: target.provider,
                detail: format!("not JSON ({err}): {}", excerpt(target, &body)),
            }),
        };
    }
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| (target.error_message)(&v))
        .map(|m| (target.scrub)(&m))
        .unwrap_or_else(|| excerpt(target, &body));
    let provider = target.provider;
    let code = status.as_u16();
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let message = match wait {
                Some(asked) if asked > policy.max_retry_after => format!(
                    "{message} (the API asked to wait {}s, longer than the {}s a run waits)",
                    asked.as_secs(),
                    policy.max_retry_after.as_secs()
                ),
                _ => message,
            };
            Attempt::Retry {
                error: ProviderError::RateLimited {
                    provider,
                    attempts: attempt,
                    message,
                },
                wait,
            }
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Attempt::Final(ProviderError::Unauthorized {
                provider,
                status: code,
                message,
            })
        }
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Attempt::Retry {
            error: ProviderError::Unavailable {
                provider,
                status: code,
                attempts: attempt,
                message,
            },
            wait,
        },
        _ => Attempt::Final(ProviderError::Rejected {
            provider,
            status: code,
            message,
        }),
    }
}

fn transport_error(
    err: &reqwest::Error,
    policy: &RetryPolicy,
    target: &Target<'_>,
    attempt: u32,
) -> Attempt {
    let error = if err.is_timeout() {
        ProviderError::Timeout {
            provider: target.provider,
            timeout: policy.request_timeout,
            attempts: attempt,
            endpoint: target.endpoint.to_owned(),
        }
    } else {
        let mut detail = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        ProviderError::Unreachable {
            provider: target.provider,
            endpoint: target.endpoint.to_owned(),
            attempts: attempt,
            detail: (target.scrub)(&detail),
        }
    };
    Attempt::Retry { error, wait: None }
}

/// The first 300 characters of a body, scrubbed, for an error message.
fn excerpt(target: &Target<'_>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let cut: String = text.chars().take(300).collect();
    (target.scrub)(&cut)
}

/// The wait a response asks for: `retry-after-ms` (milliseconds), or `Retry-After` as seconds
/// or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// A random number in [0, 1) from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        for _ in 0..20 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let second = policy.backoff(2);
            assert!(second >= Duration::from_secs(2) && second <= Duration::from_secs(4));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_secs(5) && late <= Duration::from_secs(10));
        }
        let spread: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| policy.backoff(3)).collect();
        assert!(spread.len() > 1, "jitter varies the wait");
    }

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));

        let mut headers = HeaderMap::new();
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30);
        let date = jiff::fmt::rfc2822::to_string(&soon.to_zoned(jiff::tz::TimeZone::UTC))
            .unwrap_or_else(|e| panic!("{e}"));
        headers.insert(
            "retry-after",
            HeaderValue::from_str(&date).unwrap_or_else(|e| panic!("{e}")),
        );
        let wait = retry_after(&headers).unwrap_or_default();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );

        headers.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means now"
        );
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
