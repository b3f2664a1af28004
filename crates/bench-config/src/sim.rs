//! `sim.*`: the simulated continuous-batching engine.
//!
//! The numeric engine parameters come from a preset; any of them set explicitly overrides the
//! preset's value. [`SimConfig::params`] gives the resolved numbers. docs/SIM.md explains the
//! model and how each preset's numbers were chosen.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Engine presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SimPreset {
    /// About a 1B model (Llama-3.2-1B class) on one 24 GB A10G-class GPU.
    Tiny,
    /// About an 8B model (Llama-3.1-8B class, bf16) on one A100-80GB.
    #[default]
    Small,
    /// Every cost zero and capacities huge: a fast target for benchmarking the client.
    Zero,
    /// Explicit parameters only (every engine parameter must be set).
    Custom,
}

/// Resolved engine parameters (a preset with the explicit fields applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimParams {
    /// Batch slots (vLLM's max_num_seqs).
    pub max_num_seqs: u32,
    /// KV-cache capacity in tokens.
    pub kv_cache_tokens: u64,
    /// Tokens per KV block.
    pub block_size: u32,
    /// Token budget of one engine step.
    pub max_num_batched_tokens: u32,
    /// Longest prompt + output one request may have.
    pub max_model_len: u32,
    /// Prefill cost per prompt token, microseconds.
    pub prefill_us_per_token: f64,
    /// Fixed cost of one engine step, microseconds.
    pub step_base_us: f64,
    /// Added step cost per decoding sequence, microseconds.
    pub decode_us_per_seq: f64,
    /// Added step cost per 1000 tokens of KV read by the decoding sequences, microseconds.
    pub decode_us_per_kv_ktoken: f64,
}

impl SimPreset {
    /// The preset's parameters (None for `custom`).
    pub fn params(self) -> Option<SimParams> {
        match self {
            SimPreset::Tiny => Some(SimParams {
                max_num_seqs: 256,
                kv_cache_tokens: 520_000,
                block_size: 16,
                max_num_batched_tokens: 2048,
                max_model_len: 32_768,
                prefill_us_per_token: 40.0,
                step_base_us: 4_500.0,
                decode_us_per_seq: 20.0,
                decode_us_per_kv_ktoken: 65.0,
            }),
            SimPreset::Small => Some(SimParams {
                max_num_seqs: 256,
                kv_cache_tokens: 400_000,
                block_size: 16,
                max_num_batched_tokens: 2048,
                max_model_len: 32_768,
                prefill_us_per_token: 80.0,
                step_base_us: 9_000.0,
                decode_us_per_seq: 50.0,
                decode_us_per_kv_ktoken: 80.0,
            }),
            SimPreset::Zero => Some(SimParams {
                max_num_seqs: 65_536,
                kv_cache_tokens: 16 * 1024 * 1024,
                block_size: 16,
                max_num_batched_tokens: 1 << 30,
                max_model_len: 1 << 20,
                prefill_us_per_token: 0.0,
                step_base_us: 0.0,
                decode_us_per_seq: 0.0,
                decode_us_per_kv_ktoken: 0.0,
            }),
            SimPreset::Custom => None,
        }
    }
}

/// Where the simulated engine puts reasoning text in a chat delta or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningField {
    /// `reasoning_content` (SGLang; vLLM before 0.10).
    ReasoningContent,
    /// `reasoning` (vLLM 0.10 and later).
    Reasoning,
}

impl ReasoningField {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            ReasoningField::ReasoningContent => "reasoning_content",
            ReasoningField::Reasoning => "reasoning",
        }
    }
}

