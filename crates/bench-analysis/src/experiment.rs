//! An experiment's own report (`bench sweep`): its runs side by side. Latency and throughput
//! against the load, one line per value of the other axes; the Pareto frontier of output
//! tokens/s per user against total output tokens/s (vLLM's `plot_pareto`); for a capacity
//! search, attainment and p99 TTFT against the load with the target; the run table with links
//! to each run's report, and the failed runs with their errors. Figures over repeats are means.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use serde_json::Value;

use crate::AnalysisError;
use crate::csv::lookup;
use crate::format::num;
use crate::plots::{self, Chart, Line, Panel, Spec, Stroke, chart};
use crate::report::{CSS, esc, figure};

/// One run of the experiment.
#[derive(Debug, Clone)]
pub struct ExpRun {
    /// Cell id.
    pub cell: String,
    /// The cell's values, key by key.
    pub params: Vec<(String, Value)>,
    /// Repeat number (1 for a search probe).
    pub repeat: u32,
    /// Its directory relative to the experiment's.
    pub rel_dir: String,
    /// `ok`, `failed`, `error`, ...
    pub status: String,
    /// Its error line.
    pub error: Option<String>,
    /// Its summary.json, when it has one.
    pub summary: Option<Value>,
}

/// What the report shows.
#[derive(Debug, Clone)]
pub struct ExpInput {
    /// Experiment name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its directory (the report, plots/ go there).
    pub exp_dir: PathBuf,
    /// The load key the x axes use (None: no load axis, no charts against load).
    pub load_key: Option<String>,
    /// A capacity search's target attainment.
    pub search_attainment: Option<f64>,
    /// The runs.
    pub runs: Vec<ExpRun>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const WIDE: (u32, u32) = (960, 440);

fn f(s: &Value, path: &str) -> Option<f64> {
    lookup(s, path).and_then(Value::as_f64)
}

/// The load of a run (its value of the load key).
fn load_of(r: &ExpRun, key: &str) -> Option<f64> {
    r.params
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_f64())
}

/// The other axes' values: the line a run belongs to.
fn group_of(r: &ExpRun, key: &str) -> String {
    let g: Vec<String> = r
        .params
        .iter()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| {
            let short = k.rsplit('.').next().unwrap_or(k);
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{short}={v}")
        })
        .collect();
    if g.is_empty() {
        "all".into()
    } else {
        g.join(",")
    }
}

/// Per group, per load: the mean of `path` over the runs with a summary.
fn series(input: &ExpInput, key: &str, path: &str) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut acc: BTreeMap<String, BTreeMap<u64, (f64, f64, u32)>> = BTreeMap::new();
    for r in &input.runs {
        let (Some(s), Some(load)) = (&r.summary, load_of(r, key)) else {
            continue;
        };
        let Some(v) = f(s, path) else { continue };
        let e = acc
            .entry(group_of(r, key))
            .or_default()
            .entry(load.to_bits())
            .or_insert((load, 0.0, 0));
        e.1 += v;
        e.2 += 1;
    }
    acc.into_iter()
        .map(|(g, m)| {
            let mut pts: Vec<(f64, f64)> = m
                .into_values()
                .map(|(l, sum, n)| (l, sum / n as f64))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (g, pts)
        })
        .collect()
}

fn panel(input: &ExpInput, key: &str, y_desc: &str, paths: &[(&str, Stroke)]) -> Panel {
    let mut lines = Vec::new();
    for (pi, (path, stroke)) in paths.iter().enumerate() {
        for (gi, (g, pts)) in series(input, key, path).into_iter().enumerate() {
            let label = if paths.len() > 1 {
                format!("{g} {}", path.rsplit('.').next().unwrap_or(path))
            } else {
                g
            };
            let _ = pi;
            lines.push(Line {
                label,
                points: pts,
                color: PALETTE[gi % PALETTE.len()],
                stroke: *stroke,
            });
        }
    }
    Panel {
        y_desc: y_desc.into(),
        lines,
        area: false,
    }
}

