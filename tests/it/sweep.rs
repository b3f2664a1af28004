//! `bench sweep`: failure isolation, resume after an interrupt, fresh prompts per run, the
//! experiment file checked whole, and experiment.json / cells.csv against the runs' summaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bench_testkit::closed_port;

use crate::common::{json, root, text};

/// Writes `body` (YAML, after a `base:` line pointing at config.yaml and a tiny fast run) as
/// `<dir>/exp.yaml`.
fn experiment(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("exp.yaml");
    let exp_dir = dir.join("exp");
    std::fs::write(
        &p,
        format!(
            "base: {}\nexp_dir: {}\n{body}",
            root().join("config.yaml").display(),
            exp_dir.display()
        ),
    )
    .unwrap();
    p
}

/// Tiny runs: 6 requests at 50 req/s against the cost-free simulated engine, no plots.
const FAST: &str = "  sim.preset: zero
  workload.constant.target_qps: 50
  workload.num_requests: 6
  dataset.random.num_prompts: 20
  dataset.random.input_tokens: 32
  analysis.plots: false
";

fn sweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .env_remove("RUST_LOG")
        .arg("sweep")
        .args(args)
        .output()
        .unwrap()
}

fn summary(run: &Path) -> serde_json::Value {
    json(run, "summary.json")
}

