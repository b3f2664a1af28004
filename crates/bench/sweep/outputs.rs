//! What a sweep writes beside its runs: experiment.json (the file as read, every run with its
//! status and headline figures, per-cell aggregates over repeats), cells.csv (one row per run:
//! its parameters and every summary scalar), and the table it prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use bench_types::stage::exit;
use serde_json::{Map, Value, json};

use super::file::{Experiment, show};
use super::{RunRecord, RunStatus};
use crate::driver::Failure;

fn write_atomic(path: &Path, text: &str) -> Result<(), Failure> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", path.display())))
}

/// The runs of an earlier experiment.json (none when absent or unreadable).
pub fn read_runs(path: &Path) -> Vec<RunRecord> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| serde_json::from_value(v.get("runs")?.clone()).ok())
        .unwrap_or_default()
}

/// The id an earlier sweep wrote into experiment.json.
pub fn read_id(path: &Path) -> Option<String> {
    let t = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&t).ok()?;
    v.get("id")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Every numeric leaf of a summary, by dotted path (summary.csv's columns that hold numbers).
fn scalars(v: &Value, out: &mut BTreeMap<String, f64>) {
    for p in bench_analysis::csv::summary_paths(std::slice::from_ref(v)) {
        if let Some(x) = bench_analysis::csv::lookup(v, &p).and_then(Value::as_f64) {
            out.insert(p, x);
        }
    }
}

fn summary_of(e: &Experiment, r: &RunRecord) -> Option<Value> {
    let p = e.exp_dir.join(&r.run_dir).join(bench_types::files::SUMMARY);
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

/// Per cell, over its finished runs: mean, min, max and std (population) of every summary
/// scalar, and the maximum output token throughput (Vast's number).
fn aggregates(e: &Experiment, runs: &[RunRecord]) -> Map<String, Value> {
    let mut cells: Vec<&str> = Vec::new();
    for r in runs {
        if !cells.contains(&r.cell.as_str()) {
            cells.push(&r.cell);
        }
    }
    let mut out = Map::new();
    for c in cells {
        let mut by_key: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut n = 0;
        for r in runs.iter().filter(|r| r.cell == c) {
            if !matches!(r.status, RunStatus::Ok | RunStatus::Failed) {
                continue;
            }
            let Some(s) = summary_of(e, r) else { continue };
            n += 1;
            let mut m = BTreeMap::new();
            scalars(&s, &mut m);
            for (k, x) in m {
                by_key.entry(k).or_default().push(x);
            }
        }
        let mut stats = Map::new();
        for (k, v) in &by_key {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
            stats.insert(
                k.clone(),
                json!({
                    "mean": mean,
                    "min": v.iter().copied().fold(f64::INFINITY, f64::min),
                    "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "std": var.sqrt(),
                }),
            );
        }
        let max_of = |k: &str| {
            by_key
                .get(k)
                .and_then(|v| v.iter().copied().reduce(f64::max))
        };
        out.insert(
            c.to_string(),
            json!({"runs": n, "max_output_token_throughput": max_of("output_token_throughput"),
                   "max_workload_unit_throughput": max_of("workload_unit_throughput"), "stats": stats}),
        );
    }
    out
}

/// The run with the largest headline figure `k`.
fn best_run<'r>(runs: &'r [RunRecord], k: &str) -> Option<(f64, &'r RunRecord)> {
    runs.iter()
        .filter_map(|r| Some((r.headline.get(k)?.as_f64()?, r)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The largest workload units/s, with its unit (None when no run has one).
fn best_units(runs: &[RunRecord]) -> Option<(f64, &RunRecord, &str)> {
    let (t, r) = best_run(runs, "workload_unit_throughput")?;
    let unit = r.headline.get("workload_unit").and_then(Value::as_str);
    Some((t, r, unit.unwrap_or("tokens")))
}

/// Writes experiment.json (atomically: an interrupted sweep leaves the last good state).
pub fn write_state(e: &Experiment, runs: &[RunRecord], path: &Path) -> Result<(), Failure> {
    let best = best_run(runs, "output_token_throughput");
    let v = json!({
        "schema": "bench.experiment/1",
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "tags": e.tags,
        "file": e.path.display().to_string(),
        "experiment": e.raw,
        "runs": runs,
        "cells": aggregates(e, runs),
        "max_output_token_throughput": best.map(|(t, r)| json!({
            "value": t, "cell": r.cell, "repeat": r.repeat, "run_dir": r.run_dir,
        })),
        "max_workload_unit_throughput": best_units(runs).map(|(t, r, unit)| json!({
            "value": t, "unit": unit, "cell": r.cell, "repeat": r.repeat, "run_dir": r.run_dir,
        })),
        "counts": {
            "runs": runs.len(),
            "ok": runs.iter().filter(|r| r.status == RunStatus::Ok).count(),
            "failed": runs.iter().filter(|r| !matches!(r.status, RunStatus::Ok | RunStatus::Pending)).count(),
            "pending": runs.iter().filter(|r| r.status == RunStatus::Pending).count(),
        },
    });
    let text = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    write_atomic(path, &text)
}

/// cells.csv: one row per run: cell, repeat, status, run_dir, error, each axis key, then every
/// summary scalar of the runs (summary.csv's columns).
pub fn write_cells_csv(e: &Experiment, runs: &[RunRecord]) -> Result<(), Failure> {
    let summaries: Vec<Value> = runs
        .iter()
        .map(|r| summary_of(e, r).unwrap_or(Value::Null))
        .collect();
    let present: Vec<Value> = summaries.iter().filter(|v| !v.is_null()).cloned().collect();
    let table = bench_analysis::csv::summary_csv(&present);
    let mut lines = table.lines();
    let header = lines.next().unwrap_or("");
    let mut rows = lines;
    let keys: Vec<String> = e.axes.iter().flat_map(|a| a.keys.clone()).collect();
    let width = header.split(',').filter(|h| !h.is_empty()).count();
    let mut out = String::from("cell,repeat,status,run_dir,error");
    for k in &keys {
        let _ = write!(out, ",{}", k.replace('.', "_"));
    }
    if !header.is_empty() {
        let _ = write!(out, ",{header}");
    }
    out.push('\n');
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (r, s) in runs.iter().zip(&summaries) {
        let _ = write!(
            out,
            "{},{},{},{},{}",
            q(&r.cell),
            r.repeat,
            r.status.name(),
            q(&r.run_dir),
            r.error.as_deref().map(q).unwrap_or_default()
        );
        for k in &keys {
            let _ = write!(
                out,
                ",{}",
                r.params.get(k).map(|v| q(&show(v))).unwrap_or_default()
            );
        }
        if !header.is_empty() {
            match (s.is_null(), rows.clone().next()) {
                (false, Some(row)) => {
                    rows.next();
                    let _ = write!(out, ",{row}");
                }
                _ => {
                    let _ = write!(out, "{}", ",".repeat(width));
                }
            }
        }
        out.push('\n');
    }
    let path = e.exp_dir.join("cells.csv");
    std::fs::write(&path, out)
        .map_err(|err| Failure::new(exit::FAILURE, format!("{}: {err}", path.display())))
}

fn num(v: Option<&Value>) -> String {
    bench_analysis::format::num(v.and_then(Value::as_f64))
}

/// The table printed at the end: one line per run.
pub fn table(e: &Experiment, runs: &[RunRecord], took: Duration) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "== bench sweep: {} ({} runs in {:.1} s) -> {}",
        e.name,
        runs.len(),
        took.as_secs_f64(),
        e.exp_dir.display()
    );
    let w = runs.iter().map(|r| r.cell.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        o,
        "{:<w$} {:>3} {:<12} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "cell", "rep", "status", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50"
    );
    for r in runs {
        let h = &r.headline;
        let st = r.status.name();
        let _ = writeln!(
            o,
            "{:<w$} {:>3} {:<12} {:>9} {:>10} {:>9} {:>9} {:>9}",
            r.cell,
            r.repeat,
            st,
            num(h.get("request_throughput")),
            num(h.get("output_token_throughput")),
            num(h.get("ttft_ms.p50")),
            num(h.get("ttft_ms.p99")),
            num(h.get("tpot_ms.p50")),
        );
    }
    if let Some((t, r, unit)) = best_units(runs).filter(|(_, _, u)| *u != "tokens") {
        let _ = writeln!(
            o,
            "max workload units/s: {} ({unit}; {} r{})",
            bench_analysis::format::num(Some(t)),
            r.cell,
            r.repeat
        );
    }
    if let Some((t, r)) = best_run(runs, "output_token_throughput") {
        let _ = writeln!(
            o,
            "max output tokens/s: {} ({} r{})",
            bench_analysis::format::num(Some(t)),
            r.cell,
            r.repeat
        );
    }
    for r in runs.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            o,
            "{} r{}: {}",
            r.cell,
            r.repeat,
            r.error.as_deref().unwrap_or("")
        );
    }
    o
}