/// The charts of the experiment (those with data).
pub fn charts(input: &ExpInput) -> Vec<Chart> {
    let mut out = Vec::new();
    if let Some(key) = input.load_key.as_deref() {
        let x_desc = key.rsplit('.').next().unwrap_or(key).to_string();
        let has = |path: &str| series(input, key, path).values().any(|p| p.len() >= 2);
        if has("ttft_ms.p50") {
            let lat = |label: &str, base: &str| {
                panel(
                    input,
                    key,
                    label,
                    &[
                        (&format!("{base}.p50"), Stroke::Solid),
                        (&format!("{base}.p99"), Stroke::Dashed),
                    ],
                )
            };
            out.push(chart(
                "latency_vs_load",
                format!("Latency against {x_desc}"),
                "p50 (solid) and p99 (dashed) of TTFT, TPOT, ITL and E2EL, one line per value of the other axes (mean over repeats).",
                (960, 1100),
                Spec::Lines {
                    x_desc: x_desc.clone(),
                    panels: vec![
                        lat("TTFT (ms)", "ttft_ms"),
                        lat("TPOT (ms)", "tpot_ms"),
                        lat("ITL (ms)", "itl_ms"),
                        lat("E2EL (ms)", "e2el_ms"),
                    ],
                },
            ));
            out.push(chart(
                "throughput_vs_load",
                format!("Throughput against {x_desc}"),
                "Requests per second and output tokens per second, one line per value of the other axes (mean over repeats).",
                (960, 620),
                Spec::Lines {
                    x_desc: x_desc.clone(),
                    panels: vec![
                        panel(input, key, "requests/s", &[("request_throughput", Stroke::Solid)]),
                        panel(input, key, "output tokens/s", &[("output_token_throughput", Stroke::Solid)]),
                    ],
                },
            ));
        }
        if let Some(target) = input.search_attainment
            && has("slo.attainment")
        {
            let mut att = panel(
                input,
                key,
                "SLO attainment",
                &[("slo.attainment", Stroke::Solid)],
            );
            let xs: Vec<f64> = input.runs.iter().filter_map(|r| load_of(r, key)).collect();
            if let (Some(lo), Some(hi)) = (
                xs.iter().copied().reduce(f64::min),
                xs.iter().copied().reduce(f64::max),
            ) {
                att.lines.push(Line {
                    label: format!("target {target}"),
                    points: vec![(lo, target), (hi, target)],
                    color: RGBColor(110, 110, 110),
                    stroke: Stroke::Dashed,
                });
            }
            out.push(chart(
                "capacity_search",
                format!("Capacity search on {x_desc}"),
                "Every probe: the share of requests meeting every SLO (the dashed line is the target) and p99 TTFT, against the load.",
                (960, 620),
                Spec::Lines {
                    x_desc,
                    panels: vec![
                        att,
                        panel(input, key, "TTFT p99 (ms)", &[("ttft_ms.p99", Stroke::Solid)]),
                    ],
                },
            ));
        }
    }
    // Pareto: output tokens/s per user (median per request) against total output tokens/s
    let pts: Vec<(f64, f64)> = input
        .runs
        .iter()
        .filter_map(|r| {
            let s = r.summary.as_ref()?;
            Some((
                f(s, "output_token_throughput")?,
                f(s, "request_output_throughput.p50")?,
            ))
        })
        .collect();
    if pts.len() >= 2 {
        let mut sorted = pts.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
        // the frontier: no other run has both more total and more per-user throughput
        let mut frontier = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for p in sorted {
            if p.1 > best {
                frontier.push(p);
                best = p.1;
            }
        }
        frontier.reverse();
        out.push(chart(
            "pareto",
            "Output tokens/s per user against total output tokens/s".into(),
            "One dot per run: the median request's output tokens/s (what one user sees) against the run's total output tokens/s (what the server delivers); the line joins the runs no other run beats on both (vLLM's Pareto frontier).",
            WIDE,
            Spec::Scatter {
                x_desc: "total output tokens/s".into(),
                y_desc: "output tokens/s per user (p50)".into(),
                points: pts,
                median: frontier,
            },
        ));
    }
    out
}

