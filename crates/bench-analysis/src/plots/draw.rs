//! Drawing a [`Spec`] on any plotters backend.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::build::{BLUE, GRAY, ORANGE, RED};
use super::{BoxItem, FAMILY, GanttBar, Panel, Spec, Stroke};

type Res = Result<(), Box<dyn std::error::Error>>;

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// A range with some room around [lo, hi] (and a non-empty one when lo == hi).
fn padded(lo: f64, hi: f64, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = if from_zero {
        (lo.min(0.0), hi.max(0.0))
    } else {
        (lo, hi)
    };
    if hi > lo {
        let pad = (hi - lo) * 0.05;
        (if from_zero && lo >= 0.0 { lo } else { lo - pad }, hi + pad)
    } else {
        (
            lo - 0.5_f64.max(lo.abs() * 0.1),
            hi + 0.5_f64.max(hi.abs() * 0.1),
        )
    }
}

/// Axis tick label: compact, no trailing zeros.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || *v == v.round() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws `spec` with `title` on `root`.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, spec: &Spec) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let body = root.titled(title, font(17).color(&BLACK))?;
    let _ = w;
    match spec {
        Spec::Histogram {
            x_desc,
            bins,
            marks,
        } => histogram(&body, x_desc, bins, marks),
        Spec::Boxes {
            x_desc,
            y_desc,
            items,
        } => boxes(&body, x_desc, y_desc, items),
        Spec::Lines { x_desc, panels } => lines(&body, x_desc, panels),
        Spec::Gantt { bars } => gantt(&body, bars),
        Spec::Scatter {
            x_desc,
            y_desc,
            points,
            median,
        } => scatter(&body, x_desc, y_desc, points, median),
    }
}

fn histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_desc: &str,
    bins: &[(f64, f64, u64)],
    marks: &[f64; 4],
) -> Res
where
    DB::ErrorType: 'static,
{
    let x0 = bins.first().map(|b| b.0).unwrap_or(0.0);
    let x1 = bins.last().map(|b| b.1).unwrap_or(1.0);
    let ymax = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut ch = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..ymax)?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc("requests")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(font(13))
        .axis_desc_style(font(14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let [p5, p50, p95, p99] = *marks;
    ch.draw_series(std::iter::once(Rectangle::new(
        [(p5.max(x0), 0.0), (p95.min(x1), ymax)],
        BLUE.mix(0.10).filled(),
    )))?
    .label(format!("p5-p95 {}-{}", tick(&p5), tick(&p95)))
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLUE.mix(0.2).filled()));
    ch.draw_series(
        bins.iter()
            .map(|&(a, b, c)| Rectangle::new([(a, 0.0), (b, c as f64)], BLUE.mix(0.75).filled())),
    )?;
    ch.draw_series(LineSeries::new(
        [(p50, 0.0), (p50, ymax)],
        RED.stroke_width(3),
    ))?
    .label(format!("median {}", tick(&p50)))
    .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], RED.stroke_width(3)));
    if p99 <= x1 {
        ch.draw_series(DashedLineSeries::new(
            [(p99, 0.0), (p99, ymax)],
            6,
            4,
            GRAY.stroke_width(2),
        ))?
        .label(format!("p99 {}", tick(&p99)))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], GRAY.stroke_width(2)));
    }
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(font(13))
        .background_style(WHITE.mix(0.85))
        .border_style(GRAY)
        .draw()?;
    Ok(())
}

