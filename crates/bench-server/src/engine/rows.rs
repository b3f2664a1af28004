//! The rows of [`super::table()`]: one per (engine, series) the engine exposes, each name checked
//! against the engine's source (see the parent module). Ordered by engine, then by
//! [`Series::ALL`]; a test holds the order and `docs/METRICS.md` is generated from it.

use super::{Engine, Kind, Series, SeriesSpec};

const fn row(
    engine: Engine,
    series: Series,
    kind: Kind,
    names: &'static [&'static str],
    note: &'static str,
) -> SeriesSpec {
    SeriesSpec {
        engine,
        series,
        kind,
        names,
        scale: 1.0,
        note,
    }
}

/// Ordered by engine, then by [`Series::ALL`].
pub(super) static TABLE: &[SeriesSpec] = {
    use Engine::{LlamaCpp, Sglang, Tgi, Vllm};
    use Kind::{Counter, Gauge, Histogram};
    use Series::*;
    &[
        // vLLM (V1 engine; the V0 gauge for the hit rate is the only V0-only row)
        row(
            Vllm,
            Running,
            Gauge,
            &["vllm:num_requests_running"],
            "One series per `engine` label (data-parallel ranks): sum them.",
        ),
        row(
            Vllm,
            Waiting,
            Gauge,
            &["vllm:num_requests_waiting"],
            "Requests waiting for the scheduler, preempted ones included.",
        ),
        row(
            Vllm,
            KvCacheUsage,
            Gauge,
            &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
            "A fraction 0..1 despite `_perc` (its HELP: 1 means 100 percent); renamed in 0.9.",
        ),
        row(
            Vllm,
            PrefixCacheQueries,
            Counter,
            &[
                "vllm:prefix_cache_queries_total",
                "vllm:gpu_prefix_cache_queries_total",
            ],
            "Prompt tokens looked up in the prefix cache; `gpu_` names before 0.9.",
        ),
        row(
            Vllm,
            PrefixCacheHits,
            Counter,
            &[
                "vllm:prefix_cache_hits_total",
                "vllm:gpu_prefix_cache_hits_total",
            ],
            "Of those, tokens found cached: hit rate = hits / queries over the window.",
        ),
        row(
            Vllm,
            PrefixCacheHitRate,
            Gauge,
            &["vllm:gpu_prefix_cache_hit_rate"],
            "V0 engine only (V1 has the two counters).",
        ),
        row(
            Vllm,
            PromptTokens,
            Counter,
            &["vllm:prompt_tokens_total"],
            "Prompt tokens prefilled, counted per engine step.",
        ),
        row(
            Vllm,
            GenerationTokens,
            Counter,
            &["vllm:generation_tokens_total"],
            "Output tokens, counted per engine step.",
        ),
        row(
            Vllm,
            Preemptions,
            Counter,
            &["vllm:num_preemptions_total"],
            "Requests preempted for lack of KV cache (recomputed later).",
        ),
        row(
            Vllm,
            RequestsFinished,
            Counter,
            &["vllm:request_success_total"],
            "One series per `finished_reason` (stop, length, abort): sum them.",
        ),
        row(
            Vllm,
            Ttft,
            Histogram,
            &["vllm:time_to_first_token_seconds"],
            "From arrival at the server to the first token: no network, queueing included.",
        ),
        row(
            Vllm,
            Itl,
            Histogram,
            &[
                "vllm:inter_token_latency_seconds",
                "vllm:time_per_output_token_seconds",
            ],
            "One observation per output token gap; the older name (same data) until 0.11.",
        ),
        row(
            Vllm,
            E2e,
            Histogram,
            &["vllm:e2e_request_latency_seconds"],
            "Arrival to finish, finished requests only.",
        ),
        row(
            Vllm,
            QueueTime,
            Histogram,
            &["vllm:request_queue_time_seconds"],
            "Time in the WAITING state before the first schedule.",
        ),
        row(
            Vllm,
            PrefillTime,
            Histogram,
            &["vllm:request_prefill_time_seconds"],
            "First schedule to first token.",
        ),
        row(
            Vllm,
            DecodeTime,
            Histogram,
            &["vllm:request_decode_time_seconds"],
            "First token to last token.",
        ),
        // SGLang (`--enable-metrics`)
        row(
            Sglang,
            Running,
            Gauge,
            &["sglang:num_running_reqs"],
            "One series per scheduler (`tp_rank`, `dp_rank` labels): sum them. Needs `--enable-metrics`.",
        ),
        row(
            Sglang,
            Waiting,
            Gauge,
            &["sglang:num_queue_reqs"],
            "The scheduler's waiting queue.",
        ),
        row(
            Sglang,
            KvCacheUsage,
            Gauge,
            &["sglang:token_usage"],
            "Used share of the KV token pool, 0..1.",
        ),
        row(
            Sglang,
            PrefixCacheQueries,
            Counter,
            &["sglang:prompt_tokens_total"],
            "No queries counter: every prompt token is looked up in the radix cache, so the prompt counter is the denominator.",
        ),
        row(
            Sglang,
            PrefixCacheHits,
            Counter,
            &["sglang:cached_tokens_total"],
            "Prompt tokens served from the radix cache, added when the request finishes; newer builds split it by `cache_source`: sum them.",
        ),
        row(
            Sglang,
            PrefixCacheHitRate,
            Gauge,
            &["sglang:cache_hit_rate"],
            "The scheduler's hit rate of its recent batches, not a ratio over the run: prefer the counters.",
        ),
        row(
            Sglang,
            PromptTokens,
            Counter,
            &["sglang:prompt_tokens_total"],
            "Added when the request finishes, not when it is prefilled.",
        ),
        row(
            Sglang,
            GenerationTokens,
            Counter,
            &["sglang:generation_tokens_total"],
            "Added when the request finishes, not per token.",
        ),
        row(
            Sglang,
            Preemptions,
            Counter,
            &["sglang:num_retracted_requests_total"],
            "Retracted requests (SGLang's preemption); older builds only have the gauge `sglang:num_retracted_reqs`.",
        ),
        row(
            Sglang,
            RequestsFinished,
            Counter,
            &["sglang:num_requests_total"],
            "Finished requests (aborted ones also count in `sglang:num_aborted_requests_total`).",
        ),
        row(
            Sglang,
            Ttft,
            Histogram,
            &["sglang:time_to_first_token_seconds"],
            "Measured by the tokenizer manager: no network, queueing included.",
        ),
        row(
            Sglang,
            Itl,
            Histogram,
            &[
                "sglang:inter_token_latency_seconds",
                "sglang:time_per_output_token_seconds",
            ],
            "Gap between streamed chunks divided by their tokens; the oldest builds filled the older name with e2e / tokens per request instead.",
        ),
        row(
            Sglang,
            E2e,
            Histogram,
            &["sglang:e2e_request_latency_seconds"],
            "Finished requests only.",
        ),
        row(
            Sglang,
            QueueTime,
            Histogram,
            &["sglang:queue_time_seconds"],
            "Scheduler waiting queue to first forward batch; prefill and decode times are only in `sglang:per_stage_req_latency_seconds` (a `stage` label), not read.",
        ),
        // TGI
        row(
            Tgi,
            Running,
            Gauge,
            &["tgi_batch_current_size"],
            "Requests in the running batch.",
        ),
        row(
            Tgi,
            Waiting,
            Gauge,
            &["tgi_queue_size"],
            "Requests in the router's queue.",
        ),
        row(
            Tgi,
            PromptTokens,
            Counter,
            &["tgi_request_input_length_sum"],
            "No counter: the `_sum` of the input-length histogram, a valid monotone counter, observed at validation (failed requests included).",
        ),
        row(
            Tgi,
            GenerationTokens,
            Counter,
            &["tgi_request_generated_tokens_sum"],
            "No counter: the `_sum` of the generated-tokens histogram, observed when a request succeeds.",
        ),
        row(
            Tgi,
            RequestsFinished,
            Counter,
            &["tgi_request_success"],
            "No `_total` suffix; `tgi_request_count` counts arrivals and `tgi_request_failure` failures.",
        ),
        row(
            Tgi,
            Itl,
            Histogram,
            &["tgi_request_mean_time_per_token_duration"],
            "One observation per request, its mean time per output token: not every gap.",
        ),
        row(
            Tgi,
            E2e,
            Histogram,
            &["tgi_request_duration"],
            "TGI has no time-to-first-token histogram; `tgi_request_inference_duration` (prefill + decode) maps to no series.",
        ),
        row(
            Tgi,
            QueueTime,
            Histogram,
            &["tgi_request_queue_duration"],
            "Time in the router's queue.",
        ),
        // llama.cpp (no histograms at all; nothing for finished requests or preemptions)
        row(
            LlamaCpp,
            Running,
            Gauge,
            &["llamacpp:requests_processing"],
            "Busy slots; `/metrics` needs `--metrics`, and llama.cpp has no latency histograms.",
        ),
        row(
            LlamaCpp,
            Waiting,
            Gauge,
            &["llamacpp:requests_deferred"],
            "Requests waiting for a free slot.",
        ),
        row(
            LlamaCpp,
            KvCacheUsage,
            Gauge,
            &["llamacpp:kv_cache_usage_ratio"],
            "Older builds only (0..1); current ones expose no KV usage.",
        ),
        row(
            LlamaCpp,
            PrefixCacheHits,
            Counter,
            &["llamacpp:prompt_tokens_cached_total"],
            "Newer builds: prompt tokens reused from the cache; hit rate = this / (this + prompt tokens).",
        ),
        row(
            LlamaCpp,
            PromptTokens,
            Counter,
            &["llamacpp:prompt_tokens_total"],
            "Prompt tokens computed, cache hits excluded; printed with 6 significant digits, so from 10^6 on it moves in steps.",
        ),
        row(
            LlamaCpp,
            GenerationTokens,
            Counter,
            &["llamacpp:tokens_predicted_total"],
            "Printed with 6 significant digits, like every llama.cpp value.",
        ),
    ]
};
