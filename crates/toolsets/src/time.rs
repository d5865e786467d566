//! Times and durations as people and models write them to metrics and log APIs, turned into
//! instants and spans: relative times (`now`, `now-1h`, `-30m`), RFC 3339
//! (`2024-05-01T12:00:00Z`) and unix seconds (`1714564800`, `1714564800.5`); durations in
//! Prometheus's notation (`90s`, `5m`, `1h30m`, `2d`, `1w`, `500ms`, or plain seconds).
//!
//! Resolution takes `now` as an argument, so one call resolves all its times against the same
//! instant and tests are exact. [`choose_step`] picks a range query's resolution so that a
//! range never has more points than a budget: a model asking for a week at 15 s would
//! otherwise pull 40,000 points a series.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Units of a duration, longest first, with their length.
const UNITS: [(&str, u64); 8] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("ms", 1),
    ("m", 60_000),
    ("s", 1_000),
    ("", 0),
];

/// Parses a duration: one or more `<integer><unit>` with units `ms s m h d w y` (`1h30m`), or
/// a plain number of seconds (`300`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a duration; write it like `30s`, `5m`, `1h30m`, `2d` or `1w` \
             (units ms, s, m, h, d, w, y)"
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds >= 0.0 {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(bad())
        };
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, length) = UNITS
            .iter()
            .find(|(unit, _)| !unit.is_empty() && rest.starts_with(unit))
            .ok_or_else(bad)?;
        // `m` must not swallow the `m` of `ms`: "ms" is listed first.
        rest = &rest[unit.len()..];
        millis = number
            .checked_mul(*length)
            .and_then(|n| millis.checked_add(n))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(millis))
}

/// `d` in the shortest Prometheus notation: `1h30m`, `15s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let mut millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, length) in [
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if millis >= length {
            out.push_str(&format!("{}{unit}", millis / length));
            millis %= length;
        }
    }
    out
}

/// Parses a point in time relative to `now`: `now`, `now-1h`, `now+5m`, `-30m` (ago),
/// an RFC 3339 timestamp, or unix seconds.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    let bad = |why: String| {
        format!(
            "`{text}` is not a time: {why}. Write `now`, `now-1h`, `-30m`, an RFC 3339 time \
             like `2024-05-01T12:00:00Z`, or unix seconds"
        )
    };
    let relative = if text == "now" {
        Some(("+", "0s"))
    } else if let Some(rest) = text.strip_prefix("now") {
        let rest = rest.trim_start();
        Some(rest.split_at(rest.len().min(1)))
    } else {
        // `-30m` is 30 minutes ago (and `-300` 300 seconds ago).
        text.strip_prefix('-').map(|rest| ("-", rest))
    };
    if let Some((sign, span)) = relative {
        let span = parse_duration(span.trim()).map_err(&bad)?;
        let span = SignedDuration::try_from(span).map_err(|e| bad(e.to_string()))?;
        let at = match sign {
            "+" => now.checked_add(span),
            "-" => now.checked_sub(span),
            other => return Err(bad(format!("`{other}` is neither + nor -"))),
        };
        return at.map_err(|e| bad(e.to_string()));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return Err(bad("not a finite number".to_owned()));
        }
        let nanos = (seconds * 1e9).round();
        return Timestamp::from_nanosecond(nanos as i128).map_err(|e| bad(e.to_string()));
    }
    text.parse::<Timestamp>().map_err(|e| bad(e.to_string()))
}

/// A resolved time range, `start` before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl TimeRange {
    /// The range from `start` (default `end - default_span`) to `end` (default `now`).
    /// `since` (a duration back from `end`) may stand in for `start`; giving both is refused.
    pub fn resolve(
        start: Option<&str>,
        end: Option<&str>,
        since: Option<&str>,
        default_span: Duration,
        now: Timestamp,
    ) -> Result<Self, String> {
        let end = match end.map(str::trim).filter(|s| !s.is_empty()) {
            Some(end) => parse_time(end, now).map_err(|e| format!("end: {e}"))?,
            None => now,
        };
        let start = match (
            start.map(str::trim).filter(|s| !s.is_empty()),
            since.map(str::trim).filter(|s| !s.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return Err("give either `start` or `since`, not both".to_owned());
            }
            (Some(start), None) => parse_time(start, now).map_err(|e| format!("start: {e}"))?,
            (None, since) => {
                let span = match since {
                    Some(since) => parse_duration(since).map_err(|e| format!("since: {e}"))?,
                    None => default_span,
                };
                SignedDuration::try_from(span)
                    .ok()
                    .and_then(|span| end.checked_sub(span).ok())
                    .ok_or_else(|| format!("`since` reaches before year -9999: {span:?}"))?
            }
        };
        if start >= end {
            return Err(format!(
                "the range is empty: start {start} is not before end {end}; write an earlier \
                 start (e.g. `now-1h`) or a later end"
            ));
        }
        Ok(Self { start, end })
    }

    /// The range's length.
    pub fn span(&self) -> Duration {
        let span = self.end.duration_since(self.start);
        Duration::try_from(span).unwrap_or_default()
    }
}

/// The step of a range query, and whether it was raised above what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub step: Duration,
    /// The step asked for, when the point budget forced a larger one.
    pub raised_from: Option<Duration>,
}

/// Steps a chosen resolution is rounded up to, so figures line up with scrape intervals.
const NICE_STEPS: [u64; 20] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800,
];

