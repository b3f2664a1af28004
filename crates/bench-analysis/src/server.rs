//! The server's view beside the client's, from `server_metrics.parquet` (the /metrics scrapes
//! of the run): running and waiting requests against the client's in-flight count, KV-cache
//! usage and prefix-cache hits over time, the server's token throughput, percentiles estimated
//! from each server histogram over the run (bucket deltas), and output throughput by batch size.
//!
//! Which metric is which comes from `bench_server::engine`'s table; the engine is the one the
//! metric names point to. Definitions: docs/METRICS.md, "The server's side".

use bench_server::engine::{self, Engine, Kind, Series};
use bench_server::expo::FlatSample;
use bench_server::histogram;
use bench_types::manifest::Stage;
use bench_types::server_metrics;
use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::stats::Stats;
use crate::summary::Summary;
use crate::timeseries::TimeSeries;

/// A server histogram over the run, beside the client's figure for the same quantity.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistEstimate {
    /// The metric read.
    pub metric: String,
    /// Observations during the run (delta of `_count`).
    pub count: f64,
    /// Mean, ms (delta of `_sum` / delta of `_count`).
    pub mean: Option<f64>,
    /// Median estimated from the bucket deltas, ms.
    pub p50: Option<f64>,
    /// 90th percentile, ms.
    pub p90: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// The client's median of the same quantity, ms (null: no client counterpart).
    pub client_p50: Option<f64>,
    /// The client's 90th percentile, ms.
    pub client_p90: Option<f64>,
    /// The client's 99th percentile, ms.
    pub client_p99: Option<f64>,
    /// client p50 - server p50, ms: time outside the engine (network, HTTP, a router or a
    /// queue in front of it), within the bucket width of the estimate.
    pub gap_p50_ms: Option<f64>,
}

/// Output throughput while the batch held `batch` requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchRow {
    /// Requests in the batch (server running count, or client in flight), rounded.
    pub batch: u64,
    /// Seconds of the run spent at that size.
    pub seconds: f64,
    /// Output tokens per second over those seconds.
    pub output_token_throughput: f64,
}

/// summary.json's `server` section (present when /metrics was scraped).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerSummary {
    /// The engine the metric names point to.
    pub engine: String,
    /// Scrapes in server_metrics.parquet.
    pub scrapes: u64,
    /// Scrapes that failed (the client stage's count).
    pub scrape_failures: u64,
    /// From the first scrape to the last, seconds.
    pub window_s: f64,
    /// Mean of the running-requests gauge over the scrapes.
    pub running_mean: Option<f64>,
    /// Its maximum.
    pub running_max: Option<f64>,
    /// Mean of the waiting-requests gauge.
    pub waiting_mean: Option<f64>,
    /// Its maximum.
    pub waiting_max: Option<f64>,
    /// Mean of the waiting gauge over the first tenth of the scrapes.
    pub waiting_start: Option<f64>,
    /// Its maximum over the last tenth of the scrapes before the client stopped sending.
    pub waiting_end: Option<f64>,
    /// Mean KV-cache usage, 0..1.
    pub kv_cache_usage_mean: Option<f64>,
    /// Its maximum.
    pub kv_cache_usage_max: Option<f64>,
    /// Prefix-cache hits / queries over the run (tokens), or the mean of the engine's hit-rate
    /// gauge.
    pub prefix_cache_hit_rate: Option<f64>,
    /// Prompt tokens the server counted during the run.
    pub prompt_tokens: Option<f64>,
    /// Output tokens the server counted during the run.
    pub generation_tokens: Option<f64>,
    /// generation_tokens / window_s.
    pub output_token_throughput: Option<f64>,
    /// The client's output tokens over the same window / window_s (measured requests).
    pub client_output_token_throughput: Option<f64>,
    /// Preemptions during the run.
    pub preemptions: Option<f64>,
    /// Requests the server finished during the run.
    pub requests_finished: Option<f64>,
    /// Time to first token.
    pub ttft_ms: Option<HistEstimate>,
    /// Inter-token latency (or time per output token on older engines).
    pub itl_ms: Option<HistEstimate>,
    /// End-to-end request latency.
    pub e2el_ms: Option<HistEstimate>,
    /// Time queued in the engine.
    pub queue_ms: Option<HistEstimate>,
    /// Prefill phase.
    pub prefill_ms: Option<HistEstimate>,
    /// Decode phase.
    pub decode_ms: Option<HistEstimate>,
    /// Output throughput by batch size.
    pub by_batch: Vec<BatchRow>,
    /// Where the batch size comes from: `server running` or `client in flight`.
    pub by_batch_source: String,
    /// The metric read for each series.
    pub metrics: std::collections::BTreeMap<String, String>,
}

