//! Capacity search: in each cell, the highest load at which at least `attainment` of the
//! requests meet every `analysis.slo.*`. The load doubles from `low` until a probe fails (or
//! `high` passes), then the bracket is bisected until (fail - pass) / pass < `resolution` (for
//! an integer key, until the two are adjacent). Every probe is an ordinary run; capacity.json
//! holds the result and the probe table.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use bench_types::stage::exit;
use serde_json::{Value, json};

use super::file::{Experiment, Search};
use super::plan::{Cell, Resolver, load_value, probe_dir};
use super::{Current, RunRecord, RunStatus, outputs, record, run_one};
use crate::driver::Failure;

/// What a search needs.
pub struct Ctx<'a> {
    pub exe: &'a Path,
    pub e: &'a Experiment,
    pub s: &'a Search,
    pub resolver: &'a Resolver,
    pub current: &'a Current,
    pub got: &'a Arc<AtomicI32>,
    pub state_path: &'a Path,
    /// `--resume`: the runs of the earlier experiment.json.
    pub previous: &'a [RunRecord],
}

/// One probe's outcome.
struct Probe {
    load: f64,
    pass: bool,
    rec: RunRecord,
}

fn headline(r: &RunRecord, k: &str) -> Option<f64> {
    r.headline.get(k).and_then(Value::as_f64)
}

/// Probes measure the steady state: unless the experiment sets `analysis.window`, an open-loop
/// probe leaves out the requests of the first tenth of its duration (the queue filling up).
fn warmup_window(ctx: &Ctx<'_>, cell: &Cell) -> Vec<String> {
    let s = ctx.s;
    let p = ctx
        .resolver
        .run(cell, &s.run, probe_dir(ctx.e, cell, s, s.low), &cell.id, 1);
    let Ok(p) = p else { return Vec::new() };
    let w = &p.tree["analysis"]["window"];
    let set = [
        "skip_first_s",
        "skip_last_s",
        "skip_first_requests",
        "skip_last_requests",
    ]
    .iter()
    .any(|k| w[*k].as_f64().is_some_and(|x| x > 0.0));
    match (
        set,
        p.tree["workload"]["type"].as_str(),
        p.tree["workload"]["duration_ms"].as_f64(),
    ) {
        (false, Some(t), Some(ms)) if t != "concurrency" => {
            vec![format!("analysis.window.skip_first_s={}", ms / 10_000.0)]
        }
        _ => Vec::new(),
    }
}

/// Runs one probe at `load`, with the cell's probe overrides `base` (the default window, then
/// the search's `run:`).
fn probe(
    ctx: &Ctx<'_>,
    cell: &Cell,
    base: &[String],
    load: f64,
    integer: bool,
    all: &mut Vec<RunRecord>,
) -> Result<Probe, Failure> {
    let s = ctx.s;
    let value = load_value(load, integer);
    let mut extra = base.to_vec();
    extra.push(format!("{}={value}", s.key));
    let load: f64 = value.parse().unwrap_or(load);
    let mut p = ctx
        .resolver
        .run(
            cell,
            &extra,
            probe_dir(ctx.e, cell, s, load),
            &format!("{}/{value}", cell.id),
            1,
        )
        .map_err(|err| {
            Failure::new(
                exit::BAD_INPUT,
                format!("cell {} at {}={value}: {err}", cell.id, s.label),
            )
        })?;
    // the probe's parameters are the cell's and the load (not the probes' shared `run:`)
    p.params
        .retain(|(k, _)| *k == s.key || cell.params.iter().any(|(c, _)| c == k));
    let fresh = record(ctx.e, &p);
    // --resume: a probe finished before with the same config is not run again
    let done = ctx.previous.iter().find(|r| {
        r.run_dir == fresh.run_dir
            && r.config_hash == fresh.config_hash
            && matches!(r.status, RunStatus::Ok | RunStatus::Failed)
            && p.run_dir.join(bench_types::files::SUMMARY).is_file()
    });
    let rec = match done {
        Some(r) => {
            eprintln!("{} {}={value}: done before, kept", cell.id, s.label);
            r.clone()
        }
        None => run_one(ctx.exe, ctx.e, &p, ctx.current, fresh, super::Reuse::None)?,
    };
    let attainment = headline(&rec, "slo.attainment");
    let pass = rec.status == RunStatus::Ok && attainment.is_some_and(|a| a >= s.attainment);
    eprintln!(
        "{} {}={value}: {} (attainment {}, {} req/s)",
        cell.id,
        s.label,
        if pass { "pass" } else { "fail" },
        bench_analysis::format::num(attainment),
        bench_analysis::format::num(headline(&rec, "request_throughput")),
    );
    all.push(rec.clone());
    outputs::write_state(ctx.e, all, ctx.state_path)?;
    Ok(Probe { load, pass, rec })
}