fn boxes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    items: &[BoxItem],
) -> Res
where
    DB::ErrorType: 'static,
{
    let lo = items.iter().map(|b| b.p5).fold(f64::INFINITY, f64::min);
    let hi = items
        .iter()
        .map(|b| b.p95)
        .fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1) = padded(lo, hi, true);
    let n = items.len();
    let labels: Vec<String> = items.iter().map(|b| b.label.clone()).collect();
    let fmt = move |x: &f64| {
        let k = x.round();
        if (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() {
            labels[k as usize].clone()
        } else {
            String::new()
        }
    };
    let mut ch = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.6..(n as f64 - 0.4), y0..y1)?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(n.min(24) * 2 + 1)
        .x_label_formatter(&fmt)
        .y_label_formatter(&tick)
        .disable_x_mesh()
        .label_style(font(13))
        .axis_desc_style(font(14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let half = 0.3;
    for (k, b) in items.iter().enumerate() {
        let x = k as f64;
        ch.draw_series(std::iter::once(Rectangle::new(
            [(x - half, b.p5), (x + half, b.p95)],
            BLUE.mix(0.35).filled(),
        )))?;
        ch.draw_series(std::iter::once(Rectangle::new(
            [(x - half, b.p5), (x + half, b.p95)],
            BLUE.stroke_width(1),
        )))?;
        ch.draw_series(LineSeries::new(
            [(x - half, b.p50), (x + half, b.p50)],
            RED.stroke_width(3),
        ))?;
    }
    Ok(())
}

fn lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, x_desc: &str, panels: &[Panel]) -> Res
where
    DB::ErrorType: 'static,
{
    let xs = panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let (xmin, xmax) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (x0, x1) = if xmin.is_finite() {
        padded(xmin, xmax, true)
    } else {
        (0.0, 1.0)
    };
    let parts = area.split_evenly((panels.len(), 1));
    for (k, (panel, part)) in panels.iter().zip(parts.iter()).enumerate() {
        let ys = panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1));
        let (ymin, ymax) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        let (y0, y1) = if ymin.is_finite() {
            padded(ymin, ymax, true)
        } else {
            (0.0, 1.0)
        };
        // headroom for the legend in the upper left corner
        let y1 = y0 + (y1 - y0) * 1.3;
        let last = k + 1 == panels.len();
        let mut ch = ChartBuilder::on(part)
            .margin(10)
            .x_label_area_size(if last { 44 } else { 22 })
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let mut mesh = ch.configure_mesh();
        mesh.y_desc(panel.y_desc.as_str())
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(font(13))
            .axis_desc_style(font(14))
            .light_line_style(RGBColor(235, 235, 235));
        if last {
            mesh.x_desc(x_desc);
        }
        mesh.draw()?;
        for (j, l) in panel.lines.iter().enumerate() {
            if l.points.is_empty() {
                continue;
            }
            let color = l.color;
            if panel.area && j == 0 {
                ch.draw_series(AreaSeries::new(
                    l.points.iter().copied(),
                    0.0,
                    color.mix(0.2),
                ))?;
            }
            let drawn = match l.stroke {
                Stroke::Dashed => ch.draw_series(DashedLineSeries::new(
                    l.points.iter().copied(),
                    6,
                    4,
                    color.stroke_width(2),
                ))?,
                Stroke::Solid => ch.draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))?,
                Stroke::Halo => ch.draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.mix(0.45).stroke_width(7),
                ))?,
            };
            let legend = if l.stroke == Stroke::Halo {
                color.mix(0.45).stroke_width(7)
            } else {
                color.stroke_width(3)
            };
            drawn
                .label(l.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], legend));
        }
        if panel.lines.iter().any(|l| !l.points.is_empty()) {
            ch.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(font(12))
                .background_style(WHITE.mix(0.85))
                .border_style(GRAY)
                .draw()?;
        }
    }
    Ok(())
}

fn gantt<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, bars: &[GanttBar]) -> Res
where
    DB::ErrorType: 'static,
{
    let xmax = bars.iter().map(|b| b.end).fold(0.0, f64::max);
    let xmin = bars
        .iter()
        .map(|b| b.start)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let (x0, x1) = padded(xmin, xmax, true);
    let n = bars.len() as f64;
    let mut ch = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, n..-0.5)?;
    ch.configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("request (send order)")
        .x_label_formatter(&tick)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(13))
        .axis_desc_style(font(14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let h = 0.42;
    ch.draw_series(
        bars.iter()
            .enumerate()
            .filter(|(_, b)| !b.failed)
            .map(|(k, b)| {
                let y = k as f64;
                Rectangle::new(
                    [(b.first_token.unwrap_or(b.start), y - h), (b.end, y + h)],
                    ORANGE.mix(0.85).filled(),
                )
            }),
    )?
    .label("first token to end")
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], ORANGE.filled()));
    ch.draw_series(
        bars.iter()
            .enumerate()
            .filter(|(_, b)| !b.failed)
            .filter_map(|(k, b)| {
                let y = k as f64;
                b.first_token
                    .map(|t| Rectangle::new([(b.start, y - h), (t, y + h)], BLUE.filled()))
            }),
    )?
    .label("TTFT")
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLUE.filled()));
    ch.draw_series(
        bars.iter()
            .enumerate()
            .filter(|(_, b)| b.failed)
            .map(|(k, b)| {
                let y = k as f64;
                Rectangle::new(
                    [(b.start, y - h), (b.end.max(b.start), y + h)],
                    RED.mix(0.8).filled(),
                )
            }),
    )?
    .label("failed / excluded")
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], RED.filled()));
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(font(13))
        .background_style(WHITE.mix(0.85))
        .border_style(GRAY)
        .draw()?;
    Ok(())
}

fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    median: &[(f64, f64)],
) -> Res
where
    DB::ErrorType: 'static,
{
    let fold = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let (xa, xb) = fold(|p| p.0);
    let (ya, yb) = fold(|p| p.1);
    let (x0, x1) = padded(xa, xb, false);
    let (y0, y1) = padded(ya, yb, true);
    let mut ch = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    ch.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(font(13))
        .axis_desc_style(font(14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    ch.draw_series(
        points
            .iter()
            .map(|&p| Circle::new(p, 2, BLUE.mix(0.35).filled())),
    )?
    .label("requests")
    .legend(|(x, y)| Circle::new((x + 7, y), 3, BLUE.filled()));
    if !median.is_empty() {
        ch.draw_series(LineSeries::new(median.iter().copied(), RED.stroke_width(3)))?
            .label("binned median")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(3)));
    }
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(font(13))
        .background_style(WHITE.mix(0.85))
        .border_style(GRAY)
        .draw()?;
    Ok(())
}