/// `sim`: parameters of the simulated engine. Engine parameters left null take the preset's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Starting point for every null engine parameter below: tiny, small, zero or custom.
    pub preset: SimPreset,
    /// Model name served (and listed by /v1/models); requests naming another model get 404.
    pub model: String,
    /// Tokenizer for prompt token counts, prefix-cache block hashes and the output words
    /// (null: the run's `tokenizer`, so usage matches the client's own count).
    #[serde(with = "crate::parsed::as_opt_string")]
    #[schemars(schema_with = "crate::parsed::opt_tokenizer_schema")]
    pub tokenizer: Option<bench_text::TokenizerSpec>,
    /// Batch slots (vLLM's max_num_seqs).
    #[schemars(range(min = 1))]
    pub max_num_seqs: Option<u32>,
    /// KV-cache capacity in tokens; requests wait when it is full.
    #[schemars(range(min = 1))]
    pub kv_cache_tokens: Option<u64>,
    /// Tokens per KV block (allocation and prefix-cache granularity).
    #[schemars(range(min = 1))]
    pub block_size: Option<u32>,
    /// Token budget of one engine step shared by decodes and prefill chunks (chunked prefill),
    /// vLLM's max_num_batched_tokens.
    #[schemars(range(min = 1))]
    pub max_num_batched_tokens: Option<u32>,
    /// Longest prompt + max_tokens a request may ask for (longer: HTTP 400, like vLLM).
    #[schemars(range(min = 2))]
    pub max_model_len: Option<u32>,
    /// Prefill cost per prompt token, microseconds.
    #[schemars(range(min = 0.0))]
    pub prefill_us_per_token: Option<f64>,
    /// Fixed cost of one engine step (weight read), microseconds.
    #[schemars(range(min = 0.0))]
    pub step_base_us: Option<f64>,
    /// Added decode step cost per running sequence, microseconds.
    #[schemars(range(min = 0.0))]
    pub decode_us_per_seq: Option<f64>,
    /// Added decode step cost per 1k tokens of KV read, microseconds.
    #[schemars(range(min = 0.0))]
    pub decode_us_per_kv_ktoken: Option<f64>,
    /// Reuse KV blocks of identical prefixes (shared prompts, session history).
    pub prefix_caching: bool,
    /// Mean output length, in tokens, where the simulated model emits EOS (geometric: each
    /// token ends the reply with probability 1/mean). Only for requests that do not force their
    /// length with `ignore_eos`; `min_tokens` and `max_tokens` still bound it.
    #[schemars(range(min = 1.0))]
    pub eos_mean_tokens: f64,
    /// Prompt tokens counted for each image content part (when `image_patch_px` is 0, or an
    /// image's size cannot be read).
    pub image_tokens: u32,
    /// Count an image by its size instead: ceil(width / px) x ceil(height / px) tokens, as
    /// Qwen2-VL-style models do (28: 14-pixel patches merged 2x2), read from the PNG or JPEG
    /// header of the data URL, at most `image_max_tokens`. 0: every image is `image_tokens`.
    pub image_patch_px: u32,
    /// The most tokens one image counts with `image_patch_px`.
    #[schemars(range(min = 1))]
    pub image_max_tokens: u32,
    /// Reasoning mode (chat only): the share of each reply streamed first as reasoning deltas,
    /// `floor(share x reply tokens)` tokens, the rest as answer content, the way vLLM's and
    /// SGLang's reasoning parsers stream it. 0: no reasoning.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub reasoning_share: f64,
    /// The delta field reasoning text goes in: `reasoning_content` (SGLang, vLLM before 0.10)
    /// or `reasoning` (vLLM 0.10 and later).
    pub reasoning_field: ReasoningField,
    /// Threads of the engine's own runtime (1: everything on one thread).
    #[schemars(range(min = 1, max = 64))]
    pub worker_threads: u32,
    /// Seed of the engine's own randomness (null: the run's seed).
    pub seed: Option<u64>,
    /// Scale of all engine time: 0.1 runs the same schedule 10x faster (for tests).
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub time_scale: f64,
    /// ComfyUI route (`POST /runsync`): fixed cost of one image job, ms (model load, VAE).
    #[schemars(range(min = 0.0))]
    pub image_base_ms: f64,
    /// ComfyUI route: cost of one sampling step per megapixel, ms (a 512x512 image at 20 steps
    /// is 5.24 megapixel-steps: 262 ms at the default). Jobs run one at a time.
    #[schemars(range(min = 0.0))]
    pub image_ms_per_mpixel_step: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            preset: SimPreset::Small,
            model: "sim-model".into(),
            tokenizer: None,
            max_num_seqs: None,
            kv_cache_tokens: None,
            block_size: None,
            max_num_batched_tokens: None,
            max_model_len: None,
            prefill_us_per_token: None,
            step_base_us: None,
            decode_us_per_seq: None,
            decode_us_per_kv_ktoken: None,
            prefix_caching: true,
            eos_mean_tokens: 256.0,
            image_tokens: 576,
            image_patch_px: 0,
            image_max_tokens: 16_384,
            reasoning_share: 0.0,
            reasoning_field: ReasoningField::ReasoningContent,
            worker_threads: 1,
            seed: None,
            time_scale: 1.0,
            image_base_ms: 20.0,
            image_ms_per_mpixel_step: 50.0,
        }
    }
}

