//! The soak: many MCP sessions held open at once for a long time, with `tools/call ping`
//! flowing through all of them, and the server's RSS sampled as it goes. A leak shows as a
//! rising curve, a session the server lost (expired, evicted, refused) as an error.
//!
//! Sessions are not tied to connections (a session is its `Mcp-Session-Id`, whatever
//! connection carries it, as behind any proxy), so a few keep-alive connections carry calls for
//! all sessions in turn: each connection owns a slice of the sessions and calls them round
//! robin. Every session is therefore called about every `sessions / calls per second` seconds,
//! well within the server's idle expiry. At the end every session is closed with DELETE and the
//! RSS read again, to see what closing gives back.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};
use hdrhistogram::Histogram;
use hyper::header::HeaderValue;

use crate::{
    load::{Connection, check_ping, new_histogram, ping_body},
    server::rss_kib,
};

/// What to hold and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    /// MCP sessions opened before the calls start and held until the end.
    pub sessions: usize,
    /// Keep-alive connections carrying the calls (and the handshakes).
    pub connections: usize,
    /// How long the calls flow once every session is open.
    pub duration: Duration,
    /// How often the RSS is sampled for the curve.
    pub sample_every: Duration,
}

/// One point of the curve.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the calls started.
    pub at: Duration,
    pub rss_kib: u64,
    /// Calls per second since the previous sample.
    pub calls_per_second: f64,
    /// Failed calls since the previous sample.
    pub errors: u64,
}

/// What the soak saw.
pub struct SoakResult {
    /// The RSS before any session was opened.
    pub rss_before_kib: u64,
    /// How long opening every session took.
    pub opened_in: Duration,
    /// The RSS with every session open, before the calls started.
    pub rss_opened_kib: u64,
    pub curve: Vec<Sample>,
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Histogram<u64>,
    /// Sessions the DELETE at the end did not close (anything but 200/202/204).
    pub close_failures: u64,
    /// The RSS after every session was closed.
    pub rss_closed_kib: u64,
}

impl SoakResult {
    /// Growth of the RSS over the second half of the curve, in percent. The first half is the
    /// warm-up: every session's first calls, and what the server keeps of answered calls for a
    /// while (streams a client may resume) fill up to a level; growth after that is what the
    /// calls leave behind for good.
    pub fn growth_percent(&self) -> f64 {
        let half = self.curve.last().map_or(Duration::ZERO, |last| last.at / 2);
        let from = self.curve.iter().find(|s| s.at >= half);
        match (from, self.curve.last()) {
            (Some(first), Some(last)) if first.rss_kib > 0 => {
                (last.rss_kib as f64 / first.rss_kib as f64 - 1.0) * 100.0
            }
            _ => 0.0,
        }
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Counters the callers share with the sampler.
#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
}

/// Runs the soak against the server at `addr` (process `pid`), printing each sample as it is
/// taken so a long run can be followed.
pub async fn run(addr: SocketAddr, pid: u32, soak: Soak) -> anyhow::Result<SoakResult> {
    let rss_before_kib = rss_kib(pid)?;
    let started = Instant::now();
    let mut openers = Vec::with_capacity(soak.connections);
    for slice in slices(soak.sessions, soak.connections) {
        openers.push(tokio::spawn(async move {
            let mut connection = Connection::open(addr).await?;
            let mut sessions = Vec::with_capacity(slice);
            for _ in 0..slice {
                sessions.push(connection.open_session().await?);
            }
            anyhow::Ok((connection, sessions))
        }));
    }
    let mut opened = Vec::with_capacity(soak.connections);
    for opener in openers {
        opened.push(
            opener
                .await
                .context("a session opener failed")?
                .context("opening the sessions")?,
        );
    }
    let opened_in = started.elapsed();
    let rss_opened_kib = rss_kib(pid)?;
    println!(
        "soak: {} sessions open in {:.1} s over {} connections; RSS {:.1} MiB before, {:.1} MiB \
         with them open",
        soak.sessions,
        opened_in.as_secs_f64(),
        soak.connections,
        mib(rss_before_kib),
        mib(rss_opened_kib)
    );
    println!(
        "{:>8} {:>9} {:>10} {:>7}",
        "elapsed", "RSS MiB", "calls/s", "errors"
    );

    let counters = Arc::new(Counters::default());
    let until = Instant::now() + soak.duration;
    let mut callers = Vec::with_capacity(opened.len());
    for (connection, sessions) in opened {
        callers.push(tokio::spawn(call_round_robin(
            connection,
            sessions,
            until,
            counters.clone(),
        )));
    }
    let curve = sample_curve(pid, soak, until, &counters).await?;

    let mut result = SoakResult {
        rss_before_kib,
        opened_in,
        rss_opened_kib,
        curve,
        calls: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
        close_failures: 0,
        rss_closed_kib: 0,
    };
    let mut closers = Vec::with_capacity(callers.len());
    for caller in callers {
        let (connection, sessions, stats) = caller.await.context("a caller failed")?;
        result.calls += stats.calls;
        result.errors += stats.errors;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
        result
            .latency
            .add(&stats.latency)
            .map_err(|err| anyhow!("merging latencies: {err}"))?;
        closers.push(tokio::spawn(close_all(connection, sessions)));
    }
    for closer in closers {
        result.close_failures += closer.await.context("a closer failed")?;
    }
    // Let the allocator hand back what the closed sessions held before reading the RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    result.rss_closed_kib = rss_kib(pid)?;
    Ok(result)
}

/// `total` split into `parts` slices as even as they can be (no empty slice when `parts`
/// exceeds `total`).
fn slices(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, total.max(1));
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// Samples the RSS and the counters every `sample_every` until `until`.
async fn sample_curve(
    pid: u32,
    soak: Soak,
    until: Instant,
    counters: &Counters,
) -> anyhow::Result<Vec<Sample>> {
    let start = Instant::now();
    let mut curve = Vec::new();
    let (mut last_at, mut last_calls, mut last_errors) = (start, 0, 0);
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        tokio::time::sleep(soak.sample_every.min(until - now)).await;
        let now = Instant::now();
        let calls = counters.calls.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let sample = Sample {
            at: now - start,
            rss_kib: rss_kib(pid)?,
            calls_per_second: (calls - last_calls) as f64 / (now - last_at).as_secs_f64().max(1e-9),
            errors: errors - last_errors,
        };
        println!(
            "{:>7.0}s {:>9.1} {:>10.0} {:>7}",
            sample.at.as_secs_f64(),
            mib(sample.rss_kib),
            sample.calls_per_second,
            sample.errors
        );
        curve.push(sample);
        (last_at, last_calls, last_errors) = (now, calls, errors);
    }
    Ok(curve)
}

