//! `workload.*`: when each request is sent, and with which prompt. See docs/WORKLOADS.md.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Kind of workload the workload stage produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadType {
    /// A target QPS with an arrival process, for `duration_ms`.
    #[default]
    Constant,
    /// AIBrix's fluctuating patterns (A*sin + B + noise) for traffic and lengths, for `duration_ms`.
    Synthetic,
    /// Grafana CSV exports (maas or cloudide flavour): rate and length percentiles per window.
    Stat,
    /// Azure LLM inference trace replay (TIMESTAMP,ContextTokens,GeneratedTokens).
    Azure,
    /// Mooncake trace replay (hash_ids -> shared 512-token prompt blocks).
    Mooncake,
    /// Closed loop: `concurrency` requests in flight until the total is done.
    Concurrency,
}

impl WorkloadType {
    /// The name used in config files and workload headers.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadType::Constant => "constant",
            WorkloadType::Synthetic => "synthetic",
            WorkloadType::Stat => "stat",
            WorkloadType::Azure => "azure",
            WorkloadType::Mooncake => "mooncake",
            WorkloadType::Concurrency => "concurrency",
        }
    }
}

/// Where prompt text comes from when a request has a target length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptSource {
    /// The dataset prompt whose token length is closest to the target (ties broken at random);
    /// without a target length, dataset prompts are used as they are (sessions kept).
    #[default]
    Dataset,
    /// Generated text of exactly the target length (needs a target length).
    Synthetic,
}

/// `workload`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Which generator runs.
    #[serde(rename = "type")]
    pub kind: WorkloadType,
    /// Length in ms of generated workloads (constant, synthetic). Trace replays and stat files
    /// keep their own length (use their windows and `max_requests` to shorten them).
    #[schemars(range(min = 1))]
    pub duration_ms: u64,
    /// Step of the synthetic pattern curves in ms (each step has one rate and one target length).
    #[schemars(range(min = 1))]
    pub interval_ms: u64,
    /// Multiplies every timestamp of trace replays and stat files (azure, mooncake, stat):
    /// 0.5 replays twice as fast in exactly half the span. Must stay 1 for other types.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub time_scale: f64,
    /// Keep only the first this many requests (by time).
    #[schemars(range(min = 1))]
    pub max_requests: Option<u64>,
    /// Exactly this many requests (constant and concurrency workloads): a constant workload
    /// draws this many arrivals at its target rate, however long that takes (`duration_ms` is
    /// then not used); a closed loop sends this many in all.
    #[schemars(range(min = 1, max = crate::MAX_REQUESTS))]
    pub num_requests: Option<u64>,
    /// Where prompts come from (ignored by mooncake, whose prompts are its hash blocks).
    pub prompt_source: PromptSource,
    /// Sessions of a session dataset that are open at once when prompts are used as they are:
    /// each request goes to one of the open sessions at random and takes its next turn; a
    /// finished session is replaced by the next one (AIBrix's max_concurrent_sessions).
    #[schemars(range(min = 1))]
    pub max_active_sessions: u32,
    /// `workload.constant`
    pub constant: ConstantWorkload,
    /// `workload.synthetic`
    pub synthetic: SyntheticWorkload,
    /// `workload.stat`
    pub stat: StatWorkload,
    /// `workload.azure`
    pub azure: AzureWorkload,
    /// `workload.mooncake`
    pub mooncake: MooncakeWorkload,
    /// `workload.concurrency`
    pub concurrency: ConcurrencyWorkload,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            kind: WorkloadType::Constant,
            duration_ms: 20_000,
            interval_ms: 1000,
            time_scale: 1.0,
            max_requests: None,
            num_requests: None,
            prompt_source: PromptSource::Dataset,
            max_active_sessions: 16,
            constant: ConstantWorkload::default(),
            synthetic: SyntheticWorkload::default(),
            stat: StatWorkload::default(),
            azure: AzureWorkload::default(),
            mooncake: MooncakeWorkload::default(),
            concurrency: ConcurrencyWorkload::default(),
        }
    }
}

/// Inter-arrival process. For time-varying rates (synthetic, stat) the process runs in
/// operational time (the integral of the rate), so the mean rate follows the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process).
    #[default]
    Poisson,
    /// Exactly 1/qps apart, the first at 0.
    Fixed,
    /// Gaps uniform in [0, 2/qps].
    Uniform,
    /// Gamma gaps with shape = burstiness (1 = Poisson, <1 burstier, >1 smoother), mean 1/qps.
    Gamma,
}