impl SimConfig {
    /// A config of `preset` with everything else at its default.
    pub fn preset(preset: SimPreset) -> Self {
        SimConfig {
            preset,
            ..SimConfig::default()
        }
    }

    /// The resolved parameters: the preset's, with every explicit field applied. For `custom`,
    /// fields left null (an invalid config) take the `small` preset's value.
    pub fn params(&self) -> SimParams {
        let base = self
            .preset
            .params()
            .or(SimPreset::Small.params())
            .expect("small preset has parameters");
        SimParams {
            max_num_seqs: self.max_num_seqs.unwrap_or(base.max_num_seqs),
            kv_cache_tokens: self.kv_cache_tokens.unwrap_or(base.kv_cache_tokens),
            block_size: self.block_size.unwrap_or(base.block_size),
            max_num_batched_tokens: self
                .max_num_batched_tokens
                .unwrap_or(base.max_num_batched_tokens),
            max_model_len: self.max_model_len.unwrap_or(base.max_model_len),
            prefill_us_per_token: self
                .prefill_us_per_token
                .unwrap_or(base.prefill_us_per_token),
            step_base_us: self.step_base_us.unwrap_or(base.step_base_us),
            decode_us_per_seq: self.decode_us_per_seq.unwrap_or(base.decode_us_per_seq),
            decode_us_per_kv_ktoken: self
                .decode_us_per_kv_ktoken
                .unwrap_or(base.decode_us_per_kv_ktoken),
        }
    }

