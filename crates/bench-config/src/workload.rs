//! `workload.*`: when each request is sent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Kind of workload the workload stage produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadType {
    /// A target QPS with an arrival process.
    #[default]
    Constant,
    /// AIBrix's fluctuating patterns (A*sin + B + noise) for traffic and lengths.
    Synthetic,
    /// Grafana CSV exports (maas or cloudide flavour).
    Stat,
    /// Azure LLM inference trace replay.
    Azure,
    /// Mooncake trace replay (hash_ids -> shared prompt blocks).
    Mooncake,
    /// Closed loop: N requests in flight until the total is done.
    Concurrency,
}

/// Where prompt text comes from when a workload asks for a prompt of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptSource {
    /// Pick the dataset prompt whose token length is closest to the target.
    #[default]
    Dataset,
    /// Generate text of exactly the target length.
    Synthetic,
}

/// `workload`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Which generator runs.
    #[serde(rename = "type")]
    pub kind: WorkloadType,
    /// Length of generated workloads in ms (constant, synthetic); a cap for trace replays when set
    /// below the trace span.
    #[schemars(range(min = 1))]
    pub duration_ms: u64,
    /// Step of the rate curve in ms (synthetic patterns; stat uses the file's own step).
    #[schemars(range(min = 1))]
    pub interval_ms: u64,
    /// Multiplies every timestamp of trace replays and stat files: 0.5 replays twice as fast.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub time_scale: f64,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// Where prompts come from when a request has a target length.
    pub prompt_source: PromptSource,
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
            prompt_source: PromptSource::Dataset,
            constant: ConstantWorkload::default(),
            synthetic: SyntheticWorkload::default(),
            stat: StatWorkload::default(),
            azure: AzureWorkload::default(),
            mooncake: MooncakeWorkload::default(),
            concurrency: ConcurrencyWorkload::default(),
        }
    }
}

/// Inter-arrival process of the constant workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process).
    #[default]
    Poisson,
    /// Exactly 1/qps apart.
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
    /// Prompt length in tokens for every request (null: take the dataset's prompts as they are).
    pub prompt_length: Option<u32>,
    /// Output length for every request (null: the dataset's, else unset).
    pub output_length: Option<u32>,
}

impl Default for ConstantWorkload {
    fn default() -> Self {
        ConstantWorkload { target_qps: 5.0, arrival: Arrival::Poisson, burstiness: 1.0, prompt_length: None, output_length: None }
    }
}

/// A named AIBrix fluctuation preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternPreset {
    /// Rises fast over the run.
    QuickRising,
    /// Rises slowly over the run.
    SlowRising,
    /// Small fluctuation around the mean.
    SlightFluctuation,
    /// Large fluctuation around the mean.
    SevereFluctuation,
}

/// `workload.synthetic`: traffic, prompt-length and completion-length curves, each a preset or a
/// pattern file `{fluctuate, mean, noise, period_len_ms, only_rise}` (a file wins over a preset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticWorkload {
    /// Preset for the request rate curve.
    pub traffic_pattern: Option<PatternPreset>,
    /// Preset for the prompt length curve (null: dataset lengths as they are).
    pub prompt_len_pattern: Option<PatternPreset>,
    /// Preset for the completion length curve (null: dataset lengths as they are).
    pub completion_len_pattern: Option<PatternPreset>,
    /// Pattern file for the request rate.
    pub traffic_file: Option<String>,
    /// Pattern file for the prompt length.
    pub prompt_len_file: Option<String>,
    /// Pattern file for the completion length.
    pub completion_len_file: Option<String>,
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
        }
    }
}

/// Flavour of a Grafana export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatTraceType {
    /// `"Time","Total","Success","4xx Error"` plus P50.. length files.
    #[default]
    Maas,
    /// `"Time","Rate"` (any rate column name).
    Cloudide,
}

/// `workload.stat`: Grafana CSV exports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StatWorkload {
    /// Traffic CSV.
    pub traffic_file: Option<String>,
    /// Prompt length percentiles CSV (maas), same rows as traffic.
    pub prompt_len_file: Option<String>,
    /// Completion length percentiles CSV (maas), same rows as traffic.
    pub completion_len_file: Option<String>,
    /// Which flavour the files are.
    pub trace_type: StatTraceType,
    /// Divides the rate column.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub qps_scale: f64,
    /// Divides the prompt lengths.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub input_scale: f64,
    /// Divides the completion lengths.
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub output_scale: f64,
}