/// One point per scrape (interval figures at the scrape that ends the interval).
#[derive(Debug, Clone, Default)]
pub struct ServerSeries {
    /// Seconds since the time origin.
    pub t_s: Vec<f64>,
    /// Running requests.
    pub running: Vec<Option<f64>>,
    /// Waiting requests.
    pub waiting: Vec<Option<f64>>,
    /// KV-cache usage, 0..1.
    pub kv_cache_usage: Vec<Option<f64>>,
    /// Prefix-cache hit rate over the interval ending here.
    pub prefix_hit_rate: Vec<Option<f64>>,
    /// Output tokens/s over the interval ending here.
    pub output_tps: Vec<Option<f64>>,
}

/// The server view of a run.
#[derive(Debug, Clone, Default)]
pub struct ServerView {
    /// For summary.json.
    pub summary: ServerSummary,
    /// For the plots.
    pub series: ServerSeries,
}

/// One scrape: time on the records' axis (ns) and its samples.
struct Scrape {
    t_ns: i64,
    samples: Vec<FlatSample>,
}

fn scrapes(rows: Vec<server_metrics::Row>, anchor_unix_ns: i64) -> Vec<Scrape> {
    let mut out: Vec<Scrape> = Vec::new();
    let mut current: Option<u32> = None;
    for r in rows {
        if current != Some(r.scrape) {
            current = Some(r.scrape);
            out.push(Scrape {
                t_ns: r.unix_ns - anchor_unix_ns,
                samples: Vec::new(),
            });
        }
        if let Some(s) = out.last_mut() {
            s.samples.push(FlatSample {
                metric: r.metric,
                labels: r.labels,
                le: r.le,
                value: r.value,
            });
        }
    }
    out
}

/// A gauge or counter of one scrape: the sum over label sets (the mean for fractions: one
/// value per engine replica), scaled.
fn scalar(s: &Scrape, name: &str, series: Series, scale: f64) -> Option<f64> {
    let v: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && x.value.is_finite())
        .map(|x| x.value)
        .collect();
    if v.is_empty() {
        return None;
    }
    let total: f64 = v.iter().sum();
    let fraction = matches!(series, Series::KvCacheUsage | Series::PrefixCacheHitRate);
    Some(
        if fraction {
            total / v.len() as f64
        } else {
            total
        } * scale,
    )
}

