//! Each engine's exposition (tests/data): the exact sample count, the engine detected, every
//! series of the table resolved (older names through small bodies of older versions), values
//! read back exactly.

use bench_server::engine::{self, Engine, Series};
use bench_server::expo::{self, FlatSample};
use bench_server::histogram;

use super::{data, value};

/// The (series, name) `resolve` finds for `engine` in a scrape, in [`Series::ALL`] order.
fn resolved(engine: Engine, samples: &[FlatSample]) -> Vec<(Series, &'static str)> {
    let present = |name: &str| samples.iter().any(|s| s.metric == name);
    Series::ALL
        .into_iter()
        .filter_map(|series| {
            engine::resolve(engine, series, present).map(|(_, name)| (series, name))
        })
        .collect()
}

fn detect(samples: &[FlatSample]) -> Engine {
    engine::detect(samples.iter().map(|s| s.metric.as_str()))
}

/// Every series the table has for `engine` is found in one of `scrapes`.
fn covers(engine: Engine, scrapes: &[&[FlatSample]]) {
    let mut found: Vec<Series> = scrapes
        .iter()
        .flat_map(|s| resolved(engine, s))
        .map(|(s, _)| s)
        .collect();
    found.sort_by_key(|s| s.as_str());
    found.dedup();
    let mut rows: Vec<Series> = engine::table()
        .iter()
        .filter(|s| s.engine == engine)
        .map(|s| s.series)
        .collect();
    rows.sort_by_key(|s| s.as_str());
    assert_eq!(found, rows, "{engine:?}");
}

const VLLM_LABELS: &str = r#"engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct""#;

#[test]
fn vllm() {
    use Series::*;
    let s = expo::parse(&data("vllm.prom")).unwrap();
    assert_eq!(s.len(), 75);
    assert_eq!(detect(&s), Engine::Vllm);
    assert_eq!(
        resolved(Engine::Vllm, &s),
        [
            (Running, "vllm:num_requests_running"),
            (Waiting, "vllm:num_requests_waiting"),
            (KvCacheUsage, "vllm:kv_cache_usage_perc"),
            (PrefixCacheQueries, "vllm:prefix_cache_queries_total"),
            (PrefixCacheHits, "vllm:prefix_cache_hits_total"),
            (PromptTokens, "vllm:prompt_tokens_total"),
            (GenerationTokens, "vllm:generation_tokens_total"),
            (Preemptions, "vllm:num_preemptions_total"),
            (RequestsFinished, "vllm:request_success_total"),
            (Ttft, "vllm:time_to_first_token_seconds"),
            (Itl, "vllm:inter_token_latency_seconds"),
            (E2e, "vllm:e2e_request_latency_seconds"),
            (QueueTime, "vllm:request_queue_time_seconds"),
            (PrefillTime, "vllm:request_prefill_time_seconds"),
            (DecodeTime, "vllm:request_decode_time_seconds"),
        ]
    );
    let m = VLLM_LABELS;
    assert_eq!(value(&s, "vllm:num_requests_running", m), 3.0);
    assert_eq!(value(&s, "vllm:num_requests_waiting", m), 5.0);
    assert_eq!(value(&s, "vllm:kv_cache_usage_perc", m), 0.4215);
    assert_eq!(value(&s, "vllm:prefix_cache_queries_total", m), 22016.0);
    assert_eq!(value(&s, "vllm:prefix_cache_hits_total", m), 6144.0);
    assert_eq!(value(&s, "vllm:prompt_tokens_total", m), 21504.0);
    assert_eq!(value(&s, "vllm:generation_tokens_total", m), 5120.0);
    assert_eq!(value(&s, "vllm:num_preemptions_total", m), 2.0);
    let length =
        r#"engine="0",finished_reason="length",model_name="meta-llama/Llama-3.1-8B-Instruct""#;
    assert_eq!(value(&s, "vllm:request_success_total", length), 9.0);
    assert_eq!(expo::sum(&s, "vllm:request_success_total"), Some(40.0));
    assert_eq!(
        value(
            &s,
            "http_request_size_bytes_count",
            r#"handler="/v1/completions""#
        ),
        40.0
    );

    let ttft = histogram::buckets(&s, "vllm:time_to_first_token_seconds");
    assert_eq!(ttft.len(), 23);
    assert_eq!(
        (ttft[0], ttft[3], ttft[21], ttft[22]),
        (
            (0.001, 0.0),
            (0.02, 2.0),
            (2560.0, 42.0),
            (f64::INFINITY, 42.0)
        )
    );
    assert_eq!(
        value(&s, "vllm:time_to_first_token_seconds_sum", m),
        3.186827301979065
    );
    assert_eq!(value(&s, "vllm:time_to_first_token_seconds_count", m), 42.0);
    // p50: rank 21 falls in (0.06, 0.08], which holds observations 18..=24.
    let p50 = 0.06 + (0.08 - 0.06) * ((21.0 - 17.0) / (24.0 - 17.0));
    assert_eq!(histogram::quantile(0.5, &ttft), Some(p50));
    assert_eq!(
        histogram::mean(3.186827301979065, 42.0),
        Some(3.186827301979065 / 42.0)
    );

    // A V0 server: the older names.
    let v0 = expo::parse(
        "# TYPE vllm:gpu_cache_usage_perc gauge\n\
         vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n\
         # TYPE vllm:gpu_prefix_cache_hit_rate gauge\n\
         vllm:gpu_prefix_cache_hit_rate{model_name=\"m\"} 0.25\n\
         # TYPE vllm:gpu_prefix_cache_queries_total counter\n\
         vllm:gpu_prefix_cache_queries_total{model_name=\"m\"} 8.0\n\
         # TYPE vllm:gpu_prefix_cache_hits_total counter\n\
         vllm:gpu_prefix_cache_hits_total{model_name=\"m\"} 2.0\n\
         # TYPE vllm:time_per_output_token_seconds histogram\n\
         vllm:time_per_output_token_seconds_bucket{le=\"0.01\",model_name=\"m\"} 1.0\n\
         vllm:time_per_output_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 2.0\n\
         vllm:time_per_output_token_seconds_sum{model_name=\"m\"} 0.03\n\
         vllm:time_per_output_token_seconds_count{model_name=\"m\"} 2.0\n",
    )
    .unwrap();
    assert_eq!(
        resolved(Engine::Vllm, &v0),
        [
            (KvCacheUsage, "vllm:gpu_cache_usage_perc"),
            (PrefixCacheQueries, "vllm:gpu_prefix_cache_queries_total"),
            (PrefixCacheHits, "vllm:gpu_prefix_cache_hits_total"),
            (PrefixCacheHitRate, "vllm:gpu_prefix_cache_hit_rate"),
            (Itl, "vllm:time_per_output_token_seconds"),
        ]
    );
    covers(Engine::Vllm, &[&s, &v0]);
}