/// `workload.constant`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConstantWorkload {
    /// Mean requests per second.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub target_qps: f64,
    /// Arrival process.
    pub arrival: Arrival,
    /// Gamma shape (only for `arrival: gamma`).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub burstiness: f64,
    /// Target prompt length in tokens for every request (null: dataset prompts as they are).
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub prompt_length: Option<u32>,
    /// Output length for every request (null: the dataset's, else unset).
    #[schemars(range(min = 1))]
    pub output_length: Option<u32>,
    /// Ramp the rate up to `target_qps` instead of starting there (null: no ramp), as vLLM's
    /// ramp-up strategies do: from `start_qps` over the first `ramp_s` seconds of
    /// `duration_ms`, then a hold at the target, then (with `down_s`) back down to `start_qps`
    /// over the last `down_s` seconds.
    pub ramp: Option<Ramp>,
}

/// How the rate ramps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum RampShape {
    /// The rate grows by the same amount every second.
    #[default]
    Linear,
    /// The rate grows by the same factor every second (`start_qps` must be > 0).
    Exponential,
}

/// `workload.constant.ramp`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Ramp {
    /// Linear or exponential.
    pub shape: RampShape,
    /// The rate at the start of the ramp, req/s.
    #[schemars(range(min = 0.0))]
    pub start_qps: f64,
    /// Seconds to reach `target_qps`.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub ramp_s: f64,
    /// Seconds of ramping back down at the end (0: none).
    #[schemars(range(min = 0.0))]
    pub down_s: f64,
}

impl Default for Ramp {
    fn default() -> Self {
        Ramp {
            shape: RampShape::Linear,
            start_qps: 1.0,
            ramp_s: 10.0,
            down_s: 0.0,
        }
    }
}

impl Default for ConstantWorkload {
    fn default() -> Self {
        ConstantWorkload {
            target_qps: 5.0,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
            prompt_length: None,
            output_length: None,
            ramp: None,
        }
    }
}

/// A named AIBrix fluctuation preset: `A*sin(2*pi*periods*t/duration) + mean + N(0, 0.1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternPreset {
    /// A = 0.5*mean, 5 periods over the run, only rising: reaches 1.5*mean within 5% of the run.
    QuickRising,
    /// A = 0.5*mean, a quarter period over the run, only rising: climbs to 1.5*mean at the end.
    SlowRising,
    /// A = 0.1*mean, one period over the run.
    SlightFluctuation,
    /// A = 0.5*mean, 12 periods over the run.
    SevereFluctuation,
}

/// `workload.synthetic`: traffic, prompt-length and completion-length curves, each a preset or a
/// pattern file `{fluctuate, mean, noise, period_len_ms | periods, only_rise}` (a file wins
/// over a preset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticWorkload {
    /// Preset for the request rate curve (requests/s around `traffic_mean`).
    pub traffic_pattern: Option<PatternPreset>,
    /// Preset for the prompt length curve (null: no target, dataset prompts as they are).
    pub prompt_len_pattern: Option<PatternPreset>,
    /// Preset for the completion length curve (null: the dataset's output lengths).
    pub completion_len_pattern: Option<PatternPreset>,
    /// Pattern file for the request rate (JSON, see config/patterns/).
    #[schemars(extend("format" = "bench-path"))]
    pub traffic_file: Option<String>,
    /// Pattern file for the prompt length.
    #[schemars(extend("format" = "bench-path"))]
    pub prompt_len_file: Option<String>,
    /// Pattern file for the completion length.
    #[schemars(extend("format" = "bench-path"))]
    pub completion_len_file: Option<String>,
    /// Mean of the traffic preset, requests/s (AIBrix: 6).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub traffic_mean: f64,
    /// Mean of the prompt length preset, tokens (AIBrix: 1024).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub prompt_len_mean: f64,
    /// Mean of the completion length preset, tokens (AIBrix: 1024).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub completion_len_mean: f64,
    /// Arrival process under the rate curve.
    pub arrival: Arrival,
    /// Gamma shape (only for `arrival: gamma`).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub burstiness: f64,
}