impl Default for StatWorkload {
    fn default() -> Self {
        StatWorkload {
            traffic_file: None,
            prompt_len_file: None,
            completion_len_file: None,
            trace_type: StatTraceType::Maas,
            qps_scale: 1.0,
            input_scale: 1.0,
            output_scale: 1.0,
        }
    }
}

/// `workload.azure`: Azure LLM inference trace (TIMESTAMP,ContextTokens,GeneratedTokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AzureWorkload {
    /// The trace CSV.
    pub trace_path: Option<String>,
    /// Start of the replayed window, seconds from the first row (before time scaling).
    pub start_s: Option<f64>,
    /// End of the replayed window, seconds from the first row (before time scaling).
    pub end_s: Option<f64>,
}

/// `workload.mooncake`: Mooncake JSONL (timestamp ms, input_length, output_length, hash_ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MooncakeWorkload {
    /// The trace JSONL.
    pub trace_path: Option<String>,
    /// Tokens per hash block.
    #[schemars(range(min = 1))]
    pub block_tokens: u32,
    /// Write every prompt as full text (AIBrix-compatible, large) instead of block references.
    pub materialize: bool,
    /// Start of the replayed window, ms (before time scaling).
    pub start_ms: Option<f64>,
    /// End of the replayed window, ms (before time scaling).
    pub end_ms: Option<f64>,
}

impl Default for MooncakeWorkload {
    fn default() -> Self {
        MooncakeWorkload { trace_path: None, block_tokens: 512, materialize: false, start_ms: None, end_ms: None }
    }
}

/// `workload.concurrency`: closed loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyWorkload {
    /// Requests kept in flight.
    #[schemars(range(min = 1))]
    pub concurrency: u32,
    /// Total requests (null: one per dataset prompt).
    pub num_requests: Option<u64>,
    /// Prompt length for every request (null: dataset prompts as they are).
    pub prompt_length: Option<u32>,
    /// Output length for every request (null: the dataset's).
    pub output_length: Option<u32>,
}

impl Default for ConcurrencyWorkload {
    fn default() -> Self {
        ConcurrencyWorkload { concurrency: 8, num_requests: None, prompt_length: None, output_length: None }
    }
}

impl WorkloadConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        let need = |e: &mut Errors, key: &str, v: &Option<String>| {
            if v.as_deref().is_none_or(str::is_empty) {
                e.push(key, format!("is required when workload.type is {}", key.split('.').nth(1).unwrap_or("")));
            }
        };
        match self.kind {
            WorkloadType::Azure => need(e, "workload.azure.trace_path", &self.azure.trace_path),
            WorkloadType::Mooncake => need(e, "workload.mooncake.trace_path", &self.mooncake.trace_path),
            WorkloadType::Stat => {
                need(e, "workload.stat.traffic_file", &self.stat.traffic_file);
                if self.stat.trace_type == StatTraceType::Maas {
                    need(e, "workload.stat.prompt_len_file", &self.stat.prompt_len_file);
                    need(e, "workload.stat.completion_len_file", &self.stat.completion_len_file);
                }
            }
            WorkloadType::Synthetic => {
                if self.synthetic.traffic_pattern.is_none() && self.synthetic.traffic_file.is_none() {
                    e.push("workload.synthetic.traffic_pattern", "needs a preset or workload.synthetic.traffic_file");
                }
            }
            _ => {}
        }
        if let (Some(a), Some(b)) = (self.azure.start_s, self.azure.end_s)
            && a >= b
        {
            e.push("workload.azure.start_s", format!("{a} is not before workload.azure.end_s ({b})"));
        }
        if let (Some(a), Some(b)) = (self.mooncake.start_ms, self.mooncake.end_ms)
            && a >= b
        {
            e.push("workload.mooncake.start_ms", format!("{a} is not before workload.mooncake.end_ms ({b})"));
        }
    }
}
