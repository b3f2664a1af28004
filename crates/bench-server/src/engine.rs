//! Which engine a scrape comes from, and where each engine keeps the series analysis reads.
//!
//! [`table()`] is the one mapping; `docs/METRICS.md` holds [`markdown_table`]'s output and a test
//! fails when the two differ. Names were checked against each engine's source and docs: vLLM
//! `vllm/v1/metrics/loggers.py` and "Production Metrics", SGLang `metrics/collector.py` and
//! "Production Metrics", TGI `router/src/server.rs` and `docs/source/reference/metrics.md`,
//! llama.cpp `tools/server` (`/metrics` with `--metrics`). Renamed series list the current name
//! first: a server of any version resolves to the name it exposes.

use serde::{Deserialize, Serialize};

mod rows;

/// An inference engine, as told by its metric prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// vLLM (`vllm:`).
    Vllm,
    /// SGLang (`sglang:`).
    Sglang,
    /// Hugging Face text-generation-inference (`tgi_`).
    Tgi,
    /// llama.cpp's `llama-server` started with `--metrics` (`llamacpp:`). Serialized as
    /// `llamacpp`, as [`Engine::as_str`] writes it (snake case would make it `llama_cpp`).
    #[serde(rename = "llamacpp")]
    LlamaCpp,
    /// None of the above.
    Unknown,
}

impl Engine {
    /// The engines with a prefix, in the order of the docs table.
    pub const KNOWN: [Engine; 4] = [Engine::Vllm, Engine::Sglang, Engine::Tgi, Engine::LlamaCpp];

    /// `vllm`, `sglang`, `tgi`, `llamacpp`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
            Engine::Tgi => "tgi",
            Engine::LlamaCpp => "llamacpp",
            Engine::Unknown => "unknown",
        }
    }

    /// The prefix every one of its metric names carries (empty for `Unknown`).
    pub fn prefix(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm:",
            Engine::Sglang => "sglang:",
            Engine::Tgi => "tgi_",
            Engine::LlamaCpp => "llamacpp:",
            Engine::Unknown => "",
        }
    }

    /// The engine's name as written in prose: `vLLM`, `SGLang`, `TGI`, `llama.cpp`.
    pub fn display_name(self) -> &'static str {
        match self {
            Engine::Vllm => "vLLM",
            Engine::Sglang => "SGLang",
            Engine::Tgi => "TGI",
            Engine::LlamaCpp => "llama.cpp",
            Engine::Unknown => "unknown",
        }
    }
}

/// The engine whose metric prefix (`vllm:`, `sglang:`, `tgi_`, `llamacpp:`) the most names carry;
/// `Unknown` when none does. A tie goes to the engine listed first in [`Engine::KNOWN`].
pub fn detect<'a>(metric_names: impl IntoIterator<Item = &'a str>) -> Engine {
    let mut counts = [0usize; Engine::KNOWN.len()];
    for name in metric_names {
        if let Some(i) = Engine::KNOWN
            .iter()
            .position(|e| name.starts_with(e.prefix()))
        {
            counts[i] += 1;
        }
    }
    let mut best = (0, Engine::Unknown);
    for (count, engine) in counts.into_iter().zip(Engine::KNOWN) {
        if count > best.0 {
            best = (count, engine);
        }
    }
    best.1
}

/// The series analysis reads, engine-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    /// Gauge: requests in the running batch.
    Running,
    /// Gauge: requests queued, not yet scheduled.
    Waiting,
    /// Gauge: the used share of the KV cache, 0..1.
    KvCacheUsage,
    /// Counter: prompt tokens looked up in the prefix cache.
    PrefixCacheQueries,
    /// Counter: prompt tokens found in the prefix cache.
    PrefixCacheHits,
    /// Gauge: a prefix-cache hit rate 0..1, for engines without the two counters.
    PrefixCacheHitRate,
    /// Counter: prompt tokens.
    PromptTokens,
    /// Counter: generated tokens.
    GenerationTokens,
    /// Counter: preempted (swapped out, recomputed or retracted) requests.
    Preemptions,
    /// Counter: finished requests.
    RequestsFinished,
    /// Histogram, seconds: time to first token.
    Ttft,
    /// Histogram, seconds: inter-token latency.
    Itl,
    /// Histogram, seconds: end-to-end request latency.
    E2e,
    /// Histogram, seconds: time queued before the first schedule.
    QueueTime,
    /// Histogram, seconds: prefill phase of a request.
    PrefillTime,
    /// Histogram, seconds: decode phase of a request.
    DecodeTime,
}

impl Series {
    /// Every series, in the order of the docs table.
    pub const ALL: [Series; 16] = [
        Series::Running,
        Series::Waiting,
        Series::KvCacheUsage,
        Series::PrefixCacheQueries,
        Series::PrefixCacheHits,
        Series::PrefixCacheHitRate,
        Series::PromptTokens,
        Series::GenerationTokens,
        Series::Preemptions,
        Series::RequestsFinished,
        Series::Ttft,
        Series::Itl,
        Series::E2e,
        Series::QueueTime,
        Series::PrefillTime,
        Series::DecodeTime,
    ];