impl Default for SyntheticWorkload {
    fn default() -> Self {
        SyntheticWorkload {
            traffic_pattern: Some(PatternPreset::SlowRising),
            prompt_len_pattern: None,
            completion_len_pattern: None,
            traffic_file: None,
            prompt_len_file: None,
            completion_len_file: None,
            traffic_mean: 6.0,
            prompt_len_mean: 1024.0,
            completion_len_mean: 1024.0,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
        }
    }
}

/// Flavour of a Grafana export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatTraceType {
    /// `"Time","Total","Success","4xx Error"` plus `"Time","P50",...` length files.
    #[default]
    Maas,
    /// `"Time","<any rate name>"`; length files optional.
    Cloudide,
}

/// `workload.stat`: Grafana CSV exports, one row per window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StatWorkload {
    /// Traffic CSV (requests/s per window).
    #[schemars(extend("format" = "bench-path"))]
    pub traffic_file: Option<String>,
    /// Prompt length percentiles CSV (`"Time","P50","P70","P90","P99"`), same rows as traffic
    /// (null: no target, dataset prompts as they are).
    #[schemars(extend("format" = "bench-path"))]
    pub prompt_len_file: Option<String>,
    /// Completion length percentiles CSV (`"Time","P50","P70","P95","P99"`), same rows as
    /// traffic (null: the dataset's output lengths).
    #[schemars(extend("format" = "bench-path"))]
    pub completion_len_file: Option<String>,
    /// Which flavour the traffic file is.
    pub trace_type: StatTraceType,
    /// Traffic column holding the rate (null: `Total` for maas, the first non-time column for
    /// cloudide).
    pub rate_column: Option<String>,
    /// Divides the rate column.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub qps_scale: f64,
    /// Divides the prompt lengths.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub input_scale: f64,
    /// Divides the completion lengths.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub output_scale: f64,
    /// Give each window exactly its share of requests (rate x window, rounded with carry so the
    /// total is the rounded sum), placed uniformly at random inside the window (poisson) or
    /// evenly (fixed). False: the arrival process alone decides (random counts).
    pub exact_counts: bool,
    /// Arrival process (with `exact_counts`: only poisson or fixed).
    pub arrival: Arrival,
    /// Gamma shape (only for `arrival: gamma`).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub burstiness: f64,
}

impl Default for StatWorkload {
    fn default() -> Self {
        StatWorkload {
            traffic_file: None,
            prompt_len_file: None,
            completion_len_file: None,
            trace_type: StatTraceType::Maas,
            rate_column: None,
            qps_scale: 1.0,
            input_scale: 1.0,
            output_scale: 1.0,
            exact_counts: true,
            arrival: Arrival::Poisson,
            burstiness: 1.0,
        }
    }
}

/// `workload.azure`: Azure LLM inference trace (TIMESTAMP,ContextTokens,GeneratedTokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AzureWorkload {
    /// The trace CSV (2023 or 2024 format).
    #[schemars(extend("format" = "bench-path"))]
    pub trace_path: Option<String>,
    /// Start of the replayed window, seconds from the first row (before time scaling); the
    /// workload's time 0 is the window start.
    #[schemars(range(min = 0.0))]
    pub start_s: Option<f64>,
    /// End of the replayed window (exclusive), seconds from the first row (before time scaling).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub end_s: Option<f64>,
}

/// `workload.mooncake`: Mooncake JSONL (timestamp ms, input_length, output_length, hash_ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MooncakeWorkload {
    /// The trace JSONL.
    #[schemars(extend("format" = "bench-path"))]
    pub trace_path: Option<String>,
    /// Tokens per hash block (512 for the Mooncake traces); every row must have
    /// ceil(input_length / block_tokens) hash_ids.
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub block_tokens: u32,
    /// Write every prompt as full text (AIBrix-compatible, ~600 MB for the conversation trace)
    /// instead of block references that the client turns into text when sending.
    pub materialize: bool,
    /// Start of the replayed window, ms from the first row (before time scaling); the
    /// workload's time 0 is the window start.
    #[schemars(range(min = 0.0))]
    pub start_ms: Option<f64>,
    /// End of the replayed window (exclusive), ms from the first row (before time scaling).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub end_ms: Option<f64>,
}

impl Default for MooncakeWorkload {
    fn default() -> Self {
        MooncakeWorkload {
            trace_path: None,
            block_tokens: 512,
            materialize: false,
            start_ms: None,
            end_ms: None,
        }
    }
}