/// The resolution of a range query over `range`: `requested` when it keeps the range within
/// `max_points` points a series, else the smallest "nice" step (1s, 5s, 15s, 1m, 5m, 1h, ...)
/// that does. Without a request, the finest nice step within the budget.
pub fn choose_step(range: &TimeRange, requested: Option<Duration>, max_points: usize) -> Step {
    let max_points = max_points.max(2) as f64;
    let span = range.span().as_secs_f64();
    // n points cover n-1 steps.
    let minimum = span / (max_points - 1.0);
    match requested.filter(|r| !r.is_zero()) {
        Some(step) if step.as_secs_f64() >= minimum => Step {
            step,
            raised_from: None,
        },
        requested => {
            let step = NICE_STEPS
                .iter()
                .map(|s| *s as f64)
                .find(|s| *s >= minimum)
                .unwrap_or_else(|| minimum.ceil());
            Step {
                step: Duration::from_secs_f64(step),
                raised_from: requested,
            }
        }
    }
}

/// Unix seconds with up to millisecond precision, as Prometheus takes them (`1714564800.5`).
pub fn unix_seconds(ts: Timestamp) -> String {
    let millis = ts.as_millisecond();
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{:.3}", millis as f64 / 1000.0)
    }
}

/// Unix nanoseconds, as Loki takes them.
pub fn unix_nanos(ts: Timestamp) -> String {
    ts.as_nanosecond().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn durations_parse_in_prometheus_notation() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h30m"), Duration::from_secs(5_400));
        assert_eq!(d("2d"), Duration::from_secs(172_800));
        assert_eq!(d("1w"), Duration::from_secs(604_800));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1m30s500ms"), Duration::from_millis(90_500));
        assert_eq!(d("300"), Duration::from_secs(300));
        assert_eq!(d("0.25"), Duration::from_millis(250));
        for bad in ["", "m", "5x", "1.5h", "-5m", "5m3", "h1"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(15_250)), "15s250ms");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 8)), "1w1d");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn times_parse_relative_absolute_and_unix() {
        let t = |s| parse_time(s, now()).unwrap().to_string();
        assert_eq!(t("now"), "2024-05-01T12:00:00Z");
        assert_eq!(t("now-1h"), "2024-05-01T11:00:00Z");
        assert_eq!(t("now - 90m"), "2024-05-01T10:30:00Z");
        assert_eq!(t("now+5m"), "2024-05-01T12:05:00Z");
        assert_eq!(t("-30m"), "2024-05-01T11:30:00Z");
        assert_eq!(t("2024-04-30T08:15:00+02:00"), "2024-04-30T06:15:00Z");
        assert_eq!(t("1714564800"), "2024-05-01T12:00:00Z");
        assert_eq!(t("1714564800.5"), "2024-05-01T12:00:00.5Z");
        for bad in ["yesterday", "now*2", "now-5x", "2024-13-01T00:00:00Z", "-x"] {
            let err = parse_time(bad, now()).unwrap_err();
            assert!(err.contains("is not a time"), "{bad}: {err}");
        }
    }

    #[test]
    fn ranges_default_and_refuse_empty_spans() {
        let hour = Duration::from_secs(3_600);
        let r = TimeRange::resolve(None, None, None, hour, now()).unwrap();
        assert_eq!(r.start.to_string(), "2024-05-01T11:00:00Z");
        assert_eq!(r.end, now());
        let r = TimeRange::resolve(None, Some("now-1h"), Some("15m"), hour, now()).unwrap();
        assert_eq!(r.start.to_string(), "2024-05-01T10:45:00Z");
        assert_eq!(r.span(), Duration::from_secs(900));
        let err = TimeRange::resolve(Some("now"), Some("now-1h"), None, hour, now()).unwrap_err();
        assert!(err.contains("the range is empty"), "{err}");
        let err = TimeRange::resolve(Some("-1h"), None, Some("1h"), hour, now()).unwrap_err();
        assert!(err.contains("either `start` or `since`"), "{err}");
        let err = TimeRange::resolve(Some("soon"), None, None, hour, now()).unwrap_err();
        assert!(err.starts_with("start: `soon` is not a time"), "{err}");
    }

    #[test]
    fn the_step_keeps_a_range_within_the_point_budget() {
        let day = TimeRange::resolve(Some("now-1d"), None, None, Duration::ZERO, now()).unwrap();
        // A day at 15 s is 5,761 points; 11 points fit in 2.4 h steps, rounded to 3 h.
        let s = choose_step(&day, Some(Duration::from_secs(15)), 11);
        assert_eq!(s.step, Duration::from_secs(10_800));
        assert_eq!(s.raised_from, Some(Duration::from_secs(15)));
        // Within budget: the request stands.
        let s = choose_step(&day, Some(Duration::from_secs(3_600)), 100);
        assert_eq!(
            s,
            Step {
                step: Duration::from_secs(3_600),
                raised_from: None
            }
        );
        // No request: the finest nice step within 250 points (86400/249 = 347 s -> 10m).
        let s = choose_step(&day, None, 250);
        assert_eq!(
            s,
            Step {
                step: Duration::from_secs(600),
                raised_from: None
            }
        );
        let points = day.span().as_secs() / s.step.as_secs() + 1;
        assert!(points <= 250, "{points}");
    }

    #[test]
    fn instants_format_for_the_apis() {
        assert_eq!(unix_seconds(now()), "1714564800");
        let half: Timestamp = "2024-05-01T12:00:00.5Z".parse().unwrap();
        assert_eq!(unix_seconds(half), "1714564800.500");
        assert_eq!(unix_nanos(now()), "1714564800000000000");
    }
}
