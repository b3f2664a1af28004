//! Plots (plotters): every chart is a [`Spec`] holding its data, drawn by the same code into an
//! SVG string (inlined in report.html) and a PNG file. Text uses an embedded DejaVu Sans
//! (assets/, Bitstream Vera license) so PNGs look the same on every machine.

mod build;
mod draw;

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::AnalysisError;
use crate::analyze::Analysis;
use crate::summary::Summary;
use crate::timeseries::TimeSeries;

pub(crate) use build::chart;
pub use build::specs;

/// The embedded font (DejaVu Sans, see assets/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Font family name the charts use.
pub(crate) const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::warn!(
                "analysis: the embedded font could not be registered; PNG text may be missing"
            );
        }
    });
}

/// A series of (x, y) points drawn as a line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Color.
    pub color: RGBColor,
    /// How it is stroked.
    pub stroke: Stroke,
}

/// Stroke of a [`Line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// 2 px solid.
    Solid,
    /// 2 px dashed (reference lines).
    Dashed,
    /// 7 px, light: a band under the lines drawn after it, visible where they part.
    Halo,
}

/// One panel of a line chart.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Y axis label.
    pub y_desc: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Fill the area under the first line.
    pub area: bool,
}

/// One box of a box chart: p5-p95 box and median line.
#[derive(Debug, Clone)]
pub struct BoxItem {
    /// Group label (x axis).
    pub label: String,
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Values in the group.
    pub n: usize,
}

/// One bar of the Gantt timeline.
#[derive(Debug, Clone)]
pub struct GanttBar {
    /// Sent, seconds since the time origin.
    pub start: f64,
    /// First token (None: none received).
    pub first_token: Option<f64>,
    /// End.
    pub end: f64,
    /// Whether the request failed or was excluded.
    pub failed: bool,
}

/// What a chart shows.
#[derive(Debug, Clone)]
pub enum Spec {
    /// A histogram with the p5-p95 band, the median and p99 lines.
    Histogram {
        /// X axis label.
        x_desc: String,
        /// (lo, hi, count) bins.
        bins: Vec<(f64, f64, u64)>,
        /// 5th, 50th, 95th, 99th percentiles.
        marks: [f64; 4],
    },
    /// p5-p95 boxes with median lines, one per group.
    Boxes {
        /// X axis label.
        x_desc: String,
        /// Y axis label.
        y_desc: String,
        /// The boxes.
        items: Vec<BoxItem>,
    },
    /// Stacked panels of lines over a shared x axis.
    Lines {
        /// X axis label.
        x_desc: String,
        /// Panels, top to bottom.
        panels: Vec<Panel>,
    },
    /// Requests over time: TTFT and generation bars.
    Gantt {
        /// The bars, in send order.
        bars: Vec<GanttBar>,
    },
    /// Scatter of y against x, with the binned median.
    Scatter {
        /// X axis label.
        x_desc: String,
        /// Y axis label.
        y_desc: String,
        /// Points (sampled).
        points: Vec<(f64, f64)>,
        /// Median of y by bins of x.
        median: Vec<(f64, f64)>,
    },
}

/// A chart: name (file stem), title, size, data, and its SVG.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem under plots/.
    pub name: String,
    /// Title drawn above the chart.
    pub title: String,
    /// One line under the chart in the report: what it shows and how to read it.
    pub caption: String,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// The data.
    pub spec: Spec,
    /// The chart as SVG.
    pub svg: String,
}

fn draw_err(name: &str, e: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Other(format!("plot {name}: {e}"))
}

/// Builds every chart of the run and renders its SVG.
pub fn render_all(
    a: &Analysis,
    s: &Summary,
    ts: &TimeSeries,
    server: Option<&crate::server::ServerSeries>,
) -> Result<Vec<Chart>, AnalysisError> {
    register_font();
    let mut charts = specs(a, s, ts);
    charts.extend(build::server_specs(s, ts, server));
    for c in &mut charts {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, c.size).into_drawing_area();
            draw::draw(&root, &c.title, &c.spec).map_err(|e| draw_err(&c.name, e))?;
            root.present().map_err(|e| draw_err(&c.name, e))?;
        }
        c.svg = svg;
    }
    Ok(charts)
}

/// Renders `c`'s SVG (charts made outside [`specs`]: an experiment's).
pub fn render_svg(c: &mut Chart) -> Result<(), AnalysisError> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, c.size).into_drawing_area();
        draw::draw(&root, &c.title, &c.spec).map_err(|e| draw_err(&c.name, e))?;
        root.present().map_err(|e| draw_err(&c.name, e))?;
    }
    c.svg = svg;
    Ok(())
}

/// Draws `c` into a PNG file at `path`.
pub fn write_png(c: &Chart, path: &Path) -> Result<(), AnalysisError> {
    register_font();
    let root = BitMapBackend::new(path, c.size).into_drawing_area();
    draw::draw(&root, &c.title, &c.spec).map_err(|e| draw_err(&c.name, e))?;
    root.present()
        .map_err(|e| AnalysisError::Other(format!("{}: {e}", path.display())))
}