/// `--dry-run`: the cells, the runs and the planned time.
pub fn plan_text(e: &Experiment, planned: &super::plan::Plan) -> String {
    let mut o = String::new();
    if let Some(s) = &e.search {
        let _ = writeln!(
            o,
            "experiment {}: a capacity search in each of {} cells on {} from {} to {} (resolution {}, attainment {}) into {}",
            e.name,
            planned.cells.len(),
            s.key,
            s.low,
            s.high,
            s.resolution,
            s.attainment,
            e.exp_dir.display()
        );
        for c in &planned.cells {
            let _ = writeln!(o, "  {}", c.id);
        }
        let probes =
            ((s.high / s.low).log2().ceil() + 1.0 + (1.0 / s.resolution).log2().ceil()).max(1.0);
        let _ = writeln!(o, "planned: at most about {probes:.0} probe runs per cell");
        return o;
    }
    let plan = &planned.runs;
    let cells = plan.iter().filter(|p| p.repeat == 1).count();
    let run_s: f64 = plan.iter().filter_map(|p| p.planned_s).sum();
    let cool = e.cooldown_s * plan.len().saturating_sub(1) as f64;
    let _ = writeln!(
        o,
        "experiment {}: {cells} cells x {} repeats = {} runs into {}",
        e.name,
        e.repeats,
        plan.len(),
        e.exp_dir.display()
    );
    for p in plan.iter().filter(|p| p.repeat == 1) {
        let _ = writeln!(
            o,
            "  {}  ({})",
            p.cell,
            p.planned_s.map_or(
                "closed loop: until its requests are done".to_string(),
                |s| { format!("{s} s per run") }
            )
        );
    }
    let _ = writeln!(
        o,
        "planned: {run_s:.0} s of workload + {cool:.0} s of cooldown (each run also takes its requests' latency and a second or two of setup and analysis)"
    );
    o
}

