//! How many requests and SSE chunks one sim core serves with the `zero` preset.
//!
//! The sim runs on its own thread (`bench-sim`, current-thread runtime); a minimal HTTP/1.1
//! load generator (raw keep-alive TCP connections, closed loop) runs on another thread. When
//! `taskset` is available the two threads are pinned to different CPUs. Figures are per wall
//! second and per second of CPU time of the sim thread (from /proc), so a busy machine shows
//! up as idle time rather than as a lower per-core rate.
//!
//! `cargo bench -p bench-sim --bench throughput` (env SIM_BENCH_SECS, default 4, per scenario)

use std::io::Read;
use std::time::{Duration, Instant};

use bench_config::SimConfig;
use bench_config::sim::SimPreset;
use bench_text::{TextGen, Tokenizer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// CPU seconds (user + system) used so far by the thread named `name` in this process.
fn thread_cpu(name: &str) -> Option<(u32, f64)> {
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let e = e.ok()?;
        let mut comm = String::new();
        std::fs::File::open(e.path().join("comm"))
            .ok()?
            .read_to_string(&mut comm)
            .ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        // Fields 14 and 15 of stat (utime, stime), counted from after the command name.
        let ticks: f64 = f[11].parse::<f64>().ok()? + f[12].parse::<f64>().ok()?;
        let tid = e.file_name().to_str()?.parse().ok()?;
        return Some((tid, ticks / 100.0));
    }
    None
}

fn pin(tid: u32, cpu: u32) -> bool {
    std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Outcome {
    requests: u64,
    events: u64,
    bytes: u64,
}

/// One keep-alive connection sending `req` back to back until `deadline`.
async fn connection(
    addr: std::net::SocketAddr,
    req: std::sync::Arc<Vec<u8>>,
    stream: bool,
    deadline: Instant,
) -> Outcome {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(64 << 10);
    let mut out = Outcome {
        requests: 0,
        events: 0,
        bytes: 0,
    };
    let finder = memchr::memmem::Finder::new(b"data:");
    while Instant::now() < deadline {
        s.write_all(&req).await.expect("write");
        buf.clear();
        let mut body_start = None;
        let mut need = usize::MAX;
        loop {
            let n = s.read_buf(&mut buf).await.expect("read");
            assert!(n > 0, "server closed the connection");
            if body_start.is_none()
                && let Some(h) = memchr::memmem::find(&buf, b"\r\n\r\n")
            {
                body_start = Some(h + 4);
                let head = std::str::from_utf8(&buf[..h]).unwrap().to_ascii_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                if let Some(l) = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                {
                    need = h + 4 + l.trim().parse::<usize>().unwrap();
                }
            }
            let done = if stream {
                buf.ends_with(b"\r\n0\r\n\r\n")
            } else {
                buf.len() >= need
            };
            if done {
                break;
            }
        }
        out.requests += 1;
        out.bytes += buf.len() as u64;
        out.events += finder.find_iter(&buf).count() as u64;
    }
    out
}

fn scenario(
    name: &str,
    addr: std::net::SocketAddr,
    body: &serde_json::Value,
    stream: bool,
    conns: usize,
    secs: f64,
) {
    let payload = body.to_string();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
        payload.len()
    );
    let req = std::sync::Arc::new(req.into_bytes());
    let cpu0 = thread_cpu("bench-sim").map(|c| c.1).unwrap_or(f64::NAN);
    let load0 = thread_cpu("bench-load").map(|c| c.1).unwrap_or(f64::NAN);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(secs);
    let outs: Vec<Outcome> = rt.block_on(async {
        let hs: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(connection(addr, req.clone(), stream, deadline)))
            .collect();
        let mut v = Vec::new();
        for h in hs {
            v.push(h.await.unwrap());
        }
        v
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu("bench-sim").map(|c| c.1).unwrap_or(f64::NAN) - cpu0;
    let load = thread_cpu("bench-load").map(|c| c.1).unwrap_or(f64::NAN) - load0;
    let r: u64 = outs.iter().map(|o| o.requests).sum();
    let e: u64 = outs.iter().map(|o| o.events).sum();
    let b: u64 = outs.iter().map(|o| o.bytes).sum();
    println!(
        "{name:<44} {:>9.0} req/s {:>10.0} events/s {:>7.1} MB/s | sim CPU {:>4.0}% -> {:>8.0} req/s/core {:>9.0} events/s/core | load CPU {:>4.0}%",
        r as f64 / wall,
        e as f64 / wall,
        b as f64 / wall / 1e6,
        100.0 * cpu / wall,
        r as f64 / cpu,
        e as f64 / cpu,
        100.0 * load / wall,
    );
}

fn main() {
    let secs: f64 = std::env::var("SIM_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        // `cargo bench` passes --bench; `cargo test --all-targets` runs short scenarios
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            4.0
        } else {
            0.3
        });
    let cfg = SimConfig::preset(SimPreset::Zero);
    let sim = bench_sim::spawn(&cfg, 1, "127.0.0.1:0".parse().unwrap()).expect("sim starts");
    let addr = sim.addr();
    let tok = Tokenizer::load("builtin:cl100k_base").unwrap();
    let g = TextGen::new(&tok).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let short = g.generate(&mut rng, 32).0;
    let long = g.generate(&mut rng, 1000).0;
    let chat = |prompt: &str, max_tokens: u32, stream: bool| {
        serde_json::json!({
            "model": "sim-model", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "min_tokens": max_tokens, "ignore_eos": true, "stream": stream,
            "stream_options": {"include_usage": true}
        })
    };
    let load = std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            // Give the sim thread a moment to exist, then pin both threads.
            std::thread::sleep(Duration::from_millis(50));
            let pinned = match (thread_cpu("bench-sim"), thread_cpu("bench-load")) {
                (Some((s, _)), Some((l, _))) => pin(s, 0) && pin(l, 1),
                _ => false,
            };
            println!(
                "bench-sim throughput (zero preset, 1 sim thread){}; {secs} s per scenario",
                if pinned {
                    ", sim pinned to CPU 0, load to CPU 1"
                } else {
                    ", not pinned"
                }
            );
            scenario(
                "chat stream, 32-tok prompt, 16 tokens, 64 conns",
                addr,
                &chat(&short, 16, true),
                true,
                64,
                secs,
            );
            scenario(
                "chat stream, 32-tok prompt, 16 tokens, 256 conns",
                addr,
                &chat(&short, 16, true),
                true,
                256,
                secs,
            );
            scenario(
                "chat non-stream, 32-tok prompt, 16 tokens, 64 conns",
                addr,
                &chat(&short, 16, false),
                false,
                64,
                secs,
            );
            scenario(
                "chat stream, 32-tok prompt, 256 tokens, 64 conns",
                addr,
                &chat(&short, 256, true),
                true,
                64,
                secs,
            );
            scenario(
                "chat stream, 1000-tok prompt, 16 tokens, 64 conns",
                addr,
                &chat(&long, 16, true),
                true,
                64,
                secs,
            );
        })
        .unwrap();
    load.join().unwrap();
    sim.shutdown();
}
