//! Shared helpers of the client's integration tests: run directories with a workload, a config
//! pointing at a test server, and the records read back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bench_client::testkit::{RecordRow, read_records};
use bench_client::{ClientOutcome, RunOptions};
use bench_config::Config;
use bench_types::{Workload, WorkloadEntry, WorkloadHeader, WorkloadRequest};

/// A temporary run directory.
pub fn run_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A plain request with `prompt` and `output_length`.
pub fn req(prompt: &str, out: u32) -> WorkloadRequest {
    WorkloadRequest {
        prompt: Some(prompt.into()),
        prompt_length: Some(3),
        output_length: Some(out),
        ..Default::default()
    }
}

/// Writes `entries` (ms, requests) as workload.jsonl, with `header` when given.
pub fn write_workload(
    dir: &Path,
    header: Option<WorkloadHeader>,
    entries: Vec<(f64, Vec<WorkloadRequest>)>,
) -> PathBuf {
    let wl = Workload {
        header,
        entries: entries
            .into_iter()
            .map(|(t, r)| WorkloadEntry {
                timestamp: t,
                requests: r,
            })
            .collect(),
    };
    let p = dir.join("workload.jsonl");
    bench_types::workload::write(&p, &wl).expect("write workload");
    p
}

/// `n` requests `gap_ms` apart.
pub fn evenly(n: usize, gap_ms: f64, out: u32) -> Vec<(f64, Vec<WorkloadRequest>)> {
    (0..n)
        .map(|i| {
            (
                i as f64 * gap_ms,
                vec![req(&format!("prompt number {i}"), out)],
            )
        })
        .collect()
}

/// The default config with progress off and short timeouts.
pub fn config() -> Config {
    let mut c = Config::default();
    c.client.progress = false;
    c.client.timeout_s = 5.0;
    c.client.grace_s = 0.5;
    c.client.flush_interval_s = 0.2;
    c
}

/// Runs the client against `url`.
pub fn run(cfg: &Config, dir: &Path, url: &str) -> ClientOutcome {
    let opts = RunOptions {
        base_url: url.to_string(),
        quiet: true,
        stop: None,
        handle_signals: false,
    };
    bench_client::run(cfg, dir, &opts).expect("client run")
}

/// requests.parquet of `dir`: (workload rows sorted by id, warmup rows, metadata).
pub fn records(dir: &Path) -> (Vec<RecordRow>, Vec<RecordRow>, Vec<(String, String)>) {
    let (rows, kv) =
        read_records(&dir.join("requests.parquet")).expect("readable requests.parquet");
    let (warm, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.warmup);
    (rows, warm, kv)
}

/// A metadata value.
pub fn meta<'a>(kv: &'a [(String, String)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The q-quantile (nearest rank) of `v`.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Per thread of this process: time spent waiting for a CPU so far (Linux schedstat), ns.
pub fn thread_cpu_waits() -> std::collections::HashMap<String, u64> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Default::default();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let s = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                s.split_whitespace().nth(1)?.parse().ok()?,
            ))
        })
        .collect()
}

/// The largest CPU wait any thread of this process had since `before`, ns.
pub fn max_thread_wait_since(before: &std::collections::HashMap<String, u64>) -> u64 {
    thread_cpu_waits()
        .into_iter()
        .map(|(tid, w)| w.saturating_sub(before.get(&tid).copied().unwrap_or(0)))
        .max()
        .unwrap_or(0)
}

static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held for the whole of a test whose figures depend on the CPU: tests of one binary run on
/// parallel threads, and on a 2-core machine a neighbour test's client and server threads
/// are enough contention to move sub-millisecond timings.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a timing measurement up to 5 times: `attempt` returns (passed, report). Sub-millisecond figures on a shared 2-core VM see rare
/// single outliers of a few ms (the test's own server threads, other processes, hypervisor
/// steal, none of which the client controls), so one passing attempt of five passes; a client
/// that really misses its timings fails all five, and the test fails with every attempt's
/// report, each with the CPU wait of this process's busiest thread and the host's steal time.
/// The caller holds [`serial`].
pub fn timing_attempts(mut attempt: impl FnMut() -> (bool, String)) {
    let mut reports = Vec::new();
    for i in 1..=5 {
        let w0 = thread_cpu_waits();
        let steal0 = steal_ticks();
        let t0 = std::time::Instant::now();
        let (ok, report) = attempt();
        let wait_share = max_thread_wait_since(&w0) as f64 / t0.elapsed().as_nanos() as f64;
        let steal_ms = steal_ticks().saturating_sub(steal0) * 10;
        let line = format!(
            "attempt {i}: {report} (busiest thread waited for a CPU {:.1}% of the attempt; host steal {steal_ms} ms)",
            wait_share * 100.0
        );
        eprintln!("{line}");
        if ok {
            return;
        }
        reports.push(line);
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("every attempt missed its timings:\n{}", reports.join("\n"));
}

/// The host's steal time over all CPUs so far, in 10 ms ticks (0 where /proc/stat is missing).
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next()?.split_whitespace().nth(8)?.parse().ok())
        .unwrap_or(0)
}
