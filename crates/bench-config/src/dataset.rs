//! `dataset.*`: where prompts come from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// Kind of dataset the dataset stage produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum DatasetType {
    /// Controlled shared-prefix synthetic prompts (AIBrix synthetic_shared); plain layout.
    SyntheticShared,
    /// Multi-turn synthetic sessions (Pareto prompt lengths, Normal turn counts); session layout.
    SyntheticMultiturn,
    /// ShareGPT JSON converted to sessions with prompts and completions.
    Sharegpt,
    /// A client output file (AIBrix output.jsonl or ours) converted to plain prompts.
    ClientTrace,
    /// Fixed or distributed input/output token lengths; plain layout.
    #[default]
    Random,
    /// A user JSONL with `prompt` (and optional `image_path`, `output_length`).
    Custom,
}

/// `dataset`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Which generator or converter runs.
    #[serde(rename = "type")]
    pub kind: DatasetType,
    /// `dataset.random`
    pub random: RandomDataset,
    /// `dataset.synthetic_shared`
    pub synthetic_shared: SyntheticSharedDataset,
    /// `dataset.synthetic_multiturn`
    pub synthetic_multiturn: SyntheticMultiturnDataset,
    /// `dataset.sharegpt`
    pub sharegpt: SharegptDataset,
    /// `dataset.client_trace`
    pub client_trace: ClientTraceDataset,
    /// `dataset.custom`
    pub custom: CustomDataset,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            kind: DatasetType::Random,
            random: RandomDataset::default(),
            synthetic_shared: SyntheticSharedDataset::default(),
            synthetic_multiturn: SyntheticMultiturnDataset::default(),
            sharegpt: SharegptDataset::default(),
            client_trace: ClientTraceDataset::default(),
            custom: CustomDataset::default(),
        }
    }
}

/// Shape of a length distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum LengthDistribution {
    /// Every prompt has exactly the mean length (std ignored).
    #[default]
    Fixed,
    /// Normal(mean, std), clamped to [min, max].
    Normal,
    /// Uniform in [mean - std*sqrt(3), mean + std*sqrt(3)] (so the std is `std`), clamped.
    Uniform,
    /// Log-normal with the given mean and std, clamped.
    Lognormal,
}

/// `dataset.random`: the "configuration" mode of Bud and SambaNova (max_input_tokens /
/// max_output_tokens), with optional spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RandomDataset {
    /// Number of prompts to generate.
    #[schemars(range(min = 1))]
    pub num_prompts: u64,
    /// Mean prompt length in tokens.
    #[schemars(range(min = 1))]
    pub input_tokens: u32,
    /// Standard deviation of the prompt length (ignored for `fixed`).
    #[schemars(range(min = 0.0))]
    pub input_std: f64,
    /// Mean output length in tokens (written as each prompt's `output_length`).
    #[schemars(range(min = 1))]
    pub output_tokens: u32,
    /// Standard deviation of the output length (ignored for `fixed`).
    #[schemars(range(min = 0.0))]
    pub output_std: f64,
    /// Distribution of both lengths.
    pub distribution: LengthDistribution,
    /// Lower clamp for sampled lengths.
    #[schemars(range(min = 1))]
    pub min_tokens: u32,
    /// Upper clamp for sampled lengths.
    #[schemars(range(min = 1))]
    pub max_tokens: u32,
}

impl Default for RandomDataset {
    fn default() -> Self {
        RandomDataset {
            num_prompts: 200,
            input_tokens: 512,
            input_std: 0.0,
            output_tokens: 128,
            output_std: 0.0,
            distribution: LengthDistribution::Fixed,
            min_tokens: 1,
            max_tokens: 32768,
        }
    }
}

/// One group of AIBrix's controlled shared-prefix generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefixGroup {
    /// Mean prompt length in tokens (prefix + unique part).
    #[schemars(range(min = 1))]
    pub prompt_length: u32,
    /// Std of the prompt length.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub prompt_std: f64,
    /// Mean fraction of the prompt that is the shared prefix.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub shared_prop: f64,
    /// Std of the shared fraction.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub shared_prop_std: f64,
    /// Prompts in this group.
    #[schemars(range(min = 1))]
    pub num_samples: u32,
    /// Distinct prefixes in this group (prompts are spread evenly over them).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub num_prefix: u32,
}

fn one() -> u32 {
    1
}

/// `dataset.synthetic_shared`: AIBrix's controlled shared-prefix generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticSharedDataset {
    /// The groups (AIBrix's comma-separated per-config lists, one entry per config).
    pub groups: Vec<SharedPrefixGroup>,
    /// Output length written with each prompt (null: leave to the workload).
    pub output_length: Option<u32>,
    /// Shuffle prompts across groups (AIBrix does).
    pub shuffle: bool,
}