fn mean_max(v: &[Option<f64>]) -> (Option<f64>, Option<f64>) {
    let x: Vec<f64> = v.iter().flatten().copied().collect();
    if x.is_empty() {
        return (None, None);
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    (Some(mean), x.iter().copied().reduce(f64::max))
}

/// The increase of a counter from the first scrape to the last (a reset restarts the count).
fn increase(values: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.len() < 2 {
        return None;
    }
    Some(
        v.windows(2)
            .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
            .sum(),
    )
}

/// Builds the server view of `a` when the run has server_metrics.parquet; a file that cannot
/// be read is a note, never an error.
pub fn build(a: &Analysis, s: &Summary, ts: &TimeSeries) -> (Option<ServerView>, Option<String>) {
    let path = a.run_dir.join(server_metrics::FILE);
    if !path.exists() {
        return (None, None);
    }
    let Some(anchor) = a.rec.meta.anchor_unix_ns else {
        return (
            None,
            Some(format!(
                "{}: not used: requests.parquet has no anchor time to line it up with",
                server_metrics::FILE
            )),
        );
    };
    let rows = match server_metrics::read(&path) {
        Ok(r) => r,
        Err(e) => return (None, Some(format!("server metrics not used: {e}"))),
    };
    let sc = scrapes(rows, anchor);
    if sc.is_empty() {
        return (None, None);
    }
    (Some(view(a, s, ts, &sc)), None)
}

fn view(a: &Analysis, s: &Summary, ts: &TimeSeries, sc: &[Scrape]) -> ServerView {
    let mut names = std::collections::BTreeSet::new();
    for x in sc.iter().flat_map(|x| &x.samples) {
        names.insert(x.metric.as_str());
    }
    let eng = engine::detect(names.iter().copied());
    let mut out = ServerSummary {
        engine: eng.as_str().to_string(),
        scrapes: sc.len() as u64,
        scrape_failures: scrape_failures(a),
        window_s: (sc[sc.len() - 1].t_ns - sc[0].t_ns) as f64 / 1e9,
        ..ServerSummary::default()
    };
    let mut per_scrape = |series: Series| -> Vec<Option<f64>> {
        match engine::resolve(eng, series, |n| names.contains(n)) {
            Some((spec, name)) if spec.kind != Kind::Histogram => {
                out.metrics
                    .insert(series.as_str().to_string(), name.to_string());
                sc.iter()
                    .map(|x| scalar(x, name, series, spec.scale))
                    .collect()
            }
            _ => vec![None; sc.len()],
        }
    };
    let running = per_scrape(Series::Running);
    let waiting = per_scrape(Series::Waiting);
    let kv = per_scrape(Series::KvCacheUsage);
    let queries = per_scrape(Series::PrefixCacheQueries);
    let hits = per_scrape(Series::PrefixCacheHits);
    let hit_gauge = per_scrape(Series::PrefixCacheHitRate);
    let prompt = per_scrape(Series::PromptTokens);
    let generation = per_scrape(Series::GenerationTokens);
    let preempt = per_scrape(Series::Preemptions);
    let finished = per_scrape(Series::RequestsFinished);

    (out.running_mean, out.running_max) = mean_max(&running);
    (out.waiting_mean, out.waiting_max) = mean_max(&waiting);
    (out.kv_cache_usage_mean, out.kv_cache_usage_max) = mean_max(&kv);
    let tenth = (sc.len() / 10).max(1);
    out.waiting_start = mean_max(&waiting[..tenth]).0;
    // the end of the sending: the last scrape before the last scheduled send
    let last_send = (0..a.rec.rows)
        .filter(|&i| !a.rec.warmup[i])
        .filter_map(|i| a.rec.sent[i])
        .max();
    let upto = last_send
        .map(|t| sc.partition_point(|x| x.t_ns <= t).max(1))
        .unwrap_or(sc.len());
    out.waiting_end = mean_max(&waiting[upto.saturating_sub(tenth)..upto]).1;
    out.prompt_tokens = increase(&prompt);
    out.generation_tokens = increase(&generation);
    out.preemptions = increase(&preempt);
    out.requests_finished = increase(&finished);
    out.prefix_cache_hit_rate = match (increase(&queries), increase(&hits)) {
        (Some(q), Some(h)) if q > 0.0 => Some(h / q),
        _ => mean_max(&hit_gauge).0,
    };
    if out.window_s > 0.0 {
        out.output_token_throughput = out.generation_tokens.map(|g| g / out.window_s);
        out.client_output_token_throughput =
            Some(client_tokens_between(a, sc[0].t_ns, sc[sc.len() - 1].t_ns) / out.window_s);
    }

    let hist = |series: Series, client: Option<&Stats>, out: &mut ServerSummary| {
        let (spec, name) = engine::resolve(eng, series, |n| names.contains(n))?;
        out.metrics
            .insert(series.as_str().to_string(), name.to_string());
        let first = histogram::buckets(&sc[0].samples, name);
        let last = histogram::buckets(&sc[sc.len() - 1].samples, name);
        let d = histogram::delta(&first, &last);
        let total = |x: &Scrape, suffix: &str| {
            bench_server::expo::sum(&x.samples, &format!("{name}{suffix}")).unwrap_or(0.0)
        };
        let count = total(&sc[sc.len() - 1], "_count") - total(&sc[0], "_count");
        let sum = total(&sc[sc.len() - 1], "_sum") - total(&sc[0], "_sum");
        let ms = 1000.0 * spec.scale;
        let q = |p: f64| histogram::quantile(p, &d).map(|v| v * ms);
        let p50 = q(0.5);
        Some(HistEstimate {
            metric: name.to_string(),
            count,
            mean: histogram::mean(sum, count).map(|v| v * ms),
            p50,
            p90: q(0.9),
            p99: q(0.99),
            client_p50: client.and_then(|c| c.p50),
            client_p90: client.and_then(|c| c.p90),
            client_p99: client.and_then(|c| c.p99),
            gap_p50_ms: client.and_then(|c| c.p50).zip(p50).map(|(c, p)| c - p),
        })
    };
    out.ttft_ms = hist(Series::Ttft, Some(&s.ttft_ms), &mut out);
    out.itl_ms = hist(Series::Itl, Some(&s.itl_ms), &mut out);
    out.e2el_ms = hist(Series::E2e, Some(&s.e2el_ms), &mut out);
    out.queue_ms = hist(Series::QueueTime, None, &mut out);
    out.prefill_ms = hist(Series::PrefillTime, None, &mut out);
    out.decode_ms = hist(Series::DecodeTime, None, &mut out);

    // interval figures, at the scrape that ends each interval
    let mut series = ServerSeries {
        t_s: sc.iter().map(|x| a.secs(x.t_ns)).collect(),
        running: running.clone(),
        waiting,
        kv_cache_usage: kv,
        prefix_hit_rate: vec![None; sc.len()],
        output_tps: vec![None; sc.len()],
    };
    for k in 1..sc.len() {
        let dt = (sc[k].t_ns - sc[k - 1].t_ns) as f64 / 1e9;
        if dt <= 0.0 {
            continue;
        }
        if let Some(g) = increase(&generation[k - 1..=k]) {
            series.output_tps[k] = Some(g / dt);
        }
        series.prefix_hit_rate[k] =
            match (increase(&queries[k - 1..=k]), increase(&hits[k - 1..=k])) {
                (Some(q), Some(h)) if q > 0.0 => Some(h / q),
                _ => hit_gauge[k],
            };
    }
    let has_running = running.iter().any(Option::is_some);
    let has_tps = series.output_tps.iter().any(Option::is_some);
    if has_running && has_tps {
        out.by_batch_source = "server running".into();
        let points = (1..sc.len()).filter_map(|k| {
            let r = match (running[k - 1], running[k]) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                (a, b) => a.or(b)?,
            };
            let dt = (sc[k].t_ns - sc[k - 1].t_ns) as f64 / 1e9;
            Some((r, dt, series.output_tps[k]? * dt))
        });
        out.by_batch = by_batch(points);
    } else {
        out.by_batch_source = "client in flight".into();
        out.by_batch = client_by_batch(ts);
    }
    ServerView {
        summary: out,
        series,
    }
}

