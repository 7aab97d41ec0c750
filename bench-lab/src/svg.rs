//! A small SVG line chart: lines with markers and min/max whiskers, horizontal reference
//! lines, a legend and caption lines.
//!
//! Written directly rather than with a plotting crate because the workspace builds
//! offline from a registry that has none. The output needs no fonts at build time: text
//! is SVG `<text>` in the viewer's sans-serif, so labels always render.

use std::fmt::Write;

/// A point of a line: the median and the whisker's ends.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoint {
    pub x: f64,
    pub y: f64,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: String,
    /// SVG `stroke-dasharray` (empty: solid).
    pub dash: String,
    pub whiskers: bool,
    pub points: Vec<SeriesPoint>,
}

/// A horizontal line across the plot (a reference such as the sequential binary).
#[derive(Clone, Debug, PartialEq)]
pub struct HLine {
    pub name: String,
    pub y: f64,
    pub color: String,
    pub dash: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    /// Where the x axis has ticks (the sweep's core counts).
    pub x_ticks: Vec<f64>,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    /// Caption lines under the plot (sources, machine).
    pub notes: Vec<String>,
}

const WIDTH: f64 = 960.0;
const PLOT_LEFT: f64 = 80.0;
const PLOT_RIGHT: f64 = 640.0;
const PLOT_TOP: f64 = 70.0;
const PLOT_BOTTOM: f64 = 420.0;
const LEGEND_X: f64 = 660.0;
const NOTE_LINE: f64 = 16.0;