#[test]
fn sglang() {
    use Series::*;
    let s = expo::parse(&data("sglang.prom")).unwrap();
    assert_eq!(s.len(), 58);
    assert_eq!(detect(&s), Engine::Sglang);
    assert_eq!(
        resolved(Engine::Sglang, &s),
        [
            (Running, "sglang:num_running_reqs"),
            (Waiting, "sglang:num_queue_reqs"),
            (KvCacheUsage, "sglang:token_usage"),
            (PrefixCacheQueries, "sglang:prompt_tokens_total"),
            (PrefixCacheHits, "sglang:cached_tokens_total"),
            (PrefixCacheHitRate, "sglang:cache_hit_rate"),
            (PromptTokens, "sglang:prompt_tokens_total"),
            (GenerationTokens, "sglang:generation_tokens_total"),
            (Preemptions, "sglang:num_retracted_requests_total"),
            (RequestsFinished, "sglang:num_requests_total"),
            (Ttft, "sglang:time_to_first_token_seconds"),
            (Itl, "sglang:inter_token_latency_seconds"),
            (E2e, "sglang:e2e_request_latency_seconds"),
            (QueueTime, "sglang:queue_time_seconds"),
        ]
    );
    let scheduler =
        r#"engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",pp_rank="0",tp_rank="0""#;
    let model = r#"model_name="Qwen/Qwen2.5-7B-Instruct""#;
    assert_eq!(value(&s, "sglang:num_running_reqs", scheduler), 12.0);
    assert_eq!(value(&s, "sglang:num_queue_reqs", scheduler), 4.0);
    assert_eq!(value(&s, "sglang:token_usage", scheduler), 0.28);
    assert_eq!(
        value(&s, "sglang:cache_hit_rate", scheduler),
        0.007507552643049313
    );
    assert_eq!(value(&s, "sglang:prompt_tokens_total", model), 8128902.0);
    assert_eq!(
        value(&s, "sglang:generation_tokens_total", model),
        7557572.0
    );
    assert_eq!(
        expo::sum(&s, "sglang:cached_tokens_total"),
        Some(2013440.0 + 61440.0)
    );
    assert_eq!(value(&s, "sglang:num_requests_total", model), 9731.0);

    let queue = histogram::buckets(&s, "sglang:queue_time_seconds");
    assert_eq!(
        queue,
        [
            (0.0, 0.0),
            (0.1, 7690.0),
            (0.2, 8911.0),
            (0.5, 9650.0),
            (1.0, 9731.0),
            (f64::INFINITY, 9743.0)
        ]
    );
    let ttft = histogram::buckets(&s, "sglang:time_to_first_token_seconds");
    assert_eq!(ttft.len(), 19);
    assert_eq!(
        value(&s, "sglang:time_to_first_token_seconds_sum", model),
        2351.8979474117756
    );
    assert_eq!(
        value(&s, "sglang:inter_token_latency_seconds_count", model),
        7547829.0
    );

    // Before the rename to inter-token latency.
    let old = expo::parse(
        "# HELP sglang:time_per_output_token_seconds Histogram of time per output token in seconds.\n\
         # TYPE sglang:time_per_output_token_seconds histogram\n\
         sglang:time_per_output_token_seconds_sum{name=\"m\"} 2.5\n\
         sglang:time_per_output_token_seconds_bucket{le=\"0.005\",name=\"m\"} 0.0\n\
         sglang:time_per_output_token_seconds_bucket{le=\"+Inf\",name=\"m\"} 100.0\n\
         sglang:time_per_output_token_seconds_count{name=\"m\"} 100.0\n",
    )
    .unwrap();
    assert_eq!(
        resolved(Engine::Sglang, &old),
        [(Itl, "sglang:time_per_output_token_seconds")]
    );
    covers(Engine::Sglang, &[&s]);
}