    /// Every problem with this section, for a config built in code rather than loaded
    /// (loading runs the same checks plus the schema's ranges).
    pub fn check(&self) -> Result<SimParams, Errors> {
        let mut e = Errors::default();
        self.validate(&mut e);
        let p = self.params();
        for (k, bad) in [
            ("sim.max_num_seqs", p.max_num_seqs == 0),
            ("sim.kv_cache_tokens", p.kv_cache_tokens == 0),
            ("sim.block_size", p.block_size == 0),
            ("sim.max_num_batched_tokens", p.max_num_batched_tokens == 0),
            ("sim.max_model_len", p.max_model_len < 2),
        ] {
            if bad {
                e.push(k, "must be at least 1 (max_model_len: 2)");
            }
        }
        for (k, v) in [
            ("sim.prefill_us_per_token", p.prefill_us_per_token),
            ("sim.step_base_us", p.step_base_us),
            ("sim.decode_us_per_seq", p.decode_us_per_seq),
            ("sim.decode_us_per_kv_ktoken", p.decode_us_per_kv_ktoken),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                e.push(k, format!("{v} must be a finite number >= 0"));
            }
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            e.push("sim.time_scale", format!("{} must be > 0", self.time_scale));
        }
        if !(self.eos_mean_tokens.is_finite() && self.eos_mean_tokens >= 1.0) {
            e.push(
                "sim.eos_mean_tokens",
                format!("{} must be >= 1", self.eos_mean_tokens),
            );
        }
        if !(self.reasoning_share.is_finite() && (0.0..=1.0).contains(&self.reasoning_share)) {
            e.push(
                "sim.reasoning_share",
                format!("{} must be in 0..=1", self.reasoning_share),
            );
        }
        if self.worker_threads == 0 || self.worker_threads > 64 {
            e.push(
                "sim.worker_threads",
                format!("{} must be in 1..=64", self.worker_threads),
            );
        }
        e.into_result().map(|_| p)
    }

    pub(crate) fn validate(&self, e: &mut Errors) {
        if self.preset == SimPreset::Custom {
            for (k, missing) in [
                ("max_num_seqs", self.max_num_seqs.is_none()),
                ("kv_cache_tokens", self.kv_cache_tokens.is_none()),
                ("block_size", self.block_size.is_none()),
                (
                    "max_num_batched_tokens",
                    self.max_num_batched_tokens.is_none(),
                ),
                ("max_model_len", self.max_model_len.is_none()),
                ("prefill_us_per_token", self.prefill_us_per_token.is_none()),
                ("step_base_us", self.step_base_us.is_none()),
                ("decode_us_per_seq", self.decode_us_per_seq.is_none()),
                (
                    "decode_us_per_kv_ktoken",
                    self.decode_us_per_kv_ktoken.is_none(),
                ),
            ] {
                if missing {
                    e.push(&format!("sim.{k}"), "is required when sim.preset is custom");
                }
            }
        }
        if self.model.trim().is_empty() {
            e.push("sim.model", "is empty");
        }
        let p = self.params();
        if p.block_size > 0 {
            // One request of max_model_len tokens must fit in the cache on its own, in whole
            // blocks, or it could never run (vLLM refuses to start in that case too).
            let need = (p.max_model_len as u64).div_ceil(p.block_size as u64) * p.block_size as u64;
            if need > p.kv_cache_tokens {
                e.push(
                    "sim.max_model_len",
                    format!(
                        "{} tokens ({need} in blocks of {}) do not fit in sim.kv_cache_tokens = {}; lower max_model_len or raise kv_cache_tokens",
                        p.max_model_len, p.block_size, p.kv_cache_tokens
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_explicit_fields_override() {
        for p in [SimPreset::Tiny, SimPreset::Small, SimPreset::Zero] {
            let c = SimConfig::preset(p);
            assert_eq!(c.check().unwrap(), p.params().unwrap());
        }
        let c = SimConfig {
            max_num_seqs: Some(4),
            step_base_us: Some(1.5),
            ..SimConfig::default()
        };
        let p = c.check().unwrap();
        assert_eq!(p.max_num_seqs, 4);
        assert_eq!(p.step_base_us, 1.5);
        assert_eq!(
            p.kv_cache_tokens,
            SimPreset::Small.params().unwrap().kv_cache_tokens
        );
    }

    #[test]
    fn custom_needs_every_parameter_and_model_len_must_fit() {
        let e = SimConfig::preset(SimPreset::Custom).check().unwrap_err();
        assert_eq!(
            e.0.iter()
                .filter(|e| e.msg.contains("required when sim.preset is custom"))
                .count(),
            9,
            "{e}"
        );
        let c = SimConfig {
            kv_cache_tokens: Some(1000),
            max_model_len: Some(1001),
            ..SimConfig::default()
        };
        let e = c.check().unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].key, "sim.max_model_len");
        // 1000 tokens round up to 63 blocks of 16 = 1008 tokens > 1000.
        let c = SimConfig {
            kv_cache_tokens: Some(1000),
            max_model_len: Some(1000),
            ..SimConfig::default()
        };
        assert!(c.check().is_err());
        let c = SimConfig {
            kv_cache_tokens: Some(1008),
            max_model_len: Some(1000),
            ..SimConfig::default()
        };
        assert!(c.check().is_ok());
    }

    #[test]
    fn check_rejects_bad_numbers() {
        let c = SimConfig {
            time_scale: 0.0,
            eos_mean_tokens: 0.5,
            worker_threads: 0,
            prefill_us_per_token: Some(f64::NAN),
            ..SimConfig::default()
        };
        let e = c.check().unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sim.prefill_us_per_token",
                "sim.time_scale",
                "sim.eos_mean_tokens",
                "sim.worker_threads"
            ],
            "{e}"
        );
    }
}