impl Default for SyntheticSharedDataset {
    fn default() -> Self {
        // AIBrix's config.yaml defaults.
        let g = |prompt_length, prompt_std, shared_prop, num_samples| SharedPrefixGroup {
            prompt_length,
            prompt_std,
            shared_prop,
            shared_prop_std: 0.00001,
            num_samples,
            num_prefix: 1,
        };
        SyntheticSharedDataset {
            groups: vec![g(3997, 17.0, 0.95, 12), g(5868, 28.0, 0.97, 8), g(2617, 1338.0, 0.03, 79)],
            output_length: None,
            shuffle: true,
        }
    }
}

/// `dataset.synthetic_multiturn`: sessions with Pareto prompt lengths and Normal turn counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticMultiturnDataset {
    /// Mean number of sessions (Normal).
    #[schemars(range(min = 1.0))]
    pub num_sessions: f64,
    /// Std of the number of sessions (0: exactly `num_sessions`).
    #[schemars(range(min = 0.0))]
    pub num_sessions_std: f64,
    /// Mean prompt length in tokens (Pareto with this mean and std).
    #[schemars(range(min = 1.0))]
    pub prompt_length: f64,
    /// Std of the prompt length.
    #[schemars(range(min = 0.0))]
    pub prompt_std: f64,
    /// Mean turns per session (Normal, at least 1).
    #[schemars(range(min = 1.0))]
    pub num_turns: f64,
    /// Std of the turns per session.
    #[schemars(range(min = 0.0))]
    pub num_turns_std: f64,
    /// Tokens of a prefix shared by every session's first turn (a system prompt); 0 for none.
    pub shared_prefix_length: u32,
    /// Upper clamp for a sampled prompt length.
    #[schemars(range(min = 1))]
    pub max_prompt_length: u32,
    /// Output length written for every turn (null: leave to the workload).
    pub output_length: Option<u32>,
}

impl Default for SyntheticMultiturnDataset {
    fn default() -> Self {
        // AIBrix's config.yaml defaults (num_sessions lowered so the default run is short).
        SyntheticMultiturnDataset {
            num_sessions: 100.0,
            num_sessions_std: 0.0,
            prompt_length: 80.0,
            prompt_std: 472.0,
            num_turns: 3.55,
            num_turns_std: 2.89,
            shared_prefix_length: 0,
            max_prompt_length: 16384,
            output_length: None,
        }
    }
}

/// `dataset.sharegpt`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SharegptDataset {
    /// ShareGPT JSON file (array of {id, conversations:[{from, value}]}).
    pub path: Option<String>,
    /// Drop turns whose prompt is shorter than this many tokens.
    pub min_prompt_tokens: Option<u32>,
    /// Drop turns whose prompt is longer than this many tokens.
    pub max_prompt_tokens: Option<u32>,
    /// Drop turns whose reference reply is longer than this many tokens.
    pub max_completion_tokens: Option<u32>,
    /// Keep at most this many sessions (in file order).
    pub max_sessions: Option<u64>,
    /// Keep at most this many turns per session.
    pub max_turns: Option<u32>,
}

/// `dataset.client_trace`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTraceDataset {
    /// Client output file: AIBrix output.jsonl, or a bench run's requests output JSONL.
    pub path: Option<String>,
}

/// `dataset.custom`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CustomDataset {
    /// JSONL with `prompt` (required), optional `image_path`, `output_length`.
    pub path: Option<String>,
}

impl DatasetConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        let need = |e: &mut Errors, key: &str, v: &Option<String>| {
            if v.as_deref().is_none_or(str::is_empty) {
                e.push(key, format!("is required when dataset.type is {}", key.split('.').nth(1).unwrap_or("")));
            }
        };
        match self.kind {
            DatasetType::Sharegpt => need(e, "dataset.sharegpt.path", &self.sharegpt.path),
            DatasetType::ClientTrace => need(e, "dataset.client_trace.path", &self.client_trace.path),
            DatasetType::Custom => need(e, "dataset.custom.path", &self.custom.path),
            DatasetType::SyntheticShared if self.synthetic_shared.groups.is_empty() => {
                e.push("dataset.synthetic_shared.groups", "needs at least one group");
            }
            _ => {}
        }
        let r = &self.random;
        if r.min_tokens > r.max_tokens {
            e.push("dataset.random.min_tokens", format!("{} is above dataset.random.max_tokens ({})", r.min_tokens, r.max_tokens));
        }
        if let (Some(a), Some(b)) = (self.sharegpt.min_prompt_tokens, self.sharegpt.max_prompt_tokens)
            && a > b
        {
            e.push("dataset.sharegpt.min_prompt_tokens", format!("{a} is above dataset.sharegpt.max_prompt_tokens ({b})"));
        }
    }
}
