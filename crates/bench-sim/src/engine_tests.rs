//! The scheduler stepped on a virtual clock: exact step costs, chunked prefill, prefix hits,
//! preemption, KV admission, and TTFT against load in model time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_config::SimConfig;
use bench_config::sim::{SimParams, SimPreset};
use bench_text::Tokenizer;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::engine::{Arrival, Event, Scheduler, Step, Usage};
use crate::metrics::{Finish, Metrics};
use crate::tokens::TokenBlocks;
use crate::words::Vocab;

struct Req {
    rx: UnboundedReceiver<Event>,
    arrived: Duration,
    first: Option<Duration>,
    words: Vec<u32>,
    usage: Option<Usage>,
}

struct Harness {
    sched: Scheduler,
    metrics: Arc<Metrics>,
    t0: Instant,
    now: Duration,
    reqs: Vec<Req>,
}

fn vocab() -> Arc<Vocab> {
    Arc::new(Vocab::build(&Tokenizer::load("builtin:cl100k_base").unwrap()).unwrap())
}

impl Harness {
    fn new(p: SimParams) -> Self {
        let metrics = Arc::new(Metrics::new());
        Harness {
            sched: Scheduler::new(p, true, vocab(), Arc::clone(&metrics)),
            metrics,
            t0: Instant::now(),
            now: Duration::ZERO,
            reqs: Vec::new(),
        }
    }

    /// Queues a request whose prompt is `ids`; returns its index.
    fn add(&mut self, ids: &[u32], output_len: u32, seed: u64) -> usize {
        let mut prompt = TokenBlocks::new(self.block_size());
        prompt.extend(ids);
        let (tx, rx) = unbounded_channel();
        self.sched.add(Arrival {
            arrived: self.t0 + self.now,
            prompt,
            output_len,
            finish: Finish::Length,
            seed,
            tx,
        });
        self.reqs.push(Req {
            rx,
            arrived: self.now,
            first: None,
            words: Vec::new(),
            usage: None,
        });
        self.reqs.len() - 1
    }

    fn block_size(&self) -> u32 {
        16
    }

    fn step(&mut self) -> Step {
        let st = self.sched.schedule(self.t0 + self.now);
        self.now += Duration::from_nanos((st.duration_us * 1000.0).round() as u64);
        self.sched.complete(self.t0 + self.now);
        for r in &mut self.reqs {
            while let Ok(ev) = r.rx.try_recv() {
                if r.first.is_none() {
                    r.first = Some(self.now);
                }
                match ev {
                    Event::Token(w) => r.words.push(w),
                    Event::Last(w, u) => {
                        r.words.push(w);
                        r.usage = Some(u);
                    }
                }
            }
        }
        st
    }

    fn run_to_idle(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        while !self.sched.is_idle() {
            steps.push(self.step());
            assert!(steps.len() < 1_000_000, "runaway");
        }
        steps
    }

    fn ttft(&self, i: usize) -> Duration {
        self.reqs[i].first.expect("first token") - self.reqs[i].arrived
    }
}

fn small() -> SimParams {
    SimPreset::Small.params().unwrap()
}

fn ids(n: u32, salt: u32) -> Vec<u32> {
    (0..n)
        .map(|i| i.wrapping_mul(2_654_435_761) ^ salt)
        .collect()
}

#[test]
fn chunked_prefill_then_decode_with_exact_step_costs() {
    let mut h = Harness::new(small());
    let r = h.add(&ids(5000, 1), 3, 7);
    let steps = h.run_to_idle();
    let d: Vec<f64> = steps.iter().map(|s| s.duration_us).collect();
    // 2048 + 2048 + 904 prefill tokens (budget 2048), then two decodes reading 5000 and 5001 KV tokens.
    let expect = [
        9000.0 + 80.0 * 2048.0,
        9000.0 + 80.0 * 2048.0,
        9000.0 + 80.0 * 904.0,
        9000.0 + 50.0 + 400.0,
        9000.0 + 50.0 + 80.0 * 5.001,
    ];
    assert_eq!(d.len(), expect.len(), "{d:?}");
    for (a, b) in d.iter().zip(expect) {
        assert!((a - b).abs() < 1e-6, "{d:?}");
    }
    assert_eq!(
        steps.iter().map(|s| s.prefill_tokens).collect::<Vec<_>>(),
        [2048, 2048, 904, 0, 0]
    );
    assert_eq!(h.ttft(r), Duration::from_micros(172_840 + 172_840 + 81_320));
    let u = h.reqs[r].usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
        (5000, 3, 0)
    );
    assert_eq!(h.reqs[r].words.len(), 3);
    assert_eq!(h.sched.blocks().0, 0, "every block is released");
}

