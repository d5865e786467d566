//! Time series (Prometheus and Loki metric results) rendered for a model to read, and as typed
//! data for programs.
//!
//! Text: labels shared by every series are printed once at the top, then each series with only
//! its own labels; a short series lists its values, a long one is summarised (points, min, max,
//! avg, last) with a downsampled tail — every k-th point counted back from the newest, so the
//! most recent value is always shown. Structured content carries every point of every series
//! that fits in the output cap, and says how many series it left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// Series with at most this many points list every value.
pub const LIST_ALL_POINTS: usize = 12;
/// Points in a long series' downsampled tail.
pub const TAIL_POINTS: usize = 12;

/// One series of a result: its labels and its `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(f64, f64)>,
}

/// A sample value as Prometheus writes it (`"1"`, `"NaN"`, `"+Inf"`).
pub fn parse_value(text: &str) -> f64 {
    text.parse().unwrap_or(f64::NAN)
}

/// A value for JSON: a number when finite, else Prometheus's text (`NaN`, `+Inf`, `-Inf`).
pub fn json_value(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("+Inf")
    } else {
        json!("-Inf")
    }
}

/// A value for text: integers as integers, others with four significant digits.
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let magnitude = v.abs();
    if !(1e-3..1e9).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A unix time as RFC 3339 (seconds precision unless it has a fraction).
pub fn fmt_time(unix: f64) -> String {
    Timestamp::from_millisecond((unix * 1000.0).round() as i64)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// A unix time as `HH:MM:SS` (UTC), for points inside a range whose date the header gives.
fn fmt_clock(unix: f64) -> String {
    let t = fmt_time(unix);
    t.split_once('T')
        .map(|(_, clock)| clock.trim_end_matches('Z').to_owned())
        .unwrap_or(t)
}

/// A list of label sets (Prometheus series, Loki streams) as text for a model: how many there
/// are (`noun`: "series", "streams") over `start`..`end`, the labels all share once, then each
/// set with its own labels. Cuts `found` to `max_rows` first and says so; returns the text and
/// how many there were before the cut.
pub fn label_sets_text(
    noun: &str,
    found: &mut Vec<Labels>,
    max_rows: usize,
    start: impl std::fmt::Display,
    end: impl std::fmt::Display,
) -> (String, usize) {
    let total = found.len();
    found.truncate(max_rows);
    let common = common_labels(found.iter());
    let mut text = format!("{total} {noun} from {start} to {end}");
    if total > found.len() {
        let _ = write!(
            text,
            " (the first {} shown: the link's row limit; narrow the selector)",
            found.len()
        );
    }
    text.push('\n');
    if !common.is_empty() {
        let _ = writeln!(text, "all share {}", fmt_labels(&common, &Labels::new()));
    }
    for labels in found.iter() {
        let _ = writeln!(text, "{}", fmt_labels(labels, &common));
    }
    (text, total)
}

/// The labels every one of `series` has with the same value (none for a single series: its
/// labels are shown on the series itself).
pub fn common_labels<'a>(series: impl IntoIterator<Item = &'a Labels>) -> Labels {
    let mut iter = series.into_iter();
    let Some(first) = iter.next() else {
        return Labels::new();
    };
    let mut common = first.clone();
    let mut count = 1;
    for labels in iter {
        common.retain(|k, v| labels.get(k) == Some(v));
        count += 1;
    }
    if count < 2 { Labels::new() } else { common }
}

/// `name{a="1", b="2"}` without the labels in `skip` (the metric name shown in front).
pub fn fmt_labels(labels: &Labels, skip: &Labels) -> String {
    let name = labels
        .get("__name__")
        .filter(|_| !skip.contains_key("__name__"))
        .cloned()
        .unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__" && !skip.contains_key(k.as_str()))
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if pairs.is_empty() && !name.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", pairs.join(", "))
    }
}

/// Statistics of a series' finite values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub points: usize,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub last: f64,
    #[serde(rename = "lastAt")]
    pub last_at: f64,
}

