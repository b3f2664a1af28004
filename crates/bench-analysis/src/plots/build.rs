//! The charts of a run: which ones, with what data.

use plotters::style::RGBColor;

use super::{BoxItem, Chart, GanttBar, Line, Panel, Spec, Stroke};
use crate::analyze::Analysis;
use crate::distributions::{self, Brief, Group};
use crate::format::num;
use crate::stats;
use crate::summary::Summary;
use crate::timeseries::TimeSeries;

pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub(crate) const GREEN: RGBColor = RGBColor(44, 160, 44);
pub(crate) const RED: RGBColor = RGBColor(214, 39, 40);
pub(crate) const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub(crate) const GRAY: RGBColor = RGBColor(110, 110, 110);

/// Histogram bins.
const HIST_BINS: usize = 40;
/// Most points in a scatter plot.
const MAX_POINTS: usize = 4000;

const WIDE: (u32, u32) = (960, 440);

pub(crate) fn chart(
    name: &str,
    title: String,
    caption: &str,
    size: (u32, u32),
    spec: Spec,
) -> Chart {
    Chart {
        name: name.into(),
        title,
        caption: caption.into(),
        size,
        spec,
        svg: String::new(),
    }
}

/// Histogram of `values` (non-empty): bins over [min, hi] where hi clips a long tail at
/// 1.1 x p99 when max is more than twice p99 (values beyond land in the last bin).
fn histogram(values: &[f64], x_desc: &str) -> (Spec, bool) {
    let mut v = values.to_vec();
    let p = stats::percentiles(&mut v, &[0.0, 0.05, 0.5, 0.95, 0.99, 1.0]);
    let (min, max, p99) = (p[0], p[5], p[4]);
    let clipped = p99 > 0.0 && max > 2.0 * p99;
    let hi = if clipped { 1.1 * p99 } else { max };
    let (lo, hi) = if hi > min {
        (min, hi)
    } else {
        (min - 0.5, min + 0.5)
    };
    let w = (hi - lo) / HIST_BINS as f64;
    let mut counts = vec![0u64; HIST_BINS];
    for &x in values {
        counts[(((x - lo) / w).floor().max(0.0) as usize).min(HIST_BINS - 1)] += 1;
    }
    let bins = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (lo + k as f64 * w, lo + (k + 1) as f64 * w, c))
        .collect();
    (
        Spec::Histogram {
            x_desc: x_desc.into(),
            bins,
            marks: [p[1], p[2], p[3], p[4]],
        },
        clipped,
    )
}

fn boxes(per_row: &[f64], groups: &[Group], x_desc: &str, y_desc: &str) -> Option<Spec> {
    let items: Vec<BoxItem> = groups
        .iter()
        .filter_map(|g| {
            let mut v: Vec<f64> = g
                .rows
                .iter()
                .map(|&i| per_row[i])
                .filter(|x| !x.is_nan())
                .collect();
            if v.is_empty() {
                return None;
            }
            let p = stats::percentiles(&mut v, &[0.05, 0.5, 0.95]);
            Some(BoxItem {
                label: g.label.clone(),
                p5: p[0],
                p50: p[1],
                p95: p[2],
                n: v.len(),
            })
        })
        .collect();
    (items.len() >= 2).then(|| Spec::Boxes {
        x_desc: x_desc.into(),
        y_desc: y_desc.into(),
        items,
    })
}

fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Line {
    Line {
        label: label.into(),
        points,
        color,
        stroke: Stroke::Solid,
    }
}

/// Points (bin center, value) of a time-series field, skipping bins without a value.
fn series(
    ts: &TimeSeries,
    f: impl Fn(&crate::timeseries::TsRow) -> Option<f64>,
) -> Vec<(f64, f64)> {
    ts.rows
        .iter()
        .filter_map(|r| f(r).map(|v| (r.t_s + r.width_s / 2.0, v)))
        .collect()
}

