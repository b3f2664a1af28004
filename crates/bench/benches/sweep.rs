//! The cost of a sweep beside its runs: N runs of the default pipeline (dataset, workload,
//! client against the in-process simulated engine's cost-free preset, analysis with plots and
//! report) of S seconds of workload each, no cooldown. Overhead per run = (wall time - N x S) / N:
//! config resolution, process start, dataset and workload, preflight, the last requests'
//! latency, analysis, report. Targets: under 1 s per run; 100 runs of 2 s under 300 s.
//!
//! `cargo bench -p bench --bench sweep [-- --runs 100 --secs 2]`; `cargo test --all-targets`
//! runs 4 runs of 0.5 s as a check.

use std::process::Command;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs: u32 =
        arg("--runs").map_or(if quick { 4 } else { 100 }, |v| v.parse().expect("--runs"));
    let secs: f64 = arg("--secs").map_or(if quick { 0.5 } else { 2.0 }, |v| {
        v.parse().expect("--secs")
    });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("exp.yaml");
    std::fs::write(
        &file,
        format!(
            "name: overhead\nbase: {}\nexp_dir: {}\nrepeats: {runs}\noverrides:\n  sim.preset: zero\n  workload.duration_ms: {}\n  workload.constant.target_qps: 20\n",
            root.join("config.yaml").display(),
            dir.path().join("exp").display(),
            (secs * 1000.0).round()
        ),
    )
    .expect("write the experiment");
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .current_dir(root)
        .args(["sweep", file.to_str().expect("utf-8 path"), "-q"])
        .output()
        .expect("run bench sweep");
    let wall = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "bench sweep failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("exp/experiment.json")).expect("experiment.json"),
    )
    .expect("json");
    let per_run: Vec<f64> = state["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["seconds"].as_f64())
        .collect();
    assert_eq!(per_run.len() as u32, runs);
    let overhead = (wall - runs as f64 * secs) / runs as f64;
    let between = (wall - per_run.iter().sum::<f64>()) / runs as f64;
    println!(
        "sweep: {runs} runs of {secs} s of workload: {wall:.1} s in all; {overhead:.2} s per run beside its workload (the run's own setup, last requests and analysis included); {between:.3} s per run outside the runs (the sweep itself)"
    );
    if quick {
        assert!(
            overhead < 2.0,
            "overhead {overhead:.2} s per run (target < 1 s)"
        );
    }
}