/// Writes `<exp_dir>/plots/*.svg|png` and `<exp_dir>/report.html`; returns the files written,
/// relative to the experiment directory.
pub fn write(input: &ExpInput) -> Result<Vec<String>, AnalysisError> {
    let mut charts = charts(input);
    let dir = input.exp_dir.join("plots");
    let io = |p: &Path, e: std::io::Error| AnalysisError::Other(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut files = Vec::new();
    for c in &mut charts {
        plots::render_svg(c)?;
        let svg = dir.join(format!("{}.svg", c.name));
        std::fs::write(&svg, &c.svg).map_err(|e| io(&svg, e))?;
        plots::write_png(c, &dir.join(format!("{}.png", c.name)))?;
        files.push(format!("plots/{}.svg", c.name));
        files.push(format!("plots/{}.png", c.name));
    }
    let html = html(input, &charts);
    let path = input.exp_dir.join("report.html");
    std::fs::write(&path, html).map_err(|e| io(&path, e))?;
    files.push("report.html".into());
    Ok(files)
}

fn html(input: &ExpInput, charts: &[Chart]) -> String {
    let mut o = String::with_capacity(1 << 18);
    let title = format!("bench experiment: {}", input.name);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{t}</title><style>{CSS}</style></head><body><main><h1>{t}</h1>"#,
        t = esc(&title)
    );
    let ok = input.runs.iter().filter(|r| r.status == "ok").count();
    let _ = write!(
        o,
        r#"<div class="sub">{} · {} runs: {ok} ok, {} not</div>"#,
        esc(&input.description),
        input.runs.len(),
        input.runs.len() - ok
    );
    let failed: Vec<&ExpRun> = input.runs.iter().filter(|r| r.status != "ok").collect();
    if !failed.is_empty() {
        o.push_str(r#"<div class="banner bad"><b>Runs that did not succeed</b><ul>"#);
        for r in failed {
            let _ = write!(
                o,
                "<li>{} r{}: {}{}</li>",
                esc(&r.cell),
                r.repeat,
                esc(&r.status),
                r.error
                    .as_deref()
                    .map(|e| format!(": {}", esc(e)))
                    .unwrap_or_default()
            );
        }
        o.push_str("</ul></div>");
    }
    // workload units (analysis.workload_unit other than tokens): a column, and the maximum
    let unit = input.runs.iter().find_map(|r| {
        let u = r.summary.as_ref()?.get("workload_unit")?.as_str()?;
        (u != "tokens" && !u.is_empty()).then(|| u.to_string())
    });
    if let Some(u) = &unit {
        let best = input
            .runs
            .iter()
            .filter(|r| r.status == "ok")
            .filter_map(|r| Some((r, f(r.summary.as_ref()?, "workload_unit_throughput")?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((r, v)) = best {
            let _ = write!(
                o,
                r#"<div class="sub">Maximum workload units/s ({}): <b>{}</b> ({} r{})</div>"#,
                esc(u),
                num(Some(v)),
                esc(&r.cell),
                r.repeat
            );
        }
    }
    for c in charts {
        figure(&mut o, c);
    }
    let units_th = unit
        .as_deref()
        .map(|u| format!("<th>units/s ({})</th>", esc(u)))
        .unwrap_or_default();
    let _ = write!(
        o,
        r#"<h2>Runs</h2><table><tr><th class="l">cell</th><th>rep</th><th class="l">status</th><th>req/s</th><th>output tok/s</th>{units_th}<th>TTFT p50</th><th>TTFT p99</th><th>TPOT p50</th><th>E2EL p50</th><th>attainment</th><th class="l">report</th></tr>"#
    );
    for r in &input.runs {
        let g = |p: &str| num(r.summary.as_ref().and_then(|s| f(s, p)));
        let units_td = if unit.is_some() {
            format!("<td>{}</td>", g("workload_unit_throughput"))
        } else {
            String::new()
        };
        let link = if r.summary.is_some() {
            format!(
                r#"<a href="{}/report.html">{}</a>"#,
                esc(&r.rel_dir),
                esc(&r.rel_dir)
            )
        } else {
            esc(&r.rel_dir)
        };
        let _ = write!(
            o,
            r#"<tr><td class="l">{}</td><td>{}</td><td class="l">{}</td><td>{}</td><td>{}</td>{units_td}<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="l">{link}</td></tr>"#,
            esc(&r.cell),
            r.repeat,
            esc(&r.status),
            g("request_throughput"),
            g("output_token_throughput"),
            g("ttft_ms.p50"),
            g("ttft_ms.p99"),
            g("tpot_ms.p50"),
            g("e2el_ms.p50"),
            g("slo.attainment"),
        );
    }
    o.push_str("</table><footer>Written by bench sweep. Every run is an ordinary run directory; experiment.json and cells.csv hold every figure.</footer></main></body></html>\n");
    o
}