/// Every chart of the run (charts without data are left out).
pub fn specs(a: &Analysis, s: &Summary, ts: &TimeSeries) -> Vec<Chart> {
    let d = &a.rec.derived;
    let mut out = Vec::new();
    let dists: [(&str, &str, &str, &[f64]); 3] = [
        ("ttft", "TTFT", "TTFT (ms)", &d.ttft_ms),
        ("e2el", "End-to-end latency", "E2EL (ms)", &d.e2el_ms),
        (
            "output_throughput",
            "Output throughput per request",
            "output tokens/s of each request",
            &d.output_tps,
        ),
    ];
    for (key, what, unit, per_row) in dists {
        let v = a.measured_values(per_row);
        if v.is_empty() {
            continue;
        }
        let (spec, clipped) = histogram(&v, unit);
        let Spec::Histogram { marks, .. } = &spec else {
            unreachable!()
        };
        let title = format!(
            "{what}: n={}, p50 {}, p95 {}, p99 {}",
            v.len(),
            num(Some(marks[1])),
            num(Some(marks[2])),
            num(Some(marks[3]))
        );
        let caption = if clipped {
            "Requests per bin; shaded: p5 to p95, solid line: median, dashed: p99. The long tail is clipped at 1.1 x p99 (the last bin holds the rest)."
        } else {
            "Requests per bin; shaded: p5 to p95, solid line: median, dashed: p99."
        };
        out.push(chart(
            &format!("{key}_distribution"),
            title,
            caption,
            WIDE,
            spec,
        ));
    }
    let groups = distributions::concurrency_groups(a);
    for (key, what, unit, per_row) in dists {
        if let Some(spec) = boxes(per_row, &groups, "requests in flight when sent", unit) {
            out.push(chart(
                &format!("{key}_by_concurrency"),
                format!("{what} by concurrency"),
                "One box per number of requests in flight when the request was sent: the box spans p5 to p95, the line is the median (SambaNova's view by batch size).",
                WIDE,
                spec,
            ));
        }
    }
    if !ts.rows.is_empty() {
        let mut tokens = Panel {
            y_desc: "output tokens/s".into(),
            lines: vec![line("per bin", GREEN, series(ts, |r| Some(r.output_tps)))],
            area: true,
        };
        if let Some(avg) = s.output_token_throughput {
            let (x0, x1) = (
                s.window.start_s.unwrap_or(0.0),
                s.window.end_s.unwrap_or(0.0),
            );
            tokens.lines.push(Line {
                label: format!("measured-window average {}", num(Some(avg))),
                points: vec![(x0, avg), (x1, avg)],
                color: GRAY,
                stroke: Stroke::Dashed,
            });
        }
        out.push(chart(
            "total_output_throughput",
            format!("Total output throughput ({} s bins)", num(Some(ts.bin_s))),
            "Output tokens of measured requests received per second, each request's tokens spread over its chunks; dashed: the run's output token throughput.",
            WIDE,
            Spec::Lines { x_desc: "time since start (s)".into(), panels: vec![tokens] },
        ));
        let rates = Panel {
            y_desc: "requests/s".into(),
            lines: vec![
                Line {
                    stroke: Stroke::Halo,
                    ..line(
                        "offered (scheduled)",
                        GRAY,
                        series(ts, |r| Some(r.offered_rps)),
                    )
                },
                line("sent", BLUE, series(ts, |r| Some(r.sent_rps))),
                line(
                    "completed (achieved)",
                    GREEN,
                    series(ts, |r| Some(r.completed_rps)),
                ),
                line("failed", RED, series(ts, |r| Some(r.failed_rps))),
            ],
            area: false,
        };
        let flight = Panel {
            y_desc: "requests in flight".into(),
            lines: vec![line(
                "time-averaged",
                PURPLE,
                series(ts, |r| Some(r.in_flight)),
            )],
            area: true,
        };
        out.push(chart(
            "load_over_time",
            format!("Load over time ({} s bins)", num(Some(ts.bin_s))),
            "Top: offered (scheduled, wide gray) vs sent vs completed request rate, and failures. Bottom: requests in flight. A completed rate below the offered rate, with in-flight requests piling up, means the server is saturated.",
            (960, 620),
            Spec::Lines { x_desc: "time since start (s)".into(), panels: vec![rates, flight] },
        ));
        let lat = |label: &str, f: fn(&crate::timeseries::TsRow) -> &Brief| Panel {
            y_desc: label.into(),
            lines: vec![
                line("p50", BLUE, series(ts, |r| f(r).p50)),
                line("p99", RED, series(ts, |r| f(r).p99)),
            ],
            area: false,
        };
        let toks = Panel {
            y_desc: "tokens per request".into(),
            lines: vec![
                line("input (mean)", GRAY, series(ts, |r| r.avg_input_tokens)),
                line("output (mean)", GREEN, series(ts, |r| r.avg_output_tokens)),
            ],
            area: false,
        };
        if a.measured.iter().any(|&i| !d.e2el_ms[i].is_nan()) {
            out.push(chart(
                "latency_over_time",
                format!("Performance over time (requests by send time, {} s bins)", num(Some(ts.bin_s))),
                "AIBrix's view: p50 and p99 of TTFT, TPOT and E2EL of the measured requests sent in each bin, and their mean input and output lengths.",
                (960, 900),
                Spec::Lines {
                    x_desc: "time the request was sent (s since start)".into(),
                    panels: vec![lat("TTFT (ms)", |r| &r.ttft_ms), lat("TPOT (ms)", |r| &r.tpot_ms), lat("E2EL (ms)", |r| &r.e2el_ms), toks],
                },
            ));
        }
    }
    if let Some(g) = gantt(a) {
        out.push(g);
    }
    for p in &s.pairs {
        let (xs, ys) = (distributions::field(a, p.x), distributions::field(a, p.y));
        let rows: Vec<usize> = a
            .measured
            .iter()
            .copied()
            .filter(|&i| !xs[i].is_nan() && !ys[i].is_nan())
            .collect();
        if rows.is_empty() {
            continue;
        }
        let step = rows.len().div_ceil(MAX_POINTS);
        let points = rows.iter().step_by(step).map(|&i| (xs[i], ys[i])).collect();
        let median = p
            .bins
            .iter()
            .filter_map(|b| b.y.p50.map(|m| ((b.lo + b.hi) / 2.0, m)))
            .collect();
        out.push(chart(
            &format!("pair_{}_vs_{}", p.x, p.y),
            format!("{} vs {} ({} requests{})", p.y, p.x, rows.len(), if step > 1 { format!(", 1 in {step} drawn") } else { String::new() }),
            "Each dot is a measured request; the line is the median of y in equal-width bins of x (the pairs table).",
            WIDE,
            Spec::Scatter { x_desc: format!("{} ({})", p.x, p.x.unit()), y_desc: format!("{} ({})", p.y, p.y.unit()), points, median },
        ));
    }
    out
}