/// The load key the experiment's charts put on their x axes: the search's key, else the first
/// axis on a load key, else the first axis with numbers.
fn load_key(e: &Experiment) -> Option<String> {
    if let Some(s) = &e.search {
        return Some(s.key.clone());
    }
    const LOAD: [&str; 4] = [
        "workload.concurrency.concurrency",
        "workload.constant.target_qps",
        "client.max_concurrency",
        "workload.num_requests",
    ];
    let keys: Vec<(&String, bool)> = e
        .axes
        .iter()
        .flat_map(|a| {
            a.keys
                .iter()
                .enumerate()
                .map(move |(i, k)| (k, a.points.iter().all(|p| p[i].is_number())))
        })
        .collect();
    keys.iter()
        .find(|(k, num)| *num && LOAD.contains(&k.as_str()))
        .or_else(|| keys.iter().find(|(_, num)| *num))
        .map(|(k, _)| (*k).clone())
}

/// The experiment's report.html and plots/; a failure is a warning, never the sweep's end.
pub fn write_report(e: &Experiment, runs: &[RunRecord]) {
    let input = bench_analysis::experiment::ExpInput {
        name: e.name.clone(),
        description: e.description.clone(),
        exp_dir: e.exp_dir.clone(),
        load_key: load_key(e),
        search_attainment: e.search.as_ref().map(|s| s.attainment),
        runs: runs
            .iter()
            .map(|r| bench_analysis::experiment::ExpRun {
                cell: r.cell.clone(),
                params: r
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                repeat: r.repeat,
                rel_dir: r.run_dir.clone(),
                status: r.status.name().to_string(),
                error: r.error.clone(),
                summary: summary_of(e, r),
            })
            .collect(),
    };
    if let Err(err) = bench_analysis::experiment::write(&input) {
        tracing::warn!("sweep: the experiment report: {err}");
    }
}
