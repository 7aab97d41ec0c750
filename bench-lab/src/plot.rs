//! The plots: Mpps against cores drawn with `plotters` into an SVG string. One line per
//! strategy with min–max error bars, dashed horizontal reference lines, a legend to the
//! right of the plot and caption lines under it.
//!
//! plotters is built without font features, so text stays SVG `<text>` in the viewer's
//! sans-serif and no font library is needed to build or draw (the layout uses plotters'
//! estimate of text widths).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A point of a line: the median and the error bar's ends.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoint {
    pub x: f64,
    pub y: f64,
    pub lo: f64,
    pub hi: f64,
}

/// How a line is stroked: `Dash(len, gap)` in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stroke {
    Solid,
    Dash(u32, u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub stroke: Stroke,
    /// Min–max error bars and a marker at each point (measured series); without them,
    /// small markers only (published or derived lines).
    pub whiskers: bool,
    pub points: Vec<SeriesPoint>,
}

/// A horizontal line across the plot (a reference such as the sequential binary).
#[derive(Clone, Debug, PartialEq)]
pub struct HLine {
    pub name: String,
    pub y: f64,
    pub color: RGBColor,
    pub stroke: Stroke,
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

/// Why a chart could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(String);

fn plot_error<E: std::error::Error>(e: E) -> PlotError {
    PlotError(e.to_string())
}

/// Width of the plot part (axes and plotting area); the legend comes to its right.
const PLOT_WIDTH: u32 = 700;
/// Height of the title, plot and axis labels; caption lines come under it.
const PLOT_HEIGHT: u32 = 480;
const CAPTION_LINE: u32 = 16;
/// Legend labels are wrapped at about this many characters.
const LEGEND_CHARS: usize = 40;
const LEGEND_LINE: i32 = 17;
/// Caption lines are wrapped at about this many characters.
const CAPTION_CHARS: usize = 130;
const FONT: &str = "sans-serif";

/// Splits `text` into lines of at most about `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
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

/// A tick label: integers without a decimal point.
fn num_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v}")
    }
}

/// The x range: the ticks and points, padded so markers at the ends are not cut.
fn x_range(chart: &Chart) -> (f64, f64) {
    let xs = chart
        .x_ticks
        .iter()
        .copied()
        .chain(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.x)),
        )
        .filter(|x| x.is_finite());
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
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
    (x0 - pad, x1 + pad)
}

/// The top of the y axis: 8 % above the highest point, error bar or reference line.
fn y_top(chart: &Chart) -> f64 {
    let top = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.hi.max(p.y)))
        .chain(chart.hlines.iter().map(|h| h.y))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if top > 0.0 {
        top * 1.08
    } else {
        1.0
    }
}

/// One legend entry: a sample of the line (with a marker for series) and the name,
/// wrapped at [`LEGEND_CHARS`].
struct LegendEntry<'c> {
    name: &'c str,
    color: RGBColor,
    stroke: Stroke,
    marker: bool,
}