/// SambaNova's "LLM requests across time": one bar per request from sent to end, the TTFT
/// part in its own color; failed or excluded requests in red. Long runs show the first
/// `analysis.gantt_max_requests` requests sent (contiguous, so overlaps stay visible).
fn gantt(a: &Analysis) -> Option<Chart> {
    let r = &a.rec;
    let mut rows: Vec<usize> = a.sent_rows.clone();
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|&i| r.sent[i]);
    let total = rows.len();
    let shown = total.min(a.cfg.gantt_max_requests.max(1) as usize);
    let bars: Vec<GanttBar> = rows[..shown]
        .iter()
        .filter_map(|&i| {
            let s = r.sent[i]?;
            let e = r.end[i].unwrap_or(s);
            Some(GanttBar {
                start: a.secs(s),
                first_token: r.first_token[i].map(|t| a.secs(t)),
                end: a.secs(e),
                failed: a.reason[i].is_some(),
            })
        })
        .collect();
    Some(chart(
        "gantt",
        if shown < total {
            format!("Requests across time (the first {shown} of {total} sent)")
        } else {
            format!("Requests across time ({total} requests)")
        },
        "One bar per request in send order: blue from sent to first token (TTFT), orange from first token to end; red: failed or excluded requests. Long runs show the first analysis.gantt_max_requests requests.",
        (960, 560),
        Spec::Gantt { bars },
    ))
}