#[test]
fn decode_step_grows_with_batch_and_kv() {
    let mut h = Harness::new(small());
    for i in 0..4 {
        h.add(&ids(100, i), 5, i as u64);
    }
    let steps = h.run_to_idle();
    assert_eq!(steps[0].prefill_tokens, 400);
    assert_eq!(steps[0].scheduled, 4);
    // Every later step decodes the 4 sequences; the KV read grows by 4 tokens a step.
    for (k, s) in steps[1..].iter().enumerate() {
        assert_eq!((s.decodes, s.kv_read), (4, 400 + 4 * k as u64));
        let expect = 9000.0 + 4.0 * 50.0 + 80.0 * s.kv_read as f64 / 1000.0;
        assert!((s.duration_us - expect).abs() < 1e-6);
    }
    assert_eq!(steps.len(), 5);
    let one = {
        let mut h = Harness::new(small());
        h.add(&ids(100, 9), 5, 9);
        h.run_to_idle()[1].duration_us
    };
    assert!(steps[1].duration_us > one);
}

#[test]
fn shared_prefix_skips_prefill() {
    let mut h = Harness::new(small());
    let prefix = ids(4000, 3);
    let a = h.add(&prefix, 2, 1);
    h.run_to_idle();
    let mut longer = prefix.clone();
    longer.extend(ids(100, 4));
    let b = h.add(&longer, 2, 2);
    h.run_to_idle();
    let c = h.add(&ids(4100, 5), 2, 3);
    h.run_to_idle();
    // 4000 tokens = 250 full blocks, all cached; 100 tokens left to prefill.
    assert_eq!(h.reqs[b].usage.unwrap().cached_tokens, 4000);
    assert_eq!(h.ttft(b), Duration::from_micros(9000 + 80 * 100));
    assert_eq!(h.reqs[c].usage.unwrap().cached_tokens, 0);
    assert!(
        h.ttft(c) > h.ttft(b) * 10,
        "{:?} vs {:?}",
        h.ttft(c),
        h.ttft(b)
    );
    assert!(h.ttft(a) > h.ttft(b) * 10);
    // Same prompt again: all but the last block is a hit (at least one token is computed).
    let d = h.add(&prefix, 2, 1);
    h.run_to_idle();
    assert_eq!(h.reqs[d].usage.unwrap().cached_tokens, 3984);
    // Same prompt, same seed: same reply.
    assert_eq!(h.reqs[d].words, h.reqs[a].words);
    let m = &h.metrics;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(m.prefix_queries.load(Relaxed), 4000 + 4100 + 4100 + 4000);
    assert_eq!(m.prefix_hits.load(Relaxed), 4000 + 3984);
}

#[test]
fn session_history_hits_the_reply_blocks() {
    let mut h = Harness::new(small());
    let turn1 = ids(300, 8);
    let a = h.add(&turn1, 40, 5);
    h.run_to_idle();
    let reply: Vec<u32> = h.reqs[a]
        .words
        .iter()
        .map(|&w| vocab().words[w as usize].id)
        .collect();
    let mut turn2 = turn1.clone();
    turn2.extend(&reply);
    turn2.extend(ids(50, 9));
    let b = h.add(&turn2, 2, 6);
    h.run_to_idle();
    // 300 prompt + 40 reply tokens: the last reply token's KV is never computed, so 339
    // tokens were cached, 21 full blocks = 336 tokens.
    assert_eq!(h.reqs[b].usage.unwrap().cached_tokens, 336);
}

fn tiny_kv(kv_tokens: u64) -> SimParams {
    SimParams {
        kv_cache_tokens: kv_tokens,
        max_model_len: kv_tokens as u32,
        ..small()
    }
}

