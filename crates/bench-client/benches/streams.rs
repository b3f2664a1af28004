//! Concurrent open streams one client process holds, and its memory. The server (a child
//! process on CPU 0) answers every request with a slow stream: first token at once, then one
//! token a second for `--hold-s` seconds; the client (this process, CPU 1) opens `--streams`
//! of them at `--rate` per second, so all are open together at the end of the ramp. The peak
//! number of concurrent streams is computed from the records (overlap of [sent, end]); memory
//! is this process's peak RSS (VmHWM) minus its RSS before the run.
//!
//! `cargo bench -p bench-client --bench streams [-- --streams 10000 --rate 2000 --hold-s 20]`

mod common;

use bench_client::{RunOptions, run};
use bench_testkit::read_records;
use common::*;

fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn main() {
    if maybe_serve() {
        return;
    }
    let nofile = raise_nofile();
    let pinned = pin_to(1);
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a small case as a check
    let quick = !std::env::args().any(|a| a == "--bench");
    let streams: usize = arg("--streams")
        .map(|s| s.parse().expect("streams"))
        .unwrap_or(if quick { 300 } else { 10_000 });
    let rate: f64 = arg("--rate")
        .map(|s| s.parse().expect("rate"))
        .unwrap_or(2000.0);
    let hold_s: u64 = arg("--hold-s")
        .map(|s| s.parse().expect("hold"))
        .unwrap_or(if quick { 1 } else { 20 });
    let server = Server::start(hold_s as usize, 0, 1000);
    println!(
        "streams: {streams} streams at {rate} req/s, each open ~{hold_s} s; client pinned to CPU 1: {pinned}; open-file limit {nofile}; server pid {}",
        server.pid()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write_constant(dir.path(), streams, rate, hold_s as u32);
    let mut cfg = bench_config::Config::default();
    cfg.metrics.enabled = false;
    cfg.client.progress = false;
    cfg.client.timeout_s = (hold_s + 60) as f64;
    let rss0 = status_kb("self", "VmRSS").unwrap_or(0);
    let t0 = std::time::Instant::now();
    let opts = RunOptions {
        base_url: server.url.clone(),
        quiet: true,
        ..Default::default()
    };
    let out = run(&cfg, dir.path(), &opts).expect("client run");
    let took = t0.elapsed();
    let hwm = status_kb("self", "VmHWM").unwrap_or(0);
    let (rows, _) = read_records(&dir.path().join("requests.parquet")).expect("records");
    let ok = rows.iter().filter(|r| r.status == "ok").count();
    // Peak concurrency from the records: +1 at sent, -1 at end.
    let mut ev: Vec<(i64, i32)> = rows
        .iter()
        .filter_map(|r| Some([(r.sent_ns?, 1), (r.end_ns?, -1)]))
        .flatten()
        .collect();
    ev.sort();
    let (mut cur, mut peak) = (0i32, 0i32);
    for (_, d) in ev {
        cur += d;
        peak = peak.max(cur);
    }
    let mut lag: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.sent_ns.map(|s| (s - r.scheduled_ns) as f64 / 1e6))
        .collect();
    let chunks: usize = rows.iter().map(|r| r.chunk_ns.len()).sum();
    // Dispatch lag by second of the schedule.
    let secs = (streams as f64 / rate).ceil() as i64;
    let per_s: Vec<String> = (0..secs)
        .map(|s| {
            let mut v: Vec<f64> = rows
                .iter()
                .filter(|r| r.scheduled_ns / 1_000_000_000 == s)
                .filter_map(|r| r.sent_ns.map(|x| (x - r.scheduled_ns) as f64 / 1e6))
                .collect();
            format!("{:.2}", q(&mut v, 0.99))
        })
        .collect();
    println!(
        "dispatch lag p99 by second of the ramp (ms): {}",
        per_s.join(" ")
    );
    println!(
        "ok {ok} of {streams}; statuses {:?}; run took {:.1} s",
        out.by_status,
        took.as_secs_f64()
    );
    let f = |v: Option<u64>| v.map_or(f64::NAN, |w| w as f64 / 1e6);
    println!(
        "dispatch thread: {:.0} ms on a CPU, {:.0} ms waiting for one; writer thread {:.0} ms",
        f(out.cpu_busy_ns),
        f(out.cpu_wait_ns),
        f(out.writer_cpu_ns)
    );
    println!("peak concurrent open streams: {peak}");
    println!(
        "memory: RSS before {:.1} MiB, peak {:.1} MiB -> {:.1} KiB per open stream",
        rss0 as f64 / 1024.0,
        hwm as f64 / 1024.0,
        (hwm.saturating_sub(rss0)) as f64 / peak.max(1) as f64
    );
    println!(
        "dispatch lag p50 {:.3} ms, p99 {:.3} ms; {chunks} chunks recorded",
        q(&mut lag.clone(), 0.5),
        q(&mut lag, 0.99)
    );
}
