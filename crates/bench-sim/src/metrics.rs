//! Engine metrics, rendered in the Prometheus text format under vLLM's names.
//!
//! Only the engine task writes (gauges after every step, counters and histograms as requests
//! progress); `/metrics` reads. Atomics with relaxed ordering: a scrape may see one step's
//! updates half applied, as it can with vLLM.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// vLLM's TTFT buckets, seconds.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's time-per-output-token buckets, seconds.
const TPOT_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's request latency buckets, seconds (e2e and queue time).
const LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one value (single writer).
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i].fetch_add(1, Relaxed);
        let s = f64::from_bits(self.sum.load(Relaxed)) + v;
        self.sum.store(s.to_bits(), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Relaxed);
            let le = self
                .bounds
                .get(i)
                .map(|b| format!("{b:?}"))
                .unwrap_or_else(|| "+Inf".into());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\",{labels}}} {cum}.0");
        }
        let _ = writeln!(
            out,
            "{name}_count{{{labels}}} {}.0",
            self.count.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {:?}",
            f64::from_bits(self.sum.load(Relaxed))
        );
    }
}

/// Why a request ended (the `finished_reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The model emitted EOS.
    Stop,
    /// max_tokens reached.
    Length,
    /// The client went away.
    Abort,
}

impl Finish {
    /// The OpenAI / vLLM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Abort => "abort",
        }
    }
}

/// Everything `/metrics` shows.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    /// f64 bits of the used fraction of KV blocks.
    pub kv_usage: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub success: [AtomicU64; 3],
    pub preemptions: AtomicU64,
    pub prefix_queries: AtomicU64,
    pub prefix_hits: AtomicU64,
    pub ttft: Histogram,
    pub tpot: Histogram,
    pub e2e: Histogram,
    pub queue: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_usage: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            success: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            preemptions: AtomicU64::new(0),
            prefix_queries: AtomicU64::new(0),
            prefix_hits: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            tpot: Histogram::new(TPOT_BUCKETS),
            e2e: Histogram::new(LATENCY_BUCKETS),
            queue: Histogram::new(LATENCY_BUCKETS),
        }
    }

    /// Counts a finished request.
    pub fn finished(&self, f: Finish) {
        self.success[f as usize].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, model: &str) -> String {
        let labels = format!(
            "model_name=\"{}\"",
            model.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut o = String::with_capacity(8192);
        let gauge = |o: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {v:?}"
            );
        };
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                o,
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{{{labels}}} {v}.0"
            );
        };
        gauge(
            &mut o,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            self.running.load(Relaxed) as f64,
        );
        gauge(
            &mut o,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            self.waiting.load(Relaxed) as f64,
        );
        let kv = f64::from_bits(self.kv_usage.load(Relaxed));
        gauge(
            &mut o,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            kv,
        );
        gauge(
            &mut o,
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage (pre-v1 name). 1 means 100 percent usage.",
            kv,
        );
        counter(
            &mut o,
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            self.prompt_tokens.load(Relaxed),
        );
        counter(
            &mut o,
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            self.generation_tokens.load(Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP vllm:request_success_total Count of finished requests by finish reason."
        );
        let _ = writeln!(o, "# TYPE vllm:request_success_total counter");
        for f in [Finish::Stop, Finish::Length, Finish::Abort] {
            let v = self.success[f as usize].load(Relaxed);
            let _ = writeln!(
                o,
                "vllm:request_success_total{{finished_reason=\"{}\",{labels}}} {v}.0",
                f.as_str()
            );
        }
        counter(
            &mut o,
            "vllm:num_preemptions",
            "Cumulative number of preemptions.",
            self.preemptions.load(Relaxed),
        );
        counter(
            &mut o,
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in tokens.",
            self.prefix_queries.load(Relaxed),
        );
        counter(
            &mut o,
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in tokens.",
            self.prefix_hits.load(Relaxed),
        );
        self.ttft.render(
            &mut o,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &labels,
        );
        // vLLM v1 exposes the gap between tokens under both names
        self.tpot.render(
            &mut o,
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &labels,
        );
        self.tpot.render(
            &mut o,
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            &labels,
        );
        self.e2e.render(
            &mut o,
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            &labels,
        );
        self.queue.render(
            &mut o,
            "vllm:request_queue_time_seconds",
            "Histogram of time spent waiting in the queue in seconds.",
            &labels,
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_sum_and_count() {
        let m = Metrics::new();
        for v in [0.0005, 0.003, 0.003, 3000.0] {
            m.ttft.observe(v);
        }
        m.finished(Finish::Length);
        let text = m.render("m");
        assert!(
            text.contains(
                "vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"m\"} 1.0\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "vllm:time_to_first_token_seconds_bucket{le=\"0.005\",model_name=\"m\"} 3.0\n"
        ));
        assert!(text.contains(
            "vllm:time_to_first_token_seconds_bucket{le=\"2560.0\",model_name=\"m\"} 3.0\n"
        ));
        assert!(text.contains(
            "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 4.0\n"
        ));
        assert!(text.contains("vllm:time_to_first_token_seconds_count{model_name=\"m\"} 4.0\n"));
        assert!(
            text.contains("vllm:time_to_first_token_seconds_sum{model_name=\"m\"} 3000.0065\n"),
            "{text}"
        );
        assert!(text.contains(
            "vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 1.0\n"
        ));
        // Every sample line is `name{labels} number`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