#[test]
fn full_kv_cache_queues_requests() {
    let mut h = Harness::new(tiny_kv(64));
    for i in 0..3 {
        h.add(&ids(30, i), 2, i as u64);
    }
    h.step();
    // 4 blocks: two prompts of 30 tokens take 2 blocks each; the third waits.
    assert_eq!(h.sched.counts(), (2, 1));
    assert_eq!(h.sched.blocks(), (4, 4));
    h.run_to_idle();
    for r in &h.reqs {
        assert_eq!(r.usage.unwrap().completion_tokens, 2);
    }
    assert_eq!(h.sched.blocks().0, 0);
}

#[test]
fn preemption_recomputes_and_keeps_the_reply() {
    let mut h = Harness::new(tiny_kv(64));
    let a = h.add(&ids(16, 1), 40, 11);
    let b = h.add(&ids(16, 2), 40, 12);
    h.run_to_idle();
    use std::sync::atomic::Ordering::Relaxed;
    assert!(
        h.metrics.preemptions.load(Relaxed) > 0,
        "two sequences of 56 tokens cannot share 64"
    );
    // Replies do not depend on batching or preemption.
    let mut alone = Harness::new(tiny_kv(64));
    let a2 = alone.add(&ids(16, 1), 40, 11);
    alone.run_to_idle();
    let mut alone_b = Harness::new(tiny_kv(64));
    let b2 = alone_b.add(&ids(16, 2), 40, 12);
    alone_b.run_to_idle();
    assert_eq!(h.reqs[a].words, alone.reqs[a2].words);
    assert_eq!(h.reqs[b].words, alone_b.reqs[b2].words);
    assert_eq!(h.reqs[b].words.len(), 40);
    assert_eq!(h.sched.blocks().0, 0);
}

#[test]
fn batch_slots_limit_running() {
    let p = SimParams {
        max_num_seqs: 3,
        ..small()
    };
    let mut h = Harness::new(p);
    for i in 0..5 {
        h.add(&ids(10, i), 4, i as u64);
    }
    h.step();
    assert_eq!(h.sched.counts(), (3, 2));
    h.run_to_idle();
    assert!(h.reqs.iter().all(|r| r.usage.is_some()));
}

/// p90 TTFT (model seconds) of `n` requests arriving every `1/rate` seconds.
fn p90_ttft(p: SimParams, rate: f64, n: usize, prompt: u32, output: u32) -> (f64, f64) {
    let mut h = Harness::new(p);
    let mut next = 0;
    while next < n || !h.sched.is_idle() {
        while next < n && Duration::from_secs_f64(next as f64 / rate) <= h.now {
            let at = Duration::from_secs_f64(next as f64 / rate);
            let i = h.add(&ids(prompt, next as u32 + 100), output, next as u64);
            h.reqs[i].arrived = at;
            next += 1;
        }
        if h.sched.is_idle() {
            h.now = Duration::from_secs_f64(next as f64 / rate);
            continue;
        }
        h.step();
    }
    let mut t: Vec<f64> = (0..n).map(|i| h.ttft(i).as_secs_f64()).collect();
    t.sort_by(f64::total_cmp);
    let done = h.now.as_secs_f64();
    (t[(n * 9) / 10], n as f64 / done)
}

#[test]
fn ttft_rises_with_load_in_model_time() {
    // The default workload shape: 512-token prompts, 128-token replies, small preset.
    let p = small();
    // Saturation throughput: everything at once.
    let (_, cap) = p90_ttft(p, 1e6, 400, 512, 128);
    let mut rows = Vec::new();
    for x in [0.1, 0.5, 0.9, 2.0, 10.0] {
        let n = ((x * cap * 20.0) as usize).clamp(40, 2000);
        let (p90, _) = p90_ttft(p, x * cap, n, 512, 128);
        rows.push((x, p90));
    }
    eprintln!(
        "small preset, 512 in / 128 out, capacity {cap:.1} req/s; p90 TTFT by load: {rows:?}"
    );
    for w in rows.windows(2) {
        assert!(w[1].1 >= w[0].1, "{rows:?}");
    }
    assert!(rows[4].1 > 5.0 * rows[0].1, "{rows:?}");
    // At low load TTFT is one prefill step (base + 512 tokens) give or take a decode step.
    assert!(rows[0].1 < 0.1, "{rows:?}");
    // The default config is this preset.
    assert_eq!(SimConfig::default().params(), p);
}