/// `workload.concurrency`: closed loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyWorkload {
    /// Requests kept in flight.
    #[schemars(range(min = 1))]
    pub concurrency: u32,
    /// Total requests (null: one per dataset prompt, session turns included).
    #[schemars(range(min = 1, max = crate::MAX_REQUESTS))]
    pub num_requests: Option<u64>,
    /// Target prompt length for every request (null: dataset prompts as they are).
    #[schemars(range(min = 1, max = crate::MAX_PROMPT_TOKENS))]
    pub prompt_length: Option<u32>,
    /// Output length for every request (null: the dataset's).
    #[schemars(range(min = 1))]
    pub output_length: Option<u32>,
}

impl Default for ConcurrencyWorkload {
    fn default() -> Self {
        ConcurrencyWorkload {
            concurrency: 8,
            num_requests: None,
            prompt_length: None,
            output_length: None,
        }
    }
}

impl WorkloadConfig {
    /// Whether the prompts come from `dataset.jsonl` (the dataset stage's output).
    pub fn needs_dataset(&self) -> bool {
        self.kind != WorkloadType::Mooncake && self.prompt_source == PromptSource::Dataset
            || self.kind == WorkloadType::Concurrency
                && self
                    .num_requests
                    .or(self.concurrency.num_requests)
                    .is_none()
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        if let (WorkloadType::Constant, Some(r)) = (self.kind, &self.constant.ramp) {
            let dur_s = self.duration_ms as f64 / 1000.0;
            if self.num_requests.is_some() {
                e.push(
                    "workload.constant.ramp",
                    "a ramp spans workload.duration_ms: give the duration, not workload.num_requests",
                );
            } else if r.ramp_s + r.down_s > dur_s {
                e.push(
                    "workload.constant.ramp",
                    format!(
                        "ramp_s + down_s = {} s is longer than workload.duration_ms ({dur_s} s)",
                        r.ramp_s + r.down_s
                    ),
                );
            }
            if r.shape == RampShape::Exponential && r.start_qps <= 0.0 {
                e.push(
                    "workload.constant.ramp.start_qps",
                    "an exponential ramp starts above 0 (the rate grows by a factor)",
                );
            }
        }
        if let Some(n) = self.num_requests {
            match self.kind {
                WorkloadType::Constant => {}
                WorkloadType::Concurrency => {
                    if let Some(m) = self.concurrency.num_requests
                        && m != n
                    {
                        e.push(
                            "workload.num_requests",
                            format!("{n} differs from workload.concurrency.num_requests = {m}; give one"),
                        );
                    }
                }
                other => e.push(
                    "workload.num_requests",
                    format!(
                        "applies to constant and concurrency workloads, not `{}`; use workload.max_requests to keep the first requests of a trace",
                        serde_json::to_value(other).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                    ),
                ),
            }
        }
        let need = |e: &mut Errors, key: &str, v: &Option<String>| {
            if v.as_deref().is_none_or(str::is_empty) {
                e.push(
                    key,
                    format!(
                        "is required when workload.type is {}",
                        key.split('.').nth(1).unwrap_or("")
                    ),
                );
            }
        };
        let synthetic_prompts = self.prompt_source == PromptSource::Synthetic;
        let need_len = |e: &mut Errors, key: &str, has: bool| {
            if synthetic_prompts && !has {
                e.push(key, "is required when workload.prompt_source is synthetic (generated prompts need a target length)");
            }
        };
        match self.kind {
            WorkloadType::Azure => need(e, "workload.azure.trace_path", &self.azure.trace_path),
            WorkloadType::Mooncake => {
                need(e, "workload.mooncake.trace_path", &self.mooncake.trace_path)
            }
            WorkloadType::Stat => {
                need(e, "workload.stat.traffic_file", &self.stat.traffic_file);
                need_len(
                    e,
                    "workload.stat.prompt_len_file",
                    self.stat.prompt_len_file.is_some(),
                );
                if self.stat.exact_counts
                    && !matches!(self.stat.arrival, Arrival::Poisson | Arrival::Fixed)
                {
                    e.push(
                        "workload.stat.arrival",
                        "must be poisson or fixed while workload.stat.exact_counts is true (exact counts place requests inside each window)",
                    );
                }
            }
            WorkloadType::Synthetic => {
                let s = &self.synthetic;
                if s.traffic_pattern.is_none() && s.traffic_file.is_none() {
                    e.push(
                        "workload.synthetic.traffic_pattern",
                        "needs a preset or workload.synthetic.traffic_file",
                    );
                }
                need_len(
                    e,
                    "workload.synthetic.prompt_len_pattern",
                    s.prompt_len_pattern.is_some() || s.prompt_len_file.is_some(),
                );
            }
            WorkloadType::Constant => need_len(
                e,
                "workload.constant.prompt_length",
                self.constant.prompt_length.is_some(),
            ),
            WorkloadType::Concurrency => {
                need_len(
                    e,
                    "workload.concurrency.prompt_length",
                    self.concurrency.prompt_length.is_some(),
                );
                if synthetic_prompts && self.concurrency.num_requests.is_none() {
                    e.push(
                        "workload.concurrency.num_requests",
                        "is required when workload.prompt_source is synthetic",
                    );
                }
            }
        }
        if self.time_scale != 1.0
            && matches!(
                self.kind,
                WorkloadType::Constant | WorkloadType::Synthetic | WorkloadType::Concurrency
            )
        {
            e.push(
                "workload.time_scale",
                format!(
                    "applies to azure, mooncake and stat only; a {} workload is shaped by its rate and workload.duration_ms",
                    self.kind.name()
                ),
            );
        }
        if let (Some(a), Some(b)) = (self.azure.start_s, self.azure.end_s)
            && a >= b
        {
            e.push(
                "workload.azure.start_s",
                format!("{a} is not before workload.azure.end_s ({b})"),
            );
        }
        if let (Some(a), Some(b)) = (self.mooncake.start_ms, self.mooncake.end_ms)
            && a >= b
        {
            e.push(
                "workload.mooncake.start_ms",
                format!("{a} is not before workload.mooncake.end_ms ({b})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(w: WorkloadConfig) -> Vec<String> {
        let mut e = Errors::default();
        w.validate(&mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(errors(WorkloadConfig::default()).is_empty());
    }

    #[test]
    fn synthetic_prompts_need_a_target_length() {
        let mut w = WorkloadConfig {
            prompt_source: PromptSource::Synthetic,
            ..Default::default()
        };
        let e = errors(w.clone());
        assert!(
            e.iter()
                .any(|m| m.contains("`workload.constant.prompt_length`: is required")),
            "{e:?}"
        );
        w.constant.prompt_length = Some(100);
        assert!(errors(w.clone()).is_empty());
        w.kind = WorkloadType::Concurrency;
        let e = errors(w);
        assert!(
            e.iter()
                .any(|m| m.contains("`workload.concurrency.prompt_length`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("`workload.concurrency.num_requests`")),
            "{e:?}"
        );
    }

    #[test]
    fn time_scale_only_for_replays() {
        let w = WorkloadConfig {
            time_scale: 0.5,
            ..Default::default()
        };
        let e = errors(w.clone());
        assert!(
            e.iter()
                .any(|m| m
                    .contains("`workload.time_scale`: applies to azure, mooncake and stat only")),
            "{e:?}"
        );
        let w = WorkloadConfig {
            kind: WorkloadType::Azure,
            azure: AzureWorkload {
                trace_path: Some("t.csv".into()),
                ..Default::default()
            },
            ..w
        };
        assert!(errors(w).is_empty());
    }

    #[test]
    fn stat_exact_counts_reject_gamma_and_windows_must_be_ordered() {
        let mut w = WorkloadConfig {
            kind: WorkloadType::Stat,
            ..Default::default()
        };
        w.stat.traffic_file = Some("t.csv".into());
        w.stat.arrival = Arrival::Gamma;
        let e = errors(w.clone());
        assert!(
            e.iter().any(|m| m.contains("`workload.stat.arrival`")),
            "{e:?}"
        );
        w.stat.exact_counts = false;
        assert!(errors(w.clone()).is_empty());
        w.azure.start_s = Some(5.0);
        w.azure.end_s = Some(5.0);
        assert!(
            errors(w)
                .iter()
                .any(|m| m.contains("`workload.azure.start_s`"))
        );
    }

    #[test]
    fn needs_dataset() {
        let mut w = WorkloadConfig::default();
        assert!(w.needs_dataset());
        w.kind = WorkloadType::Mooncake;
        assert!(!w.needs_dataset());
        w.kind = WorkloadType::Azure;
        w.prompt_source = PromptSource::Synthetic;
        assert!(!w.needs_dataset());
        w.kind = WorkloadType::Concurrency;
        assert!(w.needs_dataset());
        w.concurrency.num_requests = Some(3);
        assert!(!w.needs_dataset());
    }
}