/// Output throughput by batch size from (batch, seconds, tokens) intervals.
fn by_batch(points: impl Iterator<Item = (f64, f64, f64)>) -> Vec<BatchRow> {
    let mut acc: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
    for (batch, secs, tokens) in points {
        if !(batch.is_finite() && batch >= 0.0 && secs > 0.0) {
            continue;
        }
        let e = acc.entry(batch.round() as u64).or_default();
        e.0 += secs;
        e.1 += tokens;
    }
    acc.into_iter()
        .filter(|(b, _)| *b > 0)
        .map(|(batch, (seconds, tokens))| BatchRow {
            batch,
            seconds: (seconds * 1000.0).round() / 1000.0,
            output_token_throughput: tokens / seconds,
        })
        .collect()
}

/// Output throughput by the client's in-flight count (time-averaged per bin).
pub fn client_by_batch(ts: &TimeSeries) -> Vec<BatchRow> {
    by_batch(
        ts.rows
            .iter()
            .map(|r| (r.in_flight, r.width_s, r.output_tps * r.width_s)),
    )
}

/// Output tokens of measured requests ended between `from` and `to` (ns), each request's
/// tokens counted whole at its end.
fn client_tokens_between(a: &Analysis, from: i64, to: i64) -> f64 {
    let d = &a.rec.derived;
    a.measured
        .iter()
        .filter(|&&i| a.rec.end[i].is_some_and(|e| e >= from && e <= to))
        .map(|&i| d.output_tokens[i])
        .filter(|v| v.is_finite())
        .sum()
}