/// Escapes text for SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step giving about `n` ticks up to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_step(max: f64, n: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let raw = max / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Splits `text` into lines of at most about `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn num_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    // Scales.
    let xs: Vec<f64> = chart
        .x_ticks
        .iter()
        .copied()
        .chain(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.x)),
        )
        .collect();
    let (mut x0, mut x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let pad = (x1 - x0) * 0.06;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let y_top = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.hi.max(p.y)))
        .chain(chart.hlines.iter().map(|h| h.y))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let step = nice_step(y_top * 1.08, 6.0);
    let y1 = ((y_top * 1.08) / step).ceil().max(1.0) * step;
    let sx = |x: f64| PLOT_LEFT + (x - x0) / (x1 - x0) * (PLOT_RIGHT - PLOT_LEFT);
    let sy = |y: f64| PLOT_BOTTOM - y / y1 * (PLOT_BOTTOM - PLOT_TOP);

    let note_lines: Vec<String> = chart.notes.iter().flat_map(|n| wrap(n, 130)).collect();
    let legend_lines: usize = chart
        .series
        .iter()
        .map(|s| wrap(&s.name, 36).len())
        .chain(chart.hlines.iter().map(|h| wrap(&h.name, 36).len()))
        .sum();
    let legend_bottom = PLOT_TOP + 10.0 + legend_lines as f64 * 16.0 + 8.0 * legend_lines as f64;
    let height = (PLOT_BOTTOM + 60.0 + note_lines.len() as f64 * NOTE_LINE)
        .max(legend_bottom + 20.0)
        .ceil();

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{PLOT_LEFT}" y="24" font-size="17" font-weight="bold">{}</text>"#,
        escape(&chart.title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{PLOT_LEFT}" y="44" font-size="12" fill="#444">{}</text>"##,
        escape(&chart.subtitle)
    );
    // Grid and y axis.
    let mut y = 0.0;
    while y <= y1 + step * 1e-6 {
        let py = sy(y);
        let _ = writeln!(
            s,
            r##"<line x1="{PLOT_LEFT}" y1="{py:.1}" x2="{PLOT_RIGHT}" y2="{py:.1}" stroke="#e3e3e3"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            PLOT_LEFT - 6.0,
            py + 4.0,
            num_label(y)
        );
        y += step;
    }
    for &t in &chart.x_ticks {
        let px = sx(t);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{PLOT_BOTTOM}" x2="{px:.1}" y2="{:.1}" stroke="#333"/>"##,
            PLOT_BOTTOM + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{px:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            PLOT_BOTTOM + 19.0,
            num_label(t)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{PLOT_LEFT}" y="{PLOT_TOP}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        PLOT_RIGHT - PLOT_LEFT,
        PLOT_BOTTOM - PLOT_TOP
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        PLOT_BOTTOM + 38.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 22 {:.1})">{}</text>"#,
        (PLOT_TOP + PLOT_BOTTOM) / 2.0,
        (PLOT_TOP + PLOT_BOTTOM) / 2.0,
        escape(&chart.y_label)
    );
    // Reference lines, then series (whiskers, line, markers).
    for h in &chart.hlines {
        let py = sy(h.y);
        let _ = writeln!(
            s,
            r#"<line x1="{PLOT_LEFT}" y1="{py:.1}" x2="{PLOT_RIGHT}" y2="{py:.1}" stroke="{}" stroke-width="1.5" stroke-dasharray="{}"><title>{}</title></line>"#,
            h.color,
            h.dash,
            escape(&h.name)
        );
    }
    for series in &chart.series {
        let mut pts = series.points.clone();
        pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        if series.whiskers {
            for p in &pts {
                let (px, lo, hi) = (sx(p.x), sy(p.lo), sy(p.hi));
                let _ = writeln!(
                    s,
                    r#"<path d="M{px:.1} {lo:.1} V{hi:.1} M{:.1} {lo:.1} H{:.1} M{:.1} {hi:.1} H{:.1}" stroke="{}" stroke-width="1.2" fill="none"/>"#,
                    px - 5.0,
                    px + 5.0,
                    px - 5.0,
                    px + 5.0,
                    series.color
                );
            }
        }
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}{:.1} {:.1}",
                    if i == 0 { "M" } else { "L" },
                    sx(p.x),
                    sy(p.y)
                )
            })
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                s,
                r#"<path d="{}" stroke="{}" stroke-width="2" stroke-dasharray="{}" fill="none"/>"#,
                d.join(" "),
                series.color,
                series.dash
            );
        }
        for p in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {} at {}</title></circle>"#,
                sx(p.x),
                sy(p.y),
                series.color,
                escape(&series.name),
                num_label((p.y * 1000.0).round() / 1000.0),
                num_label(p.x)
            );
        }
    }
    // Legend.
    let mut ly = PLOT_TOP + 10.0;
    let entries = chart
        .series
        .iter()
        .map(|x| (&x.name, &x.color, &x.dash, true))
        .chain(
            chart
                .hlines
                .iter()
                .map(|h| (&h.name, &h.color, &h.dash, false)),
        );
    for (name, color, dash, marker) in entries {
        let _ = writeln!(
            s,
            r#"<line x1="{LEGEND_X}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
            LEGEND_X + 28.0
        );
        if marker {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{ly:.1}" r="3.5" fill="{color}"/>"#,
                LEGEND_X + 14.0
            );
        }
        for (i, l) in wrap(name, 36).iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
                LEGEND_X + 36.0,
                ly + 4.0 + i as f64 * 15.0,
                escape(l)
            );
            if i > 0 {
                ly += 15.0;
            }
        }
        ly += 24.0;
    }
    // Captions.
    for (i, l) in note_lines.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{PLOT_LEFT}" y="{:.1}" font-size="11" fill="#444">{}</text>"##,
            PLOT_BOTTOM + 60.0 + i as f64 * NOTE_LINE,
            escape(l)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(7.0, 6.0), 2.0);
        assert_eq!(nice_step(0.9, 6.0), 0.2);
        assert_eq!(nice_step(0.0, 6.0), 1.0);
        assert_eq!(num_label(2.0), "2");
        assert_eq!(num_label(0.25), "0.25");
    }

    #[test]
    fn renders_text_lines_and_escapes() {
        let chart = Chart {
            title: "fw <64 B> & co".into(),
            subtitle: "sub".into(),
            x_label: "cores".into(),
            y_label: "Mpps".into(),
            x_ticks: vec![1.0, 2.0],
            series: vec![Series {
                name: "sn".into(),
                color: "#1f77b4".into(),
                dash: String::new(),
                whiskers: true,
                points: vec![
                    SeriesPoint {
                        x: 2.0,
                        y: 6.0,
                        lo: 5.5,
                        hi: 6.5,
                    },
                    SeriesPoint {
                        x: 1.0,
                        y: 3.0,
                        lo: 2.9,
                        hi: 3.1,
                    },
                ],
            }],
            hlines: vec![HLine {
                name: "seq (1 core)".into(),
                y: 3.2,
                color: "black".into(),
                dash: "6 4".into(),
            }],
            notes: vec!["a note".into()],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("fw &lt;64 B&gt; &amp; co"));
        assert!(svg.contains(">sn</text>") && svg.contains(">seq (1 core)</text>"));
        assert!(svg.contains(">a note</text>"));
        // One polyline for sn with both points, left to right.
        assert_eq!(svg.matches("<circle").count(), 2 + 1);
        assert!(svg.contains("<path d=\"M"));
    }
}
