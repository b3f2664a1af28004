//! Analysis speed on 1,000,000 request records (release: `cargo bench -p bench-analysis --bench
//! summary`).
//!
//! Writes two requests.parquet files in a temporary directory with the client's schema and
//! settings (zstd, delta-encoded times, 50,000-row row groups), then times, on each:
//! - summary: read + per-request metrics + every aggregate + time series (`compute`);
//! - tables: summary.json's CSV companions (requests.csv with 1M lines, timeseries, ...);
//! - report: plots (SVG + PNG) and report.html.
//!
//! Files: (a) no chunk lists (no pooled ITL), (b) 50 chunks per request (50M ITL values).
//! Set BENCH_ANALYSIS_ROWS to change the row count, BENCH_ANALYSIS_REPS the repetitions.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use bench_config::AnalysisConfig;
use support::{MS, Row, RowsWriter};

const BATCH: usize = 50_000;

fn row(k: usize, chunks: usize) -> Row {
    let k64 = k as i64;
    let scheduled = k64 * MS / 2; // 2,000 requests/s
    let sent = scheduled + 20_000 + (k64 * 7919) % 300_000;
    let ttft = 40 * MS + (k64 * 104_729) % (160 * MS);
    let first = sent + ttft;
    let mut times = Vec::with_capacity(chunks);
    let mut t = first;
    for j in 0..chunks as i64 {
        times.push(t);
        t += 15 * MS + ((k64 + j) * 48_271) % (10 * MS);
    }
    let end = times.last().copied().unwrap_or(first + 400 * MS) + MS;
    let status = if k % 100 == 37 { "http_error" } else { "ok" };
    let ok = status == "ok";
    let out = if chunks > 0 {
        chunks as u32 * 2
    } else {
        100 + (k % 50) as u32
    };
    Row {
        request_id: k as u64,
        session_id: k.is_multiple_of(10).then_some(k as u64 / 40),
        turn: k.is_multiple_of(10).then_some((k / 10 % 4) as u32),
        status,
        http_status: Some(if ok { 200 } else { 500 }),
        error: (!ok).then(|| "HTTP 500: internal".into()),
        scheduled,
        ready: Some(scheduled + 10_000),
        sent: Some(sent),
        first_byte: Some(sent + ttft / 2),
        first_token: ok.then_some(first),
        end: Some(if ok { end } else { sent + 3 * MS }),
        chunks: if ok { times } else { Vec::new() },
        prompt_tokens: Some(100 + (k % 1900) as u32),
        output_tokens: ok.then_some(out),
        usage_prompt: ok.then_some(100 + (k % 1900) as u32),
        usage_output: ok.then_some(out),
        max_tokens: Some(out),
        ..Row::default()
    }
}

fn write(path: &Path, n: usize, chunks: usize) {
    let mut w = RowsWriter::create(path, support::open_loop_kv(n as u64));
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let rows: Vec<Row> = (start..end).map(|k| row(k, chunks)).collect();
        w.write(&rows);
        start = end;
    }
    w.finish();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn case(name: &str, dir: &Path, n: usize, chunks: usize, reps: usize) {
    let path = dir.join("requests.parquet");
    let t = Instant::now();
    write(&path, n, chunks);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "{name}: wrote {n} rows x {chunks} chunks ({:.1} MB) in {:.1} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut cfg = AnalysisConfig::default();
    cfg.slo.ttft_ms = Some(150.0);
    cfg.slo.tpot_ms = Some(12.0);
    let (mut summary, mut tables, mut report) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let c = bench_analysis::compute(dir, &cfg).expect("compute");
        summary.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        bench_analysis::write_tables(&c).expect("tables");
        tables.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        bench_analysis::write_visuals(&c).expect("visuals");
        report.push(t.elapsed().as_secs_f64());
        assert_eq!(c.summary.counts.rows, n as u64);
        if chunks > 1 {
            assert_eq!(
                c.summary.itl_ms.count,
                (c.summary.counts.measured) * (chunks as u64 - 1)
            );
        } else {
            assert_eq!(c.summary.itl_ms.count, 0);
        }
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "{name}: summary {:.3} s (runs: {}), tables incl. requests.csv {:.3} s, plots + report {:.3} s (median of {reps})",
        median(&mut summary.clone()),
        fmt(&summary),
        median(&mut tables),
        median(&mut report)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench` passes --bench; under `cargo test --benches` run a small smoke test instead.
    let bench = std::env::args().any(|a| a == "--bench");
    let default_rows = if bench { 1_000_000 } else { 2_000 };
    let n: usize = std::env::var("BENCH_ANALYSIS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_rows);
    let reps: usize = std::env::var("BENCH_ANALYSIS_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 3 } else { 1 });
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("no_itl");
    let b = dir.path().join("itl50");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    case(&format!("{n} requests, no chunk lists"), &a, n, 0, reps);
    std::fs::remove_file(a.join("requests.parquet")).ok();
    case(
        &format!("{n} requests x 50 chunks (pooled ITL)"),
        &b,
        n,
        50,
        reps,
    );
}