fn scrape_failures(a: &Analysis) -> u64 {
    a.manifest
        .as_ref()
        .and_then(|m| m.stage(Stage::Client))
        .and_then(|c| c.stats.get("metrics"))
        .and_then(|m| m.get("failures"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

impl ServerSummary {
    /// `vLLM, 13 <scrapes> over 11.12 s` (and `, 2 failed`), for headings.
    pub fn describe(&self, scrapes: &str) -> String {
        let failed = if self.scrape_failures > 0 {
            format!(", {} failed", self.scrape_failures)
        } else {
            String::new()
        };
        format!(
            "{}, {} {scrapes} over {} s{failed}",
            engine_name(self),
            self.scrapes,
            crate::format::num(Some(self.window_s))
        )
    }
}

/// The engine of a run's server view (for labels).
pub fn engine_name(s: &ServerSummary) -> &'static str {
    match s.engine.as_str() {
        "vllm" => Engine::Vllm.display_name(),
        "sglang" => Engine::Sglang.display_name(),
        "tgi" => Engine::Tgi.display_name(),
        "llamacpp" => Engine::LlamaCpp.display_name(),
        _ => "server",
    }
}

/// summary.json's `server_timings`: what the server reported of its own time on each measured
/// request (llama.cpp's `timings`, TGI's headers, cached prompt tokens), beside the client's
/// TTFT and TPOT of the same requests. Null when no measured request carried any.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerTimings {
    /// Measured requests with at least one server-reported figure.
    pub requests: u64,
    /// Queue time inside the server, ms.
    pub queue_ms: Stats,
    /// Prefill, ms.
    pub prefill_ms: Stats,
    /// Decode, ms.
    pub decode_ms: Stats,
    /// Prefill + decode (or the server's own total of both), ms.
    pub inference_ms: Stats,
    /// The server's time per output token: decode / (output tokens - 1), ms.
    pub server_tpot_ms: Stats,
    /// Client TTFT - (server queue + prefill), per request, ms: the time to first token spent
    /// outside the engine's own work (network, HTTP, tokenization, scheduling it does not count).
    pub ttft_outside_ms: Stats,
    /// Client TPOT - server TPOT, per request, ms.
    pub tpot_gap_ms: Stats,
    /// Prompt tokens served from the server's cache, summed over measured requests.
    pub cached_prompt_tokens: Option<f64>,
}

/// The server's per-request timings over the measured requests (None when none has any).
pub fn timings(a: &Analysis) -> Option<ServerTimings> {
    let sc = &a.rec.server;
    let d = &a.rec.derived;
    let has = |i: usize| {
        [
            sc.queue_ms[i],
            sc.prefill_ms[i],
            sc.decode_ms[i],
            sc.inference_ms[i],
            sc.cached_prompt_tokens[i],
        ]
        .iter()
        .any(|v| !v.is_nan())
    };
    let rows: Vec<usize> = a.measured.iter().copied().filter(|&i| has(i)).collect();
    if rows.is_empty() {
        return None;
    }
    let stats = |f: &dyn Fn(usize) -> f64| {
        let mut v: Vec<f64> = rows
            .iter()
            .map(|&i| f(i))
            .filter(|x| x.is_finite())
            .collect();
        Stats::of(&mut v)
    };
    let server_tpot = |i: usize| {
        let n = d.output_tokens[i];
        if n >= 2.0 {
            sc.decode_ms[i] / (n - 1.0)
        } else {
            f64::NAN
        }
    };
    let inference = |i: usize| {
        if sc.inference_ms[i].is_nan() {
            sc.prefill_ms[i] + sc.decode_ms[i]
        } else {
            sc.inference_ms[i]
        }
    };
    let cached: Vec<f64> = rows
        .iter()
        .map(|&i| sc.cached_prompt_tokens[i])
        .filter(|v| !v.is_nan())
        .collect();
    Some(ServerTimings {
        requests: rows.len() as u64,
        queue_ms: stats(&|i| sc.queue_ms[i]),
        prefill_ms: stats(&|i| sc.prefill_ms[i]),
        decode_ms: stats(&|i| sc.decode_ms[i]),
        inference_ms: stats(&inference),
        server_tpot_ms: stats(&server_tpot),
        ttft_outside_ms: stats(&|i| {
            let q = if sc.queue_ms[i].is_nan() {
                0.0
            } else {
                sc.queue_ms[i]
            };
            d.ttft_ms[i] - q - sc.prefill_ms[i]
        }),
        tpot_gap_ms: stats(&|i| d.tpot_ms[i] - server_tpot(i)),
        cached_prompt_tokens: (!cached.is_empty()).then(|| cached.iter().sum()),
    })
}