/// What one caller counted.
struct CallerStats {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

/// Calls `ping` on each of `sessions` in turn over `connection` until `until`.
async fn call_round_robin(
    mut connection: Connection,
    sessions: Vec<HeaderValue>,
    until: Instant,
    counters: Arc<Counters>,
) -> (Connection, Vec<HeaderValue>, CallerStats) {
    let mut stats = CallerStats {
        calls: 0,
        errors: 0,
        first_error: None,
        latency: new_histogram(),
    };
    let mut id: u64 = 1;
    'calls: loop {
        for session in &sessions {
            let started = Instant::now();
            if started >= until {
                break 'calls;
            }
            id += 1;
            let outcome = connection
                .post(ping_body(id), Some(session))
                .await
                .and_then(|(status, _, body)| check_ping(status, &body));
            match outcome {
                Ok(()) => {
                    stats.calls += 1;
                    counters.calls.fetch_add(1, Ordering::Relaxed);
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    stats.latency.saturating_record(micros.max(1));
                }
                Err(err) => {
                    stats.errors += 1;
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    stats.first_error.get_or_insert_with(|| format!("{err:#}"));
                    if connection.is_closed() {
                        match Connection::open(connection.addr()).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
        }
    }
    (connection, sessions, stats)
}

/// Closes every session with DELETE; returns how many the server did not close.
async fn close_all(mut connection: Connection, sessions: Vec<HeaderValue>) -> u64 {
    let mut failures = 0;
    for session in &sessions {
        match connection.delete(session).await {
            Ok(status) if status.is_success() => {}
            _ => failures += 1,
        }
    }
    failures
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_shared_out_evenly() {
        assert_eq!(slices(10, 3), [4, 3, 3]);
        assert_eq!(slices(10_000, 64).iter().sum::<usize>(), 10_000);
        assert_eq!(slices(2, 8), [1, 1]);
        assert_eq!(slices(0, 4), [0]);
    }

    #[test]
    fn growth_is_measured_over_the_second_half() {
        let sample = |at, rss_kib| Sample {
            at: Duration::from_secs(at),
            rss_kib,
            calls_per_second: 0.0,
            errors: 0,
        };
        let result = SoakResult {
            rss_before_kib: 0,
            opened_in: Duration::ZERO,
            rss_opened_kib: 0,
            curve: vec![
                sample(10, 500),
                sample(20, 1000),
                sample(30, 1200),
                sample(40, 1100),
            ],
            calls: 0,
            errors: 0,
            first_error: None,
            latency: new_histogram(),
            close_failures: 0,
            rss_closed_kib: 0,
        };
        assert!((result.growth_percent() - 10.0).abs() < 1e-9);
    }
}
