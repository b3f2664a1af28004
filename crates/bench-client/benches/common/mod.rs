//! Shared by the client benchmarks: CPU pinning, the target server in a child process pinned to
//! another core, workloads, percentiles.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench_config::client::Api;
use bench_testkit::{End, Reply, TestServer};
use bench_types::{Workload, WorkloadEntry, WorkloadRequest};

/// Pins the calling thread (and the threads it starts later) to `cpu`, when the machine has it.
pub fn pin_to(cpu: usize) -> bool {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if n <= cpu {
        return false;
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// In the server child: serves forever. Returns false when this process is not the child.
pub fn maybe_serve() -> bool {
    let Ok(spec) = std::env::var("BENCH_CLIENT_SERVER") else {
        return false;
    };
    // "port,tokens,ttft_ms,interval_ms"
    let v: Vec<u64> = spec
        .split(',')
        .map(|x| x.parse().expect("server spec"))
        .collect();
    let (port, tokens, ttft, interval) = (
        v[0] as u16,
        v[1] as usize,
        Duration::from_millis(v[2]),
        Duration::from_millis(v[3]),
    );
    let texts: Vec<String> = (0..tokens).map(|i| format!(" tok{i}")).collect();
    let metrics = exposition();
    let _server = TestServer::start_on(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        move |seen| {
            if seen.path == "/metrics" {
                Reply::Body {
                    status: 200,
                    content_type: "text/plain; version=0.0.4",
                    body: metrics.clone(),
                }
            } else {
                Reply::Stream {
                    api: Api::OpenaiChat,
                    tokens: texts.clone(),
                    ttft,
                    interval,
                    usage: Some((16, tokens as u32)),
                    role_chunk: true,
                    end: End::Done,
                    precise: interval < Duration::from_millis(50),
                }
            }
        },
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A /metrics answer the size of a busy vLLM's (~1,000 lines, ~110 KB): gauges, counters and
/// eight histograms with vLLM's bucket counts, for two model names.
fn exposition() -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for model in ["model-a", "model-b"] {
        for g in [
            "num_requests_running",
            "num_requests_waiting",
            "kv_cache_usage_perc",
        ] {
            let _ = writeln!(
                o,
                "# HELP vllm:{g} x\n# TYPE vllm:{g} gauge\nvllm:{g}{{engine=\"0\",model_name=\"{model}\"}} 3.0"
            );
        }
        for c in [
            "prompt_tokens_total",
            "generation_tokens_total",
            "num_preemptions_total",
        ] {
            let _ = writeln!(
                o,
                "# TYPE vllm:{c} counter\nvllm:{c}{{engine=\"0\",model_name=\"{model}\"}} 123456.0"
            );
        }
        for h in [
            "time_to_first_token_seconds",
            "inter_token_latency_seconds",
            "e2e_request_latency_seconds",
            "request_queue_time_seconds",
            "request_prefill_time_seconds",
            "request_decode_time_seconds",
            "request_prompt_tokens",
            "request_generation_tokens",
        ] {
            let _ = writeln!(o, "# HELP vllm:{h} x\n# TYPE vllm:{h} histogram");
            let mut cum = 0;
            for k in 0..=60 {
                cum += k;
                let le = if k == 60 {
                    "+Inf".to_string()
                } else {
                    format!("{:?}", 0.001 * 1.3f64.powi(k))
                };
                let _ = writeln!(
                    o,
                    "vllm:{h}_bucket{{engine=\"0\",le=\"{le}\",model_name=\"{model}\"}} {cum}.0"
                );
            }
            let _ = writeln!(
                o,
                "vllm:{h}_count{{engine=\"0\",model_name=\"{model}\"}} {cum}.0\nvllm:{h}_sum{{engine=\"0\",model_name=\"{model}\"}} 1234.5"
            );
        }
    }
    o
}

/// The server: this binary again, pinned to CPU 0 with taskset (when there are 2+ CPUs).
pub struct Server {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Server {
    pub fn start(tokens: usize, ttft_ms: u64, interval_ms: u64) -> Server {
        let port = bench_testkit::closed_port();
        let exe = std::env::current_exe().expect("exe");
        let two = std::thread::available_parallelism()
            .map(|n| n.get() >= 2)
            .unwrap_or(false);
        let mut cmd = if two {
            let mut c = Command::new("taskset");
            c.arg("-c").arg("0").arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.env(
            "BENCH_CLIENT_SERVER",
            format!("{port},{tokens},{ttft_ms},{interval_ms}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("start the server");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` requests evenly spaced at `rate` per second (constant arrivals), `out` tokens each.
pub fn write_constant(dir: &Path, n: usize, rate: f64, out: u32) {
    let gap = 1000.0 / rate;
    let entries = (0..n)
        .map(|i| WorkloadEntry {
            timestamp: (i as f64 * gap * 1e6).round() / 1e6,
            requests: vec![WorkloadRequest {
                prompt: Some(format!("Benchmark prompt number {i}: tell me a story.")),
                prompt_length: Some(12),
                output_length: Some(out),
                ..Default::default()
            }],
        })
        .collect();
    bench_types::workload::write(
        &dir.join("workload.jsonl"),
        &Workload {
            header: None,
            entries,
        },
    )
    .expect("write workload");
}

/// The p-quantile of `v` as summary.json reports it (bench-types' linear percentile); NaN when
/// empty.
pub fn q(v: &mut [f64], p: f64) -> f64 {
    bench_types::stats::quantile(v, p).unwrap_or(f64::NAN)
}

/// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
pub fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A `--name value` argument.
pub fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}