fn probe_json(p: &Probe) -> Value {
    json!({
        "load": p.load,
        "pass": p.pass,
        "status": p.rec.status.name(),
        "attainment": headline(&p.rec, "slo.attainment"),
        "request_throughput": headline(&p.rec, "request_throughput"),
        "output_token_throughput": headline(&p.rec, "output_token_throughput"),
        "ttft_ms_p99": headline(&p.rec, "ttft_ms.p99"),
        "run_dir": p.rec.run_dir,
        "error": p.rec.error,
    })
}

/// The search in one cell; returns its capacity.json entry.
fn search_cell(ctx: &Ctx<'_>, cell: &Cell, all: &mut Vec<RunRecord>) -> Result<Value, Failure> {
    let s = ctx.s;
    // an integer key (a concurrency) is searched over whole numbers
    let at_low = ctx
        .resolver
        .run(
            cell,
            &[format!("{}={}", s.key, s.low)],
            probe_dir(ctx.e, cell, s, s.low),
            &cell.id,
            1,
        )
        .ok();
    let integer = at_low
        .as_ref()
        .and_then(|p| bench_analysis::csv::lookup(&p.tree, &s.key))
        .is_some_and(Value::is_u64);
    let mut base = warmup_window(ctx, cell);
    base.extend(s.run.iter().cloned());
    let stopped = || ctx.got.load(Ordering::SeqCst) != 0;
    let mut probes: Vec<Probe> = Vec::new();
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    let mut load = s.low;
    // bracket: double until a probe fails or the high end passes
    while !stopped() {
        let p = probe(ctx, cell, &base, load, integer, all)?;
        let ok = p.pass;
        let l = p.load;
        probes.push(p);
        if !ok {
            fail = Some(l);
            break;
        }
        pass = Some(l);
        if l >= s.high {
            break;
        }
        load = (l * 2.0).min(s.high);
    }
    // bisect
    while let (Some(p), Some(f)) = (pass, fail) {
        if stopped() || (f - p) / p < s.resolution {
            break;
        }
        let mid = if integer {
            ((p + f) / 2.0).floor()
        } else {
            (p + f) / 2.0
        };
        if mid <= p || mid >= f {
            break;
        }
        let r = probe(ctx, cell, &base, mid, integer, all)?;
        if r.pass {
            pass = Some(r.load);
        } else {
            fail = Some(r.load);
        }
        probes.push(r);
    }
    probes.sort_by(|a, b| a.load.total_cmp(&b.load));
    let at = |load: Option<f64>| {
        load.and_then(|l| probes.iter().find(|p| p.load == l))
            .map(probe_json)
    };
    let best = probes
        .iter()
        .filter_map(|p| Some((headline(&p.rec, "output_token_throughput")?, p)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Ok(json!({
        "highest_pass": at(pass),
        "lowest_fail": at(fail),
        "max_output_token_throughput": best.map(|(t, p)| json!({"value": t, "load": p.load})),
        "probes": probes.iter().map(probe_json).collect::<Vec<_>>(),
        "complete": !stopped(),
    }))
}

/// Searches every cell; writes capacity.json, experiment.json and cells.csv.
pub fn run(ctx: &Ctx<'_>, cells: &[Cell], t0: Instant) -> Result<i32, Failure> {
    let mut all: Vec<RunRecord> = Vec::new();
    let mut result = serde_json::Map::new();
    let path = ctx.e.exp_dir.join("capacity.json");
    for cell in cells {
        if ctx.got.load(Ordering::SeqCst) != 0 {
            break;
        }
        let v = search_cell(ctx, cell, &mut all)?;
        result.insert(cell.id.clone(), v);
        let doc = json!({
            "schema": "bench.capacity/1",
            "key": ctx.s.key,
            "low": ctx.s.low,
            "high": ctx.s.high,
            "resolution": ctx.s.resolution,
            "attainment": ctx.s.attainment,
            "cells": result,
        });
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        )
        .map_err(|err| Failure::new(exit::FAILURE, format!("{}: {err}", path.display())))?;
    }
    outputs::write_state(ctx.e, &all, ctx.state_path)?;
    outputs::write_cells_csv(ctx.e, &all)?;
    outputs::write_report(ctx.e, &all);
    print!("{}", outputs::table(ctx.e, &all, t0.elapsed()));
    for (cell, v) in &result {
        let load = |k: &str| {
            v[k]["load"]
                .as_f64()
                .map_or("none".to_string(), |x| bench_analysis::format::num(Some(x)))
        };
        println!(
            "capacity {cell}: {} = {} passes, {} fails (attainment >= {} of analysis.slo); {} req/s, {} output tokens/s at the passing load",
            ctx.s.label,
            load("highest_pass"),
            load("lowest_fail"),
            ctx.s.attainment,
            bench_analysis::format::num(v["highest_pass"]["request_throughput"].as_f64()),
            bench_analysis::format::num(v["highest_pass"]["output_token_throughput"].as_f64()),
        );
    }
    let interrupted = ctx.got.load(Ordering::SeqCst);
    if interrupted != 0 {
        return Ok(128 + interrupted);
    }
    Ok(exit::OK)
}