/// (t, value) points of a per-scrape server series.
fn scrape_points(ss: &crate::server::ServerSeries, v: &[Option<f64>]) -> Vec<(f64, f64)> {
    ss.t_s
        .iter()
        .zip(v)
        .filter_map(|(&t, v)| v.map(|v| (t, v)))
        .collect()
}

/// The server's side: its queue against the client's in-flight count, its caches, its token
/// throughput against the client's, and throughput by batch size.
pub fn server_specs(
    s: &Summary,
    ts: &TimeSeries,
    ss: Option<&crate::server::ServerSeries>,
) -> Vec<Chart> {
    let mut out = Vec::new();
    let client_flight = series(ts, |r| Some(r.in_flight));
    if let (Some(ss), Some(sv)) = (ss, &s.server) {
        let who = crate::server::engine_name(sv);
        let running = scrape_points(ss, &ss.running);
        let waiting = scrape_points(ss, &ss.waiting);
        if !running.is_empty() || !waiting.is_empty() {
            out.push(chart(
                "server_queue",
                format!("{who}: running and waiting requests against the client's in flight"),
                "The server's running (in the batch) and waiting (queued) requests at each /metrics scrape, and the client's requests in flight (time-averaged per bin). In flight above running + waiting is time outside the engine; waiting growing through the run is saturation.",
                WIDE,
                Spec::Lines {
                    x_desc: "time since start (s)".into(),
                    panels: vec![Panel {
                        y_desc: "requests".into(),
                        lines: vec![
                            Line { label: "client in flight".into(), points: client_flight.clone(), color: GRAY, stroke: Stroke::Halo },
                            line("server running", BLUE, running),
                            line("server waiting", RED, waiting),
                        ],
                        area: false,
                    }],
                },
            ));
        }
        let kv = scrape_points(ss, &ss.kv_cache_usage);
        let hit = scrape_points(ss, &ss.prefix_hit_rate);
        if !kv.is_empty() || !hit.is_empty() {
            out.push(chart(
                "server_cache",
                format!("{who}: KV-cache usage and prefix-cache hit rate"),
                "KV-cache usage at each scrape, and the prefix-cache hit rate (hit / queried prompt tokens) over each interval between scrapes, both as fractions.",
                WIDE,
                Spec::Lines {
                    x_desc: "time since start (s)".into(),
                    panels: vec![Panel {
                        y_desc: "fraction".into(),
                        lines: vec![line("KV-cache usage", PURPLE, kv), line("prefix-cache hit rate", GREEN, hit)],
                        area: false,
                    }],
                },
            ));
        }
        let tps = scrape_points(ss, &ss.output_tps);
        if !tps.is_empty() {
            out.push(chart(
                "server_throughput",
                format!("{who}: output tokens/s, server against client"),
                "The server's generated tokens per second between scrapes (its counter's increase) and the client's output tokens per second per bin. The server counts tokens as it makes them; the client as they arrive.",
                WIDE,
                Spec::Lines {
                    x_desc: "time since start (s)".into(),
                    panels: vec![Panel {
                        y_desc: "output tokens/s".into(),
                        lines: vec![line("server", BLUE, tps), line("client", GREEN, series(ts, |r| Some(r.output_tps)))],
                        area: false,
                    }],
                },
            ));
        }
    }
    let (rows, source) = match &s.server {
        Some(sv) => (sv.by_batch.clone(), sv.by_batch_source.clone()),
        None => (
            crate::server::client_by_batch(ts),
            "client in flight".to_string(),
        ),
    };
    if rows.len() >= 2 {
        out.push(chart(
            "throughput_by_batch",
            format!("Total output throughput by batch size ({source})"),
            "Output tokens per second while the batch held each number of requests (SambaNova's view): the server's running count between scrapes when /metrics was scraped, else the client's requests in flight per time bin. Flat at the top means more concurrency buys no more throughput.",
            WIDE,
            Spec::Lines {
                x_desc: format!("batch size ({source})"),
                panels: vec![Panel {
                    y_desc: "output tokens/s".into(),
                    lines: vec![line(
                        "output tokens/s",
                        BLUE,
                        rows.iter().map(|r| (r.batch as f64, r.output_token_throughput)).collect(),
                    )],
                    area: false,
                }],
            },
        ));
    }
    out
}
