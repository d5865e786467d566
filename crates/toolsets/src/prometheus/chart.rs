//! A range query's series drawn as a PNG line chart, for people in desktop clients who would
//! rather look than read: the series (at most [`MAX_CHART_SERIES`]) as coloured lines over
//! the query's time range, horizontal grid lines labelled with values, the range's start,
//! middle and end times, and a legend of the series' labels.
//!
//! tiny-skia draws (anti-aliased paths, PNG encoding, no system libraries); labels use
//! font8x8's 8x8 bitmap glyphs, so no font file is shipped or loaded. Gaps in a series (no
//! sample for more than 1.5 steps, or a NaN) break its line rather than bridging the gap.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use tiny_skia::{Color, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use crate::series::{Labels, Series, fmt_labels, fmt_time, fmt_value};

/// Series drawn; the rest are left out (the text result says so).
pub const MAX_CHART_SERIES: usize = 8;

const WIDTH: u32 = 960;
const PLOT_HEIGHT: u32 = 360;
const LEFT: f32 = 88.0;
const RIGHT: f32 = 24.0;
const TOP: f32 = 32.0;
const AXIS_BAND: f32 = 28.0;
const LEGEND_ROW: f32 = 14.0;
const GRID_LINES: usize = 5;

/// Colour-blind-friendly line colours (Okabe-Ito, with a grey and a dark blue).
const PALETTE: [(u8, u8, u8); MAX_CHART_SERIES] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (120, 120, 120),
    (40, 40, 120),
];

/// The PNG of `series` over `[start, end]` (unix seconds) at `step` seconds, titled `title`.
pub fn render(
    series: &[Series],
    title: &str,
    start: f64,
    end: f64,
    step: f64,
) -> Result<Vec<u8>, String> {
    let drawn = &series[..series.len().min(MAX_CHART_SERIES)];
    let height = TOP + PLOT_HEIGHT as f32 + AXIS_BAND + LEGEND_ROW * drawn.len() as f32 + 8.0;
    let mut pixmap = Pixmap::new(WIDTH, height.ceil() as u32).ok_or("the chart has no size")?;
    pixmap.fill(Color::WHITE);

    let plot = Rect::from_xywh(LEFT, TOP, WIDTH as f32 - LEFT - RIGHT, PLOT_HEIGHT as f32)
        .ok_or("the plot area has no size")?;
    let (low, high) = value_range(drawn);
    let x_of = |t: f64| plot.left() + ((t - start) / (end - start).max(1e-9)) as f32 * plot.width();
    let y_of = |v: f64| plot.bottom() - ((v - low) / (high - low)) as f32 * plot.height();

    text(&mut pixmap, &clip(title, 110), LEFT, 10.0, (0, 0, 0));
    for i in 0..=GRID_LINES {
        let v = low + (high - low) * i as f64 / GRID_LINES as f64;
        let y = y_of(v);
        line(
            &mut pixmap,
            (plot.left(), y),
            (plot.right(), y),
            (225, 225, 225),
            1.0,
        );
        let label = clip(&fmt_value(v), 10);
        let x = plot.left() - 6.0 - 8.0 * label.chars().count() as f32;
        text(&mut pixmap, &label, x, y - 4.0, (60, 60, 60));
    }
    let frame = (120, 120, 120);
    line(
        &mut pixmap,
        (plot.left(), plot.top()),
        (plot.left(), plot.bottom()),
        frame,
        1.0,
    );
    line(
        &mut pixmap,
        (plot.left(), plot.bottom()),
        (plot.right(), plot.bottom()),
        frame,
        1.0,
    );
    for (i, t) in [start, (start + end) / 2.0, end].into_iter().enumerate() {
        // `2024-05-01 12:00Z` from RFC 3339.
        let label = fmt_time(t).replace('T', " ");
        let label = format!("{}Z", label.get(..16).unwrap_or(&label));
        let width = 8.0 * label.len() as f32;
        let x = match i {
            0 => plot.left(),
            1 => x_of(t) - width / 2.0,
            _ => plot.right() - width,
        };
        text(&mut pixmap, &label, x, plot.bottom() + 8.0, (60, 60, 60));
    }

    let common = crate::series::common_labels(drawn.iter().map(|s| &s.labels));
    for (i, s) in drawn.iter().enumerate() {
        let colour = PALETTE[i];
        let mut path = PathBuilder::new();
        let mut previous: Option<f64> = None;
        for (t, v) in &s.points {
            if !v.is_finite() {
                previous = None;
                continue;
            }
            let point = (x_of(*t), y_of(*v));
            match previous {
                Some(p) if t - p <= step * 1.5 => path.line_to(point.0, point.1),
                _ => {
                    path.move_to(point.0, point.1);
                    // A lone point still shows: a dot-sized segment.
                    path.line_to(point.0 + 0.5, point.1);
                }
            }
            previous = Some(*t);
        }
        if let Some(path) = path.finish() {
            let stroke = Stroke {
                width: 1.6,
                ..Stroke::default()
            };
            pixmap.stroke_path(&path, &paint(colour), &stroke, Transform::identity(), None);
        }
        let y = TOP + PLOT_HEIGHT as f32 + AXIS_BAND + LEGEND_ROW * i as f32;
        if let Some(swatch) = Rect::from_xywh(LEFT, y, 16.0, 8.0) {
            pixmap.fill_rect(swatch, &paint(colour), Transform::identity(), None);
        }
        let label = legend_label(&s.labels, &common);
        text(
            &mut pixmap,
            &clip(&label, 100),
            LEFT + 24.0,
            y,
            (30, 30, 30),
        );
    }
    pixmap
        .encode_png()
        .map_err(|e| format!("the chart could not be encoded: {e}"))
}