/// The summary of `points`, or None when none is finite.
pub fn summarize(points: &[(f64, f64)]) -> Option<Summary> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let (last_at, last) = *finite.last()?;
    let (min, max, sum) = finite.iter().fold(
        (f64::INFINITY, f64::NEG_INFINITY, 0.0),
        |(min, max, sum), (_, v)| (min.min(*v), max.max(*v), sum + v),
    );
    Some(Summary {
        points: points.len(),
        min,
        max,
        avg: sum / finite.len() as f64,
        last,
        last_at,
    })
}

/// Every k-th point counted back from the newest, at most `n`, oldest first.
pub fn tail(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n || n == 0 {
        return points.to_vec();
    }
    let every = points.len().div_ceil(n);
    let mut picked: Vec<(f64, f64)> = points.iter().rev().step_by(every).copied().collect();
    picked.truncate(n);
    picked.reverse();
    picked
}

/// The text of an instant vector: the shared labels once, then one line per series.
pub fn vector_text(samples: &[Series], shown: usize) -> String {
    let common = common_labels(samples.iter().map(|s| &s.labels));
    let mut out = String::new();
    if !common.is_empty() {
        let _ = writeln!(
            out,
            "all series share {}",
            fmt_labels(&common, &Labels::new())
        );
    }
    for s in samples.iter().take(shown) {
        let value = s
            .points
            .last()
            .map_or("(no value)".to_owned(), |(_, v)| fmt_value(*v));
        let _ = writeln!(out, "{} {value}", fmt_labels(&s.labels, &common));
    }
    out
}

/// The text of a range matrix: shared labels once, then each series listed or summarised.
pub fn matrix_text(series: &[Series], shown: usize) -> String {
    let common = common_labels(series.iter().map(|s| &s.labels));
    let mut out = String::new();
    if !common.is_empty() {
        let _ = writeln!(
            out,
            "all series share {}",
            fmt_labels(&common, &Labels::new())
        );
    }
    for (i, s) in series.iter().take(shown).enumerate() {
        let _ = write!(out, "[{}] {}", i + 1, fmt_labels(&s.labels, &common));
        let listed = |points: &[(f64, f64)]| {
            points
                .iter()
                .map(|(t, v)| format!("{} {}", fmt_clock(*t), fmt_value(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if s.points.len() <= LIST_ALL_POINTS {
            let _ = writeln!(out, ": {}", listed(&s.points));
            continue;
        }
        match summarize(&s.points) {
            Some(sum) => {
                let _ = writeln!(
                    out,
                    ": {} points, min {}, max {}, avg {}, last {} at {}",
                    sum.points,
                    fmt_value(sum.min),
                    fmt_value(sum.max),
                    fmt_value(sum.avg),
                    fmt_value(sum.last),
                    fmt_clock(sum.last_at)
                );
            }
            None => {
                let _ = writeln!(out, ": {} points, none finite", s.points.len());
            }
        }
        let _ = writeln!(out, "    tail: {}", listed(&tail(&s.points, TAIL_POINTS)));
    }
    out
}

/// The JSON of one series: labels, points as `[unix seconds, value]`, and for a range its
/// summary.
pub fn series_json(s: &Series, with_summary: bool) -> Value {
    let points: Vec<Value> = s
        .points
        .iter()
        .map(|(t, v)| json!([t, json_value(*v)]))
        .collect();
    let mut value = json!({"labels": s.labels, "points": points});
    if with_summary && let Some(sum) = summarize(&s.points) {
        value["summary"] = json!({
            "points": sum.points,
            "min": sum.min,
            "max": sum.max,
            "avg": sum.avg,
            "last": sum.last,
            "lastAt": sum.last_at,
        });
    }
    value
}

/// The series as JSON, as many as fit in `budget` bytes (always the first); returns them and
/// how many were left out.
pub fn fit_series(series: &[Series], with_summary: bool, budget: usize) -> (Vec<Value>, usize) {
    let mut used = 0;
    let mut out = Vec::new();
    for s in series {
        let value = series_json(s, with_summary);
        let size = value.to_string().len() + 1;
        if !out.is_empty() && used + size > budget {
            break;
        }
        used += size;
        out.push(value);
    }
    let left = series.len() - out.len();
    (out, left)
}