    /// The serde name: `running`, `kv_cache_usage`, `ttft`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Series::Running => "running",
            Series::Waiting => "waiting",
            Series::KvCacheUsage => "kv_cache_usage",
            Series::PrefixCacheQueries => "prefix_cache_queries",
            Series::PrefixCacheHits => "prefix_cache_hits",
            Series::PrefixCacheHitRate => "prefix_cache_hit_rate",
            Series::PromptTokens => "prompt_tokens",
            Series::GenerationTokens => "generation_tokens",
            Series::Preemptions => "preemptions",
            Series::RequestsFinished => "requests_finished",
            Series::Ttft => "ttft",
            Series::Itl => "itl",
            Series::E2e => "e2e",
            Series::QueueTime => "queue_time",
            Series::PrefillTime => "prefill_time",
            Series::DecodeTime => "decode_time",
        }
    }

    /// The canonical unit, after [`SeriesSpec::scale`].
    pub fn unit(self) -> &'static str {
        match self {
            Series::Running | Series::Waiting | Series::RequestsFinished | Series::Preemptions => {
                "requests"
            }
            Series::KvCacheUsage | Series::PrefixCacheHitRate => "fraction",
            Series::PrefixCacheQueries
            | Series::PrefixCacheHits
            | Series::PromptTokens
            | Series::GenerationTokens => "tokens",
            Series::Ttft
            | Series::Itl
            | Series::E2e
            | Series::QueueTime
            | Series::PrefillTime
            | Series::DecodeTime => "s",
        }
    }
}

/// How a series is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value read as is.
    Gauge,
    /// A monotone total: read as a delta over the run window.
    Counter,
    /// `<name>_bucket`, `_sum` and `_count`: read as bucket deltas over the run window.
    Histogram,
}

/// Where one engine keeps one series.
#[derive(Debug, Clone, Copy)]
pub struct SeriesSpec {
    /// The engine.
    pub engine: Engine,
    /// The series.
    pub series: Series,
    /// How it is exposed.
    pub kind: Kind,
    /// Family names to look for, in order of preference (current name first, older names after),
    /// WITHOUT the _bucket/_sum/_count suffixes for histograms; counters with their `_total` as
    /// exposed.
    pub names: &'static [&'static str],
    /// Multiply values by this to get the canonical unit (e.g. 0.01 for a percentage, 1.0
    /// normally; histograms in ms bounds would get 0.001).
    pub scale: f64,
    /// One line for the docs table (what it is, caveats).
    pub note: &'static str,
}

/// The whole mapping table: one row per (engine, series) the engine exposes, ordered by engine
/// ([`Engine::KNOWN`]) then series ([`Series::ALL`]). The docs table is generated from it.
pub fn table() -> &'static [SeriesSpec] {
    rows::TABLE
}

/// The spec of `series` for `engine`, if that engine exposes it.
pub fn spec(engine: Engine, series: Series) -> Option<&'static SeriesSpec> {
    table()
        .iter()
        .find(|s| s.engine == engine && s.series == series)
}

/// Given the family/metric names present in a scrape, the name to read for (engine, series): the
/// first of `names` that is present (for histograms, present means `<name>_bucket` is present).
/// None when absent.
pub fn resolve(
    engine: Engine,
    series: Series,
    present: impl Fn(&str) -> bool,
) -> Option<(&'static SeriesSpec, &'static str)> {
    let spec = spec(engine, series)?;
    let name = spec.names.iter().copied().find(|name| match spec.kind {
        Kind::Histogram => present(&format!("{name}_bucket")),
        Kind::Gauge | Kind::Counter => present(name),
    })?;
    Some((spec, name))
}

/// The Markdown table of `docs/METRICS.md` (series, unit, one column per engine; older names in
/// parentheses, `—` when absent) followed by the notes, one bullet per row of [`table()`].
pub fn markdown_table() -> String {
    let mut out = String::from("| series | unit |");
    for engine in Engine::KNOWN {
        out.push_str(&format!(" {} |", engine.display_name()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(Engine::KNOWN.len()));
    out.push('\n');
    for series in Series::ALL {
        out.push_str(&format!("| `{}` | {} |", series.as_str(), series.unit()));
        for engine in Engine::KNOWN {
            let cell = match spec(engine, series) {
                None => "—".to_owned(),
                Some(s) => {
                    let mut cell = format!("`{}`", s.names[0]);
                    if s.names.len() > 1 {
                        let older: Vec<String> =
                            s.names[1..].iter().map(|n| format!("`{n}`")).collect();
                        cell.push_str(&format!(" ({})", older.join(", ")));
                    }
                    if s.scale != 1.0 {
                        cell.push_str(&format!(" × {}", s.scale));
                    }
                    cell
                }
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out.push_str("\nNotes:\n\n");
    for s in table() {
        out.push_str(&format!(
            "- {}, `{}`: {}\n",
            s.engine.display_name(),
            s.series.as_str(),
            s.note
        ));
    }
    out
}