/// Draws the legend at `(x, y)` (pixels of `root`): plotters' own legend is confined
/// to the plotting area, where it would hide lines.
fn draw_legend(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    (x, mut y): (i32, i32),
    entries: &[LegendEntry<'_>],
) -> Result<(), PlotError> {
    let label = (FONT, 15)
        .into_font()
        .into_text_style(root)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for e in entries {
        let style = e.color.stroke_width(2);
        let sample = vec![(x, y), (x + 28, y)];
        match e.stroke {
            Stroke::Solid => root.draw(&PathElement::new(sample, style)),
            Stroke::Dash(len, gap) => root.draw(&DashedPathElement::new(
                sample, len as i32, gap as i32, style,
            )),
        }
        .map_err(plot_error)?;
        if e.marker {
            root.draw(&Circle::new((x + 14, y), 4, e.color.filled()))
                .map_err(plot_error)?;
        }
        for (i, line) in wrap(e.name, LEGEND_CHARS).into_iter().enumerate() {
            if i > 0 {
                y += LEGEND_LINE;
            }
            root.draw(&Text::new(line, (x + 38, y), label.clone()))
                .map_err(plot_error)?;
        }
        y += LEGEND_LINE + 8;
    }
    Ok(())
}

/// Draws a polyline in `stroke` through `points` (in data coordinates).
fn draw_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    stroke: Stroke,
    width: u32,
) -> Result<(), PlotError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = color.stroke_width(width);
    match stroke {
        Stroke::Solid => chart
            .draw_series(LineSeries::new(points, style))
            .map(|_| ())
            .map_err(plot_error),
        Stroke::Dash(len, gap) => chart
            .draw_series(DashedLineSeries::new(points, len as i32, gap as i32, style))
            .map(|_| ())
            .map_err(plot_error),
    }
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &Chart) -> Result<String, PlotError> {
    // Room for 40 characters of 12 px text and the line samples.
    let width = PLOT_WIDTH + 300;
    let caption: Vec<String> = chart
        .notes
        .iter()
        .flat_map(|n| wrap(n, CAPTION_CHARS))
        .collect();
    let height = PLOT_HEIGHT + 20 + caption.len() as u32 * CAPTION_LINE;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root, chart, &caption)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &Chart,
    caption: &[String],
) -> Result<(), PlotError> {
    let title = (FONT, 21).into_font().style(FontStyle::Bold);
    root.draw(&Text::new(chart.title.clone(), (80, 12), title))
        .map_err(plot_error)?;
    let subtitle = (FONT, 15).into_font().color(&RGBColor(0x44, 0x44, 0x44));
    root.draw(&Text::new(chart.subtitle.clone(), (80, 38), subtitle))
        .map_err(plot_error)?;
    let note = (FONT, 14).into_font().color(&RGBColor(0x44, 0x44, 0x44));
    for (i, line) in caption.iter().enumerate() {
        let y = (PLOT_HEIGHT + 10 + i as u32 * CAPTION_LINE) as i32;
        root.draw(&Text::new(line.clone(), (80, y), note.clone()))
            .map_err(plot_error)?;
    }

    let (x0, x1) = x_range(chart);
    let y1 = y_top(chart);
    let ticks: Vec<f64> = chart
        .x_ticks
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let (w, _) = root.dim_in_pixel();
    let mut c = ChartBuilder::on(root)
        .margin_top(70)
        .margin_left(10)
        .margin_right(w.saturating_sub(PLOT_WIDTH) + 20)
        .margin_bottom(height_below_plot(root))
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(plot_error)?;
    // plotters would label "nice" x values (1.5 cores); the ticks are the core counts,
    // drawn below by hand.
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_max_light_lines(1)
        .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .y_labels(8)
        .y_label_formatter(&|y| num_label((*y * 1000.0).round() / 1000.0))
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 15))
        .draw()
        .map_err(plot_error)?;

    let axis = c.plotting_area().clone();
    let tick_label = (FONT, 15)
        .into_font()
        .into_text_style(root)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for &x in &ticks {
        let (px, py) = axis.map_coordinate(&(x, 0.0));
        root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK))
            .map_err(plot_error)?;
        root.draw(&Text::new(num_label(x), (px, py + 8), tick_label.clone()))
            .map_err(plot_error)?;
    }

    // Reference lines first, so the measured lines are drawn over them.
    for h in chart.hlines.iter().filter(|h| h.y.is_finite()) {
        draw_line(&mut c, vec![(x0, h.y), (x1, h.y)], h.color, h.stroke, 2)?;
    }
    for s in &chart.series {
        let mut pts: Vec<&SeriesPoint> = s
            .points
            .iter()
            .filter(|p| [p.x, p.y, p.lo, p.hi].iter().all(|v| v.is_finite()))
            .collect();
        pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.x, p.y)).collect();
        if line.len() > 1 {
            draw_line(&mut c, line, s.color, s.stroke, 2)?;
        }
        let color = s.color;
        if s.whiskers {
            c.draw_series(pts.iter().map(|p| {
                ErrorBar::new_vertical(p.x, p.lo, p.y, p.hi, color.filled().stroke_width(2), 10)
            }))
        } else {
            c.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.x, p.y), 3, color.filled())),
            )
        }
        .map_err(plot_error)?;
    }
    let entries: Vec<LegendEntry<'_>> = chart
        .series
        .iter()
        .map(|s| LegendEntry {
            name: &s.name,
            color: s.color,
            stroke: s.stroke,
            marker: true,
        })
        .chain(chart.hlines.iter().map(|h| LegendEntry {
            name: &h.name,
            color: h.color,
            stroke: h.stroke,
            marker: false,
        }))
        .collect();
    let (right, top) = axis.map_coordinate(&(x1, y1));
    draw_legend(root, (right + 20, top + 10), &entries)
}

/// The caption's height: everything under [`PLOT_HEIGHT`].
fn height_below_plot(root: &DrawingArea<SVGBackend<'_>, Shift>) -> u32 {
    root.dim_in_pixel().1.saturating_sub(PLOT_HEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chart {
        Chart {
            title: "fw <64 B> & co".into(),
            subtitle: "sub".into(),
            x_label: "cores".into(),
            y_label: "Mpps".into(),
            x_ticks: vec![1.0, 2.0],
            series: vec![Series {
                name: "sn".into(),
                color: RGBColor(0x1f, 0x77, 0xb4),
                stroke: Stroke::Solid,
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
                color: BLACK,
                stroke: Stroke::Dash(7, 4),
            }],
            notes: vec!["a note".into()],
        }
    }

    /// The `<text>` contents of an SVG, parsed as XML (so this also checks that it is
    /// well-formed).
    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn renders_text_lines_and_escapes() {
        let svg = render(&sample()).unwrap();
        let t = texts(&svg);
        // Escaped in the file, intact once parsed.
        assert!(svg.contains("fw &lt;64 B&gt; &amp; co"));
        for want in [
            "fw <64 B> & co",
            "sn",
            "seq (1 core)",
            "a note",
            "cores",
            "Mpps",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // The x axis is labeled at the core counts only.
        assert!(
            t.iter().any(|x| x == "1") && t.iter().any(|x| x == "2"),
            "{t:?}"
        );
        assert!(!t.iter().any(|x| x == "1.5"), "{t:?}");
        // Two error bars, each with its median marker, and sn's legend marker.
        assert_eq!(svg.matches("<circle").count(), 2 + 1, "{svg}");
        // The seq line is dashed: many short segments, in the plot and the legend.
        assert!(svg.matches("<polyline").count() > 10, "{svg}");
    }

    #[test]
    fn long_captions_wrap_and_grow_the_picture() {
        let mut c = sample();
        let short = render(&c).unwrap();
        c.notes = vec!["word ".repeat(100)];
        let long = render(&c).unwrap();
        let height = |svg: &str| {
            let doc = roxmltree::Document::parse(svg).unwrap();
            doc.root_element()
                .attribute("height")
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(height(&long), height(&short) + 3 * CAPTION_LINE);
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
    }

    #[test]
    fn empty_or_degenerate_charts_still_render() {
        let c = Chart {
            title: "nothing measured".into(),
            ..Chart::default()
        };
        assert!(texts(&render(&c).unwrap()).contains(&"nothing measured".to_string()));
        let mut c = sample();
        c.series[0].points[0].y = f64::NAN;
        c.x_ticks = vec![1.0];
        texts(&render(&c).unwrap());
    }
}