#[test]
fn a_2x2_sweep_with_a_dead_cell_finishes_the_others_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let f = experiment(
        dir.path(),
        &format!(
            "name: two-by-two\noverrides:\n{FAST}axes:\n  - key: client.endpoint\n    values: [sim, \"{dead}\"]\n  - key: dataset.random.output_tokens\n    values: [4, 8]\n"
        ),
    );
    let o = sweep(&[f.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}{}", text(&o.stdout));
    let exp = dir.path().join("exp");
    let state = json(&exp, "experiment.json");
    let runs = state["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "ok", "error", "error"], "{state}");
    for r in &runs[2..] {
        let e = r["error"].as_str().unwrap();
        assert!(e.contains("connection refused") && e.contains(&dead), "{e}");
        assert_eq!(r["exit_code"], 1);
    }
    // the runs that worked are ordinary run directories, with the cell's values
    for (r, out) in runs[..2].iter().zip([4, 8]) {
        let run = exp.join(r["run_dir"].as_str().unwrap());
        let s = summary(&run);
        assert_eq!(s["counts"]["ok"], 6);
        assert_eq!(s["output_tokens"]["max"].as_f64(), Some(out as f64));
        assert_eq!(r["cell"], format!("endpoint=sim,output_tokens={out}"));
    }
    assert_eq!(state["counts"]["ok"], 2);
    assert_eq!(state["counts"]["failed"], 2);
    let csv = std::fs::read_to_string(exp.join("cells.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().next().unwrap().starts_with(
        "cell,repeat,status,run_dir,error,client_endpoint,dataset_random_output_tokens,"
    ));
    let out = text(&o.stdout);
    assert!(out.contains("== bench sweep: two-by-two (4 runs"), "{out}");
    let html = std::fs::read_to_string(exp.join("report.html")).unwrap();
    assert!(html.contains("Runs that did not succeed") && html.contains("connection refused"));
}

#[test]
fn every_problem_of_the_file_and_of_every_cell_is_reported_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let f = experiment(
        dir.path(),
        "name: bad name!\nrepeats: 0\ncolour: blue\noverrides:\n  sim.preset: zero\naxes:\n  - key: workload.constant.target_qps\n    values: []\n  - keys: [dataset.random.input_tokens, dataset.random.output_tokens]\n    values: [[1, 2], [3]]\n",
    );
    let o = sweep(&[f.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "`colour`: unknown key",
        "`name`: `bad name!` must be letters",
        "`repeats`: must be a whole number >= 1",
        "`axes[0].values`: needs a non-empty list",
        "`axes[1].values[1]`: must be a list of 2 values",
    ] {
        assert!(err.contains(want), "missing `{want}` in {err}");
    }
    // a file that reads well but makes an invalid run: caught per cell, nothing run
    let f = experiment(
        dir.path(),
        "name: cells\naxes:\n  - key: workload.constant.target_qps\n    values: [5, -1, \"fast\"]\n",
    );
    let o = sweep(&[f.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cell target_qps=-1: `workload.constant.target_qps`"),
        "{err}"
    );
    assert!(
        err.contains("cell target_qps=fast: `workload.constant.target_qps`"),
        "{err}"
    );
    assert!(!err.contains("cell target_qps=5"), "{err}");
    assert!(
        !dir.path().join("exp").exists(),
        "a refused experiment made its directory"
    );
}

#[test]
fn every_run_gets_fresh_prompts_unless_reuse_prompts() {
    let dir = tempfile::tempdir().unwrap();
    // (two repeats sent the same dataset, with the same seed)
    let same = |reuse: bool| {
        let f = experiment(
            dir.path(),
            &format!("name: fresh\nrepeats: 2\nreuse_prompts: {reuse}\noverrides:\n{FAST}"),
        );
        let o = sweep(&[f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let exp = dir.path().join("exp");
        let state = json(&exp, "experiment.json");
        let runs = state["runs"].as_array().unwrap().clone();
        let read = |r: &serde_json::Value| {
            std::fs::read_to_string(
                exp.join(r["run_dir"].as_str().unwrap())
                    .join("dataset.jsonl"),
            )
            .unwrap()
        };
        let out = (
            read(&runs[0]) == read(&runs[1]),
            runs[0]["seed"] == runs[1]["seed"],
        );
        std::fs::remove_dir_all(&exp).unwrap();
        out
    };
    assert_eq!(
        same(false),
        (false, false),
        "two repeats sent the same prompts"
    );
    assert_eq!(same(true), (true, true), "reuse_prompts: the same prompts");
}

#[test]
fn an_interrupted_sweep_resumes_keeping_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    // three runs of ~1.5 s each
    let body = "name: resumable\nrepeats: 3\noverrides:\n  sim.preset: zero\n  workload.constant.target_qps: 10\n  workload.num_requests: 15\n  dataset.random.num_prompts: 20\n  dataset.random.input_tokens: 32\n  analysis.plots: false\n";
    let f = experiment(dir.path(), body);
    let exp = dir.path().join("exp");
    let child = Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .args(["sweep", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the first run is recorded, then Ctrl-C the sweep
    let t0 = Instant::now();
    loop {
        let done = std::fs::read_to_string(exp.join("experiment.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["counts"]["ok"] == 1);
        if done {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the first run never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--resume"), "{}", text(&o.stderr));
    let state = json(&exp, "experiment.json");
    let statuses: Vec<String> = state["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses[0], "ok");
    assert!(
        statuses[1..]
            .iter()
            .all(|s| s == "interrupted" || s == "pending"),
        "{statuses:?}"
    );
    let first = exp.join(state["runs"][0]["run_dir"].as_str().unwrap());
    let mtime = |p: &Path| {
        std::fs::metadata(p.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = mtime(&first);
    let o = sweep(&[f.to_str().unwrap(), "--resume"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("[1/3] all r1: done before, kept (ok)"),
        "{err}"
    );
    assert_eq!(mtime(&first), before, "a finished run was run again");
    let state = json(&exp, "experiment.json");
    assert_eq!(state["counts"]["ok"], 3, "{state}");
}

#[test]
fn experiment_outputs_agree_with_the_runs_summaries_and_compare_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let f = experiment(
        dir.path(),
        &format!(
            "name: agg\nrepeats: 2\noverrides:\n{FAST}axes:\n  - key: dataset.random.output_tokens\n    values: [4, 12]\n"
        ),
    );
    let o = sweep(&[f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let exp = dir.path().join("exp");
    let state = json(&exp, "experiment.json");
    let runs = state["runs"].as_array().unwrap();
    let mut best = 0.0f64;
    for cell in ["output_tokens=4", "output_tokens=12"] {
        let vals: Vec<f64> = runs
            .iter()
            .filter(|r| r["cell"] == cell)
            .map(|r| {
                summary(&exp.join(r["run_dir"].as_str().unwrap()))["output_token_throughput"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert_eq!(vals.len(), 2);
        let mean = (vals[0] + vals[1]) / 2.0;
        let st = &state["cells"][cell]["stats"]["output_token_throughput"];
        assert!(
            (st["mean"].as_f64().unwrap() - mean).abs() <= 1e-9 * mean,
            "{st}"
        );
        assert_eq!(st["max"].as_f64(), Some(vals[0].max(vals[1])));
        assert_eq!(st["min"].as_f64(), Some(vals[0].min(vals[1])));
        let std = ((vals[0] - mean).powi(2) + (vals[1] - mean).powi(2)) / 2.0;
        assert!((st["std"].as_f64().unwrap() - std.sqrt()).abs() < 1e-9);
        best = best.max(vals[0]).max(vals[1]);
    }
    assert_eq!(
        state["max_output_token_throughput"]["value"].as_f64(),
        Some(best)
    );
    // cells.csv: the run's own summary.csv row after the run's columns
    let csv = std::fs::read_to_string(exp.join("cells.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5);
    let r0 = exp.join(runs[0]["run_dir"].as_str().unwrap());
    let own = std::fs::read_to_string(r0.join("summary.csv")).unwrap();
    assert!(
        rows[1].ends_with(own.lines().nth(1).unwrap()),
        "{}\n{own}",
        rows[1]
    );
    // bench compare takes the experiment directory as its runs
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root())
        .args(["compare", exp.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let table = text(&o.stdout);
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("/r1") || l.contains("/r2"))
            .count(),
        4,
        "{table}"
    );
}

#[test]
fn the_shipped_experiments_are_valid_and_plan_what_their_seeds_describe() {
    let plan = |f: &str| {
        let o = sweep(&[f, "--dry-run"]);
        assert!(o.status.success(), "{f}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let d = plan("config/experiments/dynamo-matrix.yaml");
    assert!(
        d.starts_with("experiment dynamo-matrix: 33 cells x 1 repeats = 33 runs"),
        "{d}"
    );
    assert!(d.contains("  concurrency=1024,input_tokens=1024,output_tokens=8192  (closed loop"));
    let v = plan("config/experiments/vast-max-throughput.yaml");
    assert!(
        v.starts_with("experiment vast-max-throughput: 1 cells x 8 repeats = 8 runs"),
        "{v}"
    );
}

#[test]
fn a_capacity_search_lands_within_its_resolution_of_the_known_capacity() {
    // 4 slots, every engine step 10 ms x sim.time_scale 0.5 = 5 ms, nothing else costs, 10
    // output tokens per request, arrivals evenly spaced: each request holds a slot for 10 steps
    // (50 ms), so the engine completes at most 4 / 0.05 s = 80 req/s. Below that no request
    // waits (TTFT ~ one step); above it the queue grows through the run and TTFT with it.
    const CAPACITY: f64 = 80.0;
    let dir = tempfile::tempdir().unwrap();
    let f = experiment(
        dir.path(),
        "name: capacity
overrides:
  sim.preset: small
  sim.time_scale: 0.5
  sim.max_num_seqs: 4
  sim.step_base_us: 10000
  sim.decode_us_per_seq: 0
  sim.decode_us_per_kv_ktoken: 0
  sim.prefill_us_per_token: 0
  sim.prefix_caching: false
  dataset.random.num_prompts: 400
  dataset.random.input_tokens: 16
  dataset.random.output_tokens: 10
  dataset.random.distribution: fixed
  workload.constant.arrival: fixed
  analysis.slo: {ttft_ms: 50, tpot_ms: null}
  analysis.plots: false
  analysis.report: false
search:
  key: workload.constant.target_qps
  low: 20
  high: 320
  resolution: 0.1
  attainment: 0.9
  run: {duration_ms: 2000}
",
    );
    let o = sweep(&[f.to_str().unwrap()]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}{out}");
    let cap = json(&dir.path().join("exp"), "capacity.json");
    let c = &cap["cells"]["all"];
    let pass = c["highest_pass"]["load"].as_f64().expect("a passing load");
    let fail = c["lowest_fail"]["load"].as_f64().expect("a failing load");
    assert!((fail - pass) / pass < 0.1, "{pass} .. {fail}: {err}");
    // the bracket holds the capacity, give or take 3% of scheduling noise
    assert!(
        pass <= CAPACITY * 1.03 && fail >= CAPACITY * 0.97,
        "pass {pass}, fail {fail}, capacity {CAPACITY}: {err}"
    );
    // every probe is a run with its figures; the table is sorted by load
    let probes = c["probes"].as_array().unwrap();
    let loads: Vec<f64> = probes.iter().map(|p| p["load"].as_f64().unwrap()).collect();
    assert!(loads.windows(2).all(|w| w[0] < w[1]), "{loads:?}");
    assert!(loads.len() >= 5 && loads.len() <= 10, "{loads:?}");
    for p in probes {
        let run = dir.path().join("exp").join(p["run_dir"].as_str().unwrap());
        let s = summary(&run);
        assert_eq!(p["attainment"], s["slo"]["attainment"]);
        // probes measure the steady state: the first tenth of each is left out
        assert!(
            s["counts"]["outside_window"].as_u64().unwrap() > 0,
            "{}",
            s["counts"]
        );
        assert_eq!(
            p["pass"].as_bool(),
            Some(
                s["slo"]["attainment"].as_f64().unwrap() >= 0.9
                    && s["verdict"]["outcome"] != "failed"
            )
        );
    }
    assert!(out.contains("capacity all: target_qps = "), "{out}");
    // the experiment's report: the search chart and the run table, linking every probe
    let exp = dir.path().join("exp");
    for f in [
        "plots/capacity_search.svg",
        "plots/capacity_search.png",
        "plots/pareto.svg",
    ] {
        assert!(exp.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(exp.join("report.html")).unwrap();
    assert_eq!(
        html.matches("/report.html\">").count(),
        probes.len(),
        "one link per probe"
    );
    // --resume runs no probe again and finds the same capacity
    let o = sweep(&[f.to_str().unwrap(), "--resume"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("done before, kept").count(),
        probes.len(),
        "{err}"
    );
    let again = json(&exp, "capacity.json");
    assert_eq!(again["cells"]["all"]["highest_pass"], c["highest_pass"]);
    assert_eq!(again["cells"]["all"]["lowest_fail"], c["lowest_fail"]);
}

#[test]
fn identical_datasets_and_workloads_are_made_once() {
    let dir = tempfile::tempdir().unwrap();
    // reused prompts, and an axis that reaches neither the dataset nor the workload: all four
    // runs have the first one's workload
    let f = experiment(
        dir.path(),
        &format!(
            "name: reuse\nrepeats: 2\nreuse_prompts: true\noverrides:\n{FAST}axes:\n  - key: analysis.bin_s\n    values: [1, 2]\n"
        ),
    );
    let o = sweep(&[f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let exp = dir.path().join("exp");
    let state = json(&exp, "experiment.json");
    let runs = state["runs"].as_array().unwrap();
    let first = runs[0]["run_dir"].as_str().unwrap();
    assert!(runs[0]["reused_from"].is_null());
    let wl = |r: &serde_json::Value| {
        std::fs::read(
            exp.join(r["run_dir"].as_str().unwrap())
                .join("workload.jsonl"),
        )
        .unwrap()
    };
    for r in &runs[1..] {
        assert_eq!(r["reused_from"], first, "{r}");
        assert_eq!(r["status"], "ok");
        assert_eq!(wl(r), wl(&runs[0]));
        // the manifest still says how the workload was made, and the client stage ran here
        let m = json(&exp.join(r["run_dir"].as_str().unwrap()), "manifest.json");
        let stages: Vec<&str> = m["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert!(
            stages.contains(&"workload") && stages.contains(&"client"),
            "{stages:?}"
        );
    }
    // a rate axis with reused prompts: the dataset is shared, each workload made anew
    let f = experiment(
        dir.path(),
        &format!(
            "name: reuse-ds\nreuse_prompts: true\noverrides:\n{FAST}axes:\n  - key: workload.constant.target_qps\n    values: [40, 60]\n"
        ),
    );
    std::fs::remove_dir_all(&exp).unwrap();
    let o = sweep(&[f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let state = json(&exp, "experiment.json");
    let runs = state["runs"].as_array().unwrap();
    assert_eq!(runs[1]["reused_from"], runs[0]["run_dir"]);
    let file = |r: &serde_json::Value, f: &str| {
        std::fs::read(exp.join(r["run_dir"].as_str().unwrap()).join(f)).unwrap()
    };
    assert_eq!(
        file(&runs[0], "dataset.jsonl"),
        file(&runs[1], "dataset.jsonl")
    );
    assert_ne!(
        file(&runs[0], "workload.jsonl"),
        file(&runs[1], "workload.jsonl")
    );
    // with fresh prompts (the default) nothing is shared
    let f = experiment(
        dir.path(),
        &format!("name: fresh2\nrepeats: 2\noverrides:\n{FAST}"),
    );
    std::fs::remove_dir_all(&exp).unwrap();
    let o = sweep(&[f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let state = json(&exp, "experiment.json");
    assert!(state["runs"][1]["reused_from"].is_null());
}

#[test]
fn vast_comfyui_reports_the_maximum_image_units_per_second_of_three_sequential_runs() {
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(root().join("config/experiments/vast-comfyui.yaml")).unwrap();
    let exp_dir = dir.path().join("exp");
    let body = shipped.replace(
        "base: ../../config.yaml",
        &format!(
            "base: {}\nexp_dir: {}",
            root().join("config.yaml").display(),
            exp_dir.display()
        ),
    );
    let file = dir.path().join("vast-comfyui.yaml");
    std::fs::write(&file, body).unwrap();
    let o = sweep(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e = json(&exp_dir, "experiment.json");
    let runs = e["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let units = 512.0 * 512.0 * 20.0 / 1000.0;
    let mut best: f64 = 0.0;
    for r in runs {
        assert_eq!(r["status"], "ok", "{r}");
        let run = exp_dir.join(r["run_dir"].as_str().unwrap());
        let s = summary(&run);
        assert_eq!(s["workload_unit"], "image");
        assert_eq!(
            s["workload_units"].as_f64(),
            Some(units),
            "one 512x512x20 image"
        );
        let d = s["duration_s"].as_f64().unwrap();
        let ups = s["workload_unit_throughput"].as_f64().unwrap();
        assert!(
            (ups - units / d).abs() < 1e-6 * ups,
            "{ups} vs {units} / {d}"
        );
        // the simulated ComfyUI takes 20 ms + 50 ms x 0.262 MP x 20 steps = 282 ms per image
        assert!((0.27..0.45).contains(&d), "one image in {d} s");
        assert_eq!(s["counts"]["warmup"].as_u64(), Some(1), "{}", s["counts"]);
        best = best.max(ups);
    }
    assert_eq!(
        e["max_workload_unit_throughput"]["value"].as_f64(),
        Some(best)
    );
    assert_eq!(e["max_workload_unit_throughput"]["unit"], "image");
    assert_eq!(
        e["cells"]["all"]["max_workload_unit_throughput"].as_f64(),
        Some(best)
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("max workload units/s:") && out.contains("(image; all r"),
        "{out}"
    );
    // the experiment's report: the maximum, and a units/s column with each run's figure
    let html = std::fs::read_to_string(exp_dir.join("report.html")).unwrap();
    assert!(
        html.contains("Maximum workload units/s (image): <b>"),
        "no maximum in the report"
    );
    assert!(html.contains("<th>units/s (image)</th>"));
    assert_eq!(html.matches("<tr><td class=\"l\">all</td>").count(), 3);
}