/// The value axis: the finite values' span, widened when flat so a constant still shows.
fn value_range(series: &[Series]) -> (f64, f64) {
    let (low, high) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if high - low < f64::EPSILON * high.abs().max(1.0) {
        let pad = (low.abs() * 0.1).max(1.0);
        return (low - pad, high + pad);
    }
    let pad = (high - low) * 0.05;
    (low - pad, high + pad)
}

fn legend_label(labels: &Labels, common: &Labels) -> String {
    let label = fmt_labels(labels, common);
    if label == "{}" {
        fmt_labels(labels, &Labels::new())
    } else {
        label
    }
}

fn paint((r, g, b): (u8, u8, u8)) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(r, g, b, 255);
    paint.anti_alias = true;
    paint
}

fn line(pixmap: &mut Pixmap, from: (f32, f32), to: (f32, f32), colour: (u8, u8, u8), width: f32) {
    let mut path = PathBuilder::new();
    path.move_to(from.0, from.1);
    path.line_to(to.0, to.1);
    if let Some(path) = path.finish() {
        let stroke = Stroke {
            width,
            ..Stroke::default()
        };
        pixmap.stroke_path(&path, &paint(colour), &stroke, Transform::identity(), None);
    }
}

/// `text` in 8x8 glyphs with its top-left corner at (x, y); characters without a glyph show
/// as `?`.
fn text(pixmap: &mut Pixmap, text: &str, x: f32, y: f32, colour: (u8, u8, u8)) {
    let ink = paint(colour);
    for (i, c) in text.chars().enumerate() {
        let glyph = BASIC_FONTS
            .get(c)
            .or_else(|| BASIC_FONTS.get('?'))
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0
                    && let Some(dot) =
                        Rect::from_xywh(x + 8.0 * i as f32 + col as f32, y + row as f32, 1.0, 1.0)
                {
                    pixmap.fill_rect(dot, &ink, Transform::identity(), None);
                }
            }
        }
    }
}

/// At most `max` characters, ending in `...` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}