#[test]
fn tgi() {
    use Series::*;
    let s = expo::parse(&data("tgi.prom")).unwrap();
    assert_eq!(s.len(), 82);
    assert_eq!(detect(&s), Engine::Tgi);
    assert_eq!(
        resolved(Engine::Tgi, &s),
        [
            (Running, "tgi_batch_current_size"),
            (Waiting, "tgi_queue_size"),
            (PromptTokens, "tgi_request_input_length_sum"),
            (GenerationTokens, "tgi_request_generated_tokens_sum"),
            (RequestsFinished, "tgi_request_success"),
            (Itl, "tgi_request_mean_time_per_token_duration"),
            (E2e, "tgi_request_duration"),
            (QueueTime, "tgi_request_queue_duration"),
        ]
    );
    assert_eq!(value(&s, "tgi_batch_current_size", ""), 4.0);
    assert_eq!(value(&s, "tgi_queue_size", ""), 2.0);
    assert_eq!(value(&s, "tgi_request_success", ""), 57.0);
    assert_eq!(value(&s, "tgi_request_failure", r#"err="validation""#), 1.0);
    assert_eq!(value(&s, "tgi_request_input_length_sum", ""), 17215.0);
    assert_eq!(value(&s, "tgi_request_generated_tokens_sum", ""), 8714.0);
    assert_eq!(
        expo::sum(&s, "tgi_batch_inference_count"),
        Some(61.0 + 7183.0)
    );

    // The summary: quantile rows keep the family name and carry the quantile in `le`.
    let quantiles: Vec<(Option<f64>, f64)> = s
        .iter()
        .filter(|r| r.metric == "tgi_request_skipped_tokens")
        .map(|r| (r.le, r.value))
        .collect();
    let qs = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];
    assert_eq!(quantiles, qs.map(|q| (Some(q), 0.0)));
    assert_eq!(value(&s, "tgi_request_skipped_tokens_count", ""), 57.0);

    // TGI's bounds (0.0001 * 1.5^k, printed by Rust) read back exactly.
    let itl = histogram::buckets(&s, "tgi_request_mean_time_per_token_duration");
    let mut bound = 0.0001;
    let expected: Vec<f64> = (0..35)
        .map(|_| {
            bound *= 1.5;
            bound
        })
        .chain([f64::INFINITY])
        .collect();
    assert_eq!(itl.iter().map(|b| b.0).collect::<Vec<_>>(), expected);
    // p90: rank 51.3 falls in bucket 14, which holds observations 32..=52.
    let p90 = expected[13] + (expected[14] - expected[13]) * ((0.9 * 57.0 - 31.0) / (52.0 - 31.0));
    assert_eq!(histogram::quantile(0.9, &itl), Some(p90));
    covers(Engine::Tgi, &[&s]);
}

#[test]
fn llamacpp() {
    use Series::*;
    let s = expo::parse(&data("llamacpp.prom")).unwrap();
    assert_eq!(s.len(), 12);
    assert_eq!(detect(&s), Engine::LlamaCpp);
    assert_eq!(
        resolved(Engine::LlamaCpp, &s),
        [
            (Running, "llamacpp:requests_processing"),
            (Waiting, "llamacpp:requests_deferred"),
            (PrefixCacheHits, "llamacpp:prompt_tokens_cached_total"),
            (PromptTokens, "llamacpp:prompt_tokens_total"),
            (GenerationTokens, "llamacpp:tokens_predicted_total"),
        ]
    );
    assert_eq!(value(&s, "llamacpp:requests_processing", ""), 3.0);
    assert_eq!(value(&s, "llamacpp:requests_deferred", ""), 1.0);
    assert_eq!(value(&s, "llamacpp:prompt_tokens_total", ""), 48213.0);
    assert_eq!(
        value(&s, "llamacpp:prompt_tokens_cached_total", ""),
        12288.0
    );
    // Six significant digits: 1048576 tokens print as 1.04858e+06.
    assert_eq!(value(&s, "llamacpp:tokens_predicted_total", ""), 1048580.0);

    // Older builds had the KV cache gauges.
    let old = expo::parse(
        "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n\
         # TYPE llamacpp:kv_cache_usage_ratio gauge\n\
         llamacpp:kv_cache_usage_ratio 0.849609\n\
         # HELP llamacpp:kv_cache_tokens KV-cache tokens.\n\
         # TYPE llamacpp:kv_cache_tokens gauge\n\
         llamacpp:kv_cache_tokens 6961\n",
    )
    .unwrap();
    assert_eq!(
        resolved(Engine::LlamaCpp, &old),
        [(KvCacheUsage, "llamacpp:kv_cache_usage_ratio")]
    );
    assert_eq!(value(&old, "llamacpp:kv_cache_usage_ratio", ""), 0.849609);
    covers(Engine::LlamaCpp, &[&s, &old]);
}

#[test]
fn detect_counts_prefixes() {
    assert_eq!(engine::detect([]), Engine::Unknown);
    assert_eq!(
        engine::detect(["http_requests_total", "process_cpu_seconds_total"]),
        Engine::Unknown
    );
    // Most names win, whatever else the scrape holds; a tie goes to the first engine listed.
    assert_eq!(
        engine::detect(["tgi_queue_size", "vllm:x", "tgi_request_count"]),
        Engine::Tgi
    );
    assert_eq!(engine::detect(["llamacpp:a", "sglang:b"]), Engine::Sglang);
    // `vllm_` (the 2023 aioprometheus names) is not `vllm:`.
    assert_eq!(
        engine::detect(["vllm_prompt_tokens_total"]),
        Engine::Unknown
    );
}

#[test]
fn resolve_needs_the_buckets_of_a_histogram() {
    let only_sum = |n: &str| {
        n == "vllm:e2e_request_latency_seconds_sum" || n == "vllm:e2e_request_latency_seconds"
    };
    assert!(engine::resolve(Engine::Vllm, Series::E2e, only_sum).is_none());
    let buckets = |n: &str| n == "vllm:e2e_request_latency_seconds_bucket";
    let (spec, name) = engine::resolve(Engine::Vllm, Series::E2e, buckets).unwrap();
    assert_eq!(
        (spec.series, name),
        (Series::E2e, "vllm:e2e_request_latency_seconds")
    );
    // Absent from the engine: None whatever is present.
    assert!(engine::resolve(Engine::Tgi, Series::Ttft, |_| true).is_none());
    assert!(engine::resolve(Engine::Unknown, Series::Running, |_| true).is_none());
}
