//! Timing behaviour over real HTTP: TTFT and queueing against load, prefix-cache TTFT, KV
//! capacity. The tests in this file run one at a time (they measure wall time).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::common::*;
use bench_config::SimConfig;
use bench_config::sim::SimPreset;
use bench_text::TextGen;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Tests of this file measure wall time: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn prompts(n: usize, tokens: usize, seed: u64) -> Vec<String> {
    let g = TextGen::new(&tok()).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| g.generate(&mut rng, tokens).0).collect()
}

fn p(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// Sends `prompts` as streamed chats at a fixed `rate` (requests per wall second); returns
/// every TTFT (s), the most requests seen waiting in /metrics, and the mean queue time (s).
async fn run_at(base: &str, prompts: &[String], output: u32, rate: f64) -> (Vec<f64>, f64, f64) {
    let c = client();
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut set = tokio::task::JoinSet::new();
    for (i, pr) in prompts.iter().enumerate() {
        let (c, base, body) = (c.clone(), base.to_string(), chat(pr, output, true));
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        set.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            stream_ttft(&c, &base, "/v1/chat/completions", &body)
                .await
                .0
                .as_secs_f64()
        });
    }
    let max_waiting = Arc::new(AtomicU64::new(0));
    let watch = {
        let (c, base, max_waiting) = (c.clone(), base.to_string(), Arc::clone(&max_waiting));
        tokio::spawn(async move {
            loop {
                let m = metrics(&c, &base).await;
                max_waiting.fetch_max(metric(&m, "vllm:num_requests_waiting", "") as u64, Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut ttfts = Vec::new();
    while let Some(t) = set.join_next().await {
        ttfts.push(t.unwrap());
    }
    watch.abort();
    let max_waiting = max_waiting.load(Relaxed) as f64;
    let m = metrics(&c, base).await;
    let queue = metric(&m, "vllm:request_queue_time_seconds_sum", "")
        / metric(&m, "vllm:request_queue_time_seconds_count", "");
    (ttfts, max_waiting, queue)
}

/// 4 batch slots, 10 ms steps + 1 ms per decoding sequence, 20-token replies, at 1/10 speed.
fn load_cfg() -> SimConfig {
    SimConfig {
        preset: SimPreset::Custom,
        max_num_seqs: Some(4),
        kv_cache_tokens: Some(1 << 20),
        block_size: Some(16),
        max_num_batched_tokens: Some(2048),
        max_model_len: Some(4096),
        prefill_us_per_token: Some(20.0),
        step_base_us: Some(10_000.0),
        decode_us_per_seq: Some(1_000.0),
        decode_us_per_kv_ktoken: Some(0.0),
        time_scale: 0.1,
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttft_and_queueing_rise_with_load() {
    let _g = SERIAL.lock().await;
    let cfg = load_cfg();
    let output = 20;
    // The load that fills the batch: 4 slots, each busy for `output` steps of 14 ms (model).
    let step_full = (10_000.0 + 4.0 * 1_000.0) * 1e-6;
    let fill = 4.0 / (output as f64 * step_full) / cfg.time_scale; // requests per wall second
    let mut rows = Vec::new();
    for (x, n) in [(0.1f64, 20), (0.5, 30), (1.0, 40), (2.0, 60), (10.0, 200)] {
        let sim = start(&cfg);
        let ps = prompts(n, 64, x.to_bits());
        let (mut ttft, max_waiting, queue) = run_at(&sim.base_url(), &ps, output, fill * x).await;
        let p50 = p(&mut ttft, 0.5);
        let p90 = p(&mut ttft, 0.9);
        rows.push((x, n, p50, p90, max_waiting, queue));
        sim.shutdown();
    }
    eprintln!(
        "load x fill ({fill:.0} req/s wall), n, p50 TTFT s, p90 TTFT s, max waiting, mean queue s"
    );
    for r in &rows {
        eprintln!(
            "{:>5} {:>4} {:>8.4} {:>8.4} {:>5} {:>8.4}",
            r.0, r.1, r.2, r.3, r.4, r.5
        );
    }
    let (low, high) = (&rows[0], &rows[4]);
    assert!(
        high.3 > 5.0 * low.3,
        "p90 TTFT at 10x ({:.4}) is not > 5x the one at 0.1x ({:.4})",
        high.3,
        low.3
    );
    assert!(
        high.4 >= 20.0,
        "requests queue at 10x: max waiting {}",
        high.4
    );
    assert!(
        high.5 > 10.0 * low.5.max(0.001),
        "queue time at 10x {:.4} vs 0.1x {:.4}",
        high.5,
        low.5
    );
    assert!(rows[3].3 > rows[1].3, "2x is slower than 0.5x: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prefix_lowers_ttft() {
    let _g = SERIAL.lock().await;
    let sim = start(&SimConfig {
        time_scale: 0.5,
        ..SimConfig::preset(SimPreset::Small)
    });
    let c = client();
    let base = sim.base_url();
    let ps = prompts(2, 3000, 99);
    let g = TextGen::new(&tok()).unwrap();
    let mut extended = ps[0].clone();
    let mut rng = StdRng::seed_from_u64(5);
    g.generate_into(&mut rng, 100, true, &mut extended);
    let mut other = ps[1].clone();
    g.generate_into(&mut rng, 100, true, &mut other);
    let (t1, _) = stream_ttft(&c, &base, "/v1/chat/completions", &chat(&ps[0], 4, true)).await;
    let (t2, body2) =
        stream_ttft(&c, &base, "/v1/chat/completions", &chat(&extended, 4, true)).await;
    let (t3, _) = stream_ttft(&c, &base, "/v1/chat/completions", &chat(&other, 4, true)).await;
    eprintln!(
        "TTFT: first 3000-token prompt {t1:?}, same prefix + 100 tokens {t2:?}, unrelated 3100 tokens {t3:?}"
    );
    let usage = sse_data(&body2)
        .iter()
        .rev()
        .nth(1)
        .map(|d| json(d))
        .unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 3100);
    assert_eq!(
        usage["usage"]["prompt_tokens_details"]["cached_tokens"], 2992,
        "187 full blocks of 16"
    );
    // Model time: 3100 uncached tokens take two steps (~0.26 s), 108 uncached tokens one (~18 ms).
    assert!(t2 * 4 < t3, "shared prefix {t2:?} vs unrelated {t3:?}");
    assert!(t2 * 4 < t1, "shared prefix {t2:?} vs first {t1:?}");
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_kv_cache_queues_and_completes() {
    let _g = SERIAL.lock().await;
    let cfg = SimConfig {
        kv_cache_tokens: Some(512),
        max_model_len: Some(512),
        max_num_seqs: Some(16),
        step_base_us: Some(2_000.0),
        decode_us_per_seq: Some(100.0),
        prefill_us_per_token: Some(10.0),
        ..SimConfig::default()
    };
    let sim = start(&cfg);
    let c = client();
    let base = sim.base_url();
    let ps = prompts(12, 100, 3);
    let mut set = tokio::task::JoinSet::new();
    for pr in &ps {
        let (c, base, body) = (c.clone(), base.clone(), chat(pr, 60, false));
        set.spawn(async move { post(&c, &base, "/v1/chat/completions", &body).await });
    }
    let (mut max_waiting, mut max_kv) = (0.0f64, 0.0f64);
    let t0 = Instant::now();
    while !set.is_empty() && t0.elapsed() < Duration::from_secs(20) {
        let m = metrics(&c, &base).await;
        max_waiting = max_waiting.max(metric(&m, "vllm:num_requests_waiting", ""));
        max_kv = max_kv.max(metric(&m, "vllm:kv_cache_usage_perc", ""));
        while let Some(r) = set.try_join_next() {
            let (s, t) = r.unwrap();
            assert_eq!(s, 200, "{t}");
            assert_eq!(json(&t)["usage"]["completion_tokens"], 60);
            assert_eq!(json(&t)["usage"]["prompt_tokens"], 100);
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(set.is_empty(), "every request completes");
    let m = metrics(&c, &base).await;
    eprintln!(
        "32 KV blocks, 12 requests of 160 tokens: max waiting {max_waiting}, max KV usage {max_kv:.2}, preemptions {}",
        metric(&m, "vllm:num_preemptions_total", "")
    );
    assert!(max_waiting >= 1.0, "requests waited for KV blocks");
    assert!(max_kv >= 0.75, "the cache filled up: {max_kv}");
    assert_eq!(
        metric(
            &m,
            "vllm:request_success_total",
            "finished_reason=\"length\""
        ),
        12.0
    );
    assert_eq!(metric(&m, "vllm:num_requests_waiting", ""), 0.0);
    assert_eq!(metric(&m, "vllm:kv_cache_usage_perc", ""), 0.0);
    sim.shutdown();
}
