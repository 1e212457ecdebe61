//! PNG charts drawn with plotters (bitmap backend, text through ab_glyph with a TrueType font
//! read from disk: DejaVu Sans from Debian's fonts-dejavu-core unless `BENCH_FONT` names
//! another file).

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Font files tried in order (after `$BENCH_FONT`).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers the font as "sans-serif" (once).
pub(crate) fn init_font() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("BENCH_FONT").into_iter().collect();
        candidates.extend(FONTS.iter().map(|s| s.to_string()));
        for c in &candidates {
            if let Ok(bytes) = std::fs::read(c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no usable TrueType font (tried {candidates:?}); install fonts-dejavu-core or set BENCH_FONT"
        ))
    })
    .clone()
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// The legend's text.
    pub(crate) label: String,
    /// The line's color.
    pub(crate) color: RGBColor,
    /// `(x, y)` points, in x order.
    pub(crate) points: Vec<(f64, f64)>,
    /// Drawn thin and dashed-looking (lighter), e.g. the VU count.
    pub(crate) faint: bool,
}

/// A panel: a title, a y axis, lines, and optionally lines on a secondary (right) axis.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// The caption.
    pub(crate) title: String,
    /// The left axis' description.
    pub(crate) y_desc: String,
    /// The lines on the left axis.
    pub(crate) series: Vec<Series>,
    /// The right axis' description, when there is one.
    pub(crate) y2_desc: Option<String>,
    /// The lines on the right axis.
    pub(crate) series2: Vec<Series>,
    /// Legend in the upper left corner (else upper right).
    pub(crate) legend_left: bool,
}

impl Panel {
    /// A panel of `series` on the left axis, its legend upper right.
    pub(crate) fn new(title: String, y_desc: &str, series: Vec<Series>) -> Panel {
        Panel {
            title,
            y_desc: y_desc.into(),
            series,
            y2_desc: None,
            series2: Vec::new(),
            legend_left: false,
        }
    }

    /// With `series` on a right axis described `desc`.
    pub(crate) fn right_axis(self, desc: &str, series: Vec<Series>) -> Panel {
        Panel {
            y2_desc: Some(desc.into()),
            series2: series,
            ..self
        }
    }

    /// With the legend upper left.
    pub(crate) fn legend_left(self) -> Panel {
        Panel {
            legend_left: true,
            ..self
        }
    }
}

fn max_of(series: &[Series], f: impl Fn(&(f64, f64)) -> f64) -> f64 {
    series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(f)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot: {e:?}")
}

fn style(s: &Series) -> ShapeStyle {
    if s.faint {
        s.color.mix(0.5).stroke_width(1)
    } else {
        s.color.stroke_width(2)
    }
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn label_fmt(max: f64) -> impl Fn(&f64) -> String {
    move |v: &f64| {
        if max >= 20.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    }
}

/// Draws a y axis described `$desc` up to `$max`, with the text of every axis: `$mesh` is
/// a `MeshStyle` or a `SecondaryMeshStyle` (plotters has no trait over the two).
macro_rules! draw_y_axis {
    ($mesh:expr, $desc:expr, $max:expr) => {{
        let fmt = label_fmt($max);
        $mesh
            .y_desc($desc)
            .y_label_formatter(&fmt)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(err)
    }};
}

/// The primary mesh (left and bottom axes only) and lines.
fn draw_primary(chart: &mut Chart<'_, '_>, p: &Panel, y_max: f64) -> Result<(), String> {
    let x_fmt = |v: &f64| format!("{v:.0}");
    draw_y_axis!(
        chart
            .configure_mesh()
            .x_desc("seconds")
            .x_label_formatter(&x_fmt),
        p.y_desc.as_str(),
        y_max
    )?;
    for s in &p.series {
        chart
            .draw_series(line(s))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(legend_mark(s.color.stroke_width(2)));
    }
    Ok(())
}

/// A series' line.
fn line<'a>(s: &Series) -> LineSeries<BitMapBackend<'a>, (f64, f64)> {
    LineSeries::new(s.points.iter().copied(), style(s))
}

/// A series' mark in the legend: a short stroke.
fn legend_mark(stroke: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], stroke)
}

/// The legend, in the corner the panel asks for.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, p: &Panel) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(if p.legend_left {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        })
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn draw_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, p: &Panel) -> Result<(), String> {
    let x_max = max_of(&p.series, |pt| pt.0)
        .max(max_of(&p.series2, |pt| pt.0))
        .max(1.0);
    let y_max = (max_of(&p.series, |pt| pt.1) * 1.1).max(1e-3);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&p.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if p.y2_desc.is_some() {
        builder.right_y_label_area_size(70);
    }
    let chart = builder
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    if let Some(y2) = &p.y2_desc {
        let y2_max = (max_of(&p.series2, |pt| pt.1) * 1.1).max(1.0);
        // The secondary coordinates take the right label area, so the primary mesh labels
        // only the left axis.
        let mut chart = chart.set_secondary_coord(0f64..x_max, 0f64..y2_max);
        draw_primary(&mut chart, p, y_max)?;
        draw_y_axis!(chart.configure_secondary_axes(), y2.as_str(), y2_max)?;
        for s in &p.series2 {
            chart
                .draw_secondary_series(line(s))
                .map_err(err)?
                .label(format!("{} (right axis)", s.label))
                .legend(legend_mark(s.color.mix(0.5).stroke_width(2)));
        }
        draw_legend(&mut chart, p)?;
    } else {
        let mut chart = chart;
        draw_primary(&mut chart, p, y_max)?;
        draw_legend(&mut chart, p)?;
    }
    Ok(())
}

/// Draws `panels` side by side (one row) into a PNG of `width_each`×`height` per panel.
pub(crate) fn draw(
    path: &Path,
    panels: &[Panel],
    width_each: u32,
    height: u32,
) -> Result<(), String> {
    init_font()?;
    let n = panels.len().max(1);
    let root = BitMapBackend::new(path, (width_each * n as u32, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, n));
    for (area, p) in areas.iter().zip(panels) {
        draw_panel(area, p)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a chart with text; skipped (with a note) where no font is installed.
    #[test]
    fn renders_png_with_text() {
        if let Err(e) = init_font() {
            eprintln!("skipped: {e}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.png");
        let s = Series {
            label: "a".into(),
            color: RED,
            points: (0..10).map(|i| (i as f64, (i * i) as f64)).collect(),
            faint: false,
        };
        let panel = Panel::new("test".into(), "y", vec![s.clone()])
            .right_axis("y2", vec![Series { faint: true, ..s }]);
        assert_eq!(panel.y2_desc.as_deref(), Some("y2"));
        assert!(!panel.legend_left && panel.clone().legend_left().legend_left);
        draw(&p, &[panel.clone(), panel], 400, 300).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
