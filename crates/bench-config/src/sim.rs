//! `sim.*`: the simulated continuous-batching engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Engine presets: a small model on one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SimPreset {
    /// About a 1B model on one mid-range GPU.
    Tiny,
    /// About an 8B model on one A100-class GPU.
    #[default]
    Small,
    /// Explicit parameters only.
    Custom,
}

/// `sim`: parameters of the simulated engine. Fields left null take the preset's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Starting point for every null field below.
    pub preset: SimPreset,
    /// Model name served (and listed by /v1/models).
    pub model: String,
    /// Batch slots (vLLM's max_num_seqs).
    #[schemars(range(min = 1))]
    pub max_num_seqs: Option<u32>,
    /// KV-cache capacity in tokens; requests wait when it is full.
    #[schemars(range(min = 1))]
    pub kv_cache_tokens: Option<u64>,
    /// Tokens per KV block (prefix-cache granularity).
    #[schemars(range(min = 1))]
    pub block_size: Option<u32>,
    /// Token budget of one engine step (chunked prefill), vLLM's max_num_batched_tokens.
    #[schemars(range(min = 1))]
    pub max_num_batched_tokens: Option<u32>,
    /// Prefill cost per prompt token, microseconds.
    #[schemars(range(min = 0.0))]
    pub prefill_us_per_token: Option<f64>,
    /// Fixed cost of one engine step, microseconds.
    #[schemars(range(min = 0.0))]
    pub step_base_us: Option<f64>,
    /// Added decode step cost per running sequence, microseconds.
    #[schemars(range(min = 0.0))]
    pub decode_us_per_seq: Option<f64>,
    /// Added decode step cost per 1k tokens of KV read, microseconds.
    #[schemars(range(min = 0.0))]
    pub decode_us_per_kv_ktoken: Option<f64>,
    /// Reuse KV blocks of identical prefixes.
    pub prefix_caching: bool,
    /// Output length when a request gives no max_tokens.
    #[schemars(range(min = 1))]
    pub default_max_tokens: u32,
    /// Seed of the engine's own randomness (null: the run's seed).
    pub seed: Option<u64>,
    /// Scale of all engine time: 0.1 runs the same schedule 10x faster (for tests).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub time_scale: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            preset: SimPreset::Small,
            model: "sim-model".into(),
            max_num_seqs: None,
            kv_cache_tokens: None,
            block_size: None,
            max_num_batched_tokens: None,
            prefill_us_per_token: None,
            step_base_us: None,
            decode_us_per_seq: None,
            decode_us_per_kv_ktoken: None,
            prefix_caching: true,
            default_max_tokens: 128,
            seed: None,
            time_scale: 1.0,
        }
    }
}

impl SimConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        if self.preset == SimPreset::Custom {
            for (k, missing) in [
                ("max_num_seqs", self.max_num_seqs.is_none()),
                ("kv_cache_tokens", self.kv_cache_tokens.is_none()),
                ("block_size", self.block_size.is_none()),
                ("max_num_batched_tokens", self.max_num_batched_tokens.is_none()),
                ("prefill_us_per_token", self.prefill_us_per_token.is_none()),
                ("step_base_us", self.step_base_us.is_none()),
                ("decode_us_per_seq", self.decode_us_per_seq.is_none()),
                ("decode_us_per_kv_ktoken", self.decode_us_per_kv_ktoken.is_none()),
            ] {
                if missing {
                    e.push(&format!("sim.{k}"), "is required when sim.preset is custom");
                }
            }
        }
    }
}
