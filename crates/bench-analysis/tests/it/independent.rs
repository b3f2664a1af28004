//! The Polars path against an independent recomputation (arrow/parquet crates, full sorts,
//! numpy's percentile formula) on a realistic run, and on any run directory given.

use std::path::Path;

use crate::support::check::verify_run;
use bench_config::Config;

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.analysis.slo.ttft_ms = Some(400.0);
    cfg.analysis.slo.tpot_ms = Some(25.0);
    cfg.analysis.slo.itl_ms = Some(200.0);
    cfg.analysis.slo.e2el_ms = Some(8000.0);
    cfg
}

/// Keeps a copy of the run's outputs in `$BENCH_ANALYSIS_KEEP_DIR` (for looking at the report).
fn keep(dir: &Path) {
    if let Ok(to) = std::env::var("BENCH_ANALYSIS_KEEP_DIR") {
        let to = Path::new(&to);
        std::fs::create_dir_all(to.join("plots")).unwrap();
        for e in walk(dir) {
            let rel = e.strip_prefix(dir).unwrap();
            std::fs::copy(&e, to.join(rel)).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn realistic_run_matches_independent_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let n = 6000;
    let rows = crate::support::realistic_rows(n, 40.0, 7, 0, 0);
    // several row groups, like the client's incremental writes
    let mut w = crate::support::RowsWriter::create(
        &dir.path().join("requests.parquet"),
        crate::support::open_loop_kv(n as u64),
    );
    for part in rows.chunks(1500) {
        w.write(part);
    }
    w.finish();
    bench_analysis::run(&config(), dir.path()).unwrap();
    let c = verify_run(dir.path(), 1e-9);
    assert!(
        c.mismatches.is_empty(),
        "{} of {} figures differ:\n{}",
        c.mismatches.len(),
        c.figures,
        c.mismatches.join("\n")
    );
    assert!(c.figures >= 110, "{}", c.figures);
    assert!(c.measured > 5000 && c.measured < n, "{}", c.measured);
    assert!(c.itl_values > 300_000, "{}", c.itl_values);
    keep(dir.path());
}

#[test]
fn the_check_catches_a_wrong_figure() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_run(
        dir.path(),
        &crate::support::realistic_rows(500, 20.0, 11, 0, 0),
        crate::support::open_loop_kv(500),
    );
    let mut cfg = config();
    cfg.analysis.plots = false;
    cfg.analysis.report = false;
    bench_analysis::run(&cfg, dir.path()).unwrap();
    assert!(verify_run(dir.path(), 1e-9).mismatches.is_empty());
    let path = dir.path().join("summary.json");
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let p99 = s["ttft_ms"]["p99"].as_f64().unwrap();
    s["ttft_ms"]["p99"] = serde_json::json!(p99 * (1.0 + 1e-7));
    s["counts"]["timeout"] = serde_json::json!(s["counts"]["timeout"].as_u64().unwrap() + 1);
    std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
    let c = verify_run(dir.path(), 1e-9);
    assert_eq!(c.mismatches.len(), 2, "{:?}", c.mismatches);
    assert!(
        c.mismatches[0].starts_with("counts.timeout"),
        "{:?}",
        c.mismatches
    );
    assert!(
        c.mismatches[1].starts_with("ttft_ms.p99"),
        "{:?}",
        c.mismatches
    );
}

/// Points the check at any run: `BENCH_VERIFY_RUN=<run_dir> cargo test -p bench-analysis
/// --test independent -- --ignored`. The run's requests.parquet (and manifest.json) are copied to
/// a temporary directory, analysed there with SLOs, and every figure recomputed.
#[test]
#[ignore = "needs BENCH_VERIFY_RUN=<run_dir>"]
fn external_run_matches_independent_recomputation() {
    let src = std::env::var("BENCH_VERIFY_RUN").expect("set BENCH_VERIFY_RUN to a run directory");
    let src = Path::new(&src);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        src.join("requests.parquet"),
        dir.path().join("requests.parquet"),
    )
    .unwrap();
    if src.join("manifest.json").is_file() {
        std::fs::copy(src.join("manifest.json"), dir.path().join("manifest.json")).unwrap();
    }
    bench_analysis::run(&config(), dir.path()).unwrap();
    let c = verify_run(dir.path(), 1e-9);
    assert!(
        c.mismatches.is_empty(),
        "{} of {} figures differ:\n{}",
        c.mismatches.len(),
        c.figures,
        c.mismatches.join("\n")
    );
    eprintln!(
        "{}: {} figures agree ({} measured requests, {} ITL values)",
        src.display(),
        c.figures,
        c.measured,
        c.itl_values
    );
}
