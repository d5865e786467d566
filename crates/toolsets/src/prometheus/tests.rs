//! Unit tests of the Prometheus toolset's pure parts: rendering, the caret under a PromQL
//! error, the chart. Behaviour against a real Prometheus is tested in `tests/prometheus.rs`.

#![allow(clippy::unwrap_used)]

use super::api::with_caret;
use crate::series::*;

fn series(labels: &[(&str, &str)], values: &[f64]) -> Series {
    Series {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| (1_700_000_000.0 + 15.0 * i as f64, *v))
            .collect(),
    }
}

#[test]
fn values_read_and_print_like_prometheus() {
    assert_eq!(parse_value("+Inf"), f64::INFINITY);
    assert!(parse_value("NaN").is_nan());
    assert_eq!(fmt_value(3.0), "3");
    assert_eq!(fmt_value(0.123456), "0.1235");
    assert_eq!(fmt_value(1234.5678), "1235");
    assert_eq!(fmt_value(2.5e-7), "2.500e-7");
    assert_eq!(json_value(f64::NEG_INFINITY), serde_json::json!("-Inf"));
}

#[test]
fn shared_labels_are_shown_once() {
    let a = series(
        &[("__name__", "up"), ("job", "api"), ("instance", "a")],
        &[1.0],
    );
    let b = series(
        &[("__name__", "up"), ("job", "api"), ("instance", "b")],
        &[0.0],
    );
    let text = vector_text(&[a.clone(), b], 10);
    assert_eq!(
        text,
        "all series share up{job=\"api\"}\n{instance=\"a\"} 1\n{instance=\"b\"} 0\n"
    );
    // One series shows all its labels on itself.
    assert_eq!(vector_text(&[a], 10), "up{instance=\"a\", job=\"api\"} 1\n");
}

#[test]
fn long_series_are_summarised_with_a_tail_ending_at_the_newest_point() {
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let s = series(&[("job", "api")], &values);
    let text = matrix_text(std::slice::from_ref(&s), 10);
    assert!(
        text.contains("100 points, min 0, max 99, avg 49.5, last 99"),
        "{text}"
    );
    let t = tail(&s.points, TAIL_POINTS);
    assert_eq!(t.len(), TAIL_POINTS);
    assert_eq!(t.last().unwrap().1, 99.0);
    assert_eq!(
        t[t.len() - 2].1,
        90.0,
        "every 9th point back from the newest"
    );
    let short = series(&[("job", "api")], &[1.0, 2.0]);
    let text = matrix_text(&[short], 10);
    assert!(text.contains(": 22:13:20 1, 22:13:35 2"), "{text}");
}

#[test]
fn series_fit_the_byte_budget() {
    let many: Vec<Series> = (0..50)
        .map(|i| series(&[("i", &i.to_string())], &[1.0; 30]))
        .collect();
    let (kept, left) = fit_series(&many, true, 4_000);
    assert!(!kept.is_empty() && left > 0);
    assert_eq!(kept.len() + left, 50);
    let size: usize = kept.iter().map(|v| v.to_string().len() + 1).sum();
    assert!(size <= 4_000, "{size}");
}

#[test]
fn the_caret_points_where_prometheus_says() {
    let message = "invalid parameter \"query\": 1:5: parse error: unexpected <EOF>";
    assert_eq!(
        with_caret(message, "rate("),
        format!("{message}\n  rate(\n      ^")
    );
    assert_eq!(with_caret("no position here", "up"), "no position here");
}

#[test]
fn the_chart_is_a_png_with_gaps_and_a_legend() {
    let mut gappy = series(&[("job", "a")], &[1.0, 2.0, f64::NAN, 4.0]);
    gappy.points.push((1_700_001_000.0, 5.0));
    let flat = series(&[("job", "b")], &[3.0, 3.0]);
    let png =
        super::chart::render(&[gappy, flat], "up", 1_700_000_000.0, 1_700_001_000.0, 15.0).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The IHDR chunk: 960 wide; the height grows with the legend's two rows.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 960);
    assert_eq!(
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
        32 + 360 + 28 + 28 + 8
    );
}
